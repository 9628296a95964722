//! The campaign's tables: one per nemesis and workload, one row per
//! configuration (and repetition).
//!
//! Rows are built from `run.json` and `results.json` only, so the same
//! tables come out of a live campaign and of `workbench check` re-reading
//! the run directories later. Figures a run does not have print as `-`.
//!
//! What one run left behind, an [`Outcome`], is defined here with the rows
//! it becomes: the campaign builds one per run and both this module's
//! tables and the campaign's `index.html` ([`crate::index`]) read them.

use std::collections::BTreeMap;

use checker::{Results, Validity};
use history::RunConfig;
use serde_json::Value;
use tabled::settings::Style;
use tabled::{Table, Tabled};

/// What one run left behind.
pub struct Outcome {
    /// Its `run.json`.
    pub run: RunConfig,
    /// Its directory name.
    pub dir_name: String,
    /// None: the run could not be performed on this backend.
    pub results: Option<Results>,
    /// Why it was not performed.
    pub unsupported: Option<String>,
}

/// What the columns mean, printed above the tables: one line per column,
/// then what a verdict means. The README shows it verbatim (a test checks).
pub const LEGEND: &str = "\
| column | meaning |
| --- | --- |
| config | N replicas per key, W write acks, R read replies, conflict resolution (`siblings` or `lww`), switches set |
| (strict) / (weak) | strict: W + R > N and no sloppy quorum, so every read quorum meets every write quorum; weak: otherwise |
| ops | client operations invoked: reads, writes, deletes, adds |
| ok % | % of ops the store confirmed |
| info % | % of ops whose outcome is unknown (timeout, lost connection): they may or may not have taken effect |
| stale | reads that missed a write acknowledged before they began |
| RYW | read-your-writes violations: a client's read missed that client's own acknowledged write |
| mono | monotonic-read violations: a client read something older than it had already read |
| lin | register: `yes`, `NO k/d` (k of d decided keys are not linearizable) or `unknown`; a measurement, never promised |
| lost | set: acknowledged adds absent from every final read / adds checked |
| clock | set: of the lost adds, those lost to a later-stamped earlier write (a skewed clock under `lww`) |
| prefix | prefix: observers that read an answer and then missed its question / observations |
| 1-ver % | % of reads that returned at most one version |
| P(stale) meas/pred/cf | P(a read misses a write) soonest after its ack: measured / PBS from the nodes' latencies / closed form |
| PBS RMSE % | root mean square of PBS's predicted minus measured P(covered) over the t-visibility bins, in points |
| read p50/p99 ms | latency of the `ok` reads, median / 99th percentile |
| write p50/p99 ms | latency of the `ok` writes (adds, for the set workload), median / 99th percentile |
| conv ms after writes | ms from the end of the writes (the final reads) until every range's Merkle roots agree on all replicas |
| valid | `yes`: every promise this configuration makes held; `NO`: one did not; `unknown`: a checker could not decide |

A weak row (W + R <= N) with stale reads is still `valid: yes`: such a setting promises no overlap between \
the replicas a write reached and those a read asks, so its stale reads are measured, not broken promises. \
A strict row with a single stale read or read-your-writes violation is `valid: NO`. Monotonic reads and \
linearizability are promised by no quorum setting: always measured. Lost adds break a promise only under \
`siblings` (union merge keeps every add); under `lww` they are measured (concurrent read-merge-writes \
overwrite each other by design).

`lin: unknown` under `siblings` (the default campaign): a read that returned several versions at once is \
not a read of one register, so a key with such reads cannot be decided, and no violation was found on the \
keys that could. It says nothing against the run. Under `lww` every read returns one version and every key \
is decided.

";

