//! `timeline.html` in every run directory: the history drawn as lanes, with
//! every anomaly of `results.json` highlighted and linked from its sentence.
//!
//! In the spirit of Jepsen's timeline and Porcupine's visualisation: one
//! lane per client process, each op a bar from its invocation to its
//! completion, coloured by outcome (`ok`, `fail`, `info`; an op the run
//! never answered is `info` and runs to the end of the history); the fault
//! windows shaded behind the lanes. Each anomaly example (stale read,
//! read-your-writes, monotonic read, lost add, linearizability witness) is
//! listed with its sentence, which links to `#anomaly-<checker>-<n>` on the
//! bar of the op it is about; the op it is owed to (the missed write, the
//! earlier read, the rest of a witness) is outlined as related.
//!
//! Why a bound. A long run holds 100k ops; a page with a DOM node per op
//! is unusable. So the page draws at most [`MAX_BARS`] bars: the whole run
//! when it fits, else windows of [`WINDOW_MARGIN_MS`] around each anomaly
//! (merged when they overlap; with no anomaly, the start of the run). In a
//! window, the anomaly's own ops come first, then ops of the same keys, then
//! the rest by distance from the anomaly, until the window's share of the
//! bound. The page says how many ops it left out, and a key filter hides
//! the bars of other keys.
//!
//! The page is self-contained (inline CSS and a few lines of inline script
//! for the filter, no network) and static: every bar is in the HTML, so it
//! reads the same with scripts off. [`render`] is a pure function of the
//! history and the results; [`write_timeline`] puts it in a run directory.
//!
//! The HTML escaping ([`esc`]) is defined here and the campaign's index page
//! ([`crate::index`]), which links every run's timeline, imports it: the
//! index depends on this page and not the other way round.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use checker::windows::{fault_windows, Window};
use checker::Results;
use history::compact::{CompactHistory, LinePair};
use history::{files, OpType, Process};
use serde_json::Value;

/// Escapes text for HTML (this page's, and the campaign's `index.html`,
/// [`crate::index`], which imports it from here).
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// File name of the page inside a run directory.
pub const TIMELINE_HTML: &str = "timeline.html";

/// The most op bars one page draws, over all its windows.
pub const MAX_BARS: usize = 2_000;

/// Time shown on each side of an anomaly's ops when the run is too long to
/// draw whole.
pub const WINDOW_MARGIN_MS: u64 = 200;

/// The narrowest bar, in percent of its window, so that a 10 µs op in a
/// one-minute window is still a visible, clickable mark.
const MIN_BAR_WIDTH_PCT: f64 = 0.15;

/// Characters of an op's value shown in its tooltip.
const MAX_VALUE_CHARS: usize = 120;

/// The checkers whose examples are anomalies on the timeline, with the
/// example field naming the op it is about and the fields naming the ops
/// it is owed to.
const ANOMALY_FIELDS: [(&str, &str, &[&str]); 6] = [
    (checker::stale_reads::NAME, "read_index", &["missed_write_index"]),
    (checker::read_your_writes::NAME, "read_index", &["missed_write_index"]),
    (checker::monotonic_reads::NAME, "read_index", &["earlier_read_index"]),
    (checker::lost_writes::NAME, "add_index", &[]),
    (checker::linearizable::NAME, "witness_indices", &[]),
    (checker::consistent_prefix::NAME, "question_read_index", &["answer_read_index", "question_write_index"]),
];

/// One anomaly example, as the page links it.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// The element id of its mark: `anomaly-<checker>-<n>`.
    pub id: String,
    /// The checker that found it.
    pub checker: String,
    /// Its sentence from `results.json` (or a description when the results
    /// predate sentences).
    pub sentence: String,
    /// History index of the invocation of the op it is about.
    pub op: u64,
    /// Invocation indices of the ops it is owed to, outlined as related.
    pub related: Vec<u64>,
}

