//! The index prototype comparison: the engine's current index structure beside the tree, at
//! one million keys of 16 bytes with 100-byte values, single-threaded, one structure per process
//! (so each RSS figure is its own). Each key's value is a version record as the engine keeps it.
//!
//! Run: `cargo run --release -p cairn-index --example lab -- today|tree|tree+hash|tree+cells|tree-inline|tree+hash-inline [keys]`
//! It prints one line of `name=value` pairs; docs/design.md has the table.
#![expect(
    unsafe_code,
    reason = "the stand-in of today's slot swaps an epoch pointer, like the engine's"
)]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::large_enum_variant,
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "a measuring script: figures are printed as floats, and a failure may panic"
)]

use std::hint::black_box;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use cairn_index::Tree;
use cairn_testkit::rng::SplitMix64;
use crossbeam_epoch::{Atomic, Owned};
use smallvec::SmallVec;

type Key = SmallVec<[u8; 24]>;

/// Counts the bytes the program has allocated and not freed (requested sizes, without the
/// allocator's own overhead), beside the RSS.
struct Counting;

static LIVE_BYTES: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            std::sync::atomic::Ordering::Relaxed,
        );
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One version of a key, as the engine's chain entry holds it.
#[derive(Clone)]
struct Entry {
    version: u64,
    deadline: u64,
    value: Option<Arc<[u8]>>,
}

/// Today: a chain of versions behind a per-key slot, in a hash map and a skip list.
struct Slot(Atomic<SmallVec<[Entry; 2]>>);

impl Slot {
    fn read<R>(&self, read: impl FnOnce(&SmallVec<[Entry; 2]>) -> R) -> R {
        let guard = crossbeam_epoch::pin();
        read(unsafe {
            self.0
                .load(std::sync::atomic::Ordering::Acquire, &guard)
                .deref()
        })
    }
    fn replace(&self, chain: SmallVec<[Entry; 2]>) {
        let guard = crossbeam_epoch::pin();
        let old = self.0.swap(
            Owned::new(chain),
            std::sync::atomic::Ordering::AcqRel,
            &guard,
        );
        unsafe { guard.defer_destroy(old) };
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(unsafe {
            self.0
                .load(
                    std::sync::atomic::Ordering::Relaxed,
                    crossbeam_epoch::unprotected(),
                )
                .into_owned()
        });
    }
}

struct Today {
    index: crossbeam_skiplist::SkipMap<Key, Arc<Slot>>,
    points: papaya::HashMap<Key, Arc<Slot>, foldhash::fast::RandomState>,
}

/// The tree's record: the newest version only (older ones would link from it while a snapshot
/// needs them).
struct Record {
    version: u64,
    deadline: u64,
    value: Option<Arc<[u8]>>,
}

/// The accelerated tree's record: also holds its key, so a hash hit can be checked.
struct KeyedRecord {
    key: Key,
    record: Record,
}

/// A point-read accelerator beside the tree: open addressing over (hash, record pointer)
/// pairs, one writer, readers without locks. Sized up front (no resize in the lab).
struct Points<T: Keyed> {
    slots: Box<
        [(
            std::sync::atomic::AtomicU64,
            std::sync::atomic::AtomicPtr<T>,
        )],
    >,
    mask: usize,
    hasher: foldhash::fast::FixedState,
}

/// What the accelerator points at: something that knows its key.
trait Keyed {
    fn key(&self) -> &[u8];
}

impl Keyed for KeyedRecord {
    fn key(&self) -> &[u8] {
        &self.key
    }
}

/// The cells variant: a stable per-key cell (its key and its newest record) that both the
/// tree and the accelerator point at, so an overwrite swaps the cell's record without a
/// descent.
struct Cell {
    key: Key,
    current: Atomic<Record>,
}

impl Keyed for Cell {
    fn key(&self) -> &[u8] {
        &self.key
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        drop(unsafe {
            self.current
                .load(
                    std::sync::atomic::Ordering::Relaxed,
                    crossbeam_epoch::unprotected(),
                )
                .into_owned()
        });
    }
}

impl Cell {
    fn record<'g>(&self, guard: &'g crossbeam_epoch::Guard) -> &'g Record {
        unsafe {
            self.current
                .load(std::sync::atomic::Ordering::Acquire, guard)
                .deref()
        }
    }
}

impl<T: Keyed> Points<T> {
    fn new(keys: usize) -> Self {
        let size = (keys * 4 / 3).next_power_of_two();
        Points {
            slots: (0..size).map(|_| Default::default()).collect(),
            mask: size - 1,
            hasher: foldhash::fast::FixedState::with_seed(7),
        }
    }

