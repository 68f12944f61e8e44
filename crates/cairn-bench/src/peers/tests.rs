//! The behaviour every peer must have, checked the same way against each: Cairn in memory,
//! buffered and strict; redb, fjall and `SQLite` buffered and strict; the `KeyValueStore`
//! backends through the trait (`kv:cairn-*`, `kv:sqlite-buffered`); and both Redis peers when
//! `redis-server` is installed (a server of the test kit's, shared by this test binary; the
//! Redis checks are skipped, with a message, only when the binary is not on `PATH`).
//!
//! Values of distinct lengths stand for distinct contents wherever a check reads a value back
//! (`get` returns a length), and a CAS that must succeed confirms the exact content where the
//! length alone could not.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::{open, Engine, Feature, Label, Mode, Peer, Places, Session};
use crate::workloads::Result;

/// Every local peer, one label each.
fn every_label(redis: bool) -> Vec<Label> {
    let mut labels = vec![
        Label::new(Engine::Cairn, Mode::InMemory),
        Label::new(Engine::Cairn, Mode::Buffered),
        Label::new(Engine::Cairn, Mode::Strict),
    ];
    for engine in [Engine::Redb, Engine::Fjall, Engine::Sqlite] {
        labels.push(Label::new(engine, Mode::Buffered));
        labels.push(Label::new(engine, Mode::Strict));
    }
    for mode in [Mode::InMemory, Mode::Buffered, Mode::Strict] {
        labels.push(Label::new(Engine::KvCairn, mode));
    }
    labels.push(Label::new(Engine::KvSqlite, Mode::Buffered));
    if redis {
        labels.push(Label::new(Engine::Redis, Mode::Buffered));
        labels.push(Label::new(Engine::KvRedis, Mode::Buffered));
    }
    labels
}

/// True when an executable file `name` is in one of `PATH`'s directories.
fn binary_on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| is_file(&dir.join(name))))
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|metadata| metadata.is_file())
}

/// Where the peers live: a shared Redis server when `redis-server` is installed.
fn places() -> Places {
    if !binary_on_path("redis-server") {
        eprintln!("skipping the Redis peer: redis-server is not on PATH");
        return Places { redis_url: None };
    }
    let server = cairn_testkit::redis_server::RedisServer::shared()
        .expect("redis-server is installed, so the shared test server starts");
    Places {
        redis_url: Some(server.url()),
    }
}

/// Opens every peer in turn and runs `check` on it; each peer (and its directory) is gone
/// before the next opens.
fn for_each_peer(check: impl Fn(&dyn Peer)) {
    let places = places();
    for label in every_label(places.redis_url.is_some()) {
        let peer = open(label, &places).unwrap_or_else(|error| panic!("{label}: open: {error}"));
        assert_eq!(peer.label(), label, "{label}: the peer names itself");
        check(peer.as_ref());
    }
}

/// The value of `result`, or a panic naming the peer and the call.
fn ok<T>(result: Result<T>, label: Label, call: &str) -> T {
    result.unwrap_or_else(|error| panic!("{label}: {call} failed: {error}"))
}

/// A session whose calls panic, naming the peer and the call, when they fail.
struct Checked {
    label: Label,
    raw: Box<dyn Session>,
}

fn session(peer: &dyn Peer) -> Checked {
    let label = peer.label();
    let raw = ok(peer.session(), label, "session");
    Checked { label, raw }
}

impl Checked {
    fn get(&mut self, key: &[u8]) -> Option<usize> {
        ok(self.raw.get(key), self.label, "get")
    }

    /// Asserts that `key` reads as `expected` (a value's length, or absent).
    fn assert_get(&mut self, key: &[u8], expected: Option<usize>, what: &str) {
        assert_eq!(self.get(key), expected, "{}: {what}", self.label);
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        ok(self.raw.put(key, value), self.label, "put");
    }

    fn delete(&mut self, key: &[u8]) -> bool {
        ok(self.raw.delete(key), self.label, "delete")
    }

    fn exists(&mut self, key: &[u8]) -> bool {
        ok(self.raw.exists(key), self.label, "exists")
    }

    fn scan_range(&mut self, start: &[u8], end: &[u8]) -> usize {
        ok(self.raw.scan_range(start, end), self.label, "scan_range")
    }

    fn scan_prefix(&mut self, prefix: &[u8]) -> usize {
        ok(self.raw.scan_prefix(prefix), self.label, "scan_prefix")
    }

