//! Reading a line of `history.jsonl` straight into the compact form,
//! without a JSON tree.
//!
//! The plain way to read a line is to parse it into an [`crate::Op`]: every value
//! becomes a `serde_json::Value` tree (a `String` per text, a `BTreeMap`
//! per object, a `Version` per sibling), and [`CompactBuilder::push`] then
//! writes each value back out as JSON text to intern it. For an hour of a
//! campaign that is millions of trees built only to be thrown away, and it
//! was a third of the time `workbench check` took.
//!
//! Here a line is parsed into borrowed shapes ([`Line`]): names are slices
//! of the line (copied only when they hold escapes), a value is the slice
//! of JSON text it was written as ([`RawValue`]), a version is its fields
//! with its clock a short list of `(node, counter)`. A value whose text is
//! already what `serde_json::to_writer` would write for it (no whitespace,
//! no object, whose key order could differ, no escape, integers small
//! enough to be held exactly; see [`shape`]) is interned as written; one
//! that is not is parsed to a tree and written out, exactly as before.
//!
//! The plain path stays the reference. A line the fast path is not sure
//! to read exactly as the plain path would (it does not parse, its value
//! holds an escape, a fraction, an exponent or a long integer, nests
//! deep, or is an `ok` read whose siblings do not parse) is read the plain
//! way, as an [`crate::Op`]: its error, its siblings, its value are then the
//! plain path's by construction. Such lines are rare (a history's values
//! are short strings, small integers and lists of them), so they cost
//! little. Nothing is added to the builder until the whole line is known
//! to be readable fast, so a line read the plain way finds the builder as
//! the fast path found it, and names, values and versions get the ids the
//! plain path gives them.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{CompactBuilder, Fields, Span, ValueId, VersionIn};
use crate::{OpType, Process};

/// Nesting (arrays and objects) beyond which a value is read the plain
/// way: serde_json stops parsing at 128 levels counted from the line, and
/// a value parsed on its own would be allowed one more.
const MAX_FAST_DEPTH: usize = 64;

/// Digits an integer may have to be written back as it was read: 18
/// digits fit both `u64` and `i64`, which serde_json writes exactly;
/// longer ones may become floats.
const MAX_EXACT_DIGITS: usize = 18;

/// A string of a line: borrowed from it, or decoded when it held escapes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Text<'a>(Cow<'a, str>);

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Builds a [`Text`]; serde's own `Cow` impl would always copy.
struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(text)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_string(TextVisitor)
    }
}

/// A version's clock as [`crate::Version`]'s `BTreeMap` holds it: entries
/// in name order, a name given twice holding its last counter.
#[derive(Debug, Default)]
pub(crate) struct Clock<'a>(Vec<(Text<'a>, u64)>);

impl<'a> Clock<'a> {
    /// The entries, in name order, each name once.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.0.iter().map(|(node, counter)| (node.as_ref(), *counter))
    }

    /// The entries as read, put in name order, the last of each name kept
    /// (a `BTreeMap` filled in file order keeps the last insert).
    fn from_entries(mut entries: Vec<(Text<'a>, u64)>) -> Clock<'a> {
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            // Stable, so that of equal names the last written stays last.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 = later.1;
                }
                same
            });
        }
        debug_assert!(entries.is_sorted_by(|a, b| a.0 < b.0));
        Clock(entries)
    }
}

/// Reads a [`Clock`] from a map only, as a `BTreeMap` reads.
struct ClockVisitor;

impl<'de> Visitor<'de> for ClockVisitor {
    type Value = Clock<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of node to counter")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Clock<'de>, M::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(16));
        while let Some(entry) = map.next_entry::<Text<'de>, u64>()? {
            entries.push(entry);
        }
        Ok(Clock::from_entries(entries))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Clock<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ClockVisitor)
    }
}

/// [`crate::Dot`], borrowed: the same fields, the same forms.
#[derive(Debug, Deserialize)]
pub(crate) struct DotShape<'a> {
    /// The coordinator.
    #[serde(borrow)]
    pub(crate) node: Text<'a>,
    /// Its counter.
    pub(crate) counter: u64,
}

/// [`crate::Version`], borrowed: the same fields with the same defaults,
/// the same forms (a map, or a sequence in field order).
#[derive(Debug, Deserialize)]
pub(crate) struct VersionShape<'a> {
    /// The clock, in name order.
    #[serde(default, borrow)]
    pub(crate) clock: Clock<'a>,
    /// Coordinator wall-clock milliseconds.
    #[serde(default)]
    pub(crate) ts: u64,
    /// The dot, if any.
    #[serde(default, borrow)]
    pub(crate) dot: Option<DotShape<'a>>,
}

/// A sibling as [`crate::op`]'s `SiblingShape` reads one (`value` and
/// `version` required, other fields ignored, a map or `[value, version]`),
/// with its value's text kept.
#[derive(Debug, Deserialize)]
struct SiblingShape<'a> {
    /// The value's JSON text, as written.
    #[serde(borrow)]
    value: &'a RawValue,
    /// The version.
    #[serde(borrow)]
    version: VersionShape<'a>,
}