    fn tag(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key) | 1
    }

    /// The slot holding `key`, or the empty one where it would go.
    fn find(&self, key: &[u8]) -> (usize, bool) {
        let tag = self.tag(key);
        let mut index = tag as usize & self.mask;
        loop {
            let (slot_tag, record) = &self.slots[index];
            match slot_tag.load(std::sync::atomic::Ordering::Acquire) {
                0 => return (index, false),
                found if found == tag => {
                    let record = record.load(std::sync::atomic::Ordering::Acquire);
                    if unsafe { &*record }.key() == key {
                        return (index, true);
                    }
                }
                _ => {}
            }
            index = (index + 1) & self.mask;
        }
    }

    fn get(&self, key: &[u8]) -> Option<&T> {
        let (index, found) = self.find(key);
        found.then(|| unsafe {
            &*self.slots[index]
                .1
                .load(std::sync::atomic::Ordering::Acquire)
        })
    }

    fn set(&self, key: &[u8], record: *const T) {
        let (index, found) = self.find(key);
        let (tag, slot) = &self.slots[index];
        slot.store(record.cast_mut(), std::sync::atomic::Ordering::Release);
        if !found {
            tag.store(self.tag(key), std::sync::atomic::Ordering::Release);
        }
    }
}

/// A one-allocation version record: the value inline, with a reference count so a reader's
/// value can be a handle into the record instead of a copy (modelled: a read takes and drops a
/// reference). With `KEYED`, the key is inline too, for the accelerator to check a hit.
struct InlineRecord<const KEYED: bool> {
    refs: std::sync::atomic::AtomicU32,
    len: u32,
    version: u64,
    key: [u8; 16],
    #[expect(
        dead_code,
        reason = "what the record carries; a read hands out a handle, as today's reads do"
    )]
    bytes: [u8; 100],
}

/// The same record without a key: 116 bytes.
struct InlineValue {
    refs: std::sync::atomic::AtomicU32,
    len: u32,
    version: u64,
    #[expect(
        dead_code,
        reason = "what the record carries; a read hands out a handle, as today's reads do"
    )]
    bytes: [u8; 100],
}

impl cairn_index::Keyed for InlineRecord<true> {
    fn key(&self) -> &[u8] {
        &self.key
    }
}

fn inline_value(version: u64, value: &[u8]) -> InlineValue {
    let mut bytes = [0u8; 100];
    bytes.copy_from_slice(&value[..100]);
    InlineValue {
        refs: 1.into(),
        len: 100,
        version,
        bytes,
    }
}

fn inline_record(key: &[u8], version: u64, value: &[u8]) -> InlineRecord<true> {
    let mut bytes = [0u8; 100];
    bytes.copy_from_slice(&value[..100]);
    let mut inline_key = [0u8; 16];
    inline_key.copy_from_slice(&key[..16]);
    InlineRecord {
        refs: 1.into(),
        len: 100,
        version,
        key: inline_key,
        bytes,
    }
}

/// What a read of an inline record costs beyond finding it: a reference taken and dropped.
fn read_handle(refs: &std::sync::atomic::AtomicU32, len: u32) -> usize {
    refs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    refs.fetch_sub(1, std::sync::atomic::Ordering::Release);
    len as usize
}

enum Structure {
    Today(Today),
    TreeInline(Tree<InlineValue>, cairn_index::Writer),
    AcceleratedInline(cairn_index::Index<InlineRecord<true>>, cairn_index::Writer),
    Tree(Tree<Record>, cairn_index::Writer),
    Accelerated(Tree<KeyedRecord>, cairn_index::Writer, Points<KeyedRecord>),
    Cells(Tree<Cell>, cairn_index::Writer, Points<Cell>),
}

impl Structure {
    fn new(kind: &str) -> Self {
        match kind {
            "today" => Structure::Today(Today {
                index: crossbeam_skiplist::SkipMap::new(),
                points: papaya::HashMap::builder()
                    .hasher(foldhash::fast::RandomState::default())
                    .build(),
            }),
            "tree+hash" => {
                let (tree, writer) = Tree::new();
                Structure::Accelerated(tree, writer, Points::new(1 << 20))
            }
            "tree-inline" => {
                let (tree, writer) = Tree::new();
                Structure::TreeInline(tree, writer)
            }
            "tree+hash-inline" => {
                let (index, writer) = cairn_index::Index::new();
                Structure::AcceleratedInline(index, writer)
            }
            "tree+cells" => {
                let (tree, writer) = Tree::new();
                Structure::Cells(tree, writer, Points::new(1 << 20))
            }
            _ => {
                let (tree, writer) = Tree::new();
                Structure::Tree(tree, writer)
            }
        }
    }