/// One client op as a bar.
#[derive(Debug, Clone)]
struct Bar<'h> {
    /// History index of its invocation.
    index: u64,
    /// Its invocation's and completion's lines, to describe it.
    lines: LinePair,
    /// Client process: its lane.
    process: u64,
    /// Invocation time, ns.
    start_ns: u64,
    /// Completion time, ns (the history's end when it never completed).
    end_ns: u64,
    /// `ok`, `fail` or `info`.
    outcome: OpType,
    /// The key, if any.
    key: &'h str,
    /// Its tooltip: made only for the bars drawn ([`Bar::titled`]), not
    /// for each of a long run's millions of ops.
    title: String,
}

/// A span of the run drawn as one block of lanes.
#[derive(Debug, Clone, PartialEq)]
struct Span {
    /// Start, ns.
    from_ns: u64,
    /// End, ns.
    to_ns: u64,
}

/// Every anomaly example of `results`, in checker order.
pub fn anomalies(results: &Results) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for (name, op_field, related_fields) in ANOMALY_FIELDS {
        let Some(result) = results.checkers.get(name) else { continue };
        let Some(examples) = result.figure("examples").and_then(Value::as_array) else { continue };
        for (n, example) in examples.iter().enumerate() {
            let mut ops: Vec<u64> = match &example[op_field] {
                Value::Array(indices) => indices.iter().filter_map(Value::as_u64).collect(),
                other => other.as_u64().into_iter().collect(),
            };
            // A witness is about its last op; the others led up to it.
            let Some(op) = ops.pop() else { continue };
            let mut related = ops;
            related.extend(related_fields.iter().filter_map(|f| example[*f].as_u64()));
            let sentence = example["sentence"].as_str().map_or_else(|| undescribed(example), str::to_string);
            out.push(Anomaly { id: format!("anomaly-{name}-{n}"), checker: name.to_string(), sentence, op, related });
        }
    }
    out
}

/// An example from results that predate sentences: its key and indices.
fn undescribed(example: &Value) -> String {
    format!("(no sentence in this results.json) {example}")
}

/// Every client op of the history as a bar, in invocation order.
fn bars(history: &CompactHistory) -> Vec<Bar<'_>> {
    let (end_ns, ops) = (history.end_ns(), history.ops());
    let bar = |lines: LinePair| {
        let (invoke, complete) = lines.ops(ops);
        let Process::Client(process) = invoke.process else { return None };
        let done_ns = complete.map_or(end_ns, |c| c.time_ns);
        Some(Bar {
            index: invoke.index,
            lines,
            process,
            start_ns: invoke.time_ns,
            end_ns: done_ns.max(invoke.time_ns),
            outcome: lines.outcome(ops),
            key: invoke.key.map_or("", |k| history.name(k)),
            title: String::new(),
        })
    };
    history.pairs().iter().copied().filter_map(bar).collect()
}

impl Bar<'_> {
    /// The bar with its tooltip: the op, its outcome and times, and the
    /// value it wrote or read.
    fn titled(&self, history: &CompactHistory) -> Self {
        let (invoke, complete) = self.lines.ops(history.ops());
        // The completion's value unless it is null (a write's ok), else the invocation's.
        let answered = complete.filter(|c| c.siblings.is_some() || c.value != Some(history.null().id()));
        let mut value = match answered {
            Some(done) => shown_value(history, done),
            None => history.value_json(invoke).to_string(),
        };
        if value.chars().count() > MAX_VALUE_CHARS {
            value = value.chars().take(MAX_VALUE_CHARS).collect::<String>() + "…";
        }
        let node = invoke.node.map_or("?", |n| history.name(n));
        let error = complete.and_then(|c| c.error).map(|e| format!(" ({})", history.name(e))).unwrap_or_default();
        let title = format!(
            "#{} p{} {} {} via {node}: {:?}{error} {:.2}-{:.2} ms {value}",
            self.index,
            self.process,
            history.name(invoke.f),
            self.key,
            self.outcome,
            self.start_ns as f64 / 1e6,
            self.end_ns as f64 / 1e6
        );
        Bar { title, key: self.key, ..*self }
    }
}

/// A completion's value as JSON text: a read's siblings as the history
/// wrote them (`{"value", "version"}` each), any other value as it is.
fn shown_value(history: &CompactHistory, done: &history::compact::CompactOp) -> String {
    let Some(span) = done.siblings else { return history.value_json(done).to_string() };
    let siblings: Vec<Value> = history
        .siblings(span)
        .map(|s| serde_json::json!({"value": s.value.to_value(), "version": s.version.to_version()}))
        .collect();
    Value::Array(siblings).to_string()
}

