//! `--plot DIR`: SVG charts of the side-by-side rows, written by hand.
//!
//! One chart per workload group (`point_read.svg` holds `point_read/uniform` and
//! `point_read/hot`), each workload a panel of horizontal bars, one per subject: Cairn's bars
//! in one colour, each peer engine in its own, the value with its unit at the end of each bar,
//! the axis starting at 0, and a panel title naming the workload and what a bar is ("p50
//! latency per operation, lower is better"). Then `ratios.svg`: for each workload, Cairn's
//! speed over each peer's on a log scale with a line at 1x (bars to the right: Cairn ahead).
//!
//! The SVG is written directly by a tiny writer that escapes every text and attribute, so a
//! chart needs no plotting library and no fonts at build time; text widths are estimated from
//! character counts. DIR is created if missing. Groups without rows make no chart; the
//! file names keep letters, digits, `-` and `_` of the group name.

use std::fmt::{Display, Write as _};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::report::{format_value, nearest_count, Row, Unit};
use super::side_by_side::{self, describe_measure, engine, Group, Workload};

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
        let mut stem = file_stem(group.name);
        if format!("{stem}.svg") == RATIOS_FILE {
            stem.push_str("-group");
        }
        let path = write(&format!("{stem}.svg"), group_chart(&group))?;
        charts.groups.push((group.name.to_owned(), path));
    }
    let ratios = side_by_side::ratio_workloads(rows);
    if !ratios.is_empty() {
        charts.ratios = Some(write(RATIOS_FILE, ratio_chart(&ratios))?);
    }
    Ok(charts)
}

/// `point_read` as a file name: letters, digits, `-` and `_` kept, anything else `_`.
fn file_stem(group: &str) -> String {
    let stem: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() {
        "workload".to_owned()
    } else {
        stem
    }
}

// Layout, in SVG user units (pixels).
const WIDTH: f64 = 820.0;
const MARGIN: f64 = 16.0;
const TITLE_FONT: f64 = 16.0;
const LABEL_FONT: f64 = 12.0;
const TICK_FONT: f64 = 11.0;
/// A generous average glyph width of a 12 px sans-serif font: labels are sized with it.
const CHAR_WIDTH: f64 = 7.0;
const BAR_HEIGHT: f64 = 18.0;
const BAR_PITCH: f64 = 24.0;
const HEADER_HEIGHT: f64 = 64.0;
const PANEL_TITLE_HEIGHT: f64 = 28.0;
const AXIS_HEIGHT: f64 = 30.0;
const PANEL_GAP: f64 = 14.0;

const TEXT_COLOUR: &str = "#212529";
const GRID_COLOUR: &str = "#dee2e6";
const CAIRN_COLOUR: &str = "#e8590c";
const PEER_COLOURS: [(&str, &str); 4] = [
    ("redb", "#1c7ed6"),
    ("fjall", "#2f9e44"),
    ("sqlite", "#7048e8"),
    ("redis", "#c2255c"),
];
const OTHER_COLOURS: [&str; 4] = ["#868e96", "#0c8599", "#f59f00", "#5c940d"];

/// The colour of an engine's bars: Cairn's, a known peer's, or one picked by name.
fn colour(engine: &str) -> &'static str {
    if engine == "cairn" {
        return CAIRN_COLOUR;
    }
    if let Some((_, colour)) = PEER_COLOURS.iter().find(|(known, _)| *known == engine) {
        return colour;
    }
    let hash = engine.bytes().fold(0_usize, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(usize::from(byte))
    });
    OTHER_COLOURS[hash % OTHER_COLOURS.len()]
}

/// The estimated width of `text` at the label font.
fn text_width(text: &str) -> f64 {
    #[expect(
        clippy::cast_precision_loss,
        reason = "label lengths are tiny; f64 holds them exactly"
    )]
    let chars = text.chars().count() as f64;
    chars * CHAR_WIDTH
}