    fn bulk(kind: &str, sorted: &[(Vec<u8>, Arc<[u8]>)]) -> Self {
        match kind {
            "today" => {
                let mut structure = Structure::new(kind);
                for (key, value) in sorted {
                    structure.put(key, value.clone(), 1);
                }
                structure
            }
            "tree+hash" => {
                let records = sorted.iter().map(|(key, value)| {
                    let record = Record {
                        version: 1,
                        deadline: u64::MAX,
                        value: Some(value.clone()),
                    };
                    (
                        key.as_slice(),
                        KeyedRecord {
                            key: Key::from_slice(key),
                            record,
                        },
                    )
                });
                let (tree, writer) = Tree::from_sorted(records).expect("sorted");
                let points = Points::new(sorted.len());
                let guard = crossbeam_epoch::pin();
                for (key, record) in tree.range::<(Bound<&[u8]>, Bound<&[u8]>)>(
                    (Bound::Unbounded, Bound::Unbounded),
                    &guard,
                ) {
                    points.set(key, record);
                }
                drop(guard);
                Structure::Accelerated(tree, writer, points)
            }
            "tree-inline" => {
                let records = sorted
                    .iter()
                    .map(|(key, value)| (key.as_slice(), inline_value(1, value)));
                let (tree, writer) = Tree::from_sorted(records).expect("sorted");
                Structure::TreeInline(tree, writer)
            }
            "tree+hash-inline" => {
                let records = sorted
                    .iter()
                    .map(|(key, value)| inline_record(key, 1, value));
                let (index, writer) = cairn_index::Index::from_sorted(records).expect("sorted");
                Structure::AcceleratedInline(index, writer)
            }
            "tree+cells" => {
                let cells = sorted.iter().map(|(key, value)| {
                    let record = Record {
                        version: 1,
                        deadline: u64::MAX,
                        value: Some(value.clone()),
                    };
                    (
                        key.as_slice(),
                        Cell {
                            key: Key::from_slice(key),
                            current: Atomic::new(record),
                        },
                    )
                });
                let (tree, writer) = Tree::from_sorted(cells).expect("sorted");
                let points = Points::new(sorted.len());
                let guard = crossbeam_epoch::pin();
                for (key, cell) in tree.range::<(Bound<&[u8]>, Bound<&[u8]>)>(
                    (Bound::Unbounded, Bound::Unbounded),
                    &guard,
                ) {
                    points.set(key, cell);
                }
                drop(guard);
                Structure::Cells(tree, writer, points)
            }
            _ => {
                let records = sorted.iter().map(|(key, value)| {
                    (
                        key.as_slice(),
                        Record {
                            version: 1,
                            deadline: u64::MAX,
                            value: Some(value.clone()),
                        },
                    )
                });
                let (tree, writer) = Tree::from_sorted(records).expect("sorted");
                Structure::Tree(tree, writer)
            }
        }
    }

