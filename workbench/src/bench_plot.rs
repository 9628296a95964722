//! The benchmarks' pictures: the latency distribution of a bench-peers run
//! (one curve per store, latency on a log scale against percentile, so
//! tails compare at a glance), and a bench-load sweep's goodput and p99
//! against closed-loop clients (one line per store).

use std::path::Path;

use anyhow::{bail, Result};
use plotters::prelude::*;
use workload::bench::BenchResult;

/// Percentiles drawn, from the median to the far tail.
const QUANTILES: [f64; 12] = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999];

/// Draws `rows` into `path`.
pub fn latency_cdf(path: &Path, rows: &[(&str, BenchResult)]) -> Result<()> {
    if !crate::plot::font_ready() {
        bail!("no TrueType font found; install fonts-dejavu-core for plots");
    }
    let curves: Vec<(&str, Vec<(f64, f64)>)> = rows
        .iter()
        .map(|(label, r)| (*label, QUANTILES.iter().map(|q| (q * 100.0, r.quantile_ms(*q).max(0.001))).collect()))
        .collect();
    let max_ms = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)).fold(1.0, f64::max) * 1.5;
    let root = BitMapBackend::new(path, (1000, 550)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("latency by percentile (all successful requests)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..100.0, (0.01..max_ms).log_scale())?;
    chart.configure_mesh().x_desc("percentile").y_desc("latency ms (log)").draw()?;
    for (i, (label, points)) in curves.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// One labelled line: (closed-loop clients, figure) points.
pub type Series<'a> = (&'a str, Vec<(f64, f64)>);

/// Draws a bench-load sweep's goodput against clients into `goodput_path`
/// and p99 of ok ops against clients into `p99_path`; one line per store,
/// clients on a log scale.
pub fn load_curves(goodput_path: &Path, p99_path: &Path, goodput: &[Series], p99: &[Series]) -> Result<()> {
    if !crate::plot::font_ready() {
        bail!("no TrueType font found; install fonts-dejavu-core for plots");
    }
    draw_against_clients(goodput_path, "goodput (ok ops/s) by closed-loop clients", "ok ops/s", goodput, false)?;
    draw_against_clients(p99_path, "p99 of ok ops by closed-loop clients", "p99 ms (log)", p99, true)
}

/// One chart of `curves` against clients (log x), y linear or log.
fn draw_against_clients(path: &Path, caption: &str, y_desc: &str, curves: &[Series], log_y: bool) -> Result<()> {
    let points = || curves.iter().flat_map(|(_, c)| c.iter().copied());
    let max_x = points().map(|p| p.0).fold(2.0, f64::max) * 1.2;
    let min_x = points().map(|p| p.0).fold(max_x, f64::min).max(1.0) / 1.2;
    let max_y = points().map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let root = BitMapBackend::new(path, (1000, 550)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder.caption(caption, ("sans-serif", 20)).margin(12).x_label_area_size(40).y_label_area_size(70);
    if log_y {
        let mut chart = builder.build_cartesian_2d((min_x..max_x).log_scale(), (0.01..max_y).log_scale())?;
        chart.configure_mesh().x_desc("closed-loop clients (log)").y_desc(y_desc).draw()?;
        draw_lines(&mut chart, curves)?;
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    } else {
        let mut chart = builder.build_cartesian_2d((min_x..max_x).log_scale(), 0.0..max_y)?;
        chart.configure_mesh().x_desc("closed-loop clients (log)").y_desc(y_desc).draw()?;
        draw_lines(&mut chart, curves)?;
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    }
    root.present()?;
    Ok(())
}

/// One line with its points and legend entry per curve.
fn draw_lines<'a, DB, X, Y>(chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>, curves: &[Series]) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, (label, points)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    }
    Ok(())
}
