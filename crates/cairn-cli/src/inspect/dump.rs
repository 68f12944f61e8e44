//! `cairn dump DIR`: the contents of a data directory, one line per snapshot entry and one
//! line per WAL record, in the order recovery applies them.
//!
//! First the entries of the newest snapshot that verifies (in key order), then every WAL
//! record after that snapshot's LSN (in LSN order); `--snapshot-only` and `--wal-only` keep
//! one half, `--from-lsn N` starts the WAL at LSN N (with `--wal-only` the default is the
//! oldest record the WAL holds), `--limit N` stops after N lines. Applying the lines in order
//! to an empty map gives what `Db::open` would load (expired TTL entries included: deadlines
//! are printed, not judged).
//!
//! Formats: `text` is tab-separated fields (`snapshot`, `version=`, `key=`, `value=`,
//! `deadline_millis=`; `wal`, `lsn=`, `version=`, then per mutation `put` with `key=`,
//! `value=`, `deadline_millis=`, or `delete` with `key=`); `json` is one object per line.
//! Keys and values are escaped (see `escape`), so a tab or newline never comes from the data.
//!
//! Guarantees: streams, with memory bounded by one snapshot block and one WAL record. The
//! snapshot is verified before its first entry is printed and the WAL is classified (as
//! recovery would) before its first record is, so the output never holds data that recovery
//! would reject; damage is reported on stderr with exit code 1, after everything valid before
//! it was printed. A closed stdout (`cairn dump DIR | head`) ends the dump quietly.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use cairn::format::{
    decode_commit_body, read_header, read_snapshot, DecodedWrite, SnapshotEntry, SnapshotError,
    SnapshotHeader, RECORD_TYPE_COMMIT as COMMIT_RECORD_TYPE, SNAPSHOT_DEADLINE_NONE,
};
use cairn::StdFileSystem;
use cairn_log::format::FRAME_PAYLOAD_BYTES_MAX;
use cairn_log::reader::{verify_dir, SegmentReader};
use serde::Serialize;

use super::escape::escape_bytes;
use super::layout::{DataDir, SnapshotFile};
use super::Outcome;

/// How `dump` prints each line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tab-separated `name=value` fields.
    Text,
    /// One JSON object per line.
    Json,
}

/// Which half of the directory `dump` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The snapshot, then the WAL after it.
    All,
    /// Only the snapshot's entries.
    SnapshotOnly,
    /// Only WAL records.
    WalOnly,
}

/// What `cairn dump` was asked to do.
#[derive(Clone, Copy, Debug)]
pub struct DumpSettings {
    /// The line format.
    pub format: Format,
    /// Print WAL records from this LSN on (default: after the snapshot's LSN).
    pub from_lsn: Option<u64>,
    /// Which half to print.
    pub part: Part,
    /// Stop after this many lines.
    pub limit: Option<u64>,
}

/// Runs `cairn dump` on `dir`, printing lines to stdout and notes to stderr.
pub fn run(dir: &Path, settings: &DumpSettings) -> Result<Outcome> {
    let listing = DataDir::list(dir)?;
    if listing.is_foreign() {
        bail!(
            "{} holds no Cairn files (no snapshot, WAL segment or LOCK file)",
            dir.display()
        );
    }
    let mut sink = Sink::new(
        BufWriter::new(io::stdout().lock()),
        settings.format,
        settings.limit,
    );
    let mut damaged = false;

    let chosen = choose_snapshot(&listing, settings.part, &mut damaged)?;
    let after_lsn = chosen
        .as_ref()
        .map_or(0, |(_, header)| header.snapshot_version);
    if settings.part != Part::WalOnly {
        match &chosen {
            Some((file, _)) => dump_snapshot(file, &mut sink)?,
            None if listing.snapshots.is_empty() => note("no snapshot: nothing before the WAL"),
            None => note("no snapshot verifies: nothing before the WAL"),
        }
    }
    if settings.part != Part::SnapshotOnly && sink.accepts() {
        let from_lsn = settings.from_lsn.unwrap_or(match settings.part {
            Part::WalOnly => 0,
            _ => after_lsn.saturating_add(1),
        });
        damaged |= dump_wal(dir, after_lsn, from_lsn, &mut sink)?;
    }
    sink.finish()?;
    Ok(if damaged {
        Outcome::Damaged
    } else {
        Outcome::Intact
    })
}

