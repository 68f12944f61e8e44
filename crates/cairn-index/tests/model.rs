//! The tree against `BTreeMap`: random inserts, overwrites, removals, point reads and range
//! scans, seeded (the seed is printed on failure), over key spaces small enough to force
//! splits and merges and with keys long enough to split leaves by bytes.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cairn_index::{NotSorted, Tree};
use cairn_testkit::rng::SplitMix64;

fn key(rng: &mut SplitMix64, space: usize) -> Vec<u8> {
    let id = rng.below(space);
    // Some keys long enough that a leaf splits by bytes before it fills with entries.
    let len = if id.is_multiple_of(17) {
        300
    } else {
        8 + id % 9
    };
    let mut key = format!("{id:08}").into_bytes();
    key.resize(len, b'k');
    key
}

fn bound(rng: &mut SplitMix64, space: usize) -> Bound<Vec<u8>> {
    match rng.below(3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(key(rng, space)),
        _ => Bound::Excluded(key(rng, space)),
    }
}

/// What `BTreeMap::range` gives for the bounds, or nothing when they are crossed (where it
/// would panic and the tree answers empty).
fn model_range(
    model: &BTreeMap<Vec<u8>, u64>,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
) -> Vec<(Vec<u8>, u64)> {
    let valid = match (&start, &end) {
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a < b || (a == b && matches!((&start, &end), (Bound::Included(_), Bound::Included(_))))
        }
        _ => true,
    };
    if valid {
        model
            .range::<Vec<u8>, _>((start, end))
            .map(|(key, value)| (key.clone(), *value))
            .collect()
    } else {
        Vec::new()
    }
}

fn run(seed: u64, space: usize, steps: usize) {
    let mut rng = SplitMix64::new(seed);
    let (tree, mut writer) = Tree::<u64>::new();
    let mut model = BTreeMap::new();
    for step in 0..steps {
        let context = || format!("seed {seed}, step {step}");
        match rng.below(10) {
            0..=4 => {
                let key = key(&mut rng, space);
                let value = rng.next_u64();
                let guard = crossbeam_epoch::pin();
                let (published, was_new) = tree.upsert(
                    &mut writer,
                    &key,
                    |old| {
                        assert_eq!(old.copied(), model.get(&key).copied(), "{}", context());
                        value
                    },
                    &guard,
                );
                assert_eq!(*published, value, "{}", context());
                assert_eq!(was_new, model.insert(key, value).is_none(), "{}", context());
            }
            5..=7 => {
                let key = key(&mut rng, space);
                assert_eq!(
                    tree.remove(&mut writer, &key),
                    model.remove(&key).is_some(),
                    "{}",
                    context()
                );
            }
            8 => {
                let key = key(&mut rng, space);
                let guard = crossbeam_epoch::pin();
                assert_eq!(
                    tree.get(&key, &guard).copied(),
                    model.get(&key).copied(),
                    "{}",
                    context()
                );
            }
            _ => {
                let (start, end) = (bound(&mut rng, space), bound(&mut rng, space));
                let range = (
                    start.as_ref().map(Vec::as_slice),
                    end.as_ref().map(Vec::as_slice),
                );
                let guard = crossbeam_epoch::pin();
                // Forward, backward, or from both ends at random, put back in order.
                let mut scan = tree.range(range, &guard);
                let how = rng.below(3);
                let (mut front, mut back) = (Vec::new(), Vec::new());
                loop {
                    let from_back = how == 1 || (how == 2 && rng.below(2) == 0);
                    let next = if from_back {
                        scan.next_back()
                    } else {
                        scan.next()
                    };
                    let Some((key, value)) = next else { break };
                    if from_back {
                        back.push((key.to_vec(), *value));
                    } else {
                        front.push((key.to_vec(), *value));
                    }
                }
                back.reverse();
                let got: Vec<(Vec<u8>, u64)> = front.into_iter().chain(back).collect();
                let want = model_range(&model, start, end);
                assert_eq!(got, want, "{}", context());
            }
        }
        assert_eq!(tree.len(), model.len(), "{}", context());
    }
    let guard = crossbeam_epoch::pin();
    let all: Vec<(Vec<u8>, u64)> = tree
        .range::<(Bound<&[u8]>, Bound<&[u8]>)>((Bound::Unbounded, Bound::Unbounded), &guard)
        .map(|(key, value)| (key.to_vec(), *value))
        .collect();
    let want: Vec<(Vec<u8>, u64)> = model.into_iter().collect();
    assert_eq!(all, want, "seed {seed}: final contents");
}

