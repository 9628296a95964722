//! The campaign's tables: one per nemesis, one row per configuration.
//!
//! Rows are built from `run.json` and `results.json` only, so the same
//! tables come out of a live campaign and of `workbench check` re-reading
//! the run directories later. Figures a run does not have print as `-`.

use std::collections::BTreeMap;

use checker::{Results, Validity};
use history::RunConfig;
use serde_json::Value;
use tabled::settings::Style;
use tabled::{Table, Tabled};

/// One line of a summary table.
#[derive(Debug, Clone, Tabled)]
pub struct Row {
    #[tabled(rename = "config")]
    pub config: String,
    #[tabled(rename = "ops")]
    pub ops: String,
    #[tabled(rename = "ok %")]
    pub ok_pct: String,
    #[tabled(rename = "fail %")]
    pub fail_pct: String,
    #[tabled(rename = "info %")]
    pub info_pct: String,
    #[tabled(rename = "stale reads")]
    pub stale: String,
    #[tabled(rename = "RYW viol.")]
    pub ryw: String,
    #[tabled(rename = "monotonic viol.")]
    pub monotonic: String,
    #[tabled(rename = "read p50/p99 ms")]
    pub read_latency: String,
    #[tabled(rename = "write p50/p99 ms")]
    pub write_latency: String,
    #[tabled(rename = "valid")]
    pub valid: String,
}

/// What a run is, as a table's first column: `N3 W2 R2 siblings (strict)`.
pub fn config_label(run: &RunConfig) -> String {
    let quorum = if run.is_strict_quorum() { "strict" } else { "weak" };
    format!("N{} W{} R{} {} ({quorum})", run.n, run.w, run.r, run.resolution.as_str())
}

/// The table a run belongs to.
pub fn nemesis_label(run: &RunConfig) -> String {
    if run.nemesis.is_empty() {
        "none".into()
    } else {
        run.nemesis.join("+")
    }
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

fn pct(results: &Results, checker: &str, path: &str) -> String {
    pointer(results, checker, path).and_then(Value::as_f64).map_or("-".into(), |v| format!("{v:.1}"))
}

fn ms(results: &Results, f: &str) -> String {
    let get = |p: &str| {
        pointer(results, "latency", &format!("by_f/{f}/ok/{p}"))
            .and_then(Value::as_f64)
            .map_or("-".to_string(), |v| format!("{v:.1}"))
    };
    format!("{}/{}", get("p50_ms"), get("p99_ms"))
}

pub fn validity_label(v: Validity) -> &'static str {
    match v {
        Validity::True => "yes",
        Validity::False => "NO",
        Validity::Unknown => "unknown",
    }
}

pub fn row(run: &RunConfig, results: &Results) -> Row {
    Row {
        config: config_label(run),
        ops: int(results, "stats", "total"),
        ok_pct: pct(results, "stats", "ok_pct"),
        fail_pct: pct(results, "stats", "fail_pct"),
        info_pct: pct(results, "stats", "info_pct"),
        stale: int(results, "stale-reads", "stale"),
        ryw: int(results, "read-your-writes", "violations"),
        monotonic: int(results, "monotonic-reads", "violations"),
        read_latency: ms(results, "read"),
        write_latency: ms(results, "write"),
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
        fail_pct: dash(),
        info_pct: dash(),
        stale: dash(),
        ryw: dash(),
        monotonic: dash(),
        read_latency: dash(),
        write_latency: dash(),
        valid: format!("unsupported: {why}"),
    }
}

/// Renders `rows` grouped by nemesis: a heading and a table each, in markdown.
pub fn render(groups: &BTreeMap<String, Vec<Row>>) -> String {
    let mut out = String::new();
    for (nemesis, rows) in groups {
        out.push_str(&format!("## nemesis: {nemesis}\n\n"));
        out.push_str(&Table::new(rows).with(Style::markdown()).to_string());
        out.push_str("\n\n");
    }
    out
}
