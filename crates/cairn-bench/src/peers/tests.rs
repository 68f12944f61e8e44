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

fn session(peer: &dyn Peer) -> Box<dyn Session> {
    ok(peer.session(), peer.label(), "session")
}

/// `count` bytes, all `byte`.
fn value(count: usize, byte: u8) -> Vec<u8> {
    vec![byte; count]
}

#[test]
fn a_get_reads_what_the_last_put_wrote() {
    for_each_peer(|peer| {
        let label = peer.label();
        let mut session = session(peer);
        let absent = ok(session.get(b"point/absent"), label, "get");
        assert_eq!(absent, None, "{label}: a key never written is absent");

        ok(session.put(b"point/key", &value(10, 1)), label, "put");
        let first = ok(session.get(b"point/key"), label, "get");
        assert_eq!(first, Some(10), "{label}: get after put");

        ok(session.put(b"point/key", &value(23, 2)), label, "put");
        let second = ok(session.get(b"point/key"), label, "get");
        assert_eq!(second, Some(23), "{label}: get after an overwrite");
        let neighbour = ok(session.get(b"point/kez"), label, "get");
        assert_eq!(neighbour, None, "{label}: a neighbouring key stays absent");
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
        ok(session.put(b"del/key", &value(8, 1)), label, "put");
        ok(session.put(b"del/kez", &value(9, 2)), label, "put");
        assert!(
            ok(session.exists(b"del/key"), label, "exists"),
            "{label}: exists after put"
        );
        assert!(
            ok(session.delete(b"del/key"), label, "delete"),
            "{label}: delete of a live key"
        );
        assert_eq!(
            ok(session.get(b"del/key"), label, "get"),
            None,
            "{label}: get after delete"
        );
        assert!(
            !ok(session.exists(b"del/key"), label, "exists"),
            "{label}: exists after delete"
        );
        assert!(
            !ok(session.delete(b"del/key"), label, "delete"),
            "{label}: a second delete reports a removal"
        );
        assert_eq!(
            ok(session.get(b"del/kez"), label, "get"),
            Some(9),
            "{label}: the neighbour"
        );
    });
}

#[test]
fn a_batch_is_visible_whole_and_scans_count_exactly_their_range() {
    for_each_peer(|peer| {
        let label = peer.label();
        let mut session = session(peer);
        // Keys on either side of the batch, so no scan below may stop at the store's ends.
        for key in [&b"batcg/999"[..], b"batch", b"batch.", b"batch0", b"batci"] {
            ok(session.put(key, &value(5, 0)), label, "put");
        }
        let entries = batch_entries();
        let borrowed: Vec<(&[u8], &[u8])> = entries
            .iter()
            .map(|(key, value)| (key.as_slice(), value.as_slice()))
            .collect();
        ok(session.put_batch(&borrowed), label, "put_batch");
        for (key, value) in &entries {
            let found = ok(session.get(key), label, "get");
            assert_eq!(
                found,
                Some(value.len()),
                "{label}: batch entry {} after the batch",
                String::from_utf8_lossy(key)
            );
        }
        if !peer.supports(Feature::OrderedScan) {
            return;
        }
        let middle = ok(
            session.scan_range(b"batch/020", b"batch/050"),
            label,
            "scan_range",
        );
        assert_eq!(middle, 30, "{label}: scan_range [020, 050)");
        let between = ok(
            session.scan_range(b"batch/0195", b"batch/0505"),
            label,
            "scan_range",
        );
        assert_eq!(
            between, 31,
            "{label}: scan_range from between keys to between keys"
        );
        let everything = ok(
            session.scan_range(b"batch/", b"batch0"),
            label,
            "scan_range",
        );
        assert_eq!(everything, 100, "{label}: scan_range over the whole batch");
        let empty = ok(
            session.scan_range(b"batch/050", b"batch/050"),
            label,
            "scan_range",
        );
        assert_eq!(empty, 0, "{label}: an empty range");

        let tens = ok(session.scan_prefix(b"batch/03"), label, "scan_prefix");
        assert_eq!(tens, 10, "{label}: scan_prefix batch/03");
        let all = ok(session.scan_prefix(b"batch/"), label, "scan_prefix");
        assert_eq!(all, 100, "{label}: scan_prefix batch/");
        let none = ok(session.scan_prefix(b"batch/1"), label, "scan_prefix");
        assert_eq!(none, 0, "{label}: scan_prefix with no key under it");
    });
}

