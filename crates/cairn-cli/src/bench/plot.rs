//! `--plot DIR`: SVG charts of the side-by-side rows, drawn with `plotters`' SVG backend.
//!
//! One chart per workload group (`point_read.svg` holds `point_read/uniform` and
//! `point_read/hot`): a panel per workload, a horizontal bar per store (Cairn's in orange, each
//! peer engine in its own colour) with its value at the end, the axis from 0, and a caption
//! naming the workload and what a bar is. Then `ratios.svg`: Cairn's speed over each peer's
//! per workload, on a log scale with a line at 1x (bars to the right: Cairn ahead). The SVG
//! names its fonts and leaves drawing the text to the viewer, so nothing here needs a font.
//! DIR is created if missing; file names keep the letters, digits, `-` and `_` of a group.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{format_value, Row};
use super::side_by_side::{self, describe_measure, engine, Workload};

/// The summary chart's file name.
pub const RATIOS_FILE: &str = "ratios.svg";

/// The charts written.
#[derive(Debug, Default)]
pub struct Charts {
    /// One chart per group: the group's name and the chart's path.
    pub groups: Vec<(String, PathBuf)>,
    /// The ratio summary, if the run had ratio rows.
    pub ratios: Option<PathBuf>,
}

/// Writes every chart of `rows` into `dir` (created if missing).
pub fn write_charts(dir: &Path, rows: &[Row]) -> Result<Charts> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the chart directory {}", dir.display()))?;
    let write = |name: &str, svg: String| -> Result<PathBuf> {
        let path = dir.join(name);
        fs::write(&path, svg)
            .with_context(|| format!("cannot write the chart {}", path.display()))?;
        Ok(path)
    };
    let mut charts = Charts::default();
    for group in side_by_side::measured_groups(rows) {
        let mut stem: String = group
            .name
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
                _ => '_',
            })
            .collect();
        if stem.is_empty() || format!("{stem}.svg") == RATIOS_FILE {
            stem.push_str("-group");
        }
        let title = format!("{}: Cairn and its peers", group.name);
        let svg = group_chart(&title, &group.workloads)?;
        charts
            .groups
            .push((group.name.to_owned(), write(&format!("{stem}.svg"), svg)?));
    }
    let ratios = side_by_side::ratio_workloads(rows);
    if !ratios.is_empty() {
        charts.ratios = Some(write(RATIOS_FILE, ratio_chart(&ratios)?)?);
    }
    Ok(charts)
}

const WIDTH: u32 = 900;
const BAR: u32 = 26;
const FONT: &str = "sans-serif";

/// The colour of a subject's bars: Cairn's, a known peer's, or grey.
fn colour(subject: &str) -> RGBColor {
    match engine(subject) {
        "cairn" => RGBColor(0xe8, 0x59, 0x0c),
        "redb" => RGBColor(0x1c, 0x7e, 0xd6),
        "fjall" => RGBColor(0x2f, 0x9e, 0x44),
        "sqlite" => RGBColor(0x70, 0x48, 0xe8),
        "redis" => RGBColor(0xc2, 0x25, 0x5c),
        _ => RGBColor(0x86, 0x8e, 0x96),
    }
}

fn subject(row: &Row) -> &str {
    row.subject.as_deref().unwrap_or("?")
}

/// One panel of horizontal bars from 0, top to bottom, each with its label on the axis, its
/// colour, its length (not drawn unless finite) and the text at its end.
struct Panel {
    caption: Option<String>,
    bars: Vec<(String, RGBColor, f64, String)>,
    x_range: std::ops::Range<f64>,
    x_label: Box<dyn Fn(f64) -> String>,
}

/// An SVG titled `title` with the `panels` one under the other.
fn chart(title: &str, panels: &[Panel]) -> Result<String> {
    let height = |panel: &Panel| 70 + BAR * u32::try_from(panel.bars.len()).unwrap_or(0);
    let heights: Vec<u32> = panels.iter().map(height).collect();
    let labels = panels.iter().flat_map(|panel| &panel.bars);
    let label_chars = labels.map(|bar| bar.0.chars().count()).max().unwrap_or(0);
    let label_area = u32::try_from(label_chars).unwrap_or(40).saturating_mul(8) + 12;
    let mut svg = String::new();
    {
        let size = (WIDTH, 40 + heights.iter().sum::<u32>());
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let mut top = 0;
        let breaks = heights.iter().map(|height| {
            top += height;
            top
        });
        let areas = root.titled(title, (FONT, 24))?;
        let areas = areas.split_by_breakpoints([0; 0], breaks.collect::<Vec<_>>());
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, panel, label_area)?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn draw_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, panel: &Panel, label: u32) -> Result<()> {
    let count = panel.bars.len();
    let mut builder = ChartBuilder::on(area);
    if let Some(caption) = &panel.caption {
        builder.caption(caption, (FONT, 18));
    }
    let mut chart = (builder.margin(6).margin_right(40))
        .x_label_area_size(24)
        .y_label_area_size(label)
        .build_cartesian_2d(panel.x_range.clone(), (0..count).into_segmented())?;
    // Segments count from the bottom: the first bar is drawn at the top.
    let at = |index: usize| count - 1 - index;
    let label_of = |segment: &SegmentValue<usize>| match segment {
        SegmentValue::CenterOf(index) if *index < count => panel.bars[at(*index)].0.clone(),
        _ => String::new(),
    };
    (chart.configure_mesh().disable_y_mesh().y_labels(count))
        .y_label_formatter(&label_of)
        .x_labels(8)
        .x_label_formatter(&|value| (panel.x_label)(*value))
        .label_style((FONT, 16))
        .draw()?;
    let bars = panel.bars.iter().enumerate();
    let bars = bars.filter(|(_, (.., length, _))| length.is_finite());
    chart.draw_series(bars.clone().map(|(index, (_, colour, length, _))| {
        let (low, high) = (
            SegmentValue::Exact(at(index)),
            SegmentValue::Exact(at(index) + 1),
        );
        let mut bar = Rectangle::new([(0.0, low), (*length, high)], colour.filled());
        bar.set_margin(4, 4, 0, 0);
        bar
    }))?;
    let font = (FONT, 16).into_font().color(&BLACK);
    chart.draw_series(bars.map(|(index, (.., length, text))| {
        let side = if *length < 0.0 {
            HPos::Right
        } else {
            HPos::Left
        };
        let at = (*length, SegmentValue::CenterOf(at(index)));
        Text::new(
            format!(" {text} "),
            at,
            font.pos(Pos::new(side, VPos::Center)),
        )
    }))?;
    let zero = [0, count].map(|end| (0.0, SegmentValue::Exact(end)));
    chart.draw_series([PathElement::new(zero, BLACK.stroke_width(2))])?;
    Ok(())
}

