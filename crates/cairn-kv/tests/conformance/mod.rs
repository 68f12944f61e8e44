//! Layer 5: the one conformance suite every `KeyValueStore` backend passes unchanged.
//!
//! Each backend's test file builds a fresh store and expands [`suite!`], which makes one
//! `#[tokio::test]` per case below. Cases use their own scopes (unique per process and
//! case), so backends may share one server between cases; that sharing is itself a test of
//! scope isolation. Nothing here knows which backend it runs on: a case that needs a
//! backend-specific branch is a defect of the backend or of the trait's docs.
//!
//! Timing: TTL cases sleep for real (Redis has no injectable clock). Deadlines are hundreds
//! of milliseconds apart from the checks, far more than a loopback round trip.

#![allow(dead_code)] // every test binary includes this module; each uses all of it

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_kv::limits::{KEY_BYTES_MAX, LIST_PAGE_KEYS_MAX, MULTI_ENTRIES_MAX, VALUE_BYTES_MAX};
use cairn_kv::{KeyValueStore, KvError, KvEvent, KvTtl, KvWatcher, Scope};

/// Expands to one test per conformance case, each on a fresh store from `$make_store`, an
/// `async fn() -> impl KeyValueStore + 'static`. With `guarded`, `$make_store` returns
/// `(store, guard)` and the guard (a temp dir, say) lives until the case ends.
macro_rules! suite {
    ($make_store:path) => {
        async fn make_guarded_store() -> (impl cairn_kv::KeyValueStore + 'static, ()) {
            ($make_store().await, ())
        }
        conformance::suite!(guarded make_guarded_store);
    };
    (guarded $make_store:path) => {
        conformance::suite!(@cases $make_store;
            crud_round_trip,
            any_bytes_are_keys_and_values,
            list_is_ordered_and_exact_about_prefixes,
            list_page_walks_a_prefix_in_order,
            multi_get_and_multi_put,
            multi_put_is_atomic_to_readers,
            clear_prefix_is_atomic_and_counts,
            count_prefix_counts_live_keys,
            ttl_expires_keys_everywhere,
            ttl_is_cleared_by_put_and_cas_and_kept_by_increment,
            refresh_ttl_sets_a_new_deadline,
            cas_swaps_only_on_the_expected_state,
            cas_races_lose_no_update,
            increment_and_decrement,
            scopes_are_isolated,
            watch_never_crosses_scopes,
            watch_key_sees_only_that_key,
            watch_prefix_sees_every_kind_of_write,
            bad_keys_are_refused_by_every_call,
            bad_input_is_refused_with_typed_errors,
            refused_multi_put_writes_nothing,
            stats_name_the_backend,
        );
    };
    (@cases $make_store:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $make_store().await;
                conformance::$case(std::sync::Arc::new(store)).await;
            }
        )*
    };
}
pub(crate) use suite;

/// How long a case waits for an event it expects before failing.
const EVENT_WAIT: Duration = Duration::from_secs(10);
/// How long a case waits to be sure an event it must not see does not come.
const QUIET_WAIT: Duration = Duration::from_millis(300);

/// A scope of its own for `case`: unique per process and call.
fn scope(case: &str) -> Scope {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tenant = format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Scope::new(&tenant, case).expect("a valid scope")
}

async fn get<S: KeyValueStore>(store: &S, scope: &Scope, key: &[u8]) -> Option<Vec<u8>> {
    store.get(scope, key).await.expect("get")
}

async fn put<S: KeyValueStore>(store: &S, scope: &Scope, key: &[u8], value: &[u8]) {
    store.put(scope, key, value).await.expect("put");
}

async fn list<S: KeyValueStore>(store: &S, scope: &Scope, prefix: &[u8]) -> Vec<Vec<u8>> {
    store.list(scope, prefix).await.expect("list")
}

fn keys(list: &[&[u8]]) -> Vec<Vec<u8>> {
    list.iter().map(|key| key.to_vec()).collect()
}

async fn next_event(watcher: &mut KvWatcher) -> KvEvent {
    tokio::time::timeout(EVENT_WAIT, watcher.recv())
        .await
        .expect("an event within the wait")
        .expect("the watcher is open")
}

async fn assert_quiet(watcher: &mut KvWatcher) {
    if let Ok(event) = tokio::time::timeout(QUIET_WAIT, watcher.recv()).await {
        panic!("expected no event, got {event:?}");
    }
}