/// The spans to draw: the whole run if it fits, else one around each
/// anomaly (merged), else the start of the run.
fn spans(bars: &[Bar<'_>], anomalies: &[Anomaly]) -> Vec<Span> {
    let end_ns = bars.iter().map(|b| b.end_ns).max().unwrap_or(0);
    let start_ns = bars.iter().map(|b| b.start_ns).min().unwrap_or(0);
    if bars.len() <= MAX_BARS {
        return vec![Span { from_ns: start_ns, to_ns: end_ns.max(start_ns + 1) }];
    }
    let by_index: BTreeMap<u64, &Bar<'_>> = bars.iter().map(|b| (b.index, b)).collect();
    let margin_ns = WINDOW_MARGIN_MS * 1_000_000;
    let mut around: Vec<Span> = anomalies
        .iter()
        .filter_map(|a| {
            let ops: Vec<&Bar<'_>> =
                std::iter::once(&a.op).chain(&a.related).filter_map(|i| by_index.get(i).copied()).collect();
            let from = ops.iter().map(|b| b.start_ns).min()?;
            let to = ops.iter().map(|b| b.end_ns).max()?;
            Some(Span { from_ns: from.saturating_sub(margin_ns), to_ns: to + margin_ns })
        })
        .collect();
    if around.is_empty() {
        let last_start = bars[MAX_BARS - 1].start_ns;
        return vec![Span { from_ns: start_ns, to_ns: last_start.max(start_ns + 1) }];
    }
    around.sort_by_key(|s| s.from_ns);
    let mut merged: Vec<Span> = Vec::new();
    for span in around {
        match merged.last_mut() {
            Some(last) if span.from_ns <= last.to_ns => last.to_ns = last.to_ns.max(span.to_ns),
            _ => merged.push(span),
        }
    }
    merged
}

/// The bars of `span` to draw, at most `budget`: the anomalies' own ops
/// first, then ops of their keys, then the rest nearest the span's centre.
fn pick<'b, 'h>(
    bars: &'b [Bar<'h>],
    span: &Span,
    marked: &BTreeSet<u64>,
    keys: &BTreeSet<&str>,
    budget: usize,
) -> (Vec<&'b Bar<'h>>, usize) {
    let inside: Vec<&Bar<'_>> = bars.iter().filter(|b| b.start_ns <= span.to_ns && b.end_ns >= span.from_ns).collect();
    let centre = span.from_ns / 2 + span.to_ns / 2;
    let mut ranked = inside.clone();
    ranked.sort_by_key(|b| (!marked.contains(&b.index), !keys.contains(b.key), b.start_ns.abs_diff(centre), b.index));
    ranked.truncate(budget);
    ranked.sort_by_key(|b| b.index);
    let left_out = inside.len() - ranked.len();
    (ranked, left_out)
}

/// Renders the page; see the module documentation. `title` names the run.
pub fn render(history: &impl AsRef<CompactHistory>, results: &Results, title: &str) -> String {
    let history = history.as_ref();
    let bars = bars(history);
    let anomalies = anomalies(results);
    let windows = fault_windows(history);
    let spans = spans(&bars, &anomalies);
    let marked: BTreeSet<u64> =
        anomalies.iter().flat_map(|a| std::iter::once(a.op).chain(a.related.iter().copied())).collect();
    let keys: BTreeSet<&str> =
        bars.iter().filter(|b| anomalies.iter().any(|a| a.op == b.index)).map(|b| b.key).collect();
    let budget = MAX_BARS / spans.len().max(1);
    let mut body = String::new();
    let mut drawn = 0usize;
    for (n, span) in spans.iter().enumerate() {
        let (picked, left_out) = pick(&bars, span, &marked, &keys, budget);
        let titled: Vec<Bar<'_>> = picked.iter().map(|b| b.titled(history)).collect();
        drawn += titled.len();
        body.push_str(&span_html(n, span, &titled.iter().collect::<Vec<_>>(), left_out, &anomalies, &windows));
    }
    assert!(drawn <= MAX_BARS, "the page draws at most {MAX_BARS} bars, drew {drawn}");
    page(title, &anomalies, &body, drawn, bars.len())
}