/// The widest of `texts`, at least `minimum`.
fn widest<'a>(texts: impl IntoIterator<Item = &'a str>, minimum: f64) -> f64 {
    texts.into_iter().map(text_width).fold(minimum, f64::max)
}

/// A group's chart: one panel of bars per workload.
pub fn group_chart(group: &Group<'_>) -> String {
    let labels = group
        .workloads
        .iter()
        .flat_map(|workload| &workload.rows)
        .filter_map(|row| row.subject.as_deref());
    let label_width = widest(labels, 80.0) + 12.0;
    let value_width = widest(
        group
            .workloads
            .iter()
            .flat_map(|workload| &workload.rows)
            .map(|row| row.headline())
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
        40.0,
    ) + 10.0;
    let plot_left = MARGIN + label_width;
    let plot_width = (WIDTH - plot_left - value_width - MARGIN).max(100.0);

    let bars: usize = group
        .workloads
        .iter()
        .map(|workload| workload.rows.len())
        .sum();
    let height = HEADER_HEIGHT
        + count_f64(group.workloads.len()) * (PANEL_TITLE_HEIGHT + AXIS_HEIGHT + PANEL_GAP)
        + count_f64(bars) * BAR_PITCH
        + MARGIN;
    let title = format!("{}: Cairn and its peers", group.name);
    let mut svg = Svg::new(WIDTH, height, &title);
    svg.text(
        MARGIN,
        MARGIN + TITLE_FONT,
        &[("font-size", &TITLE_FONT), ("font-weight", &"bold")],
        &title,
    );
    legend(&mut svg, &group.subjects(), MARGIN + TITLE_FONT + 20.0);

    let mut top = HEADER_HEIGHT;
    for workload in &group.workloads {
        top = bar_panel(&mut svg, workload, top, plot_left, plot_width) + PANEL_GAP;
    }
    svg.finish()
}

/// Draws one workload's bars from `top`; returns the y where the panel ends.
fn bar_panel(
    svg: &mut Svg,
    workload: &Workload<'_>,
    top: f64,
    plot_left: f64,
    plot_width: f64,
) -> f64 {
    svg.text(
        MARGIN,
        top + 16.0,
        &[("font-size", &13.0), ("font-weight", &"bold")],
        &format!("{} — {}", workload.name, describe_measure(workload.unit)),
    );
    let bars_top = top + PANEL_TITLE_HEIGHT;
    let axis_y = bars_top + count_f64(workload.rows.len()) * BAR_PITCH;
    let largest = workload
        .rows
        .iter()
        .map(|row| row.value)
        .filter(|value| value.is_finite())
        .fold(0.0, f64::max);
    let (axis_max, step) = if workload.unit == Unit::Bytes {
        binary_axis(largest)
    } else {
        linear_axis(largest)
    };
    let x_of = |value: f64| plot_left + (value / axis_max).clamp(0.0, 1.0) * plot_width;

    let ticks = nearest_count(axis_max / step);
    for index in 0..=ticks {
        let value = count_f64_u64(index) * step;
        let x = x_of(value);
        svg.line(x, bars_top - 4.0, x, axis_y, GRID_COLOUR, 1.0);
        svg.text(
            x,
            axis_y + 16.0,
            &[("font-size", &TICK_FONT), ("text-anchor", &"middle")],
            &format_value(workload.unit, value),
        );
    }
    svg.line(
        plot_left,
        axis_y,
        plot_left + plot_width,
        axis_y,
        TEXT_COLOUR,
        1.0,
    );
    svg.line(
        plot_left,
        bars_top - 4.0,
        plot_left,
        axis_y,
        TEXT_COLOUR,
        1.0,
    );

    for (index, row) in workload.rows.iter().enumerate() {
        let subject = row.subject.as_deref().unwrap_or("?");
        let y = bars_top + count_f64(index) * BAR_PITCH + (BAR_PITCH - BAR_HEIGHT) / 2.0;
        let width = x_of(row.value) - plot_left;
        svg.text(
            plot_left - 6.0,
            y + 13.0,
            &[("font-size", &LABEL_FONT), ("text-anchor", &"end")],
            subject,
        );
        svg.open(
            "rect",
            &[
                ("class", &"bar"),
                ("x", &Num(plot_left)),
                ("y", &Num(y)),
                ("width", &Num(width)),
                ("height", &BAR_HEIGHT),
                ("fill", &colour(engine(subject))),
            ],
        );
        svg.text_element("title", &format!("{subject}: {}", row.figure));
        svg.close();
        svg.text(
            plot_left + width + 4.0,
            y + 13.0,
            &[("font-size", &LABEL_FONT)],
            &row.headline(),
        );
    }
    axis_y + AXIS_HEIGHT
}

