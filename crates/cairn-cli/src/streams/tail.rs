//! `cairn streams tail DIR STREAM`: prints a stream's messages from its segment files, one
//! line each, without opening the store.
//!
//! Where it starts: `--from OFFSET` (below the first readable offset: at the first readable
//! offset, as `read_range` does), `--since-ms TS` (the first message whose batch timestamp is
//! at or after TS milliseconds since the Unix epoch), or else the first readable offset.
//! Segments wholly before the start are skipped after a 30-byte probe of the next segment's
//! first frame; the rest is read frame by frame. `--max N` stops after N messages.
//!
//! Formats. Text: tab-separated `offset=`, `time=` (RFC 3339, UTC, milliseconds), `key=`
//! (only when the message has a key), one `header=NAME:VALUE` per header, `value=`; bytes are
//! escaped as `cairn dump` does (printable ASCII as is, `\\`, `\xNN` for anything else; a `:`
//! in a header name is `\x3a`), so the data never adds a tab or a newline. `--json`: one object
//! per line, `{"offset", "timestamp_ms", "time", "key", "headers": [{"name", "value"}],
//! "value"}`; each byte field is a JSON string when its bytes are valid UTF-8, and otherwise
//! appears under the same name with `_hex` appended (`"value_hex": "00ff"`, lowercase hex)
//! instead; `key` is `null` when there is none.
//!
//! `--follow`: once caught up, polls the files every `--poll-ms` (default 200, at most 10 s)
//! for frames appended to the last segment and for the next segment a rotation creates, until
//! interrupted. A frame being written (or a torn one) is waited for; a segment removed by a
//! truncation under the reader moves it to the first remaining segment; a deleted stream ends
//! the command.
//!
//! Guarantees: read-only (no lock, no file written), memory bounded by one read window and
//! one batch whatever the stream's size, every frame's checksum, LSN and offsets checked
//! before its messages are printed. Only what is on disk is shown: in Buffered mode, messages
//! the writer acknowledged but has not flushed yet appear once it flushes them. Exit code 0,
//! 1 when damage stopped it (reported on stderr after the messages before it), 2 when it
//! could not run (no such store or stream). A closed stdout ends it quietly.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use cairn_log::format::{FRAME_BODY_OFFSET, FRAME_PAYLOAD_BYTES_MAX, SEGMENT_HEADER_BYTES};
use cairn_log::fs::{FileSystem as _, OpenMode, StdFileSystem};
use cairn_log::reader::{SegmentReader, StopKind};
use cairn_log::segment::SegmentInfo;
use cairn_log::stream::codec::{decode_batch, StreamMeta};
use cairn_log::stream::Message;
use serde::Serialize;

use super::store::{
    list_segment_files, read_meta, DirState, Problem, StoreDir, StreamDir, META_FILE,
    STREAM_BATCH_RECORD_TYPE,
};
use crate::inspect::escape::escape_bytes;
use crate::inspect::Outcome;

/// The default `--poll-ms`.
pub const POLL_MS_DEFAULT: u64 = 200;
/// The largest `--poll-ms`: the interval is bounded.
pub const POLL_MS_MAX: u64 = 10_000;

/// Parses `--poll-ms`: 1 to [`POLL_MS_MAX`] milliseconds.
pub fn parse_poll_ms(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(ms) if (1..=POLL_MS_MAX).contains(&ms) => Ok(ms),
        _ => Err(format!(
            "{text:?} is not a number of milliseconds from 1 to {POLL_MS_MAX}"
        )),
    }
}

/// What `cairn streams tail` was asked to do.
#[derive(Clone, Debug)]
pub struct TailSettings {
    /// The stream's name.
    pub stream: String,
    /// Start at this offset.
    pub from: Option<u64>,
    /// Start at the first message appended at or after this time (ms since the Unix epoch).
    pub since_ms: Option<u64>,
    /// Keep polling for new messages.
    pub follow: bool,
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Stop after this many messages.
    pub max: Option<u64>,
    /// The polling interval of `follow`.
    pub poll: Duration,
}

