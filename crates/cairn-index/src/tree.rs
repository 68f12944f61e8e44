//! The tree: a B+tree whose nodes are immutable once published, changed by one writer through
//! copy-on-write, and read by any number of threads without locks.
//!
//! **Shape.** Leaves hold up to [`LEAF_MAX_ENTRIES`] keys (and at most about
//! [`LEAF_MAX_BYTES`] of key bytes) inline, each with one atomic pointer to its value. A value
//! is any `crossbeam_epoch::Pointable` type, so it may size its own allocation: the tree
//! allocates it (`Pointable::init`) as it publishes it, and the collector frees it
//! (`Pointable::drop`) once no reader can reach it. Inner nodes hold a first child, then
//! separators each with the child to its right; a separator is the first key of that child's
//! subtree. Every leaf is at the same depth.
//!
//! **Writes** (one writer, proved by `&mut Writer`):
//! - replacing the value of a key that exists swaps that key's value pointer in its leaf: no
//!   node changes;
//! - inserting or removing a key builds a new leaf and stores it in its parent's child slot;
//!   only a split or a merge copies the parent, and so on up to the root;
//! - filling an empty tree with ascending keys builds the whole tree bottom-up, unpublished,
//!   and swaps it in for the empty root in one store (`Tree::fill_empty_then`).
//!
//! Replaced nodes and values are freed through `crossbeam-epoch` once no pinned reader can
//! hold them. A replaced node is freed *shallowly*: its keys and its arrays of pointers go, but
//! the values and children it points to are shared with its successor and stay.
//!
//! **Reads** pin an epoch guard and descend from the root. A reader that loads a node just
//! before the writer replaces it keeps reading that node: it holds every key and value as they
//! were when it was replaced, which is never older than the moment the reader started. That is
//! what the engine's MVCC needs: a commit publishes its index changes before it makes its
//! version visible, so a reader that sees a version sees every change up to it.
//!
//! The safety argument every `unsafe` block relies on:
//! 1. No node or value pointer in the tree is ever null: the root is set at construction,
//!    every child and value slot is filled when its node is built, and a slot is only ever
//!    overwritten with another non-null pointer.
//! 2. Anything unlinked from the tree (a node, or a value) is handed to `defer_destroy` on a
//!    guard of the default collector, after it was unlinked. Readers pin that same collector
//!    for as long as they hold a reference (the references they get are bound to their guard),
//!    so nothing a reader can reach is freed under it.
//! 3. Each value and node is owned by exactly one of: the tree (reachable from the root), or
//!    the collector (deferred once, when it was unlinked). A replaced node shares its children
//!    and values with its successor, so dropping it must not free them: `Atomic` never frees
//!    its pointee on drop, and nodes have no `Drop` of their own.
//! 4. `Drop for Tree` has `&mut self`: no reader can hold a reference into the tree (they
//!    borrow it), so it frees everything still reachable, exactly once, by (3).

use std::cmp::Ordering as KeyOrdering;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_epoch::{Atomic, Guard, Owned, Pointable, Shared};
use smallvec::SmallVec;

use crate::keys::Keys;
use crate::model;

/// Most keys a leaf holds.
pub const LEAF_MAX_ENTRIES: usize = 64;
/// Most key bytes a leaf holds before it splits (one larger key may exceed it alone).
pub const LEAF_MAX_BYTES: usize = 4096;
/// Most children an inner node holds.
pub const INNER_MAX_CHILDREN: usize = 64;
/// A leaf left with fewer keys than this after a removal merges with a sibling if they fit.
const LEAF_MIN_ENTRIES: usize = LEAF_MAX_ENTRIES / 4;
/// How full a bulk load packs its leaves and inner nodes: room for a few inserts before the
/// first split.
const BULK_FILL_ENTRIES: usize = LEAF_MAX_ENTRIES * 7 / 8;
const BULK_FILL_CHILDREN: usize = INNER_MAX_CHILDREN * 7 / 8;

/// A node: immutable once published, except for the pointers in its slots.
enum Node<V: ?Sized + Pointable> {
    /// Keys and their values.
    Leaf(Keys<V>),
    Inner(Inner<V>),
}

/// `first` holds the keys below the first separator; `seps.item(i)` the keys from separator `i`
/// up to the next one.
struct Inner<V: ?Sized + Pointable> {
    first: Atomic<Node<V>>,
    seps: Keys<Node<V>>,
}

/// A child list being rebuilt: each child with the separator before it (`None` for the first).
type Children<'a, V> = Vec<(Option<&'a [u8]>, Atomic<Node<V>>)>;

impl<V: ?Sized + Pointable> Inner<V> {
    fn children_len(&self) -> usize {
        self.seps.len() + 1
    }

    /// The child whose keys may include `key`.
    fn route(&self, key: &[u8]) -> usize {
        match self.seps.search(key) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }

    fn child<'g>(&self, index: usize, guard: &'g Guard) -> Shared<'g, Node<V>> {
        debug_assert!(index < self.children_len());
        let slot = match index.checked_sub(1) {
            None => Some(&self.first),
            Some(sep) => self.seps.item(sep),
        };
        slot.map_or(Shared::null(), |slot| slot.load(Ordering::Acquire, guard))
    }

    fn child_slot(&self, index: usize) -> Option<&Atomic<Node<V>>> {
        match index.checked_sub(1) {
            None => Some(&self.first),
            Some(sep) => self.seps.item(sep),
        }
    }

    /// Copies of the children, each with the separator before it.
    fn children<'a>(&'a self, guard: &'a Guard) -> Children<'a, V> {
        let mut children = Vec::with_capacity(self.children_len() + 1);
        children.push((
            None,
            Atomic::from(self.first.load(Ordering::Acquire, guard)),
        ));
        children.extend(
            self.seps
                .copies(0..self.seps.len(), guard)
                .map(|(key, child)| (Some(key), child)),
        );
        children
    }

    /// An inner node of `children` (at least one; the first one's separator is ignored).
    fn build(children: Children<'_, V>) -> Inner<V> {
        let mut children = children.into_iter();
        let first = children
            .next()
            .map_or_else(Atomic::null, |(_, child)| child);
        let seps = Keys::build(children.map(|(key, child)| (key.unwrap_or_default(), child)));
        Inner { first, seps }
    }
}

/// Refuses a guard of another collector: the tree defers its frees to the default collector,
/// which knows nothing of a reader pinned elsewhere. (A guard with no collector comes from
/// `crossbeam_epoch::unprotected`, whose caller has promised in `unsafe` code that nothing
/// is freed under it.)
pub(crate) fn check_guard(guard: &Guard) {
    assert!(
        guard
            .collector()
            .is_none_or(|collector| collector == crossbeam_epoch::default_collector()),
        "the index is read under guards of the default epoch collector (crossbeam_epoch::pin)"
    );
}

/// Loads a node reference from a pointer read out of the tree under `guard`.
fn deref<V: ?Sized + Pointable>(node: Shared<'_, Node<V>>) -> &Node<V> {
    model::step();
    debug_assert!(!node.is_null(), "tree pointers are never null");
    // SAFETY: (1) the pointer is non-null and was read from the tree; (2) it stays allocated
    // while `guard` is pinned, and the reference is bound to the guard's lifetime.
    unsafe { node.deref() }
}

