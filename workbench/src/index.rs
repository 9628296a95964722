//! `results/<campaign>/index.html`: a static page linking every run, its
//! verdict, its plots and its `timeline.html` ("3 examples of 460
//! anomalies": the timeline marks a few examples per checker), next
//! to the campaign's verdict. No scripts, no
//! external assets: it opens from the file system.

use std::path::Path;

use anyhow::{Context, Result};
use checker::Results;

use crate::expect::Verdict;
use crate::plot::{LATENCY_PNG, THROUGHPUT_PNG, T_VISIBILITY_PNG};
use crate::table::{config_label, nemesis_label, validity_label, Outcome};
use crate::timeline::{anomalies, esc, TIMELINE_HTML};

fn verdict_cell(o: &Outcome) -> String {
    match (&o.results, &o.unsupported) {
        (Some(r), _) => {
            let label = validity_label(r.valid);
            let class = if label == "yes" { "ok" } else { "bad" };
            format!("<td class=\"{class}\">{label}</td>")
        }
        (None, why) => format!("<td class=\"bad\">unsupported: {}</td>", esc(why.as_deref().unwrap_or("?"))),
    }
}

fn plots_cell(dir: &Path, o: &Outcome) -> String {
    let mut cell = String::new();
    for png in [LATENCY_PNG, THROUGHPUT_PNG, T_VISIBILITY_PNG] {
        if dir.join(&o.dir_name).join(png).exists() {
            let href = format!("{}/{png}", o.dir_name);
            cell.push_str(&format!("<a href=\"{href}\"><img src=\"{href}\" width=\"180\" alt=\"{png}\"></a> "));
        }
    }
    cell
}

/// Each anomaly checker's count in `results.json`: the figure, or (an
/// array) its length.
const ANOMALY_COUNTS: [(&str, &str); 6] = [
    (checker::stale_reads::NAME, "stale"),
    (checker::read_your_writes::NAME, "violations"),
    (checker::monotonic_reads::NAME, "violations"),
    (checker::lost_writes::NAME, "lost"),
    (checker::linearizable::NAME, "keys_violating"),
    (checker::consistent_prefix::NAME, "violations"),
];

/// Every anomaly the run's checkers counted (the timeline marks only a few
/// examples of each): stale reads, RYW and monotonic-read violations, lost
/// adds, non-linearizable keys, consistent-prefix violations.
pub fn anomaly_total(results: &Results) -> u64 {
    let count = |(checker, figure): &(&str, &str)| {
        let value = results.checkers.get(*checker).and_then(|c| c.figure(figure));
        value.map_or(0, |v| v.as_u64().unwrap_or_else(|| v.as_array().map_or(0, |a| a.len() as u64)))
    };
    ANOMALY_COUNTS.iter().map(count).sum()
}

/// The link to a run's `timeline.html`, with how many examples it marks of
/// how many anomalies; empty when the run has none (not performed, or from
/// before timelines).
fn timeline_link(dir: &Path, o: &Outcome) -> String {
    if !dir.join(&o.dir_name).join(TIMELINE_HTML).exists() {
        return String::new();
    }
    let examples = o.results.as_ref().map_or(0, |r| anomalies(r).len());
    let total = o.results.as_ref().map_or(0, anomaly_total);
    format!(" · <a href=\"{}/{TIMELINE_HTML}\">timeline</a> ({examples} examples of {total} anomalies)", o.dir_name)
}

fn row(dir: &Path, o: &Outcome) -> String {
    let name = &o.dir_name;
    format!(
        "<tr><td><a href=\"{name}/\">{n}</a><br><small><a href=\"{name}/results.json\">results.json</a> · \
         <a href=\"{name}/history.jsonl\">history</a> · <a href=\"{name}/run.json\">run.json</a>{timeline}</small></td>\
         <td>{nem}</td><td>{wl}</td><td>{cfg}</td>{verdict}<td>{plots}</td></tr>\n",
        n = esc(name),
        nem = esc(&nemesis_label(&o.run)),
        wl = esc(&o.run.workload),
        cfg = esc(&config_label(&o.run)),
        verdict = verdict_cell(o),
        plots = plots_cell(dir, o),
        timeline = timeline_link(dir, o),
    )
}

/// Writes `index.html` into the campaign directory `dir`.
pub fn write_index(dir: &Path, name: &str, outcomes: &[Outcome], verdict: &Verdict) -> Result<()> {
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Campaign {t}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} \
         td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}} .ok{{background:#dfd}} .bad{{background:#fdd}}\
         </style></head><body>\n<h1>Campaign {t}</h1>\n<p><a href=\"summary.md\">summary.md</a> · exit code {code}</p>\n\
         <table><tr><th>run</th><th>nemesis</th><th>workload</th><th>configuration</th><th>valid</th><th>plots</th></tr>\n",
        t = esc(name),
        code = verdict.exit_code(),
    );
    for o in outcomes {
        html.push_str(&row(dir, o));
    }
    html.push_str("</table>\n<h2>Verdict</h2>\n<pre>");
    html.push_str(&esc(&verdict.markdown()));
    html.push_str("</pre>\n</body></html>\n");
    let path = dir.join("index.html");
    std::fs::write(&path, html).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_total_counts_every_anomaly_not_the_examples() {
        let with = |name: &str, key: &str, v: serde_json::Value| {
            (name.to_string(), checker::CheckResult::new(checker::Validity::True).with(key, v))
        };
        let results = Results::from_checkers(BTreeMap::from([
            with(checker::stale_reads::NAME, "stale", serde_json::json!(239)),
            with(checker::read_your_writes::NAME, "violations", serde_json::json!(123)),
            with(checker::monotonic_reads::NAME, "violations", serde_json::json!(98)),
            with(checker::linearizable::NAME, "keys_violating", serde_json::json!(["k1", "k2"])),
        ]));
        assert_eq!(anomaly_total(&results), 239 + 123 + 98 + 2);
    }
}
