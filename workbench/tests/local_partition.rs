//! Local processes partition for real: a short campaign on `--backend
//! local` with `--nemesis partition`, performed by the link proxies in
//! front of the nodes, finds stale reads under W=R=1 and none under
//! W=R=2 (the campaign's own expectations, `--expect-anomalies`, which
//! fail it otherwise), and `run.json` and the history say the proxies did
//! it.
//!
//! Needs a built `dynamo-node` (`cargo build --release -p dynamo-node`, or
//! `$DWB_NODE_BINARY`); without one it says so and passes.

use std::path::Path;
use std::process::Command;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn partitions_on_local_processes_yield_stale_reads_under_weak_quorums_only() {
    let Some(binary) = docker::find_node_binary() else {
        eprintln!("SKIP: no dynamo-node binary (cargo build --release -p dynamo-node, or set DWB_NODE_BINARY)");
        return;
    };
    let results = std::env::temp_dir().join(format!("dwb-local-partition-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&results);
    let out = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["campaign", "--name", "lp", "--backend", "local", "--node-binary"])
        .arg(&binary)
        .arg("--results-dir")
        .arg(&results)
        .args([
            "--quorums",
            "1,1 2,2",
            "--nemesis",
            "partition",
            "--time-limit",
            "8",
            "--quiet",
            "2",
            "--expect-anomalies",
        ])
        .output()
        .expect("workbench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "campaign failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("stale reads under partitions (W+R<=N)"), "{stdout}");
    for run in ["partition-register-n3-w1-r1-siblings", "partition-register-n3-w2-r2-siblings"] {
        let dir = results.join("lp").join(run);
        assert_eq!(json(&dir.join("run.json"))["fault_mechanisms"]["partition"], "linkproxy", "{run}");
        let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
        let starts: Vec<&str> = history.lines().filter(|l| l.contains("\"f\":\"start-partition\"")).collect();
        assert!(
            !starts.is_empty() && starts.iter().all(|l| l.contains("\"mechanism\":\"linkproxy\"")),
            "{run}: {starts:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&results);
}