/// The whole document around the spans.
fn page(title: &str, anomalies: &[Anomaly], spans_html: &str, drawn: usize, total: usize) -> String {
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Timeline {t}</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>Timeline {t}</h1>\n<p><a href=\"results.json\">results.json</a> · <a href=\"history.jsonl\">history.jsonl</a> · \
         <a href=\"run.json\">run.json</a></p>\n<p class=\"legend\"><span class=\"op ok\"></span> ok <span class=\"op fail\"></span> fail \
         <span class=\"op info\"></span> info (or never answered) <span class=\"op ok anomaly\"></span> anomaly \
         <span class=\"op ok related\"></span> op it was owed to <span class=\"fault\"></span> fault window</p>\n",
        t = esc(title)
    );
    let _ = writeln!(html, "<h2>Anomalies</h2>");
    if anomalies.is_empty() {
        let _ = writeln!(html, "<p id=\"no-anomalies\">No anomaly example in results.json.</p>");
    } else {
        let _ = writeln!(html, "<ol id=\"anomalies\">");
        for a in anomalies {
            let _ = writeln!(
                html,
                "<li id=\"example-{id}\"><b>{c}</b>: <a class=\"example\" href=\"#{id}\">{s}</a></li>",
                id = esc(&a.id),
                c = esc(&a.checker),
                s = esc(&a.sentence)
            );
        }
        let _ = writeln!(html, "</ol>");
    }
    let left_out = total - drawn;
    let _ = writeln!(
        html,
        "<h2>Ops</h2>\n<p id=\"shown\">Showing {drawn} of {total} client ops{}.</p>",
        if left_out == 0 {
            String::new()
        } else {
            format!(
                "; {left_out} left out (the page draws at most {MAX_BARS} bars: windows of {WINDOW_MARGIN_MS} ms around each \
                 anomaly, or the start of the run when there is none; history.jsonl has them all)"
            )
        }
    );
    html.push_str(
        "<p><label>Key filter: <input id=\"key-filter\" placeholder=\"e.g. k3 (empty: all keys)\"></label> \
         <span id=\"filter-count\"></span></p>\n",
    );
    html.push_str(spans_html);
    let _ = write!(html, "<script>{SCRIPT}</script>\n</body></html>\n");
    html
}

/// Percent position of `t_ns` in `span`, clamped to it.
fn pct(span: &Span, t_ns: u64) -> f64 {
    let len = (span.to_ns - span.from_ns).max(1) as f64;
    ((t_ns.clamp(span.from_ns, span.to_ns) - span.from_ns) as f64 / len * 100.0).clamp(0.0, 100.0)
}