/// Writes a note to stderr; if stderr is gone there is nobody left to tell.
fn note(text: &str) {
    let _ = writeln!(io::stderr(), "cairn dump: {text}");
}

/// The snapshot recovery would load: the newest that verifies end to end. With
/// `--wal-only` only headers are read, since the snapshot serves only to know which LSNs it
/// covers. Skipped damaged snapshots set `damaged`.
fn choose_snapshot<'a>(
    listing: &'a DataDir,
    part: Part,
    damaged: &mut bool,
) -> Result<Option<(&'a SnapshotFile, SnapshotHeader)>> {
    for file in listing.snapshots.iter().rev() {
        let checked = if part == Part::WalOnly {
            read_header(&StdFileSystem, &file.path)
        } else {
            read_snapshot(&StdFileSystem, &file.path, &mut |_| Ok(()))
        };
        let problem = match checked {
            Ok(header) if header.snapshot_version == file.name_version => {
                return Ok(Some((file, header)));
            }
            Ok(header) => format!(
                "the header says version {} but the file name {}",
                header.snapshot_version, file.name_version
            ),
            Err(SnapshotError::Corrupted { offset, reason }) => {
                format!("damaged at byte offset {offset}: {reason}")
            }
            Err(SnapshotError::Rejected(reason)) => reason,
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", file.path.display()))
            }
        };
        note(&format!(
            "skipping {} ({problem}); `cairn verify` has details",
            file.name
        ));
        *damaged = true;
    }
    Ok(None)
}

/// Prints every entry of a snapshot that was verified just before.
fn dump_snapshot(file: &SnapshotFile, sink: &mut Sink<impl Write>) -> Result<()> {
    let result = read_snapshot(&StdFileSystem, &file.path, &mut |entry| {
        sink.snapshot_entry(&entry);
        if sink.accepts() {
            Ok(())
        } else {
            // Limit reached, stdout closed or failed: stop reading.
            Err("output finished".to_owned())
        }
    });
    match result {
        Ok(_) | Err(SnapshotError::Rejected(_)) => sink.check(),
        Err(error) => Err(error).with_context(|| {
            format!(
                "{} changed while it was being dumped (it verified a moment before)",
                file.path.display()
            )
        }),
    }
}

/// Prints the WAL records from `from_lsn` on, up to any damage; returns whether there was
/// damage.
fn dump_wal(
    dir: &Path,
    after_lsn: u64,
    from_lsn: u64,
    sink: &mut Sink<impl Write>,
) -> Result<bool> {
    let classified = verify_dir(&StdFileSystem, dir, after_lsn, None, &mut |_, _| {})
        .with_context(|| format!("cannot read the WAL in {}", dir.display()))?;
    for segment in &classified.segments {
        if segment.last_lsn.is_none_or(|last| last < from_lsn) {
            continue;
        }
        let path = &segment.info.path;
        let mut reader =
            SegmentReader::open(&StdFileSystem, &segment.info, FRAME_PAYLOAD_BYTES_MAX)
                .with_context(|| format!("cannot open {}", path.display()))?;
        for _ in 0..segment.frames {
            let Some((offset, frame)) = reader
                .next()
                .with_context(|| format!("cannot read {}", path.display()))?
            else {
                bail!("{} changed while it was being dumped", path.display());
            };
            if frame.lsn < from_lsn {
                continue;
            }
            let decoded = if frame.record_type != COMMIT_RECORD_TYPE {
                Err(format!("record type {} is not a commit", frame.record_type))
            } else if frame.version != frame.lsn {
                Err(format!("record claims version {}", frame.version))
            } else {
                decode_commit_body(frame.body)
            };
            match decoded {
                Ok(writes) => sink.wal_record(frame.lsn, frame.version, &writes),
                Err(reason) => {
                    note(&format!(
                        "the record at LSN {} in {} (byte offset {offset}) cannot be decoded \
                         ({reason}); nothing after it is shown",
                        frame.lsn,
                        path.display()
                    ));
                    sink.check()?;
                    return Ok(true);
                }
            }
            if !sink.accepts() {
                sink.check()?;
                return Ok(false);
            }
        }
    }
    if let Some(torn) = &classified.torn_tail {
        note(&format!(
            "{} ends in a torn tail at byte offset {} ({} bytes of an unfinished write, never \
             acknowledged); not shown",
            torn.file.display(),
            torn.offset,
            torn.bytes_dropped
        ));
    }
    if let Some(corruption) = &classified.corruption {
        note(&format!(
            "the WAL is damaged in {} at byte offset {} ({}); nothing after it is shown",
            corruption.file.display(),
            corruption.offset,
            corruption.reason
        ));
        return Ok(true);
    }
    Ok(false)
}

