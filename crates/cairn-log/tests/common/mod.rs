//! Shared utilities of the log's integration tests: unique temporary directories, a file system
//! whose calls can be made to fail, and record collection at open.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_log::{
    DirLock, FileHandle, FileSystem, FrameRef, Log, LogError, LogOptions, OpenMode, ReplayReport,
    StdFileSystem, SyncPolicy,
};

/// A directory under the system temp dir with a unique name, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    pub path: PathBuf,
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let unique = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "cairn-log-test-{name}-{}-{unique}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One replayed record, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: u8,
    pub lsn: u64,
    pub version: u64,
    pub body: Vec<u8>,
}

impl Record {
    /// The record a test appends at `lsn`: varied body sizes, content derived from the LSN.
    pub fn for_lsn(lsn: u64, body_bytes: usize) -> Self {
        let body = (0..body_bytes)
            .map(|index| u8::try_from((lsn * 31 + index as u64) % 251).expect("byte") | 1)
            .collect();
        Record {
            kind: u8::try_from(lsn % 3 + 1).expect("small"),
            lsn,
            version: lsn * 10,
            body,
        }
    }
}

/// Options with `segment_bytes`, Strict sync.
pub fn strict_options(segment_bytes: u64) -> LogOptions {
    let mut options = LogOptions::new(SyncPolicy::Strict);
    options.segment_bytes = segment_bytes;
    options
}

/// Opens `dir` on the standard file system and collects what replay applies.
pub fn open_collect(
    dir: &Path,
    options: LogOptions,
    after_lsn: u64,
) -> Result<(Log, ReplayReport, Vec<Record>), LogError> {
    open_collect_on(Arc::new(StdFileSystem), dir, options, after_lsn)
}

/// Opens `dir` on `fs` and collects what replay applies.
pub fn open_collect_on(
    fs: Arc<dyn FileSystem>,
    dir: &Path,
    options: LogOptions,
    after_lsn: u64,
) -> Result<(Log, ReplayReport, Vec<Record>), LogError> {
    let mut records = Vec::new();
    let mut apply = |frame: &FrameRef<'_>| {
        records.push(Record {
            kind: frame.record_type,
            lsn: frame.lsn,
            version: frame.version,
            body: frame.body.to_vec(),
        });
        Ok(())
    };
    let (log, report) = Log::open(fs, dir, options, after_lsn, &mut apply)?;
    Ok((log, report, records))
}

/// Appends `records` and waits until they are durable.
pub fn append_all(log: &Log, records: &[Record]) {
    for record in records {
        log.append(record.kind, record.lsn, record.version, &record.body)
            .expect("append");
    }
    log.sync().expect("sync");
}

/// Records `first..=last`, with body sizes from `body_bytes(lsn)`.
pub fn records(first: u64, last: u64, body_bytes: impl Fn(u64) -> usize) -> Vec<Record> {
    (first..=last)
        .map(|lsn| Record::for_lsn(lsn, body_bytes(lsn)))
        .collect()
}

/// The `*.wal` files of `dir`, sorted by name (= first LSN).
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "wal"))
        .collect();
    files.sort();
    files
}

/// Copies every file of `from` into the fresh directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
    }
}

/// Offsets of the frames of `records` in one segment that starts with the first of them.
pub fn frame_offsets(records: &[Record]) -> Vec<u64> {
    let mut offset = cairn_log::SEGMENT_HEADER_BYTES;
    records
        .iter()
        .map(|record| {
            let start = offset;
            offset += cairn_log::encoded_frame_bytes(record.body.len()) as u64;
            start
        })
        .collect()
}

/// XORs `mask` into the byte at `offset` of `path`.
pub fn flip_byte(path: &Path, offset: u64, mask: u8) {
    let mut bytes = std::fs::read(path).expect("read file");
    let index = usize::try_from(offset).expect("offset");
    bytes[index] ^= mask;
    std::fs::write(path, bytes).expect("write file");
}

/// Switches of [`FaultyFs`], shared with the handles it opened.
#[derive(Debug, Default)]
pub struct Faults {
    pub fail_sync_data: AtomicBool,
    pub fail_write: AtomicBool,
    pub fail_create: AtomicBool,
    pub fail_sync_dir: AtomicBool,
    /// Milliseconds each `sync_data` sleeps first, so that waiters pile up behind a leader.
    pub sync_delay_millis: AtomicU64,
    pub sync_data_calls: AtomicU64,
}

/// The standard file system with switchable failures.
#[derive(Debug, Default)]
pub struct FaultyFs {
    pub faults: Arc<Faults>,
}

#[derive(Debug)]
struct FaultyHandle {
    inner: Box<dyn FileHandle>,
    faults: Arc<Faults>,
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl FileHandle for FaultyHandle {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.faults.fail_write.load(Ordering::SeqCst) {
            return Err(injected("write"));
        }
        self.inner.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.faults.sync_data_calls.fetch_add(1, Ordering::SeqCst);
        let delay = self.faults.sync_delay_millis.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if self.faults.fail_sync_data.load(Ordering::SeqCst) {
            return Err(injected("sync_data"));
        }
        self.inner.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl FileSystem for FaultyFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFileSystem.list_dir(path)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FileHandle>> {
        if mode == OpenMode::CreateNew && self.faults.fail_create.load(Ordering::SeqCst) {
            return Err(injected("create"));
        }
        Ok(Box::new(FaultyHandle {
            inner: StdFileSystem.open(path, mode)?,
            faults: Arc::clone(&self.faults),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFileSystem.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if self.faults.fail_sync_dir.load(Ordering::SeqCst) {
            return Err(injected("sync_dir"));
        }
        StdFileSystem.sync_dir(path)
    }

    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        StdFileSystem.lock_dir(path)
    }
}
