//! The verdict a checker hands back, and the shape of `results.json`.
//!
//! `HISTORY.md` fixes the file: `{"valid": ..., "checkers": {"<name>":
//! {"valid": ..., ...figures}}}`. A verdict has three values, not two: a
//! checker that had no evidence to decide on (no reads, no client ops) says
//! `"unknown"` rather than `true`, because "nothing went wrong" and "nothing
//! was looked at" must never print the same. In JSON the three are `true`,
//! `false` and the string `"unknown"`, so old readers that expect a boolean
//! still parse the two decided cases.
//!
//! Figures are free-form JSON (counts, fractions, examples) flattened into
//! the checker's object next to `valid`; the workbench's tables pick the
//! keys they know and ignore the rest, so figures can be added freely.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A checker's verdict: decided either way, or undecidable on this history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validity {
    /// The property held on every op the checker could examine.
    True,
    /// The checker found at least one violation of a promised property.
    False,
    /// The history held no evidence either way (said why in the figures).
    Unknown,
}

impl Validity {
    /// Combines verdicts: any `False` wins, then any `Unknown`, else `True`.
    /// An empty set of verdicts is `True` (nothing was asked).
    pub fn all<I: IntoIterator<Item = Validity>>(verdicts: I) -> Validity {
        let mut out = Validity::True;
        for v in verdicts {
            match v {
                Validity::False => return Validity::False,
                Validity::Unknown => out = Validity::Unknown,
                Validity::True => {}
            }
        }
        out
    }

    /// The policy shared by the anomaly checkers: with no evidence the
    /// verdict is `Unknown`; when the configuration promises zero anomalies
    /// any anomaly is `False`; when it promises nothing the count is a
    /// measurement and the verdict is `True`.
    pub fn for_promise(promised_zero: bool, anomalies: usize, checked: usize) -> Validity {
        if checked == 0 {
            Validity::Unknown
        } else if promised_zero && anomalies > 0 {
            Validity::False
        } else {
            Validity::True
        }
    }
}

impl From<bool> for Validity {
    fn from(b: bool) -> Validity {
        if b {
            Validity::True
        } else {
            Validity::False
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::True => s.serialize_bool(true),
            Validity::False => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Validity::from(b)),
            Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            other => Err(serde::de::Error::custom(format!("valid must be true, false or \"unknown\", got {other}"))),
        }
    }
}

/// One checker's output: its verdict and its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The verdict; see [`Validity`].
    pub valid: Validity,
    /// Named figures, flattened into the JSON object next to `valid`.
    #[serde(flatten)]
    pub figures: Map<String, Value>,
}

impl CheckResult {
    /// A result with the given verdict and no figures yet.
    pub fn new(valid: Validity) -> CheckResult {
        CheckResult { valid, figures: Map::new() }
    }

    /// Adds (or replaces) one figure; builder style.
    pub fn with(mut self, key: &str, value: Value) -> CheckResult {
        self.figures.insert(key.to_string(), value);
        self
    }

    /// Looks a figure up by name.
    pub fn figure(&self, key: &str) -> Option<&Value> {
        self.figures.get(key)
    }
}

/// The whole of `results.json`: the overall verdict and each checker's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// [`Validity::all`] over the checkers' verdicts.
    pub valid: Validity,
    /// Checker name -> its result, in name order (stable files, stable diffs).
    pub checkers: BTreeMap<String, CheckResult>,
}

impl Results {
    /// Collects named results and computes the overall verdict.
    pub fn from_checkers(checkers: BTreeMap<String, CheckResult>) -> Results {
        let valid = Validity::all(checkers.values().map(|c| c.valid));
        Results { valid, checkers }
    }
}