/// A deadline as printed: `None` when the entry never expires.
fn deadline(deadline_millis: u64) -> Option<u64> {
    (deadline_millis != SNAPSHOT_DEADLINE_NONE).then_some(deadline_millis)
}

/// A snapshot entry as a JSON line.
#[derive(Serialize)]
struct SnapshotLine {
    source: &'static str,
    key: String,
    value: String,
    version: u64,
    deadline_millis: Option<u64>,
}

/// One mutation of a WAL record as JSON.
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum MutationLine {
    Put {
        key: String,
        value: String,
        deadline_millis: Option<u64>,
    },
    Delete {
        key: String,
    },
}

/// A WAL record as a JSON line.
#[derive(Serialize)]
struct WalLine {
    source: &'static str,
    lsn: u64,
    version: u64,
    mutations: Vec<MutationLine>,
}

/// Where the output stands.
#[derive(Debug)]
enum SinkState {
    /// Lines are still wanted.
    Open,
    /// `--limit` lines were written.
    LimitReached,
    /// The reader of stdout went away: a normal way to end (`| head`).
    Closed,
    /// Writing failed otherwise.
    Failed(io::Error),
}

/// Writes lines in the chosen format, counting them against the limit.
struct Sink<W: Write> {
    out: W,
    format: Format,
    remaining: Option<u64>,
    state: SinkState,
}

impl<W: Write> Sink<W> {
    fn new(out: W, format: Format, limit: Option<u64>) -> Self {
        let state = if limit == Some(0) {
            SinkState::LimitReached
        } else {
            SinkState::Open
        };
        Sink {
            out,
            format,
            remaining: limit,
            state,
        }
    }

    /// True while more lines are wanted.
    fn accepts(&self) -> bool {
        matches!(self.state, SinkState::Open)
    }

    /// An error if writing failed (other than stdout being closed).
    fn check(&mut self) -> Result<()> {
        if !matches!(self.state, SinkState::Failed(_)) {
            return Ok(());
        }
        match std::mem::replace(&mut self.state, SinkState::Closed) {
            SinkState::Failed(error) => Err(error).context("cannot write to stdout"),
            _ => Ok(()),
        }
    }