/// Runs `cairn streams tail`.
pub fn run(dir: &Path, settings: &TailSettings) -> Result<Outcome> {
    let store = StoreDir::list(dir)?;
    let Some((stream, meta)) = find_stream(&store, &settings.stream)? else {
        bail!(
            "{} holds no stream named {:?}",
            dir.display(),
            settings.stream
        );
    };
    let mut printer = Printer {
        out: BufWriter::new(io::stdout().lock()),
        json: settings.json,
        printed: 0,
        max: settings.max,
        closed: false,
    };
    if settings.max == Some(0) {
        return Ok(Outcome::Intact);
    }
    let from = settings.from.unwrap_or(0).max(meta.first_offset);
    let mut cursor = Cursor::start(&stream, &meta, from, settings.since_ms)?;
    let outcome = loop {
        let step = cursor.read_available(&mut printer, settings.follow)?;
        printer.flush();
        match step {
            Step::Done => break Outcome::Intact,
            Step::Damage(problem) => {
                let _ = writeln!(
                    io::stderr(),
                    "damage: {} at byte offset {}: {}",
                    store.relative(&problem.file),
                    problem.offset,
                    problem.reason
                );
                break Outcome::Damaged;
            }
            Step::CaughtUp { torn } => {
                if !settings.follow {
                    if let Some(problem) = torn {
                        let _ = writeln!(
                            io::stderr(),
                            "note: stopped at a torn tail (an unfinished write, never \
                             acknowledged): {} at byte offset {}: {}",
                            store.relative(&problem.file),
                            problem.offset,
                            problem.reason
                        );
                    }
                    break Outcome::Intact;
                }
                std::thread::sleep(settings.poll);
                if !cursor.refresh() {
                    let _ = writeln!(io::stderr(), "note: stream {:?} was deleted", meta.name);
                    break Outcome::Intact;
                }
            }
        }
    };
    Ok(outcome)
}

/// The live stream named `name`, with its metadata.
fn find_stream(store: &StoreDir, name: &str) -> Result<Option<(StreamDir, StreamMeta)>> {
    let database_id = store.database_id();
    for stream in &store.streams {
        if stream.state != DirState::Live {
            continue;
        }
        // A stream whose metadata does not decode is someone else's problem (`verify`'s).
        if let Ok(meta) = read_meta(stream, database_id)? {
            if meta.name == name {
                return Ok(Some((stream.clone(), meta)));
            }
        }
    }
    Ok(None)
}

/// What one round of reading ended with.
enum Step {
    /// `--max` messages were printed, or stdout closed.
    Done,
    /// Everything on disk was read; `torn` when the last segment ends in a frame that does not
    /// decode and nothing valid follows it (a torn tail, or a write in progress).
    CaughtUp { torn: Option<Problem> },
    /// Damage a crash cannot explain.
    Damage(Problem),
}

/// Where reading is in a stream's segments.
struct Cursor {
    stream: StreamDir,
    meta: StreamMeta,
    /// Print messages at or above this offset.
    from: u64,
    /// Print messages of batches at or after this time.
    since_ms: Option<u64>,
    /// The segment being read.
    segment: Option<SegmentInfo>,
    /// File offset of the next frame in it.
    position: u64,
    /// LSN the next frame must carry.
    expected_lsn: u64,
    /// Offset the next batch must start at (unknown until the first frame read).
    next_offset: Option<u64>,
    /// Set when the segment is read again after a later segment appeared: a writer may have
    /// finished its frames and rotated between our read and our listing, so what ends a
    /// segment that is not the last is judged only on a read made after the listing.
    reread: bool,
}

impl Cursor {
    /// Places the cursor at the segment holding the first message to print.
    fn start(
        stream: &StreamDir,
        meta: &StreamMeta,
        from: u64,
        since_ms: Option<u64>,
    ) -> Result<Cursor> {
        let mut cursor = Cursor {
            stream: stream.clone(),
            meta: meta.clone(),
            from,
            since_ms,
            segment: None,
            position: SEGMENT_HEADER_BYTES,
            expected_lsn: 0,
            next_offset: None,
            reread: false,
        };
        let segments = cursor.segments()?;
        let mut chosen = None;
        for (index, info) in segments.iter().enumerate() {
            let skip = match segments.get(index + 1) {
                None => false,
                Some(next) => probe_first_batch(next)?.is_some_and(|(offset, timestamp_ms)| {
                    offset <= from && since_ms.is_none_or(|since| timestamp_ms < since)
                }),
            };
            if !skip {
                chosen = Some(info.clone());
                break;
            }
        }
        if let Some(info) = chosen {
            cursor.enter(info);
        }
        Ok(cursor)
    }