/// The summary chart: Cairn's speed over each peer's, per workload, on a log scale.
pub fn ratio_chart(workloads: &[Workload<'_>]) -> String {
    let peers = workloads
        .iter()
        .flat_map(|workload| &workload.rows)
        .filter_map(|row| row.subject.as_deref());
    let left = MARGIN + widest(peers, 80.0) + 24.0;
    let values = workloads
        .iter()
        .flat_map(|workload| &workload.rows)
        .map(|row| row.value);
    // Room on the right for the half of the last decade's label that passes the axis end.
    let scale = LogScale::around(values, left, WIDTH - left - MARGIN - 24.0);

    let bars: usize = workloads.iter().map(|workload| workload.rows.len()).sum();
    let plot_top = HEADER_HEIGHT + 20.0;
    let axis_y = plot_top + count_f64(workloads.len()) * 22.0 + count_f64(bars) * BAR_PITCH;
    let title = "Cairn's speed relative to each peer (log scale; right of 1x: Cairn ahead)";
    let mut svg = Svg::new(WIDTH, axis_y + AXIS_HEIGHT + MARGIN, title);
    svg.text(
        MARGIN,
        MARGIN + TITLE_FONT,
        &[("font-size", &TITLE_FONT), ("font-weight", &"bold")],
        title,
    );
    let subjects = side_by_side::subjects(
        workloads
            .iter()
            .flat_map(|workload| workload.rows.iter().copied()),
    );
    legend(&mut svg, &subjects, MARGIN + TITLE_FONT + 20.0);
    scale.draw_grid(&mut svg, plot_top - 4.0, axis_y);

    let mut y = plot_top;
    for workload in workloads {
        svg.text(
            MARGIN,
            y + 15.0,
            &[("font-size", &LABEL_FONT), ("font-weight", &"bold")],
            workload.name,
        );
        y += 22.0;
        for row in &workload.rows {
            ratio_bar(&mut svg, &scale, row, y + (BAR_PITCH - BAR_HEIGHT) / 2.0);
            y += BAR_PITCH;
        }
    }
    let parity = scale.x_of(1.0);
    svg.line(parity, plot_top - 10.0, parity, axis_y, TEXT_COLOUR, 1.5);
    svg.text(
        parity,
        plot_top - 14.0,
        &[("font-size", &TICK_FONT), ("text-anchor", &"middle")],
        "1x: even",
    );
    svg.finish()
}

/// One peer's bar from 1x to Cairn's ratio against it, labelled at its outer end.
fn ratio_bar(svg: &mut Svg, scale: &LogScale, row: &Row, y: f64) {
    let subject = row.subject.as_deref().unwrap_or("?");
    svg.text(
        scale.left - 6.0,
        y + 13.0,
        &[("font-size", &LABEL_FONT), ("text-anchor", &"end")],
        &format!("vs {subject}"),
    );
    let parity = scale.x_of(1.0);
    if !(row.value.is_finite() && row.value > 0.0) {
        svg.text(parity + 4.0, y + 13.0, &[("font-size", &LABEL_FONT)], "n/a");
        return;
    }
    let end = scale.x_of(row.value);
    svg.open(
        "rect",
        &[
            ("class", &"bar"),
            ("x", &Num(parity.min(end))),
            ("y", &Num(y)),
            ("width", &Num((end - parity).abs())),
            ("height", &BAR_HEIGHT),
            ("fill", &colour(engine(subject))),
        ],
    );
    svg.text_element("title", &format!("Cairn vs {subject}: {}", row.figure));
    svg.close();
    let (label_x, anchor) = if row.value >= 1.0 {
        (end + 4.0, "start")
    } else {
        (end - 4.0, "end")
    };
    svg.text(
        label_x,
        y + 13.0,
        &[("font-size", &LABEL_FONT), ("text-anchor", &anchor)],
        &row.headline(),
    );
}

/// A horizontal log10 axis over whole decades.
struct LogScale {
    low_exponent: f64,
    high_exponent: f64,
    left: f64,
    width: f64,
}

impl LogScale {
    /// Decades around 1x and every positive finite value of `values`, with room beyond the
    /// outermost values for their labels.
    fn around(values: impl Iterator<Item = f64>, left: f64, width: f64) -> Self {
        let (smallest, largest) = values
            .filter(|value| value.is_finite() && *value > 0.0)
            .fold((1.0_f64, 1.0_f64), |(low, high), value| {
                (low.min(value), high.max(value))
            });
        LogScale {
            low_exponent: (smallest / 2.5).log10().floor().min(-1.0),
            high_exponent: (largest * 2.5).log10().ceil().max(1.0),
            left,
            width,
        }
    }

    fn x_of(&self, ratio: f64) -> f64 {
        let span = self.high_exponent - self.low_exponent;
        let position = (ratio.log10() - self.low_exponent) / span;
        self.left + position.clamp(0.0, 1.0) * self.width
    }

    /// Labelled lines at each decade, faint ones at 2x and 5x, and the axis at `bottom`.
    fn draw_grid(&self, svg: &mut Svg, top: f64, bottom: f64) {
        let mut exponent = self.low_exponent;
        while exponent <= self.high_exponent {
            let decade = 10_f64.powf(exponent);
            let x = self.x_of(decade);
            svg.line(x, top, x, bottom, GRID_COLOUR, 1.0);
            svg.text(
                x,
                bottom + 16.0,
                &[("font-size", &TICK_FONT), ("text-anchor", &"middle")],
                &format!("{}x", Num(decade)),
            );
            if exponent < self.high_exponent {
                for minor in [2.0, 5.0] {
                    let x = self.x_of(decade * minor);
                    svg.line(x, top, x, bottom, GRID_COLOUR, 0.5);
                }
            }
            exponent += 1.0;
        }
        let right = self.left + self.width;
        svg.line(self.left, bottom, right, bottom, TEXT_COLOUR, 1.0);
    }
}

/// A row of coloured squares naming the engines of `subjects`.
fn legend(svg: &mut Svg, subjects: &[&str], y: f64) {
    let mut engines: Vec<&str> = Vec::new();
    for subject in subjects {
        let engine = engine(subject);
        if !engines.contains(&engine) {
            engines.push(engine);
        }
    }
    let mut x = MARGIN;
    for engine in engines {
        svg.leaf(
            "rect",
            &[
                ("x", &Num(x)),
                ("y", &Num(y - 10.0)),
                ("width", &11.0),
                ("height", &11.0),
                ("fill", &colour(engine)),
            ],
        );
        svg.text(x + 16.0, y, &[("font-size", &LABEL_FONT)], engine);
        x += 16.0 + text_width(engine) + 18.0;
    }
}

/// An axis from 0 to a round number at or above `largest`, and its tick step.
fn linear_axis(largest: f64) -> (f64, f64) {
    if !(largest.is_finite() && largest > 0.0) {
        return (1.0, 0.25);
    }
    let raw_step = largest / 5.0;
    let magnitude = 10_f64.powf(raw_step.log10().floor());
    let fraction = raw_step / magnitude;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|nice| fraction <= *nice)
        .unwrap_or(10.0);
    let step = nice * magnitude;
    ((largest / step).ceil() * step, step)
}

