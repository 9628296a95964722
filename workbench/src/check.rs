//! `workbench check <DIR>`: re-check runs offline from their files alone.
//!
//! `DIR` is a run directory or a campaign directory. Only run directories
//! this workbench wrote are read: a `run.json` that parses as one and says
//! `written_by: workbench ...` (or, from before that field, names its own
//! directory as `run_name`); anything else under `DIR` is skipped and
//! counted, never read. For each run it reads `run.json` and
//! `history.jsonl`, runs every checker and compares the verdict with the
//! stored `results.json` (a run with no `results.json` has none to compare).
//! It then prints what the campaign printed, in the same shape: the header,
//! the column legend, the tables with rows in the campaign's matrix order
//! (`run_index` in `run.json`) and the verdict, with the campaign's own
//! `--expect-anomalies`. Nothing is written unless `--write`; then
//! `results.json`, the plots and `timeline.html` are written anew.
//!
//! Exit codes as a campaign's: 0 as valid as expected, 1 not, 2 unknown;
//! and 2 when a verdict differs from the stored one while nothing failed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use checker::Results;
use history::{files, RunConfig};
use serde_json::json;

use crate::campaign::{check_run, summary_text, Header, EXPECT_ANOMALIES, RUN_INDEX, WRITTEN_BY};
use crate::expect::{self, Measured};
use crate::json_file::{read_json, write_json};
use crate::table;

/// The run directories under `dir` this workbench wrote, in matrix order,
/// and how many other directories with a `run.json` were skipped.
struct Found {
    /// Run directories with their `run.json`, in the campaign's order.
    runs: Vec<(PathBuf, RunConfig)>,
    /// Directories whose `run.json` this workbench did not write.
    skipped: usize,
}

/// `dir`'s `run.json`, if this workbench wrote it.
fn ours(dir: &Path) -> Option<RunConfig> {
    let text = std::fs::read_to_string(dir.join(files::RUN)).ok()?;
    let run: RunConfig = serde_json::from_str(&text).ok()?;
    let stamped = run.extra.get(WRITTEN_BY).and_then(|w| w.as_str()).is_some_and(|w| w.starts_with("workbench"));
    let named = dir.file_name().is_some_and(|n| n.to_string_lossy() == run.labels.run_name);
    (stamped || named).then_some(run)
}

/// Run directories under `dir`: itself if it is one, else its children that are.
fn run_dirs(dir: &Path) -> Result<Found> {
    if let Some(run) = ours(dir) {
        return Ok(Found { runs: vec![(dir.to_path_buf(), run)], skipped: 0 });
    }
    let mut found = Found { runs: Vec::new(), skipped: 0 };
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join(files::RUN).is_file()) {
        match ours(&path) {
            Some(run) => found.runs.push((path, run)),
            None => found.skipped += 1,
        }
    }
    found.runs.sort_by_key(|(path, run)| (run_index(run), path.clone()));
    if found.runs.is_empty() {
        bail!(
            "{} holds no run directory written by this workbench (a run.json with written_by), \
             and is not one; {} other directories with a run.json were skipped",
            dir.display(),
            found.skipped
        );
    }
    Ok(found)
}

/// The run's place in its campaign's matrix (runs from before it was recorded last).
fn run_index(run: &RunConfig) -> u64 {
    run.extra.get(RUN_INDEX).and_then(|i| i.as_u64()).unwrap_or(u64::MAX)
}

/// One run re-checked: its new results (None: no history, not performed)
/// and whether the stored `results.json` had another verdict.
struct Rechecked {
    /// The checkers' new results; None when there is no history.
    results: Option<Results>,
    /// Whether a stored `results.json` had another verdict.
    differs: bool,
}