fn put_event(key: &[u8], value: &[u8]) -> KvEvent {
    KvEvent::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn delete_event(key: &[u8]) -> KvEvent {
    KvEvent::Delete { key: key.to_vec() }
}

// ----- the cases -------------------------------------------------------------------------------

pub async fn crud_round_trip<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("crud");
    assert_eq!(get(&*store, &scope, b"k").await, None);
    assert!(!store.exists(&scope, b"k").await.expect("exists"));
    put(&*store, &scope, b"k", b"v1").await;
    assert_eq!(get(&*store, &scope, b"k").await, Some(b"v1".to_vec()));
    assert!(store.exists(&scope, b"k").await.expect("exists"));
    put(&*store, &scope, b"k", b"v2").await;
    assert_eq!(get(&*store, &scope, b"k").await, Some(b"v2".to_vec()));
    assert!(store.delete(&scope, b"k").await.expect("delete"));
    assert_eq!(get(&*store, &scope, b"k").await, None);
    assert!(
        !store.delete(&scope, b"k").await.expect("delete again"),
        "a second delete is not an error and reports nothing deleted"
    );
    assert!(!store.delete(&scope, b"never").await.expect("delete absent"));
    assert_eq!(list(&*store, &scope, b"").await, Vec::<Vec<u8>>::new());
}

pub async fn any_bytes_are_keys_and_values<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("bytes");
    let every_byte: Vec<u8> = (0..=255).collect();
    let awkward_keys: [&[u8]; 9] = [
        b"\x00",
        b"\xff",
        b"{a:b}c",
        b"*?[]\\",
        b"%_",
        b"a b\nc",
        &every_byte,
        b"}",
        b":",
    ];
    for (index, key) in awkward_keys.iter().enumerate() {
        let value = [&every_byte[..], &[u8::try_from(index).expect("small")]].concat();
        put(&*store, &scope, key, &value).await;
        assert_eq!(get(&*store, &scope, key).await, Some(value), "key {key:?}");
    }
    put(&*store, &scope, b"empty", b"").await;
    assert_eq!(get(&*store, &scope, b"empty").await, Some(Vec::new()));
    assert!(store.exists(&scope, b"empty").await.expect("exists"));
    let large = vec![0xA5; 1024 * 1024];
    put(&*store, &scope, b"large", &large).await;
    assert_eq!(get(&*store, &scope, b"large").await, Some(large));
    let longest_key = vec![b'k'; KEY_BYTES_MAX];
    put(&*store, &scope, &longest_key, b"v").await;
    assert_eq!(
        get(&*store, &scope, &longest_key).await,
        Some(b"v".to_vec())
    );
}

pub async fn list_is_ordered_and_exact_about_prefixes<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("list");
    let stored: [&[u8]; 13] = [
        b"a",
        b"a*",
        b"a?",
        b"ab",
        b"a[b]",
        b"a%",
        b"a_",
        b"a\\",
        b"b",
        b"a\xff",
        b"a\xff\xff",
        b"\xff",
        b"\x00",
    ];
    // Written out of order, so order must come from the backend.
    for key in stored.iter().rev() {
        put(&*store, &scope, key, b"v").await;
    }
    let mut everything = keys(&stored);
    everything.sort();
    assert_eq!(list(&*store, &scope, b"").await, everything);
    for (prefix, expected) in [
        (&b"a*"[..], keys(&[b"a*"])),
        (b"a?", keys(&[b"a?"])),
        (b"a[", keys(&[b"a[b]"])),
        (b"a%", keys(&[b"a%"])),
        (b"a_", keys(&[b"a_"])),
        (b"a\\", keys(&[b"a\\"])),
        (b"a\xff", keys(&[b"a\xff", b"a\xff\xff"])),
        (b"\xff", keys(&[b"\xff"])),
        (b"c", Vec::new()),
        (
            b"a",
            everything
                .iter()
                .filter(|key| key.starts_with(b"a"))
                .cloned()
                .collect(),
        ),
    ] {
        assert_eq!(
            list(&*store, &scope, prefix).await,
            expected,
            "prefix {prefix:?}"
        );
        assert_eq!(
            store.count_prefix(&scope, prefix).await.expect("count"),
            expected.len() as u64,
            "count of prefix {prefix:?}"
        );
    }
}

