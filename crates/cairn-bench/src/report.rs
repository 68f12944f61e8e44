//! Result rows: what every registry entry produces, what `cairn bench` prints and saves. The
//! "measured" column ([`Row::figure`]) is not saved but recomputed, so a loaded run prints as
//! it ran.

use crate::measure::{count_as_f64, Latency, Throughput};
use crate::targets::Limit;
use serde::{Deserialize, Serialize};

/// What a row's `value` counts: p50 ns, ops/s, a ratio, versions held, or bytes held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs, reason = "the type's docs say it")]
pub enum Unit {
    #[default]
    #[serde(rename = "ns")]
    Nanoseconds,
    #[serde(rename = "ops/s")]
    OpsPerSecond,
    #[serde(rename = "x")]
    Ratio,
    Versions,
    Bytes,
}

/// Which way a row's value improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the names say it")]
pub enum Better {
    Lower,
    Higher,
}

/// One line of the report: the workload `name` (as its criterion bench is named), the `unit`
/// of `value` (the figure checked against the `target` and `goal`, met or not in `pass` and
/// `goal_met`), the latency percentiles in ns or the `ops_per_sec`, a `note` on how the figure
/// was obtained, the side-by-side `workload` and `subject` (the store measured; for a ratio,
/// the peer Cairn is compared with), `annotations` shown after the figure, and the `figure`
/// itself (the "measured" column, from [`Row::refresh_figure`]; not saved).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub struct Row {
    pub name: String,
    pub unit: Unit,
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    pub p999: Option<u64>,
    pub ops_per_sec: Option<f64>,
    pub value: f64,
    pub target: Option<String>,
    pub goal: Option<String>,
    pub pass: Option<bool>,
    pub goal_met: Option<bool>,
    pub note: Option<String>,
    pub workload: Option<String>,
    pub subject: Option<String>,
    #[serde(default)]
    pub annotations: Vec<String>,
    #[serde(skip)]
    pub figure: String,
}

impl Row {
    fn new(name: &str, unit: Unit, value: f64) -> Self {
        let mut row = Row::default();
        (row.name, row.unit, row.value) = (name.to_owned(), unit, value);
        row.refreshed()
    }

    /// A latency row; its value is the p50.
    pub fn latency(name: &str, latency: &Latency) -> Self {
        let mut row = Row::new(name, Unit::Nanoseconds, count_as_f64(latency.p50_ns));
        (row.p50, row.p95) = (Some(latency.p50_ns), Some(latency.p95_ns));
        (row.p99, row.p999) = (Some(latency.p99_ns), Some(latency.p999_ns));
        row.refreshed()
    }

    /// A latency row whose value (the figure checked) is the p99, for a tail-latency target.
    pub fn latency_p99(name: &str, latency: &Latency) -> Self {
        let mut row = Row::latency(name, latency);
        row.value = count_as_f64(latency.p99_ns);
        row.refreshed()
    }

    /// A throughput row; its value is ops/s.
    pub fn throughput(name: &str, throughput: &Throughput) -> Self {
        let mut row = Row::new(name, Unit::OpsPerSecond, throughput.ops_per_sec);
        row.ops_per_sec = Some(throughput.ops_per_sec);
        row.refreshed()
    }

    /// A ratio row, `numerator / denominator` (0 when the denominator is 0).
    pub fn ratio(name: &str, numerator: f64, denominator: f64, explained: &str) -> Self {
        let (n, d) = (numerator, denominator);
        let ratio = if d > 0.0 { n / d } else { 0.0 };
        Row::new(name, Unit::Ratio, ratio).note(explained)
    }

    /// A count of retained versions.
    pub fn versions(name: &str, versions: u64, explained: &str) -> Self {
        Row::new(name, Unit::Versions, count_as_f64(versions)).note(explained)
    }

    /// A size in bytes (memory or disk a store holds).
    pub fn bytes(name: &str, bytes: u64, explained: &str) -> Self {
        Row::new(name, Unit::Bytes, count_as_f64(bytes)).note(explained)
    }

    /// Recomputes the "measured" column from the unit, the figures and the annotations.
    pub fn refresh_figure(&mut self) {
        let mut figure = match (self.unit, self.p50, self.p99) {
            (Unit::Nanoseconds, Some(p50), Some(p99)) => {
                format!("p50 {} / p99 {}", format_nanos(p50), format_nanos(p99))
            }
            (Unit::OpsPerSecond, _, _) => format_rate(self.ops_per_sec.unwrap_or(self.value)),
            _ => format_value(self.unit, self.value),
        };
        for annotation in &self.annotations {
            figure = format!("{figure} ({annotation})");
        }
        self.figure = figure;
    }

    fn refreshed(mut self) -> Self {
        self.refresh_figure();
        self
    }

