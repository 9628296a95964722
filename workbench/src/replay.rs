//! The one command that replays one run, recorded in its `run.json`
//! (`replay`).
//!
//! It is built from the run's own [`RunSpec`], never from the campaign's
//! command line: every dimension of the matrix is pinned to this run's value
//! (one `--n`, one `--quorums` pair, one `--resolution`, one setting of each
//! switch, one `--workload`, one `--nemesis`, `--test-count 1` and the run's
//! own seed, which for repetition `i` is the campaign's seed plus `i`), and
//! every knob is written out, defaults included, so the command means the
//! same even if a default changes. A run whose nemesis schedules were given
//! (`--schedule`, or a shrink's) is replayed from a schedules file: the
//! `schedule.json` its directory holds.
//!
//! Under the simulator the replay's `history.jsonl` is byte-identical to the
//! run's (`workbench/tests/newcomer.rs` checks that); on Docker or local
//! processes it runs the same configuration again, on a real cluster, with
//! the same seeded workload and fault schedule. An SSH run's replay names its
//! hosts and SSH flags ([`ReplayContext::backend_args`], from
//! [`crate::ssh_args::SshArgs::replay_flags`]: paths, never a key's
//! contents), so it runs on the same hosts.

use std::path::Path;

use crate::sim_run::{program, shell_word};
use crate::spec::RunSpec;
use crate::store::Store;

/// Where the campaign ran and what the replay must match besides the spec.
pub struct ReplayContext<'a> {
    /// `--backend` of the replay (`sim`, `docker`, `local`, `ssh`).
    pub backend: &'a str,
    /// The flags after `--backend` that say where its nodes run (an SSH
    /// run's `--hosts` and `--ssh-*`); empty for the other backends.
    pub backend_args: &'a [String],
    /// The campaign's `--results-dir`.
    pub results_dir: &'a Path,
    /// The replay's `--name`.
    pub name: &'a str,
    /// Whether the campaign required the known anomalies (`--expect-anomalies`).
    pub expect_anomalies: bool,
    /// The schedules file to replay, used when the run's schedules were given
    /// (`--schedule`) rather than drawn from its seed.
    pub schedule_file: &'a Path,
}

/// The command line (program included, shell-quoted) that replays `spec`.
pub fn replay_command(spec: &RunSpec, cx: &ReplayContext<'_>) -> String {
    let words: Vec<String> = replay_args(spec, cx).iter().map(|a| shell_word(a)).collect();
    format!("{} {}", program(), words.join(" "))
}

/// The arguments (after the program) that replay `spec`.
pub fn replay_args(spec: &RunSpec, cx: &ReplayContext<'_>) -> Vec<String> {
    let mut args = vec!["campaign".to_string(), "--backend".to_string(), cx.backend.to_string()];
    args.extend(cx.backend_args.iter().cloned());
    let mut flag = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    flag("name", cx.name.into());
    if cx.results_dir != Path::new("results") {
        flag("results-dir", cx.results_dir.display().to_string());
    }
    flag("nodes", spec.node_count.to_string());
    flag("stores", spec.store.as_str().into());
    if spec.store == Store::Dynamo {
        flag("n", spec.n.to_string());
        flag("quorums", format!("{},{}", spec.w, spec.r));
        flag("resolution", spec.resolution.as_str().into());
    }
    for (name, value) in spec.switches.passed() {
        flag(name.trim_start_matches("--"), value.to_string());
    }
    if let Some(storage) = spec.storage {
        flag("storage", storage.as_str().into());
    }
    if let Some(fsync) = spec.fsync {
        flag("fsync", fsync.as_str().into());
    }
    flag("workload", spec.workload.as_str().into());
    flag("nemesis", spec.nemesis.label());
    flag("seed", spec.seed.to_string());
    args.extend(knob_args(spec));
    if spec.schedule_override.is_some() {
        args.push("--schedule".into());
        args.push(cx.schedule_file.display().to_string());
    }
    if cx.expect_anomalies {
        args.push("--expect-anomalies".into());
    }
    if !crate::planted::bugs().is_empty() {
        args.push("--allow-planted-bugs".into());
    }
    args
}

/// Every knob of `spec`, as flags, defaults included.
fn knob_args(spec: &RunSpec) -> Vec<String> {
    let k = &spec.knobs;
    let mut pairs = vec![
        ("warmup", k.warmup_s.to_string()),
        ("time-limit", k.time_limit_s.to_string()),
        ("quiet", k.quiet_s.to_string()),
        ("concurrency", k.concurrency.to_string()),
        ("rate", k.rate.to_string()),
        ("arrival", k.arrival.as_str().to_string()),
        ("keys", k.keys.to_string()),
        ("key-dist", k.key_distribution.label()),
        ("node-choice", k.node_choice.as_str().to_string()),
        ("read-fraction", k.read_fraction.to_string()),
        ("rmw-fraction", k.rmw_fraction.to_string()),
        ("request-timeout-ms", k.request_timeout_ms.to_string()),
        ("client-timeout-ms", k.client_timeout_ms.to_string()),
        ("refused-backoff-ms", k.refused_backoff_ms.to_string()),
    ];
    if let Some(batching) = k.replica_batching {
        pairs.push(("replica-batching", batching.to_string()));
    }
    if let Some(bytes) = k.memtable_bytes {
        pairs.push(("memtable-bytes", bytes.to_string()));
    }
    pairs.into_iter().flat_map(|(name, value)| [format!("--{name}"), value]).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::matrix::tests::matrix;

    /// The context of a simulated campaign `c` (also the args tests').
    pub(crate) fn context<'a>(dir: &'a Path) -> ReplayContext<'a> {
        ReplayContext {
            backend: "sim",
            backend_args: &[],
            results_dir: Path::new("results"),
            name: "c-replay",
            expect_anomalies: true,
            schedule_file: dir,
        }
    }

    #[test]
    fn each_run_gets_its_own_configuration_and_seed() {
        let runs = matrix().runs();
        let run = runs.iter().find(|r| r.test_index == 1 && r.n == 5 && r.w == 4).expect("a repetition with N5 W4 R1");
        let dir = Path::new("results/c").join(&run.name);
        let args = replay_args(run, &context(&dir)).join(" ");
        for expected in ["--n 5", "--quorums 4,1", &format!("--seed {}", run.seed), "--time-limit 10", "--keys 3"] {
            assert!(args.contains(expected), "{expected:?} missing from {args}");
        }
        assert_eq!(run.seed, 43, "repetition 1 runs with the campaign's seed + 1");
        assert!(args.contains(&format!("--nemesis {}", run.nemesis.label())), "{args}");
        assert!(!args.contains("--test-count") && !args.contains("--schedule"), "{args}");
        let others: Vec<String> =
            runs.iter().filter(|r| r.name != run.name).map(|r| replay_args(r, &context(&dir)).join(" ")).collect();
        assert!(!others.contains(&args), "no other run has the same replay");
    }
}