pub async fn list_page_walks_a_prefix_in_order<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("list-page");
    let mut expected: Vec<Vec<u8>> = (0..11_u8).map(|n| vec![b'p', n, 0xff]).collect();
    expected.push(b"p".to_vec());
    expected.push(b"p\xff\xff".to_vec());
    for key in expected.iter().rev() {
        put(&*store, &scope, key, b"v").await;
    }
    for outside in [&b"o\xff"[..], b"q", b"\x00"] {
        put(&*store, &scope, outside, b"v").await;
    }
    put(&*store, &scope, b"p-deleted", b"v").await;
    assert!(store.delete(&scope, b"p-deleted").await.expect("delete"));
    expected.sort();

    for limit in [1, 3, expected.len(), LIST_PAGE_KEYS_MAX] {
        let mut walked = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let page = store
                .list_page(&scope, b"p", cursor.as_deref(), limit)
                .await
                .expect("list_page");
            assert!(
                page.keys.len() <= limit,
                "page of {} > {limit}",
                page.keys.len()
            );
            walked.extend(page.keys.iter().cloned());
            match page.next {
                Some(next) => {
                    assert_eq!(Some(&next), page.keys.last(), "next is the page's last key");
                    cursor = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(walked, expected, "pages of {limit}");
    }
    assert_eq!(list(&*store, &scope, b"p").await, expected);

    // A cursor below the prefix starts at its first key; one past it ends the listing.
    let page = store
        .list_page(&scope, b"p", Some(b"a"), 2)
        .await
        .expect("cursor below the prefix");
    assert_eq!(page.keys, expected[..2].to_vec());
    let page = store
        .list_page(&scope, b"p", Some(b"q"), 2)
        .await
        .expect("cursor above the prefix");
    assert_eq!(page, cairn_kv::Page::default());
    // The whole scope, one key at a time, sees the keys outside the prefix too.
    let page = store
        .list_page(&scope, b"", None, 1)
        .await
        .expect("empty prefix");
    assert_eq!(page.keys, vec![b"\x00".to_vec()]);

    for limit in [0, LIST_PAGE_KEYS_MAX + 1] {
        assert!(
            matches!(
                store.list_page(&scope, b"p", None, limit).await,
                Err(KvError::InvalidArgument(_))
            ),
            "limit {limit}"
        );
    }
    let too_long = vec![b'p'; KEY_BYTES_MAX + 1];
    assert!(matches!(
        store.list_page(&scope, b"p", Some(&too_long), 1).await,
        Err(KvError::KeyTooLarge { .. })
    ));
}

pub async fn multi_get_and_multi_put<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("multi");
    store
        .multi_put(&scope, &[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")])
        .await
        .expect("multi_put");
    let values = store
        .multi_get(&scope, &[b"b", b"missing", b"a", b"b"])
        .await
        .expect("multi_get");
    assert_eq!(
        values,
        vec![
            Some(b"2".to_vec()),
            None,
            Some(b"3".to_vec()),
            Some(b"2".to_vec())
        ],
        "values in request order; the later entry for a key wins"
    );
    store.multi_put(&scope, &[]).await.expect("empty multi_put");
    assert_eq!(
        store.multi_get(&scope, &[]).await.expect("empty"),
        Vec::<Option<Vec<u8>>>::new()
    );
    let many: Vec<(Vec<u8>, Vec<u8>)> = (0..1_000)
        .map(|index| {
            (
                format!("k{index:04}").into_bytes(),
                index.to_string().into_bytes(),
            )
        })
        .collect();
    let entries: Vec<(&[u8], &[u8])> = many
        .iter()
        .map(|(key, value)| (key.as_slice(), value.as_slice()))
        .collect();
    store
        .multi_put(&scope, &entries)
        .await
        .expect("1,000 entries");
    assert_eq!(
        store.count_prefix(&scope, b"k").await.expect("count"),
        1_000
    );
    let wanted: Vec<&[u8]> = many.iter().map(|(key, _)| key.as_slice()).collect();
    let values = store.multi_get(&scope, &wanted).await.expect("multi_get");
    for ((_, value), found) in many.iter().zip(values) {
        assert_eq!(found.as_ref(), Some(value));
    }
}

pub async fn multi_put_is_atomic_to_readers<S: KeyValueStore + 'static>(store: Arc<S>) {
    const KEYS: usize = 8;
    const GENERATIONS: u32 = 150;
    let scope = scope("atomic-put");
    let names: Vec<Vec<u8>> = (0..KEYS)
        .map(|index| format!("k{index}").into_bytes())
        .collect();
    let (started, reader_started) = tokio::sync::oneshot::channel();
    let reader = {
        let (store, scope, names) = (Arc::clone(&store), scope.clone(), names.clone());
        tokio::spawn(async move {
            let wanted: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
            let mut observations = 0_u32;
            let mut started = Some(started);
            loop {
                let values = store.multi_get(&scope, &wanted).await.expect("multi_get");
                let distinct: BTreeSet<_> = values.iter().collect();
                assert_eq!(
                    distinct.len(),
                    1,
                    "a reader saw a partial multi_put: {values:?}"
                );
                observations += 1;
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
                let last = format!("{GENERATIONS}").into_bytes();
                if values[0].as_ref() == Some(&last) {
                    return observations;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    // See `clear_prefix_is_atomic_and_counts` for why the writer waits and yields.
    reader_started.await.expect("the reader started");
    for generation in 1..=GENERATIONS {
        let value = generation.to_string().into_bytes();
        let entries: Vec<(&[u8], &[u8])> = names
            .iter()
            .map(|name| (name.as_slice(), value.as_slice()))
            .collect();
        store.multi_put(&scope, &entries).await.expect("multi_put");
        tokio::task::yield_now().await;
    }
    let observations = reader.await.expect("the reader finished");
    assert!(observations > 0);
}

pub async fn clear_prefix_is_atomic_and_counts<S: KeyValueStore + 'static>(store: Arc<S>) {
    const KEYS: usize = 8;
    const ROUNDS: u32 = 60;
    let scope = scope("atomic-clear");
    let neighbour = scope_named(&scope, "atomic-clear-2");
    put(&*store, &scope, b"q:keep", b"v").await;
    put(&*store, &neighbour, b"p:0", b"other scope").await;
    let names: Vec<Vec<u8>> = (0..KEYS)
        .map(|index| format!("p:{index}").into_bytes())
        .collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (started, reader_started) = tokio::sync::oneshot::channel();
    let reader = {
        let (store, scope, names, done) = (
            Arc::clone(&store),
            scope.clone(),
            names.clone(),
            Arc::clone(&done),
        );
        tokio::spawn(async move {
            let wanted: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
            let (mut saw_all, mut saw_none) = (0_u32, 0_u32);
            let mut started = Some(started);
            while !done.load(Ordering::Acquire) {
                let values = store.multi_get(&scope, &wanted).await.expect("multi_get");
                let present = values.iter().filter(|value| value.is_some()).count();
                assert!(
                    present == 0 || present == KEYS,
                    "a reader saw a partial clear_prefix: {present} of {KEYS} keys"
                );
                if present == 0 {
                    saw_none += 1;
                } else {
                    saw_all += 1;
                }
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
                tokio::task::yield_now().await;
            }
            (saw_all, saw_none)
        })
    };
    // Overlap for sure: an in-process backend completes calls without ever suspending, so
    // the writer waits for the reader's first look and yields between rounds.
    reader_started.await.expect("the reader started");
    for _ in 0..ROUNDS {
        let entries: Vec<(&[u8], &[u8])> = names
            .iter()
            .map(|name| (name.as_slice(), &b"v"[..]))
            .collect();
        store.multi_put(&scope, &entries).await.expect("multi_put");
        tokio::task::yield_now().await;
        let cleared = store
            .clear_prefix(&scope, b"p:")
            .await
            .expect("clear_prefix");
        assert_eq!(cleared, KEYS as u64);
        tokio::task::yield_now().await;
    }
    done.store(true, Ordering::Release);
    let (saw_all, saw_none) = reader.await.expect("the reader finished");
    assert!(saw_all + saw_none > 0);
    assert_eq!(store.clear_prefix(&scope, b"p:").await.expect("again"), 0);
    assert_eq!(get(&*store, &scope, b"q:keep").await, Some(b"v".to_vec()));
    assert_eq!(
        get(&*store, &neighbour, b"p:0").await,
        Some(b"other scope".to_vec()),
        "clear_prefix reached into another scope"
    );
    // An empty prefix clears the whole scope, and only it.
    assert_eq!(store.clear_prefix(&scope, b"").await.expect("clear all"), 1);
    assert_eq!(list(&*store, &scope, b"").await, Vec::<Vec<u8>>::new());
    assert_eq!(list(&*store, &neighbour, b"").await, keys(&[b"p:0"]));
}

pub async fn count_prefix_counts_live_keys<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("count");
    for index in 0..2_500 {
        put(&*store, &scope, format!("item:{index:05}").as_bytes(), b"v").await;
    }
    put(&*store, &scope, b"itemx", b"v").await;
    assert_eq!(
        store.count_prefix(&scope, b"item:").await.expect("count"),
        2_500
    );
    assert_eq!(
        store.count_prefix(&scope, b"item").await.expect("count"),
        2_501
    );
    assert_eq!(list(&*store, &scope, b"item:").await.len(), 2_500);
    store.delete(&scope, b"item:00007").await.expect("delete");
    assert_eq!(
        store.count_prefix(&scope, b"item:").await.expect("count"),
        2_499
    );
    assert_eq!(store.count_prefix(&scope, b"none").await.expect("count"), 0);
}

pub async fn ttl_expires_keys_everywhere<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("ttl");
    let ttl = Duration::from_millis(400);
    store
        .put_with_ttl(&scope, b"short", b"v", ttl)
        .await
        .expect("put_with_ttl");
    store
        .put_with_ttl(&scope, b"tiny", b"v", Duration::from_nanos(1))
        .await
        .expect("a sub-millisecond TTL is rounded up, not refused");
    put(&*store, &scope, b"stays", b"v").await;
    assert_eq!(get(&*store, &scope, b"short").await, Some(b"v".to_vec()));
    match store.get_ttl(&scope, b"short").await.expect("get_ttl") {
        KvTtl::Expires(left) => assert!(left > Duration::ZERO && left <= ttl, "{left:?}"),
        other => panic!("expected a deadline, got {other:?}"),
    }
    assert_eq!(
        store.get_ttl(&scope, b"stays").await.expect("ttl"),
        KvTtl::Persistent
    );
    assert_eq!(
        store.get_ttl(&scope, b"none").await.expect("ttl"),
        KvTtl::Absent
    );
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    for key in [&b"short"[..], b"tiny"] {
        assert_eq!(
            get(&*store, &scope, key).await,
            None,
            "{key:?} outlived its TTL"
        );
        assert!(!store.exists(&scope, key).await.expect("exists"));
        assert_eq!(
            store.get_ttl(&scope, key).await.expect("ttl"),
            KvTtl::Absent
        );
        assert!(
            !store
                .refresh_ttl(&scope, key, Duration::from_secs(60))
                .await
                .expect("refresh"),
            "an expired key cannot be revived"
        );
        assert!(!store.delete(&scope, key).await.expect("delete"));
    }
    assert_eq!(list(&*store, &scope, b"").await, keys(&[b"stays"]));
    assert_eq!(store.count_prefix(&scope, b"").await.expect("count"), 1);
    assert_eq!(
        store
            .multi_get(&scope, &[b"short", b"stays"])
            .await
            .expect("multi_get"),
        vec![None, Some(b"v".to_vec())]
    );
    assert!(
        store
            .cas(&scope, b"short", None, b"new")
            .await
            .expect("cas"),
        "an expired key counts as absent"
    );
    assert_eq!(
        store
            .increment(&scope, b"tiny", 4)
            .await
            .expect("increment"),
        4
    );
}

pub async fn ttl_is_cleared_by_put_and_cas_and_kept_by_increment<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("ttl-kinds");
    let hour = Duration::from_secs(3_600);
    let expires = |ttl: KvTtl| matches!(ttl, KvTtl::Expires(left) if left > Duration::from_secs(3_500) && left <= hour);
    store
        .put_with_ttl(&scope, b"put", b"v", hour)
        .await
        .expect("ttl");
    put(&*store, &scope, b"put", b"v2").await;
    assert_eq!(
        store.get_ttl(&scope, b"put").await.expect("ttl"),
        KvTtl::Persistent
    );

    store
        .put_with_ttl(&scope, b"cas", b"v", hour)
        .await
        .expect("ttl");
    assert!(store
        .cas(&scope, b"cas", Some(b"v"), b"w")
        .await
        .expect("cas"));
    assert_eq!(
        store.get_ttl(&scope, b"cas").await.expect("ttl"),
        KvTtl::Persistent
    );

    store
        .put_with_ttl(&scope, b"n", b"5", hour)
        .await
        .expect("ttl");
    assert_eq!(
        store.increment(&scope, b"n", 2).await.expect("increment"),
        7
    );
    assert!(expires(store.get_ttl(&scope, b"n").await.expect("ttl")));
    assert_eq!(
        store.decrement(&scope, b"n", 3).await.expect("decrement"),
        4
    );
    assert!(expires(store.get_ttl(&scope, b"n").await.expect("ttl")));

    store
        .multi_put(&scope, &[(b"n", b"9")])
        .await
        .expect("multi_put");
    assert_eq!(
        store.get_ttl(&scope, b"n").await.expect("ttl"),
        KvTtl::Persistent
    );
}

pub async fn refresh_ttl_sets_a_new_deadline<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("refresh");
    assert!(!store
        .refresh_ttl(&scope, b"absent", Duration::from_secs(1))
        .await
        .expect("refresh absent"));
    assert_eq!(
        get(&*store, &scope, b"absent").await,
        None,
        "refresh must not create"
    );
    put(&*store, &scope, b"k", b"v").await;
    assert!(store
        .refresh_ttl(&scope, b"k", Duration::from_millis(300))
        .await
        .expect("refresh"));
    assert!(matches!(
        store.get_ttl(&scope, b"k").await.expect("ttl"),
        KvTtl::Expires(_)
    ));
    assert!(store
        .refresh_ttl(&scope, b"k", Duration::from_secs(3_600))
        .await
        .expect("extend"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        get(&*store, &scope, b"k").await,
        Some(b"v".to_vec()),
        "the later refresh replaced the shorter deadline"
    );
    assert!(store
        .refresh_ttl(&scope, b"k", Duration::from_millis(200))
        .await
        .expect("shorten"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(&*store, &scope, b"k").await, None);
}

pub async fn cas_swaps_only_on_the_expected_state<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("cas");
    assert!(!store
        .cas(&scope, b"k", Some(b"x"), b"v")
        .await
        .expect("cas"));
    assert_eq!(get(&*store, &scope, b"k").await, None, "a failed cas wrote");
    assert!(store
        .cas(&scope, b"k", None, b"v1")
        .await
        .expect("cas absent"));
    assert!(!store
        .cas(&scope, b"k", None, b"v2")
        .await
        .expect("cas absent again"));
    assert!(!store
        .cas(&scope, b"k", Some(b"v"), b"v2")
        .await
        .expect("prefix of value"));
    assert!(!store
        .cas(&scope, b"k", Some(b"v1x"), b"v2")
        .await
        .expect("longer"));
    assert_eq!(get(&*store, &scope, b"k").await, Some(b"v1".to_vec()));
    assert!(store
        .cas(&scope, b"k", Some(b"v1"), b"v2")
        .await
        .expect("cas"));
    assert_eq!(get(&*store, &scope, b"k").await, Some(b"v2".to_vec()));
    put(&*store, &scope, b"empty", b"").await;
    assert!(!store
        .cas(&scope, b"empty", None, b"x")
        .await
        .expect("empty is present"));
    assert!(store
        .cas(&scope, b"empty", Some(b""), b"x")
        .await
        .expect("cas empty"));
    store.delete(&scope, b"k").await.expect("delete");
    assert!(store
        .cas(&scope, b"k", None, b"v3")
        .await
        .expect("absent after delete"));
}

pub async fn cas_races_lose_no_update<S: KeyValueStore + 'static>(store: Arc<S>) {
    const TASKS: u64 = 8;
    const SWAPS_PER_TASK: u64 = 25;
    let scope = scope("cas-race");
    put(&*store, &scope, b"counter", b"0").await;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (store, scope) = (Arc::clone(&store), scope.clone());
        tasks.push(tokio::spawn(async move {
            let mut lost_races = 0_u64;
            for _ in 0..SWAPS_PER_TASK {
                loop {
                    let current = store
                        .get(&scope, b"counter")
                        .await
                        .expect("get")
                        .expect("the counter exists");
                    let number: u64 = std::str::from_utf8(&current)
                        .expect("text")
                        .parse()
                        .expect("a number");
                    let next = (number + 1).to_string();
                    if store
                        .cas(&scope, b"counter", Some(&current), next.as_bytes())
                        .await
                        .expect("cas")
                    {
                        break;
                    }
                    lost_races += 1;
                }
            }
            lost_races
        }));
    }
    for task in tasks {
        task.await.expect("a racing task");
    }
    assert_eq!(
        get(&*store, &scope, b"counter").await,
        Some((TASKS * SWAPS_PER_TASK).to_string().into_bytes()),
        "every successful cas must count exactly once"
    );
}

