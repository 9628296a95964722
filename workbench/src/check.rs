//! `workbench check <dir>`: re-check runs offline from their files alone.
//!
//! Given a run directory, it reads `run.json` and `history.jsonl`, runs every
//! checker, prints the row and compares the verdict with the stored
//! `results.json`. Given a campaign directory, it does that for every run in
//! it and prints the tables again. Nothing is written unless `--write`; then
//! `results.json`, the plots and `timeline.html` are written anew.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use checker::{Results, Validity};
use history::{files, RunConfig};
use serde_json::json;

use crate::campaign::check_run;
use crate::json_file::{read_json, write_json};
use crate::table::{self, Row};

/// Run directories under `dir`: itself if it holds a `run.json`, else its children that do.
fn run_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    if dir.join(files::RUN).exists() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(files::RUN).exists())
        .collect();
    out.sort();
    if out.is_empty() {
        bail!("{} is neither a run directory (no run.json) nor a campaign directory", dir.display());
    }
    Ok(out)
}

/// Re-checks one run; `None` when it has no history (it was not performed).
fn recheck(dir: &Path, write: bool) -> Result<(RunConfig, Option<Results>, bool)> {
    let run: RunConfig = read_json(&dir.join(files::RUN))?;
    let history = dir.join(files::HISTORY);
    if !history.exists() {
        return Ok((run, None, true));
    }
    let results = check_run(&run, &history)?;
    let stored_path = dir.join(files::RESULTS);
    let same = match stored_path.exists() {
        true => read_json::<Results>(&stored_path)?.valid == results.valid,
        false => false,
    };
    if write {
        write_json(&stored_path, &results)?;
        if let Err(e) = crate::plot::plot_run(dir, &run, &results) {
            eprintln!("{}: plots failed: {e:#}", dir.display());
        }
        crate::timeline::write_timeline(dir, &results)?;
    }
    Ok((run, Some(results), same))
}

/// The figures the tables have no column for: hinted writes missing on their
/// home replicas, and the offered load of an open loop.
fn details(results: &Results) -> String {
    let mut out = Vec::new();
    if let Some(hints) = results.checkers.get(checker::hint_delivery::NAME) {
        let home = hints.figure("home_check").and_then(|h| h.get("valid")).cloned().unwrap_or(json!("no hinted write"));
        let figure = |k: &str| hints.figure(k).cloned().unwrap_or_default();
        out.push(format!(
            "hint-delivery: hinted_writes {} missing {} (home check: {home})",
            figure("hinted_writes"),
            figure("missing")
        ));
    }
    let load = results
        .checkers
        .get(checker::stats::NAME)
        .and_then(|s| s.figure("offered_load"))
        .filter(|l| l["arrival"] == "open");
    if let Some(load) = load {
        let rate = |k: &str| load[k].as_f64().map_or("-".to_string(), |r| format!("{r:.1}"));
        out.push(format!(
            "offered load: target {} ops/s, achieved {} ops/s, dropped_arrivals {} of {}",
            rate("target_rate_per_s"),
            rate("achieved_rate_per_s"),
            load["dropped_arrivals"],
            load["arrivals"]
        ));
    }
    out.join("; ")
}

/// Returns the exit code: 0 valid, 1 invalid, 2 unknown (or a verdict changed).
pub fn check(dir: &Path, write: bool) -> Result<i32> {
    let mut groups: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut verdicts = Vec::new();
    for run_dir in run_dirs(dir)? {
        let (run, results, same) = recheck(&run_dir, write)?;
        let row = match &results {
            Some(r) => table::row(&run, r),
            None => table::unsupported_row(&run, "no history: the run was not performed"),
        };
        let verdict = results.as_ref().map_or(Validity::Unknown, |r| r.valid);
        let note = if same { "same verdict as stored" } else { "DIFFERS from the stored results.json" };
        eprintln!("{}: {} ({note})", run_dir.display(), table::validity_label(verdict));
        if let Some(details) = results.as_ref().map(details).filter(|d| !d.is_empty()) {
            eprintln!("  {details}");
        }
        if !same && results.is_some() {
            verdicts.push(Validity::Unknown);
        }
        verdicts.push(verdict);
        groups.entry(table::group_label(&run)).or_default().push(row);
    }
    println!("{}", table::render(&groups));
    Ok(match Validity::all(verdicts) {
        Validity::True => 0,
        Validity::False => 1,
        Validity::Unknown => 2,
    })
}
