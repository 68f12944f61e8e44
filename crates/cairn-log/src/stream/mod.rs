//! Durable message streams on the log: [`Streams`], a store of named, append-only streams in
//! one directory, each a [`crate::Log`] of its own with one frame per batch.
//!
//! What it guarantees:
//! - Offsets are dense per stream: the first message is offset 0, each append takes the next
//!   ones, and no offset is ever reused, not even after a truncation (a deleted and re-created
//!   stream starts again at 0). A batch is one frame, so after a crash it is there whole or
//!   not at all.
//! - Durability is chosen per store: in [`SyncPolicy::Strict`] an append returns after its
//!   frame is synced (concurrent appenders to a stream share one `fdatasync`: the log's
//!   leader/follower group commit); in [`SyncPolicy::Buffered`] it returns once buffered,
//!   and one flush thread for the whole store syncs every stream's log every
//!   `flush_interval`. After a crash a Strict stream has every acknowledged message and a
//!   Buffered stream a prefix of what was acknowledged.
//! - A reader never sees a message that was not acknowledged, and sees every acknowledged one
//!   (Buffered included, through the in-memory tail of recent batches).
//! - Every message carries the time its batch was appended (milliseconds since the Unix
//!   epoch, from [`Clock`]); timestamps never decrease within a stream.
//! - Open reads only the tail of each stream's log (plus one small probe per older segment),
//!   or with `lazy_open` no log at all until the stream's first use;
//!   a torn tail is cut, and damage a crash cannot explain is [`crate::LogError::Corrupted`]
//!   naming file and offset unless [`RecoveryMode::Salvage`]. No file content makes it panic,
//!   and lengths are checked before anything is allocated for them.
//! - Stream names are 1 to 512 bytes of `[A-Za-z0-9._-]`; on disk a stream's directory is
//!   named by a numeric id, never by the name's bytes.
//! - Consumer groups ([`Streams::create_group`], [`Streams::read_group`], [`Streams::ack`],
//!   [`Streams::commit`], [`Streams::claim`]) deliver each message once to one member and keep
//!   it pending until acknowledged. Only each group's committed offset (the lowest offset it
//!   has not acknowledged) is durable, in a small CRC'd `GROUPS` file per stream replaced
//!   atomically: when `create_group`/`delete_group` return, and when `ack`/`commit`/`claim`
//!   return in Strict mode (Buffered: within `flush_interval`, by the flush thread). After a
//!   reopen every group delivers again from its committed offset with nothing pending: at
//!   least once, never lost. Loading groups reads one file of at most ~140 KiB per stream.
//! - Blocking reads ([`Streams::read_blocking`], [`Streams::read_group_blocking`]) sleep on a
//!   per-stream condition variable with a deadline; an append signals it only when a reader
//!   is registered (one atomic load otherwise), and messages never pass between threads.
//!
//! - Retention ([`Retention`], in [`StreamOptions`] with per-stream overrides, or
//!   [`Streams::set_retention`]) deletes a stream's oldest whole segments by size on disk,
//!   age (batch timestamps) or message count, never the active one, and moves the first
//!   offset durably as `truncate_before` does; optionally never past the lowest committed
//!   offset of the stream's groups. It runs on the maintenance thread every
//!   `retention_interval` or on demand ([`Streams::apply_retention`]), at most
//!   `retention_segments_per_pass` segments per stream per pass.
//! - Replay cursors ([`Streams::cursor`]) read from an offset or a time to the head in
//!   bounded batches and then follow the tail on the blocking-read notifier; messages
//!   truncated under a cursor are a typed error or skipped ([`Truncation`]).
//! - Many streams: a stream unused for `idle_release_after` releases its log, file handles,
//!   tail and index and keeps a descriptor of about 180 bytes; it reopens on its next use.
//!   At most `open_streams_max` streams are open: the least recently used releasable one is
//!   released first, else [`StreamError::TooManyOpenStreams`]. With `lazy_open`, opening the
//!   store reads one directory listing and one metadata file per stream, and no log.
//!
//! The layout, byte by byte, and the reasons for each choice are in `docs/streams.md`.
//! Modules: [`codec`] (batch, metadata and identity formats), [`groups`] (the `GROUPS` file
//! and group state), [`retention`] (which segments a retention deletes), [`cursor`] (replay
//! cursors), `catalog` (open and released streams), `index` (segments and the sparse index),
//! `single` (one stream), `files` (small files, crash-safe delete), `notify` (wake-ups of
//! blocking reads), [`options`], [`error`].