/// An ordered map from byte strings to `V`, for one writer and lock-free readers.
pub struct Tree<V: ?Sized + Pointable + Send + Sync + 'static> {
    root: Atomic<Node<V>>,
    len: AtomicUsize,
    id: usize,
    /// Counts the writer's node replacements: a [`LeafHint`] or [`Found`] taken at one count
    /// names a live leaf for as long as the count stays there. Only the writer changes it, so
    /// `Relaxed` suffices.
    shape: AtomicU64,
}

/// The leaf a writer last found a key in, kept across writes that only replace values (no
/// node changes then), so a run of ascending keys that share a leaf costs one descent between
/// them. Any write that replaces a node makes it stale, and a stale hint is never used.
pub struct LeafHint<'g, V: ?Sized + Pointable> {
    leaf: Option<(&'g Keys<V>, u64)>,
}

impl<V: ?Sized + Pointable> Default for LeafHint<'_, V> {
    fn default() -> Self {
        LeafHint { leaf: None }
    }
}

impl<V: ?Sized + Pointable> std::fmt::Debug for LeafHint<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafHint")
            .field("shape", &self.leaf.map(|(_, shape)| shape))
            .finish()
    }
}

/// A key the writer found, with its value and the slot that holds it: what
/// [`Index::replace`](crate::Index::replace) swaps without a second descent. Valid until the
/// next node replacement, which the replacement checks.
pub struct Found<'g, V: ?Sized + Pointable> {
    slot: &'g Atomic<V>,
    value: &'g V,
    shape: u64,
}

impl<'g, V: ?Sized + Pointable> Found<'g, V> {
    /// The value the key holds now.
    pub fn value(&self) -> &'g V {
        self.value
    }
}

/// The right to change one [`Tree`]: there is exactly one per tree, so holding it `&mut`
/// proves no other write runs.
#[derive(Debug)]
pub struct Writer {
    id: usize,
}

/// What [`Tree::from_sorted`] refuses: keys not strictly ascending.
#[derive(Debug, PartialEq, Eq)]
pub struct NotSorted {
    /// The position of the first key not above the one before it.
    pub position: usize,
}

impl std::fmt::Display for NotSorted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key {} is not above the key before it", self.position)
    }
}

impl std::error::Error for NotSorted {}

/// What [`Tree::shape`] counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Leaves.
    pub leaves: usize,
    /// Inner nodes.
    pub inner_nodes: usize,
    /// Levels, the leaves' included.
    pub depth: usize,
    /// Bytes of keys and separators held.
    pub key_bytes: usize,
}

static NEXT_TREE_ID: AtomicUsize = AtomicUsize::new(0);

/// A writer's way down: each inner node passed (its pointer, itself, the child taken).
type Path<'g, V> = SmallVec<[(Shared<'g, Node<V>>, &'g Inner<V>, usize); 8]>;

/// A merge's result: the parent's successor (or the merged leaf, as the new root), and the
/// sibling it absorbed, to be freed.
type Merged<'g, V> = (Owned<Node<V>>, Shared<'g, Node<V>>);

/// Nodes a change unlinks, freed once the change is published.
type Retired<'g, V> = SmallVec<[Shared<'g, Node<V>>; 8]>;

/// What replaces one child of an inner node after a change below it.
enum Replacement<V: ?Sized + Pointable> {
    One(Owned<Node<V>>),
    Split(Owned<Node<V>>, Vec<u8>, Owned<Node<V>>),
}

fn empty_leaf<V: ?Sized + Pointable>() -> Owned<Node<V>> {
    Owned::new(Node::Leaf(Keys::empty()))
}

