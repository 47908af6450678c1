//! The sweep chart: throughput and p99 latency against requests in flight
//! (log2 axis), Portolan and the baseline, as one SVG with two panels,
//! drawn with plotters' SVG backend (no fonts or bitmaps needed).

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// One point of the sweep for one server.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Point {
    /// Requests in flight.
    pub in_flight: usize,
    /// Requests per second.
    pub throughput_rps: f64,
    /// p99 latency in microseconds.
    pub p99_us: f64,
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the sweep chart: {e}")
}

/// Draws the two panels to `path` (parent folder created if missing).
pub fn sweep_svg(path: &Path, title: &str, portolan: &[Point], baseline: &[Point]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 18)).map_err(err)?;
    let (left, right) = root.split_horizontally(600);
    let all = || portolan.iter().chain(baseline.iter());
    let x_max = all()
        .map(|p| (p.in_flight.max(1) as f64).log2())
        .fold(1.0, f64::max);
    let log2 = |p: &Point| (p.in_flight.max(1) as f64).log2();
    let x_label = |x: &f64| format!("{}", 2f64.powf(*x).round());

    let t_max = all().map(|p| p.throughput_rps).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&left)
        .caption("Throughput (req/s)", ("sans-serif", 16))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..t_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("requests in flight")
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y: &f64| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for (name, points, color) in [("portolan", portolan, BLUE), ("baseline", baseline, RED)] {
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (log2(p), p.throughput_rps)),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;

    let l_max = all().map(|p| p.p99_us / 1e3).fold(0.1, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&right)
        .caption("p99 latency (ms)", ("sans-serif", 16))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..l_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("requests in flight")
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y: &f64| format!("{y:.2}"))
        .draw()
        .map_err(err)?;
    for (name, points, color) in [("portolan", portolan, BLUE), ("baseline", baseline, RED)] {
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (log2(p), p.p99_us / 1e3)),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