/// Like [`linear_axis`], but round in KiB, MiB or GiB, so that byte ticks read well.
fn binary_axis(largest: f64) -> (f64, f64) {
    let mut scale = 1.0;
    while largest / scale >= 1024.0 && scale < 1024.0 * 1024.0 * 1024.0 {
        scale *= 1024.0;
    }
    let (axis_max, step) = linear_axis(largest / scale);
    (axis_max * scale, step * scale)
}

fn count_f64(count: usize) -> f64 {
    count_f64_u64(u64::try_from(count).unwrap_or(u64::MAX))
}

fn count_f64_u64(count: u64) -> f64 {
    cairn_bench::measure::count_as_f64(count)
}

/// A coordinate or number written compactly: at most two decimals, no trailing zeros.
struct Num(f64);

impl Display for Num {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = format!("{:.2}", self.0);
        let text = text.trim_end_matches('0').trim_end_matches('.');
        formatter.write_str(if text == "-0" { "0" } else { text })
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'` for SVG text and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// A minimal SVG writer: elements with escaped attributes and text, closed in order.
struct Svg {
    out: String,
    open: Vec<&'static str>,
}

type Attributes<'a> = [(&'a str, &'a dyn Display)];

impl Svg {
    /// Starts a `width` by `height` document titled `title`, on a white background.
    fn new(width: f64, height: f64, title: &str) -> Self {
        let mut svg = Svg {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            open: Vec::new(),
        };
        svg.open(
            "svg",
            &[
                ("xmlns", &"http://www.w3.org/2000/svg"),
                ("width", &Num(width)),
                ("height", &Num(height)),
                ("viewBox", &format!("0 0 {} {}", Num(width), Num(height))),
                ("font-family", &"DejaVu Sans, Helvetica, Arial, sans-serif"),
                ("fill", &TEXT_COLOUR),
            ],
        );
        svg.text_element("title", title);
        svg.leaf(
            "rect",
            &[("width", &"100%"), ("height", &"100%"), ("fill", &"white")],
        );
        svg
    }