impl<V: ?Sized + Pointable + Send + Sync + 'static> Tree<V> {
    /// An empty tree and its one writer.
    pub fn new() -> (Tree<V>, Writer) {
        Tree::with_root(empty_leaf(), 0)
    }

    fn with_root(root: Owned<Node<V>>, len: usize) -> (Tree<V>, Writer) {
        let id = NEXT_TREE_ID.fetch_add(1, Ordering::Relaxed);
        let tree = Tree {
            root: Atomic::from(root),
            len: AtomicUsize::new(len),
            id,
            shape: AtomicU64::new(0),
        };
        (tree, Writer { id })
    }

    /// A tree built bottom-up from strictly ascending `(key, value)` pairs, without a descent
    /// per key: what recovery and snapshot loading use.
    pub fn from_sorted<K: AsRef<[u8]>>(
        entries: impl IntoIterator<Item = (K, V::Init)>,
    ) -> Result<(Tree<V>, Writer), NotSorted> {
        let entries = entries
            .into_iter()
            .map(|(key, value)| (key, Owned::<V>::init(value)));
        Self::from_sorted_owned(entries)
    }

    /// `from_sorted` of values already allocated.
    pub(crate) fn from_sorted_owned<K: AsRef<[u8]>>(
        entries: impl IntoIterator<Item = (K, Owned<V>)>,
    ) -> Result<(Tree<V>, Writer), NotSorted> {
        let (root, count) = Self::build_sorted(entries)?;
        Ok(Tree::with_root(root, count))
    }

    /// Fills this tree, which must be empty, with `values` built bottom-up as `from_sorted`
    /// does, and calls `published` with each value once all are published. Hands `values`
    /// back untouched when the tree is not empty or their keys (`key_of`) are not strictly
    /// ascending: the caller inserts them leaf by leaf instead.
    pub(crate) fn fill_empty_then<'g>(
        &'g self,
        writer: &mut Writer,
        values: Vec<Owned<V>>,
        key_of: impl Fn(&V) -> &[u8],
        mut published: impl FnMut(&'g V),
        guard: &'g Guard,
    ) -> Result<usize, Vec<Owned<V>>> {
        check_guard(guard);
        self.check_writer(writer);
        let ascending = values
            .windows(2)
            .all(|pair| matches!(pair, [left, right] if key_of(left) < key_of(right)));
        if !self.is_empty() || !ascending {
            return Err(values);
        }
        let pairs = values
            .into_iter()
            .map(|value| (SmallVec::<[u8; 32]>::from_slice(key_of(&value)), value));
        let Ok((root, count)) = Self::build_sorted(pairs) else {
            // Checked above: the keys ascend, so the build cannot refuse them.
            return Ok(0);
        };
        model::step();
        self.shape.fetch_add(1, Ordering::Relaxed);
        let old = self.root.swap(root, Ordering::AcqRel, guard);
        self.len.store(count, Ordering::Release);
        // SAFETY: (2) the old root, an empty leaf, is unlinked by the swap just made.
        unsafe { guard.defer_destroy(old) };
        for (_, value) in self.range::<std::ops::RangeFull>(.., guard) {
            published(value);
        }
        Ok(count)
    }

    /// The root of a tree of strictly ascending `entries`, built bottom-up, and their count.
    fn build_sorted<K: AsRef<[u8]>>(
        entries: impl IntoIterator<Item = (K, Owned<V>)>,
    ) -> Result<(Owned<Node<V>>, usize), NotSorted> {
        // Level 0: leaves, each with its first key (the separator before it).
        let mut level: Vec<(Vec<u8>, Owned<Node<V>>)> = Vec::new();
        let mut pending: Vec<(K, Atomic<V>)> = Vec::with_capacity(BULK_FILL_ENTRIES);
        let mut bytes = 0;
        let mut count = 0;
        let flush = |pending: &mut Vec<(K, Atomic<V>)>,
                     level: &mut Vec<(Vec<u8>, Owned<Node<V>>)>| {
            let first = pending
                .first()
                .map(|(key, _)| key.as_ref().to_vec())
                .unwrap_or_default();
            let leaf = Keys::build(
                pending
                    .iter()
                    .map(|(key, value)| (key.as_ref(), value.clone())),
            );
            pending.clear();
            level.push((first, Owned::new(Node::Leaf(leaf))));
        };
        let mut previous: Option<Vec<u8>> = None;
        for (key, value) in entries {
            if previous.as_deref().is_some_and(|last| last >= key.as_ref()) {
                // Free what was built so far: nothing else owns it.
                for (_, atomic) in pending {
                    // SAFETY: (3) these values were never published; this is their only owner.
                    drop(unsafe { atomic.into_owned() });
                }
                drop(value);
                for (_, node) in level {
                    free_subtree(node);
                }
                return Err(NotSorted { position: count });
            }
            if let Some(last) = previous.as_mut() {
                last.clear();
                last.extend_from_slice(key.as_ref());
            } else {
                previous = Some(key.as_ref().to_vec());
            }
            if !pending.is_empty()
                && (pending.len() == BULK_FILL_ENTRIES
                    || bytes + key.as_ref().len() > LEAF_MAX_BYTES)
            {
                flush(&mut pending, &mut level);
                bytes = 0;
            }
            bytes += key.as_ref().len();
            pending.push((key, Atomic::from(value)));
            count += 1;
        }
        if !pending.is_empty() || level.is_empty() {
            flush(&mut pending, &mut level);
        }
        // Inner levels, until one node is left.
        while level.len() > 1 {
            let mut above = Vec::with_capacity(level.len() / BULK_FILL_CHILDREN + 1);
            let mut nodes = level.into_iter().peekable();
            while nodes.peek().is_some() {
                let group: Vec<_> = nodes.by_ref().take(BULK_FILL_CHILDREN).collect();
                let first_key = group
                    .first()
                    .map(|(key, _)| key.clone())
                    .unwrap_or_default();
                let children: Children<'_, V> = group
                    .iter()
                    .map(|(key, _)| Some(key.as_slice()))
                    .zip(group.iter().map(|_| Atomic::null()))
                    .collect();
                let mut inner = Inner::build(children);
                // Now move the owned nodes into the slots built above.
                let mut owned = group.into_iter().map(|(_, node)| node);
                if let Some(node) = owned.next() {
                    inner.first = Atomic::from(node);
                }
                for (index, node) in owned.enumerate() {
                    if let Some(slot) = inner.seps.item(index) {
                        slot.store(node, Ordering::Relaxed);
                    }
                }
                above.push((first_key, Owned::new(Node::Inner(inner))));
            }
            level = above;
        }
        let root = level.pop().map_or_else(empty_leaf, |(_, node)| node);
        Ok((root, count))
    }

    /// The tree's shape, counted by a walk of every node (for memory accounting and tests).
    pub fn shape(&self) -> Shape {
        fn walk<V: ?Sized + Pointable>(
            node: &Node<V>,
            depth: usize,
            shape: &mut Shape,
            guard: &Guard,
        ) {
            shape.depth = shape.depth.max(depth);
            match node {
                Node::Leaf(leaf) => {
                    shape.leaves += 1;
                    shape.key_bytes += leaf.byte_len();
                }
                Node::Inner(inner) => {
                    shape.inner_nodes += 1;
                    shape.key_bytes += inner.seps.byte_len();
                    for child in 0..inner.children_len() {
                        walk(deref(inner.child(child, guard)), depth + 1, shape, guard);
                    }
                }
            }
        }
        let guard = &crossbeam_epoch::pin();
        let mut shape = Shape::default();
        walk(
            deref(self.root.load(Ordering::Acquire, guard)),
            1,
            &mut shape,
            guard,
        );
        shape
    }

    /// Keys in the tree.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// True when the tree holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `key`, if present.
    pub fn get<'g>(&'g self, key: &[u8], guard: &'g Guard) -> Option<&'g V> {
        check_guard(guard);
        let value = self
            .leaf_for(key, guard)
            .find(key)
            .ok()?
            .load(Ordering::Acquire, guard);
        // SAFETY: (1) non-null; (2) it stays allocated while `guard` is pinned.
        unsafe { value.as_ref() }
    }

    fn leaf_for<'g>(&'g self, key: &[u8], guard: &'g Guard) -> &'g Keys<V> {
        let mut node = deref(self.root.load(Ordering::Acquire, guard));
        loop {
            match node {
                Node::Leaf(leaf) => return leaf,
                Node::Inner(inner) => node = deref(inner.child(inner.route(key), guard)),
            }
        }
    }

    /// The entries whose keys lie in `range`, in ascending key order.
    pub fn range<'g, R: RangeBounds<[u8]>>(
        &'g self,
        range: R,
        guard: &'g Guard,
    ) -> Range<'g, V, R> {
        check_guard(guard);
        Range::new(self, range, guard)
    }

    /// Refuses a writer of another tree: two writers on one tree would race.
    pub(crate) fn check_writer(&self, writer: &Writer) {
        assert_eq!(
            writer.id, self.id,
            "a tree's writer belongs to that tree alone"
        );
    }

    /// Sets `key`'s value to `make(current)`. Returns the value now published (for the caller
    /// to keep a pointer to, under `guard`) and true when the key was not present.
    pub fn upsert<'g>(
        &'g self,
        writer: &mut Writer,
        key: &[u8],
        make: impl FnOnce(Option<&V>) -> V::Init,
        guard: &'g Guard,
    ) -> (&'g V, bool) {
        let make = |old: Option<&V>| Owned::<V>::init(make(old));
        self.upsert_then(writer, key, make, |_, _| {}, guard)
    }

    /// `upsert`, calling `published` with the replaced value (if any) and the new one once the
    /// tree holds the new one and before the replaced one is handed to the collector: where a
    /// second structure that points at values (the point table) must be updated, since
    /// nothing may be freed while reachable.
    pub(crate) fn upsert_then<'g>(
        &'g self,
        writer: &mut Writer,
        key: &[u8],
        make: impl FnOnce(Option<&V>) -> Owned<V>,
        published: impl FnOnce(Option<&'g V>, &'g V),
        guard: &'g Guard,
    ) -> (&'g V, bool) {
        check_guard(guard);
        self.check_writer(writer);
        let (path, leaf_ptr, leaf) = self.descend(key, guard);
        let (value, was_new) = match leaf.find(key) {
            Ok(slot) => {
                let current = slot.load(Ordering::Acquire, guard);
                // SAFETY: (1)/(2) as in `get`; only this writer could free it.
                let new = make(unsafe { current.as_ref() }).into_shared(guard);
                model::step();
                let old = slot.swap(new, Ordering::AcqRel, guard);
                model::step();
                // SAFETY: (1) `new` was just allocated, non-null; (2) both are bound to `guard`,
                // and `old` is deferred only below.
                published(unsafe { old.as_ref() }, unsafe { new.deref() });
                // SAFETY: (2) `old` is unlinked now (from the tree, and by `published` from
                // anything else) and deferred exactly once.
                unsafe { guard.defer_destroy(old) };
                (new, false)
            }
            Err(index) => {
                let new = make(None).into_shared(guard);
                let fits =
                    leaf.len() < LEAF_MAX_ENTRIES && leaf.byte_len() + key.len() <= LEAF_MAX_BYTES;
                let appended = index == leaf.len();
                let quick = fits
                    .then(|| leaf.with_inserted(index, key, Atomic::from(new), guard))
                    .flatten();
                let replacement = if let Some(keys) = quick {
                    Replacement::One(Owned::new(Node::Leaf(keys)))
                } else {
                    let mut pairs = Vec::with_capacity(leaf.len() + 1);
                    pairs.extend(leaf.copies(0..index, guard));
                    pairs.push((key, Atomic::from(new)));
                    pairs.extend(leaf.copies(index..leaf.len(), guard));
                    split_leaf(pairs, appended)
                };
                self.publish(path, leaf_ptr, replacement, appended, Retired::new(), guard);
                self.len.fetch_add(1, Ordering::AcqRel);
                // SAFETY: as above.
                published(None, unsafe { new.deref() });
                (new, true)
            }
        };
        // SAFETY: (1) just allocated, non-null; (2) published in the tree and bound to `guard`.
        let value = unsafe { value.deref() };
        (value, was_new)
    }

    /// `key`'s value and slot, for a write that may replace it: the leaf in `hint` first, when
    /// no node was replaced since it was found there, else a descent, whose leaf becomes the
    /// hint. `None` when the key is absent.
    ///
    /// # Panics
    ///
    /// If `writer` belongs elsewhere.
    pub fn find_for_write<'g>(
        &'g self,
        writer: &Writer,
        key: &[u8],
        hint: &mut LeafHint<'g, V>,
        guard: &'g Guard,
    ) -> Option<Found<'g, V>> {
        if let Some(found) = self.find_hinted(writer, key, hint, guard) {
            return Some(found);
        }
        let shape = self.shape.load(Ordering::Relaxed);
        let leaf = self.leaf_for(key, guard);
        hint.leaf = Some((leaf, shape));
        Self::found_in(leaf.find(key).ok()?, shape, guard)
    }

    /// `find_for_write` through the hint alone: `None` when the hint is stale or its leaf does
    /// not hold `key` (which may then be elsewhere in the tree).
    ///
    /// # Panics
    ///
    /// If `writer` belongs elsewhere.
    pub fn find_hinted<'g>(
        &'g self,
        writer: &Writer,
        key: &[u8],
        hint: &LeafHint<'g, V>,
        guard: &'g Guard,
    ) -> Option<Found<'g, V>> {
        check_guard(guard);
        self.check_writer(writer);
        let shape = self.shape.load(Ordering::Relaxed);
        let (leaf, _) = hint.leaf.filter(|(_, at)| *at == shape)?;
        Self::found_in(leaf.find(key).ok()?, shape, guard)
    }

    fn found_in<'g>(slot: &'g Atomic<V>, shape: u64, guard: &'g Guard) -> Option<Found<'g, V>> {
        let current = slot.load(Ordering::Acquire, guard);
        // SAFETY: (1) non-null; (2) only the writer could unlink it, and it stays allocated
        // while `guard` is pinned.
        let value = unsafe { current.as_ref() }?;
        Some(Found { slot, value, shape })
    }

    /// Puts `new` in the slot `found` names, calls `published(old, new)`, then hands the old
    /// value to the collector: `upsert_then` for a key found by `find_for_write`, without the
    /// descent. Returns the new value.
    ///
    /// # Panics
    ///
    /// If `writer` belongs elsewhere, or a node was replaced since `found` was taken (its
    /// slot may then be in a leaf no reader reaches any more).
    #[expect(
        clippy::needless_pass_by_value,
        reason = "taking the found slot by value ends its one use"
    )]
    pub(crate) fn replace_found_then<'g>(
        &'g self,
        writer: &mut Writer,
        found: Found<'g, V>,
        new: Owned<V>,
        published: impl FnOnce(&'g V, &'g V),
        guard: &'g Guard,
    ) -> &'g V {
        check_guard(guard);
        self.check_writer(writer);
        let Found { slot, shape, .. } = found;
        assert_eq!(
            shape,
            self.shape.load(Ordering::Relaxed),
            "a found slot is used only before the next node replacement"
        );
        let new = new.into_shared(guard);
        model::step();
        let old = slot.swap(new, Ordering::AcqRel, guard);
        model::step();
        // SAFETY: (1) `new` was just allocated and `old` came from a slot, both non-null;
        // (2) both are bound to `guard`, and `old` is deferred only below.
        let (old_value, new_value) = unsafe { (old.deref(), new.deref()) };
        published(old_value, new_value);
        // SAFETY: (2) `old` is unlinked now (from the tree, and by `published` from anything
        // else) and deferred exactly once.
        unsafe { guard.defer_destroy(old) };
        new_value
    }

    /// Inserts `values` leaf by leaf: the values bound for one leaf are merged into one copy
    /// of it (two, when it splits), instead of one copy per value. `key_of` gives each value's
    /// key. Ascending keys batch best; any order is correct (a key that is not above the
    /// previous one starts a new leaf's batch). A key already present has its value replaced.
    /// `published` runs for each value (with the one it replaced, if any) once the tree holds
    /// it and before the replaced one goes to the collector. Returns how many keys were new.
    pub(crate) fn insert_batch_then<'g>(
        &'g self,
        writer: &mut Writer,
        values: impl IntoIterator<Item = Owned<V>>,
        key_of: impl Fn(&V) -> &[u8],
        mut published: impl FnMut(Option<&'g V>, &'g V),
        guard: &'g Guard,
    ) -> usize {
        check_guard(guard);
        self.check_writer(writer);
        let key_at = |value: Shared<'g, V>| -> &'g [u8] {
            // SAFETY: (1) each pointer comes from `Owned::new` below, non-null; (2) it is bound
            // to `guard`, and nothing frees it: it is published into the tree, or leaked if
            // this call unwinds first.
            key_of(unsafe { value.deref() })
        };
        let mut values = values.into_iter().map(|value| value.into_shared(guard));
        let mut next = values.next();
        let mut added = 0;
        while let Some(first) = next {
            let (path, leaf_ptr, leaf) = self.descend(key_at(first), guard);
            // Keys at or above the separator right of this leaf belong to another leaf.
            let upper = path.iter().rev().find_map(|(_, inner, child)| {
                (*child < inner.seps.len()).then(|| inner.seps.get(*child))
            });
            let room = LEAF_MAX_ENTRIES.saturating_sub(leaf.len()).max(1);
            let mut bytes = leaf.byte_len();
            let mut batch: Vec<(&'g [u8], Shared<'g, V>)> = Vec::new();
            while let Some(value) = next {
                let key = key_at(value);
                let fits = batch.is_empty()
                    || (batch.len() < room
                        && bytes + key.len() <= LEAF_MAX_BYTES
                        && batch.last().is_some_and(|(last, _)| *last < key)
                        && upper.is_none_or(|upper| key < upper));
                if !fits {
                    break;
                }
                bytes += key.len();
                batch.push((key, value));
                next = values.next();
            }
            // One new key that fits: copy the leaf's runs around it instead of rebuilding it.
            let single = match &batch[..] {
                [(key, value)]
                    if leaf.len() < LEAF_MAX_ENTRIES
                        && leaf.byte_len() + key.len() <= LEAF_MAX_BYTES =>
                {
                    leaf.search(key).err().and_then(|index| {
                        leaf.with_inserted(index, key, Atomic::from(*value), guard)
                    })
                }
                _ => None,
            };
            let mut replaced: SmallVec<[(usize, Shared<'g, V>); 4]> = SmallVec::new();
            let (replacement, appended) = if let Some(keys) = single {
                (Replacement::One(Owned::new(Node::Leaf(keys))), false)
            } else {
                let mut pairs = Vec::with_capacity(leaf.len() + batch.len());
                let mut old = (0..leaf.len()).peekable();
                for (position, (key, value)) in batch.iter().enumerate() {
                    while let Some(&index) = old.peek() {
                        match leaf.get(index).cmp(key) {
                            KeyOrdering::Less => pairs.push(leaf.copy(index, guard)),
                            KeyOrdering::Equal => {
                                if let Some(slot) = leaf.item(index) {
                                    let current = slot.load(Ordering::Acquire, guard);
                                    replaced.push((position, current));
                                }
                            }
                            KeyOrdering::Greater => break,
                        }
                        old.next();
                    }
                    pairs.push((key, Atomic::from(*value)));
                }
                let appended = old.peek().is_none();
                pairs.extend(old.map(|index| leaf.copy(index, guard)));
                (split_leaf(pairs, appended), appended)
            };
            let new_keys = batch.len() - replaced.len();
            self.publish(path, leaf_ptr, replacement, appended, Retired::new(), guard);
            self.len.fetch_add(new_keys, Ordering::AcqRel);
            added += new_keys;
            let mut replaced = replaced.into_iter().peekable();
            for (position, (_, value)) in batch.into_iter().enumerate() {
                let old = replaced
                    .next_if(|(at, _)| *at == position)
                    .map(|(_, old)| old);
                // SAFETY: (1) both non-null; (2) bound to `guard`; `old` is deferred only below.
                published(old.map(|old| unsafe { old.deref() }), unsafe {
                    value.deref()
                });
                if let Some(old) = old {
                    // SAFETY: (2) unlinked from the tree by the publish above, and by
                    // `published` from anything else; deferred once.
                    unsafe { guard.defer_destroy(old) };
                }
            }
        }
        added
    }

    /// Sets `key` to `value`. Returns true when the key was not present.
    pub fn insert(&self, writer: &mut Writer, key: &[u8], value: V::Init) -> bool {
        let guard = &crossbeam_epoch::pin();
        self.upsert(writer, key, |_| value, guard).1
    }

    /// Removes `key`. Returns true when it was present. Anything else that points at the
    /// value (the point table) must have forgotten it before: it goes to the collector here.
    pub fn remove(&self, writer: &mut Writer, key: &[u8]) -> bool {
        self.check_writer(writer);
        let guard = &crossbeam_epoch::pin();
        let (mut path, leaf_ptr, leaf) = self.descend(key, guard);
        let Ok(index) = leaf.search(key) else {
            return false;
        };
        let old_value = leaf
            .item(index)
            .map(|slot| slot.load(Ordering::Acquire, guard));
        if leaf.len() > LEAF_MIN_ENTRIES {
            if let Some(keys) = leaf.without(index, guard) {
                let node = Replacement::One(Owned::new(Node::Leaf(keys)));
                self.publish(path, leaf_ptr, node, false, Retired::new(), guard);
                if let Some(old) = old_value {
                    // SAFETY: (2) as below.
                    unsafe { guard.defer_destroy(old) };
                }
                self.len.fetch_sub(1, Ordering::AcqRel);
                return true;
            }
        }
        let mut pairs: Vec<(&[u8], Atomic<V>)> = Vec::with_capacity(leaf.len());
        pairs.extend(leaf.copies(0..index, guard));
        pairs.extend(leaf.copies(index + 1..leaf.len(), guard));
        let bytes = leaf.byte_len() - key.len();
        let mut replacement = None;
        let mut retired = Retired::new();
        if pairs.len() < LEAF_MIN_ENTRIES {
            if let Some(&(parent_ptr, parent, child)) = path.last() {
                if let Some((node, sibling_ptr)) =
                    self.merge_with_sibling(parent, child, &mut pairs, bytes, guard)
                {
                    path.pop();
                    // Unlinked only once the parent's copy is published: `publish` frees them.
                    retired.push(sibling_ptr);
                    retired.push(leaf_ptr);
                    replacement = Some((parent_ptr, node));
                }
            }
        }
        if replacement.is_none() && pairs.is_empty() && !path.is_empty() {
            // The leaf empties with no sibling to merge into (its parent holds it alone):
            // take the empty subtree out, so scans never walk through empty leaves.
            replacement = Some(Self::without_empty_subtree(
                &mut path,
                leaf_ptr,
                &mut retired,
                guard,
            ));
        }
        let (old, node) =
            replacement.unwrap_or_else(|| (leaf_ptr, Owned::new(Node::Leaf(Keys::build(pairs)))));
        self.publish(path, old, Replacement::One(node), false, retired, guard);
        if let Some(old) = old_value {
            // SAFETY: (2) the value's only slot in the tree is gone with its leaf, and the
            // caller took it out of anything else first; deferred once.
            unsafe { guard.defer_destroy(old) };
        }
        self.len.fetch_sub(1, Ordering::AcqRel);
        true
    }

    /// Takes the subtree that `empty` (a leaf about to lose its last key) leaves empty out of
    /// the nearest ancestor on `path` with other children. Pops `path` up to and including that
    /// ancestor; returns its pointer and its successor, and adds the emptied nodes below it to
    /// `retired`. With no such ancestor the whole tree empties: the root's successor is an
    /// empty leaf.
    fn without_empty_subtree<'g>(
        path: &mut Path<'g, V>,
        empty: Shared<'g, Node<V>>,
        retired: &mut Retired<'g, V>,
        guard: &'g Guard,
    ) -> (Shared<'g, Node<V>>, Owned<Node<V>>) {
        let mut emptied = empty;
        while let Some((parent_ptr, parent, child)) = path.pop() {
            retired.push(emptied);
            if parent.children_len() > 1 {
                // Dropping a child widens its neighbour's range over the keys it held, which
                // are none. (Dropping the first child drops the next one's separator.)
                let mut children = parent.children(guard);
                children.remove(child);
                return (parent_ptr, Owned::new(Node::Inner(Inner::build(children))));
            }
            emptied = parent_ptr;
        }
        (emptied, empty_leaf())
    }

    /// If the leaf at `parent`'s child `child`, about to hold `pairs` (`bytes` of keys), fits
    /// together with a neighbour: the parent's successor with the two merged (the merged leaf
    /// itself when the parent is the root and had two children), and the neighbour's pointer.
    fn merge_with_sibling<'g>(
        &self,
        parent: &'g Inner<V>,
        child: usize,
        pairs: &mut Vec<(&'g [u8], Atomic<V>)>,
        bytes: usize,
        guard: &'g Guard,
    ) -> Option<Merged<'g, V>> {
        let sibling = if child + 1 < parent.children_len() {
            child + 1
        } else {
            child.checked_sub(1)?
        };
        let sibling_ptr = parent.child(sibling, guard);
        let Node::Leaf(neighbour) = deref(sibling_ptr) else {
            return None;
        };
        if pairs.len() + neighbour.len() > LEAF_MAX_ENTRIES
            || bytes + neighbour.byte_len() > LEAF_MAX_BYTES
        {
            return None;
        }
        let theirs = neighbour.copies(0..neighbour.len(), guard);
        let merged = if sibling > child {
            Keys::build(pairs.drain(..).chain(theirs))
        } else {
            Keys::build(theirs.chain(pairs.drain(..)))
        };
        let merged = Owned::new(Node::Leaf(merged));
        if parent.children_len() == 2 && self.is_root_inner(parent, guard) {
            return Some((merged, sibling_ptr));
        }
        let left = child.min(sibling);
        let mut children = parent.children(guard);
        children.remove(left + 1);
        if let Some((_, slot)) = children.get_mut(left) {
            *slot = Atomic::from(merged);
        }
        Some((Owned::new(Node::Inner(Inner::build(children))), sibling_ptr))
    }

    fn is_root_inner(&self, inner: &Inner<V>, guard: &Guard) -> bool {
        match deref(self.root.load(Ordering::Acquire, guard)) {
            Node::Inner(root) => std::ptr::eq(root, inner),
            Node::Leaf(_) => false,
        }
    }

    /// The way down to `key`'s leaf.
    fn descend<'g>(
        &'g self,
        key: &[u8],
        guard: &'g Guard,
    ) -> (Path<'g, V>, Shared<'g, Node<V>>, &'g Keys<V>) {
        let mut path = Path::new();
        let mut pointer = self.root.load(Ordering::Acquire, guard);
        loop {
            match deref(pointer) {
                Node::Leaf(leaf) => return (path, pointer, leaf),
                Node::Inner(inner) => {
                    let child = inner.route(key);
                    path.push((pointer, inner, child));
                    pointer = inner.child(child, guard);
                }
            }
        }
    }

    /// Replaces the node at `old` (reached through `path`) with `replacement`, copying
    /// ancestors only as far up as splits reach, then frees what was unlinked: `old`, every
    /// ancestor it copied, and `retired` (nodes the caller's change unlinks along with `old`).
    /// Nothing is handed to the collector before the one store that unlinks it: a bag the
    /// collector seals early could otherwise be freed while a reader that started after the
    /// seal still reaches the node through the live parent.
    ///
    /// `appended` says the change added a key at the right edge of its leaf: a node that
    /// then splits at the right edge of its parent keeps all it had and hands only the new
    /// piece to its right sibling, so keys inserted in order fill nodes instead of leaving
    /// each half full.
    fn publish<'g>(
        &self,
        mut path: Path<'g, V>,
        mut old: Shared<'g, Node<V>>,
        mut replacement: Replacement<V>,
        appended: bool,
        mut retired: Retired<'g, V>,
        guard: &'g Guard,
    ) {
        self.shape.fetch_add(1, Ordering::Relaxed);
        let retire = |retired: Retired<'g, V>| {
            for node in retired {
                // SAFETY: (2) unlinked by the store just made (or by a copy it published);
                // each node is collected once, by the one change that unlinked it.
                unsafe { guard.defer_destroy(node) };
            }
        };
        loop {
            let Some((parent_ptr, parent, child)) = path.pop() else {
                let root = match replacement {
                    Replacement::One(node) => node,
                    Replacement::Split(left, separator, right) => {
                        let children = vec![
                            (None, Atomic::from(left)),
                            (Some(separator.as_slice()), Atomic::from(right)),
                        ];
                        Owned::new(Node::Inner(Inner::build(children)))
                    }
                };
                model::step();
                self.root.store(root, Ordering::Release);
                model::step();
                retired.push(old);
                retire(retired);
                return;
            };
            match replacement {
                Replacement::One(node) => {
                    model::step();
                    if let Some(slot) = parent.child_slot(child) {
                        slot.store(node, Ordering::Release);
                    }
                    model::step();
                    retired.push(old);
                    retire(retired);
                    return;
                }
                Replacement::Split(left, separator, right) => {
                    let at_right_edge = appended && child + 1 == parent.children_len();
                    let mut children = parent.children(guard);
                    if let Some((_, slot)) = children.get_mut(child) {
                        *slot = Atomic::from(left);
                    }
                    children.insert(child + 1, (Some(separator.as_slice()), Atomic::from(right)));
                    // Unlinked when the parent's copy is published, further up.
                    retired.push(old);
                    replacement = split_inner(children, at_right_edge);
                    old = parent_ptr;
                }
            }
        }
    }
}