pub async fn increment_and_decrement<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("increment");
    assert_eq!(
        store.increment(&scope, b"n", 5).await.expect("from absent"),
        5
    );
    assert_eq!(
        store.increment(&scope, b"n", -7).await.expect("negative"),
        -2
    );
    assert_eq!(
        store.decrement(&scope, b"n", 3).await.expect("decrement"),
        -5
    );
    assert_eq!(get(&*store, &scope, b"n").await, Some(b"-5".to_vec()));
    assert_eq!(
        store.decrement(&scope, b"fresh", 4).await.expect("absent"),
        -4
    );

    put(&*store, &scope, b"max", i64::MAX.to_string().as_bytes()).await;
    assert!(matches!(
        store.increment(&scope, b"max", 1).await,
        Err(KvError::Overflow { .. })
    ));
    assert_eq!(
        get(&*store, &scope, b"max").await,
        Some(i64::MAX.to_string().into_bytes())
    );
    put(&*store, &scope, b"min", i64::MIN.to_string().as_bytes()).await;
    assert!(matches!(
        store.decrement(&scope, b"min", 1).await,
        Err(KvError::Overflow { .. })
    ));
    assert!(matches!(
        store.decrement(&scope, b"zero", i64::MIN).await,
        Err(KvError::Overflow { .. })
    ));
    assert_eq!(
        get(&*store, &scope, b"zero").await,
        None,
        "a refused decrement wrote"
    );

    for not_a_number in [&b"abc"[..], b"1.5", b"", b"99999999999999999999", b"\xff"] {
        put(&*store, &scope, b"text", not_a_number).await;
        assert!(
            matches!(
                store.increment(&scope, b"text", 1).await,
                Err(KvError::NotAnInteger { .. })
            ),
            "{not_a_number:?} was taken for a number"
        );
        assert_eq!(
            get(&*store, &scope, b"text").await,
            Some(not_a_number.to_vec())
        );
    }
}