    fn put(&mut self, key: &[u8], value: Arc<[u8]>, version: u64) {
        let entry = Entry {
            version,
            deadline: u64::MAX,
            value: Some(value),
        };
        match self {
            Structure::Today(today) => {
                let points = today.points.pin();
                if let Some(slot) = points.get(key) {
                    // The engine's successor: the new entry over the old head, pruned later.
                    let chain = slot.read(|chain| {
                        let mut next = SmallVec::new();
                        next.push(entry);
                        next.extend(chain.first().cloned());
                        next
                    });
                    slot.replace(chain);
                } else {
                    let slot = Arc::new(Slot(Atomic::new(SmallVec::from_elem(entry, 1))));
                    today.index.insert(Key::from_slice(key), Arc::clone(&slot));
                    points.insert(Key::from_slice(key), slot);
                }
            }
            Structure::Tree(tree, writer) => {
                let Entry {
                    version,
                    deadline,
                    value,
                } = entry;
                let guard = crossbeam_epoch::pin();
                let make = |_: Option<&Record>| Record {
                    version,
                    deadline,
                    value,
                };
                tree.upsert(writer, key, make, &guard);
            }
            Structure::Accelerated(tree, writer, points) => {
                let Entry {
                    version,
                    deadline,
                    value,
                } = entry;
                let record = Record {
                    version,
                    deadline,
                    value,
                };
                let guard = crossbeam_epoch::pin();
                let make = |_: Option<&KeyedRecord>| KeyedRecord {
                    key: Key::from_slice(key),
                    record,
                };
                let (published, _) = tree.upsert(writer, key, make, &guard);
                points.set(key, published);
            }
            Structure::TreeInline(tree, writer) => {
                let guard = crossbeam_epoch::pin();
                let bytes = entry.value.expect("a put has a value");
                tree.upsert(writer, key, |_| inline_value(entry.version, &bytes), &guard);
            }
            Structure::AcceleratedInline(index, writer) => {
                let guard = crossbeam_epoch::pin();
                let bytes = entry.value.expect("a put has a value");
                index.upsert(
                    writer,
                    key,
                    |_| inline_record(key, entry.version, &bytes),
                    &guard,
                );
            }
            Structure::Cells(tree, writer, points) => {
                let Entry {
                    version,
                    deadline,
                    value,
                } = entry;
                let record = Record {
                    version,
                    deadline,
                    value,
                };
                if let Some(cell) = points.get(key) {
                    let guard = crossbeam_epoch::pin();
                    let old = cell.current.swap(
                        Owned::new(record),
                        std::sync::atomic::Ordering::AcqRel,
                        &guard,
                    );
                    unsafe { guard.defer_destroy(old) };
                } else {
                    tree.insert(
                        writer,
                        key,
                        Cell {
                            key: Key::from_slice(key),
                            current: Atomic::new(record),
                        },
                    );
                    let guard = crossbeam_epoch::pin();
                    points.set(key, tree.get(key, &guard).expect("just written"));
                }
            }
        }
    }

    fn get(&self, key: &[u8]) -> usize {
        match self {
            Structure::Today(today) => today.points.pin().get(key).map_or(0, |slot| {
                slot.read(|chain| {
                    chain
                        .first()
                        .and_then(|e| e.value.as_ref())
                        .map_or(0, |v| v.len())
                })
            }),
            Structure::Tree(tree, _) => {
                let guard = crossbeam_epoch::pin();
                tree.get(key, &guard)
                    .and_then(|record| record.value.as_ref())
                    .map_or(0, |v| v.len())
            }
            Structure::TreeInline(tree, _) => {
                let guard = crossbeam_epoch::pin();
                tree.get(key, &guard)
                    .map_or(0, |record| read_handle(&record.refs, record.len))
            }
            Structure::AcceleratedInline(index, _) => {
                let guard = crossbeam_epoch::pin();
                index
                    .get(key, &guard)
                    .map_or(0, |record| read_handle(&record.refs, record.len))
            }
            Structure::Cells(_, _, points) => {
                let guard = crossbeam_epoch::pin();
                points
                    .get(key)
                    .and_then(|cell| cell.record(&guard).value.as_ref())
                    .map_or(0, |v| v.len())
            }
            Structure::Accelerated(_, _, points) => {
                let _guard = crossbeam_epoch::pin();
                points
                    .get(key)
                    .and_then(|keyed| keyed.record.value.as_ref())
                    .map_or(0, |v| v.len())
            }
        }
    }