/// A leaf of `pairs`, or two halves and the separator between them if it is too big. With
/// `appended` (the last pair is the new key), the left half keeps every old key when they fit.
fn split_leaf<V: ?Sized + Pointable>(
    mut pairs: Vec<(&[u8], Atomic<V>)>,
    appended: bool,
) -> Replacement<V> {
    let bytes: usize = pairs.iter().map(|(key, _)| key.len()).sum();
    // A single key larger than a leaf's bytes stays alone in its leaf: there is nothing to
    // split it from.
    if pairs.len() < 2 || (pairs.len() <= LEAF_MAX_ENTRIES && bytes <= LEAF_MAX_BYTES) {
        return Replacement::One(Owned::new(Node::Leaf(Keys::build(pairs))));
    }
    // Split where half the bytes are on each side, keeping at least one key per half.
    let mut seen = 0;
    let mut middle = pairs.len() / 2;
    for (index, (key, _)) in pairs.iter().enumerate() {
        seen += key.len();
        if seen >= bytes / 2 {
            middle = index + 1;
            break;
        }
    }
    let last_len = pairs.last().map_or(0, |(key, _)| key.len());
    if appended && pairs.len() - 1 <= LEAF_MAX_ENTRIES && bytes - last_len <= LEAF_MAX_BYTES {
        middle = pairs.len() - 1;
    }
    let middle = middle.clamp(1, pairs.len().saturating_sub(1).max(1));
    let right = pairs.split_off(middle.min(pairs.len()));
    let separator = right
        .first()
        .map(|(key, _)| key.to_vec())
        .unwrap_or_default();
    Replacement::Split(
        Owned::new(Node::Leaf(Keys::build(pairs))),
        separator,
        Owned::new(Node::Leaf(Keys::build(right))),
    )
}