    /// The value alone, in its unit (`412 ns`, `3.21M ops/s`, `1.25x`).
    pub fn headline(&self) -> String {
        format_value(self.unit, self.value)
    }

    /// Which way the value improves: as the row's bound says, else by unit. A side-by-side ratio is
    /// Cairn's speed over a peer's (higher is better); the others are overheads (lower).
    pub fn better(&self) -> Better {
        let bounds = [self.target.as_deref(), self.goal.as_deref()];
        for text in bounds.into_iter().flatten() {
            match text.chars().find(|c| matches!(c, '<' | '>')) {
                Some('<') => return Better::Lower,
                Some(_) => return Better::Higher,
                None => {}
            }
        }
        match self.unit {
            Unit::OpsPerSecond => Better::Higher,
            Unit::Ratio if self.subject.is_some() => Better::Higher,
            Unit::Ratio | Unit::Nanoseconds | Unit::Bytes | Unit::Versions => Better::Lower,
        }
    }

    /// Checks the row's value against a target and a goal, where given.
    #[must_use]
    pub fn check(mut self, target: Option<&Limit>, goal: Option<&Limit>) -> Self {
        if let Some(target) = target {
            self.target = Some(target.text.to_owned());
            self.pass = Some(target.is_met_by(self.value));
        }
        if let Some(goal) = goal {
            self.goal = Some(goal.text.to_owned());
            self.goal_met = Some(goal.is_met_by(self.value));
        }
        self
    }

    /// Checks the row's value against a target.
    #[must_use]
    pub fn target(self, limit: &Limit) -> Self {
        self.check(Some(limit), None)
    }

    /// Checks the row's value against a goal.
    #[must_use]
    pub fn goal(self, limit: &Limit) -> Self {
        self.check(None, Some(limit))
    }

    /// Adds to the measured column, e.g. a ratio to a peer.
    #[must_use]
    pub fn annotate(mut self, text: &str) -> Self {
        self.annotations.push(text.to_owned());
        self.refreshed()
    }

    /// Marks the row as `subject`'s figure on the side-by-side `workload`.
    #[must_use]
    pub fn side_by_side(mut self, workload: &str, subject: &str) -> Self {
        self.workload = Some(workload.to_owned());
        self.subject = Some(subject.to_owned());
        self
    }

    /// Explains how the figure was obtained.
    #[must_use]
    pub fn note(mut self, note: &str) -> Self {
        self.note = Some(note.to_owned());
        self
    }
}

/// `412 ns`, `1.25 µs`, `35.2 µs`, `1.20 ms`.
pub fn format_nanos(nanos: u64) -> String {
    let value = count_as_f64(nanos);
    match nanos {
        0..=999 => format!("{nanos} ns"),
        1_000..=9_999 => format!("{:.2} µs", value / 1e3),
        10_000..=999_999 => format!("{:.1} µs", value / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", value / 1e6),
        _ => format!("{:.2} s", value / 1e9),
    }
}

/// `512K ops/s`, `3.21M ops/s`.
pub fn format_rate(ops_per_sec: f64) -> String {
    if ops_per_sec >= 1e6 {
        format!("{:.2}M ops/s", ops_per_sec / 1e6)
    } else if ops_per_sec >= 1e3 {
        format!("{:.0}K ops/s", ops_per_sec / 1e3)
    } else {
        format!("{ops_per_sec:.0} ops/s")
    }
}

/// `118 B`, `1.2 KiB`, `35.0 MiB`, `2.5 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    let value = count_as_f64(bytes);
    match bytes {
        0..KIB => format!("{bytes} B"),
        KIB..MIB => format!("{:.1} KiB", value / count_as_f64(KIB)),
        MIB..GIB => format!("{:.1} MiB", value / count_as_f64(MIB)),
        _ => format!("{:.1} GiB", value / count_as_f64(GIB)),
    }
}

/// `value` written in `unit`: `412 ns`, `512K ops/s`, `1.25x`, `2 versions`, `1.2 KiB`.
pub fn format_value(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Nanoseconds => format_nanos(nearest_count(value)),
        Unit::OpsPerSecond => format_rate(value),
        Unit::Ratio => format!("{value:.2}x"),
        Unit::Versions => format!("{value:.0} versions"),
        Unit::Bytes => format_bytes(nearest_count(value)),
    }
}

/// The count nearest `value`: 0 for negatives and NaN, `u64::MAX` past it.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "Rust's float-to-int `as` saturates (NaN gives 0), which is the clamp wanted"
)]
pub fn nearest_count(value: f64) -> u64 {
    value.round() as u64
}

/// How many rows met their target and how many missed it.
pub fn tally(rows: &[Row]) -> (usize, usize) {
    let passed = rows.iter().filter(|row| row.pass == Some(true)).count();
    let missed = rows.iter().filter(|row| row.pass == Some(false)).count();
    (passed, missed)
}