pub async fn scopes_are_isolated<S: KeyValueStore>(store: Arc<S>) {
    let base = scope("iso");
    // Names built so that a naive `tenant:namespace:key` join would collide.
    let tenant = base.tenant();
    let left = Scope::new(tenant, "a").expect("scope");
    let right = Scope::new(&format!("{tenant}:a"), "b").expect("scope");
    let joined = Scope::new(tenant, "a:b").expect("scope");
    let braces = Scope::new(tenant, "a}").expect("scope");
    let all = [&left, &right, &joined, &braces];
    for (index, scope) in all.iter().enumerate() {
        put(&*store, scope, b"b:k", index.to_string().as_bytes()).await;
        put(&*store, scope, b"k", index.to_string().as_bytes()).await;
    }
    for (index, scope) in all.iter().enumerate() {
        assert_eq!(
            get(&*store, scope, b"k").await,
            Some(index.to_string().into_bytes()),
            "scope {scope:?}"
        );
        assert_eq!(list(&*store, scope, b"").await, keys(&[b"b:k", b"k"]));
        assert_eq!(store.count_prefix(scope, b"").await.expect("count"), 2);
    }
    assert_eq!(store.clear_prefix(&left, b"").await.expect("clear"), 2);
    for scope in &all[1..] {
        assert_eq!(list(&*store, scope, b"").await.len(), 2, "scope {scope:?}");
    }
    assert!(store.delete(&right, b"k").await.expect("delete"));
    assert!(store.exists(&joined, b"k").await.expect("exists"));
}

