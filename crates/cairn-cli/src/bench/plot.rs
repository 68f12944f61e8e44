//! `--plot DIR`: SVG charts of the side-by-side rows: a chart per workload group (a panel per
//! workload, a bar from 0 per store in its engine's colour, its figure at the end), and
//! `ratios.svg` (Cairn's speed over each peer's on a log scale: right of 1x, Cairn is ahead).
//! The SVG names its fonts and leaves drawing text to the viewer, so nothing needs a font.

use std::fs;
use std::path::Path;

use anyhow::{Context as _, Result};
use plotters::coord::Shift;
use plotters::prelude::SegmentValue::{CenterOf, Exact};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{self, engine, format_value, subject, Row, Unit};

pub const RATIOS_FILE: &str = "ratios.svg";

const WIDTH: u32 = 900;
const BAR: u32 = 26;
const FONT: &str = "sans-serif";

/// The file name of a group's chart: the group's letters, digits, `-` and `_`.
pub fn file_name(group: &str) -> String {
    let keep = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let stem = group.replace(|c: char| !keep(c), "_");
    if stem.is_empty() || format!("{stem}.svg") == RATIOS_FILE {
        return format!("{stem}-group.svg");
    }
    format!("{stem}.svg")
}

/// Writes every chart of `rows` into `dir`; returns how many.
pub fn write_charts(dir: &Path, rows: &[Row]) -> Result<usize> {
    let workloads = report::workloads(rows);
    let mut charts = Vec::new();
    for (group, members) in report::groups(&workloads) {
        let panels = members.into_iter().map(|workload| {
            let (name, unit) = (workload.name, workload.unit);
            let caption = format!("{name} — {}", report::describe_measure(unit));
            let bars = workload.rows.iter().map(|row| bar(row, name, row.value));
            (Some(caption), bars.collect(), Some(unit))
        });
        let panels: Vec<Panel> = panels.collect();
        let title = format!("{group}: Cairn and its peers");
        charts.push((file_name(group), chart(&title, &panels)?));
    }
    let ratios = workloads.iter().filter(|it| it.unit == Unit::Ratio);
    let ratios = ratios.flat_map(|it| it.rows.iter().map(|row| (it.name, row)));
    let bars = ratios.map(|(name, row)| bar(row, name, row.value.log10()));
    let bars: Vec<Bar> = bars.collect();
    if !bars.is_empty() {
        let title = "Cairn's speed relative to each peer (log scale; right of 1x: Cairn ahead)";
        charts.push((RATIOS_FILE.to_owned(), chart(title, &[(None, bars, None)])?));
    }
    for (name, svg) in &charts {
        let path = dir.join(name);
        let error = || format!("cannot write the chart {}", path.display());
        fs::write(&path, svg).with_context(error)?;
    }
    Ok(charts.len())
}

/// A bar: its label, colour, length (drawn when finite) and the text at its end.
type Bar = (String, RGBColor, f64, String);

/// A panel of bars, top to bottom, under an optional caption: with a unit, from 0 with an
/// axis in that unit; without one, log10 ratios with an axis in ratios.
type Panel = (Option<String>, Vec<Bar>, Option<Unit>);

/// A bar for `row`, labelled by its subject (a ratio row: `<workload> vs <subject>`).
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

/// An SVG titled `title` with the `panels` one under the other.
fn chart(title: &str, panels: &[Panel]) -> Result<String> {
    let heights: Vec<u32> = (panels.iter())
        .map(|(_, bars, _)| 70 + BAR * u32::try_from(bars.len()).unwrap_or(0))
        .collect();
    let labels = panels.iter().flat_map(|(_, bars, _)| bars);
    let label_chars = labels.map(|bar| bar.0.chars().count()).max().unwrap_or(0);
    let label_area = u32::try_from(label_chars).unwrap_or(40).saturating_mul(8) + 12;
    let mut svg = String::new();
    {
        let size = (WIDTH, 40 + heights.iter().sum::<u32>());
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let breaks = heights.iter().scan(0, |top, height| {
            *top += height;
            Some(*top)
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
    let (caption, bars, unit) = panel;
    let lengths = bars.iter().map(|bar| bar.2).filter(|it| it.is_finite());
    let low = lengths.clone().fold(0.0, f64::min);
    let high = lengths.fold(0.0, f64::max);
    let x_range = match unit {
        Some(_) => 0.0..if high > 0.0 { high * 1.25 } else { 1.0 },
        None => (low - 0.4).floor()..(high + 0.5).ceil(),
    };
    let mut builder = ChartBuilder::on(area);
    if let Some(caption) = caption {
        builder.caption(caption, (FONT, 18));
    }
    let count = bars.len();
    let mut chart = (builder.margin(6).margin_right(40))
        .x_label_area_size(24)
        .y_label_area_size(label)
        .build_cartesian_2d(x_range, (0..count).into_segmented())?;
    // Segments count from the bottom: the first bar is drawn at the top.
    let bars: Vec<&Bar> = bars.iter().rev().collect();
    let label_of = |segment: &SegmentValue<usize>| match segment {
        CenterOf(at) => bars.get(*at).map(|bar| bar.0.clone()).unwrap_or_default(),
        _ => String::new(),
    };
    let x_label = |value: &f64| match unit {
        Some(unit) => format_value(*unit, *value),
        None => format!("{}x", 10_f64.powf(*value)),
    };
    (chart.configure_mesh().disable_y_mesh().y_labels(count))
        .y_label_formatter(&label_of)
        .x_labels(8)
        .x_label_formatter(&x_label)
        .label_style((FONT, 16))
        .draw()?;
    let drawn = (bars.into_iter().enumerate()).filter(|(_, bar)| bar.2.is_finite());
    chart.draw_series(drawn.clone().map(|(at, (_, colour, length, _))| {
        let corners = [(0.0, Exact(at)), (*length, Exact(at + 1))];
        let mut bar = Rectangle::new(corners, colour.filled());
        bar.set_margin(4, 4, 0, 0);
        bar
    }))?;
    let font = (FONT, 16).into_font().color(&BLACK);
    chart.draw_series(drawn.map(|(at, (.., length, text))| {
        let side = if *length < 0.0 {
            HPos::Right
        } else {
            HPos::Left
        };
        let (text, style) = (format!(" {text} "), font.pos(Pos::new(side, VPos::Center)));
        Text::new(text, (*length, CenterOf(at)), style)
    }))?;
    let zero = [0, count].map(|end| (0.0, Exact(end)));
    chart.draw_series([PathElement::new(zero, BLACK.stroke_width(2))])?;
    Ok(())
}