    /// The stream's segments whose headers check and belong to the stream's database.
    fn segments(&self) -> Result<Vec<SegmentInfo>> {
        let mut segments = Vec::new();
        let mut listing = StreamDir {
            entries: Vec::new(),
            ..self.stream.clone()
        };
        listing.entries = match std::fs::read_dir(&self.stream.path) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(segments),
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "cannot list the stream directory {}",
                        self.stream.path.display()
                    )
                })
            }
        };
        for segment in list_segment_files(&listing)? {
            if let Ok(info) = segment.info {
                if info.database_id == self.meta.database_id {
                    segments.push(info);
                }
            }
        }
        Ok(segments)
    }

    fn enter(&mut self, info: SegmentInfo) {
        self.reread = false;
        self.position = SEGMENT_HEADER_BYTES;
        self.expected_lsn = info.first_lsn;
        self.segment = Some(info);
    }

    /// Reads and prints every frame on disk from the cursor on.
    fn read_available<W: Write>(&mut self, printer: &mut Printer<W>, follow: bool) -> Result<Step> {
        loop {
            let Some(info) = self.segment.clone() else {
                // No segment yet (or it was removed): go on from the first one there is.
                match self.segments()?.into_iter().next() {
                    Some(first) => self.enter(first),
                    None => return Ok(Step::CaughtUp { torn: None }),
                }
                continue;
            };
            let file_bytes = match std::fs::metadata(&info.path) {
                Ok(metadata) => metadata.len(),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    // Removed under us by a truncation (or a deletion).
                    if !self.refresh() {
                        return Ok(Step::CaughtUp { torn: None });
                    }
                    self.segment = None;
                    self.next_offset = None;
                    // A race with a deletion is an error like any other read: ignore it here.
                    if let Ok(Ok(meta)) = read_meta(&self.stream, Some(self.meta.database_id)) {
                        self.from = self.from.max(meta.first_offset);
                    }
                    continue;
                }
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("cannot read {}", info.path.display()))
                }
            };
            let info = SegmentInfo { file_bytes, ..info };
            let mut reader = SegmentReader::open(&StdFileSystem, &info, FRAME_PAYLOAD_BYTES_MAX)
                .with_context(|| format!("cannot open {}", info.path.display()))?;
            reader.seek(self.position);
            if let Some(step) = self.read_frames(&mut reader, printer)? {
                return Ok(step);
            }
            if let Some(step) = self.at_stop(&mut reader, &info, follow)? {
                return Ok(step);
            }
        }
    }

    /// Prints the frames `reader` holds from the cursor on; `Some` when that ends the round
    /// (`--max`, damage), `None` at the reader's stop.
    fn read_frames<W: Write>(
        &mut self,
        reader: &mut SegmentReader,
        printer: &mut Printer<W>,
    ) -> Result<Option<Step>> {
        loop {
            let path = reader.path().to_path_buf();
            let next = reader
                .next()
                .with_context(|| format!("cannot read {}", path.display()))?;
            let Some((offset, frame)) = next else {
                return Ok(None);
            };
            let damage = |reason: String| Some(Step::Damage(Problem::new(&path, offset, reason)));
            if frame.lsn != self.expected_lsn {
                return Ok(damage(format!(
                    "frame carries LSN {} where LSN {} was expected",
                    frame.lsn, self.expected_lsn
                )));
            }
            if frame.record_type != STREAM_BATCH_RECORD_TYPE {
                return Ok(damage(format!(
                    "frame LSN {} has record type {}, not a stream batch",
                    frame.lsn, frame.record_type
                )));
            }
            if let Some(expected) = self.next_offset.filter(|&next| next != frame.version) {
                return Ok(damage(format!(
                    "frame LSN {} starts at offset {} where {expected} was expected",
                    frame.lsn, frame.version
                )));
            }
            let batch = match decode_batch(frame.body) {
                Ok(batch) => batch,
                Err(reason) => return Ok(damage(format!("frame LSN {}: {reason}", frame.lsn))),
            };
            let first = frame.version;
            let count = u64::try_from(batch.messages.len()).unwrap_or(u64::MAX);
            self.position = reader.position();
            self.reread = false;
            self.expected_lsn = self.expected_lsn.saturating_add(1);
            self.next_offset = Some(first.saturating_add(count));
            if self
                .since_ms
                .is_some_and(|since| batch.timestamp_ms < since)
            {
                continue;
            }
            for (offset, message) in (first..).zip(&batch.messages) {
                if offset >= self.from && !printer.print(offset, batch.timestamp_ms, message) {
                    return Ok(Some(Step::Done));
                }
            }
        }
    }

    /// Decides what the reader's stop means: the end of what is on disk (`Some(CaughtUp)`),
    /// damage, or the clean end of a segment followed by the next one (entered; `None`).
    fn at_stop(
        &mut self,
        reader: &mut SegmentReader,
        info: &SegmentInfo,
        follow: bool,
    ) -> Result<Option<Step>> {
        let later: Vec<SegmentInfo> = self
            .segments()?
            .into_iter()
            .filter(|segment| segment.first_lsn > info.first_lsn)
            .collect();
        let stopped_at = |reason: String| Problem::new(&info.path, self.position, reason);
        let reason = match reader.stop().map(|stop| stop.kind) {
            None | Some(StopKind::EndOfFile | StopKind::Zeros) => None,
            Some(StopKind::Incomplete) => {
                Some("the file ends inside the frame its header announces".to_owned())
            }
            Some(StopKind::Invalid { reason }) => Some(reason.to_owned()),
        };
        let conclusive = later
            .first()
            .is_some_and(|next| reason.is_none() && next.first_lsn == self.expected_lsn);
        if !later.is_empty() && !conclusive && !self.reread {
            self.reread = true;
            return Ok(None);
        }
        let step = match (later.first(), reason) {
            (None, None) => Step::CaughtUp { torn: None },
            (None, Some(reason)) => {
                if !follow {
                    let scan = reader
                        .scan_tail(self.expected_lsn.saturating_sub(1))
                        .with_context(|| format!("cannot read {}", info.path.display()))?;
                    if let Some((next_offset, next_lsn)) = scan.next_frame {
                        return Ok(Some(Step::Damage(stopped_at(format!(
                            "{reason}, yet a valid frame (LSN {next_lsn}) follows at offset \
                             {next_offset}"
                        )))));
                    }
                }
                Step::CaughtUp {
                    torn: Some(stopped_at(reason)),
                }
            }
            (Some(_), Some(reason)) => Step::Damage(stopped_at(format!(
                "{reason} in a segment that is not the last"
            ))),
            (Some(next), None) if next.first_lsn == self.expected_lsn => {
                let next = next.clone();
                self.enter(next);
                return Ok(None);
            }
            (Some(next), None) => Step::Damage(Problem::new(
                &next.path,
                0,
                format!(
                    "segment starts at LSN {} but the one before it ends before LSN {}",
                    next.first_lsn, self.expected_lsn
                ),
            )),
        };
        Ok(Some(step))
    }

    /// False once the stream is gone (its metadata file removed or renamed by a deletion).
    fn refresh(&self) -> bool {
        self.stream.path.join(META_FILE).is_file()
    }
}

