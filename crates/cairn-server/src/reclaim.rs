//! The reclaimer: deletes the element records of collections that no longer exist, so that
//! `DEL`, an overwrite or an expiry of a collection can remove only its metadata record (O(1)
//! for the client, as Redis's lazy free is) and its elements are freed here, in the
//! background.
//!
//! An element record is garbage when its key's metadata record is absent, expired, not a
//! collection, or holds another version: versions are never reused
//! (`commands::collection`), so such an element can never belong to a live collection
//! again, and deleting it needs no lock. Each pass examines at most [`PASS_RECORDS`] records,
//! resuming where the last pass stopped and wrapping around, so its work and memory are
//! bounded however large the database; passes run every [`PASS_INTERVAL`].

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use cairn::WriteBatch;
use parking_lot::{Condvar, Mutex};

use crate::keyspace::{self, Kind, DATABASES};
use crate::state::Shared;

/// Records one pass examines at most.
pub const PASS_RECORDS: usize = 4096;

/// The pause between passes.
pub const PASS_INTERVAL: Duration = Duration::from_millis(200);

/// Stops the reclaimer thread.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    pub(crate) fn stop(&self) {
        *self.stopped.lock() = true;
        self.wake.notify_all();
    }

    /// Waits `interval`; whether the reclaimer should stop.
    fn wait(&self, interval: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            self.wake.wait_for(&mut stopped, interval);
        }
        *stopped
    }
}

/// The reclaimer thread's loop.
pub(crate) fn run(shared: &Arc<Shared>, stop: &Stop) {
    let mut resume: Option<Vec<u8>> = None;
    while !stop.wait(PASS_INTERVAL) {
        resume = pass(shared, resume.as_deref());
    }
}

/// Every element-record range of every database, in engine key order.
fn ranges() -> Vec<[u8; 2]> {
    (0..DATABASES)
        .filter_map(|db| u8::try_from(db).ok())
        .flat_map(keyspace::element_prefixes)
        .collect()
}

/// One pass: examines up to [`PASS_RECORDS`] element records after `resume` (or from the
/// start), deletes the garbage among them, and returns where the next pass resumes (`None`:
/// from the start).
pub(crate) fn pass(shared: &Shared, resume: Option<&[u8]>) -> Option<Vec<u8>> {
    let now = keyspace::now_millis();
    let mut budget = PASS_RECORDS;
    let mut batch = WriteBatch::new();
    // The last (db, key) looked up and the live version it has, if any.
    let mut cached: Option<(Vec<u8>, Option<u64>)> = None;
    let mut last = None;
    for prefix in ranges() {
        let mut end = prefix.to_vec();
        if let Some(tag) = end.last_mut() {
            *tag += 1;
        }
        let start = match resume {
            Some(resume) if resume >= &prefix[..] && resume < &end[..] => {
                Bound::Excluded(resume.to_vec())
            }
            Some(resume) if resume >= &end[..] => continue,
            _ => Bound::Included(prefix.to_vec()),
        };
        let Ok(scan) = shared.db.range::<Vec<u8>>((start, Bound::Excluded(end))) else {
            return None;
        };
        for (engine_key, _) in scan {
            if budget == 0 {
                break;
            }
            budget -= 1;
            let db = engine_key.first().copied().unwrap_or(0);
            let Some((key, version, _)) = keyspace::split_element_key(&engine_key) else {
                continue;
            };
            let meta_key = keyspace::meta_key(db, key);
            let live = match &cached {
                Some((cached_key, live)) if *cached_key == meta_key => *live,
                _ => {
                    let live = live_version(shared, &meta_key, now);
                    cached = Some((meta_key, live));
                    live
                }
            };
            if live != Some(version) {
                batch.delete(&engine_key);
            }
            last = Some(engine_key.to_vec());
        }
        if budget == 0 {
            break;
        }
    }
    if !batch.is_empty() {
        shared.reclaimed(batch.len());
        // A failed write (a closed or poisoned database) leaves the garbage for a later pass.
        let _ = shared.db.write(&batch);
    }
    if budget == 0 {
        last
    } else {
        None
    }
}

/// The version of the live collection under `meta_key`, if there is one.
fn live_version(shared: &Shared, meta_key: &[u8], now: u64) -> Option<u64> {
    let record = shared.db.get(meta_key).ok()??;
    let entry = keyspace::decode(record.as_bytes())?;
    if !entry.is_live(now) || entry.kind == Kind::String {
        return None;
    }
    keyspace::version_of(entry.payload)
}
