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
use std::path::Path;

use anyhow::{Context as _, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{self, engine, format_value, subject, Row, Unit, Workload};

/// The summary chart's file name.
pub const RATIOS_FILE: &str = "ratios.svg";

const WIDTH: u32 = 900;
const BAR: u32 = 26;
const FONT: &str = "sans-serif";

/// What a measured row's bar or cell shows, and which way is better.
pub fn describe_measure(unit: Unit) -> &'static str {
    match unit {
        Unit::Nanoseconds => "p50 latency per operation, lower is better",
        Unit::OpsPerSecond => "throughput, higher is better",
        Unit::Bytes => "bytes held, lower is better",
        Unit::Versions => "versions retained, lower is better",
        Unit::Ratio => "ratio",
    }
}

/// The file name of a group's chart.
pub fn file_name(group: &str) -> String {
    let keep = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut stem: String = group
        .chars()
        .map(|c| if keep(c) { c } else { '_' })
        .collect();
    if stem.is_empty() || format!("{stem}.svg") == RATIOS_FILE {
        stem.push_str("-group");
    }
    format!("{stem}.svg")
}

/// Writes every chart of `rows` into `dir` (created if missing); returns how many.
pub fn write_charts(dir: &Path, rows: &[Row]) -> Result<usize> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the chart directory {}", dir.display()))?;
    let workloads = report::workloads(rows);
    let mut charts = Vec::new();
    for (group, members) in report::groups(&workloads) {
        let panels: Vec<Panel> = members.into_iter().map(group_panel).collect();
        let title = format!("{group}: Cairn and its peers");
        charts.push((file_name(group), chart(&title, &panels)?));
    }
    let ratios = workloads.iter().filter(|it| it.unit == Unit::Ratio);
    let bars: Vec<Bar> = ratios
        .flat_map(|it| {
            it.rows
                .iter()
                .map(|row| bar(row, it.name, row.value.log10()))
        })
        .collect();
    if !bars.is_empty() {
        let lengths = bars
            .iter()
            .map(|bar| bar.2)
            .filter(|length| length.is_finite());
        let (low, high) = lengths.fold((0.0_f64, 0.0_f64), |(low, high), length| {
            (low.min(length), high.max(length))
        });
        let x_range = (low - 0.4).floor()..(high + 0.5).ceil();
        let panel = Panel {
            caption: None,
            bars,
            x_range,
            unit: None,
        };
        let title = "Cairn's speed relative to each peer (log scale; right of 1x: Cairn ahead)";
        charts.push((RATIOS_FILE.to_owned(), chart(title, &[panel])?));
    }
    for (name, svg) in &charts {
        let path = dir.join(name);
        fs::write(&path, svg)
            .with_context(|| format!("cannot write the chart {}", path.display()))?;
    }
    Ok(charts.len())
}

/// A bar: its label on the axis, its colour, its length (not drawn unless finite) and the
/// text at its end.
type Bar = (String, RGBColor, f64, String);

/// A subject's bar of `length` for `row`: labelled by the subject, or for a ratio row
/// `<workload> vs <subject>`; coloured Cairn's, a known peer's, or grey.
fn bar(row: &Row, workload: &str, length: f64) -> Bar {
    let colour = match engine(subject(row)) {
        "cairn" => RGBColor(0xe8, 0x59, 0x0c),
        "redb" => RGBColor(0x1c, 0x7e, 0xd6),
        "fjall" => RGBColor(0x2f, 0x9e, 0x44),
        "sqlite" => RGBColor(0x70, 0x48, 0xe8),
        "redis" => RGBColor(0xc2, 0x25, 0x5c),
        _ => RGBColor(0x86, 0x8e, 0x96),
    };
    let label = match row.unit {
        Unit::Ratio => format!("{workload} vs {}", subject(row)),
        _ => subject(row).to_owned(),
    };
    (label, colour, length, row.headline())
}

/// One panel of horizontal bars from 0, top to bottom; the axis labelled in `unit`, or in
/// ratios of a log10 length without one.
struct Panel {
    caption: Option<String>,
    bars: Vec<Bar>,
    x_range: std::ops::Range<f64>,
    unit: Option<Unit>,
}

