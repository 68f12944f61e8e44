//! Stream workloads only Cairn runs: opening a large store after a crash, the batch codec, a
//! consume-acknowledge loop through a consumer group, a many-thread stress mix, and the memory
//! an inactive stream costs (probed in a child process, like the key-value memory tier).

use super::durability::DataDir;
use super::{ensure, run_threads, ParallelWorkload, Result, Workload, WorkloadError};
use crate::keys::value_of_length;
use cairn_log::stream::{decode_batch, encode_batch, Retention, StreamMeta};
use cairn_log::{
    list_segments, FileSystem, Message, OpenMode, StdFileSystem, StreamOptions, Streams,
    SyncPolicy, SEGMENT_HEADER_BYTES,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STREAM: &str = "bench";
const GROUP: &str = "workers";
/// Messages per batch of the stream workloads below.
pub const BATCH: usize = 100;
/// Bytes per message of the recovery store.
pub const RECOVERY_MESSAGE_BYTES: usize = 1_024;

fn open(dir: &Path, sync: SyncPolicy, lazy: bool) -> Result<Streams> {
    let mut options = StreamOptions::new(sync);
    options.lazy_open = lazy;
    Ok(Streams::open(Arc::new(StdFileSystem), dir, options)?)
}

fn io_error(action: &str, error: &std::io::Error) -> WorkloadError {
    WorkloadError::io("streams", action, error)
}

/// Opens a store holding `bytes` of 1 KiB messages in one stream whose tail a crash tore: the
/// newest segment ends in 100 bytes of garbage, as if the process died writing a frame.
pub struct CrashedOpen {
    messages: u64,
    open: Option<Streams>,
    reported: Vec<Duration>,
    dir: DataDir,
}

impl CrashedOpen {
    /// Writes the store (untimed), in batches of 1,000 messages.
    pub fn new(bytes: u64) -> Result<Self> {
        let dir = DataDir::create("stream-recovery")?;
        let streams = open(dir.path(), SyncPolicy::buffered(), false)?;
        streams.create(STREAM)?;
        let batch = vec![Message::value(value_of_length(RECOVERY_MESSAGE_BYTES)); 1_000];
        let mut messages = 0_u64;
        while messages * (RECOVERY_MESSAGE_BYTES as u64) < bytes {
            messages = streams.append_batch(STREAM, &batch)?.end;
        }
        streams.close()?;
        Ok(CrashedOpen {
            messages,
            open: None,
            reported: Vec::new(),
            dir,
        })
    }

    /// The stream's directory: the store's only subdirectory.
    fn stream_dir(&self) -> Result<PathBuf> {
        let entries = std::fs::read_dir(self.dir.path()).map_err(|e| io_error("list", &e))?;
        for entry in entries {
            let path = entry.map_err(|e| io_error("list", &e))?.path();
            if path.is_dir() {
                return Ok(path);
            }
        }
        Err(WorkloadError::unexpected(
            "stream_recovery",
            "no stream directory",
        ))
    }

    /// Wall times of the opens measured so far.
    pub fn reported(&self) -> &[Duration] {
        &self.reported
    }
}

impl Workload for CrashedOpen {
    /// Closes the last open, then tears the newest segment's first frame.
    fn prepare(&mut self, _: usize) -> Result<()> {
        if let Some(streams) = self.open.take() {
            streams.close()?;
        }
        let stream_dir = self.stream_dir()?;
        let segments = list_segments(&StdFileSystem, &stream_dir).map_err(|e| {
            WorkloadError::unexpected("stream_recovery", format!("list segments: {e}"))
        })?;
        let newest = segments.iter().max_by_key(|segment| segment.segment_number);
        let newest =
            newest.ok_or_else(|| WorkloadError::unexpected("stream_recovery", "no segment"))?;
        // Segments are preallocated with zeros: the frames end at the last nonzero byte.
        let bytes = std::fs::read(&newest.path).map_err(|e| io_error("read the tail", &e))?;
        let end = bytes
            .iter()
            .rposition(|&byte| byte != 0)
            .map_or(0, |last| last as u64 + 1);
        let torn_at = end.max(SEGMENT_HEADER_BYTES);
        let file = StdFileSystem.open(&newest.path, OpenMode::ReadWrite);
        let torn = file.and_then(|file| file.write_all_at(&[0xA5; 100], torn_at));
        torn.map_err(|e| io_error("tear the tail", &e))
    }

    fn run_op(&mut self) -> Result<()> {
        let started = Instant::now();
        let streams = open(self.dir.path(), SyncPolicy::buffered(), false)?;
        let next = streams.info(STREAM)?.next_offset;
        self.reported.push(started.elapsed());
        // A last frame whose checksum ended in a zero byte was torn too: one batch lost.
        let kept = next <= self.messages && next + 1_000 >= self.messages;
        ensure(kept, "stream_recovery", "acknowledged messages lost")?;
        self.messages = next;
        self.open = Some(streams);
        Ok(())
    }
}

/// The batch codec: [`BATCH`] messages with a key, two headers and 1 KiB, encoded and decoded.
pub struct Conversion {
    batch: Vec<Message>,
    body: Vec<u8>,
}

impl Default for Conversion {
    fn default() -> Self {
        let message = Message::value(value_of_length(1_024))
            .with_key(b"order-000042".to_vec())
            .with_header(b"content-type".to_vec(), b"application/json".to_vec())
            .with_header(b"trace-id".to_vec(), b"4bf92f3577b34da6".to_vec());
        Conversion {
            batch: vec![message; BATCH],
            body: Vec::new(),
        }
    }
}

impl Workload for Conversion {
    fn run_op(&mut self) -> Result<()> {
        self.body.clear();
        encode_batch(&mut self.body, 1, &self.batch);
        let decoded =
            decode_batch(&self.body).map_err(|e| WorkloadError::unexpected("decode", e))?;
        let same =
            decoded.messages.len() == BATCH && decoded.messages.first() == self.batch.first();
        ensure(
            same,
            "message_conversion",
            "the batch did not survive its encoding",
        )
    }

    fn engine_ops_per_run(&self) -> u64 {
        BATCH as u64
    }
}

/// A consumer group's loop: append a batch, read it through the group, acknowledge it.
pub struct GroupProcessing {
    streams: Streams,
    batch: Vec<Message>,
    next: u64,
    offsets: Vec<u64>,
    _dir: DataDir,
}

impl GroupProcessing {
    /// A Buffered store with one stream and one group.
    pub fn new() -> Result<Self> {
        let dir = DataDir::create("stream-groups")?;
        let streams = open(dir.path(), SyncPolicy::buffered(), false)?;
        streams.create(STREAM)?;
        streams.create_group(STREAM, GROUP, 0)?;
        let batch = vec![Message::value(value_of_length(64)); BATCH];
        Ok(GroupProcessing {
            streams,
            batch,
            next: 0,
            offsets: Vec::new(),
            _dir: dir,
        })
    }
}

impl Workload for GroupProcessing {
    fn run_op(&mut self) -> Result<()> {
        self.streams.append_batch(STREAM, &self.batch)?;
        let delivered = self.streams.read_group(STREAM, GROUP, "worker-1", BATCH)?;
        self.offsets.clear();
        self.offsets
            .extend(delivered.iter().map(|stored| stored.offset));
        let expected = (self.next..self.next + BATCH as u64).eq(self.offsets.iter().copied());
        ensure(
            expected,
            "transaction_processing",
            "the group skipped or repeated a message",
        )?;
        let acked = self.streams.ack(STREAM, GROUP, &self.offsets)?;
        ensure(
            acked == BATCH as u64,
            "transaction_processing",
            "an ack was lost",
        )?;
        self.next += BATCH as u64;
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        BATCH as u64
    }
}

/// Producers on a stream each, consumers draining them through a group, retention trimming
/// behind the consumers; a run ends when every message produced was delivered, in order.
pub struct Stress {
    streams: Arc<Streams>,
    producers: usize,
    batches: u64,
    produced: Vec<u64>,
    _dir: DataDir,
}

/// Producer and consumer threads of [`Stress`].
pub const STRESS_THREADS: (usize, usize) = (4, 2);

impl Stress {
    /// A Buffered store of [`STRESS_THREADS`]`.0` streams keeping at most 100,000 messages each.
    pub fn new(batches: u64) -> Result<Self> {
        let dir = DataDir::create("stream-stress")?;
        let streams = open(dir.path(), SyncPolicy::buffered(), false)?;
        let producers = STRESS_THREADS.0;
        let retention = Retention {
            max_messages: Some(100_000),
            respect_groups: true,
            ..Retention::NONE
        };
        for stream in 0..producers {
            let name = format!("{STREAM}-{stream}");
            streams.create(&name)?;
            streams.create_group(&name, GROUP, 0)?;
            streams.set_retention(&name, retention)?;
        }
        let streams = Arc::new(streams);
        let produced = vec![0; producers];
        Ok(Stress {
            streams,
            producers,
            batches,
            produced,
            _dir: dir,
        })
    }
}

impl ParallelWorkload for Stress {
    fn run(&mut self) -> Result<Duration> {
        let (producers, consumers) = (self.producers, STRESS_THREADS.1);
        let batch = vec![Message::value(value_of_length(256)); BATCH];
        let (streams, batches, produced) = (&self.streams, self.batches, &self.produced);
        let roles: Vec<usize> = (0..producers + consumers).collect();
        let elapsed = run_threads(roles, |_, role| {
            if role < producers {
                let name = format!("{STREAM}-{role}");
                for _ in 0..batches {
                    streams.append_batch(&name, &batch)?;
                }
                return streams.apply_retention().map(drop).map_err(Into::into);
            }
            // Consumer c drains streams c, c + consumers, ...: each stream has one consumer.
            for stream in (role - producers..producers).step_by(consumers) {
                let name = format!("{STREAM}-{stream}");
                let start = produced.get(stream).copied().unwrap_or(0);
                let end = start + batches * BATCH as u64;
                let mut next = start;
                while next < end {
                    let timeout = Duration::from_secs(10);
                    let got = streams.read_group_blocking(&name, GROUP, "c", 1_000, timeout)?;
                    ensure(
                        !got.is_empty(),
                        "comprehensive_stress",
                        "a consumer starved for 10 s",
                    )?;
                    for stored in &got {
                        ensure(
                            stored.offset == next,
                            "comprehensive_stress",
                            "out of order",
                        )?;
                        next += 1;
                    }
                    let offsets: Vec<u64> = got.iter().map(|stored| stored.offset).collect();
                    streams.ack(&name, GROUP, &offsets)?;
                }
            }
            Ok(())
        })?;
        for produced in &mut self.produced {
            *produced += self.batches * BATCH as u64;
        }
        Ok(elapsed)
    }

    /// Messages appended plus messages delivered.
    fn engine_ops_per_run(&self) -> u64 {
        2 * self.producers as u64 * self.batches * BATCH as u64
    }
}

/// The child's side of the stream memory probe: `streams` inactive streams (written directly,
/// as `create` leaves them but without a segment), then the store opened with `lazy_open`.
/// Returns `streams count=N rss_before=B rss_after=B`.
pub fn memory_probe(count: u64) -> Result<String> {
    let dir = DataDir::create("stream-memory")?;
    let database_id = {
        let streams = open(dir.path(), SyncPolicy::Strict, true)?;
        let id = streams.database_id();
        streams.close()?;
        id
    };
    let fs = StdFileSystem;
    for index in 0..count {
        let stream_id = index + 1;
        let stream_dir = dir.path().join(format!("{stream_id:020}"));
        let name = format!("stream-{index:06}");
        let meta = StreamMeta {
            database_id,
            stream_id,
            first_offset: 0,
            name,
        };
        fs.create_dir_all(&stream_dir)
            .map_err(|e| io_error("mkdir", &e))?;
        let file = fs.open(&stream_dir.join("STREAM"), OpenMode::CreateNew);
        let written = file.and_then(|file| file.write_all_at(&meta.encode(), 0));
        written.map_err(|e| io_error("write metadata", &e))?;
    }
    let rss_before = crate::side_by_side::memory::process_memory("VmRSS")?;
    let streams = open(dir.path(), SyncPolicy::Strict, true)?;
    let rss_after = crate::side_by_side::memory::process_memory("VmRSS")?;
    let (inactive, open) = streams.open_counts();
    ensure(
        inactive == count && open == 0,
        "memory_efficiency",
        "streams not all inactive",
    )?;
    drop(std::hint::black_box(streams));
    Ok(format!(
        "streams count={count} rss_before={rss_before} rss_after={rss_after}"
    ))
}

/// Bytes per inactive stream from a [`memory_probe`] line.
pub fn bytes_per_stream(line: &str) -> Option<u64> {
    let field = |name: &str| {
        let value = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix(name));
        value.and_then(|value| value.parse::<u64>().ok())
    };
    let (count, before, after) = (
        field("count=")?,
        field("rss_before=")?,
        field("rss_after=")?,
    );
    Some(after.saturating_sub(before) / count.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_line_gives_bytes_per_stream() {
        let line = "streams count=1000 rss_before=4096 rss_after=204096";
        assert_eq!(bytes_per_stream(line), Some(200));
        assert_eq!(
            bytes_per_stream("streams count=x rss_before=1 rss_after=2"),
            None
        );
    }
}
