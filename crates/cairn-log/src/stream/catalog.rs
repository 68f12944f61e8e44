//! The catalog of a store's streams: every stream has a small [`Slot`] (id, offsets,
//! timestamps, its retention override), and an open [`Stream`] (log, file handles, tail,
//! sparse index, groups) only while it is in use.
//!
//! Guarantees: a stream is opened at its first use (or at store open unless
//! `StreamOptions::lazy_open`), released by the maintenance thread once unused for
//! `idle_release_after`, and reopened transparently at its next use. A stream is released
//! only when nothing is lost by it: nobody else holds it (no operation in flight, no blocked
//! reader), every append is durable, its `GROUPS` file is current and no group has a
//! pending message (pending lists live in memory only). While `open_streams_max` streams are
//! open, opening one more first releases the least recently used releasable stream; when
//! none is releasable the operation fails with [`StreamError::TooManyOpenStreams`] at once
//! (it does not wait). Two logs are never open on one directory: a release happens under
//! the catalog lock, and a stream is only ever opened under it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::format::to_u64;

use super::error::StreamError;
use super::files::{stream_dir_name, META_FILE};
use super::options::Retention;
use super::single::{Stream, StreamInfo};
use super::{log_options, recover_meta, Shared};

/// What the store keeps of a stream, open or not.
#[derive(Debug)]
pub(super) struct Slot {
    /// The stream's id (its directory's name).
    pub id: u64,
    /// The open stream, while it is open.
    pub open: Option<Arc<Stream>>,
    /// A retention set at run time, which outlives releases.
    pub retention: Option<Box<Retention>>,
    /// Offsets and times, current while the stream is released.
    pub desc: Descriptor,
}

/// A released stream's offsets and times.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Descriptor {
    /// The first readable offset.
    pub first_offset: u64,
    /// The next offset (valid when `known`).
    pub next_offset: u64,
    /// The last batch's timestamp (valid when `known`).
    pub last_timestamp_ms: u64,
    /// Milliseconds since the store opened at the last use.
    pub last_used_ms: u64,
    /// When age retention can next delete something (store clock), `u64::MAX` for never.
    pub retention_due_ms: u64,
    /// The offsets were taken from an open log (a stream never opened since the store
    /// opened knows only its first offset, from its metadata file).
    pub known: bool,
}

impl Slot {
    /// A released slot for stream `id` whose metadata says `first_offset`.
    pub fn unopened(id: u64, first_offset: u64) -> Self {
        Slot {
            id,
            open: None,
            retention: None,
            desc: Descriptor {
                first_offset,
                retention_due_ms: u64::MAX,
                ..Descriptor::default()
            },
        }
    }
}

/// The streams by name, and the next id to give.
#[derive(Debug, Default)]
pub(super) struct Catalog {
    pub by_name: BTreeMap<Box<str>, Slot>,
    /// The names of the open streams.
    pub open_names: BTreeSet<Box<str>>,
    /// Names whose `create` failed in a way it could not undo: their metadata file may be
    /// durable, so a second `create` could make two streams of one name. Refused until the
    /// store is reopened, which settles them either way.
    pub unsettled: BTreeSet<Box<str>>,
    pub next_id: u64,
}

impl Shared {
    /// Milliseconds since the store opened (for idleness).
    pub(super) fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The stream named `name`, opened if it is released; `NotFound` when there is none.
    pub(super) fn get(&self, name: &str) -> Result<Arc<Stream>, StreamError> {
        let mut catalog = self.catalog.lock();
        self.get_locked(&mut catalog, name)
    }

    /// As [`Shared::get`], with the catalog locked.
    pub(super) fn get_locked(
        &self,
        catalog: &mut Catalog,
        name: &str,
    ) -> Result<Arc<Stream>, StreamError> {
        let now = self.uptime_ms();
        let slot = catalog
            .by_name
            .get_mut(name)
            .ok_or_else(|| StreamError::NotFound {
                name: name.to_owned(),
            })?;
        slot.desc.last_used_ms = now;
        if let Some(stream) = &slot.open {
            return Ok(Arc::clone(stream));
        }
        self.load(catalog, name)
    }

    /// The stream's offsets without opening it when its descriptor knows them.
    pub(super) fn info(&self, name: &str) -> Result<StreamInfo, StreamError> {
        let mut catalog = self.catalog.lock();
        if let Some(slot) = catalog.by_name.get(name) {
            if slot.open.is_none() && slot.desc.known {
                let desc = slot.desc;
                return Ok(StreamInfo {
                    first_offset: desc.first_offset.min(desc.next_offset),
                    next_offset: desc.next_offset,
                });
            }
        }
        Ok(self.get_locked(&mut catalog, name)?.info())
    }