/// A workload's panel: a bar per store from 0.
fn group_panel(workload: &Workload<'_>) -> Panel {
    let largest = workload
        .rows
        .iter()
        .map(|row| row.value)
        .fold(0.0, f64::max);
    Panel {
        caption: Some(format!(
            "{} — {}",
            workload.name,
            describe_measure(workload.unit)
        )),
        bars: workload
            .rows
            .iter()
            .map(|row| bar(row, workload.name, row.value))
            .collect(),
        x_range: 0.0..if largest > 0.0 { largest * 1.25 } else { 1.0 },
        unit: Some(workload.unit),
    }
}

/// An SVG titled `title` with the `panels` one under the other.
fn chart(title: &str, panels: &[Panel]) -> Result<String> {
    let heights: Vec<u32> = (panels.iter())
        .map(|panel| 70 + BAR * u32::try_from(panel.bars.len()).unwrap_or(0))
        .collect();
    let labels = panels.iter().flat_map(|panel| &panel.bars);
    let label_chars = labels.map(|bar| bar.0.chars().count()).max().unwrap_or(0);
    let label_area = u32::try_from(label_chars).unwrap_or(40).saturating_mul(8) + 12;
    let mut svg = String::new();
    {
        let size = (WIDTH, 40 + heights.iter().sum::<u32>());
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let breaks: Vec<u32> = (heights.iter())
            .scan(0, |top, height| {
                *top += height;
                Some(*top)
            })
            .collect();
        let areas = root
            .titled(title, (FONT, 24))?
            .split_by_breakpoints([0; 0], breaks);
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
        SegmentValue::CenterOf(index) if *index < count => panel
            .bars
            .get(at(*index))
            .map(|bar| bar.0.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let x_label = |value: &f64| match panel.unit {
        Some(unit) => format_value(unit, *value),
        None => format!("{}x", 10_f64.powf(*value)),
    };
    (chart.configure_mesh().disable_y_mesh().y_labels(count))
        .y_label_formatter(&label_of)
        .x_labels(8)
        .x_label_formatter(&x_label)
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

#[cfg(test)]
mod tests {
    use super::super::report::test_rows::row;
    use super::*;

    #[test]
    fn charts_name_every_store_and_their_figures() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let dir = dir.path().join("charts");
        let ns = |workload, subject, value| row(workload, subject, Unit::Nanoseconds, value);
        let ratio = |subject, value| row("point_read/uniform", subject, Unit::Ratio, value);
        let rows = vec![
            ns("point_read/uniform", "cairn-buffered", 400.0),
            ns("point_read/uniform", "<odd & store>", 800.0),
            ns("point_read/hot", "sqlite-strict", 30_000.0),
            row("ratios", "cairn-inmemory", Unit::OpsPerSecond, 1e6),
            row("memory/uniform", "redis", Unit::Bytes, 2e6),
            ratio("redb-buffered", 10.0),
            ratio("fjall-buffered", 0.1),
            ratio("sqlite-strict", 0.0),
        ];
        assert_eq!(write_charts(&dir, &rows).expect("charts written"), 4);
        let read = |name: &str| fs::read_to_string(dir.join(name)).expect("the chart is readable");
        let point_read = read("point_read.svg");
        assert!(point_read.starts_with("<svg") && point_read.trim_end().ends_with("</svg>"));
        let memory = read("memory.svg");
        let ratios = read(RATIOS_FILE);
        for (chart, text) in [
            (&point_read, "cairn-buffered\n"),
            (&point_read, "sqlite-strict\n"),
            (&point_read, "&lt;odd &amp; store&gt;\n"),
            (&point_read, "30.0 µs"),
            (&memory, "1.9 MiB"),
            (&read("ratios-group.svg"), "1.00M ops/s"),
            (&ratios, "vs redb-buffered"),
            (&ratios, "vs fjall-buffered"),
            (&ratios, "10.00x"),
            (&ratios, "0.10x"),
            (&ratios, "1x"),
        ] {
            assert!(chart.contains(text), "{text} in {chart}");
        }
    }
}