/// An inner node of `children`, or two halves and the separator that moves up. With
/// `at_right_edge` (the new child is the last), the left half keeps every old child.
fn split_inner<V: ?Sized + Pointable>(
    mut children: Children<'_, V>,
    at_right_edge: bool,
) -> Replacement<V> {
    if children.len() <= INNER_MAX_CHILDREN {
        return Replacement::One(Owned::new(Node::Inner(Inner::build(children))));
    }
    let middle = if at_right_edge {
        children.len() - 1
    } else {
        children.len() / 2
    };
    let right = children.split_off(middle);
    let up = right
        .first()
        .and_then(|(key, _)| *key)
        .unwrap_or_default()
        .to_vec();
    Replacement::Split(
        Owned::new(Node::Inner(Inner::build(children))),
        up,
        Owned::new(Node::Inner(Inner::build(right))),
    )
}

/// Frees a subtree nothing else references (4, or a bulk load abandoned half way).
fn free_subtree<V: ?Sized + Pointable>(node: Owned<Node<V>>) {
    match *node.into_box() {
        Node::Leaf(leaf) => {
            for value in leaf.into_items() {
                // SAFETY: (3)/(4) the tree owns each value once and nothing else can reach it.
                drop(unsafe { value.into_owned() });
            }
        }
        Node::Inner(inner) => {
            // SAFETY: as above, for each child.
            free_subtree(unsafe { inner.first.into_owned() });
            for child in inner.seps.into_items() {
                // SAFETY: as above.
                free_subtree(unsafe { child.into_owned() });
            }
        }
    }
}

