//! The *late* state of a long-running process, for `cairn bench --late`: before anything is
//! measured, the process fills and frees several million keys in other stores and runs
//! hundreds of short-lived threads, so the rows are measured against a heap and a thread
//! history like a service's after hours of work, not a fresh process's.
//!
//! What it does, in order (each step reported through `progress`):
//! 1. fills an in-memory Cairn database with `keys` keys (16-byte keys, 100-byte values),
//!    overwrites a third of them, and drops it;
//! 2. fills a `std` `HashMap` and a `BTreeMap` of owned byte vectors with `keys / 2` entries
//!    each, frees every other entry, then drops both;
//! 3. starts and joins [`LATE_THREADS`] threads, each of which reads one key of a small
//!    database once.
//!
//! Everything it allocates is freed before the first row runs; what remains is the state of
//! the allocator and the thread bookkeeping of every library the rows use.

use std::collections::{BTreeMap, HashMap};

use crate::sizes::VALUE_BYTES;

/// Key `id` of the late state's own key space (16 bytes, like the rows' keys).
fn key(id: usize) -> Vec<u8> {
    format!("late{id:012}").into_bytes()
}

/// Keys filled and freed by default (`--late`).
pub const LATE_KEYS: usize = 3_000_000;
/// Short-lived threads started and joined.
pub const LATE_THREADS: usize = 256;

/// What [`age_process`] did, for the run's notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aged {
    /// Keys filled (and freed) in the Cairn database.
    pub cairn_keys: usize,
    /// Entries filled (and freed) in each of the two `std` maps.
    pub map_entries: usize,
    /// Threads started and joined.
    pub threads: usize,
}

impl std::fmt::Display for Aged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "late state: before measuring, this process filled and freed {} keys in an \
             in-memory Cairn database and {} entries in each of a HashMap and a BTreeMap, and \
             ran {} short-lived threads",
            self.cairn_keys, self.map_entries, self.threads
        )
    }
}

/// Puts the process in the late state (see the module documentation).
pub fn age_process(keys: usize, mut progress: impl FnMut(&str)) -> Aged {
    let value = vec![0x5a_u8; VALUE_BYTES];
    let shorter = vec![0xa5_u8; VALUE_BYTES / 2];
    progress(&format!(
        "late state: filling {keys} keys into an in-memory Cairn database"
    ));
    {
        let db = cairn::Db::in_memory();
        for id in 0..keys {
            // An in-memory put fails only on bad input, which these keys and values are not.
            let _ = db.put(key(id), &value);
        }
        for id in (0..keys).step_by(3) {
            let _ = db.put(key(id), &shorter);
        }
        progress("late state: closing it");
        let _ = db.close();
    }
    let entries = keys / 2;
    progress(&format!(
        "late state: filling {entries} entries into a HashMap and a BTreeMap"
    ));
    {
        let mut hashed: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut ordered: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for id in 0..entries {
            hashed.insert(key(id), value.clone());
            ordered.insert(key(id), value.clone());
        }
        for id in (0..entries).step_by(2) {
            hashed.remove(&key(id));
            ordered.remove(&key(id));
        }
    }
    progress(&format!(
        "late state: running {LATE_THREADS} short-lived threads"
    ));
    let db = cairn::Db::in_memory();
    let _ = db.put(b"late", b"state");
    std::thread::scope(|scope| {
        for _ in 0..LATE_THREADS {
            let db = &db;
            // Started and joined one at a time: the point is the count, not the overlap.
            let _ = scope
                .spawn(move || db.get(b"late").ok().flatten().map(|value| value.len()))
                .join();
        }
    });
    Aged {
        cairn_keys: keys,
        map_entries: entries,
        threads: LATE_THREADS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aging_reports_what_it_did_and_frees_its_stores() {
        let mut steps = Vec::new();
        let aged = age_process(2_000, |step| steps.push(step.to_owned()));
        assert_eq!(
            aged,
            Aged {
                cairn_keys: 2_000,
                map_entries: 1_000,
                threads: LATE_THREADS
            }
        );
        assert_eq!(steps.len(), 4, "{steps:?}");
        assert!(aged.to_string().contains("2000 keys"));
    }
}