#[test]
fn random_operations_match_a_btreemap() {
    for (seed, space) in (0..24u64).zip((200..).step_by(400)) {
        run(seed, space, 12_000);
    }
}

#[test]
fn a_large_tree_grows_and_shrinks_to_nothing() {
    let (tree, mut writer) = Tree::<u64>::new();
    let keys: Vec<Vec<u8>> = (0..50_000u64)
        .map(|id| {
            id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .to_be_bytes()
                .to_vec()
        })
        .collect();
    for (value, key) in keys.iter().enumerate() {
        assert!(tree.insert(&mut writer, key, value as u64));
    }
    assert_eq!(tree.len(), keys.len());
    let guard = crossbeam_epoch::pin();
    let walked: Vec<&[u8]> = tree
        .range::<std::ops::RangeFull>(.., &guard)
        .map(|(key, _)| key)
        .collect();
    let mut sorted: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    sorted.sort_unstable();
    assert_eq!(walked, sorted);
    drop(guard);
    for key in &keys {
        assert!(tree.remove(&mut writer, key));
    }
    assert!(tree.is_empty());
    let guard = crossbeam_epoch::pin();
    assert_eq!(tree.range::<std::ops::RangeFull>(.., &guard).count(), 0);
}

#[test]
fn a_bulk_load_reads_like_inserts_and_refuses_unsorted_input() {
    let keys: Vec<Vec<u8>> = (0..10_000u32).map(|id| id.to_be_bytes().to_vec()).collect();
    let (tree, mut writer) =
        Tree::from_sorted(keys.iter().map(|key| (key.clone(), u64::from(key[3])))).expect("sorted");
    assert_eq!(tree.len(), keys.len());
    let guard = crossbeam_epoch::pin();
    for key in &keys {
        assert_eq!(tree.get(key, &guard).copied(), Some(u64::from(key[3])));
    }
    assert_eq!(
        tree.range::<std::ops::RangeFull>(.., &guard).count(),
        keys.len()
    );
    drop(guard);
    // A bulk-loaded tree takes writes like any other.
    assert!(tree.insert(&mut writer, b"\xff", 1));
    assert!(tree.remove(&mut writer, &keys[5]));
    assert_eq!(tree.len(), keys.len());

    let unsorted = [(b"b".to_vec(), 1u64), (b"a".to_vec(), 2)];
    assert_eq!(
        Tree::<u64>::from_sorted(unsorted).err(),
        Some(NotSorted { position: 1 })
    );
    let duplicate = [(b"a".to_vec(), 1u64), (b"a".to_vec(), 2)];
    assert_eq!(
        Tree::<u64>::from_sorted(duplicate).err(),
        Some(NotSorted { position: 1 })
    );
    let (empty, _) = Tree::<u64>::from_sorted(Vec::<(Vec<u8>, u64)>::new()).expect("empty");
    assert!(empty.is_empty());
}

