//! Readers on other threads while one writer inserts, overwrites and removes: a key that is
//! never removed is always found with a value that belongs to it, and every scan is strictly
//! ascending. Bounded: the writer does a fixed number of operations.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cairn_index::Tree;
use cairn_testkit::rng::SplitMix64;

/// An id below `2 * bound + 1`, as the tree's 4-byte key type.
fn draw(rng: &mut SplitMix64, bound: usize) -> u32 {
    u32::try_from(rng.below(bound)).unwrap_or(u32::MAX)
}

#[test]
fn readers_see_a_consistent_tree_while_one_writer_changes_it() {
    let (tree, mut writer) = Tree::<(u32, u64)>::new();
    // Even ids stay forever; odd ids come and go.
    for id in (0..4_000u32).step_by(2) {
        tree.insert(&mut writer, &id.to_be_bytes(), (id, 0));
    }
    let tree = Arc::new(tree);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|reader| {
            let tree = Arc::clone(&tree);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut rng = SplitMix64::new(reader);
                let mut rounds = 0u64;
                while !done.load(Ordering::Acquire) || rounds < 100 {
                    rounds += 1;
                    let guard = crossbeam_epoch::pin();
                    let id = draw(&mut rng, 2_000) * 2;
                    let found = tree.get(&id.to_be_bytes(), &guard).copied();
                    assert_eq!(
                        found.map(|(owner, _)| owner),
                        Some(id),
                        "a permanent key went missing"
                    );
                    let start = id.to_be_bytes();
                    let mut last: Option<Vec<u8>> = None;
                    let mut permanent = 0;
                    for (key, (owner, _)) in tree
                        .range(
                            (
                                std::ops::Bound::Included(&start[..]),
                                std::ops::Bound::Unbounded,
                            ),
                            &guard,
                        )
                        .take(200)
                    {
                        assert_eq!(key, owner.to_be_bytes(), "a value under the wrong key");
                        assert!(
                            last.as_deref().is_none_or(|last| last < key),
                            "scan out of order"
                        );
                        last = Some(key.to_vec());
                        permanent += usize::from(owner % 2 == 0);
                    }
                    // Every permanent key between `id` and the end of the scan was seen.
                    if let Some(last) = last {
                        let last_id = u32::from_be_bytes(last.try_into().expect("4-byte key"));
                        assert_eq!(
                            permanent,
                            (last_id - id) as usize / 2 + 1,
                            "a scan skipped a key"
                        );
                    }
                }
                rounds
            })
        })
        .collect();
    let mut rng = SplitMix64::new(99);
    for round in 0..200_000u64 {
        let id = draw(&mut rng, 2_000) * 2 + 1;
        if rng.below(2) == 0 {
            tree.insert(&mut writer, &id.to_be_bytes(), (id, round));
        } else {
            tree.remove(&mut writer, &id.to_be_bytes());
        }
        if round % 3 == 0 {
            let even = draw(&mut rng, 2_000) * 2;
            tree.insert(&mut writer, &even.to_be_bytes(), (even, round));
        }
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().expect("reader panicked") >= 100);
    }
}