impl<V: ?Sized + Pointable + Send + Sync + 'static> Drop for Tree<V> {
    fn drop(&mut self) {
        // SAFETY: (4) `&mut self`: no reader holds a reference into the tree, and the root
        // is owned by the tree alone.
        let root = unsafe { std::mem::replace(&mut self.root, Atomic::null()).into_owned() };
        free_subtree(root);
    }
}

impl<V: ?Sized + Pointable + Send + Sync + 'static> std::fmt::Debug for Tree<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Entries of a [`Tree`] between two bounds, ascending, or descending from the back
/// (`DoubleEndedIterator`). See [`Tree::range`].
pub struct Range<'g, V: ?Sized + Pointable, R> {
    guard: &'g Guard,
    root: &'g Node<V>,
    front: Cursor<'g, V>,
    /// Where the range's end falls in the front's leaf: entries before it are in range, so a
    /// forward scan compares the end bound once per leaf, not once per key.
    front_limit: usize,
    /// Made on the first `next_back`, so a forward scan never descends twice.
    back: Option<Cursor<'g, V>>,
    /// The last keys handed out from each end: the two ends stop where they meet.
    last_front: Option<&'g [u8]>,
    last_back: Option<&'g [u8]>,
    bounds: R,
}

/// How many of `leaf`'s entries lie at or before `end`: one search per leaf, where a check of
/// each key against the bound would cost a comparison per key.
fn limit_in<V: ?Sized + Pointable>(leaf: &Keys<V>, end: Bound<&[u8]>) -> usize {
    match end {
        Bound::Unbounded => leaf.len(),
        Bound::Included(end) => match leaf.search(end) {
            Ok(index) => index + 1,
            Err(index) => index,
        },
        Bound::Excluded(end) => leaf.search(end).unwrap_or_else(|index| index),
    }
}