/// Counts its own drops, so a leak or a double free shows.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn every_value_is_freed_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut made = 0;
    {
        let (tree, mut writer) = Tree::<Counted>::new();
        let mut rng = SplitMix64::new(7);
        for _ in 0..20_000 {
            let key = key(&mut rng, 3_000);
            if rng.below(3) == 0 {
                tree.remove(&mut writer, &key);
            } else {
                tree.insert(&mut writer, &key, Counted(Arc::clone(&drops)));
                made += 1;
            }
        }
        let unsorted = [
            (b"b".to_vec(), Counted(Arc::clone(&drops))),
            (b"a".to_vec(), Counted(Arc::clone(&drops))),
        ];
        made += 2;
        assert!(Tree::<Counted>::from_sorted(unsorted).is_err());
    }
    for _ in 0..10_000 {
        if drops.load(Ordering::SeqCst) == made {
            break;
        }
        crossbeam_epoch::pin().flush();
    }
    assert_eq!(drops.load(Ordering::SeqCst), made);
}

#[test]
#[should_panic(expected = "belongs to that tree alone")]
fn a_writer_of_another_tree_is_refused() {
    let (tree, _writer) = Tree::<u64>::new();
    let (_other, mut other_writer) = Tree::<u64>::new();
    tree.insert(&mut other_writer, b"a", 1);
}

/// A value that holds its key, as the index needs.
#[derive(Debug, PartialEq)]
struct Held {
    key: Vec<u8>,
    value: u64,
}

impl cairn_index::Keyed for Held {
    fn key(&self) -> &[u8] {
        &self.key
    }
}

/// A run of ascending writes sharing one leaf hint, checked against `model`: replacements
/// through it, with inserts and removals between them that replace nodes (after which the
/// hint must not be trusted).
fn hinted_run(
    index: &cairn_index::Index<Held>,
    writer: &mut cairn_index::Writer,
    model: &mut BTreeMap<Vec<u8>, u64>,
    rng: &mut SplitMix64,
    space: usize,
) {
    let mut keys: Vec<Vec<u8>> = (0..=rng.below(30)).map(|_| key(rng, space)).collect();
    keys.sort();
    keys.dedup();
    let guard = crossbeam_epoch::pin();
    let mut hint = cairn_index::LeafHint::default();
    for run_key in &keys {
        let value = rng.next_u64();
        let held = || Held {
            key: run_key.clone(),
            value,
        };
        let Some(found) = index.find_for_write(writer, run_key, &mut hint, &guard) else {
            assert!(!model.contains_key(run_key), "a present key was not found");
            index.upsert(writer, run_key, |_| held(), &guard);
            model.insert(run_key.clone(), value);
            continue;
        };
        assert_eq!(Some(found.value().value), model.get(run_key).copied());
        if rng.below(4) == 0 {
            assert!(index.remove(writer, run_key));
            model.remove(run_key);
        } else {
            let published = index.replace(writer, found, |_| held(), &guard);
            assert_eq!(published.value, value);
            model.insert(run_key.clone(), value);
        }
    }
}