    /// Opens the released stream `name` (after making room under `open_streams_max`).
    fn load(&self, catalog: &mut Catalog, name: &str) -> Result<Arc<Stream>, StreamError> {
        // After close, a released stream stays closed like the others.
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::error::LogError::Closed.into());
        }
        self.make_room(catalog)?;
        let Some(slot) = catalog.by_name.get_mut(name) else {
            return Err(StreamError::NotFound {
                name: name.to_owned(),
            });
        };
        let stream_dir = self.dir.join(stream_dir_name(slot.id));
        let fs = self.fs.as_ref();
        let meta = recover_meta(fs, &self.dir, &stream_dir, slot.id, self.database_id)?
            .filter(|meta| meta.name == name)
            .ok_or_else(|| {
                StreamError::corrupted(
                    &stream_dir.join(META_FILE),
                    0,
                    format!("the metadata of stream {name:?} is gone or names another stream"),
                )
            })?;
        let retention = slot
            .retention
            .as_deref()
            .copied()
            .unwrap_or_else(|| self.options.retention_of(name));
        let stream = Arc::new(Stream::open(
            &self.fs,
            &stream_dir,
            meta,
            &self.options,
            log_options(&self.options, self.database_id, &self.signal),
            retention,
        )?);
        slot.open = Some(Arc::clone(&stream));
        slot.desc.known = true;
        catalog.open_names.insert(name.into());
        Ok(stream)
    }

    /// Releases least recently used streams until one more may open; `TooManyOpenStreams`
    /// when the limit is reached and no open stream is releasable.
    pub(super) fn make_room(&self, catalog: &mut Catalog) -> Result<(), StreamError> {
        let Some(limit) = self.options.open_streams_max else {
            return Ok(());
        };
        while catalog.open_names.len() >= limit {
            let victim = catalog
                .open_names
                .iter()
                .filter_map(|name| {
                    let slot = catalog.by_name.get(name)?;
                    let stream = slot.open.as_ref()?;
                    (Arc::strong_count(stream) == 1 && stream.releasable())
                        .then(|| (slot.desc.last_used_ms, name.clone()))
                })
                .min();
            let Some((_, name)) = victim else {
                return Err(StreamError::TooManyOpenStreams { limit });
            };
            Self::release_locked(catalog, &name)?;
        }
        Ok(())
    }

    /// Closes the open stream `name` if nobody else holds it and it is releasable, keeping
    /// its descriptor; true when released.
    fn release_locked(catalog: &mut Catalog, name: &str) -> Result<bool, StreamError> {
        let Some(slot) = catalog.by_name.get_mut(name) else {
            return Ok(false);
        };
        let Some(stream) = slot.open.take_if(|stream| {
            // Only the catalog holds it, and only under this lock can anyone take a new hold.
            Arc::strong_count(stream) == 1 && stream.releasable()
        }) else {
            return Ok(false);
        };
        let (first_offset, next_offset, last_timestamp_ms) = stream.descriptor();
        slot.desc.first_offset = first_offset;
        slot.desc.next_offset = next_offset;
        slot.desc.last_timestamp_ms = last_timestamp_ms;
        slot.desc.retention_due_ms = stream.retention_due_ms();
        slot.desc.known = true;
        catalog.open_names.remove(name);
        // Everything is durable (releasable), so closing does no I/O that can fail short of
        // a poisoned log, which releasable refused.
        stream.close()?;
        Ok(true)
    }

    /// Releases every open stream unused for at least `idle_ms`; returns how many. Each is
    /// first settled (synced, groups written) outside the catalog lock, so the lock is never
    /// held across a sync.
    pub(super) fn release_idle(&self, idle_ms: u64) -> Result<u64, StreamError> {
        let now = self.uptime_ms();
        let idle = |slot: &Slot| now.saturating_sub(slot.desc.last_used_ms) >= idle_ms;
        let candidates: Vec<(Box<str>, Arc<Stream>)> = {
            let catalog = self.catalog.lock();
            catalog
                .open_names
                .iter()
                .filter_map(|name| {
                    let slot = catalog.by_name.get(name)?;
                    let stream = slot.open.as_ref()?;
                    idle(slot).then(|| (name.clone(), Arc::clone(stream)))
                })
                .collect()
        };
        let mut released = 0;
        let mut first_error = None;
        for (name, stream) in candidates {
            if let Err(error) = stream.settle() {
                first_error.get_or_insert(error);
                continue;
            }
            drop(stream);
            let mut catalog = self.catalog.lock();
            if catalog.by_name.get(&name).is_some_and(idle) {
                match Self::release_locked(&mut catalog, &name) {
                    Ok(true) => released += 1,
                    Ok(false) => {}
                    Err(error) => {
                        first_error.get_or_insert(error);
                    }
                }
            }
        }
        first_error.map_or(Ok(released), Err)
    }

    /// Releases the stream `name` now if it can be (for tests and callers who know a stream
    /// goes quiet); true when released.
    pub(super) fn release_now(&self, name: &str) -> Result<bool, StreamError> {
        let stream = {
            let catalog = self.catalog.lock();
            catalog.by_name.get(name).and_then(|slot| slot.open.clone())
        };
        let Some(stream) = stream else {
            return Ok(false);
        };
        stream.settle()?;
        drop(stream);
        let mut catalog = self.catalog.lock();
        Self::release_locked(&mut catalog, name)
    }

    /// The open streams.
    pub(super) fn open_streams(&self) -> Vec<Arc<Stream>> {
        let catalog = self.catalog.lock();
        catalog
            .open_names
            .iter()
            .filter_map(|name| catalog.by_name.get(name)?.open.clone())
            .collect()
    }

    /// The names of released streams whose age retention is due at `now_ms` (store clock).
    pub(super) fn released_due(&self, now_ms: u64) -> Vec<Box<str>> {
        self.catalog
            .lock()
            .by_name
            .iter()
            .filter(|(_, slot)| slot.open.is_none() && slot.desc.retention_due_ms <= now_ms)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// `(streams, open streams)`.
    pub(super) fn counts(&self) -> (u64, u64) {
        let catalog = self.catalog.lock();
        (
            to_u64(catalog.by_name.len()),
            to_u64(catalog.open_names.len()),
        )
    }
}