/// Re-checks one run.
fn recheck(dir: &Path, run: &RunConfig, write: bool) -> Result<Rechecked> {
    let history = dir.join(files::HISTORY);
    if !history.exists() {
        return Ok(Rechecked { results: None, differs: false });
    }
    let results = check_run(run, &history)?;
    let stored_path = dir.join(files::RESULTS);
    let stored = stored_path.exists().then(|| read_json::<Results>(&stored_path)).transpose()?;
    let differs = stored.is_some_and(|s| s.valid != results.valid);
    if write {
        write_json(&stored_path, &results)?;
        if let Err(e) = crate::plot::plot_run(dir, run, &results) {
            eprintln!("{}: plots failed: {e:#}", dir.display());
        }
        crate::timeline::write_timeline(dir, &results)?;
    }
    Ok(Rechecked { results: Some(results), differs })
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

/// The line `check` prints on stderr for one run.
fn run_line(dir: &Path, stored: bool, rechecked: &Rechecked) -> String {
    let note = match (&rechecked.results, stored, rechecked.differs) {
        (None, _, _) => "no history.jsonl: the run was not performed",
        (Some(_), false, _) => "no results.json stored to compare",
        (Some(_), true, false) => "same verdict as stored",
        (Some(_), true, true) => "DIFFERS from the stored results.json",
    };
    let verdict = rechecked.results.as_ref().map_or("-", |r| table::validity_label(r.valid));
    let mut line = format!("{}: valid {verdict} ({note})", dir.display());
    if let Some(details) = rechecked.results.as_ref().map(details).filter(|d| !d.is_empty()) {
        line.push_str(&format!("\n  {details}"));
    }
    line
}

/// Returns the exit code (see the module's documentation).
pub fn check(dir: &Path, write: bool) -> Result<i32> {
    let found = run_dirs(dir)?;
    eprintln!(
        "{}: {} run directories written by this workbench; {} other directories with a run.json skipped",
        dir.display(),
        found.runs.len(),
        found.skipped
    );
    let mut outcomes = Vec::new();
    let mut differs = false;
    for (run_dir, run) in found.runs {
        let rechecked = recheck(&run_dir, &run, write)?;
        eprintln!("{}", run_line(&run_dir, run_dir.join(files::RESULTS).exists(), &rechecked));
        differs |= rechecked.differs;
        let unsupported = rechecked.results.is_none().then(|| "no history: the run was not performed".to_string());
        let dir_name = run_dir.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
        outcomes.push(table::Outcome { run, dir_name, results: rechecked.results, unsupported });
    }
    let groups = table::group(outcomes.iter().map(|o| (&o.run, o.results.as_ref(), o.unsupported.as_deref())));
    let measured: Vec<Measured<'_>> =
        outcomes.iter().map(|o| Measured { run: &o.run, results: o.results.as_ref() }).collect();
    let expect_anomalies = outcomes.iter().any(|o| o.run.extra.get(EXPECT_ANOMALIES) == Some(&json!(true)));
    let verdict = expect::evaluate(&measured, expect_anomalies);
    let runs: Vec<&RunConfig> = outcomes.iter().map(|o| &o.run).collect();
    let name = campaign_name(dir, outcomes.len());
    let header = Header::of_runs(&name, &runs).context("no run to summarize")?;
    println!("{}", summary_text(&header, &groups, &verdict));
    let code = verdict.exit_code();
    Ok(if code == 0 && differs { 2 } else { code })
}

/// The campaign's name: the directory's, or its parent's for one run.
fn campaign_name(dir: &Path, runs: usize) -> String {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let named = if runs == 1 && ours(dir).is_some() { canonical.parent() } else { Some(canonical.as_path()) };
    named.and_then(Path::file_name).map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::tests::matrix;

    #[test]
    fn only_run_directories_this_workbench_wrote_are_read_in_matrix_order() {
        let dir = std::env::temp_dir().join(format!("wb-check-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let runs = matrix().runs();
        for (i, spec) in runs.iter().take(3).enumerate().rev() {
            let mut run = spec.run_config("sim", "img");
            run.extra.insert(WRITTEN_BY.into(), json!("workbench 0.1.0"));
            run.extra.insert(RUN_INDEX.into(), json!(i));
            std::fs::create_dir_all(dir.join(&spec.name)).unwrap();
            write_json(&dir.join(&spec.name).join(files::RUN), &run).unwrap();
        }
        for stranger in ["a-stranger", "another"] {
            std::fs::create_dir_all(dir.join(stranger)).unwrap();
            std::fs::write(dir.join(stranger).join(files::RUN), "{\"name\": \"not ours\"}").unwrap();
            std::fs::write(dir.join(stranger).join(files::HISTORY), "garbage\n").unwrap();
        }
        std::fs::create_dir_all(dir.join("unrelated")).unwrap();
        let found = run_dirs(&dir).unwrap();
        assert_eq!(found.skipped, 2);
        let names: Vec<String> = found.runs.iter().map(|(_, r)| r.labels.run_name.clone()).collect();
        let expected: Vec<String> = runs.iter().take(3).map(|r| r.name.clone()).collect();
        assert_eq!(names, expected, "matrix order, not alphabetical");
        let refused = run_dirs(&dir.join("a-stranger")).err().expect("a stranger's directory is refused").to_string();
        assert!(refused.contains("no run directory written by this workbench"), "{refused}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