/// The index (tree plus point table) against `BTreeMap`: enough inserts and removals that the
/// point table grows and is rebuilt over its removed slots several times.
#[test]
fn the_index_matches_a_btreemap_through_growth_and_removals() {
    for seed in 0..8u64 {
        let mut rng = SplitMix64::new(seed);
        let (index, mut writer) = cairn_index::Index::<Held>::new();
        let mut model: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let space = 500 + 1_500 * usize::try_from(seed).unwrap_or(0);
        for step in 0..20_000 {
            let key = key(&mut rng, space);
            let guard = crossbeam_epoch::pin();
            match rng.below(8) {
                0..=3 => {
                    let value = rng.next_u64();
                    let (published, was_new) = index.upsert(
                        &mut writer,
                        &key,
                        |old| {
                            assert_eq!(old.map(|held| held.value), model.get(&key).copied());
                            Held {
                                key: key.clone(),
                                value,
                            }
                        },
                        &guard,
                    );
                    assert_eq!(published.value, value);
                    assert_eq!(
                        was_new,
                        model.insert(key.clone(), value).is_none(),
                        "seed {seed}, step {step}"
                    );
                }
                4..=5 => {
                    assert_eq!(
                        index.remove(&mut writer, &key),
                        model.remove(&key).is_some(),
                        "seed {seed}, step {step}"
                    );
                }
                6 if step % 4 == 0 => {
                    // A batch: ascending half the time (one copy per leaf), otherwise in any
                    // order with repeats (the last write of a key wins, as in the model).
                    let mut batch: Vec<Held> = (0..=rng.below(40))
                        .map(|_| Held {
                            key: self::key(&mut rng, space),
                            value: rng.next_u64(),
                        })
                        .collect();
                    if rng.below(2) == 0 {
                        batch.sort_by(|left, right| left.key.cmp(&right.key));
                        batch.dedup_by(|later, earlier| later.key == earlier.key);
                    }
                    let before = model.len();
                    for held in &batch {
                        model.insert(held.key.clone(), held.value);
                    }
                    let added = index.insert_batch(&mut writer, batch);
                    assert_eq!(added, model.len() - before, "seed {seed}, step {step}");
                }
                7 if step % 4 == 1 => hinted_run(&index, &mut writer, &mut model, &mut rng, space),
                _ => {}
            }
            assert_eq!(
                index.get(&key, &guard).map(|held| held.value),
                model.get(&key).copied(),
                "seed {seed}, step {step}"
            );
            assert_eq!(index.len(), model.len());
        }
        let guard = crossbeam_epoch::pin();
        for (key, value) in &model {
            assert_eq!(
                index.get(key, &guard).map(|held| held.value),
                Some(*value),
                "seed {seed}"
            );
        }
        let scanned: Vec<(Vec<u8>, u64)> = index
            .range::<std::ops::RangeFull>(.., &guard)
            .map(|(key, held)| (key.to_vec(), held.value))
            .collect();
        assert_eq!(
            scanned,
            model.into_iter().collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
}

#[test]
fn a_bulk_loaded_index_finds_every_key_and_refuses_unsorted_input() {
    let values = (0..5_000u32).map(|id| Held {
        key: id.to_be_bytes().to_vec(),
        value: u64::from(id),
    });
    let (index, mut writer) = cairn_index::Index::<Held>::from_sorted(values).expect("sorted");
    let guard = crossbeam_epoch::pin();
    for id in 0..5_000u32 {
        assert_eq!(
            index.get(&id.to_be_bytes(), &guard).map(|held| held.value),
            Some(u64::from(id))
        );
    }
    assert!(index.get(b"missing", &guard).is_none());
    assert!(index.remove(&mut writer, &7u32.to_be_bytes()));
    assert!(index.get(&7u32.to_be_bytes(), &guard).is_none());
    let unsorted = [
        Held {
            key: b"b".to_vec(),
            value: 1,
        },
        Held {
            key: b"a".to_vec(),
            value: 2,
        },
    ];
    assert_eq!(
        cairn_index::Index::<Held>::from_sorted(unsorted).err(),
        Some(NotSorted { position: 1 })
    );
}

/// Remove most keys, put half of them back, again and again: the tree's shape follows the
/// live keys (leaves merge, so they stay at least about a quarter full on average) and the
/// inner nodes do not pile up.
#[test]
fn churn_keeps_the_shape_bounded() {
    let (tree, mut writer) = Tree::<u64>::new();
    let mut rng = SplitMix64::new(3);
    let mut keys: Vec<[u8; 8]> = (0..20_000u64)
        .map(|id| id.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes())
        .collect();
    for key in &keys {
        tree.insert(&mut writer, key, 1);
    }
    let start = tree.shape();
    keys.sort_unstable();
    for _ in 0..3 {
        for (position, key) in keys.iter().enumerate() {
            if position % 20 != 0 {
                tree.remove(&mut writer, key);
            }
        }
        let shape = tree.shape();
        assert!(
            shape.leaves * cairn_index::LEAF_MAX_ENTRIES / 8
                <= tree.len() + cairn_index::LEAF_MAX_ENTRIES,
            "{} leaves for {} keys",
            shape.leaves,
            tree.len()
        );
        assert!(
            shape.inner_nodes <= start.inner_nodes,
            "{shape:?} after {start:?}"
        );
        for key in &keys {
            if rng.below(2) == 0 {
                tree.insert(&mut writer, key, 2);
            }
        }
        assert!(tree.shape().inner_nodes <= start.inner_nodes + start.inner_nodes / 2);
    }
}

/// Keys larger than a leaf's byte budget, alone and among small ones: each big key sits in a
/// leaf of its own and every key stays reachable (a split of a lone 64 KiB key once left an
/// empty leaf and an empty separator).
#[test]
fn keys_larger_than_a_leaf_stay_reachable() {
    let (tree, mut writer) = Tree::<u64>::new();
    let big = |fill: u8| vec![fill; 65_536];
    assert!(tree.insert(&mut writer, &big(0xab), 1));
    let guard = crossbeam_epoch::pin();
    assert_eq!(tree.get(&big(0xab), &guard), Some(&1));
    assert_eq!(tree.range::<std::ops::RangeFull>(.., &guard).count(), 1);
    drop(guard);
    let mut model = BTreeMap::new();
    model.insert(big(0xab), 1);
    for (id, fill) in (0u64..200).zip((0u8..=255).cycle()) {
        let key = if id % 10 == 0 {
            big(fill)
        } else {
            format!("{id:04}").into_bytes()
        };
        tree.insert(&mut writer, &key, id);
        model.insert(key, id);
    }
    let guard = crossbeam_epoch::pin();
    for (key, value) in &model {
        assert_eq!(tree.get(key, &guard), Some(value));
    }
    let scanned: Vec<u64> = tree
        .range::<std::ops::RangeFull>(.., &guard)
        .map(|(_, value)| *value)
        .collect();
    assert_eq!(scanned, model.values().copied().collect::<Vec<_>>());
    drop(guard);
    for key in model.keys() {
        assert!(tree.remove(&mut writer, key));
    }
    assert!(tree.is_empty());
}

/// Keys inserted in ascending order fill their leaves and inner nodes: a split at the right
/// edge keeps the left node whole, so the tree is as small as a bulk load would make it.
#[test]
fn keys_inserted_in_order_fill_their_nodes() {
    let (tree, mut writer) = Tree::<u64>::new();
    let count: usize = 64 * 64 * 3;
    for id in 0..count {
        tree.insert(&mut writer, format!("{id:08}").as_bytes(), 0);
    }
    let shape = tree.shape();
    let leaves_needed = count.div_ceil(cairn_index::LEAF_MAX_ENTRIES);
    assert!(
        shape.leaves <= leaves_needed + 1,
        "{shape:?}: {leaves_needed} leaves would do"
    );
    assert!(shape.inner_nodes <= leaves_needed / 60 + 3, "{shape:?}");
    // Descending order gets no such help, but stays correct.
    let (reverse, mut writer) = Tree::<u64>::new();
    for id in (0..2_000).rev() {
        reverse.insert(&mut writer, format!("{id:08}").as_bytes(), 0);
    }
    let guard = crossbeam_epoch::pin();
    assert_eq!(
        reverse.range::<std::ops::RangeFull>(.., &guard).count(),
        2_000
    );
}

#[test]
#[should_panic(expected = "default epoch collector")]
fn a_guard_of_another_collector_is_refused() {
    let (tree, mut writer) = Tree::<u64>::new();
    tree.insert(&mut writer, b"a", 1);
    let collector = crossbeam_epoch::Collector::new();
    let handle = collector.register();
    let guard = handle.pin();
    let _ = tree.get(b"a", &guard);
}

#[test]
fn a_value_under_another_key_is_refused_before_anything_is_published() {
    let (index, mut writer) = cairn_index::Index::<Held>::new();
    let guard = crossbeam_epoch::pin();
    index.upsert(
        &mut writer,
        b"a",
        |_| Held {
            key: b"a".to_vec(),
            value: 1,
        },
        &guard,
    );
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        index.upsert(
            &mut writer,
            b"b",
            |_| Held {
                key: b"c".to_vec(),
                value: 2,
            },
            &guard,
        );
    }));
    assert!(refused.is_err());
    assert_eq!(index.len(), 1);
    assert!(index.get(b"b", &guard).is_none());
    assert!(index.remove(&mut writer, b"a"));
    assert!(index.get(b"a", &guard).is_none());
}