    fn cas(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> bool {
        let swapped = self.raw.compare_and_swap(key, expected, new);
        ok(swapped, self.label, "compare_and_swap")
    }
}

/// `count` bytes, all `byte`.
fn value(count: usize, byte: u8) -> Vec<u8> {
    vec![byte; count]
}

#[test]
fn a_get_reads_what_the_last_put_wrote() {
    for_each_peer(|peer| {
        let mut session = session(peer);
        session.assert_get(b"point/absent", None, "a key never written");
        session.put(b"point/key", &value(10, 1));
        session.assert_get(b"point/key", Some(10), "get after put");
        session.put(b"point/key", &value(23, 2));
        session.assert_get(b"point/key", Some(23), "get after an overwrite");
        session.assert_get(b"point/kez", None, "a neighbouring key");
    });
}

/// `batch/000` .. `batch/099`, entry `i` with a value of `10 + i % 7` bytes.
fn batch_entries() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..100_u8)
        .map(|index| {
            let key = format!("batch/{index:03}").into_bytes();
            (key, value(10 + usize::from(index % 7), index))
        })
        .collect()
}

#[test]
fn a_delete_removes_exactly_its_key_and_says_whether_it_did() {
    for_each_peer(|peer| {
        let label = peer.label();
        let mut session = session(peer);
        session.put(b"del/key", &value(8, 1));
        session.put(b"del/kez", &value(9, 2));
        assert!(session.exists(b"del/key"), "{label}: exists after put");
        assert!(session.delete(b"del/key"), "{label}: delete of a live key");
        assert_eq!(session.get(b"del/key"), None, "{label}: get after delete");
        assert!(!session.exists(b"del/key"), "{label}: exists after delete");
        assert!(!session.delete(b"del/key"), "{label}: a second delete");
        assert_eq!(session.get(b"del/kez"), Some(9), "{label}: the neighbour");
    });
}

#[test]
fn a_batch_is_visible_whole_and_scans_count_exactly_their_range() {
    for_each_peer(|peer| {
        let label = peer.label();
        let mut session = session(peer);
        // Keys on either side of the batch, so no scan below may stop at the store's ends.
        for key in [&b"batcg/999"[..], b"batch", b"batch.", b"batch0", b"batci"] {
            session.put(key, &value(5, 0));
        }
        let entries = batch_entries();
        let borrowed: Vec<(&[u8], &[u8])> = entries
            .iter()
            .map(|(key, value)| (key.as_slice(), value.as_slice()))
            .collect();
        ok(session.raw.put_batch(&borrowed), label, "put_batch");
        for (key, value) in &entries {
            let key_text = String::from_utf8_lossy(key);
            assert_eq!(session.get(key), Some(value.len()), "{label}: {key_text}");
        }
        if !peer.supports(Feature::OrderedScan) {
            return;
        }
        let scans: [(&[u8], &[u8], usize); 4] = [
            (b"batch/020", b"batch/050", 30),
            // From between keys to between keys.
            (b"batch/0195", b"batch/0505", 31),
            (b"batch/", b"batch0", 100),
            (b"batch/050", b"batch/050", 0),
        ];
        for (start, end, count) in scans {
            let (from, to) = (String::from_utf8_lossy(start), String::from_utf8_lossy(end));
            let range = format!("{from}..{to}");
            assert_eq!(session.scan_range(start, end), count, "{label}: {range}");
        }
        for (prefix, count) in [(&b"batch/03"[..], 10), (b"batch/", 100), (b"batch/1", 0)] {
            let prefix_text = String::from_utf8_lossy(prefix);
            assert_eq!(session.scan_prefix(prefix), count, "{label}: {prefix_text}");
        }
    });
}

#[test]
fn compare_and_swap_writes_only_when_the_value_matches() {
    for_each_peer(|peer| {
        let label = peer.label();
        let check = |holds: bool, what: &str| assert!(holds, "{label}: {what}");
        let mut session = session(peer);
        let (old, new, wrong) = (value(9, b'o'), value(3, b'n'), value(9, b'w'));
        session.put(b"cas/key", &old);
        check(
            !session.cas(b"cas/key", &wrong, &new),
            "wrong expected swaps",
        );
        session.assert_get(b"cas/key", Some(9), "a failed CAS changed the value");
        // Succeeds only if the stored bytes are exactly `old`, not just as long.
        check(session.cas(b"cas/key", &old, &new), "right expected fails");
        session.assert_get(b"cas/key", Some(3), "the swapped value");
        check(
            !session.cas(b"cas/key", &old, &wrong),
            "replaced value swaps",
        );
        check(
            !session.cas(b"cas/absent", &old, &new),
            "a missing key swaps",
        );
        session.assert_get(b"cas/absent", None, "a failed CAS created its key");
    });
}

#[test]
fn a_transaction_writes_every_key_and_fails_without_its_read_key() {
    for_each_peer(|peer| {
        let label = peer.label();
        if !peer.supports(Feature::Transactions) {
            return;
        }
        let mut session = session(peer);
        session.put(b"tx/read", &value(4, 0));
        let keys: [&[u8]; 3] = [b"tx/a", b"tx/b", b"tx/c"];
        let committed = session.raw.transaction(b"tx/read", &keys, &value(7, 1));
        ok(committed, label, "transaction");
        for key in keys {
            let key_text = String::from_utf8_lossy(key);
            assert_eq!(session.get(key), Some(7), "{label}: {key_text} after it");
        }
        let failed = session
            .raw
            .transaction(b"tx/absent", &[b"tx/d"], &value(5, 2));
        assert!(failed.is_err(), "{label}: succeeds without its read key");
        assert_eq!(session.get(b"tx/d"), None, "{label}: a failed one wrote");
    });
}

