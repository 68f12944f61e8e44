//! The side-by-side rows: Cairn and its peers measured on the same workload, sorted into the
//! groups the charts and the Markdown report show.
//!
//! A side-by-side row has both a `workload` (`point_read/uniform`) and a `subject`
//! (`redb-buffered`). A measured row (latency, throughput, bytes) is one subject's figure; a
//! ratio row (unit `x`, named `.../cairn vs <subject>`) is Cairn's speed over that peer's, so
//! above 1 means Cairn is ahead. A workload's *group* is its part before the first `/`
//! (`point_read`), a subject's *engine* its part before the first `-` (`redb`). Subjects are
//! listed in one fixed order (Cairn's modes first, then the peers), subjects this module does
//! not know after them in the order they first appear; groups and workloads keep the order in
//! which the run measured them.

use super::report::{Row, Unit};

/// The known subjects, in the order tables and charts list them.
pub const SUBJECT_ORDER: [&str; 10] = [
    "cairn-inmemory",
    "cairn-buffered",
    "cairn-strict",
    "redb-buffered",
    "redb-strict",
    "fjall-buffered",
    "fjall-strict",
    "sqlite-buffered",
    "sqlite-strict",
    "redis",
];

/// The engine of a subject: its part before the first `-` (`cairn`, `redb`, `redis`).
pub fn engine(subject: &str) -> &str {
    subject.split('-').next().unwrap_or(subject)
}

/// The group of a workload: its part before the first `/` (`point_read`).
pub fn group_name(workload: &str) -> &str {
    workload.split('/').next().unwrap_or(workload)
}

/// True for a row that measures one store among its peers.
pub fn is_side_by_side(row: &Row) -> bool {
    row.workload.is_some() && row.subject.is_some()
}

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

/// One workload's rows of one unit, sorted by subject.
#[derive(Debug)]
pub struct Workload<'a> {
    /// The workload (`point_read/uniform`).
    pub name: &'a str,
    /// The unit of every row here.
    pub unit: Unit,
    /// One row per subject, in subject order.
    pub rows: Vec<&'a Row>,
}

impl Workload<'_> {
    /// The row of `subject`, if it was measured.
    pub fn row_of(&self, subject: &str) -> Option<&Row> {
        self.rows
            .iter()
            .copied()
            .find(|row| row.subject.as_deref() == Some(subject))
    }
}

/// The workloads that share a group.
#[derive(Debug)]
pub struct Group<'a> {
    /// The group (`point_read`).
    pub name: &'a str,
    /// Its workloads, in the order measured.
    pub workloads: Vec<Workload<'a>>,
}

impl Group<'_> {
    /// Every subject of the group's workloads, in subject order.
    pub fn subjects(&self) -> Vec<&str> {
        subjects(
            self.workloads
                .iter()
                .flat_map(|workload| workload.rows.iter().copied()),
        )
    }
}

/// The measured side-by-side rows (all but the ratios), grouped.
pub fn measured_groups(rows: &[Row]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for workload in workloads(rows, |unit| unit != Unit::Ratio) {
        let name = group_name(workload.name);
        match groups.iter_mut().find(|group| group.name == name) {
            Some(group) => group.workloads.push(workload),
            None => groups.push(Group {
                name,
                workloads: vec![workload],
            }),
        }
    }
    groups
}

/// The side-by-side ratio rows (Cairn's speed over each peer's), one entry per workload.
pub fn ratio_workloads(rows: &[Row]) -> Vec<Workload<'_>> {
    workloads(rows, |unit| unit == Unit::Ratio)
}

/// The side-by-side rows whose unit `keep` accepts, one entry per (workload, unit), each
/// sorted by subject.
fn workloads(rows: &[Row], keep: impl Fn(Unit) -> bool) -> Vec<Workload<'_>> {
    let mut found: Vec<Workload<'_>> = Vec::new();
    for row in rows.iter().filter(|row| keep(row.unit)) {
        let Some(name) = row.workload.as_deref() else {
            continue;
        };
        if row.subject.is_none() {
            continue;
        }
        match found
            .iter_mut()
            .find(|workload| workload.name == name && workload.unit == row.unit)
        {
            Some(workload) => workload.rows.push(row),
            None => found.push(Workload {
                name,
                unit: row.unit,
                rows: vec![row],
            }),
        }
    }
    for workload in &mut found {
        let order = subjects(workload.rows.iter().copied());
        workload.rows.sort_by_key(|row| {
            order
                .iter()
                .position(|subject| Some(*subject) == row.subject.as_deref())
        });
    }
    found
}