/// Removing a long run of keys empties whole subtrees; none of their empty leaves may stay
/// behind, or a scan that starts in the run walks through every one of them. Removing every
/// key leaves one empty leaf.
#[test]
fn removed_runs_leave_no_empty_leaves() {
    let (tree, mut writer) = Tree::<u64>::new();
    let keys: Vec<[u8; 8]> = (0..50_000u64).map(u64::to_be_bytes).collect();
    for key in &keys {
        tree.insert(&mut writer, key, 1);
    }
    for key in keys.get(5_000..45_000).unwrap_or_default() {
        assert!(tree.remove(&mut writer, key));
    }
    let shape = tree.shape();
    assert_eq!(tree.len(), 10_000);
    assert!(
        shape.leaves <= tree.len() / 8,
        "{} leaves hold {} keys: empty leaves were left behind",
        shape.leaves,
        tree.len()
    );
    let guard = &crossbeam_epoch::pin();
    let from = 5_000u64.to_be_bytes();
    let next: Vec<u64> = tree
        .range::<(Bound<&[u8]>, Bound<&[u8]>)>(
            (Bound::Included(&from[..]), Bound::Unbounded),
            guard,
        )
        .take(2)
        .map(|(key, _)| u64::from_be_bytes(key.try_into().unwrap_or_default()))
        .collect();
    assert_eq!(next, vec![45_000, 45_001]);
    for key in keys
        .get(..5_000)
        .into_iter()
        .chain(keys.get(45_000..))
        .flatten()
    {
        assert!(tree.remove(&mut writer, key));
    }
    assert!(tree.is_empty());
    assert_eq!(tree.shape().leaves, 1, "an empty tree is one empty leaf");
}