/// The inner nodes above a range's leaf, each with the child being read.
type Ancestors<'g, V> = SmallVec<[(&'g Inner<V>, usize); 8]>;

/// One end of a range: the inner nodes above its leaf, each with the child being read, and
/// its place in the leaf (the next entry from the front; one past it from the back).
struct Cursor<'g, V: ?Sized + Pointable> {
    stack: Ancestors<'g, V>,
    leaf: Option<&'g Keys<V>>,
    position: usize,
}

impl<'g, V: ?Sized + Pointable> Cursor<'g, V> {
    /// Descends from `node`, at each inner node taking the child `choose` picks, to a leaf.
    fn descend(
        mut node: &'g Node<V>,
        guard: &'g Guard,
        choose: impl Fn(&Inner<V>) -> usize,
    ) -> (Ancestors<'g, V>, &'g Keys<V>) {
        let mut stack = SmallVec::new();
        loop {
            match node {
                Node::Leaf(leaf) => return (stack, leaf),
                Node::Inner(inner) => {
                    let child = choose(inner);
                    stack.push((inner, child));
                    node = deref(inner.child(child, guard));
                }
            }
        }
    }

    /// The front end: the first entry at or after `start`.
    fn front(root: &'g Node<V>, start: Bound<&[u8]>, guard: &'g Guard) -> Self {
        let (stack, leaf) = Cursor::descend(root, guard, |inner| match start {
            Bound::Included(key) | Bound::Excluded(key) => inner.route(key),
            Bound::Unbounded => 0,
        });
        let position = match start {
            Bound::Unbounded => 0,
            Bound::Included(key) => leaf.search(key).unwrap_or_else(|index| index),
            Bound::Excluded(key) => match leaf.search(key) {
                Ok(index) => index + 1,
                Err(index) => index,
            },
        };
        Cursor {
            stack,
            leaf: Some(leaf),
            position,
        }
    }

    /// The back end: just after the last entry at or before `end`.
    fn back(root: &'g Node<V>, end: Bound<&[u8]>, guard: &'g Guard) -> Self {
        let (stack, leaf) = Cursor::descend(root, guard, |inner| match end {
            Bound::Included(key) | Bound::Excluded(key) => inner.route(key),
            Bound::Unbounded => inner.children_len() - 1,
        });
        let position = match end {
            Bound::Unbounded => leaf.len(),
            Bound::Included(key) => match leaf.search(key) {
                Ok(index) => index + 1,
                Err(index) => index,
            },
            Bound::Excluded(key) => leaf.search(key).unwrap_or_else(|index| index),
        };
        Cursor {
            stack,
            leaf: Some(leaf),
            position,
        }
    }

    /// Moves to the first entry of the next leaf; false at the end of the tree.
    fn next_leaf(&mut self, guard: &'g Guard) -> bool {
        while let Some((inner, child)) = self.stack.last_mut() {
            if *child + 1 < inner.children_len() {
                *child += 1;
                let (below, leaf) =
                    Cursor::descend(deref(inner.child(*child, guard)), guard, |_| 0);
                self.stack.extend(below);
                self.leaf = Some(leaf);
                self.position = 0;
                return true;
            }
            self.stack.pop();
        }
        self.leaf = None;
        false
    }

    /// Moves to just after the last entry of the previous leaf; false at the start.
    fn previous_leaf(&mut self, guard: &'g Guard) -> bool {
        while let Some((inner, child)) = self.stack.last_mut() {
            if *child > 0 {
                *child -= 1;
                let node = deref(inner.child(*child, guard));
                let (below, leaf) = Cursor::descend(node, guard, |inner| inner.children_len() - 1);
                self.stack.extend(below);
                self.leaf = Some(leaf);
                self.position = leaf.len();
                return true;
            }
            self.stack.pop();
        }
        self.leaf = None;
        false
    }
}

