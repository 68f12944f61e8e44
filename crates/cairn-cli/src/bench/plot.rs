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

/// Pixels for a label of `chars` characters at the label font.
fn label_width(chars: usize) -> u32 {
    u32::try_from(chars).unwrap_or(100).saturating_mul(8) + 12
}

/// Draws on a white `height` px tall SVG titled `title`; returns the document.
fn svg(
    title: &str,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root.titled(title, (FONT, 24))?)?;
        root.present()?;
    }
    Ok(svg)
}

/// A group's chart: one panel of bars per workload, each bar a store.
fn group_chart(title: &str, workloads: &[Workload<'_>]) -> Result<String> {
    let heights: Vec<u32> = workloads
        .iter()
        .map(|workload| 70 + BAR * u32::try_from(workload.rows.len()).unwrap_or(0))
        .collect();
    let labels = workloads.iter().flat_map(|workload| &workload.rows);
    let y_label_area = label_width(labels.map(|row| subject(row).len()).max().unwrap_or(0));
    svg(title, 40 + heights.iter().sum::<u32>(), |area| {
        let breaks: Vec<u32> = heights
            .iter()
            .scan(0, |top, height| {
                *top += height;
                Some(*top)
            })
            .collect();
        let panels = area.split_by_breakpoints::<u32, u32, _, _>([], &breaks);
        for (panel, workload) in panels.iter().zip(workloads) {
            let rows = &workload.rows;
            let largest = rows.iter().map(|row| row.value).fold(0.0, f64::max);
            let x_max = if largest.is_finite() && largest > 0.0 {
                largest * 1.2
            } else {
                1.0
            };
            let caption = format!("{} — {}", workload.name, describe_measure(workload.unit));
            let mut chart = ChartBuilder::on(panel)
                .caption(caption, (FONT, 18))
                .margin(6)
                .margin_right(30)
                .x_label_area_size(24)
                .y_label_area_size(y_label_area)
                .build_cartesian_2d(0.0..x_max, (0..rows.len()).into_segmented())?;
            // Segments count from the bottom: the first row is drawn at the top.
            let at = |index: usize| rows.len() - 1 - index;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(rows.len())
                .y_label_formatter(&|segment| match segment {
                    SegmentValue::CenterOf(index) if *index < rows.len() => {
                        subject(rows[at(*index)]).to_owned()
                    }
                    _ => String::new(),
                })
                .x_labels(6)
                .x_label_formatter(&|value| format_value(workload.unit, *value))
                .label_style((FONT, 16))
                .draw()?;
            chart.draw_series(rows.iter().enumerate().map(|(index, row)| {
                let ends = [
                    (0.0, SegmentValue::Exact(at(index))),
                    (row.value, SegmentValue::Exact(at(index) + 1)),
                ];
                let mut bar = Rectangle::new(ends, colour(subject(row)).filled());
                bar.set_margin(4, 4, 0, 0);
                bar
            }))?;
            let label = (FONT, 16).into_font().color(&BLACK);
            let label = label.pos(Pos::new(HPos::Left, VPos::Center));
            chart.draw_series(rows.iter().enumerate().map(|(index, row)| {
                let text = format!(" {}", row.headline());
                Text::new(text, (row.value, SegmentValue::CenterOf(at(index))), &label)
            }))?;
        }
        Ok(())
    })
}

/// The summary chart: Cairn's speed over each peer's, a bar per workload and peer, log scale.
fn ratio_chart(workloads: &[Workload<'_>]) -> Result<String> {
    let bars: Vec<(String, &Row)> = workloads
        .iter()
        .flat_map(|workload| {
            let name = workload.name;
            let rows = workload.rows.iter();
            rows.map(move |row| (format!("{name} vs {}", subject(row)), *row))
        })
        .collect();
    let count = bars.len();
    let (low, high) = bars
        .iter()
        .map(|(_, row)| row.value)
        .filter(|value| value.is_finite() && *value > 0.0)
        .fold((1.0_f64, 1.0_f64), |(low, high), value| {
            (low.min(value), high.max(value))
        });
    let low = 10_f64.powf((low / 2.0).log10().floor());
    let high = 10_f64.powf((high * 3.0).log10().ceil());
    let y_label_area = label_width(bars.iter().map(|(label, _)| label.len()).max().unwrap_or(0));
    let height = 110 + BAR * u32::try_from(count).unwrap_or(0);
    let title = "Cairn's speed relative to each peer (log scale; right of 1x: Cairn ahead)";
    svg(title, height, |area| {
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .margin_right(40)
            .x_label_area_size(30)
            .y_label_area_size(y_label_area)
            .build_cartesian_2d((low..high).log_scale(), (0..count).into_segmented())?;
        let at = |index: usize| count - 1 - index;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(count)
            .y_label_formatter(&|segment| match segment {
                SegmentValue::CenterOf(index) if *index < count => bars[at(*index)].0.clone(),
                _ => String::new(),
            })
            .x_label_formatter(&|value| format!("{value}x"))
            .label_style((FONT, 16))
            .draw()?;
        let shown = bars
            .iter()
            .enumerate()
            .filter(|(_, (_, row))| row.value.is_finite() && row.value > 0.0);
        chart.draw_series(shown.clone().map(|(index, (_, row))| {
            let ends = [
                (1.0, SegmentValue::Exact(at(index))),
                (row.value, SegmentValue::Exact(at(index) + 1)),
            ];
            let mut bar = Rectangle::new(ends, colour(subject(row)).filled());
            bar.set_margin(4, 4, 0, 0);
            bar
        }))?;
        let font = (FONT, 16).into_font().color(&BLACK);
        chart.draw_series(shown.map(|(index, (_, row))| {
            let (text, side) = if row.value >= 1.0 {
                (format!(" {}", row.headline()), HPos::Left)
            } else {
                (format!("{} ", row.headline()), HPos::Right)
            };
            let style = font.pos(Pos::new(side, VPos::Center));
            Text::new(text, (row.value, SegmentValue::CenterOf(at(index))), style)
        }))?;
        let parity = [
            (1.0, SegmentValue::Exact(0)),
            (1.0, SegmentValue::Exact(count)),
        ];
        chart.draw_series([PathElement::new(parity, BLACK.stroke_width(2))])?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::report::Unit;
    use super::super::side_by_side::test_rows::{measured, ratio};
    use super::*;

    #[test]
    fn charts_name_every_store_and_their_figures() {
        let dir = std::env::temp_dir().join(format!("cairn-plot-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let rows = vec![
            measured(
                "point_read/uniform",
                "cairn-buffered",
                Unit::Nanoseconds,
                400.0,
            ),
            measured(
                "point_read/uniform",
                "<odd & store>",
                Unit::Nanoseconds,
                800.0,
            ),
            measured(
                "point_read/hot",
                "sqlite-strict",
                Unit::Nanoseconds,
                30_000.0,
            ),
            measured("ratios", "cairn-inmemory", Unit::OpsPerSecond, 1e6),
            measured("memory/uniform", "redis", Unit::Bytes, 2e6),
            ratio("point_read/uniform", "redb-buffered", 10.0),
            ratio("point_read/uniform", "fjall-buffered", 0.1),
            ratio("point_read/uniform", "sqlite-strict", 0.0),
        ];
        let charts = write_charts(&dir.join("charts"), &rows).expect("the charts are written");
        let names: Vec<String> = (charts.groups.iter())
            .map(|(_, path)| path.file_name().expect("a file").to_string_lossy().into())
            .collect();
        assert_eq!(names, ["point_read.svg", "ratios-group.svg", "memory.svg"]);
        let read = |path: &Path| fs::read_to_string(path).expect("the chart is readable");
        let point_read = read(&charts.groups[0].1);
        assert!(point_read.starts_with("<svg") && point_read.trim_end().ends_with("</svg>"));
        for text in [
            "cairn-buffered\n",
            "sqlite-strict\n",
            "&lt;odd &amp; store&gt;\n",
        ] {
            assert!(point_read.contains(text), "{text} in {point_read}");
        }
        assert!(point_read.contains("30.0 µs") && point_read.contains("lower is better"));
        assert!(
            read(&charts.groups[2].1).contains("1.9 MiB"),
            "bytes in binary units"
        );
        let ratios = read(charts.ratios.as_deref().expect("a ratio chart"));
        for text in ["vs redb-buffered", "vs fjall-buffered", "10.00x", "0.10x"] {
            assert!(ratios.contains(text), "{text} in {ratios}");
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