/// A large batch into an empty index is built bottom-up (`insert_batch`'s bulk path): it must
/// read exactly as inserts do, through the point table and in scans, and take later changes.
/// A large batch that is not strictly ascending, or one into an index that holds keys, goes
/// in leaf by leaf, with the last write of a repeated key winning.
#[test]
fn a_large_batch_into_an_empty_index_reads_like_inserts() {
    let held = |id: u32, value: u64| Held {
        key: format!("key:{id:08}").into_bytes(),
        value,
    };
    let check = |index: &cairn_index::Index<Held>, model: &BTreeMap<Vec<u8>, u64>| {
        let guard = crossbeam_epoch::pin();
        assert_eq!(index.len(), model.len());
        for (key, value) in model {
            assert_eq!(index.get(key, &guard).map(|held| held.value), Some(*value));
        }
        let scanned: Vec<(Vec<u8>, u64)> = index
            .range::<std::ops::RangeFull>(.., &guard)
            .map(|(key, held)| (key.to_vec(), held.value))
            .collect();
        assert_eq!(scanned, model.clone().into_iter().collect::<Vec<_>>());
    };
    let (index, mut writer) = cairn_index::Index::<Held>::new();
    let mut model = BTreeMap::new();
    let added = index.insert_batch(&mut writer, (0..5_000).map(|id| held(id * 2, 1)));
    assert_eq!(added, 5_000);
    model.extend((0..5_000).map(|id| (held(id * 2, 1).key, 1)));
    check(&index, &model);
    // Into a full index: the odd keys and a repeat of some even ones, leaf by leaf.
    let added = index.insert_batch(&mut writer, (0..3_000).map(|id| held(id, 2)));
    assert_eq!(added, 1_500);
    model.extend((0..3_000).map(|id| (held(id, 2).key, 2)));
    check(&index, &model);
    let guard = crossbeam_epoch::pin();
    index.upsert(&mut writer, &held(4, 0).key, |_| held(4, 9), &guard);
    model.insert(held(4, 0).key, 9);
    for id in 0..10_000 {
        let key = held(id, 0).key;
        assert_eq!(
            index.remove(&mut writer, &key),
            model.remove(&key).is_some()
        );
    }
    check(&index, &model);
    // Empty again: a batch in descending order, with repeats, is not built bottom-up.
    let batch: Vec<Held> = (0..600)
        .rev()
        .map(|id| held(id % 400, u64::from(id)))
        .collect();
    for item in &batch {
        model.insert(item.key.clone(), item.value);
    }
    assert_eq!(index.insert_batch(&mut writer, batch), 400);
    check(&index, &model);
}