    fn start_tag(&mut self, tag: &str, attributes: &Attributes<'_>) {
        let _ = write!(self.out, "{}<{tag}", "  ".repeat(self.open.len()));
        for (name, value) in attributes {
            let _ = write!(self.out, " {name}=\"{}\"", escape(&value.to_string()));
        }
    }

    /// Opens `tag`; [`Svg::close`] closes it.
    fn open(&mut self, tag: &'static str, attributes: &Attributes<'_>) {
        self.start_tag(tag, attributes);
        self.out.push_str(">\n");
        self.open.push(tag);
    }

    /// Closes the innermost open element.
    fn close(&mut self) {
        if let Some(tag) = self.open.pop() {
            let _ = writeln!(self.out, "{}</{tag}>", "  ".repeat(self.open.len()));
        }
    }

    /// An element without content.
    fn leaf(&mut self, tag: &str, attributes: &Attributes<'_>) {
        self.start_tag(tag, attributes);
        self.out.push_str("/>\n");
    }

    /// An element holding only `text`.
    fn text_element(&mut self, tag: &str, text: &str) {
        let _ = writeln!(
            self.out,
            "{}<{tag}>{}</{tag}>",
            "  ".repeat(self.open.len()),
            escape(text)
        );
    }

    /// A `<text>` at (`x`, `y`).
    fn text(&mut self, x: f64, y: f64, attributes: &Attributes<'_>, text: &str) {
        let (x, y) = (Num(x), Num(y));
        let mut all: Vec<(&str, &dyn Display)> = vec![("x", &x), ("y", &y)];
        all.extend_from_slice(attributes);
        self.start_tag("text", &all);
        let _ = writeln!(self.out, ">{}</text>", escape(text));
    }