/// One line as [`crate::Op`] reads it: the same fields, required and defaulted
/// alike, unknown ones ignored; strings borrowed, the value as text.
#[derive(Debug, Deserialize)]
struct Line<'a> {
    /// See [`crate::Op::index`].
    index: u64,
    /// See [`crate::Op::time`].
    time: u64,
    /// See [`crate::Op::process`]: its own parse.
    process: Process,
    /// See [`crate::Op::kind`].
    #[serde(rename = "type")]
    kind: OpType,
    /// See [`crate::Op::f`].
    #[serde(borrow)]
    f: Text<'a>,
    /// See [`crate::Op::key`].
    #[serde(default, borrow)]
    key: Option<Text<'a>>,
    /// See [`crate::Op::value`]: None when absent or `null`.
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
    /// See [`crate::Op::node`].
    #[serde(default, borrow)]
    node: Option<Text<'a>>,
    /// See [`crate::Op::version`].
    #[serde(default, borrow)]
    version: Option<VersionShape<'a>>,
    /// See [`crate::Op::error`].
    #[serde(default, borrow)]
    error: Option<Text<'a>>,
    /// See [`crate::Op::hinted_for`].
    #[serde(default, borrow)]
    hinted_for: Vec<Text<'a>>,
    /// See [`crate::Op::answered_by`].
    #[serde(default, borrow)]
    answered_by: Option<Vec<Text<'a>>>,
    /// See [`crate::Op::dc`].
    #[serde(default, borrow)]
    dc: Option<Text<'a>>,
}

/// What a value's JSON text is, as far as reading it fast goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Exactly what `serde_json::to_writer` writes for it: interned as is.
    Canonical,
    /// Parses to the tree the plain path builds, but is written otherwise
    /// (whitespace, objects, `-0`): parsed and written out again.
    Plain,
    /// Holds what the fast path does not vouch for (an escape, a fraction
    /// or exponent, a long integer, deep nesting): the line is read the
    /// plain way.
    Complex,
}

/// Classifies a value's JSON text (valid JSON, as serde_json took it) in
/// one pass over its bytes.
pub(crate) fn shape(text: &str) -> Shape {
    let bytes = text.as_bytes();
    let mut shape = Shape::Canonical;
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let step = match bytes[i] {
            b'"' => string_len(&bytes[i..]),
            b'-' | b'0'..=b'9' => number_len(&bytes[i..], &mut shape),
            b'[' | b'{' => {
                depth += 1;
                if bytes[i] == b'{' {
                    shape = Shape::Plain;
                }
                (depth <= MAX_FAST_DEPTH).then_some(1)
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                Some(1)
            }
            b',' => Some(1),
            b':' | b' ' | b'\t' | b'\n' | b'\r' => {
                shape = Shape::Plain;
                Some(1)
            }
            b'a'..=b'z' => Some(bytes[i..].iter().take_while(|b| b.is_ascii_lowercase()).count()),
            _ => None,
        };
        let Some(step) = step else { return Shape::Complex };
        i += step;
    }
    shape
}

/// The length of the string `bytes` starts with, quotes included; None
/// when it holds an escape or a control character (never written raw).
fn string_len(bytes: &[u8]) -> Option<usize> {
    assert_eq!(bytes[0], b'"');
    let end = bytes[1..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    (bytes[1 + end] == b'"').then_some(end + 2)
}

/// The length of the integer `bytes` starts with; None for a fraction,
/// an exponent or too many digits. `-0` is written back as `-0.0`: Plain.
fn number_len(bytes: &[u8], shape: &mut Shape) -> Option<usize> {
    let sign = usize::from(bytes[0] == b'-');
    let digits = bytes[sign..].iter().take_while(|b| b.is_ascii_digit()).count();
    let end = sign + digits;
    if digits > MAX_EXACT_DIGITS || matches!(bytes.get(end), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    if sign == 1 && bytes.get(1) == Some(&b'0') {
        *shape = Shape::Plain;
    }
    Some(end)
}

/// A value's text ready to intern: as written, or written out again.
enum ValueText<'a> {
    /// Canonical as written.
    Raw(&'a str),
    /// Written out by `serde_json::to_writer` (what the plain path interns).
    Written(String),
}

impl ValueText<'_> {
    fn as_str(&self) -> &str {
        match self {
            ValueText::Raw(text) => text,
            ValueText::Written(text) => text,
        }
    }
}

/// The compact JSON text of a value, None when it is Complex (or, never
/// expected, when it does not parse).
fn value_text(raw: &RawValue) -> Option<ValueText<'_>> {
    let text = raw.get();
    match shape(text) {
        Shape::Canonical => Some(ValueText::Raw(text)),
        Shape::Plain => {
            let tree: serde_json::Value = serde_json::from_str(text).ok()?;
            Some(ValueText::Written(serde_json::to_string(&tree).expect("a JSON value serializes")))
        }
        Shape::Complex => None,
    }
}