pub async fn watch_never_crosses_scopes<S: KeyValueStore>(store: Arc<S>) {
    let own_scope = scope("watch-iso");
    let tenant = own_scope.tenant().to_owned();
    let others = [
        Scope::new(&tenant, "watch-iso2").expect("scope"),
        Scope::new(&format!("{tenant}:watch-iso"), "x").expect("scope"),
        Scope::new("other", "watch-iso").expect("scope"),
    ];
    let mut watcher = store.watch_prefix(&own_scope, b"").await.expect("watch");
    for other in &others {
        put(&*store, other, b"k", b"leak").await;
        store.delete(other, b"k").await.expect("delete");
        store
            .multi_put(other, &[(b"k1", b"leak")])
            .await
            .expect("multi_put");
        store.clear_prefix(other, b"").await.expect("clear");
    }
    put(&*store, &own_scope, b"marker", b"mine").await;
    assert_eq!(
        next_event(&mut watcher).await,
        put_event(b"marker", b"mine")
    );
    assert_quiet(&mut watcher).await;
}

pub async fn watch_key_sees_only_that_key<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("watch-key");
    let mut watcher = store.watch(&scope, b"k").await.expect("watch");
    put(&*store, &scope, b"k2", b"longer key").await;
    put(&*store, &scope, b"j", b"other key").await;
    put(&*store, &scope, b"k", b"v1").await;
    store.delete(&scope, b"k").await.expect("delete");
    put(&*store, &scope, b"k", b"v2").await;
    assert_eq!(next_event(&mut watcher).await, put_event(b"k", b"v1"));
    assert_eq!(next_event(&mut watcher).await, delete_event(b"k"));
    assert_eq!(next_event(&mut watcher).await, put_event(b"k", b"v2"));
    assert_quiet(&mut watcher).await;
}

