//! Jepsen's histories, read into this project's ops, so that the checkers
//! here can judge histories other tools recorded.
//!
//! Jepsen writes a history as EDN: one map per op, `{:type :invoke, :f
//! :write, :value 3, :process 0, :time 1234, :index 0}`, either one map per
//! line (`history.edn`) or all of them inside one vector (Knossos' test
//! data). [`parse`] takes both. Each map becomes one [`Op`]:
//!
//! - `:type` is the op type (`:invoke`, `:ok`, `:fail`, `:info`), as here;
//! - `:process` is the client process (an integer), or `:nemesis`;
//! - `:f` is the op's function (`:read`, `:write`, `:cas`, ...), its name
//!   without the colon. Functions no checker knows are kept as they are,
//!   so that a checker counts them as not understood instead of never
//!   seeing them;
//! - `:value` is the value: written, read, or `[expected new]` for a cas.
//!   With `independent` (Jepsen's `independent` generator), every value is
//!   a `[key value]` tuple and the key is taken from it; otherwise the
//!   history is one register, key [`SINGLE_KEY`];
//! - `:time` is nanoseconds since the test started. A history without any
//!   `:time` is ordered by position (each op one nanosecond after the one
//!   before), which keeps its real-time order, the only thing
//!   linearizability reads; one with some but not all is refused.
//!
//! An `:ok` read becomes a read that returned one sibling with that value
//! (none for `nil`: the register never written). Jepsen records no version,
//! so the sibling's version is empty: such a history is for the checkers
//! that read values only (linearizability), never for those that compare
//! versions, and `workbench check --jepsen` runs only those.
//!
//! Anything that does not read as an op (a line that is not an EDN map, a
//! missing `:type` or `:f`, a process that is neither an integer nor
//! `:nemesis`, an independent value that is not a pair) is refused with its
//! line number: a history read in part would be judged on evidence it does
//! not hold.

use edn_rs::Edn;
use serde_json::{json, Map, Value};

use crate::{History, Op, OpType, Process};

/// The key of a history that is one register (not `independent`).
pub const SINGLE_KEY: &str = "r";

/// Why a Jepsen history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JepsenError {
    /// One op (a line, or an element of the vector) is not one.
    #[error("op {position} (line {line}): {reason}")]
    Op {
        /// The op's position, from 0.
        position: usize,
        /// Its line in the file, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The text is not EDN at all.
    #[error("not an EDN history: {0}")]
    Edn(String),
    /// No op at all.
    #[error("the history holds no op")]
    Empty,
}

/// How to read a history.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Every value is a `[key value]` tuple (Jepsen's `independent`).
    pub independent: bool,
}

/// The ops of a Jepsen EDN history; see the module documentation.
pub fn parse(text: &str, options: Options) -> Result<History, JepsenError> {
    let maps = maps_of(text)?;
    if maps.is_empty() {
        return Err(JepsenError::Empty);
    }
    let timed = maps.iter().filter(|(_, m)| m.get(":time").is_some()).count();
    let mut ops = Vec::with_capacity(maps.len());
    for (position, (line, map)) in maps.iter().enumerate() {
        let fail = |reason: String| JepsenError::Op { position, line: *line, reason };
        let mut op = op_of(map, options).map_err(fail)?;
        op.index = position as u64;
        op.time = match (timed, map.get(":time")) {
            (0, _) => position as u64,
            (_, Some(t)) => count(t).ok_or_else(|| fail(format!(":time {t} is not a count of nanoseconds")))?,
            (_, None) => return Err(fail(format!("no :time, where {timed} of {} ops have one", maps.len()))),
        };
        ops.push(op);
    }
    Ok(History::new(ops))
}

/// Every op map of the text with its line: the elements of one vector, or
/// one map per line.
fn maps_of(text: &str) -> Result<Vec<(usize, Edn)>, JepsenError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let first_line = text.len() - trimmed.len();
        let line = text[..first_line].matches('\n').count() + 1;
        let parsed: Edn = trimmed.parse().map_err(|e| JepsenError::Edn(format!("{e:?}")))?;
        let Edn::Vector(items) = parsed else { return Err(JepsenError::Edn("a vector that does not parse".into())) };
        return Ok(items.to_vec().into_iter().map(|m| (line, m)).collect());
    }
    let mut maps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let content = raw.trim();
        if content.is_empty() || content.starts_with(';') {
            continue;
        }
        let position = maps.len();
        let map: Edn = content.parse().map_err(|e| JepsenError::Op {
            position,
            line: i + 1,
            reason: format!("not EDN: {e:?}"),
        })?;
        maps.push((i + 1, map));
    }
    Ok(maps)
}

