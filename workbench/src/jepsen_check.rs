//! `workbench check --jepsen <history.edn> --model register|cas-register`:
//! the linearizability checker on a history another tool recorded.
//!
//! Jepsen (and Knossos, Porcupine's users, Elle's) write histories as EDN.
//! [`history::jepsen`] reads one into this project's ops and the checker
//! ([`checker::linearizable::check_history`]) judges it per key, with the
//! model given: `register` (read, write) or `cas-register` (and cas). Only
//! linearizability runs: a Jepsen history records values, not the versions
//! the other checkers compare.
//!
//! The answer is printed with its witnesses, and so is every op the model
//! does not understand: a cas under `register`, say, which leaves its key
//! undecided, so the answer is never `true` on ops it did not read.
//!
//! Exit codes as `check`'s: 0 linearizable, 1 not, 2 unknown (a key not
//! decided, an op not understood) or a history that does not read.

use std::path::Path;

use anyhow::{Context, Result};
use checker::linearizable::{self, Model};
use history::jepsen::{self, Options};
use serde_json::Value;

/// Checks the EDN history at `path`; returns the exit code.
pub fn check_jepsen(path: &Path, model: Model, options: Options) -> Result<i32> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let history =
        jepsen::parse(&text, options).with_context(|| format!("reading {} as a Jepsen history", path.display()))?;
    let nemesis = history.nemesis_events().count();
    let result = linearizable::check_history(&history, model);
    let figure = |name: &str| result.figures.get(name).cloned().unwrap_or(Value::Null);
    let answer = figure("linearizable");
    println!(
        "{}: {} ops ({} client ops, {nemesis} nemesis events), {} keys, model {}",
        path.display(),
        history.ops.len(),
        history.pairs().len(),
        figure("keys"),
        model.as_str()
    );
    let shown = answer.as_str().map_or_else(|| answer.to_string(), str::to_string);
    println!("linearizable: {shown} ({} keys decided)", figure("keys_decided"));
    print_details(&result.figures);
    Ok(match answer {
        Value::Bool(true) => 0,
        Value::Bool(false) => 1,
        _ => 2,
    })
}

/// The keys not decided and why, the ops not understood, and the witnesses.
fn print_details(figures: &serde_json::Map<String, Value>) {
    if let Some(reason) = figures.get("reason").and_then(Value::as_str) {
        println!("why: {reason}");
    }
    if let Some(Value::Object(unknown)) = figures.get("keys_unknown") {
        for (key, why) in unknown.iter().take(10) {
            println!("key {key} not decided: {}", why.as_str().unwrap_or_default());
        }
        if unknown.len() > 10 {
            println!("... and {} more keys not decided", unknown.len() - 10);
        }
    }
    if let Some(Value::Array(witnesses)) = figures.get("examples") {
        for witness in witnesses {
            println!("witness: {}", witness.get("sentence").and_then(Value::as_str).unwrap_or_default());
        }
    }
}