pub async fn watch_prefix_sees_every_kind_of_write<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("watch-prefix");
    let mut watcher = store.watch_prefix(&scope, b"p:").await.expect("watch");
    put(&*store, &scope, b"q:1", b"not watched").await;
    put(&*store, &scope, b"p:1", b"a").await;
    store
        .put_with_ttl(&scope, b"p:2", b"b", Duration::from_secs(60))
        .await
        .expect("put_with_ttl");
    assert!(store
        .cas(&scope, b"p:1", Some(b"a"), b"c")
        .await
        .expect("cas"));
    assert!(!store
        .cas(&scope, b"p:1", Some(b"a"), b"d")
        .await
        .expect("failed cas"));
    assert_eq!(
        store.increment(&scope, b"p:n", 3).await.expect("increment"),
        3
    );
    store.delete(&scope, b"p:2").await.expect("delete");
    assert_eq!(next_event(&mut watcher).await, put_event(b"p:1", b"a"));
    assert_eq!(next_event(&mut watcher).await, put_event(b"p:2", b"b"));
    assert_eq!(next_event(&mut watcher).await, put_event(b"p:1", b"c"));
    assert_eq!(next_event(&mut watcher).await, put_event(b"p:n", b"3"));
    assert_eq!(next_event(&mut watcher).await, delete_event(b"p:2"));

    store
        .multi_put(&scope, &[(b"p:x", b"1"), (b"q:x", b"2"), (b"p:y", b"3")])
        .await
        .expect("multi_put");
    let batch: BTreeSet<_> = [
        next_event(&mut watcher).await,
        next_event(&mut watcher).await,
    ]
    .into_iter()
    .map(|event| format!("{event:?}"))
    .collect();
    let expected: BTreeSet<_> = [put_event(b"p:x", b"1"), put_event(b"p:y", b"3")]
        .into_iter()
        .map(|event| format!("{event:?}"))
        .collect();
    assert_eq!(batch, expected);

    assert_eq!(store.clear_prefix(&scope, b"p:").await.expect("clear"), 4);
    let mut cleared = BTreeSet::new();
    for _ in 0..4 {
        match next_event(&mut watcher).await {
            KvEvent::Delete { key } => {
                cleared.insert(key);
            }
            other => panic!("expected a delete from clear_prefix, got {other:?}"),
        }
    }
    assert_eq!(
        cleared,
        keys(&[b"p:1", b"p:n", b"p:x", b"p:y"])
            .into_iter()
            .collect()
    );
    assert_quiet(&mut watcher).await;
    drop(watcher);
    // A dropped watcher costs the writer nothing and breaks nothing.
    put(&*store, &scope, b"p:after", b"v").await;
}