mod catalog;
pub mod codec;
pub mod cursor;
pub mod error;
mod files;
pub mod groups;
mod index;
mod notify;
pub mod options;
pub mod retention;
mod single;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::fs::{DirLock, FileSystem};
use crate::identity::DatabaseId;
#[cfg(doc)]
use crate::options::RecoveryMode;
use crate::options::{FlushWaker, LogOptions, SyncPolicy};

pub use codec::{
    decode_batch, decode_batch_refs, encode_batch, DecodedBatch, HeadersRef, Message, MessageRef,
    StreamMeta, BATCH_MESSAGES_MAX, MESSAGE_BYTES_MAX, MESSAGE_HEADERS_MAX, STREAM_NAME_BYTES_MAX,
};
pub use cursor::{Cursor, Start, Truncation};
pub use error::StreamError;
pub use groups::{
    GroupInfo, GroupsFile, PendingEntry, GROUPS_PER_STREAM_MAX, GROUP_NAME_BYTES_MAX,
};
pub use options::{Clock, Retention, StreamOptions};
pub use retention::RetentionReport;
pub use single::{StoredMessage, StreamInfo};

use catalog::{Catalog, Slot};
use codec::{decode_identity, encode_identity, is_valid_name, IDENTITY_FILE_BYTES};
use files::{
    doom_stream_dir, parse_stream_dir_name, read_small_file, remove_if_present, remove_stream_dir,
    stream_dir_name, sync_dir, write_atomically, DOOMED_META_FILE, IDENTITY_FILE, META_FILE,
    TEMP_SUFFIX,
};
use groups::check_group_name;
use notify::Notifier;
use single::Stream;

/// Name of the store's flush thread in Buffered mode.
pub const STREAM_FLUSH_THREAD_NAME: &str = "cairn-stream-flush";

/// Largest metadata file: fixed part, longest name, CRC.
const META_FILE_BYTES_MAX: usize =
    codec::META_FIXED_BYTES + STREAM_NAME_BYTES_MAX + codec::META_TRAILER_BYTES;

/// Wakes and stops the flush thread.
#[derive(Debug, Default)]
struct FlushSignal {
    state: Mutex<(bool, bool)>,
    wanted: Condvar,
}

impl FlushSignal {
    /// Asks for a flush soon.
    fn wake(&self) {
        self.state.lock().0 = true;
        self.wanted.notify_one();
    }
}

/// State shared by the store handle and its flush thread.
#[derive(Debug)]
struct Shared {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    options: StreamOptions,
    database_id: DatabaseId,
    catalog: Mutex<Catalog>,
    signal: Arc<FlushSignal>,
    /// Set by `close`: blocked readers return `Closed`.
    closed: AtomicBool,
    /// Signalled when a stream is created (readers blocked on a name that does not exist).
    created: Notifier,
    /// When the store opened (idleness is measured from it).
    started: Instant,
    _lock: Box<dyn DirLock>,
}

