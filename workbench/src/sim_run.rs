//! One run under `--backend sim`: the same [`run::drive`] as on Docker, as
//! the harness of a deterministic simulation (`dynamo-sim`).
//!
//! The simulation owns its thread (each simulated host has its own
//! single-threaded tokio runtime, which cannot nest in the campaign's), and
//! the campaign awaits it. Everything after the run (checkers, tables,
//! plots, `workbench check`) is the Docker path's: the run directory is the
//! same, with `run.json` saying `"backend": "sim"` and, in `extra`, what the
//! simulation cost (`sim`); the one command that replays it (`replay`) is
//! the campaign's ([`crate::replay`]).
//! The nodes' logs, stamped with simulated time, are `logs/sim.log`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use docker::Cluster;
use dynamo_sim::{SimReport, SimSpec};
use history::RunConfig;
use serde_json::json;

use crate::json_file::write_json;
use crate::run;
use crate::spec::RunSpec;

/// Simulated time past the run's own phases before it is declared hung
/// (final reads, replica reads, a slow heal).
const SLACK_S: u64 = 300;
/// Stack of the simulation thread: deep futures (tonic in tonic) in debug builds.
const STACK_BYTES: usize = 64 << 20;

/// What `run.json` records as the image.
pub fn image() -> String {
    format!("dynamo-node {} library under turmoil (one process)", env!("CARGO_PKG_VERSION"))
}

/// How this workbench was invoked (`target/release/workbench`, or
/// `target/release/workbench-planted` for a planted build, whose seeds only
/// it replays), quoted for a shell.
pub fn program() -> String {
    shell_word(&std::env::args().next().unwrap_or_else(|| "target/release/workbench".into()))
}

