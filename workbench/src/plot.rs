//! Per-run plots (PNG, plotters): latency over time by op and outcome with
//! the nemesis windows shaded, throughput over time, and the t-visibility
//! curve with its confidence band.
//!
//! Everything is drawn from the run directory's files (the history and the
//! results), so `workbench check --write` can redraw old runs. Text needs a
//! TrueType font: the first DejaVu/Liberation font found on the machine is
//! registered once; without one the plots are skipped with a warning rather
//! than drawn unlabeled.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use checker::Results;
use history::compact::CompactHistory;
use history::{files, OpType, RunConfig};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use checker::windows::{fault_windows, Window};

/// File names of the plots inside a run directory.
pub const LATENCY_PNG: &str = "latency.png";
/// Throughput over time.
pub const THROUGHPUT_PNG: &str = "throughput.png";
/// t-visibility curve.
pub const T_VISIBILITY_PNG: &str = "t-visibility.png";

/// Fonts tried, in order.
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

const SIZE: (u32, u32) = (1100, 500);

/// Registers a font once; false when none is installed.
pub(crate) fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let Some(bytes) = FONT_PATHS.iter().find_map(|p| std::fs::read(p).ok()) else { return false };
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

/// Draws every plot of the run in `dir`.
pub fn plot_run(dir: &Path, run: &RunConfig, results: &Results) -> Result<()> {
    if !font_ready() {
        bail!("no TrueType font found (tried {FONT_PATHS:?}); install fonts-dejavu-core for plots");
    }
    let history = CompactHistory::read(&dir.join(files::HISTORY))?;
    let windows = fault_windows(&history);
    latency(&history, &windows, &dir.join(LATENCY_PNG), run).context("latency plot")?;
    throughput(&history, &windows, &dir.join(THROUGHPUT_PNG)).context("throughput plot")?;
    t_visibility(results, &dir.join(T_VISIBILITY_PNG), run).context("t-visibility plot")?;
    Ok(())
}

/// (time s, latency ms) per (f, outcome).
type Series = BTreeMap<(String, &'static str), Vec<(f64, f64)>>;

fn outcome_name(t: OpType) -> &'static str {
    match t {
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info | OpType::Invoke => "info",
    }
}

fn latency_series(history: &CompactHistory) -> Series {
    let mut out = Series::new();
    for pair in history.pairs() {
        let (invoke, Some(done)) = pair.ops(history.ops()) else { continue };
        let ms = (done.time_ns.saturating_sub(invoke.time_ns) as f64 / 1e6).max(0.01);
        let key = (history.name(invoke.f).to_string(), outcome_name(done.kind));
        out.entry(key).or_default().push((invoke.time_ns as f64 / 1e9, ms));
    }
    out
}

fn color_for(i: usize, outcome: &str) -> RGBColor {
    match outcome {
        "fail" => RGBColor(230, 140, 0),
        "info" => RGBColor(200, 0, 0),
        _ => [RGBColor(30, 90, 200), RGBColor(20, 150, 60), RGBColor(120, 60, 170)][i % 3],
    }
}

fn end_s(history: &CompactHistory) -> f64 {
    (history.end_ns() as f64 / 1e9).max(1.0)
}

fn shade<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<impl Ranged<ValueType = f64>, impl Ranged<ValueType = f64>>>,
    windows: &[Window],
    y: (f64, f64),
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let style = RGBColor(150, 150, 150).mix(0.25).filled();
    chart
        .draw_series(windows.iter().map(|w| Rectangle::new([(w.start_s, y.0), (w.end_s, y.1)], style)))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

fn latency(history: &CompactHistory, windows: &[Window], path: &Path, run: &RunConfig) -> Result<()> {
    let series = latency_series(history);
    let max_ms = series.values().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.2;
    let min_ms = (series.values().flatten().map(|p| p.1).fold(f64::MAX, f64::min) / 2.0).clamp(0.01, 1.0);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let faults = if run.nemesis.is_empty() { "none".to_string() } else { run.nemesis.join("+") };
    let title = format!("latency by op and outcome (shaded: fault windows of {faults})");
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..end_s(history), (min_ms..max_ms).log_scale())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart.configure_mesh().x_desc("time (s)").y_desc("latency (ms)").draw().map_err(|e| anyhow::anyhow!("{e}"))?;
    shade(&mut chart, windows, (min_ms, max_ms))?;
    for (i, ((f, outcome), points)) in series.iter().enumerate() {
        let color = color_for(i, outcome);
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 2, color.filled())))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(format!("{f} {outcome} ({})", points.len()))
            .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

