//! The behaviour every peer must have, checked against each label of both commit classes, the
//! `KeyValueStore` backends, and both Redis peers when `redis-server` is on `PATH`. Each check
//! is a list of calls with what each must return; values of distinct lengths stand for
//! distinct contents (`get` returns a length).

use super::{open, Engine, Feature, Label, Mode, Peer, Places, Session, Stores};
use std::time::Duration;

/// One call and what it must return; a value is `(length, byte)`: `length` bytes, all `byte`.
#[derive(Debug)]
enum Step {
    Put(&'static [u8], (usize, u8)),
    Get(&'static [u8], Option<usize>),
    Exists(&'static [u8], bool),
    Delete(&'static [u8], bool),
    Cas(&'static [u8], (usize, u8), (usize, u8), bool),
    /// A transaction reading the first key and writing the others; whether it commits.
    Transaction(&'static [&'static [u8]], (usize, u8), bool),
    PutWithTtl(&'static [u8], (usize, u8), u64, bool),
    Sleep(u64),
    /// `batch/000` .. `batch/099` in one batch, entry `i` of `10 + i % 7` bytes, read back.
    Batch,
    ScanRange(&'static [u8], &'static [u8], usize),
    ScanPrefix(&'static [u8], usize),
    /// Settles, then expects disk bytes exactly for a store with files.
    Settle,
    /// Two sessions on two threads, each seeing the other's put.
    TwoThreads,
    /// Two threads swapping a counter up 20 times each, from what each last read.
    CasRace,
}

use Step::{
    Batch, Cas, CasRace, Delete, Exists, Get, Put, PutWithTtl, ScanPrefix, ScanRange, Settle,
    Sleep, Transaction, TwoThreads,
};

/// A check: its name, the feature it needs present (or absent), its steps (disjoint keys).
type Check = (&'static str, Option<(Feature, bool)>, &'static [Step]);

#[rustfmt::skip]
const CHECKS: [Check; 5] = [
    ("every store", None, &[
        Get(b"point/absent", None),
        Put(b"point/key", (10, 1)), Get(b"point/key", Some(10)),
        Put(b"point/key", (23, 2)), Get(b"point/key", Some(23)),
        Get(b"point/kez", None),
        Put(b"del/key", (8, 1)), Put(b"del/kez", (9, 2)),
        Exists(b"del/key", true), Delete(b"del/key", true),
        Get(b"del/key", None), Exists(b"del/key", false), Delete(b"del/key", false),
        Get(b"del/kez", Some(9)),
        // The swap from `(9, b'o')` succeeds only on those exact bytes: `(9, b'w')` is as long.
        Put(b"cas/key", (9, b'o')),
        Cas(b"cas/key", (9, b'w'), (3, b'n'), false), Get(b"cas/key", Some(9)),
        Cas(b"cas/key", (9, b'o'), (3, b'n'), true), Get(b"cas/key", Some(3)),
        Cas(b"cas/key", (9, b'o'), (9, b'w'), false),
        Cas(b"cas/absent", (9, b'o'), (3, b'n'), false), Get(b"cas/absent", None),
        Batch, Settle, Get(b"batch/007", Some(10)),
        TwoThreads, CasRace,
    ]),
    ("scans", Some((Feature::OrderedScan, true)), &[
        // Keys on either side of the batch, so no scan may stop at the store's ends.
        Put(b"batcg/999", (5, 0)), Put(b"batch", (5, 0)), Put(b"batch.", (5, 0)),
        Put(b"batch0", (5, 0)), Put(b"batci", (5, 0)),
        Batch,
        ScanRange(b"batch/020", b"batch/050", 30), ScanRange(b"batch/0195", b"batch/0505", 31),
        ScanRange(b"batch/", b"batch0", 100), ScanRange(b"batch/050", b"batch/050", 0),
        ScanPrefix(b"batch/03", 10), ScanPrefix(b"batch/", 100), ScanPrefix(b"batch/1", 0),
    ]),
    ("transactions", Some((Feature::Transactions, true)), &[
        Put(b"tx/read", (4, 0)),
        Transaction(&[b"tx/read", b"tx/a", b"tx/b", b"tx/c"], (7, 1), true),
        Get(b"tx/a", Some(7)), Get(b"tx/b", Some(7)), Get(b"tx/c", Some(7)),
        Transaction(&[b"tx/absent", b"tx/d"], (5, 2), false), Get(b"tx/d", None),
    ]),
    ("TTL", Some((Feature::Ttl, true)), &[
        PutWithTtl(b"ttl/long", (6, 0), 60_000, true), PutWithTtl(b"ttl/short", (8, 0), 50, true),
        Get(b"ttl/short", Some(8)), Sleep(150), Get(b"ttl/short", None), Get(b"ttl/long", Some(6)),
    ]),
    ("no TTL", Some((Feature::Ttl, false)), &[PutWithTtl(b"ttl/key", (4, 0), 60_000, false)]),
];

#[test]
fn every_peer_passes_every_check() {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    let redis = std::env::split_paths(&paths).any(|dir| dir.join("redis-server").is_file());
    if !redis {
        eprintln!("skipping the Redis peers: redis-server is not on PATH");
    }
    let server = || cairn_testkit::redis_server::RedisServer::shared().expect("redis starts");
    let redis_url = redis.then(|| server().url());
    let places = Places { redis_url };
    let mut labels = Stores::ClassAndTrait(Mode::Buffered).labels(redis);
    labels.extend(Stores::ClassAndTrait(Mode::Strict).labels(false));
    assert_eq!(labels.len(), if redis { 15 } else { 13 });
    for label in labels {
        for (what, needs, steps) in CHECKS {
            let peer = open(label, &places).expect("the peer opens");
            assert_eq!(peer.label(), label, "the peer names itself");
            if needs.is_none_or(|(feature, present)| peer.supports(feature) == present) {
                eprintln!("{label}: {what}");
                run(peer.as_ref(), steps);
            }
        }
    }
}

#[test]
fn labels_read_back_what_they_print_and_only_cairn_runs_in_memory() {
    let places = Places { redis_url: None };
    for engine in [Engine::Redb, Engine::Fjall, Engine::Sqlite] {
        let label = Label::new(engine, Mode::InMemory);
        assert!(open(label, &places).is_err(), "{label} opened");
    }
    for text in [
        "cairn-inmemory",
        "redb-strict",
        "kv:sqlite-buffered",
        "kv:redis",
    ] {
        assert_eq!(text.parse::<Label>().expect(text).to_string(), text);
    }
    for text in ["cairn", "mystery-strict", "redb-fast"] {
        assert!(text.parse::<Label>().is_err(), "{text} parsed");
    }
}

fn value((length, byte): (usize, u8)) -> Vec<u8> {
    vec![byte; length]
}

fn run(peer: &dyn Peer, steps: &[Step]) {
    let session = &mut *peer.session().expect("a session opens");
    for step in steps {
        let holds = match *step {
            Put(key, written) => session
                .put(key, &value(written))
                .map(|()| true)
                .expect("put"),
            Get(key, length) => session.get(key).expect("get") == length,
            Exists(key, exists) => session.exists(key).expect("exists") == exists,
            Delete(key, existed) => session.delete(key).expect("delete") == existed,
            Cas(key, expected, new, swaps) => {
                let swapped = session.compare_and_swap(key, &value(expected), &value(new));
                swapped.expect("compare_and_swap") == swaps
            }
            Transaction(keys, written, commits) => {
                let (read, writes) = keys.split_first().expect("a read key");
                session.transaction(read, writes, &value(written)).is_ok() == commits
            }
            PutWithTtl(key, written, millis, accepted) => {
                let ttl = Duration::from_millis(millis);
                session.put_with_ttl(key, &value(written), ttl).is_ok() == accepted
            }
            Sleep(millis) => {
                std::thread::sleep(Duration::from_millis(millis));
                true
            }
            Batch => batch(session),
            ScanRange(start, end, count) => session.scan_range(start, end).expect("scan") == count,
            ScanPrefix(prefix, count) => session.scan_prefix(prefix).expect("scan") == count,
            Settle => {
                peer.settle().expect("settle");
                let label = peer.label();
                let on_files = label.mode != Mode::InMemory && !label.engine.is_server();
                let bytes = peer.disk_bytes();
                bytes.map_or(!on_files, |bytes| on_files && bytes > 0)
            }
            TwoThreads => two_threads(peer) == (Some(13), Some(11)),
            CasRace => {
                let (swaps, counter) = cas_race(peer);
                counter == Some(swaps)
            }
        };
        assert!(holds, "{step:?}");
    }
}

fn batch(session: &mut dyn Session) -> bool {
    let keys: Vec<String> = (0..100).map(|index| format!("batch/{index:03}")).collect();
    let values: Vec<Vec<u8>> = (0..100_u8)
        .map(|i| value((10 + usize::from(i % 7), i)))
        .collect();
    let values = values.iter().map(Vec::as_slice);
    let entries: Vec<(&[u8], &[u8])> = keys.iter().map(String::as_bytes).zip(values).collect();
    session.put_batch(&entries).expect("put_batch");
    let read = |(key, value): &(&[u8], &[u8])| session.get(key).expect("get") == Some(value.len());
    entries.iter().all(read)
}

/// What each of two threads reads of the other's put, in turn.
fn two_threads(peer: &dyn Peer) -> (Option<usize>, Option<usize>) {
    let (first_wrote, first_done) = std::sync::mpsc::channel::<()>();
    let (second_wrote, second_done) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let first = scope.spawn(move || {
            let mut session = peer.session().expect("a session opens");
            session.put(b"thread/one", &[1; 11]).expect("put");
            first_wrote.send(()).expect("the second thread waits");
            second_done.recv().expect("the second thread writes");
            session.get(b"thread/two").expect("get")
        });
        let second = scope.spawn(move || {
            let mut session = peer.session().expect("a session opens");
            first_done.recv().expect("the first thread writes");
            let seen = session.get(b"thread/one").expect("get");
            session.put(b"thread/two", &[2; 13]).expect("put");
            second_wrote.send(()).expect("the first thread waits");
            seen
        });
        let first = first.join().expect("the first thread");
        (first, second.join().expect("the second thread"))
    })
}

/// A counter held as the value's length: each swap replaces `n` bytes with `n + 1`. Were a CAS
/// not atomic, two threads could both swap from the same `n`, and the counter would end below
/// the number of swaps that reported success. Returns that number and the counter.
fn cas_race(peer: &dyn Peer) -> (usize, Option<usize>) {
    let mut session = peer.session().expect("a session opens");
    session.put(b"counter", &[]).expect("put");
    let swapper = || {
        let mut session = peer.session().expect("a session opens");
        let mut swapped = 0;
        while swapped < 20 {
            let current = session.get(b"counter").expect("get");
            let current = current.expect("the counter is there");
            let (expected, next) = (value((current, b'c')), value((current + 1, b'c')));
            let swaps = session.compare_and_swap(b"counter", &expected, &next);
            swapped += usize::from(swaps.expect("cas"));
        }
        swapped
    };
    let swaps = std::thread::scope(|scope| {
        let [one, two] = [scope.spawn(swapper), scope.spawn(swapper)];
        one.join().expect("a swapping thread") + two.join().expect("a swapping thread")
    });
    (swaps, session.get(b"counter").expect("get"))
}