    /// Flushes; a closed stdout is not an error.
    fn finish(mut self) -> Result<()> {
        self.check()?;
        match self.out.flush() {
            Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
                Err(error).context("cannot write to stdout")
            }
            _ => Ok(()),
        }
    }

    fn snapshot_entry(&mut self, entry: &SnapshotEntry<'_>) {
        let format = self.format;
        self.write_line(|out| match format {
            Format::Text => write_snapshot_text(out, entry),
            Format::Json => write_json_line(
                out,
                &SnapshotLine {
                    source: "snapshot",
                    key: escape_bytes(entry.key),
                    value: escape_bytes(entry.value),
                    version: entry.version,
                    deadline_millis: deadline(entry.deadline_millis),
                },
            ),
        });
    }

    fn wal_record(&mut self, lsn: u64, version: u64, writes: &[DecodedWrite]) {
        let format = self.format;
        self.write_line(|out| match format {
            Format::Text => write_wal_text(out, lsn, version, writes),
            Format::Json => write_json_line(out, &wal_line(lsn, version, writes)),
        });
    }

    fn write_line(&mut self, write: impl FnOnce(&mut W) -> io::Result<()>) {
        if !self.accepts() {
            return;
        }
        match write(&mut self.out) {
            Ok(()) => {
                if let Some(remaining) = &mut self.remaining {
                    *remaining = remaining.saturating_sub(1);
                    if *remaining == 0 {
                        self.state = SinkState::LimitReached;
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                self.state = SinkState::Closed;
            }
            Err(error) => self.state = SinkState::Failed(error),
        }
    }
}

fn wal_line(lsn: u64, version: u64, writes: &[DecodedWrite]) -> WalLine {
    WalLine {
        source: "wal",
        lsn,
        version,
        mutations: writes
            .iter()
            .map(|(key, write)| match write {
                Some((value, deadline_millis)) => MutationLine::Put {
                    key: escape_bytes(key),
                    value: escape_bytes(value),
                    deadline_millis: deadline(*deadline_millis),
                },
                None => MutationLine::Delete {
                    key: escape_bytes(key),
                },
            })
            .collect(),
    }
}

fn write_json_line(out: &mut impl Write, line: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// `deadline_millis=N`, or `deadline_millis=none`.
fn deadline_field(deadline_millis: u64) -> String {
    deadline(deadline_millis).map_or_else(|| "none".to_owned(), |millis| millis.to_string())
}

fn write_snapshot_text(out: &mut impl Write, entry: &SnapshotEntry<'_>) -> io::Result<()> {
    writeln!(
        out,
        "snapshot\tversion={}\tkey={}\tvalue={}\tdeadline_millis={}",
        entry.version,
        escape_bytes(entry.key),
        escape_bytes(entry.value),
        deadline_field(entry.deadline_millis)
    )
}

fn write_wal_text(
    out: &mut impl Write,
    lsn: u64,
    version: u64,
    writes: &[DecodedWrite],
) -> io::Result<()> {
    write!(out, "wal\tlsn={lsn}\tversion={version}")?;
    for (key, write) in writes {
        match write {
            Some((value, deadline_millis)) => write!(
                out,
                "\tput\tkey={}\tvalue={}\tdeadline_millis={}",
                escape_bytes(key),
                escape_bytes(value),
                deadline_field(*deadline_millis)
            )?,
            None => write!(out, "\tdelete\tkey={}", escape_bytes(key))?,
        }
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes() -> Vec<DecodedWrite> {
        vec![
            (
                b"a\tb".to_vec(),
                Some((b"v\\1".to_vec(), SNAPSHOT_DEADLINE_NONE)),
            ),
            (b"k".to_vec(), Some((vec![0xff], 1_700_000_000_000))),
            (b"gone".to_vec(), None),
        ]
    }

    #[test]
    fn text_lines_escape_bytes_and_separate_fields_with_tabs() {
        let mut out = Vec::new();
        let entry = SnapshotEntry {
            key: b"user:1",
            value: b"ada\n",
            version: 3,
            deadline_millis: SNAPSHOT_DEADLINE_NONE,
        };
        write_snapshot_text(&mut out, &entry).expect("to a Vec");
        write_wal_text(&mut out, 9, 9, &writes()).expect("to a Vec");
        assert_eq!(
            String::from_utf8(out).expect("ASCII"),
            "snapshot\tversion=3\tkey=user:1\tvalue=ada\\x0a\tdeadline_millis=none\n\
             wal\tlsn=9\tversion=9\tput\tkey=a\\x09b\tvalue=v\\\\1\tdeadline_millis=none\
             \tput\tkey=k\tvalue=\\xff\tdeadline_millis=1700000000000\tdelete\tkey=gone\n"
        );
    }

    #[test]
    fn json_lines_have_the_documented_fields() {
        let mut out = Vec::new();
        write_json_line(&mut out, &wal_line(9, 9, &writes())).expect("to a Vec");
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            concat!(
                r#"{"source":"wal","lsn":9,"version":9,"mutations":["#,
                r#"{"op":"put","key":"a\\x09b","value":"v\\\\1","deadline_millis":null},"#,
                r#"{"op":"put","key":"k","value":"\\xff","deadline_millis":1700000000000},"#,
                r#"{"op":"delete","key":"gone"}]}"#,
                "\n"
            )
        );
    }

    #[test]
    fn the_limit_counts_lines_and_zero_prints_nothing() {
        let mut sink = Sink::new(Vec::new(), Format::Text, Some(2));
        for lsn in 1..=5 {
            sink.wal_record(lsn, lsn, &[]);
        }
        assert!(!sink.accepts());
        assert_eq!(sink.out, b"wal\tlsn=1\tversion=1\nwal\tlsn=2\tversion=2\n");
        let mut none = Sink::new(Vec::new(), Format::Json, Some(0));
        none.wal_record(1, 1, &[]);
        assert!(none.out.is_empty());
    }

    /// A writer whose reader went away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn a_closed_stdout_ends_the_dump_without_an_error() {
        let mut sink = Sink::new(ClosedPipe, Format::Text, None);
        sink.wal_record(1, 1, &[]);
        assert!(!sink.accepts());
        assert!(sink.finish().is_ok());
    }
}
