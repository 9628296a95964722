//! Bad `workbench campaign` flags are refused before anything starts.
//!
//! Each test runs the built binary with bad values of one flag family and
//! asserts what a user must see: exit code 2 (the documented code for bad
//! input), a message naming the flag and what it takes, no campaign
//! directory written, and no container or network created. Other engineers
//! may have containers running on the same engine, so the container check
//! looks for this campaign's own names (`dwb-c<tail of the name>-...`, see
//! `campaign::short_name`) rather than comparing counts. Nothing here needs
//! Docker to refuse; when no engine answers, the container check is skipped
//! (the refusal happened before any backend was chosen either way).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Distinguishes the campaigns of one test process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh campaign name, alphanumeric so its tail names its containers.
fn unique_name() -> String {
    format!("bad{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The container/network name stem the workbench would use for `name`.
fn short_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let tail: String = clean.chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
    format!("c{tail}")
}

/// Names of the labeled Docker objects (`ps -a` or `network ls`), or None without an engine.
fn labeled(kind: &[&str]) -> Option<String> {
    let out = Command::new("docker")
        .args(kind)
        .args(["--filter", "label=dynamo-workbench", "--format", "{{.Names}}"])
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `workbench campaign <args>` and asserts a refusal naming every `expected` text.
fn refused(args: &[&str], expected: &[&str]) {
    let name = unique_name();
    let results = std::env::temp_dir().join(format!("wb-bad-flags-{name}"));
    let out = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["campaign", "--name", &name, "--results-dir"])
        .arg(&results)
        .args(["--backend", "docker", "--time-limit", "1", "--quiet", "0"])
        .args(args)
        .output()
        .expect("the workbench binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?} must exit 2; stderr:\n{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "{args:?}: the message lacks {text:?}; stderr:\n{stderr}");
    }
    assert!(!results.join(&name).exists(), "{args:?} wrote a campaign directory");
    let stem = short_name(&name);
    for kind in [&["ps", "-a"][..], &["network", "ls"][..]] {
        if let Some(names) = labeled(kind) {
            assert!(!names.lines().any(|n| n.contains(&stem)), "{args:?} created Docker objects: {names}");
        }
    }
    let _ = std::fs::remove_dir_all(PathBuf::from(&results));
}

#[test]
fn counts_must_be_at_least_one() {
    refused(&["--concurrency", "0"], &["--concurrency", "0 is not in 1.."]);
    refused(&["--keys", "0"], &["--keys"]);
    refused(&["--test-count", "0"], &["--test-count"]);
    refused(&["--nodes", "0"], &["--nodes"]);
    refused(&["--n", "3,0"], &["--n"]);
    refused(&["--concurrency", "many"], &["--concurrency", "many"]);
}

#[test]
fn rates_and_fractions_have_ranges() {
    refused(&["--rate=-5"], &["--rate", "a number >= 0"]);
    refused(&["--read-fraction", "1.5"], &["--read-fraction", "0..=1"]);
    refused(&["--rmw-fraction", "x"], &["--rmw-fraction", "0..=1"]);
}

#[test]
fn quorums_are_w_r_pairs_that_fit_an_n() {
    refused(&["--quorums", "2"], &["--quorums", "not a W,R pair"]);
    refused(&["--quorums", "0,1"], &["--quorums", "W in \"0,1\""]);
    refused(&["--quorums", "4,4", "--n", "3"], &["--quorums", "1..=N"]);
    refused(&["--n", "5"], &["--n 5", "--nodes is 3"]);
}

#[test]
fn datacenters_must_split_the_nodes_and_place_what_they_hold() {
    refused(&["--quorums", "most,1"], &["--quorums", "one, all, local, each"]);
    refused(&["--replicas-per-dc", "1"], &["--replicas-per-dc", "--dcs 2 or more"]);
    refused(&["--nodes", "6", "--dcs", "4"], &["--dcs 4", "--nodes 6 evenly"]);
    refused(&["--nodes", "6", "--dcs", "2", "--n", "4"], &["--n", "--replicas-per-dc"]);
    refused(&["--nodes", "6", "--dcs", "2", "--replicas-per-dc", "4"], &["--replicas-per-dc 4", "3 nodes"]);
    refused(&["--nemesis", "dc-partition"], &["dc-partition", "--dcs 2 or more"]);
}

#[test]
fn resolution_lists_its_values() {
    refused(&["--resolution", "siblings,lwww"], &["--resolution", "siblings", "lww"]);
}

#[test]
fn switches_list_their_values() {
    for flag in ["--sloppy-quorum", "--hinted-handoff", "--read-repair", "--anti-entropy"] {
        refused(&[flag, "true,maybe"], &[flag, "default", "true", "false"]);
    }
}

#[test]
fn arrival_lists_its_values_and_an_open_loop_needs_a_rate() {
    refused(&["--arrival", "poisson"], &["--arrival", "closed", "open"]);
    refused(&["--arrival", "open", "--rate", "0"], &["--arrival open", "--rate"]);
}

#[test]
fn node_choice_lists_its_values() {
    refused(&["--node-choice", "sticky"], &["--node-choice", "fixed", "random"]);
}

#[test]
fn backend_lists_its_values() {
    refused(&["--backend", "kubernetes"], &["--backend", "auto", "docker", "local"]);
}

#[test]
fn nemesis_names_list_the_known_kinds() {
    refused(&["--nemesis", "none,kil+clock"], &["--nemesis", "kil", "partition", "membership"]);
}

#[test]
fn stores_workloads_storage_and_key_distribution_list_their_values() {
    refused(&["--stores", "dynamo,mysql"], &["--stores", "etcd-linearizable", "redis-replica"]);
    refused(&["--workload", "queue"], &["--workload", "register", "set"]);
    refused(&["--storage", "rocksdb"], &["--storage", "memory", "lsm"]);
    refused(&["--key-dist", "zipfian:-1"], &["--key-dist", "zipfian:<exponent >= 0>"]);
    refused(&["--stores", "etcd", "--workload", "set"], &["--workload register"]);
}

#[test]
fn resume_needs_a_name() {
    let results = std::env::temp_dir().join(format!("wb-bad-resume-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["campaign", "--resume", "--backend", "docker", "--results-dir"])
        .arg(&results)
        .output()
        .expect("the workbench binary runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume needs the --name"));
    assert!(!results.exists(), "nothing is written");
}

#[test]
fn help_lists_the_values() {
    let out = Command::new(env!("CARGO_BIN_EXE_workbench")).args(["campaign", "--help"]).output().expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    let listed = [
        "siblings, lww",
        "closed, open",
        "fixed, random",
        "memory, lsm",
        "- auto:",
        "- local:",
        "- register:",
        "- set:",
    ];
    for listed in listed {
        assert!(help.contains(listed), "--help lacks {listed:?}:\n{help}");
    }
    assert!(help.contains("none, partition, kill, pause, clock, latency, membership"), "{help}");
}
