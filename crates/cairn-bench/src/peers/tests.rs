//! The behaviour every peer must have, checked the same way against each label of both commit
//! classes with the `KeyValueStore` backends, and against both Redis peers when `redis-server`
//! is installed (skipped, with a message, only when it is not on `PATH`). Each check runs on a
//! freshly opened peer and is printed first, so a failure names the peer. Values of distinct
//! lengths stand for distinct contents wherever a check reads a value back (`get` returns a
//! length), and a CAS that must succeed confirms the exact content where the length could not.

use std::time::Duration;

use super::{open, Engine, Feature, Label, Mode, Peer, Places, Session, Stores};

/// One call and what it must return; a value is `(length, byte)`: `length` bytes, all `byte`.
#[derive(Debug)]
enum Step {
    Put(&'static [u8], (usize, u8)),
    Get(&'static [u8], Option<usize>),
    Exists(&'static [u8], bool),
    Delete(&'static [u8], bool),
    Cas(&'static [u8], (usize, u8), (usize, u8), bool),
}

use Step::{Cas, Delete, Exists, Get, Put};

const POINT: &[Step] = &[
    Get(b"point/absent", None),
    Put(b"point/key", (10, 1)),
    Get(b"point/key", Some(10)),
    Put(b"point/key", (23, 2)),
    Get(b"point/key", Some(23)),
    Get(b"point/kez", None),
];

const DELETE: &[Step] = &[
    Put(b"del/key", (8, 1)),
    Put(b"del/kez", (9, 2)),
    Exists(b"del/key", true),
    Delete(b"del/key", true),
    Get(b"del/key", None),
    Exists(b"del/key", false),
    Delete(b"del/key", false),
    Get(b"del/kez", Some(9)),
];

/// The swap from `(9, b'o')` succeeds only if the stored bytes are exactly those, not just as
/// many: `(9, b'w')` has the same length.
const CAS: &[Step] = &[
    Put(b"cas/key", (9, b'o')),
    Cas(b"cas/key", (9, b'w'), (3, b'n'), false),
    Get(b"cas/key", Some(9)),
    Cas(b"cas/key", (9, b'o'), (3, b'n'), true),
    Get(b"cas/key", Some(3)),
    Cas(b"cas/key", (9, b'o'), (9, b'w'), false),
    Cas(b"cas/absent", (9, b'o'), (3, b'n'), false),
    Get(b"cas/absent", None),
];

fn value((length, byte): (usize, u8)) -> Vec<u8> {
    vec![byte; length]
}

fn run(session: &mut dyn Session, steps: &[Step]) {
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
        };
        assert!(holds, "{step:?}");
    }
}

/// Every check, by name.
const CHECKS: [(&str, fn(&dyn Peer)); 9] = [
    ("point reads and writes", |peer| {
        run(&mut *session(peer), POINT)
    }),
    ("deletes", |peer| run(&mut *session(peer), DELETE)),
    ("compare-and-swap", |peer| run(&mut *session(peer), CAS)),
    ("a batch and the scans over it", batch_and_scans),
    ("transactions", transaction),
    ("TTL puts", put_with_ttl),
    ("two threads see each other's writes", two_threads),
    ("disk bytes", disk_bytes),
    (
        "compare-and-swap across threads",
        compare_and_swap_is_atomic,
    ),
];

#[test]
fn every_peer_passes_every_check() {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    let redis = std::env::split_paths(&paths).any(|dir| dir.join("redis-server").is_file());
    if !redis {
        eprintln!("skipping the Redis peers: redis-server is not on PATH");
    }
    let server = || cairn_testkit::redis_server::RedisServer::shared().expect("redis starts");
    let places = Places {
        redis_url: redis.then(|| server().url()),
    };
    let mut labels = Stores::ClassAndTrait(Mode::Buffered).labels(redis);
    labels.extend(Stores::ClassAndTrait(Mode::Strict).labels(false));
    assert_eq!(labels.len(), if redis { 15 } else { 13 });
    for label in labels {
        for (what, check) in CHECKS {
            eprintln!("{label}: {what}");
            let peer = open(label, &places).expect("the peer opens");
            assert_eq!(peer.label(), label, "the peer names itself");
            check(peer.as_ref());
        }
    }
}

#[test]
fn embedded_peers_other_than_cairn_refuse_in_memory_mode() {
    let places = Places { redis_url: None };
    for engine in [Engine::Redb, Engine::Fjall, Engine::Sqlite] {
        let label = Label::new(engine, Mode::InMemory);
        assert!(open(label, &places).is_err(), "{label} opened");
    }
}

#[test]
fn labels_read_back_what_they_print() {
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

fn session(peer: &dyn Peer) -> Box<dyn Session> {
    peer.session().expect("a session opens")
}

fn batch_and_scans(peer: &dyn Peer) {
    let session = &mut *session(peer);
    // Keys on either side of the batch, so no scan below may stop at the store's ends.
    for key in [&b"batcg/999"[..], b"batch", b"batch.", b"batch0", b"batci"] {
        session.put(key, &[0; 5]).expect("put");
    }
    // `batch/000` .. `batch/099`, entry `i` with a value of `10 + i % 7` bytes.
    let keys: Vec<String> = (0..100).map(|index| format!("batch/{index:03}")).collect();
    let values: Vec<Vec<u8>> = (0..100_u8)
        .map(|i| value((10 + usize::from(i % 7), i)))
        .collect();
    let entries: Vec<(&[u8], &[u8])> = keys
        .iter()
        .map(String::as_bytes)
        .zip(values.iter().map(Vec::as_slice))
        .collect();
    session.put_batch(&entries).expect("put_batch");
    for (key, value) in &entries {
        assert_eq!(session.get(key).expect("get"), Some(value.len()), "{key:?}");
    }
    if !peer.supports(Feature::OrderedScan) {
        return;
    }
    let ranges: [(&[u8], &[u8], usize); 4] = [
        (b"batch/020", b"batch/050", 30),
        (b"batch/0195", b"batch/0505", 31), // from between keys to between keys
        (b"batch/", b"batch0", 100),
        (b"batch/050", b"batch/050", 0),
    ];
    for (start, end, count) in ranges {
        assert_eq!(
            session.scan_range(start, end).expect("scan"),
            count,
            "{start:?}..{end:?}"
        );
    }
    for (prefix, count) in [(&b"batch/03"[..], 10), (b"batch/", 100), (b"batch/1", 0)] {
        assert_eq!(
            session.scan_prefix(prefix).expect("scan"),
            count,
            "{prefix:?}"
        );
    }
}

fn transaction(peer: &dyn Peer) {
    if !peer.supports(Feature::Transactions) {
        return;
    }
    let session = &mut *session(peer);
    session.put(b"tx/read", &[0; 4]).expect("put");
    let keys: [&[u8]; 3] = [b"tx/a", b"tx/b", b"tx/c"];
    session
        .transaction(b"tx/read", &keys, &[1; 7])
        .expect("transaction");
    for key in keys {
        assert_eq!(session.get(key).expect("get"), Some(7), "{key:?} after it");
    }
    let failed = session.transaction(b"tx/absent", &[b"tx/d"], &[2; 5]);
    assert!(failed.is_err(), "succeeds without its read key");
    assert_eq!(
        session.get(b"tx/d").expect("get"),
        None,
        "a failed one wrote"
    );
}

fn put_with_ttl(peer: &dyn Peer) {
    let session = &mut *session(peer);
    let (minute, short) = (Duration::from_secs(60), Duration::from_millis(50));
    if !peer.supports(Feature::Ttl) {
        let refused = session.put_with_ttl(b"ttl/key", &[0; 4], minute).is_err();
        assert!(refused, "has no TTL but accepts one");
        return;
    }
    session
        .put_with_ttl(b"ttl/long", &[0; 6], minute)
        .expect("put_with_ttl");
    session
        .put_with_ttl(b"ttl/short", &[0; 8], short)
        .expect("put_with_ttl");
    assert_eq!(
        session.get(b"ttl/short").expect("get"),
        Some(8),
        "right after its put"
    );
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(
        session.get(b"ttl/short").expect("get"),
        None,
        "a 50 ms key after 150 ms"
    );
    assert_eq!(
        session.get(b"ttl/long").expect("get"),
        Some(6),
        "a 60 s key after 150 ms"
    );
}

fn two_threads(peer: &dyn Peer) {
    let (first_wrote, first_done) = std::sync::mpsc::channel::<()>();
    let (second_wrote, second_done) = std::sync::mpsc::channel::<()>();
    let seen = std::thread::scope(|scope| {
        let first = scope.spawn(move || {
            let mut session = session(peer);
            session.put(b"thread/one", &[1; 11]).expect("put");
            first_wrote.send(()).expect("the second thread waits");
            second_done.recv().expect("the second thread writes");
            session.get(b"thread/two").expect("get")
        });
        let second = scope.spawn(move || {
            let mut session = session(peer);
            first_done.recv().expect("the first thread writes");
            let seen = session.get(b"thread/one").expect("get");
            session.put(b"thread/two", &[2; 13]).expect("put");
            second_wrote.send(()).expect("the first thread waits");
            seen
        });
        (
            first.join().expect("the first thread"),
            second.join().expect("the second thread"),
        )
    });
    assert_eq!(seen, (Some(13), Some(11)), "each sees the other's put");
}

fn disk_bytes(peer: &dyn Peer) {
    let label = peer.label();
    let mut session = session(peer);
    for index in 0..20_u8 {
        session.put(&[b'd', index], &[index; 100]).expect("put");
    }
    peer.settle().expect("settle");
    let bytes = peer.disk_bytes();
    if label.mode != Mode::InMemory && !label.engine.is_server() {
        assert!(
            bytes.is_some_and(|bytes| bytes > 0),
            "a store on files: {bytes:?} bytes"
        );
    } else {
        assert_eq!(bytes, None, "a store without files reports bytes");
    }
    assert_eq!(
        session.get(&[b'd', 7]).expect("get"),
        Some(100),
        "usable after settle"
    );
}

fn compare_and_swap_is_atomic(peer: &dyn Peer) {
    // A counter held as the value's length: each swap replaces `n` bytes with `n + 1`. Were a
    // CAS not atomic, two threads could both swap from the same `n`, and the counter would end
    // below the number of swaps that reported success.
    session(peer).put(b"counter", &[]).expect("put");
    let swapper = || {
        let mut session = session(peer);
        let mut swapped = 0;
        while swapped < 20 {
            let current = session
                .get(b"counter")
                .expect("get")
                .expect("the counter is there");
            let (expected, next) = (value((current, b'c')), value((current + 1, b'c')));
            if session
                .compare_and_swap(b"counter", &expected, &next)
                .expect("cas")
            {
                swapped += 1;
            }
        }
        swapped
    };
    let swaps: usize = std::thread::scope(|scope| {
        let threads = [scope.spawn(swapper), scope.spawn(swapper)];
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a swapping thread"))
            .sum()
    });
    let counter = session(peer).get(b"counter").expect("get");
    assert_eq!(counter, Some(swaps), "after {swaps} successful swaps");
}