/// The distinct subjects of `rows`: the known ones in [`SUBJECT_ORDER`], then the others in
/// the order they appear.
pub fn subjects<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Vec<&'a str> {
    let mut seen: Vec<&'a str> = Vec::new();
    for subject in rows.into_iter().filter_map(|row| row.subject.as_deref()) {
        if !seen.contains(&subject) {
            seen.push(subject);
        }
    }
    let rank = |subject: &str| {
        SUBJECT_ORDER
            .iter()
            .position(|known| *known == subject)
            .unwrap_or(SUBJECT_ORDER.len())
    };
    // A stable sort keeps unknown subjects in the order they appeared.
    seen.sort_by_key(|subject| rank(subject));
    seen
}

/// Rows made by hand for the tests of the modules that read side-by-side rows.
#[cfg(test)]
pub(super) mod test_rows {
    use super::super::report::{Row, Unit};

    /// A measured row of `subject` on `workload`, in `unit`.
    pub fn measured(workload: &str, subject: &str, unit: Unit, value: f64) -> Row {
        let mut row = Row::ratio(&format!("peers/{workload}/{subject}"), 1.0, 1.0, "test")
            .side_by_side(workload, subject);
        row.unit = unit;
        row.value = value;
        row.refresh_figure();
        row
    }

    /// The ratio row of Cairn against `subject` on `workload`.
    pub fn ratio(workload: &str, subject: &str, value: f64) -> Row {
        Row::ratio(
            &format!("peers/{workload}/cairn vs {subject}"),
            value,
            1.0,
            "test",
        )
        .side_by_side(workload, subject)
    }
}

#[cfg(test)]
mod tests {
    use super::test_rows::{measured, ratio};
    use super::*;

    fn row(workload: &str, subject: &str, unit: Unit, value: f64) -> Row {
        match unit {
            Unit::Ratio => ratio(workload, subject, value),
            _ => measured(workload, subject, unit, value),
        }
    }

    #[test]
    fn rows_group_by_workload_prefix_and_sort_by_subject() {
        let rows = vec![
            row("point_read/uniform", "redis", Unit::Nanoseconds, 9.0),
            row("point_read/uniform", "zeta-store", Unit::Nanoseconds, 8.0),
            row("point_read/uniform", "cairn-strict", Unit::Nanoseconds, 1.0),
            row(
                "bulk_load/sorted",
                "fjall-buffered",
                Unit::OpsPerSecond,
                5.0,
            ),
            row("point_read/hot", "redb-buffered", Unit::Nanoseconds, 3.0),
            row("point_read/hot", "alpha-store", Unit::Nanoseconds, 3.0),
            row("point_read/hot", "cairn-inmemory", Unit::Nanoseconds, 2.0),
            row("point_read/uniform", "redis", Unit::Ratio, 4.0),
            Row::ratio("cairn-only", 1.0, 1.0, "test"),
        ];
        let groups = measured_groups(&rows);
        let names: Vec<&str> = groups.iter().map(|group| group.name).collect();
        assert_eq!(names, ["point_read", "bulk_load"]);
        let point_read = &groups[0];
        assert_eq!(point_read.workloads.len(), 2);
        let uniform: Vec<_> = point_read.workloads[0]
            .rows
            .iter()
            .map(|row| row.subject.as_deref())
            .collect();
        assert_eq!(
            uniform,
            [Some("cairn-strict"), Some("redis"), Some("zeta-store")]
        );
        assert_eq!(
            point_read.subjects(),
            [
                "cairn-inmemory",
                "cairn-strict",
                "redb-buffered",
                "redis",
                "zeta-store",
                "alpha-store"
            ]
        );
        assert!(point_read.workloads[1].row_of("redb-buffered").is_some());
        assert!(point_read.workloads[1].row_of("redis").is_none());
        let ratios = ratio_workloads(&rows);
        assert_eq!(ratios.len(), 1);
        assert_eq!(ratios[0].rows.len(), 1);
        assert_eq!(engine("cairn-inmemory"), "cairn");
        assert_eq!(engine("redis"), "redis");
        assert_eq!(group_name("memory"), "memory");
    }
}
