//! What a newcomer meets first, through the built binary: a run's recorded
//! replay command replays exactly that run (its `history.jsonl` byte for
//! byte, in the simulator), `--resume` of a missing campaign and a quorum
//! pair that fits no N are refused with exit code 2 and say why, `check`
//! reads only what this workbench wrote and prints what the campaign
//! printed, and no verdict prints Rust's `Some(..)`.
//!
//! One short simulated campaign (4 runs of 3 s of faults) is shared by the
//! tests that need one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const WORKBENCH: &str = env!("CARGO_BIN_EXE_workbench");

/// A fresh scratch directory for `what`.
fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wb-newcomer-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn workbench(args: &[&str]) -> Output {
    Command::new(WORKBENCH).args(args).output().expect("the workbench runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The shared campaign: register, N3 W2 R2, no faults and partitions, two
/// repetitions each (seeds 42 and 43); its directory.
fn campaign() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let results = scratch("campaign");
        let out = workbench(&[
            "campaign",
            "--backend",
            "sim",
            "--quorums",
            "2,2",
            "--nemesis",
            "none,partition",
            "--test-count",
            "2",
            "--time-limit",
            "3",
            "--quiet",
            "1",
            "--expect-anomalies",
            "--name",
            "c",
            "--results-dir",
            results.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        results.join("c")
    })
}

/// The words of a command line [`shell_word`](workbench's) quoted: plain
/// words and single-quoted ones.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut started) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_runs_recorded_command_replays_that_run_byte_for_byte() {
    let dir = campaign().join("partition-register-n3-w2-r2-siblings-t1");
    let replay = run_json(&dir)["replay"].as_str().expect("run.json records its replay").to_string();
    for pinned in ["--quorums 2,2", "--nemesis partition", "--resolution siblings", "--seed 43", "--time-limit 3"] {
        assert!(replay.contains(pinned), "{pinned:?} not in {replay}");
    }
    assert!(!replay.contains("--test-count"), "one run, not the campaign: {replay}");
    let other = run_json(&campaign().join("partition-register-n3-w2-r2-siblings-t0"))["replay"].clone();
    assert_ne!(other.as_str(), Some(replay.as_str()), "each run has its own command");
    let words = shell_words(&replay);
    assert_eq!(words[0], WORKBENCH, "{replay}");
    let out = Command::new(&words[0]).args(&words[1..]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{replay}: {}", text(&out.stderr));
    let name = words.iter().position(|w| w == "--name").map(|i| words[i + 1].clone()).unwrap();
    let replayed = campaign().parent().unwrap().join(name);
    let runs: Vec<PathBuf> =
        std::fs::read_dir(&replayed).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    assert_eq!(runs.len(), 1, "the replay made one run: {runs:?}");
    let (a, b) =
        (std::fs::read(dir.join("history.jsonl")).unwrap(), std::fs::read(runs[0].join("history.jsonl")).unwrap());
    assert!(a.len() > 1_000, "a real history");
    assert!(a == b, "the replayed history differs from the run's ({} vs {} bytes)", a.len(), b.len());
}

#[test]
fn resuming_a_campaign_that_does_not_exist_exits_2_naming_where_it_looked() {
    let results = scratch("resume");
    let out = workbench(&[
        "campaign",
        "--backend",
        "sim",
        "--resume",
        "--name",
        "typo",
        "--results-dir",
        results.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&results.join("typo").display().to_string()), "names the directory: {stderr}");
    assert!(!results.join("typo").exists(), "nothing was started");
}

#[test]
fn a_quorum_pair_that_fits_no_n_is_refused_and_skipped_rows_are_named() {
    let out = workbench(&["campaign", "--backend", "sim", "--quorums", "2,2 4,4", "--dry-run"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--quorums pair 4,4") && stderr.contains("fits no --n (3)"), "{stderr}");
    let out = workbench(&["campaign", "--nodes", "5", "--n", "3,5", "--quorums", "2,2 4,4", "--dry-run"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("N3 W4 R4"), "the skipped row is named: {stderr}");
}

#[test]
fn check_reads_only_run_directories_this_workbench_wrote() {
    let dir = scratch("stranger");
    std::fs::create_dir_all(dir.join("someone-else")).unwrap();
    std::fs::write(dir.join("someone-else/run.json"), "{\"tool\": \"not ours\"}").unwrap();
    std::fs::write(dir.join("someone-else/history.jsonl"), "not a history\n").unwrap();
    std::fs::create_dir_all(dir.join("unrelated")).unwrap();
    let out = workbench(&["check", dir.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no run directory written by this workbench"), "{stderr}");
    assert!(stderr.contains("1 other directories with a run.json were skipped"), "{stderr}");
}

#[test]
fn check_prints_what_the_campaign_printed() {
    let out = workbench(&["check", campaign().to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("4 run directories written by this workbench"), "{stderr}");
    let summary = std::fs::read_to_string(campaign().join("summary.md")).unwrap();
    // Same shape: header, legend, tables (rows in matrix order), verdict.
    let shape = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with('#') || l.starts_with("| N") || l.starts_with("| column"))
            .map(String::from)
            .collect()
    };
    let rows = |s: &str| {
        shape(s)
            .into_iter()
            .filter(|l| l.starts_with("| N"))
            .map(|l| l.split('|').nth(1).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&stdout), rows(&summary), "rows in the campaign's order");
    assert_eq!(shape(&stdout).len(), shape(&summary).len(), "{stdout}\n---\n{summary}");
    for part in
        ["# Campaign c", "backend: sim", "| column | meaning |", "## verdict", "Every run is as valid as expected"]
    {
        assert!(stdout.contains(part), "{part:?} missing from check's output:\n{stdout}");
    }
}

#[test]
fn no_verdict_prints_rust_options_and_the_index_counts_every_anomaly() {
    let summary = std::fs::read_to_string(campaign().join("summary.md")).unwrap();
    let index = std::fs::read_to_string(campaign().join("index.html")).unwrap();
    assert!(summary.contains("found 0"), "a figure printed as a number: {summary}");
    for (name, page) in [("summary.md", &summary), ("index.html", &index)] {
        assert!(!page.contains("Some(") && !page.contains("None"), "{name}: {page}");
    }
    assert!(index.contains(" examples of ") && index.contains(" anomalies)"), "{index}");
}