#[test]
fn a_put_with_ttl_expires_where_supported_and_is_refused_elsewhere() {
    for_each_peer(|peer| {
        let label = peer.label();
        let mut session = session(peer);
        let (minute, short) = (Duration::from_secs(60), Duration::from_millis(50));
        let mut put =
            |key: &[u8], length, ttl| session.raw.put_with_ttl(key, &value(length, 0), ttl);
        if !peer.supports(Feature::Ttl) {
            let refused = put(b"ttl/key", 4, minute).is_err();
            assert!(refused, "{label}: has no TTL but accepts one");
            return;
        }
        ok(put(b"ttl/long", 6, minute), label, "put_with_ttl");
        ok(put(b"ttl/short", 8, short), label, "put_with_ttl");
        session.assert_get(b"ttl/short", Some(8), "a TTL key right after its put");
        std::thread::sleep(Duration::from_millis(150));
        session.assert_get(b"ttl/short", None, "a 50 ms key after 150 ms");
        session.assert_get(b"ttl/long", Some(6), "a 60 s key after 150 ms");
    });
}

#[test]
fn sessions_on_two_threads_see_each_others_writes() {
    for_each_peer(|peer| {
        let label = peer.label();
        let (first_wrote, first_done) = mpsc::channel::<()>();
        let (second_wrote, second_done) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let first = scope.spawn(move || {
                let mut session = session(peer);
                session.put(b"thread/one", &value(11, 1));
                first_wrote.send(()).expect("the second thread waits");
                second_done.recv().expect("the second thread writes");
                session.get(b"thread/two")
            });
            let second = scope.spawn(move || {
                let mut session = session(peer);
                first_done.recv().expect("the first thread writes");
                let seen = session.get(b"thread/one");
                session.put(b"thread/two", &value(13, 2));
                second_wrote.send(()).expect("the first thread waits");
                seen
            });
            let seen_by_first = first.join().expect("the first thread finishes");
            let seen_by_second = second.join().expect("the second thread finishes");
            let seen = (seen_by_first, seen_by_second);
            assert_eq!(
                seen,
                (Some(13), Some(11)),
                "{label}: each sees the other's put"
            );
        });
    });
}

#[test]
fn disk_bytes_are_reported_exactly_for_stores_with_files() {
    for_each_peer(|peer| {
        let label = peer.label();
        let mut session = session(peer);
        for index in 0..20_u8 {
            session.put(&[b'd', index], &value(100, index));
        }
        ok(peer.settle(), label, "settle");
        let bytes = peer.disk_bytes();
        if label.mode != Mode::InMemory && !label.engine.is_server() {
            let reported = bytes.is_some_and(|bytes| bytes > 0);
            assert!(reported, "{label}: a store on files: {bytes:?} bytes");
        } else {
            assert_eq!(bytes, None, "{label}: a store without files reports bytes");
        }
        // Settling leaves the store usable.
        session.assert_get(&[b'd', 7], Some(100), "a key written before settle");
    });
}

#[test]
fn embedded_peers_other_than_cairn_refuse_in_memory_mode() {
    let places = Places { redis_url: None };
    for engine in [Engine::Redb, Engine::Fjall, Engine::Sqlite] {
        let label = Label::new(engine, Mode::InMemory);
        let opened = open(label, &places).is_ok();
        assert!(!opened, "{label}: opened, but only Cairn runs in memory");
    }
}

/// Swaps each thread of [`compare_and_swap_is_atomic_across_threads`] makes.
const SWAPS_PER_THREAD: usize = 20;

#[test]
fn compare_and_swap_is_atomic_across_threads() {
    // A counter held as the value's length: each swap replaces `n` bytes with `n + 1`. Were a
    // CAS not atomic, two threads could both swap from the same `n`, and the counter would end
    // below the number of swaps that reported success.
    for_each_peer(|peer| {
        let label = peer.label();
        session(peer).put(b"counter", &[]);
        let swaps: usize = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(move || {
                        let mut session = session(peer);
                        let mut swapped = 0;
                        while swapped < SWAPS_PER_THREAD {
                            let current = session
                                .get(b"counter")
                                .unwrap_or_else(|| panic!("{label}: the counter vanished"));
                            let next = value(current + 1, b'c');
                            if session.cas(b"counter", &value(current, b'c'), &next) {
                                swapped += 1;
                            }
                        }
                        swapped
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().expect("a swapping thread finishes"))
                .sum()
        });
        let what = format!("the counter after {swaps} successful swaps");
        session(peer).assert_get(b"counter", Some(swaps), &what);
    });
}
