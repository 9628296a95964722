//! Input a checker did not understand, counted so that it can never pass
//! for evidence.
//!
//! A checker reads the ops it knows (`read`, `write`, ...) in the shapes it
//! knows (a read's value a list of `{value, version}` siblings, a write's
//! `ok` with a version). Skipping anything else looks harmless and is not:
//! a `cas` left out of a register history makes linearizable histories
//! fail, and reads left out for a missing `version` leave a key judged on
//! nothing, which then passes. `HISTORY.md` says a checker is never `true`
//! on evidence it did not have; by the same rule it is never `false` on a
//! history it read only part of, since the part it skipped may be what
//! explains the rest.
//!
//! So every op a checker cannot interpret is noted here, by reason, with
//! the index of the first such op so a reader can find it, and
//! [`NotUnderstood::judge`] turns the checker's verdict into `unknown` with
//! the reason. The figures the checker computed on the rest stay in the
//! result: they are measurements of what it did read, not a verdict.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::result::{CheckResult, Validity};

/// How many ops were not understood for one reason, and where the first is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Count {
    /// Ops noted for this reason.
    ops: usize,
    /// History index (of the invocation) of the first one noted.
    first_index: u64,
}

/// The ops a checker could not interpret, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotUnderstood {
    /// Reason -> how many ops, and the first.
    by_reason: BTreeMap<String, Count>,
}

impl NotUnderstood {
    /// Notes one op (by the history index of its invocation) not understood.
    pub fn note(&mut self, reason: impl Into<String>, index: u64) {
        let count = self.by_reason.entry(reason.into()).or_insert(Count { ops: 0, first_index: index });
        count.ops += 1;
        count.first_index = count.first_index.min(index);
    }

    /// Notes an op whose `f` the checker does not know.
    pub fn note_unknown_f(&mut self, f: &str, index: u64) {
        self.note(format!("op type {f:?} is not one this checker knows"), index);
    }

    /// How many ops were not understood, over all reasons.
    pub fn ops(&self) -> usize {
        self.by_reason.values().map(|c| c.ops).sum()
    }

    /// One sentence: how many ops, the first reason and where to look.
    pub fn reason(&self) -> Option<String> {
        let (why, first) = self.by_reason.iter().min_by_key(|(_, c)| c.first_index)?;
        let reasons = self.by_reason.len();
        let more = if reasons > 1 { format!(" (and {} other reasons)", reasons - 1) } else { String::new() };
        Some(format!(
            "{} ops not understood, so no verdict: {why}, first at index {}{more}",
            self.ops(),
            first.first_index
        ))
    }

    /// The figure `not_understood`: reason -> `{ops, first_index}`.
    pub fn figure(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .by_reason
            .iter()
            .map(|(why, c)| (why.clone(), json!({"ops": c.ops, "first_index": c.first_index})))
            .collect();
        Value::Object(map)
    }

    /// `result` with the count as a figure, and when any op was not
    /// understood, the verdict `unknown` and the reason.
    pub fn judge(&self, result: CheckResult) -> CheckResult {
        let result = result.with("ops_not_understood", json!(self.ops()));
        match self.reason() {
            None => result,
            Some(reason) => {
                let mut result = result.with("not_understood", self.figure()).with("reason", json!(reason));
                result.valid = Validity::Unknown;
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_op_not_understood_makes_the_verdict_unknown_with_the_reason() {
        let clean = NotUnderstood::default().judge(CheckResult::new(Validity::False));
        assert_eq!(clean.valid, Validity::False, "nothing noted: the verdict stands");
        assert_eq!(clean.figure("ops_not_understood"), Some(&json!(0)));
        let mut noted = NotUnderstood::default();
        noted.note_unknown_f("cas", 7);
        noted.note_unknown_f("cas", 3);
        noted.note("a read sibling without a version", 5);
        let judged = noted.judge(CheckResult::new(Validity::True));
        assert_eq!(judged.valid, Validity::Unknown);
        assert_eq!(judged.figure("ops_not_understood"), Some(&json!(3)));
        let reason = judged.figure("reason").and_then(Value::as_str).unwrap_or_default();
        assert!(reason.contains("\"cas\"") && reason.contains("first at index 3"), "{reason}");
    }
}