    /// Reads `count` entries from `start`, cloning each value as a scan returns it.
    fn scan(&self, start: &[u8], count: usize) -> usize {
        let mut total = 0;
        match self {
            Structure::Today(today) => {
                for entry in today
                    .index
                    .range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
                    .take(count)
                {
                    total += entry.value().read(|chain| {
                        chain
                            .first()
                            .and_then(|e| e.value.clone())
                            .map_or(0, |v| v.len())
                    });
                }
            }
            Structure::Tree(tree, _) => {
                let guard = crossbeam_epoch::pin();
                for (_, record) in tree
                    .range((Bound::Included(start), Bound::Unbounded), &guard)
                    .take(count)
                {
                    total += record.value.clone().map_or(0, |v| {
                        v.len() + usize::from(record.version > 0 && record.deadline > 0)
                    });
                }
            }
            Structure::TreeInline(tree, _) => {
                let guard = crossbeam_epoch::pin();
                for (_, record) in tree
                    .range((Bound::Included(start), Bound::Unbounded), &guard)
                    .take(count)
                {
                    total +=
                        read_handle(&record.refs, record.len) + usize::from(record.version == 0);
                }
            }
            Structure::AcceleratedInline(index, _) => {
                let guard = crossbeam_epoch::pin();
                for (_, record) in index
                    .range((Bound::Included(start), Bound::Unbounded), &guard)
                    .take(count)
                {
                    total +=
                        read_handle(&record.refs, record.len) + usize::from(record.version == 0);
                }
            }
            Structure::Cells(tree, _, _) => {
                let guard = crossbeam_epoch::pin();
                for (_, cell) in tree
                    .range((Bound::Included(start), Bound::Unbounded), &guard)
                    .take(count)
                {
                    total += cell.record(&guard).value.clone().map_or(0, |v| v.len());
                }
            }
            Structure::Accelerated(tree, _, _) => {
                let guard = crossbeam_epoch::pin();
                for (_, keyed) in tree
                    .range((Bound::Included(start), Bound::Unbounded), &guard)
                    .take(count)
                {
                    total += keyed.record.value.clone().map_or(0, |v| v.len());
                }
            }
        }
        total
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

fn key_of(id: u64) -> Vec<u8> {
    format!("{:016x}", id.wrapping_mul(0x9E37_79B9_7F4A_7C15)).into_bytes()
}

/// Nanoseconds per operation: the median of five rounds of `ops` operations.
fn per_op(ops: usize, mut round: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            round();
            start.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "tree".into());
    let keys: usize = args.next().map_or(1_000_000, |n| n.parse().unwrap());
    let value: Arc<[u8]> = Arc::from(vec![7u8; 100]);
    let ids: Vec<u64> = SplitMix64::new(1)
        .permutation(keys)
        .into_iter()
        .map(|id| id as u64)
        .collect();
    let key_list: Vec<Vec<u8>> = ids.iter().map(|&id| key_of(id)).collect();

    let before = rss_bytes();
    let live_before = LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed);
    let mut structure = Structure::new(&kind);
    let fill_start = Instant::now();
    // Each put brings its own value, as a caller's put does.
    let flush_every: usize = std::env::var("LAB_FLUSH_EVERY")
        .ok()
        .map_or(usize::MAX, |n| n.parse().unwrap());
    for (done, key) in key_list.iter().enumerate() {
        structure.put(key, Arc::from(&value[..]), 1);
        if done % flush_every == 0 {
            crossbeam_epoch::pin().flush();
        }
    }
    let fill = fill_start.elapsed().as_nanos() as f64 / keys as f64;
    // Let deferred frees run before measuring memory.
    for _ in 0..64 {
        crossbeam_epoch::pin().flush();
    }
    let bytes_per_key = (rss_bytes() - before) as f64 / keys as f64;
    let live_per_key =
        (LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed) - live_before) as f64 / keys as f64;
    if let Structure::Tree(tree, _) = &structure {
        eprintln!("{:?}", tree.shape());
    }

    let mut rng = SplitMix64::new(2);
    let probes: Vec<&[u8]> = (0..keys)
        .map(|_| key_list[rng.below(keys)].as_slice())
        .collect();
    let get = per_op(keys, || {
        for key in &probes {
            black_box(structure.get(key));
        }
    });
    let mut version = 1;
    let overwrite = per_op(keys, || {
        version += 1;
        for key in &probes {
            structure.put(key, Arc::from(&value[..]), version);
        }
    });
    let scans = 2_000;
    let scan = per_op(scans, || {
        for key in probes.iter().take(scans) {
            black_box(structure.scan(key, 1_000));
        }
    });
    let walk = per_op(1, || {
        black_box(structure.scan(b"", usize::MAX));
    }) / 1e6;
    let drop_start = Instant::now();
    drop(structure);
    let close = drop_start.elapsed().as_secs_f64() * 1e3;

    let mut sorted: Vec<(Vec<u8>, Arc<[u8]>)> = key_list
        .iter()
        .map(|key| (key.clone(), Arc::from(&value[..])))
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let bulk_start = Instant::now();
    let bulk = Structure::bulk(&kind, &sorted);
    let bulk_ms = bulk_start.elapsed().as_secs_f64() * 1e3;

    black_box(bulk.get(&sorted[0].0));
    drop(bulk);

    println!(
        "structure={kind} keys={keys} bytes_per_key={bytes_per_key:.0} live_bytes_per_key={live_per_key:.0} fill_ns={fill:.0} get_ns={get:.0} \
         overwrite_ns={overwrite:.0} scan_1000_us={:.1} walk_ms={walk:.1} bulk_load_ms={bulk_ms:.0} drop_ms={close:.0}",
        scan / 1e3
    );
}