/// A store of durable message streams in one directory. See the module documentation.
#[derive(Debug)]
pub struct Streams {
    shared: Arc<Shared>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl Streams {
    /// Opens (creating if needed) the store in `dir`: locks the directory, loads or creates
    /// its identity, finishes deletions a crash interrupted, and recovers every stream.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        options: StreamOptions,
    ) -> Result<Streams, StreamError> {
        options.validate()?;
        fs.create_dir_all(dir)
            .map_err(|error| StreamError::io("create store directory", dir, error))?;
        let lock = fs.lock_dir(dir).map_err(|error| {
            if error.kind() == std::io::ErrorKind::WouldBlock {
                StreamError::Locked {
                    dir: dir.to_path_buf(),
                }
            } else {
                StreamError::io("lock store directory", dir, error)
            }
        })?;
        let names = fs
            .list_dir(dir)
            .map_err(|error| StreamError::io("list store directory", dir, error))?;
        remove_if_present(
            fs.as_ref(),
            &dir.join(format!("{IDENTITY_FILE}{TEMP_SUFFIX}")),
        )?;
        let mut ids: Vec<u64> = names
            .iter()
            .filter_map(|name| parse_stream_dir_name(name))
            .collect();
        ids.sort_unstable();
        let database_id = load_or_create_identity(fs.as_ref(), dir, &names, !ids.is_empty())?;
        let signal = Arc::new(FlushSignal::default());
        let mut catalog = Catalog {
            next_id: ids.last().map_or(1, |last| last.saturating_add(1)),
            ..Catalog::default()
        };
        for id in ids {
            let stream_dir = dir.join(stream_dir_name(id));
            let Some(meta) = recover_meta(fs.as_ref(), dir, &stream_dir, id, database_id)? else {
                continue;
            };
            if catalog.by_name.contains_key(meta.name.as_str()) {
                return Err(StreamError::corrupted(
                    &stream_dir.join(META_FILE),
                    codec::META_FIXED_BYTES as u64,
                    format!("a second stream named {:?}", meta.name),
                ));
            }
            catalog.by_name.insert(
                meta.name.into_boxed_str(),
                Slot::unopened(id, meta.first_offset),
            );
        }
        let lazy = options.lazy_open;
        let shared = Arc::new(Shared {
            fs,
            dir: dir.to_path_buf(),
            options,
            database_id,
            catalog: Mutex::new(catalog),
            signal,
            closed: AtomicBool::new(false),
            created: Notifier::default(),
            started: Instant::now(),
            _lock: lock,
        });
        if !lazy {
            // Recover every stream now, so that damage is reported by open; beyond
            // `open_streams_max` the least recently opened are released again.
            let mut catalog = shared.catalog.lock();
            let names: Vec<Box<str>> = catalog.by_name.keys().cloned().collect();
            for name in names {
                shared.get_locked(&mut catalog, &name)?;
            }
        }
        let flusher = start_flusher(&shared)?;
        Ok(Streams {
            shared,
            flusher: Mutex::new(flusher),
        })
    }