/// A line whose value is known: everything checked, nothing interned yet.
pub(super) struct Ready<'a> {
    /// The line's other fields.
    line: Line<'a>,
    /// An `ok` read's siblings, each value's text and version.
    siblings: Option<Vec<(ValueText<'a>, VersionShape<'a>)>>,
    /// The value, when there are no siblings; None for `null`.
    value: Option<ValueText<'a>>,
}

/// Parses `text` fast, or None when it must be read the plain way.
pub(super) fn ready(text: &str) -> Option<Ready<'_>> {
    let mut line: Line<'_> = serde_json::from_str(text).ok()?;
    let raw = line.value.take();
    let is_read = line.kind == OpType::Ok && line.f.as_ref() == "read";
    let (siblings, value) = match raw {
        // A null value: no siblings (a null does not parse as a list).
        None => (None, None),
        Some(raw) if is_read => {
            if shape(raw.get()) == Shape::Complex {
                return None;
            }
            let shapes: Vec<SiblingShape<'_>> = serde_json::from_str(raw.get()).ok()?;
            let siblings =
                shapes.into_iter().map(|s| Some((value_text(s.value)?, s.version))).collect::<Option<Vec<_>>>()?;
            (Some(siblings), None)
        }
        Some(raw) => (None, Some(value_text(raw)?)),
    };
    Some(Ready { line, siblings, value })
}

impl CompactBuilder {
    /// Adds the line `ready` (parsed by [`ready`]) if its index is
    /// `expected_index`, and returns its index either way (the reader's
    /// error when they differ).
    pub(super) fn push_ready(&mut self, ready: Ready<'_>, expected_index: u64) -> u64 {
        let Ready { line, siblings, value } = ready;
        if line.index != expected_index {
            return line.index;
        }
        let siblings = siblings.map(|siblings| {
            let start = super::small(self.siblings.len());
            for (value, version) in &siblings {
                let value = self.values.intern(value.as_str());
                let version = self.versions.intern_shape(version);
                self.siblings.push((value, version));
            }
            Span { start, len: super::small(siblings.len()) }
        });
        let value: Option<ValueId> = match (&siblings, value) {
            (Some(_), _) => None,
            (None, Some(text)) => Some(self.values.intern(text.as_str())),
            (None, None) => Some(super::Id(0)),
        };
        let fields = Fields {
            index: line.index,
            time_ns: line.time,
            process: line.process,
            kind: line.kind,
            f: line.f.as_ref(),
            key: line.key.as_ref().map(AsRef::as_ref),
            node: line.node.as_ref().map(AsRef::as_ref),
            version: line.version.as_ref().map(VersionIn::Shape),
            answered_by: line.answered_by.as_deref(),
            hinted_for: &line.hinted_for,
            error: line.error.as_ref().map(AsRef::as_ref),
            dc: line.dc.as_ref().map(AsRef::as_ref),
        };
        self.push_fields(fields, value, siblings);
        expected_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_texts_are_those_serde_json_writes_back_the_same() {
        let cases = [
            ("\"p0-1\"", Shape::Canonical),
            ("null", Shape::Canonical),
            ("[1,-2,true,false,null,\"é\",[]]", Shape::Canonical),
            ("123456789012345678", Shape::Canonical),
            ("[ 1]", Shape::Plain),
            ("{\"b\":1,\"a\":2}", Shape::Plain),
            ("-0", Shape::Plain),
            ("\"a\\u00e9\"", Shape::Complex),
            ("1.0", Shape::Complex),
            ("1e2", Shape::Complex),
            ("12345678901234567890", Shape::Complex),
        ];
        for (text, want) in cases {
            assert_eq!(shape(text), want, "{text}");
            let tree: serde_json::Value = serde_json::from_str(text).unwrap();
            if want == Shape::Canonical {
                assert_eq!(serde_json::to_string(&tree).unwrap(), text);
            }
        }
        let deep = "[".repeat(MAX_FAST_DEPTH + 1) + &"]".repeat(MAX_FAST_DEPTH + 1);
        assert_eq!(shape(&deep), Shape::Complex);
    }

    #[test]
    fn the_lines_a_history_holds_are_read_fast_and_only_a_read_not_understood_is_not() {
        for op in super::super::tests::ops() {
            let line = serde_json::to_string(&op).unwrap();
            let understood = op.f != "read" || op.kind != OpType::Ok || op.sibling_refs().is_some();
            assert_eq!(ready(&line).is_some(), understood, "{line}");
        }
    }

    #[test]
    fn a_clock_keeps_the_last_counter_of_a_name_and_name_order() {
        let version: VersionShape<'_> = serde_json::from_str(r#"{"clock":{"n2":1,"n1":4,"n2":3}}"#).unwrap();
        let entries: Vec<(&str, u64)> = version.clock.entries().collect();
        assert_eq!(entries, [("n1", 4), ("n2", 3)]);
        let plain: crate::Version = serde_json::from_str(r#"{"clock":{"n2":1,"n1":4,"n2":3}}"#).unwrap();
        let want: Vec<(&str, u64)> = plain.clock.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(entries, want);
    }
}