/// `Held` of key `id` (big-endian) and `value`.
fn held(id: u64, value: u64) -> Held {
    Held {
        key: id.to_be_bytes().to_vec(),
        value,
    }
}

/// An index of the even keys 0 to 18, each of value 0, and its writer.
fn even_keys() -> Result<(cairn_index::Index<Held>, cairn_index::Writer), cairn_index::NotSorted> {
    cairn_index::Index::<Held>::from_sorted((0..10_u64).map(|id| held(id * 2, 0)))
}

/// A leaf hint is used only while no node was replaced since it was taken: after an insert
/// rebuilds the hinted leaf, a find through the hint reaches the live leaf, and a replacement
/// through it is seen by a scan (a stale leaf's slot would be seen by nothing).
#[test]
fn a_leaf_hint_goes_stale_when_a_node_is_replaced() {
    let (index, mut writer) = even_keys().expect("sorted");
    let guard = crossbeam_epoch::pin();
    let mut hint = cairn_index::LeafHint::default();
    let found = index
        .find_for_write(&writer, &4_u64.to_be_bytes(), &mut hint, &guard)
        .expect("present");
    index.replace(&mut writer, found, |_| held(4, 1), &guard);
    // Rebuilds the one leaf the hint names.
    index.upsert(&mut writer, &5_u64.to_be_bytes(), |_| held(5, 1), &guard);
    let found = index
        .find_for_write(&writer, &6_u64.to_be_bytes(), &mut hint, &guard)
        .expect("present");
    index.replace(&mut writer, found, |_| held(6, 1), &guard);
    let scanned: Vec<(Vec<u8>, u64)> = index
        .range::<std::ops::RangeFull>(.., &guard)
        .map(|(key, held)| (key.to_vec(), held.value))
        .collect();
    let mut expected: Vec<(Vec<u8>, u64)> = (0..10_u64)
        .map(|id| (id * 2, u64::from(id == 2 || id == 3)))
        .chain([(5, 1)])
        .map(|(id, value)| (id.to_be_bytes().to_vec(), value))
        .collect();
    expected.sort();
    assert_eq!(scanned, expected);
}

/// A found slot outlives no node replacement: replacing through it after an insert is
/// refused before anything is published.
#[test]
#[should_panic(expected = "a found slot is used only before the next node replacement")]
fn a_found_slot_is_refused_after_a_node_is_replaced() {
    let (index, mut writer) = even_keys().expect("sorted");
    let guard = crossbeam_epoch::pin();
    let mut hint = cairn_index::LeafHint::default();
    let found = index
        .find_for_write(&writer, &4_u64.to_be_bytes(), &mut hint, &guard)
        .expect("present");
    index.upsert(&mut writer, &5_u64.to_be_bytes(), |_| held(5, 1), &guard);
    index.replace(&mut writer, found, |_| held(4, 1), &guard);
}
