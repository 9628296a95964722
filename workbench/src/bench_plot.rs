//! The latency distribution of a bench-peers run: one curve per store,
//! latency (log scale) against percentile, so tails compare at a glance.

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