pub async fn bad_keys_are_refused_by_every_call<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("bad-input");
    let long_key = vec![b'k'; KEY_BYTES_MAX + 1];
    let empty: &[u8] = b"";
    let ttl = Duration::from_secs(1);
    for (key, is_empty) in [(empty, true), (long_key.as_slice(), false)] {
        let check = |result: &Result<(), KvError>| {
            if is_empty {
                matches!(result, Err(KvError::KeyEmpty))
            } else {
                matches!(result, Err(KvError::KeyTooLarge { .. }))
            }
        };
        let results = [
            store.get(&scope, key).await.map(|_| ()),
            store.put(&scope, key, b"v").await,
            store.delete(&scope, key).await.map(|_| ()),
            store.exists(&scope, key).await.map(|_| ()),
            store.put_with_ttl(&scope, key, b"v", ttl).await,
            store.refresh_ttl(&scope, key, ttl).await.map(|_| ()),
            store.get_ttl(&scope, key).await.map(|_| ()),
            store.cas(&scope, key, None, b"v").await.map(|_| ()),
            store.increment(&scope, key, 1).await.map(|_| ()),
            store.decrement(&scope, key, 1).await.map(|_| ()),
            store.watch(&scope, key).await.map(|_| ()),
            store.multi_get(&scope, &[key]).await.map(|_| ()),
            store.multi_put(&scope, &[(key, b"v")]).await,
        ];
        for (index, result) in results.iter().enumerate() {
            assert!(
                check(result),
                "call {index} with key of {} bytes gave {result:?}",
                key.len()
            );
        }
    }
    assert_eq!(
        list(&*store, &scope, b"").await,
        Vec::<Vec<u8>>::new(),
        "refused calls wrote something"
    );
}

pub async fn bad_input_is_refused_with_typed_errors<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("bad-input");
    let long_key = vec![b'k'; KEY_BYTES_MAX + 1];
    let ttl = Duration::from_secs(1);
    macro_rules! refused {
        ($call:expr, $pattern:pat) => {
            let result = $call.await;
            assert!(
                matches!(result, Err($pattern)),
                "{} gave {:?}",
                stringify!($call),
                result.map(|_| ())
            );
        };
    }
    refused!(store.list(&scope, &long_key), KvError::KeyTooLarge { .. });
    refused!(
        store.count_prefix(&scope, &long_key),
        KvError::KeyTooLarge { .. }
    );
    refused!(
        store.clear_prefix(&scope, &long_key),
        KvError::KeyTooLarge { .. }
    );
    refused!(
        store.watch_prefix(&scope, &long_key),
        KvError::KeyTooLarge { .. }
    );

    let huge = vec![0_u8; VALUE_BYTES_MAX + 1];
    refused!(
        store.put(&scope, b"k", &huge),
        KvError::ValueTooLarge { .. }
    );
    refused!(
        store.put_with_ttl(&scope, b"k", &huge, ttl),
        KvError::ValueTooLarge { .. }
    );
    refused!(
        store.cas(&scope, b"k", None, &huge),
        KvError::ValueTooLarge { .. }
    );
    refused!(
        store.multi_put(&scope, &[(b"k", &huge)]),
        KvError::ValueTooLarge { .. }
    );
    drop(huge);

    refused!(
        store.put_with_ttl(&scope, b"k", b"v", Duration::ZERO),
        KvError::InvalidArgument(_)
    );
    refused!(
        store.refresh_ttl(&scope, b"k", Duration::ZERO),
        KvError::InvalidArgument(_)
    );
    refused!(
        store.put_with_ttl(&scope, b"k", b"v", Duration::MAX),
        KvError::InvalidArgument(_)
    );
    let too_many: Vec<&[u8]> = vec![b"k"; MULTI_ENTRIES_MAX + 1];
    refused!(
        store.multi_get(&scope, &too_many),
        KvError::InvalidArgument(_)
    );
    let too_many: Vec<(&[u8], &[u8])> = vec![(b"k", b"v"); MULTI_ENTRIES_MAX + 1];
    refused!(
        store.multi_put(&scope, &too_many),
        KvError::InvalidArgument(_)
    );

    assert_eq!(
        list(&*store, &scope, b"").await,
        Vec::<Vec<u8>>::new(),
        "refused calls wrote something"
    );
}

pub async fn refused_multi_put_writes_nothing<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("refused-batch");
    let long_key = vec![b'k'; KEY_BYTES_MAX + 1];
    for bad in [&b""[..], long_key.as_slice()] {
        let result = store
            .multi_put(&scope, &[(b"a", b"1"), (bad, b"2"), (b"c", b"3")])
            .await;
        assert!(result.is_err(), "a batch with a bad key was accepted");
    }
    assert_eq!(list(&*store, &scope, b"").await, Vec::<Vec<u8>>::new());
}

pub async fn stats_name_the_backend<S: KeyValueStore>(store: Arc<S>) {
    let scope = scope("stats");
    for index in 0..10 {
        put(&*store, &scope, format!("k{index}").as_bytes(), b"v").await;
    }
    let stats = store.stats().await.expect("stats");
    assert!(
        ["cairn", "sqlite", "redis"].contains(&stats.backend),
        "unknown backend name {:?}",
        stats.backend
    );
    assert!(stats.keys >= 10, "{stats:?}");
}

/// Another scope of the same tenant as `scope`.
fn scope_named(scope: &Scope, namespace: &str) -> Scope {
    Scope::new(scope.tenant(), namespace).expect("a valid scope")
}