impl<'g, V: ?Sized + Pointable + Send + Sync + 'static, R: RangeBounds<[u8]>> Range<'g, V, R> {
    fn new(tree: &'g Tree<V>, bounds: R, guard: &'g Guard) -> Self {
        let root = deref(tree.root.load(Ordering::Acquire, guard));
        let front = Cursor::front(root, bounds.start_bound(), guard);
        let front_limit = front
            .leaf
            .map_or(0, |leaf| limit_in(leaf, bounds.end_bound()));
        Range {
            guard,
            root,
            front,
            front_limit,
            back: None,
            last_front: None,
            last_back: None,
            bounds,
        }
    }

    fn value(&self, leaf: &'g Keys<V>, position: usize) -> Option<&'g V> {
        model::step();
        let value = leaf.item(position)?.load(Ordering::Acquire, self.guard);
        // SAFETY: (1)/(2) as in `Tree::get`.
        unsafe { value.as_ref() }
    }
}

impl<'g, V: ?Sized + Pointable + Send + Sync + 'static, R: RangeBounds<[u8]>> Iterator
    for Range<'g, V, R>
{
    type Item = (&'g [u8], &'g V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let leaf = self.front.leaf?;
            if self.front.position < self.front_limit {
                let key = leaf.get(self.front.position);
                if self.last_back.is_some_and(|back| key >= back) {
                    self.front.leaf = None;
                    return None;
                }
                let value = self.value(leaf, self.front.position)?;
                self.front.position += 1;
                self.last_front = Some(key);
                return Some((key, value));
            }
            if self.front_limit < leaf.len() || !self.front.next_leaf(self.guard) {
                // The end bound falls inside this leaf, or the tree has no more leaves.
                self.front.leaf = None;
                return None;
            }
            self.front_limit = self
                .front
                .leaf
                .map_or(0, |leaf| limit_in(leaf, self.bounds.end_bound()));
        }
    }
}

impl<V: ?Sized + Pointable + Send + Sync + 'static, R: RangeBounds<[u8]>> DoubleEndedIterator
    for Range<'_, V, R>
{
    fn next_back(&mut self) -> Option<Self::Item> {
        let (root, guard) = (self.root, self.guard);
        let end = self.bounds.end_bound();
        let back = self
            .back
            .get_or_insert_with(|| Cursor::back(root, end, guard));
        loop {
            let leaf = back.leaf?;
            if back.position > 0 {
                let key = leaf.get(back.position - 1);
                let before_start = match self.bounds.start_bound() {
                    Bound::Included(start) => key.cmp(start) == KeyOrdering::Less,
                    Bound::Excluded(start) => key.cmp(start) != KeyOrdering::Greater,
                    Bound::Unbounded => false,
                };
                if before_start || self.last_front.is_some_and(|front| key <= front) {
                    back.leaf = None;
                    return None;
                }
                back.position -= 1;
                let position = back.position;
                let value = self.value(leaf, position)?;
                self.last_back = Some(key);
                return Some((key, value));
            }
            if !back.previous_leaf(guard) {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;

    /// A value that records its own destruction, so a read of a freed value is caught. The
    /// record is a plain mutex, not shuttle's: the epoch collector is shared by every test
    /// thread of the process, so a value may be freed by another test's collection.
    struct Tracked {
        id: u64,
        freed: Arc<std::sync::Mutex<HashSet<u64>>>,
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            let newly = self.freed.lock().expect("lock").insert(self.id);
            assert!(newly, "value {} freed twice", self.id);
        }
    }

    fn key(id: u64) -> [u8; 8] {
        id.to_be_bytes()
    }

    /// One writer splits a full leaf into a new root, overwrites, then removes keys until the
    /// leaves merge and the root collapses, while two readers look up and scan the keys that
    /// never change. Shuttle explores the interleavings at every load and store of a node or
    /// value pointer: a reader always finds every permanent key with its own value, scans stay
    /// ascending and complete in both directions, and every value is freed exactly once by
    /// the end. A value freed outside the collector is caught (a reader finds it in the freed
    /// set); one handed to the collector too early is not, since every simulated thread is
    /// the same epoch participant (see the index's model check).
    #[test]
    fn readers_see_a_whole_tree_while_one_writer_splits_and_merges_it() {
        let test = || {
            model::ACTIVE.with(|active| active.set(true));
            let freed = Arc::new(std::sync::Mutex::new(HashSet::new()));
            let tracked = |id| Tracked {
                id,
                freed: Arc::clone(&freed),
            };
            // Permanent keys are the even ids; the writer adds and removes odd ones.
            let permanent: Vec<u64> = (0..LEAF_MAX_ENTRIES as u64 / 2).map(|id| id * 2).collect();
            let (tree, mut writer) =
                Tree::<Tracked>::from_sorted(permanent.iter().map(|&id| (key(id), tracked(id))))
                    .expect("sorted");
            let tree = Arc::new(tree);
            let readers: Vec<_> = (0..2)
                .map(|reader| {
                    let tree = Arc::clone(&tree);
                    let freed = Arc::clone(&freed);
                    let permanent = permanent.clone();
                    shuttle::thread::spawn(move || {
                        for round in 0..3 {
                            let guard = crossbeam_epoch::pin();
                            let id = permanent[(reader * 7 + round * 5) % permanent.len()];
                            let value = tree
                                .get(&key(id), &guard)
                                .expect("a permanent key went missing");
                            assert_eq!(value.id % 1_000, id, "a value under the wrong key");
                            assert!(
                                !freed.lock().expect("lock").contains(&value.id),
                                "read a freed value"
                            );
                            let scan: Vec<u64> = if round % 2 == 0 {
                                tree.range::<std::ops::RangeFull>(.., &guard)
                                    .map(|(_, value)| value.id % 1_000)
                                    .collect()
                            } else {
                                let mut all: Vec<u64> = tree
                                    .range::<std::ops::RangeFull>(.., &guard)
                                    .rev()
                                    .map(|(_, value)| value.id % 1_000)
                                    .collect();
                                all.reverse();
                                all
                            };
                            assert!(
                                scan.windows(2).all(|pair| pair[0] < pair[1]),
                                "scan out of order: {scan:?}"
                            );
                            let evens: Vec<u64> =
                                scan.iter().copied().filter(|id| id % 2 == 0).collect();
                            assert_eq!(evens, permanent, "a scan lost a permanent key");
                        }
                    })
                })
                .collect();
            // Odd ids past a full leaf: the leaf splits and a new root appears.
            let odd: Vec<u64> = (0..LEAF_MAX_ENTRIES as u64 / 2 + 2)
                .map(|id| id * 2 + 1)
                .collect();
            for &id in &odd {
                tree.insert(&mut writer, &key(id), tracked(id));
            }
            // Overwrite a permanent key: same key, new value (its id carries a generation).
            tree.insert(
                &mut writer,
                &key(permanent[3]),
                tracked(1_000 + permanent[3]),
            );
            // Remove the odd ones again: the leaves merge and the root collapses.
            for &id in &odd {
                assert!(tree.remove(&mut writer, &key(id)));
            }
            for reader in readers {
                reader.join().expect("reader");
            }
            assert_eq!(tree.len(), permanent.len());
            drop(tree);
            model::assert_all_freed(&freed, permanent.len() + odd.len() + 1);
            model::ACTIVE.with(|active| active.set(false));
        };
        let _exclusive = model::EXCLUSIVE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shuttle::check_random(test, 300);
    }
}