fn throughput(history: &CompactHistory, windows: &[Window], path: &Path) -> Result<()> {
    let seconds = end_s(history).ceil() as usize + 1;
    let mut per_f: BTreeMap<(String, &'static str), Vec<u64>> = BTreeMap::new();
    for pair in history.pairs() {
        let (invoke, Some(done)) = pair.ops(history.ops()) else { continue };
        let slot = ((done.time_ns as f64 / 1e9) as usize).min(seconds - 1);
        let f = history.name(invoke.f).to_string();
        per_f.entry((f, outcome_name(done.kind))).or_insert_with(|| vec![0; seconds])[slot] += 1;
    }
    let max = per_f.values().flatten().copied().max().unwrap_or(1) as f64 * 1.2;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("throughput: completions per second by op and outcome (shaded: faults)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..seconds as f64, 0f64..max.max(1.0))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart.configure_mesh().x_desc("time (s)").y_desc("ops/s").draw().map_err(|e| anyhow::anyhow!("{e}"))?;
    shade(&mut chart, windows, (0.0, max.max(1.0)))?;
    for (i, ((f, outcome), counts)) in per_f.iter().enumerate() {
        let color = color_for(i, outcome);
        let line = counts.iter().enumerate().map(|(s, c)| (s as f64 + 0.5, *c as f64));
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(format!("{f} {outcome}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// (bin start ms, p, ci low, ci high, PBS-predicted p if any) from results.json.
fn curve(results: &Results) -> Vec<(f64, f64, f64, f64, Option<f64>)> {
    let Some(points) = results.checkers.get("t-visibility").and_then(|r| r.figure("curve")).and_then(|c| c.as_array())
    else {
        return Vec::new();
    };
    let num = |p: &serde_json::Value, k: &str| p.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
    let predicted = |p: &serde_json::Value| p.get("p_predicted").and_then(|v| v.as_f64());
    points
        .iter()
        .map(|p| (num(p, "t_lo_ms").max(0.5), num(p, "p_covered"), num(p, "ci_low"), num(p, "ci_high"), predicted(p)))
        .collect()
}

fn t_visibility(results: &Results, path: &Path, run: &RunConfig) -> Result<()> {
    let points = curve(results);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let title = format!(
        "t-visibility: P(read covers a write | t ms after its ack), N{} W{} R{}, 95% Clopper-Pearson band",
        run.n, run.w, run.r
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d((0.5f64..10_000f64).log_scale(), 0f64..1.05f64)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("t since ack (ms, bin start)")
        .y_desc("P(covered)")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let band: Vec<(f64, f64)> =
        points.iter().map(|p| (p.0, p.3)).chain(points.iter().rev().map(|p| (p.0, p.2))).collect();
    chart
        .draw_series(std::iter::once(Polygon::new(band, RGBColor(30, 90, 200).mix(0.2).filled())))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let blue = RGBColor(30, 90, 200);
    chart
        .draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), blue.stroke_width(2)).point_size(3))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .label("measured P(covered | t)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], blue.stroke_width(2)));
    let predicted: Vec<(f64, f64)> = points.iter().filter_map(|p| p.4.map(|q| (p.0, q))).collect();
    if !predicted.is_empty() {
        let green = RGBColor(0, 140, 60);
        let rmse = results.checkers.get("t-visibility").and_then(|r| r.figure("pbs_rmse")).and_then(|v| v.as_f64());
        let label = match rmse {
            Some(e) => format!("PBS predicted from the nodes' W, A, R, S (RMSE {:.2}%)", e * 100.0),
            None => "PBS predicted from the nodes' W, A, R, S".to_string(),
        };
        chart
            .draw_series(LineSeries::new(predicted, green.stroke_width(2)).point_size(2))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], green.stroke_width(2)));
    }
    let pbs = 1.0 - checker::t_visibility::pbs_p_stale(run.n, run.w.min(run.n), run.r.min(run.n));
    let red = RGBColor(200, 0, 0);
    chart
        .draw_series(LineSeries::new([(0.5, pbs), (10_000.0, pbs)], red.stroke_width(1)))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .label("PBS closed form at t = 0: 1 - C(N-W,R)/C(N,R)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], red.stroke_width(1)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