/// One line of a summary table.
#[derive(Debug, Clone, Tabled)]
pub struct Row {
    /// N/W/R, resolution, switches, strict or weak.
    #[tabled(rename = "config")]
    pub config: String,
    /// Client ops.
    #[tabled(rename = "ops")]
    pub ops: String,
    /// % ok.
    #[tabled(rename = "ok %")]
    pub ok_pct: String,
    /// % info.
    #[tabled(rename = "info %")]
    pub info_pct: String,
    /// Stale reads.
    #[tabled(rename = "stale")]
    pub stale: String,
    /// Read-your-writes violations.
    #[tabled(rename = "RYW")]
    pub ryw: String,
    /// Monotonic-read violations.
    #[tabled(rename = "mono")]
    pub monotonic: String,
    /// Linearizable (register): yes, NO (with violating keys / decided
    /// keys), unknown, or `-` where it does not apply.
    #[tabled(rename = "lin")]
    pub linearizable: String,
    /// Lost adds / checked adds.
    #[tabled(rename = "lost")]
    pub lost: String,
    /// Lost adds attributed to clocks.
    #[tabled(rename = "clock")]
    pub lost_to_clock: String,
    /// Consistent-prefix violations / observations (prefix workload).
    #[tabled(rename = "prefix")]
    pub prefix: String,
    /// % single-version reads.
    #[tabled(rename = "1-ver %")]
    pub single_version: String,
    /// Measured vs PBS staleness.
    #[tabled(rename = "P(stale) meas/pred/cf")]
    pub p_stale: String,
    /// RMSE of the PBS prediction against the measured t-visibility curve.
    #[tabled(rename = "PBS RMSE %")]
    pub pbs_rmse: String,
    /// Read p50/p99.
    #[tabled(rename = "read p50/p99 ms")]
    pub read_latency: String,
    /// Write or add p50/p99.
    #[tabled(rename = "write p50/p99 ms")]
    pub write_latency: String,
    /// Convergence time after the writes stop (`converged_ms_after_writes_stop`;
    /// `results.json` also has `converged_ms_after_heal`, which no column shows).
    #[tabled(rename = "conv ms after writes")]
    pub convergence: String,
    /// Verdict.
    #[tabled(rename = "valid")]
    pub valid: String,
}

/// What a run is, as a table's first column: `N3 W2 R2 siblings (strict)`.
pub fn config_label(run: &RunConfig) -> String {
    let quorum = if run.is_strict_quorum() { "strict" } else { "weak" };
    if run.labels.store != "dynamo" {
        return format!("{} ({} members, {quorum})", run.labels.store, run.nodes.len());
    }
    let mut label = format!(
        "N{}{} {} {} {}",
        run.n,
        dcs_label(run),
        quorum_label("W", run.topology.w_quorum.as_deref(), run.w),
        quorum_label("R", run.topology.r_quorum.as_deref(), run.r),
        run.resolution.as_str()
    );
    for (flag, on) in run.labels.switches_passed.passed() {
        label.push_str(&format!(" {}:{}", flag.trim_start_matches("--"), if on { "on" } else { "off" }));
    }
    if run.labels.test_index > 0 {
        label.push_str(&format!(" #{}", run.labels.test_index));
    }
    format!("{label} ({quorum})")
}

/// `W2`, or `W=local` for a word.
fn quorum_label(name: &str, word: Option<&str>, count: u32) -> String {
    match word {
        Some(word) => format!("{name}={word}"),
        None => format!("{name}{count}"),
    }
}

/// ` (2 DCs x 2)`: the datacenters and each one's replicas; empty for one DC.
fn dcs_label(run: &RunConfig) -> String {
    let Some(per_dc) = run.topology.replicas_per_dc.as_ref().filter(|_| run.topology.is_multi_dc()) else {
        return String::new();
    };
    let counts: std::collections::BTreeSet<u32> = per_dc.values().copied().collect();
    match counts.iter().collect::<Vec<_>>().as_slice() {
        [k] => format!(" ({} DCs x {k})", per_dc.len()),
        _ => format!(" ({})", per_dc.iter().map(|(dc, k)| format!("{dc}={k}")).collect::<Vec<_>>().join(",")),
    }
}

/// The nemesis part of a table's title.
pub fn nemesis_label(run: &RunConfig) -> String {
    if run.nemesis.is_empty() {
        "none".into()
    } else {
        run.nemesis.join("+")
    }
}

/// The table a run belongs to: nemesis and workload.
pub fn group_label(run: &RunConfig) -> String {
    format!("nemesis: {} / workload: {}", nemesis_label(run), run.workload)
}

fn pointer<'a>(results: &'a Results, checker: &str, path: &str) -> Option<&'a Value> {
    let result = results.checkers.get(checker)?;
    let mut parts = path.split('/');
    let first = result.figures.get(parts.next()?)?;
    parts.try_fold(first, |v, p| v.get(p))
}

fn int(results: &Results, checker: &str, path: &str) -> String {
    pointer(results, checker, path).and_then(Value::as_u64).map_or("-".into(), |v| v.to_string())
}

fn pct(results: &Results, checker: &str, path: &str, scale: f64) -> String {
    pointer(results, checker, path).and_then(Value::as_f64).map_or("-".into(), |v| format!("{:.1}", v * scale))
}

fn ms(results: &Results, f: &str) -> String {
    let get = |p: &str| {
        pointer(results, "latency", &format!("by_f/{f}/ok/{p}"))
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |v| format!("{v:.1}"))
    };
    format!("{}/{}", get("p50_ms"), get("p99_ms"))
}