    /// The store's identity, written into every segment and metadata file it creates.
    pub fn database_id(&self) -> DatabaseId {
        self.shared.database_id
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Creates an empty stream; `AlreadyExists` if the name is taken.
    pub fn create(&self, name: &str) -> Result<(), StreamError> {
        check_name(name)?;
        let shared = &*self.shared;
        let mut catalog = shared.catalog.lock();
        if catalog.by_name.contains_key(name) || catalog.unsettled.contains(name) {
            return Err(StreamError::AlreadyExists {
                name: name.to_owned(),
            });
        }
        shared.make_room(&mut catalog)?;
        let id = catalog.next_id;
        catalog.next_id = id.saturating_add(1);
        let stream_dir = shared.dir.join(stream_dir_name(id));
        let fs = shared.fs.as_ref();
        fs.create_dir_all(&stream_dir)
            .map_err(|error| StreamError::io("create stream directory", &stream_dir, error))?;
        sync_dir(fs, &shared.dir)?;
        let meta = StreamMeta {
            database_id: shared.database_id,
            stream_id: id,
            first_offset: 0,
            name: name.to_owned(),
        };
        // The metadata file comes last: until it is durable the directory holds no stream,
        // and open removes it, so a failure or crash before this point needs no cleanup.
        let encoded = meta.encode();
        let log_options = log_options(&shared.options, shared.database_id, &shared.signal);
        let retention = shared.options.retention_of(name);
        let stream = Stream::open(
            &shared.fs,
            &stream_dir,
            meta,
            &shared.options,
            log_options,
            retention,
        )?;
        if let Err(error) = write_atomically(fs, &stream_dir, META_FILE, &encoded) {
            drop(stream);
            let undone = remove_if_present(fs, &stream_dir.join(META_FILE))
                .and_then(|()| sync_dir(fs, &stream_dir));
            if undone.is_err() {
                catalog.unsettled.insert(name.into());
            }
            return Err(error);
        }
        let mut slot = Slot::unopened(id, 0);
        slot.open = Some(Arc::new(stream));
        slot.desc.known = true;
        slot.desc.last_used_ms = shared.uptime_ms();
        catalog.by_name.insert(name.into(), slot);
        catalog.open_names.insert(name.into());
        drop(catalog);
        shared.created.notify();
        Ok(())
    }

    /// The names of every stream, sorted.
    pub fn list(&self) -> Vec<String> {
        self.shared
            .catalog
            .lock()
            .by_name
            .keys()
            .map(ToString::to_string)
            .collect()
    }

    /// Deletes a stream and its files; true when it existed. Crash-safe: once the doomed
    /// rename is durable the stream is gone, and an interrupted removal is finished at open.
    pub fn delete(&self, name: &str) -> Result<bool, StreamError> {
        check_name(name)?;
        let shared = &*self.shared;
        let mut catalog = shared.catalog.lock();
        let Some(slot) = catalog.by_name.get(name) else {
            return Ok(false);
        };
        let stream_dir = shared.dir.join(stream_dir_name(slot.id));
        let stream = slot.open.clone();
        if let Some(stream) = &stream {
            stream.mark_deleted();
        }
        doom_stream_dir(shared.fs.as_ref(), &stream_dir)?;
        catalog.by_name.remove(name);
        catalog.open_names.remove(name);
        drop(catalog);
        if let Some(stream) = stream {
            // The stream is deleted; what its log still buffers goes with it.
            let _ = stream.close();
        }
        remove_stream_dir(shared.fs.as_ref(), &shared.dir, &stream_dir)?;
        Ok(true)
    }

    /// Appends one message; returns its offset once acknowledged.
    pub fn append(&self, name: &str, message: &Message) -> Result<u64, StreamError> {
        let range = self
            .stream(name)?
            .append_batch(std::slice::from_ref(message))?;
        Ok(range.start)
    }

    /// Appends 1 to [`BATCH_MESSAGES_MAX`] messages atomically (one frame); returns their
    /// consecutive offsets once acknowledged.
    pub fn append_batch(
        &self,
        name: &str,
        messages: &[Message],
    ) -> Result<Range<u64>, StreamError> {
        self.stream(name)?.append_batch(messages)
    }

    /// The message at `offset`: `None` at or past the end, [`StreamError::Truncated`] below
    /// the first readable offset.
    pub fn read(&self, name: &str, offset: u64) -> Result<Option<StoredMessage>, StreamError> {
        self.stream(name)?.read(offset)
    }

    /// Up to `max_messages` (at most [`BATCH_MESSAGES_MAX`]) messages from the first readable
    /// offset at or after `from`, in offset order, stopping before the message that would
    /// take the total payload past `max_bytes` (the first message is returned whatever its
    /// size). Offsets below the first readable one are skipped, not an error. Empty at the
    /// end.
    pub fn read_range(
        &self,
        name: &str,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredMessage>, StreamError> {
        self.stream(name)?.read_range(from, max_messages, max_bytes)
    }

    /// Calls `visit(offset, timestamp_ms, message)` with up to `max_messages` (at most
    /// [`BATCH_MESSAGES_MAX`]) messages from the first readable offset at or after `from`, in
    /// offset order; `visit` returns false to refuse a message and stop there. Returns how
    /// many messages `visit` took (0 at the end). This is [`Streams::read_range`] without the
    /// copies: each message is borrowed from the read buffer or the in-memory tail, so a
    /// replay that folds messages into its own state allocates nothing per message. `visit`
    /// runs under the stream's lock: it must not call into the same stream (that deadlocks),
    /// and a slow `visit` delays the stream's appends.
    pub fn scan_range(
        &self,
        name: &str,
        from: u64,
        max_messages: usize,
        visit: &mut dyn FnMut(u64, u64, MessageRef<'_>) -> bool,
    ) -> Result<usize, StreamError> {
        self.stream(name)?.scan_range(from, max_messages, visit)
    }

    /// The first readable offset whose timestamp is at or after `timestamp_ms`; `None` when
    /// every readable message is older (or there is none).
    pub fn seek_time(&self, name: &str, timestamp_ms: u64) -> Result<Option<u64>, StreamError> {
        self.stream(name)?.seek_time(timestamp_ms)
    }

    /// The stream's first readable and next offsets.
    pub fn info(&self, name: &str) -> Result<StreamInfo, StreamError> {
        check_name(name)?;
        self.shared.info(name)
    }

    /// Makes every offset below `offset` unreadable, durably (the log is synced and the new
    /// first offset written before this returns), and deletes the segments wholly below it.
    /// Nothing happens at or below the first readable offset; above the next offset it is
    /// `InvalidArgument`.
    pub fn truncate_before(&self, name: &str, offset: u64) -> Result<(), StreamError> {
        self.stream(name)?.truncate_before(offset)
    }

    /// As [`Streams::read_range`], but when nothing is readable at or after `from` it waits
    /// up to `timeout` for an append (or for the stream to be created, when it does not
    /// exist, or re-created, when it is deleted meanwhile), and returns empty if none comes.
    /// The waiting thread sleeps on a condition variable; appenders signal it only while a
    /// reader waits. `LogError::Closed` (in `StreamError::Log`) when the store closes
    /// meanwhile.
    pub fn read_blocking(
        &self,
        name: &str,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<StoredMessage>, StreamError> {
        check_name(name)?;
        let deadline = deadline(timeout)?;
        let shared = &*self.shared;
        loop {
            if shared.closed.load(Ordering::SeqCst) {
                return Err(crate::error::LogError::Closed.into());
            }
            let found = match shared.get(name) {
                Ok(stream) => Some(stream),
                Err(StreamError::NotFound { .. }) => None,
                Err(error) => return Err(error),
            };
            let ready = if let Some(stream) = found {
                let read = stream.read_range(from, max_messages, max_bytes)?;
                if !read.is_empty() || max_messages == 0 {
                    return Ok(read);
                }
                stream.wait_readable(from, deadline, &shared.closed)
            } else {
                shared.created.wait_until(deadline, || {
                    shared.closed.load(Ordering::SeqCst)
                        || shared.catalog.lock().by_name.contains_key(name)
                })
            };
            if !ready {
                return Ok(Vec::new());
            }
        }
    }

    /// A replay cursor on stream `name` from `start`: it yields every message from there to
    /// the head in bounded batches, then follows the tail ([`Cursor::next_blocking`]). See
    /// [`cursor`] for what it does when messages are truncated under it.
    pub fn cursor(&self, name: &str, start: Start) -> Result<Cursor, StreamError> {
        let stream = self.stream(name)?;
        Cursor::new(Arc::clone(&self.shared), &stream, name, start)
    }

    /// Creates consumer group `group` on stream `name`, delivering from offset `start` (which
    /// may lie ahead of the stream's end); false, changing nothing, when it exists. Durable
    /// when it returns (in both sync modes). At most [`GROUPS_PER_STREAM_MAX`] groups per
    /// stream; group names are 1 to [`GROUP_NAME_BYTES_MAX`] bytes of `[A-Za-z0-9._-]`.
    pub fn create_group(&self, name: &str, group: &str, start: u64) -> Result<bool, StreamError> {
        check_group_name("group", group)?;
        self.stream(name)?.create_group(group, start)
    }

    /// Deletes a consumer group with its pending messages, durably; false when it did not
    /// exist.
    pub fn delete_group(&self, name: &str, group: &str) -> Result<bool, StreamError> {
        check_group_name("group", group)?;
        self.stream(name)?.delete_group(group)
    }

    /// Delivers up to `max_messages` (at most [`BATCH_MESSAGES_MAX`]) messages the group has
    /// not delivered yet, in offset order, to `consumer`, each pending for it from now. A
    /// group behind the first readable offset delivers from the first readable offset.
    /// `GroupNotFound` when the stream has no such group.
    pub fn read_group(
        &self,
        name: &str,
        group: &str,
        consumer: &str,
        max_messages: usize,
    ) -> Result<Vec<StoredMessage>, StreamError> {
        check_group_name("group", group)?;
        check_group_name("consumer", consumer)?;
        self.stream(name)?.read_group(group, consumer, max_messages)
    }

    /// As [`Streams::read_group`], but when there is nothing to deliver it waits up to
    /// `timeout` for an append (as [`Streams::read_blocking`] does, without the wait for a
    /// missing stream: a group needs its stream). `NotFound` when the stream is deleted
    /// meanwhile, `LogError::Closed` when the store closes.
    pub fn read_group_blocking(
        &self,
        name: &str,
        group: &str,
        consumer: &str,
        max_messages: usize,
        timeout: Duration,
    ) -> Result<Vec<StoredMessage>, StreamError> {
        check_group_name("group", group)?;
        check_group_name("consumer", consumer)?;
        let deadline = deadline(timeout)?;
        self.stream(name)?.read_group_blocking(
            group,
            consumer,
            max_messages,
            deadline,
            &self.shared.closed,
        )
    }

    /// Acknowledges the pending `offsets`; returns how many were pending (0 in a group that
    /// does not exist). Strict mode: durable when it returns if it moved the committed
    /// offset; Buffered: by the flush thread within `flush_interval`.
    pub fn ack(&self, name: &str, group: &str, offsets: &[u64]) -> Result<u64, StreamError> {
        check_group_name("group", group)?;
        self.stream(name)?.ack(group, offsets)
    }

    /// Acknowledges every offset below `offset` and moves delivery up to it if it is behind
    /// (durability as for [`Streams::ack`]).
    pub fn commit(&self, name: &str, group: &str, offset: u64) -> Result<(), StreamError> {
        check_group_name("group", group)?;
        self.stream(name)?.commit(group, offset)
    }

    /// Takes over up to `max_messages` messages pending for at least `min_idle` for any
    /// member, lowest offsets first, making them pending for `consumer` from now (their
    /// delivery count goes up by one). Pending messages truncated away are dropped from the
    /// pending list and not returned (Redis's `XAUTOCLAIM` does the same).
    pub fn claim(
        &self,
        name: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max_messages: usize,
    ) -> Result<Vec<StoredMessage>, StreamError> {
        check_group_name("group", group)?;
        check_group_name("consumer", consumer)?;
        self.stream(name)?
            .claim(group, consumer, min_idle, max_messages)
    }

    /// The stream's consumer groups, by name.
    pub fn group_info(&self, name: &str) -> Result<Vec<GroupInfo>, StreamError> {
        Ok(self.stream(name)?.group_info())
    }

    /// Up to `max` pending messages of `group`, from offset `from`, in offset order.
    pub fn pending(
        &self,
        name: &str,
        group: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<PendingEntry>, StreamError> {
        check_group_name("group", group)?;
        self.stream(name)?.pending(group, from, max)
    }

    /// The retention stream `name` applies now.
    pub fn retention(&self, name: &str) -> Result<Retention, StreamError> {
        check_name(name)?;
        let catalog = self.shared.catalog.lock();
        let slot = catalog
            .by_name
            .get(name)
            .ok_or_else(|| StreamError::NotFound {
                name: name.to_owned(),
            })?;
        Ok(match (&slot.open, &slot.retention) {
            (Some(stream), _) => stream.retention(),
            (None, Some(retention)) => **retention,
            (None, None) => self.shared.options.retention_of(name),
        })
    }

    /// Replaces the retention of stream `name` until the store closes (not persisted: the
    /// next open takes it from [`StreamOptions`] again; a release keeps it). Applied by the
    /// next pass.
    pub fn set_retention(&self, name: &str, retention: Retention) -> Result<(), StreamError> {
        check_name(name)?;
        let mut catalog = self.shared.catalog.lock();
        let slot = catalog
            .by_name
            .get_mut(name)
            .ok_or_else(|| StreamError::NotFound {
                name: name.to_owned(),
            })?;
        slot.retention = Some(Box::new(retention));
        // A due time computed under the old retention no longer holds.
        slot.desc.retention_due_ms = if retention.max_age_ms.is_some() {
            0
        } else {
            u64::MAX
        };
        if let Some(stream) = &slot.open {
            stream.set_retention(retention);
        }
        Ok(())
    }

    /// Releases every stream unused for at least `idle` now (what the maintenance thread
    /// does with `idle_release_after`): its log, file handles, tail and index are dropped
    /// and only a small descriptor is kept; the next use reopens it. A stream with a
    /// pending group message, a blocked reader or an operation in flight is not released.
    /// Returns how many were released.
    pub fn release_idle(&self, idle: Duration) -> Result<u64, StreamError> {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        self.shared.release_idle(idle_ms)
    }

    /// Releases stream `name` now if it can be (see [`Streams::release_idle`]); true when it
    /// was open and is released.
    pub fn release(&self, name: &str) -> Result<bool, StreamError> {
        check_name(name)?;
        self.shared.release_now(name)
    }

    /// `(streams, open streams)`: how many streams the store holds and how many of them
    /// have their log open.
    pub fn open_counts(&self) -> (u64, u64) {
        self.shared.counts()
    }

    /// One retention pass over every stream: each deletes at most
    /// `retention_segments_per_pass` of its oldest segments that its [`Retention`] lets go
    /// and moves its first offset durably (as `truncate_before` does) to the first offset of
    /// the oldest segment kept. `streams_with_more` in the report counts the streams the
    /// bound stopped; call again to continue. Every stream is tried; the first error is
    /// returned.
    pub fn apply_retention(&self) -> Result<RetentionReport, StreamError> {
        apply_retention(&self.shared)
    }

    /// Makes everything appended to every stream durable.
    pub fn sync(&self) -> Result<(), StreamError> {
        for stream in self.streams() {
            stream.log().sync()?;
        }
        Ok(())
    }

    /// Stops the flush thread and closes every stream's log, syncing what is buffered.
    /// Returns the first error; later calls fail with `Closed`.
    pub fn close(&self) -> Result<(), StreamError> {
        self.stop_flusher();
        let shared = &*self.shared;
        shared.closed.store(true, Ordering::SeqCst);
        shared.created.notify();
        let mut first_error: Option<StreamError> = None;
        for stream in self.streams() {
            stream.wake_waiters();
            if let Err(error) = stream.persist_groups_if_needed() {
                // A closed log (a second close) has nothing left to write.
                if !matches!(error, StreamError::Log(crate::error::LogError::Closed)) {
                    first_error.get_or_insert(error);
                }
            }
            if let Err(error) = stream.close() {
                first_error.get_or_insert(error.into());
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `(segments, sparse index entries)` the stream's reader knows about, for tests.
    #[doc(hidden)]
    pub fn index_counts(&self, name: &str) -> Result<(usize, usize), StreamError> {
        Ok(self.stream(name)?.index_counts())
    }

    fn stream(&self, name: &str) -> Result<Arc<Stream>, StreamError> {
        check_name(name)?;
        self.shared.get(name)
    }

    fn streams(&self) -> Vec<Arc<Stream>> {
        self.shared.open_streams()
    }

    fn stop_flusher(&self) {
        {
            let mut state = self.shared.signal.state.lock();
            state.1 = true;
        }
        self.shared.signal.wanted.notify_all();
        if let Some(handle) = self.flusher.lock().take() {
            // The thread never panics; a panic would already have been reported.
            let _ = handle.join();
        }
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        // Best effort, like a buffered writer: callers who need the outcome call close.
        let _ = self.close();
    }
}

/// The instant `timeout` from now; `InvalidArgument` when it is not representable.
fn deadline(timeout: Duration) -> Result<Instant, StreamError> {
    Instant::now()
        .checked_add(timeout)
        .ok_or_else(|| StreamError::InvalidArgument {
            reason: format!("a wait of {timeout:?} is too long"),
        })
}

/// `InvalidName` unless `name` is 1 to 512 bytes of `[A-Za-z0-9._-]`.
fn check_name(name: &str) -> Result<(), StreamError> {
    if is_valid_name(name.as_bytes()) {
        Ok(())
    } else {
        Err(StreamError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// The log options of every stream of a store.
fn log_options(
    options: &StreamOptions,
    database_id: DatabaseId,
    signal: &Arc<FlushSignal>,
) -> LogOptions {
    let mut log_options = LogOptions::new(options.sync.clone());
    log_options.segment_bytes = options.segment_bytes;
    log_options.recovery = options.recovery;
    log_options.database_id = database_id;
    #[cfg(feature = "sabotage")]
    {
        log_options.sabotage = options.sabotage;
    }
    if matches!(options.sync, SyncPolicy::Buffered { .. }) {
        let signal = Arc::clone(signal);
        log_options.flush_waker = Some(FlushWaker(Arc::new(move || signal.wake())));
    }
    log_options
}

/// Reads the store's identity file, or creates it in a store without streams.
fn load_or_create_identity(
    fs: &dyn FileSystem,
    dir: &Path,
    names: &[String],
    has_streams: bool,
) -> Result<DatabaseId, StreamError> {
    let path = dir.join(IDENTITY_FILE);
    if names.iter().any(|name| name == IDENTITY_FILE) {
        let bytes = read_small_file(fs, &path, IDENTITY_FILE_BYTES)?;
        return decode_identity(&bytes)
            .map_err(|(offset, reason)| StreamError::corrupted(&path, offset, reason));
    }
    if has_streams {
        return Err(StreamError::corrupted(
            &path,
            0,
            "the store identity file is missing but streams exist",
        ));
    }
    let id = DatabaseId::generate();
    write_atomically(fs, dir, IDENTITY_FILE, &encode_identity(id))?;
    Ok(id)
}

/// The metadata of the stream directory `stream_dir` (id `id`), after finishing what a crash
/// interrupted: `None` for a deleted or never completed stream, whose files are removed.
fn recover_meta(
    fs: &dyn FileSystem,
    root: &Path,
    stream_dir: &Path,
    id: u64,
    database_id: DatabaseId,
) -> Result<Option<StreamMeta>, StreamError> {
    let names = fs
        .list_dir(stream_dir)
        .map_err(|error| StreamError::io("list stream directory", stream_dir, error))?;
    let has = |wanted: &str| names.iter().any(|name| name == wanted);
    if has(DOOMED_META_FILE) || !has(META_FILE) {
        if !names.is_empty() {
            remove_stream_dir(fs, root, stream_dir)?;
        }
        return Ok(None);
    }
    remove_if_present(fs, &stream_dir.join(format!("{META_FILE}{TEMP_SUFFIX}")))?;
    let path = stream_dir.join(META_FILE);
    let bytes = read_small_file(fs, &path, META_FILE_BYTES_MAX)?;
    let meta = StreamMeta::decode(&bytes)
        .map_err(|(offset, reason)| StreamError::corrupted(&path, offset, reason))?;
    if meta.stream_id != id {
        return Err(StreamError::corrupted(
            &path,
            32,
            format!("names stream id {} in directory {id}", meta.stream_id),
        ));
    }
    if meta.database_id != database_id {
        return Err(StreamError::Log(crate::error::LogError::ForeignFile {
            file: path,
            expected: database_id,
            found: meta.database_id,
        }));
    }
    Ok(Some(meta))
}

/// One retention pass over every stream of the store; the first error after trying all.
fn apply_retention(shared: &Shared) -> Result<RetentionReport, StreamError> {
    let budget = shared.options.retention_segments_per_pass;
    let mut streams = shared.open_streams();
    // A released stream is reopened only when its age limit may have expired something
    // (count and size limits were applied before its release and nothing was appended).
    for name in shared.released_due(shared.options.clock.now_ms()) {
        match shared.get(&name) {
            Ok(stream) => streams.push(stream),
            // Deleted meanwhile, or no room under open_streams_max: the next pass retries.
            Err(StreamError::NotFound { .. } | StreamError::TooManyOpenStreams { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let mut report = RetentionReport::default();
    let mut first_error = None;
    for stream in streams {
        match stream.apply_retention(budget) {
            Ok(pass) => {
                report.segments_removed += pass.segments_removed;
                report.messages_removed += pass.messages_removed;
                report.streams_with_more += pass.streams_with_more;
            }
            // A stream deleted or a store closed meanwhile has nothing left to retain.
            Err(StreamError::Log(crate::error::LogError::Closed)) => {}
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(report), Err)
}

/// Starts the store's maintenance thread when it has work: flushing in Buffered mode,
/// retention when `retention_interval` is set; `None` otherwise.
fn start_flusher(shared: &Arc<Shared>) -> Result<Option<JoinHandle<()>>, StreamError> {
    let flush = shared.options.flush_interval();
    let retention = shared.options.retention_interval;
    let idle = shared.options.idle_release_after;
    let Some(interval) = [flush, retention, idle].into_iter().flatten().min() else {
        return Ok(None);
    };
    let thread_shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name(STREAM_FLUSH_THREAD_NAME.to_owned())
        .spawn(move || run_flusher(&thread_shared, interval))
        .map(Some)
        .map_err(|error| StreamError::io("start flush thread", &shared.dir, error))
}

/// The maintenance loop. Buffered mode: flushes every open stream's log every
/// `flush_interval`, or sooner when a log's buffer crossed its threshold (a flush failure
/// poisons that log only). With `retention_interval`: one retention pass per interval. With
/// `idle_release_after`: releases the streams idle that long, checked at every wake-up.
/// Ends when the store closes.
fn run_flusher(shared: &Shared, interval: Duration) {
    let signal = &*shared.signal;
    let flushing = shared.options.flush_interval().is_some();
    let mut next_retention = shared
        .options
        .retention_interval
        .and_then(|every| Instant::now().checked_add(every));
    loop {
        {
            let mut state = signal.state.lock();
            if !state.0 && !state.1 {
                let _ = signal.wanted.wait_for(&mut state, interval);
            }
            if state.1 {
                return;
            }
            state.0 = false;
        }
        if flushing {
            for stream in shared.open_streams() {
                // An error poisons that stream's log, whose appends and waits then report it.
                let _ = stream.log().flush_tick();
                // Committed offsets moved by acknowledgements; a failure is retried next tick.
                let _ = stream.persist_groups_if_needed();
            }
        }
        if let (Some(due), Some(every)) = (next_retention, shared.options.retention_interval) {
            let now = Instant::now();
            if now >= due {
                // A failure (I/O, a poisoned log) is retried at the next interval; the
                // stream's own operations report it.
                let _ = apply_retention(shared);
                next_retention = now.checked_add(every);
            }
        }
        if let Some(idle) = shared.options.idle_release_after {
            // A stream that cannot be settled (a failed sync poisons its log) stays open and
            // reports the failure to its own callers.
            let _ = shared.release_idle(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX));
        }
    }
}