/// One op map as an [`Op`] (index and time set by the caller).
fn op_of(map: &Edn, options: Options) -> Result<Op, String> {
    if !matches!(map, Edn::Map(_)) {
        return Err(format!("not a map: {map}"));
    }
    let kind = match map.get(":type") {
        Some(Edn::Key(k)) => op_type(k)?,
        other => return Err(format!(":type must be :invoke, :ok, :fail or :info, got {}", shown(other))),
    };
    let f = match map.get(":f") {
        Some(Edn::Key(k)) => k.trim_start_matches(':').to_string(),
        Some(Edn::Symbol(s) | Edn::Str(s)) => s.clone(),
        other => return Err(format!(":f must be a keyword, got {}", shown(other))),
    };
    let process = match map.get(":process") {
        Some(Edn::Key(k)) if k == ":nemesis" => Process::Nemesis,
        Some(p) => Process::Client(count(p).ok_or_else(|| format!(":process {p} is not a process number"))?),
        None => return Err("no :process".to_string()),
    };
    let raw = map.get(":value").unwrap_or(&Edn::Nil);
    let Process::Client(p) = process else {
        let mut op = Op::nemesis(&f, json_of(raw));
        op.kind = kind;
        return Ok(op);
    };
    let (key, value) = if options.independent {
        match raw {
            Edn::Vector(_) | Edn::List(_) => match elements(raw).as_slice() {
                [k, v] => (key_text(k), (*v).clone()),
                _ => return Err(format!("an independent value must be [key value], got {raw}")),
            },
            _ => return Err(format!("an independent value must be [key value], got {raw}")),
        }
    } else {
        (SINGLE_KEY.to_string(), raw.clone())
    };
    let mut op = Op::client(p, kind, &f, &key, "");
    op.node = None;
    op.value = client_value(&f, kind, &value);
    Ok(op)
}

/// The value as this project's history holds it: an `ok` read's value as
/// its one sibling (no sibling for `nil`), any other as JSON.
fn client_value(f: &str, kind: OpType, value: &Edn) -> Value {
    match (f, kind, value) {
        ("read", OpType::Ok, Edn::Nil) => json!([]),
        ("read", OpType::Ok, v) => json!([{"value": json_of(v), "version": {}}]),
        (_, _, v) => json_of(v),
    }
}

fn op_type(keyword: &str) -> Result<OpType, String> {
    match keyword {
        ":invoke" => Ok(OpType::Invoke),
        ":ok" => Ok(OpType::Ok),
        ":fail" => Ok(OpType::Fail),
        ":info" => Ok(OpType::Info),
        other => Err(format!(":type must be :invoke, :ok, :fail or :info, got {other}")),
    }
}

/// A non-negative integer, and nothing else (no string or float of one).
fn count(edn: &Edn) -> Option<u64> {
    match edn {
        Edn::Int(i) => u64::try_from(*i).ok(),
        Edn::UInt(u) => Some(*u),
        _ => None,
    }
}