    /// A straight line.
    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, colour: &str, width: f64) {
        self.leaf(
            "line",
            &[
                ("x1", &Num(x1)),
                ("y1", &Num(y1)),
                ("x2", &Num(x2)),
                ("y2", &Num(y2)),
                ("stroke", &colour),
                ("stroke-width", &Num(width)),
            ],
        );
    }

    /// Closes every open element and returns the document.
    fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::super::side_by_side::{measured_groups, ratio_workloads};
    use super::*;

    use super::super::side_by_side::test_rows::{measured, ratio};

    /// Every element opened is closed: `<tag ...>` (not `/>`) and `</tag>` counts match.
    fn assert_balanced(svg: &str) {
        for tag in ["svg", "rect", "text", "title", "line"] {
            let opening = format!("<{tag} ");
            let plain = format!("<{tag}>");
            let mut opened = svg.matches(&plain).count();
            let mut self_closed = 0;
            for (at, _) in svg.match_indices(&opening) {
                let end = svg[at..].find('>').expect("every tag ends");
                if svg[at..at + end].ends_with('/') {
                    self_closed += 1;
                } else {
                    opened += 1;
                }
            }
            let closed = svg.matches(&format!("</{tag}>")).count();
            assert_eq!(
                opened, closed,
                "<{tag}> opened {opened} times, closed {closed}"
            );
            assert!(
                opened + self_closed > 0 || tag == "line",
                "no <{tag}> at all"
            );
        }
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "numbers are finite"
        );
        // A bar holds only its tooltip: the element after it closes it.
        let lines: Vec<&str> = svg.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if line.contains("class=\"bar\"") {
                assert!(
                    lines[index + 1].trim_start().starts_with("<title>"),
                    "{line}"
                );
                assert_eq!(lines[index + 2].trim(), "</rect>", "after {line}");
            }
        }
    }

    /// The widths of the bars, in document order.
    fn bar_widths(svg: &str) -> Vec<f64> {
        svg.lines()
            .filter(|line| line.contains("class=\"bar\""))
            .map(|line| {
                let start = line.find(" width=\"").expect("a bar has a width") + 8;
                let end = start + line[start..].find('"').expect("the value ends");
                line[start..end].parse().expect("the width is a number")
            })
            .collect()
    }

    #[test]
    fn a_group_chart_is_well_formed_proportional_and_names_every_subject() {
        let rows = vec![
            measured(
                "point_read/uniform",
                "cairn-buffered",
                Unit::Nanoseconds,
                400.0,
            ),
            measured(
                "point_read/uniform",
                "redb-buffered",
                Unit::Nanoseconds,
                1_200.0,
            ),
            measured(
                "point_read/uniform",
                "<odd & \"store\">",
                Unit::Nanoseconds,
                800.0,
            ),
            measured(
                "point_read/hot",
                "sqlite-strict",
                Unit::Nanoseconds,
                30_000.0,
            ),
            measured("point_read/hot", "cairn-strict", Unit::Nanoseconds, 600.0),
        ];
        let groups = measured_groups(&rows);
        assert_eq!(groups.len(), 1);
        let svg = group_chart(&groups[0]);
        assert_balanced(&svg);
        for subject in [
            "cairn-buffered",
            "redb-buffered",
            "sqlite-strict",
            "cairn-strict",
        ] {
            assert!(
                svg.contains(&format!(">{subject}</text>")),
                "{subject} is labelled"
            );
        }
        assert!(
            svg.contains("&lt;odd &amp; &quot;store&quot;&gt;"),
            "text is escaped"
        );
        assert!(!svg.contains("<odd"), "no raw markup from a subject");
        assert!(svg.contains("point_read/uniform — p50 latency per operation, lower is better"));
        assert!(
            svg.contains(">1.20 µs</text>"),
            "the value label has its unit"
        );
        assert!(svg.contains(">0 ns</text>"), "the axis starts at 0");
        assert!(svg.contains(CAIRN_COLOUR) && svg.contains("#1c7ed6"));

        // Bars in subject order: cairn-buffered, redb-buffered, the odd one; then the second
        // panel: cairn-strict, sqlite-strict. Within a panel widths follow the values.
        let widths = bar_widths(&svg);
        assert_eq!(widths.len(), 5);
        let close = |a: f64, b: f64| (a - b).abs() < 0.02;
        assert!(close(widths[1] / widths[0], 3.0), "{widths:?}");
        assert!(close(widths[2] / widths[0], 2.0), "{widths:?}");
        assert!(close(widths[4] / widths[3], 50.0), "{widths:?}");
    }

    #[test]
    fn the_ratio_chart_is_logarithmic_around_parity() {
        let rows = vec![
            ratio("point_read/uniform", "redb-buffered", 10.0),
            ratio("point_read/uniform", "redis", 100.0),
            ratio("bulk_load/sorted", "fjall-buffered", 0.1),
            ratio("bulk_load/sorted", "sqlite-strict", 0.0),
        ];
        let svg = ratio_chart(&ratio_workloads(&rows));
        assert_balanced(&svg);
        for text in [
            "vs redb-buffered",
            "vs redis",
            "vs fjall-buffered",
            "n/a",
            "1x: even",
        ] {
            assert!(svg.contains(text), "{text} is shown");
        }
        assert!(svg.contains(">10.00x</text>") && svg.contains(">0.10x</text>"));
        let widths = bar_widths(&svg);
        assert_eq!(widths.len(), 3, "the zero ratio has no bar");
        // On a log scale 100x is twice as far from 1x as 10x, and 0.1x as far as 10x.
        assert!((widths[1] / widths[0] - 2.0).abs() < 0.01, "{widths:?}");
        assert!((widths[2] / widths[0] - 1.0).abs() < 0.01, "{widths:?}");
    }

    #[test]
    fn axes_end_on_round_numbers_and_numbers_print_compactly() {
        assert_eq!(linear_axis(1_200.0), (1_250.0, 250.0));
        assert_eq!(linear_axis(30_000.0), (30_000.0, 10_000.0));
        assert_eq!(linear_axis(7.0), (8.0, 2.0));
        assert_eq!(linear_axis(0.0), (1.0, 0.25));
        assert_eq!(linear_axis(f64::NAN), (1.0, 0.25));
        let mib = 1024.0 * 1024.0;
        assert_eq!(binary_axis(88.0 * mib), (100.0 * mib, 20.0 * mib));
        assert_eq!(binary_axis(700.0), (800.0, 200.0));
        assert_eq!(Num(12.5).to_string(), "12.5");
        assert_eq!(Num(3.0).to_string(), "3");
        assert_eq!(Num(0.1).to_string(), "0.1");
        assert_eq!(Num(-0.001).to_string(), "0");
        assert_eq!(file_stem("point read/α"), "point_read__");
        assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
    }

    #[test]
    fn charts_are_written_into_a_new_directory() {
        let dir = std::env::temp_dir().join(format!("cairn-plot-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let rows = vec![
            measured("ratios", "cairn-inmemory", Unit::OpsPerSecond, 1e6),
            measured("memory/uniform", "redis", Unit::Bytes, 2e6),
            ratio("memory/uniform", "redis", 3.0),
        ];
        let nested = dir.join("charts");
        let charts = write_charts(&nested, &rows).expect("the charts are written");
        let names: Vec<String> = charts
            .groups
            .iter()
            .map(|(_, path)| {
                path.file_name()
                    .expect("a file")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["ratios-group.svg", "memory.svg"]);
        assert!(charts.ratios.as_ref().is_some_and(|path| path.is_file()));
        let memory = fs::read_to_string(nested.join("memory.svg")).expect("readable");
        assert!(
            memory.contains("1.9 MiB"),
            "bytes are labelled in binary units"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