/// The first batch of a segment, `(first offset, timestamp)`, from a 30-byte probe of its
/// first frame (unchecked: only used to skip segments; frames read are checked). `None` when
/// the probe does not look like a stream batch of the segment.
fn probe_first_batch(info: &SegmentInfo) -> Result<Option<(u64, u64)>> {
    let file = StdFileSystem
        .open(&info.path, OpenMode::Read)
        .with_context(|| format!("cannot open {}", info.path.display()))?;
    let mut prefix = [0_u8; FRAME_BODY_OFFSET + 8];
    let read = file
        .read_at(&mut prefix, SEGMENT_HEADER_BYTES)
        .with_context(|| format!("cannot read {}", info.path.display()))?;
    let field = |at: usize| {
        prefix
            .get(at..at + 8)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if read < prefix.len() || prefix.get(4) != Some(&STREAM_BATCH_RECORD_TYPE) {
        return Ok(None);
    }
    match (field(6), field(14), field(FRAME_BODY_OFFSET)) {
        (Some(lsn), Some(offset), Some(timestamp_ms)) if lsn == info.first_lsn => {
            Ok(Some((offset, timestamp_ms)))
        }
        _ => Ok(None),
    }
}

/// Prints messages and counts them against `--max`.
struct Printer<W: Write> {
    out: W,
    json: bool,
    printed: u64,
    max: Option<u64>,
    /// Stdout closed: print nothing more.
    closed: bool,
}

impl<W: Write> Printer<W> {
    /// Prints one message; false when no more should be printed (`--max`, closed stdout).
    fn print(&mut self, offset: u64, timestamp_ms: u64, message: &Message) -> bool {
        if self.closed || self.max.is_some_and(|max| self.printed >= max) {
            return false;
        }
        let line = if self.json {
            json_line(offset, timestamp_ms, message)
        } else {
            text_line(offset, timestamp_ms, message)
        };
        if writeln!(self.out, "{line}").is_err() {
            self.closed = true;
            return false;
        }
        self.printed += 1;
        self.max.is_none_or(|max| self.printed < max)
    }

    fn flush(&mut self) {
        if self.out.flush().is_err() {
            self.closed = true;
        }
    }
}

/// RFC 3339 in UTC with milliseconds, or the raw count when out of range.
pub fn rfc3339_millis(timestamp_ms: u64) -> String {
    i64::try_from(timestamp_ms)
        .ok()
        .and_then(|millis| jiff::Timestamp::from_millisecond(millis).ok())
        .map_or_else(|| format!("{timestamp_ms}ms"), |time| format!("{time:.3}"))
}

fn text_line(offset: u64, timestamp_ms: u64, message: &Message) -> String {
    let mut line = format!("offset={offset}\ttime={}", rfc3339_millis(timestamp_ms));
    // Writing to a String cannot fail.
    if let Some(key) = &message.key {
        let _ = write!(line, "\tkey={}", escape_bytes(key));
    }
    for (name, value) in &message.headers {
        let _ = write!(
            line,
            "\theader={}:{}",
            escape_bytes(name).replace(':', "\\x3a"),
            escape_bytes(value)
        );
    }
    let _ = write!(line, "\tvalue={}", escape_bytes(&message.value));
    line
}

/// A byte field of a JSON line: a string when the bytes are UTF-8, hex under `<name>_hex`
/// otherwise.
fn put_bytes(object: &mut serde_json::Map<String, serde_json::Value>, name: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => object.insert(name.to_owned(), text.into()),
        Err(_) => object.insert(format!("{name}_hex"), hex(bytes).into()),
    };
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A JSON line, fields in this order; each byte field is a one-entry map flattened in place
/// (`"value": "text"` or `"value_hex": "00ff"`).
#[derive(Serialize)]
struct JsonLine {
    offset: u64,
    timestamp_ms: u64,
    time: String,
    #[serde(flatten)]
    key: serde_json::Map<String, serde_json::Value>,
    headers: Vec<serde_json::Map<String, serde_json::Value>>,
    #[serde(flatten)]
    value: serde_json::Map<String, serde_json::Value>,
}

fn json_line(offset: u64, timestamp_ms: u64, message: &Message) -> String {
    let mut key = serde_json::Map::new();
    match &message.key {
        Some(bytes) => put_bytes(&mut key, "key", bytes),
        None => {
            key.insert("key".to_owned(), serde_json::Value::Null);
        }
    }
    let headers = message
        .headers
        .iter()
        .map(|(name, value)| {
            let mut header = serde_json::Map::new();
            put_bytes(&mut header, "name", name);
            put_bytes(&mut header, "value", value);
            header
        })
        .collect();
    let mut value = serde_json::Map::new();
    put_bytes(&mut value, "value", &message.value);
    let line = JsonLine {
        offset,
        timestamp_ms,
        time: rfc3339_millis(timestamp_ms),
        key,
        headers,
        value,
    };
    // Maps with string keys, strings and numbers always serialize.
    serde_json::to_string(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_704_067_199_999),
            "2023-12-31T23:59:59.999Z"
        );
        assert_eq!(rfc3339_millis(u64::MAX), format!("{}ms", u64::MAX));
    }

    #[test]
    fn text_lines_escape_every_field() {
        let message = Message::value(b"v\t1".to_vec())
            .with_key("k")
            .with_header("a:b", b"\xff".to_vec());
        assert_eq!(
            text_line(7, 0, &message),
            "offset=7\ttime=1970-01-01T00:00:00.000Z\tkey=k\theader=a\\x3ab:\\xff\tvalue=v\\x091"
        );
        let bare = Message::value("");
        assert_eq!(
            text_line(0, 0, &bare),
            "offset=0\ttime=1970-01-01T00:00:00.000Z\tvalue="
        );
    }

    #[test]
    fn json_lines_use_hex_only_for_bytes_that_are_not_utf8() {
        let message = Message::value(b"\x00\xff".to_vec()).with_header("h", "é");
        let line: serde_json::Value =
            serde_json::from_str(&json_line(3, 5, &message)).expect("valid JSON");
        assert_eq!(line["offset"], 3);
        assert_eq!(line["timestamp_ms"], 5);
        assert_eq!(line["key"], serde_json::Value::Null);
        assert_eq!(line["value_hex"], "00ff");
        assert!(line.get("value").is_none());
        assert!(json_line(3, 5, &message).starts_with("{\"offset\":3,\"timestamp_ms\":5,"));
        assert_eq!(line["headers"][0]["name"], "h");
        assert_eq!(line["headers"][0]["value"], "é");
    }

    #[test]
    fn the_printer_stops_at_max() {
        let mut printer = Printer {
            out: Vec::new(),
            json: false,
            printed: 0,
            max: Some(2),
            closed: false,
        };
        let message = Message::value("x");
        assert!(printer.print(0, 0, &message));
        assert!(!printer.print(1, 0, &message));
        assert!(!printer.print(2, 0, &message));
        assert_eq!(printer.printed, 2);
    }
}
