//! The report's SVG charts (plotters, SVG backend only, so no font or image library is built):
//! Strata's throughput relative to etcd's per workload, with the target marked, and
//! each workload's latency percentiles for both servers.

use std::path::Path;

use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordf64, RangedCoordusize};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One workload's figures for the charts.
pub struct Row {
    pub name: String,
    /// Strata's throughput over etcd's.
    pub ratio: f64,
    /// The target ratio, if any.
    pub target: Option<f64>,
    /// (percentile, ms) for etcd and for Strata.
    pub etcd: Vec<(f64, f64)>,
    pub strata: Vec<(f64, f64)>,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("drawing a chart: {e}")
}

const STRATA: RGBColor = RGBColor(31, 119, 180);
const ETCD: RGBColor = RGBColor(214, 39, 40);

/// throughput.svg: one bar per workload (Strata / etcd), a line at 1x and a mark at the target.
pub fn throughput(path: &Path, rows: &[Row]) -> Result<(), String> {
    let root = SVGBackend::new(path, (180 * rows.len().max(3) as u32, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let top = rows
        .iter()
        .flat_map(|r| [r.ratio, r.target.unwrap_or(0.0)])
        .fold(2.0f64, f64::max)
        * 1.15;
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Strata throughput relative to etcd (same client, same run)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((0..rows.len()).into_segmented(), 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("x etcd")
        .x_labels(rows.len())
        .x_label_formatter(&|v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .draw()
        .map_err(err)?;
    bars(&mut chart, rows)?;
    // etcd's level, and each workload's target.
    chart
        .draw_series(LineSeries::new(
            [(SegmentValue::Exact(0), 1.0), (SegmentValue::Last, 1.0)],
            ETCD.stroke_width(2),
        ))
        .map_err(err)?
        .label("etcd = 1x")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], ETCD.stroke_width(2)));
    chart
        .draw_series(rows.iter().enumerate().filter_map(|(i, r)| {
            r.target.map(|t| {
                PathElement::new(
                    [(SegmentValue::Exact(i), t), (SegmentValue::Exact(i + 1), t)],
                    BLACK.stroke_width(1),
                )
            })
        }))
        .map_err(err)?
        .label("target")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

fn bars<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<SegmentedCoord<RangedCoordusize>, RangedCoordf64>>,
    rows: &[Row],
) -> Result<(), String> {
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), r.ratio),
                ],
                STRATA.mix(0.8).filled(),
            );
            bar.set_margin(0, 0, 30, 30);
            bar
        }))
        .map_err(|e| format!("drawing a chart: {e:?}"))?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            Text::new(
                format!("{:.2}x", r.ratio),
                (SegmentValue::CenterOf(i), r.ratio),
                TextStyle::from(("sans-serif", 14).into_font())
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))
        .map_err(|e| format!("drawing a chart: {e:?}"))?;
    Ok(())
}

/// latency.svg: one panel per workload, latency (ms) by percentile, etcd and Strata.
pub fn latency(path: &Path, rows: &[Row]) -> Result<(), String> {
    let cols = 3usize.min(rows.len().max(1));
    let lines = rows.len().div_ceil(cols).max(1);
    let root = SVGBackend::new(path, (380 * cols as u32, 300 * lines as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((lines, cols));
    for (panel, row) in panels.iter().zip(rows) {
        let pcts: Vec<f64> = row.strata.iter().map(|(p, _)| *p).collect();
        let top = row
            .etcd
            .iter()
            .chain(&row.strata)
            .map(|(_, v)| *v)
            .fold(0.1f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{} latency (ms)", row.name), ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(0..pcts.len().saturating_sub(1), 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(pcts.len())
            .x_label_formatter(&|i: &usize| {
                pcts.get(*i).map(|p| format!("p{p}")).unwrap_or_default()
            })
            .draw()
            .map_err(err)?;
        for (label, color, data) in [("etcd", ETCD, &row.etcd), ("Strata", STRATA, &row.strata)] {
            chart
                .draw_series(LineSeries::new(
                    data.iter().enumerate().map(|(i, (_, v))| (i, *v)),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}