/// The elements of a vector or list (none for anything else).
fn elements(edn: &Edn) -> Vec<&Edn> {
    match edn {
        Edn::Vector(_) | Edn::List(_) => edn.iter_some().map(|items| items.collect()).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A key as text: a string as it is, anything else as EDN prints it.
fn key_text(key: &Edn) -> String {
    match key {
        Edn::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An EDN value as JSON: numbers, strings, booleans, nil and collections
/// as themselves; keywords, symbols and anything else as their EDN text.
fn json_of(edn: &Edn) -> Value {
    match edn {
        Edn::Nil => Value::Null,
        Edn::Bool(b) => json!(b),
        Edn::Int(i) => json!(i),
        Edn::UInt(u) => json!(u),
        Edn::Str(s) => json!(s),
        Edn::Double(_) => edn.to_float().map_or_else(|| json!(edn.to_string()), |f| json!(f)),
        Edn::Vector(_) | Edn::List(_) => Value::Array(elements(edn).into_iter().map(json_of).collect()),
        Edn::Map(_) => {
            let entries = edn.map_iter().into_iter().flatten();
            Value::Object(entries.map(|(k, v)| (k.clone(), json_of(v))).collect::<Map<String, Value>>())
        }
        other => json!(other.to_string()),
    }
}

/// What a field held, for an error.
fn shown(edn: Option<&Edn>) -> String {
    edn.map_or_else(|| "nothing".to_string(), ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HISTORY: &str = r#"
{:type :invoke, :f :write, :value 1, :process 0, :time 10, :index 0}
{:type :ok, :f :write, :value 1, :process 0, :time 20, :index 1}
; a comment line
{:type :invoke, :f :cas, :value [1 2], :process 1, :time 30, :index 2}
{:type :info, :f :start, :value nil, :process :nemesis, :time 35}
{:type :fail, :f :cas, :value [1 2], :process 1, :time 40, :index 3}
{:type :invoke, :f :read, :value nil, :process 0, :time 50, :index 4}
{:type :ok, :f :read, :value 1, :process 0, :time 60, :index 5}
"#;

    #[test]
    fn a_history_edn_reads_into_ops_in_order() {
        let history = parse(HISTORY, Options::default()).unwrap();
        assert_eq!(history.ops.len(), 7);
        let cas = &history.ops[2];
        assert_eq!((cas.f.as_str(), cas.kind, cas.time), ("cas", OpType::Invoke, 30));
        assert_eq!(cas.value, json!([1, 2]));
        assert_eq!(cas.key.as_deref(), Some(SINGLE_KEY));
        assert_eq!(history.ops[3].process, Process::Nemesis);
        let read = &history.ops[6];
        let siblings = read.sibling_refs().expect("an ok read has siblings");
        assert_eq!(siblings.len(), 1);
        assert_eq!(*siblings[0].value, json!(1));
        assert!(history.ops.iter().enumerate().all(|(i, op)| op.index == i as u64));
        assert_eq!(history.pairs().len(), 3, "the nemesis pairs with nothing");
    }

    #[test]
    fn a_vector_of_maps_reads_as_the_same_ops() {
        let body: Vec<&str> = HISTORY.lines().filter(|l| l.starts_with('{')).collect();
        let vector = format!("[{}]", body.join("\n"));
        assert_eq!(parse(&vector, Options::default()).unwrap(), parse(HISTORY, Options::default()).unwrap());
    }

    #[test]
    fn independent_values_carry_their_key() {
        let text = "{:type :invoke, :f :cas, :value [7 [1 2]], :process 0, :time 1}\n\
                    {:type :ok, :f :read, :value [\"k\" nil], :process 1, :time 2}";
        let history = parse(text, Options { independent: true }).unwrap();
        assert_eq!(history.ops[0].key.as_deref(), Some("7"));
        assert_eq!(history.ops[0].value, json!([1, 2]));
        assert_eq!(history.ops[1].key.as_deref(), Some("k"));
        assert_eq!(history.ops[1].value, json!([]), "a nil read is the register never written");
        let refused = parse("{:type :ok, :f :read, :value 3, :process 1}", Options { independent: true });
        assert!(refused.unwrap_err().to_string().contains("[key value]"));
    }

    #[test]
    fn malformed_ops_are_refused_with_their_line() {
        let cases = [
            ("{:type :invoke, :f :read, :process 0}\nnot edn {", "line 2"),
            ("{:type :sent, :f :read, :process 0}", ":type must be"),
            ("{:type :ok, :process 0}", ":f must be a keyword"),
            ("{:type :ok, :f :read, :process -3}", "not a process number"),
            ("{:type :ok, :f :read}", "no :process"),
            ("[1 2]", "not a map"),
            ("{:type :ok, :f :read, :process 0, :time 5}\n{:type :ok, :f :read, :process 1}", "no :time"),
        ];
        for (text, expected) in cases {
            let error = parse(text, Options::default()).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert!(matches!(parse("\n; nothing\n", Options::default()), Err(JepsenError::Empty)));
    }

    #[test]
    fn without_times_the_position_orders_the_ops() {
        let text = "{:type :invoke, :f :read, :process 0}\n{:type :ok, :f :read, :value 2, :process 0}";
        let history = parse(text, Options::default()).unwrap();
        assert_eq!(history.ops.iter().map(|o| o.time).collect::<Vec<_>>(), vec![0, 1]);
    }
}