#[test]
fn compare_and_swap_writes_only_when_the_value_matches() {
    for_each_peer(|peer| {
        let label = peer.label();
        let mut session = session(peer);
        let old = value(9, b'o');
        let new = value(3, b'n');
        let wrong = value(9, b'w');
        ok(session.put(b"cas/key", &old), label, "put");

        let swapped = ok(
            session.compare_and_swap(b"cas/key", &wrong, &new),
            label,
            "compare_and_swap",
        );
        assert!(
            !swapped,
            "{label}: a CAS with the wrong expected value swaps"
        );
        let after_miss = ok(session.get(b"cas/key"), label, "get");
        assert_eq!(
            after_miss,
            Some(9),
            "{label}: a failed CAS changed the value"
        );

        // Succeeds only if the stored bytes are exactly `old`, not just as long.
        let swapped = ok(
            session.compare_and_swap(b"cas/key", &old, &new),
            label,
            "compare_and_swap",
        );
        assert!(
            swapped,
            "{label}: a CAS with the right expected value does not swap"
        );
        let after_swap = ok(session.get(b"cas/key"), label, "get");
        assert_eq!(after_swap, Some(3), "{label}: the swapped value");

        let again = ok(
            session.compare_and_swap(b"cas/key", &old, &wrong),
            label,
            "compare_and_swap",
        );
        assert!(!again, "{label}: a CAS expecting the replaced value swaps");

        let missing = ok(
            session.compare_and_swap(b"cas/absent", &old, &new),
            label,
            "compare_and_swap",
        );
        assert!(!missing, "{label}: a CAS on a missing key swaps");
        let still_absent = ok(session.get(b"cas/absent"), label, "get");
        assert_eq!(still_absent, None, "{label}: a failed CAS created its key");
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
        ok(session.put(b"tx/read", &value(4, 0)), label, "put");
        let keys: [&[u8]; 3] = [b"tx/a", b"tx/b", b"tx/c"];
        ok(
            session.transaction(b"tx/read", &keys, &value(7, 1)),
            label,
            "transaction",
        );
        for key in keys {
            let found = ok(session.get(key), label, "get");
            assert_eq!(
                found,
                Some(7),
                "{label}: {} after the transaction",
                String::from_utf8_lossy(key)
            );
        }

        let failed = session.transaction(b"tx/absent", &[b"tx/d"], &value(5, 2));
        assert!(
            failed.is_err(),
            "{label}: a transaction whose read key is missing succeeds"
        );
        let unwritten = ok(session.get(b"tx/d"), label, "get");
        assert_eq!(
            unwritten, None,
            "{label}: a failed transaction wrote its keys"
        );
    });
}

#[test]
fn a_put_with_ttl_expires_where_supported_and_is_refused_elsewhere() {
    for_each_peer(|peer| {
        let label = peer.label();
        let mut session = session(peer);
        if !peer.supports(Feature::Ttl) {
            let refused = session.put_with_ttl(b"ttl/key", &value(4, 0), Duration::from_secs(60));
            assert!(refused.is_err(), "{label}: has no TTL but accepts one");
            return;
        }
        ok(
            session.put_with_ttl(b"ttl/long", &value(6, 0), Duration::from_secs(60)),
            label,
            "put_with_ttl",
        );
        ok(
            session.put_with_ttl(b"ttl/short", &value(8, 0), Duration::from_millis(50)),
            label,
            "put_with_ttl",
        );
        let short = ok(session.get(b"ttl/short"), label, "get");
        assert_eq!(short, Some(8), "{label}: a TTL key right after its put");
        std::thread::sleep(Duration::from_millis(150));
        let expired = ok(session.get(b"ttl/short"), label, "get");
        assert_eq!(expired, None, "{label}: a 50 ms key after 150 ms");
        let long = ok(session.get(b"ttl/long"), label, "get");
        assert_eq!(long, Some(6), "{label}: a 60 s key after 150 ms");
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
                ok(session.put(b"thread/one", &value(11, 1)), label, "put");
                first_wrote.send(()).expect("the second thread waits");
                second_done.recv().expect("the second thread writes");
                ok(session.get(b"thread/two"), label, "get")
            });
            let second = scope.spawn(move || {
                let mut session = session(peer);
                first_done.recv().expect("the first thread writes");
                let seen = ok(session.get(b"thread/one"), label, "get");
                ok(session.put(b"thread/two", &value(13, 2)), label, "put");
                second_wrote.send(()).expect("the first thread waits");
                seen
            });
            let seen_by_first = first.join().expect("the first thread finishes");
            let seen_by_second = second.join().expect("the second thread finishes");
            assert_eq!(
                seen_by_second,
                Some(11),
                "{label}: the second thread's session sees the first's put"
            );
            assert_eq!(
                seen_by_first,
                Some(13),
                "{label}: the first thread's session sees the second's put"
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
            ok(
                session.put(&[b'd', index], &value(100, index)),
                label,
                "put",
            );
        }
        ok(peer.settle(), label, "settle");
        let bytes = peer.disk_bytes();
        let has_files = label.mode != Mode::InMemory && !label.engine.is_server();
        if has_files {
            assert!(
                bytes.is_some_and(|bytes| bytes > 0),
                "{label}: a store on files reports {bytes:?} bytes"
            );
        } else {
            assert_eq!(bytes, None, "{label}: a store without files reports bytes");
        }
        // Settling leaves the store usable.
        let found = ok(session.get(&[b'd', 7]), label, "get");
        assert_eq!(found, Some(100), "{label}: a key written before settle");
    });
}

#[test]
fn embedded_peers_other_than_cairn_refuse_in_memory_mode() {
    let places = Places { redis_url: None };
    for engine in [Engine::Redb, Engine::Fjall, Engine::Sqlite] {
        let label = Label::new(engine, Mode::InMemory);
        assert!(
            open(label, &places).is_err(),
            "{label}: opened, but only Cairn runs in memory"
        );
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
        ok(session(peer).put(b"counter", &[]), label, "put");
        let swaps: usize = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(move || {
                        let mut session = session(peer);
                        let mut swapped = 0;
                        while swapped < SWAPS_PER_THREAD {
                            let current = ok(session.get(b"counter"), label, "get")
                                .unwrap_or_else(|| panic!("{label}: the counter vanished"));
                            let expected = value(current, b'c');
                            let next = value(current + 1, b'c');
                            if ok(
                                session.compare_and_swap(b"counter", &expected, &next),
                                label,
                                "compare_and_swap",
                            ) {
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
        let counter = ok(session(peer).get(b"counter"), label, "get");
        assert_eq!(
            counter,
            Some(swaps),
            "{label}: the counter after {swaps} successful swaps"
        );
    });
}