/// `arg` quoted for a POSIX shell when it needs it.
pub fn shell_word(arg: &str) -> String {
    let plain = arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_=.,/:+".contains(c));
    if plain && !arg.is_empty() {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// The simulation of `spec`.
pub fn sim_spec(spec: &RunSpec, log_path: Option<PathBuf>) -> SimSpec {
    let phases_s = spec.knobs.total_s();
    SimSpec {
        seed: spec.seed,
        nodes: spec.node_ids(),
        node_args: spec.node_args(),
        log_path,
        limit: std::time::Duration::from_secs(phases_s + SLACK_S),
    }
}

/// Runs `spec` in a simulation writing into `dir`; records the storage, the
/// cost in `run` (and `run.json`, whose replay command the campaign wrote).
pub async fn drive(spec: &RunSpec, dir: &Path, run: &mut RunConfig) -> Result<PathBuf> {
    if !RUNTIMES_SEEDED {
        tracing::warn!("built without --cfg tokio_unstable (a RUSTFLAGS in the environment replaces .cargo/config.toml's): this run will not replay byte for byte");
    }
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let (history, status, report) = simulate(spec, dir, Some(logs.join("sim.log"))).await?;
    if let Some(status) = status {
        run::apply_status(&status, run);
    }
    run.extra.insert("sim".into(), report_json(&report));
    spec.record_mechanisms(run, dynamo_sim::SimCluster::mechanism);
    write_json(&dir.join(history::files::RUN), &*run)?;
    Ok(history)
}

/// `run.json`'s account of what the simulation cost.
pub fn report_json(report: &SimReport) -> serde_json::Value {
    json!({
        "sim_seconds": report.sim_elapsed.as_secs_f64(),
        "wall_seconds": report.wall.as_secs_f64(),
        "sim_seconds_per_wall_second": report.speedup(),
        "steps": report.steps,
        "replayable": RUNTIMES_SEEDED,
    })
}

/// Whether every simulated host's tokio runtime takes its RNG seed from the
/// run's seed (`select!` picks branches at random otherwise). It needs
/// `--cfg tokio_unstable`, which `.cargo/config.toml` sets; a `RUSTFLAGS`
/// in the environment replaces that setting, and then a seed no longer
/// replays byte for byte, which `run.json` records and [`drive`] warns of.
pub const RUNTIMES_SEEDED: bool = cfg!(tokio_unstable);

/// What one simulation left: the history's path, what the nodes reported
/// in force (`Admin.Status`), and the cost.
pub type Simulated = (PathBuf, Option<proto::StatusResponse>, SimReport);

/// The simulation itself, on its own thread (see [`simulate_here`]).
pub async fn simulate(spec: &RunSpec, dir: &Path, log: Option<PathBuf>) -> Result<Simulated> {
    let (spec, dir) = (spec.clone(), dir.to_path_buf());
    let (tx, rx) = tokio::sync::oneshot::channel();
    sim_thread(format!("sim-{}", spec.seed))
        .spawn(move || {
            let _ = tx.send(simulate_here(&spec, &dir, log));
        })
        .context("cannot start the simulation thread")?;
    rx.await.map_err(|_| anyhow!("the simulation thread panicked"))?
}

/// Runs the simulation of `spec` on the calling thread, which must be in no
/// tokio runtime (`explore`'s workers call it directly).
pub fn simulate_here(spec: &RunSpec, dir: &Path, log: Option<PathBuf>) -> Result<Simulated> {
    let sim = sim_spec(spec, log);
    let (spec, dir) = (spec.clone(), dir.to_path_buf());
    let ((history, storage), report) = dynamo_sim::simulate(&sim, move |cluster| harness(spec, dir, cluster))?;
    Ok((history, storage, report))
}

/// A thread able to run a simulation (a deep stack), named `name`.
pub fn sim_thread(name: String) -> std::thread::Builder {
    std::thread::Builder::new().name(name).stack_size(STACK_BYTES)
}

/// The harness: what `campaign` does against a real cluster, inside the simulation.
async fn harness(
    spec: RunSpec,
    dir: PathBuf,
    cluster: Arc<dynamo_sim::SimCluster>,
) -> Result<(PathBuf, Option<proto::StatusResponse>), String> {
    let cluster: Arc<dyn Cluster> = cluster;
    let status = run::node_status(cluster.as_ref()).await;
    let history = run::drive(&spec, cluster, &dir).await.map_err(|e| format!("{e:#}"))?;
    Ok((history, status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::tests::matrix;

    /// A short simulated run of the register workload under partitions and
    /// kills, with `seed`, in its own directory.
    fn spec(seed: u64) -> RunSpec {
        let mut m = matrix();
        m.node_count = 3;
        m.ns = vec![3];
        m.quorums = crate::matrix::count_pairs(&[(2, 2)]);
        m.resolutions = vec![history::Resolution::Siblings];
        m.workloads = vec![crate::spec::WorkloadKind::Register];
        m.nemeses = vec!["partition+kill+clock".parse().unwrap()];
        m.test_count = 1;
        m.knobs.warmup_s = 1;
        m.knobs.time_limit_s = 4;
        m.knobs.quiet_s = 1;
        m.seed = seed;
        m.runs().remove(0)
    }

    fn history_of(seed: u64, attempt: &str) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("wb-sim-det-{}-{seed}-{attempt}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (history, _, report) = simulate_here(&spec(seed), &dir, None).expect("the simulation runs");
        assert!(report.sim_elapsed.as_millis() >= 5_900, "the whole 6 s schedule was simulated: {report:?}");
        let bytes = std::fs::read(history).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        bytes
    }

    #[test]
    fn same_seed_same_history_byte_for_byte_and_another_seed_differs() {
        let (a, b, c) = (history_of(7, "a"), history_of(7, "b"), history_of(8, "c"));
        assert!(a.len() > 1_000, "a real history ({} bytes)", a.len());
        if a != b {
            let (ta, tb) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
            let first = ta.lines().zip(tb.lines()).position(|(x, y)| x != y);
            let line = first.map(|i| (ta.lines().nth(i).unwrap().to_string(), tb.lines().nth(i).unwrap().to_string()));
            panic!("seed 7 replayed differently; first differing line {first:?}: {line:?}");
        }
        assert_ne!(a, c, "seed 8 gives another history");
    }
}