/// `yes`, `NO` or `unknown`.
pub fn validity_label(v: Validity) -> &'static str {
    match v {
        Validity::True => "yes",
        Validity::False => "NO",
        Validity::Unknown => "unknown",
    }
}

fn p_stale(results: &Results) -> String {
    let get =
        |k| pointer(results, "t-visibility", k).and_then(Value::as_f64).map_or("-".to_string(), |v| format!("{v:.2}"));
    format!("{}/{}/{}", get("p_stale_first_bin"), get("p_stale_first_bin_predicted"), get("pbs_p_stale"))
}

fn lost(results: &Results) -> String {
    if !results.checkers.contains_key("lost-writes") {
        return "-".into();
    }
    format!("{}/{}", int(results, "lost-writes", "lost"), int(results, "lost-writes", "checked_adds"))
}

/// `violations/observations` of the consistent-prefix checker, or `-`.
fn prefix(results: &Results) -> String {
    let name = checker::consistent_prefix::NAME;
    if !results.checkers.contains_key(name) {
        return "-".into();
    }
    format!("{}/{}", int(results, name, "violations"), int(results, name, "observations"))
}

/// `yes`, `NO 2/5` (keys not linearizable / keys decided), `unknown`, or `-`.
fn linearizable(results: &Results) -> String {
    let answer = pointer(results, "linearizable", "linearizable");
    let decided = int(results, "linearizable", "keys_decided");
    let violating = pointer(results, "linearizable", "keys_violating").and_then(Value::as_array).map_or(0, Vec::len);
    match answer {
        Some(Value::Bool(true)) => "yes".into(),
        Some(Value::Bool(false)) => format!("NO {violating}/{decided}"),
        Some(_) => "unknown".into(),
        None => "-".into(),
    }
}

/// A row from a run's config and results.
pub fn row(run: &RunConfig, results: &Results) -> Row {
    let write_f = if run.workload == "set" { "add" } else { "write" };
    Row {
        config: config_label(run),
        ops: int(results, "stats", "total"),
        ok_pct: pct(results, "stats", "ok_pct", 1.0),
        info_pct: pct(results, "stats", "info_pct", 1.0),
        stale: int(results, "stale-reads", "stale"),
        ryw: int(results, "read-your-writes", "violations"),
        monotonic: int(results, "monotonic-reads", "violations"),
        linearizable: linearizable(results),
        lost: lost(results),
        lost_to_clock: int(results, "lost-writes", "lost_to_clock"),
        prefix: prefix(results),
        single_version: pct(results, "siblings", "single_version_fraction", 100.0),
        p_stale: p_stale(results),
        pbs_rmse: pointer(results, "t-visibility", "pbs_rmse")
            .and_then(Value::as_f64)
            .map_or("-".into(), |e| format!("{:.2}", e * 100.0)),
        read_latency: ms(results, "read"),
        write_latency: ms(results, write_f),
        convergence: int(results, "convergence", "converged_ms_after_writes_stop"),
        valid: validity_label(results.valid).into(),
    }
}

/// A row for a run that could not be performed (e.g. partitions on local processes).
pub fn unsupported_row(run: &RunConfig, why: &str) -> Row {
    let dash = || "-".to_string();
    Row {
        config: config_label(run),
        ops: dash(),
        ok_pct: dash(),
        info_pct: dash(),
        stale: dash(),
        ryw: dash(),
        monotonic: dash(),
        linearizable: dash(),
        lost: dash(),
        lost_to_clock: dash(),
        prefix: dash(),
        single_version: dash(),
        p_stale: dash(),
        pbs_rmse: dash(),
        read_latency: dash(),
        write_latency: dash(),
        convergence: dash(),
        valid: format!("unsupported: {why}"),
    }
}

/// Rows grouped by table, in run order within each table.
pub fn group<'a>(
    runs: impl Iterator<Item = (&'a RunConfig, Option<&'a Results>, Option<&'a str>)>,
) -> BTreeMap<String, Vec<Row>> {
    let mut groups: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (run, results, why) in runs {
        let row = match results {
            Some(results) => row(run, results),
            None => unsupported_row(run, why.unwrap_or("unsupported")),
        };
        groups.entry(group_label(run)).or_default().push(row);
    }
    groups
}

/// Renders `groups`: a heading and a markdown table each.
pub fn render(groups: &BTreeMap<String, Vec<Row>>) -> String {
    let mut out = String::new();
    for (title, rows) in groups {
        out.push_str(&format!("## {title}\n\n"));
        out.push_str(&Table::new(rows).with(Style::markdown()).to_string());
        out.push_str("\n\n");
    }
    out
}