/// One span: its fault shading and one lane per process with bars in it.
fn span_html(
    n: usize,
    span: &Span,
    bars: &[&Bar<'_>],
    left_out: usize,
    anomalies: &[Anomaly],
    windows: &[Window],
) -> String {
    let mut html = format!(
        "<section class=\"span\" id=\"span-{n}\"><h3>{:.2} – {:.2} ms: {} ops drawn{}</h3>\n<div class=\"lanes\">\n",
        span.from_ns as f64 / 1e6,
        span.to_ns as f64 / 1e6,
        bars.len(),
        if left_out > 0 { format!(", {left_out} more in this window left out") } else { String::new() }
    );
    html.push_str("<div class=\"faults\">");
    for w in windows {
        let (from, to) = ((w.start_s * 1e9) as u64, (w.end_s * 1e9) as u64);
        if from > span.to_ns || to < span.from_ns {
            continue;
        }
        let (left, right) = (pct(span, from), pct(span, to));
        let _ = writeln!(
            html,
            "<div class=\"fault {k}\" style=\"left:{left:.3}%;width:{:.3}%\" title=\"{k} {:.2}-{:.2} ms\"><span>{k}</span></div>",
            (right - left).max(MIN_BAR_WIDTH_PCT),
            w.start_s * 1e3,
            w.end_s * 1e3,
            k = w.kind
        );
    }
    html.push_str("</div>\n");
    let mut lanes: BTreeMap<u64, Vec<&Bar<'_>>> = BTreeMap::new();
    for bar in bars {
        lanes.entry(bar.process).or_default().push(bar);
    }
    for (process, lane) in lanes {
        let _ = write!(html, "<div class=\"lane\"><span class=\"pid\">p{process}</span><div class=\"track\">");
        for bar in lane {
            html.push_str(&bar_html(span, bar, anomalies));
        }
        html.push_str("</div></div>\n");
    }
    html.push_str("</div></section>\n");
    html
}

/// One op's bar, with a mark (the link target) per anomaly about it.
fn bar_html(span: &Span, bar: &Bar<'_>, anomalies: &[Anomaly]) -> String {
    let about: Vec<&Anomaly> = anomalies.iter().filter(|a| a.op == bar.index).collect();
    let related = anomalies.iter().any(|a| a.related.contains(&bar.index));
    let outcome = match bar.outcome {
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info | OpType::Invoke => "info",
    };
    let class = match (about.is_empty(), related) {
        (false, _) => format!("op {outcome} anomaly"),
        (true, true) => format!("op {outcome} related"),
        (true, false) => format!("op {outcome}"),
    };
    let (left, right) = (pct(span, bar.start_ns), pct(span, bar.end_ns));
    let marks: String = about
        .iter()
        .map(|a| {
            format!(
                "<a class=\"mark\" id=\"{id}\" href=\"#example-{id}\" title=\"{s}\">!</a>",
                id = esc(&a.id),
                s = esc(&a.sentence)
            )
        })
        .collect();
    format!(
        "<div class=\"{class}\" data-key=\"{key}\" data-index=\"{i}\" style=\"left:{left:.3}%;width:{w:.3}%\" title=\"{t}\">{marks}</div>",
        key = esc(bar.key),
        i = bar.index,
        w = (right - left).max(MIN_BAR_WIDTH_PCT),
        t = esc(&bar.title),
    )
}

/// Writes `timeline.html` into the run directory `dir` from its history.
pub fn write_timeline(dir: &Path, results: &Results) -> Result<()> {
    let history = CompactHistory::read(&dir.join(files::HISTORY))?;
    let title = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    let path = dir.join(TIMELINE_HTML);
    std::fs::write(&path, render(&history, results, &title)).with_context(|| format!("cannot write {}", path.display()))
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em} .lanes{position:relative;border:1px solid #ccc;margin-bottom:1em}\
.lane{display:flex;align-items:center;height:16px;border-bottom:1px solid #f0f0f0}\
.pid{width:4em;font-size:11px;color:#555;flex:none}.track{position:relative;flex:1;height:12px}\
.op{position:absolute;top:1px;height:10px;min-width:2px;box-sizing:border-box;border-radius:2px}\
.legend .op,.legend .fault{position:static;display:inline-block;width:2em;height:10px;vertical-align:middle}\
.ok{background:#6c6}.fail{background:#e66}.info{background:#eb4}\
.anomaly{background:#a0f;outline:3px solid #a0f;z-index:3}.related{outline:2px dashed #a0f;z-index:2}\
.mark{color:#fff;font-size:9px;text-decoration:none;display:inline-block;padding:0 2px}\
.mark:target{background:#000;outline:3px solid #fd0}\
.faults{position:absolute;left:4em;right:0;top:0;bottom:0;pointer-events:none}\
.fault{position:absolute;top:0;bottom:0;background:rgba(120,120,255,.15);border-left:1px solid #88f;z-index:0;pointer-events:none}\
.fault span{font-size:10px;color:#44a}a.example{color:inherit}li{margin-bottom:.4em}";

/// The key filter: hides the bars of other keys, and says how many remain.
const SCRIPT: &str = "(function(){var f=document.getElementById('key-filter');var c=document.getElementById('filter-count');\
f.addEventListener('input',function(){var k=f.value.trim();var n=0;\
document.querySelectorAll('.op[data-key]').forEach(function(b){var on=!k||b.getAttribute('data-key')===k;b.style.display=on?'':'none';if(on)n++;});\
c.textContent=k?n+' bars of key '+k:'';});})();";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use history::{History, Op, RunConfig, Version};
    use serde_json::json;

    const MS: u64 = 1_000_000;

    /// A strict-quorum register run (W + R > N): a stale read is a failure.
    pub(crate) fn strict_run() -> RunConfig {
        serde_json::from_value(json!({
            "nodes": ["n1", "n2", "n3"], "n": 3, "w": 2, "r": 2, "workload": "register",
            "nemesis": ["partition"], "seed": 1, "time_limit_s": 10, "concurrency": 4, "rate": 100.0,
            "backend": "sim", "started_at": "2026-12-06T00:00:00Z"
        }))
        .expect("a run.json")
    }

    /// Appends an op pair to `ops`: invoked at `t_ms`, answered 1 ms later.
    fn pair(ops: &mut Vec<Op>, process: u64, f: &str, key: &str, t_ms: u64, done: impl FnOnce(&mut Op)) {
        let mut invoke = Op::client(process, OpType::Invoke, f, key, "n1");
        (invoke.index, invoke.time) = (ops.len() as u64, t_ms * MS);
        if f == "write" {
            invoke.value = json!(format!("{key}-v"));
        }
        ops.push(invoke.clone());
        let mut ok = invoke;
        (ok.kind, ok.index, ok.time) = (OpType::Ok, ops.len() as u64, (t_ms + 1) * MS);
        done(&mut ok);
        ops.push(ok);
    }

    /// `filler` clean ops (writes of keys never read, reads of keys never
    /// written, four processes), and, when `stale`, in the middle, under a
    /// partition: p0's acknowledged write of `planted` that p1's later read
    /// of the same key misses.
    pub(crate) fn history(filler: usize, stale: bool) -> History {
        let mut ops = Vec::new();
        let mut t_ms = 0;
        for i in 0..filler {
            t_ms += 2;
            if stale && i == filler / 2 {
                ops.push(nemesis_at("start-partition", json!({"grudge": {"n3": ["n1", "n2"]}}), t_ms));
                let version = Version { clock: [("n1".to_string(), 1)].into(), ts: 1, dot: None };
                pair(&mut ops, 0, "write", "planted", t_ms, |ok| ok.version = Some(version));
                pair(&mut ops, 1, "read", "planted", t_ms + 5, |ok| {
                    ok.value = json!([]);
                    ok.answered_by = Some(vec!["n3".into()]);
                });
                ops.push(nemesis_at("stop-partition", json!({}), t_ms + 7));
                t_ms += 10;
            }
            let key = format!("k{i}");
            match i % 2 {
                0 => pair(&mut ops, 2 + (i as u64 % 2), "write", &key, t_ms, |ok| {
                    ok.version = Some(Version { clock: [("n2".to_string(), i as u64 + 1)].into(), ts: 1, dot: None })
                }),
                _ => pair(&mut ops, 4 + (i as u64 % 3), "read", &key, t_ms, |ok| ok.value = json!([])),
            }
        }
        for (index, op) in ops.iter_mut().enumerate() {
            op.index = index as u64;
        }
        History::new(ops)
    }

    /// A nemesis event at `t_ms` (its index is set when the history is done).
    fn nemesis_at(f: &str, value: Value, t_ms: u64) -> Op {
        let mut op = Op::nemesis(f, value);
        op.time = t_ms * MS;
        op
    }

    /// The page of a history, with the results the real checkers give it.
    pub(crate) fn page_of(history: &History) -> String {
        let results = checker::check_all(history, &strict_run(), &[]);
        render(history, &results, "test-run")
    }

    /// The opening tag of the element that contains the element with `id`.
    pub(crate) fn bar_around<'p>(page: &'p str, id: &str) -> &'p str {
        let at = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no element with id {id}"));
        let open = page[..at].rfind("<div class=\"op").expect("a bar around the mark");
        let end = open + page[open..].find('>').expect("the tag ends");
        &page[open..=end]
    }

    #[test]
    fn a_planted_stale_read_is_highlighted_and_linked_from_its_sentence() {
        let h = history(20, true);
        let page = page_of(&h);
        let bar = bar_around(&page, "anomaly-stale-reads-0");
        assert!(bar.contains("class=\"op ok anomaly\""), "{bar}");
        assert!(bar.contains("data-key=\"planted\""), "{bar}");
        assert!(
            page.contains("<a class=\"example\" href=\"#anomaly-stale-reads-0\">read of planted by p1"),
            "the sentence links to the bar"
        );
        assert!(page.contains("class=\"op ok related\" data-key=\"planted\""), "the missed write is outlined");
        assert!(page.contains("class=\"fault partition\""), "the partition is shaded");
        assert!(page.contains("answered by replicas n3"), "the sentence names the replica");
        assert!(!page.contains("left out"), "a short run is drawn whole");
    }

    #[test]
    fn a_consistent_prefix_violation_is_highlighted_on_the_question_read() {
        let (q, a) = (
            Version { clock: [("n1".to_string(), 1)].into(), ts: 1, dot: None },
            Version { clock: [("n2".to_string(), 1)].into(), ts: 2, dot: None },
        );
        let answer = history::answer_value("p0-1", &["p0-0"]);
        let mut ops = Vec::new();
        pair(&mut ops, 0, "write", "k0", 1, |ok| ok.version = Some(q.clone()));
        ops.iter_mut().rev().take(2).for_each(|op| op.value = json!("p0-0"));
        pair(&mut ops, 0, "write", "k1", 3, |ok| ok.version = Some(a.clone()));
        ops.iter_mut().rev().take(2).for_each(|op| op.value = json!(answer.clone()));
        pair(&mut ops, 1, "read", "k1", 5, |ok| ok.value = json!([{"value": answer.clone(), "version": a.clone()}]));
        pair(&mut ops, 1, "read", "k0", 7, |ok| ok.value = json!([]));
        let h = History::new(ops);
        let mut run = strict_run();
        run.workload = "prefix".into();
        let page = render(&h, &checker::check_all(&h, &run, &[]), "prefix");
        assert!(
            bar_around(&page, "anomaly-consistent-prefix-0").contains("data-key=\"k0\""),
            "the question read carries the mark"
        );
        assert!(page.contains("href=\"#anomaly-consistent-prefix-0\">read of k1 by p1"), "the sentence links to it");
    }

    #[test]
    fn a_clean_history_has_no_anomaly() {
        let page = page_of(&history(20, false));
        assert!(page.contains("id=\"no-anomalies\""));
        assert!(!page.contains("anomaly-"), "no mark, no link");
        assert!(!page.contains("anomaly\" data-key"), "no highlighted bar");
        assert_eq!(page.matches("<div class=\"op ").count(), 20, "every op drawn");
    }

    #[test]
    fn a_100k_op_run_draws_a_bounded_window_around_its_anomaly_and_says_what_it_left_out() {
        let h = history(100_000, true);
        let page = page_of(&h);
        let drawn = page.matches("<div class=\"op ").count();
        assert!(drawn <= MAX_BARS && drawn > 2, "{drawn} bars");
        assert!(bar_around(&page, "anomaly-stale-reads-0").contains("anomaly"));
        assert!(
            page.contains(&format!("Showing {drawn} of 100002 client ops; {} left out", 100_002 - drawn)),
            "the page says what it left out"
        );
        assert!(page.len() < 2_000_000, "a page of {} bytes", page.len());
    }

    #[test]
    fn a_long_clean_run_draws_its_start_within_the_bound() {
        let page = page_of(&history(5_000, false));
        assert_eq!(page.matches("<div class=\"op ").count(), MAX_BARS);
        assert!(page.contains("left out"));
    }

    #[test]
    fn results_from_before_sentences_still_link_their_examples() {
        let h = history(20, true);
        let mut results = checker::check_all(&h, &strict_run(), &[]);
        for result in results.checkers.values_mut() {
            if let Some(Value::Array(examples)) = result.figures.get_mut("examples") {
                examples.iter_mut().for_each(|e| drop(e.as_object_mut().map(|o| o.remove("sentence"))));
            }
        }
        let page = render(&h, &results, "old");
        assert!(page.contains("(no sentence in this results.json)"));
        assert!(bar_around(&page, "anomaly-stale-reads-0").contains("anomaly"));
    }
}
