//! Why `explore`'s parallel workers are processes, and the protocol
//! between a sweep and its worker processes.
//!
//! A simulation replays byte for byte only when nothing else in its
//! process spawns tokio tasks while it runs (`dynamo-sim`'s `task_ids`:
//! a crash drops a host's tasks in an order that follows their ids, which
//! come from one process-wide counter). Two simulations on two threads of
//! one process take ids from each other, so a sweep whose seeds ran side
//! by side could not be replayed by the one-seed command it printed (seen
//! on 3 of 40 swarm seeds, each combining kills with latency). So with
//! `--jobs` above 1 each worker thread runs its seeds in a child process,
//! one seed at a time: this same binary and command line with `--name` set
//! to the sweep's and `--worker-seed S` added. The child runs that seed's
//! runs alone, writes their run directories where the sweep would, and
//! prints one [`RowRecord`] per run as a JSON line on stdout; its stderr
//! (the progress lines) passes through.

use std::ffi::OsString;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::record::RowRecord;
use super::SeedRow;

/// The hidden flag that makes `explore` a worker of one seed.
pub const WORKER_SEED_FLAG: &str = "--worker-seed";

/// The command line of a worker for `seed`: this process's own, with
/// `--name` replaced by the sweep's `name` and the worker flag added.
pub fn worker_argv(own: &[OsString], name: &str, seed: u64) -> Vec<OsString> {
    let mut argv = Vec::with_capacity(own.len() + 4);
    let mut skip_value = false;
    for arg in own {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let text = arg.to_string_lossy();
        if text == "--name" {
            skip_value = true;
            continue;
        }
        if text.starts_with("--name=") {
            continue;
        }
        argv.push(arg.clone());
    }
    argv.extend(["--name".into(), name.into(), WORKER_SEED_FLAG.into(), seed.to_string().into()]);
    argv
}

/// Runs `seed` in a worker process; its rows, in the order it ran them.
pub fn run_seed(name: &str, seed: u64, flag_measured: bool) -> Result<Vec<SeedRow>> {
    let exe = std::env::current_exe().context("cannot find this workbench binary to start a worker")?;
    let own: Vec<OsString> = std::env::args_os().skip(1).collect();
    let output = Command::new(&exe)
        .args(worker_argv(&own, name, seed))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start the worker of seed {seed} ({})", exe.display()))?;
    if !output.status.success() {
        bail!("the worker of seed {seed} failed ({})", output.status);
    }
    parse_rows(&String::from_utf8_lossy(&output.stdout), flag_measured)
        .with_context(|| format!("the worker of seed {seed} printed no rows it should have"))
}

/// The rows a worker printed: one JSON [`RowRecord`] per line.
pub fn parse_rows(stdout: &str, flag_measured: bool) -> Result<Vec<SeedRow>> {
    let mut rows = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let record: RowRecord = serde_json::from_str(line).with_context(|| format!("not a row record: {line:?}"))?;
        rows.push(record.row(flag_measured));
    }
    if rows.is_empty() {
        bail!("no rows");
    }
    Ok(rows)
}

/// What a worker prints for one row.
pub fn row_line(row: &SeedRow) -> String {
    serde_json::to_string(&RowRecord::of(row)).expect("a row record serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_command_is_the_sweeps_with_its_name_and_seed() {
        let own: Vec<OsString> = ["explore", "--seeds", "1..9", "--name", "mine", "--jobs", "2", "--name=other"]
            .map(OsString::from)
            .to_vec();
        let argv: Vec<String> = worker_argv(&own, "sweep-1", 7).iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(argv, ["explore", "--seeds", "1..9", "--jobs", "2", "--name", "sweep-1", "--worker-seed", "7"]);
    }

    #[test]
    fn rows_parse_back_and_garbage_is_an_error() {
        assert!(parse_rows("", false).is_err(), "a worker that printed nothing failed");
        assert!(parse_rows("{not json", false).is_err());
    }
}