/// A group's chart: a panel per workload, a bar per store from 0.
fn group_chart(title: &str, workloads: &[Workload<'_>]) -> Result<String> {
    let panel = |workload: &Workload<'_>| {
        let unit = workload.unit;
        let largest = workload
            .rows
            .iter()
            .map(|row| row.value)
            .fold(0.0, f64::max);
        let bar = |row: &&Row| {
            (
                subject(row).into(),
                colour(subject(row)),
                row.value,
                row.headline(),
            )
        };
        Panel {
            caption: Some(format!("{} — {}", workload.name, describe_measure(unit))),
            bars: workload.rows.iter().map(bar).collect(),
            x_range: 0.0..if largest > 0.0 { largest * 1.25 } else { 1.0 },
            x_label: Box::new(move |value| format_value(unit, value)),
        }
    };
    chart(title, &workloads.iter().map(panel).collect::<Vec<_>>())
}

/// The summary chart: Cairn's speed over each peer's, a bar per workload and peer from 1x, on
/// a log scale (a bar is log10 of the ratio; the axis is labelled in ratios).
fn ratio_chart(workloads: &[Workload<'_>]) -> Result<String> {
    let rows = workloads
        .iter()
        .flat_map(|workload| workload.rows.iter().map(move |row| (workload.name, row)));
    let bars: Vec<_> = rows
        .map(|(name, row)| {
            let label = format!("{name} vs {}", subject(row));
            (
                label,
                colour(subject(row)),
                row.value.log10(),
                row.headline(),
            )
        })
        .collect();
    let lengths = bars
        .iter()
        .map(|bar| bar.2)
        .filter(|length| length.is_finite());
    let (low, high) = lengths.fold((0.0, 0.0), |(low, high): (f64, f64), length| {
        (low.min(length), high.max(length))
    });
    let panel = Panel {
        caption: None,
        bars,
        x_range: (low - 0.4).floor()..(high + 0.5).ceil(),
        x_label: Box::new(|exponent| format!("{}x", 10_f64.powf(exponent))),
    };
    chart(
        "Cairn's speed relative to each peer (log scale; right of 1x: Cairn ahead)",
        &[panel],
    )
}

#[cfg(test)]
mod tests {
    use super::super::report::Unit;
    use super::super::side_by_side::test_rows::{measured, ratio};
    use super::*;

    #[test]
    fn charts_name_every_store_and_their_figures() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let latency =
            |workload, subject, value| measured(workload, subject, Unit::Nanoseconds, value);
        let rows = vec![
            latency("point_read/uniform", "cairn-buffered", 400.0),
            latency("point_read/uniform", "<odd & store>", 800.0),
            latency("point_read/hot", "sqlite-strict", 30_000.0),
            measured("ratios", "cairn-inmemory", Unit::OpsPerSecond, 1e6),
            measured("memory/uniform", "redis", Unit::Bytes, 2e6),
            ratio("point_read/uniform", "redb-buffered", 10.0),
            ratio("point_read/uniform", "fjall-buffered", 0.1),
            ratio("point_read/uniform", "sqlite-strict", 0.0),
        ];
        let charts = write_charts(&dir.path().join("charts"), &rows).expect("charts written");
        let read = |path: &Path| fs::read_to_string(path).expect("the chart is readable");
        let files = charts.groups.iter().map(|(_, path)| path.file_name());
        let files: Vec<_> = files
            .map(|name| name.map(|name| name.to_string_lossy()))
            .collect();
        assert_eq!(
            files,
            ["point_read.svg", "ratios-group.svg", "memory.svg"].map(|f| Some(f.into()))
        );
        let point_read = read(&charts.groups[0].1);
        assert!(point_read.starts_with("<svg") && point_read.trim_end().ends_with("</svg>"));
        for text in [
            "cairn-buffered\n",
            "sqlite-strict\n",
            "&lt;odd &amp; store&gt;\n",
            "30.0 µs",
        ] {
            assert!(point_read.contains(text), "{text} in {point_read}");
        }
        assert!(
            read(&charts.groups[2].1).contains("1.9 MiB"),
            "bytes in binary units"
        );
        let ratios = read(charts.ratios.as_deref().expect("a ratio chart"));
        for text in [
            "vs redb-buffered",
            "vs fjall-buffered",
            "10.00x",
            "0.10x",
            "1x",
        ] {
            assert!(ratios.contains(text), "{text} in {ratios}");
        }
    }
}
