//! A key's record: one allocation holding the key, its newest version with the value inline,
//! and any older versions a reader may still need. The ordered index holds one per key.
//!
//! Layout (8-aligned): a 24-byte header (the reference count first, then the value's and the
//! key's lengths, the older-entry count with the tombstone and deadline flags, and the newest
//! version), the key's bytes, the value's offset from the start of the record (4 bytes, which
//! a `Value` handle reads to find the count), then the value's bytes. Only when the record
//! has them follow, 8-aligned: the newest version's deadline, and the older entries (each a
//! `VersionEntry`, newest first). A point read's key check, version check and count increment
//! all fall in the first cache line for keys of up to 36 bytes.
//!
//! A record is immutable once built. A commit that changes a key builds a successor and
//! publishes it in the index (`cairn_index::Index::upsert`), which hands the old one to the
//! epoch collector once no reader can reach it. The record is reference-counted: the index
//! holds one reference (given up by the collector, through `Pointable::drop`), and every
//! [`Value`] read from it holds one more, so a read hands out a handle into the record instead
//! of a copy, and the record is freed when the last of them lets go.
//!
//! Bounded history: a record whose older entries include a handle into another record is
//! marked as *sharing*, and `Record::successor` never hands out a handle into a sharing
//! record (it copies the value out instead). So a handle held as an older entry points at a
//! record whose own older values are all blocks of their own: a record keeps at most one
//! more record alive behind it, never a chain.

use std::alloc::Layout;
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use cairn_index::Keyed;
use crossbeam_epoch::Pointable;

use crate::mvcc::chain::{self, Chain, VersionEntry, NO_DEADLINE};
use crate::mvcc::readers::Horizon;
use crate::value::{self, Value};

/// The fixed part of a record.
#[repr(C)]
struct Meta {
    /// Must stay first: `value` finds every block's count at its start.
    refs: AtomicU32,
    value_len: u32,
    key_len: u32,
    /// Older entries in the tail, with `TOMBSTONE`, `DEADLINE` and `SHARES` in the top bits.
    shape: u32,
    /// The newest version.
    version: u64,
}

const TOMBSTONE: u32 = 1 << 31;
const DEADLINE: u32 = 1 << 30;
/// Some older entry is a handle into another record.
const SHARES: u32 = 1 << 29;
const OLDER_MASK: u32 = SHARES - 1;

/// Where a record's tail (the key first) starts, from the start of its allocation.
const TAIL_OFFSET: usize = size_of::<Meta>();

/// A key's record (see the module documentation). Only ever seen by reference.
///
/// A `&Record` covers the header alone: its slice is always empty, so making one (as the
/// index does for every value it hands out) reads no memory, and a scan can ask the CPU for
/// records ahead of the one it reads. The tail is reached through the allocation's address,
/// whose provenance `NewRecord::build` exposes.
#[repr(C)]
pub(crate) struct Record {
    meta: Meta,
    no_tail: [u8],
}

/// The sizes a record's layout follows from.
#[derive(Clone, Copy)]
struct Shape {
    value_len: usize,
    key_len: usize,
    deadline: bool,
    older: usize,
}

impl Shape {
    fn of(meta: &Meta) -> Shape {
        Shape {
            value_len: meta.value_len as usize,
            key_len: meta.key_len as usize,
            deadline: meta.shape & DEADLINE != 0,
            older: (meta.shape & OLDER_MASK) as usize,
        }
    }

    /// Where the value's bytes start, in the tail: after the key and the 4-byte offset.
    fn value_at(self) -> usize {
        self.key_len + value::BACK_BYTES
    }

    /// Where the deadline (if any) and the older entries start, in the tail.
    fn extras_at(self) -> usize {
        (self.value_at() + self.value_len).next_multiple_of(8)
    }

    /// Where the older entries start, in the tail.
    fn older_at(self) -> usize {
        self.extras_at() + if self.deadline { 8 } else { 0 }
    }

    fn tail_len(self) -> usize {
        if !self.deadline && self.older == 0 {
            self.value_at() + self.value_len
        } else {
            self.older_at() + self.older * size_of::<VersionEntry>()
        }
    }

    fn layout(self) -> Layout {
        // Key and value lengths are bounded by `limits` far below what could overflow.
        Layout::from_size_align(TAIL_OFFSET + self.tail_len(), 8).map_or_else(
            |_| std::alloc::handle_alloc_error(Layout::new::<Meta>()),
            |layout| layout.pad_to_align(),
        )
    }
}

/// A length stored in a record's header. Keys (`limits::KEY_BYTES_MAX`) and values
/// (`limits::VALUE_BYTES_MAX_CEILING`) are checked far below `u32::MAX` before any record is
/// built, so this never fails; if it did, a short length would overrun the allocation.
fn header_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or_else(|_| std::process::abort())
}

/// A record built and not yet in the index: what the index allocates from
/// (`Pointable::Init`). Freed if dropped before it is handed over.
pub(crate) struct NewRecord(NonNull<u8>);

// SAFETY: a `NewRecord` owns its allocation alone, and everything in it is `Send`.
unsafe impl Send for NewRecord {}

impl NewRecord {
    /// The record of `key` holding `chain`, newest first. The chain is never empty (an empty
    /// one is stored as a tombstone at version 0, which reads as no entry).
    pub(crate) fn new(key: &[u8], chain: Chain) -> NewRecord {
        debug_assert!(chain.len() > 0, "a record's chain is never empty");
        let mut entries = chain.entries.into_iter();
        let head = entries.next().unwrap_or(VersionEntry {
            version: 0,
            deadline_millis: NO_DEADLINE,
            value: None,
        });
        let older: smallvec::SmallVec<[VersionEntry; 2]> = entries.collect();
        Self::build(
            key,
            head.version,
            head.deadline_millis,
            head.value.as_deref(),
            older,
        )
    }

    /// The record of `key` holding one version: `value` (`None` for a tombstone) written at
    /// `version`, expiring at `deadline_millis`. Copies the bytes straight in.
    pub(crate) fn single(
        key: &[u8],
        version: u64,
        deadline_millis: u64,
        value: Option<&[u8]>,
    ) -> NewRecord {
        Self::build(
            key,
            version,
            deadline_millis,
            value,
            smallvec::SmallVec::new(),
        )
    }

    fn build(
        key: &[u8],
        version: u64,
        deadline_millis: u64,
        value: Option<&[u8]>,
        older: smallvec::SmallVec<[VersionEntry; 2]>,
    ) -> NewRecord {
        let bytes: &[u8] = value.unwrap_or_default();
        let deadline = deadline_millis != NO_DEADLINE;
        let shape = Shape {
            value_len: bytes.len(),
            key_len: key.len(),
            deadline,
            older: older.len(),
        };
        let mut flags = header_len(older.len());
        if flags & !OLDER_MASK != 0 {
            // More older entries than the header counts: unreachable (one per live reader).
            std::process::abort();
        }
        if value.is_none() {
            flags |= TOMBSTONE;
        }
        if deadline {
            flags |= DEADLINE;
        }
        if older
            .iter()
            .any(|entry| entry.value.as_ref().is_some_and(Value::is_in_record))
        {
            flags |= SHARES;
        }
        let layout = shape.layout();
        // SAFETY: the layout is never zero-sized (it has the header).
        let block = unsafe { std::alloc::alloc(layout) };
        let Some(block) = NonNull::new(block) else {
            std::alloc::handle_alloc_error(layout);
        };
        // `Record::tail` rebuilds pointers into the allocation from its address.
        let _ = block.as_ptr().expose_provenance();
        // SAFETY: `block` is a fresh allocation of `layout`, 8-aligned, large enough for the
        // header and the tail `shape` describes; every write below stays inside it, and the
        // sources cannot overlap it.
        unsafe {
            block.cast::<Meta>().write(Meta {
                refs: value::first_reference(),
                value_len: header_len(bytes.len()),
                key_len: header_len(key.len()),
                shape: flags,
                version,
            });
            let tail = block.add(TAIL_OFFSET);
            std::ptr::copy_nonoverlapping(key.as_ptr(), tail.as_ptr(), key.len());
            let back = header_len(TAIL_OFFSET + shape.value_at()).to_le_bytes();
            let value_at = tail.add(shape.value_at());
            std::ptr::copy_nonoverlapping(
                back.as_ptr(),
                value_at.sub(value::BACK_BYTES).as_ptr(),
                value::BACK_BYTES,
            );
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), value_at.as_ptr(), bytes.len());
            if deadline {
                let at = tail.add(shape.extras_at()).as_ptr();
                std::ptr::copy_nonoverlapping(deadline_millis.to_le_bytes().as_ptr(), at, 8);
            }
            let at = tail.add(shape.older_at()).cast::<VersionEntry>();
            for (index, entry) in older.into_iter().enumerate() {
                at.add(index).write(entry);
            }
        }
        NewRecord(block)
    }

    /// The record, to read before it is handed over.
    pub(crate) fn record(&self) -> &Record {
        // SAFETY: a `NewRecord` holds a fully built record until it is handed over or freed.
        unsafe { Record::from_block(self.0) }
    }
}

impl Drop for NewRecord {
    fn drop(&mut self) {
        // SAFETY: never handed over (`Pointable::init` forgets it), so this is the only
        // reference.
        if unsafe { value::release(self.0) } {
            unsafe { free(self.0) };
        }
    }
}

/// Frees the record at `block`: its older entries (which release their own values), then its
/// allocation.
///
/// # Safety
///
/// `block` is a record allocated by `NewRecord::new` whose last reference is gone.
pub(crate) unsafe fn free(block: NonNull<u8>) {
    // SAFETY: the caller's contract: a live, fully built record no one else can reach.
    unsafe {
        let shape = Shape::of(block.cast::<Meta>().as_ref());
        if shape.older > 0 {
            let older = block
                .add(TAIL_OFFSET + shape.older_at())
                .cast::<VersionEntry>();
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                older.as_ptr(),
                shape.older,
            ));
        }
        std::alloc::dealloc(block.as_ptr(), shape.layout());
    }
}

/// One write about to be applied: its version, deadline and value (`None` for a delete),
/// borrowed from the commit that makes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Write<'a> {
    /// The commit that writes it.
    pub(crate) version: u64,
    /// Absolute expiry in clock milliseconds; `NO_DEADLINE` for none.
    pub(crate) deadline_millis: u64,
    /// The value's bytes; `None` for a tombstone.
    pub(crate) value: Option<&'a [u8]>,
}

/// One version as a reader sees it: borrowed from its record.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a> {
    /// The commit that wrote it.
    pub(crate) version: u64,
    /// Absolute expiry in clock milliseconds; `NO_DEADLINE` for none.
    pub(crate) deadline_millis: u64,
    held: Held<'a>,
}

#[derive(Clone, Copy)]
enum Held<'a> {
    Tombstone,
    /// The newest value, inline in this record.
    Inline(&'a Record),
    /// An older value.
    Older(&'a Value),
}

impl<'a> Entry<'a> {
    /// True for a tombstone.
    pub(crate) fn is_tombstone(&self) -> bool {
        matches!(self.held, Held::Tombstone)
    }

    /// True when the entry reads as absent at `now_millis`.
    pub(crate) fn is_dead_at(&self, now_millis: u64) -> bool {
        self.is_tombstone() || self.deadline_millis <= now_millis
    }

    /// The value's bytes, or `None` for a tombstone.
    pub(crate) fn bytes(&self) -> Option<&'a [u8]> {
        match self.held {
            Held::Tombstone => None,
            Held::Inline(record) => Some(record.value_bytes()),
            Held::Older(value) => Some(value.as_bytes()),
        }
    }

    /// A handle on the value (one count increment, no copy), or `None` for a tombstone.
    pub(crate) fn value(&self) -> Option<Value> {
        match self.held {
            Held::Tombstone => None,
            Held::Inline(record) => Some(record.share_value()),
            Held::Older(value) => Some(value.clone()),
        }
    }

    /// The live value at `now_millis`, if any. Reads the clock only when there is a deadline.
    pub(crate) fn live_value(&self, now: impl FnOnce() -> u64) -> Option<Value> {
        if self.is_tombstone() {
            return None;
        }
        if self.deadline_millis != NO_DEADLINE && self.deadline_millis <= now() {
            return None;
        }
        self.value()
    }

    /// The entry as a write to apply elsewhere (its value borrowed).
    pub(crate) fn as_write(self) -> Write<'a> {
        Write {
            version: self.version,
            deadline_millis: self.deadline_millis,
            value: self.bytes(),
        }
    }

    /// The entry as an owned version (its value a handle).
    pub(crate) fn owned(self) -> VersionEntry {
        VersionEntry {
            version: self.version,
            deadline_millis: self.deadline_millis,
            value: self.value(),
        }
    }
}

impl Record {
    /// The record whose allocation starts at `block`.
    ///
    /// # Safety
    ///
    /// `block` is a fully built record that stays allocated for `'a`.
    #[expect(
        clippy::cast_ptr_alignment,
        reason = "records are allocated 8-aligned (`Shape::layout`)"
    )]
    unsafe fn from_block<'a>(block: NonNull<u8>) -> &'a Record {
        let fat = std::ptr::slice_from_raw_parts(block.as_ptr().cast_const(), 0);
        // SAFETY: the caller's contract: an initialized, 8-aligned header, live for `'a`.
        unsafe { &*(fat as *const Record) }
    }

    fn shape(&self) -> Shape {
        Shape::of(&self.meta)
    }

    fn block(&self) -> NonNull<u8> {
        NonNull::from(self).cast::<u8>()
    }

    /// The start of the tail, with the whole allocation's provenance (exposed when it was
    /// built).
    fn tail(&self) -> *const u8 {
        let address = std::ptr::from_ref(self).cast::<u8>().addr() + TAIL_OFFSET;
        std::ptr::with_exposed_provenance(address)
    }

    /// `len` bytes of the tail from `at`.
    ///
    /// # Safety
    ///
    /// They lie inside the tail `NewRecord::build` wrote.
    unsafe fn tail_bytes(&self, at: usize, len: usize) -> &[u8] {
        // SAFETY: the caller's contract; the record outlives `&self`, and its tail is never
        // written after it was built.
        unsafe { std::slice::from_raw_parts(self.tail().add(at), len) }
    }

    /// The key, as the index orders it.
    pub(crate) fn key(&self) -> &[u8] {
        // SAFETY: the key is the tail's first `key_len` bytes.
        unsafe { self.tail_bytes(0, self.shape().key_len) }
    }

    /// The newest value's bytes (empty for a tombstone).
    fn value_bytes(&self) -> &[u8] {
        let shape = self.shape();
        // SAFETY: the value's bytes follow the key and their offset (`Shape::value_at`).
        unsafe { self.tail_bytes(shape.value_at(), shape.value_len) }
    }

    /// A handle on the newest value: one more reference to this record.
    fn share_value(&self) -> Value {
        let shape = self.shape();
        // SAFETY: `&self` proves a reference is held (the index's, kept until no pinned
        // reader can reach the record, or a `NewRecord`'s), so the count is at least one; the
        // new handle takes its own. The value's bytes start `value_at` into the tail, after
        // their offset from the start of the record (`NewRecord::build`), which is more than
        // a standalone block's header.
        unsafe {
            value::acquire(self.block());
            let bytes = NonNull::new_unchecked(self.tail().add(shape.value_at()).cast_mut());
            Value::in_record(bytes, shape.value_len)
        }
    }

    fn newest_deadline(&self) -> u64 {
        let shape = self.shape();
        if !shape.deadline {
            return NO_DEADLINE;
        }
        // SAFETY: a record with a deadline holds it in the 8 bytes at `extras_at`.
        let bytes = unsafe { self.tail_bytes(shape.extras_at(), 8) };
        bytes.try_into().map_or(NO_DEADLINE, u64::from_le_bytes)
    }

    /// The older entries, newest first.
    #[expect(
        clippy::cast_ptr_alignment,
        reason = "the older entries start 8-aligned in an 8-aligned record (`Shape::older_at`)"
    )]
    fn older(&self) -> &[VersionEntry] {
        let shape = self.shape();
        if shape.older == 0 {
            return &[];
        }
        // SAFETY: `NewRecord::new` wrote `shape.older` entries at this 8-aligned offset of the
        // tail, and they are dropped only when the record is freed, after every borrow.
        unsafe {
            let at = self.tail().add(shape.older_at()).cast::<VersionEntry>();
            std::slice::from_raw_parts(at, shape.older)
        }
    }

    /// The newest entry.
    pub(crate) fn head(&self) -> Entry<'_> {
        Entry {
            version: self.meta.version,
            deadline_millis: self.newest_deadline(),
            held: if self.meta.shape & TOMBSTONE != 0 {
                Held::Tombstone
            } else {
                Held::Inline(self)
            },
        }
    }

    /// The version of the newest entry.
    pub(crate) fn head_version(&self) -> u64 {
        self.meta.version
    }

    /// How many versions the record holds.
    pub(crate) fn len(&self) -> usize {
        1 + self.shape().older
    }

    /// The entry a reader at `read_version` sees: the newest with `version <= read_version`.
    pub(crate) fn entry_at(&self, read_version: u64) -> Option<Entry<'_>> {
        if self.meta.version <= read_version {
            return Some(self.head());
        }
        self.older()
            .iter()
            .find(|entry| entry.version <= read_version)
            .map(|entry| Entry {
                version: entry.version,
                deadline_millis: entry.deadline_millis,
                held: entry.value.as_ref().map_or(Held::Tombstone, Held::Older),
            })
    }

    /// The versions as an owned chain, newest first; each value a handle, none copied.
    pub(crate) fn to_chain(&self) -> Chain {
        let mut entries = smallvec::SmallVec::with_capacity(self.len());
        entries.push(self.head().owned());
        entries.extend(self.older().iter().cloned());
        Chain { entries }
    }

    /// The record of `key` after `newest` is committed on top of this one, its versions
    /// pruned to `horizon` (`Chain::successor`), or `None` when nothing is left (a tombstone
    /// over tombstones). The newest value here becomes an older entry there: a handle into
    /// this record unless it is sharing, else a copy, so no record keeps a chain of records
    /// alive (module documentation).
    pub(crate) fn successor(
        &self,
        key: &[u8],
        newest: Write<'_>,
        horizon: impl FnOnce() -> Horizon,
    ) -> Option<NewRecord> {
        // `Chain::successor`'s rules, applied to this record's versions where they lie: with
        // one old entry no horizon changes the outcome; with more, each old entry stays if
        // some reader in the horizon can see it.
        let mut older: smallvec::SmallVec<[VersionEntry; 2]> = smallvec::SmallVec::new();
        let head = self.head();
        let history = self.older();
        let horizon = (!history.is_empty()).then(horizon);
        let mut newer = u64::MAX;
        if horizon
            .as_ref()
            .is_none_or(|horizon| Chain::keeps(head.version, newer, horizon))
        {
            let mut entry = head.owned();
            if self.meta.shape & SHARES != 0 {
                entry.value = entry.value.map(|value| Value::from_slice(&value));
            }
            older.push(entry);
        }
        newer = head.version;
        for entry in history {
            if horizon
                .as_ref()
                .is_some_and(|horizon| Chain::keeps(entry.version, newer, horizon))
            {
                older.push(entry.clone());
            }
            newer = entry.version;
        }
        chain::drop_bottom_tombstones(&mut older);
        if older.is_empty() && newest.value.is_none() {
            return None;
        }
        Some(NewRecord::build(
            key,
            newest.version,
            newest.deadline_millis,
            newest.value,
            older,
        ))
    }

    /// Asks the CPU to start loading the record's first cache line: its header, and its key
    /// and value's start when short. A hint only.
    pub(crate) fn prefetch(&self) {
        cairn_index::prefetch(self.block().as_ptr());
    }
}

impl Keyed for Record {
    fn key(&self) -> &[u8] {
        Record::key(self)
    }
}

impl Pointable for Record {
    const ALIGN: usize = 8;

    type Init = NewRecord;

    unsafe fn init(init: NewRecord) -> usize {
        let block = init.0;
        std::mem::forget(init);
        block.as_ptr().expose_provenance()
    }

    unsafe fn deref<'a>(ptr: usize) -> &'a Self {
        // SAFETY: `ptr` came from `init`, so it is a built record, live while the caller's
        // contract holds.
        unsafe {
            Record::from_block(NonNull::new_unchecked(
                std::ptr::with_exposed_provenance_mut(ptr),
            ))
        }
    }

    #[expect(
        clippy::cast_ptr_alignment,
        reason = "records are allocated 8-aligned (`Shape::layout`)"
    )]
    unsafe fn deref_mut<'a>(ptr: usize) -> &'a mut Self {
        let fat =
            std::ptr::slice_from_raw_parts_mut(std::ptr::with_exposed_provenance_mut::<u8>(ptr), 0);
        // SAFETY: as `deref`, and the caller has the only access.
        unsafe { &mut *(fat as *mut Record) }
    }

    unsafe fn drop(ptr: usize) {
        // SAFETY: `ptr` came from `init`; the index gives up its reference here, once.
        unsafe {
            let block = NonNull::new_unchecked(std::ptr::with_exposed_provenance_mut(ptr));
            if value::release(block) {
                free(block);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::chain::tests::put;

    fn write(entry: &VersionEntry) -> Write<'_> {
        Write {
            version: entry.version,
            deadline_millis: entry.deadline_millis,
            value: entry.value.as_deref(),
        }
    }

    fn chain(entries: Vec<VersionEntry>) -> Chain {
        Chain {
            entries: entries.into(),
        }
    }

    #[test]
    fn a_record_reads_back_its_key_versions_and_deadline() {
        let mut with_deadline = put(9, "newest");
        with_deadline.deadline_millis = 1_234;
        let tombstone = VersionEntry {
            version: 5,
            deadline_millis: NO_DEADLINE,
            value: None,
        };
        let built = NewRecord::new(b"key", chain(vec![with_deadline, tombstone, put(2, "old")]));
        let record = built.record();
        assert_eq!(record.key(), b"key");
        assert_eq!(record.len(), 3);
        assert_eq!(record.head_version(), 9);
        assert_eq!(record.head().deadline_millis, 1_234);
        assert_eq!(record.head().bytes(), Some(&b"newest"[..]));
        assert!(record.entry_at(6).is_some_and(|entry| entry.is_tombstone()));
        assert_eq!(
            record.entry_at(4).and_then(|entry| entry.bytes()),
            Some(&b"old"[..])
        );
        assert!(record.entry_at(1).is_none());
        assert!(record.head().is_dead_at(1_234));
        assert!(!record.head().is_dead_at(1_233));
    }

    #[test]
    fn every_shape_of_record_reads_back_what_built_it() {
        for key_len in [1_u32, 3, 7, 8, 9, 36, 37, 100, 65_536] {
            for value_len in [0_u32, 1, 5, 100, 4_097] {
                for (deadline, older) in [(false, 0_u8), (true, 0), (false, 2), (true, 1)] {
                    let key: Vec<u8> = (0..key_len).map(|at| (at % 251).to_le_bytes()[0]).collect();
                    let value: Vec<u8> = (0..value_len)
                        .map(|at| (at % 241).to_le_bytes()[0])
                        .collect();
                    let mut entries = vec![VersionEntry {
                        version: 10,
                        deadline_millis: if deadline { 77 } else { NO_DEADLINE },
                        value: Some(Value::from_slice(&value)),
                    }];
                    entries.extend((0..older).map(|at| put(9 - u64::from(at), "older")));
                    let built = NewRecord::new(&key, chain(entries));
                    let record = built.record();
                    assert_eq!(record.key(), &key[..]);
                    assert_eq!(record.head().bytes(), Some(&value[..]));
                    assert_eq!(record.len(), 1 + usize::from(older));
                    let expected = if deadline { 77 } else { NO_DEADLINE };
                    assert_eq!(record.head().deadline_millis, expected);
                    for at in 0..older {
                        let version = 9 - u64::from(at);
                        let entry = record.entry_at(version).map(Entry::owned);
                        assert_eq!(entry.map(|entry| entry.version), Some(version));
                    }
                    let handle = record.head().value();
                    drop(built);
                    assert_eq!(handle.as_deref(), Some(&value[..]));
                    assert!(handle.is_some_and(|handle| handle.is_in_record()));
                }
            }
        }
    }

    #[test]
    fn a_handle_keeps_its_record_alive_after_the_record_is_dropped() {
        let long_key = vec![b'k'; 300];
        let built = NewRecord::new(&long_key, chain(vec![put(3, "value"), put(1, "first")]));
        let newest = built.record().head().value();
        let first = built.record().entry_at(1).and_then(|entry| entry.value());
        drop(built);
        assert_eq!(newest.as_deref(), Some(&b"value"[..]));
        assert_eq!(first.as_deref(), Some(&b"first"[..]));
        let copy = newest.clone();
        drop(newest);
        assert_eq!(copy.as_deref(), Some(&b"value"[..]));
    }

    /// The versions of a successor, newest first, each with its value and whether that
    /// value is a handle into a record.
    fn versions_of(record: &Record) -> Vec<(u64, Option<Vec<u8>>, bool)> {
        let mut versions = Vec::new();
        let mut at = u64::MAX;
        while let Some(entry) = record.entry_at(at) {
            let value = entry.value();
            let in_record = value.as_ref().is_some_and(Value::is_in_record);
            versions.push((entry.version, value.map(|value| value.to_vec()), in_record));
            match entry.version.checked_sub(1) {
                Some(below) => at = below,
                None => break,
            }
        }
        versions
    }

    #[test]
    fn a_successor_of_a_record_without_history_shares_its_value() {
        let built = NewRecord::new(b"k", chain(vec![put(3, "three")]));
        let horizon = || Horizon::from_versions(&[3]);
        let next = built
            .record()
            .successor(b"k", write(&put(4, "four")), horizon);
        drop(built);
        let next = next.map(|next| versions_of(next.record()));
        assert_eq!(
            next,
            Some(vec![
                (4, Some(b"four".to_vec()), true),
                (3, Some(b"three".to_vec()), true),
            ]),
            "the old newest value is shared with its old record, not copied"
        );
    }

    #[test]
    fn a_successor_copies_out_of_a_sharing_record_and_shares_out_of_any_other() {
        // History with values of their own: the newest is shared, the older one carried.
        let built = NewRecord::new(b"k", chain(vec![put(3, "three"), put(1, "one")]));
        let next = built.record().successor(b"k", write(&put(4, "four")), || {
            Horizon::from_versions(&[1, 3])
        });
        let next = next.map(|next| versions_of(next.record()));
        assert_eq!(
            next,
            Some(vec![
                (4, Some(b"four".to_vec()), true),
                (3, Some(b"three".to_vec()), true),
                (1, Some(b"one".to_vec()), false),
            ])
        );
        // A record one of whose older values is a handle (sharing): its newest is copied out.
        let first = NewRecord::new(b"k", chain(vec![put(1, "one")]));
        let horizon = || Horizon::from_versions(&[1, 2, 3]);
        let second = first
            .record()
            .successor(b"k", write(&put(2, "two")), horizon);
        let second = second.unwrap_or_else(|| NewRecord::new(b"k", chain(vec![])));
        let third = second
            .record()
            .successor(b"k", write(&put(3, "three")), horizon);
        drop((first, second));
        let third = third.map(|third| versions_of(third.record()));
        assert_eq!(
            third,
            Some(vec![
                (3, Some(b"three".to_vec()), true),
                (2, Some(b"two".to_vec()), false),
                (1, Some(b"one".to_vec()), true),
            ]),
            "the sharing record's newest value is a copy; the handle it held is carried"
        );
    }

    #[test]
    fn a_tombstone_over_a_tombstone_leaves_nothing() {
        let tombstone = |version| VersionEntry {
            version,
            deadline_millis: NO_DEADLINE,
            value: None,
        };
        let built = NewRecord::new(b"k", chain(vec![tombstone(3)]));
        let next = built
            .record()
            .successor(b"k", write(&tombstone(4)), || Horizon::from_versions(&[3]));
        assert!(next.is_none());
        let next = built.record().successor(b"k", write(&put(5, "five")), || {
            Horizon::from_versions(&[3])
        });
        let next = next.map(|next| versions_of(next.record()));
        assert_eq!(next, Some(vec![(5, Some(b"five".to_vec()), true)]));
    }

    #[test]
    fn a_successor_keeps_what_the_chain_rules_keep() {
        let mut rng = cairn_testkit::rng::SplitMix64::new(0x5eed);
        for _ in 0..5_000 {
            // An old chain of 1 to 4 entries at descending versions, some tombstones.
            let len = 1 + rng.below(4);
            let mut version = 2 + rng.below(20) as u64 * 4;
            let mut entries = Vec::new();
            for _ in 0..len {
                let value = (rng.below(4) > 0).then(|| Value::from(format!("v{version}").as_str()));
                entries.push(VersionEntry {
                    version,
                    deadline_millis: NO_DEADLINE,
                    value,
                });
                version = version.saturating_sub(1 + rng.below(3) as u64).max(1);
                if entries.iter().any(|entry| entry.version <= version) {
                    break;
                }
            }
            let top = entries.first().map_or(1, |entry| entry.version);
            let readers: Vec<u64> = (0..rng.below(3))
                .map(|_| 1 + rng.below(usize::try_from(top).unwrap_or(1)) as u64)
                .collect();
            let visible = top.saturating_sub(rng.below(2) as u64).max(1);
            let mut versions = readers.clone();
            versions.push(visible);
            versions.sort_unstable();
            let horizon = || Horizon::from_versions(&versions);
            let newest = VersionEntry {
                version: top + 1,
                deadline_millis: NO_DEADLINE,
                value: (rng.below(3) > 0).then(|| Value::from("new")),
            };
            let old = chain(entries.clone());
            let expected = old.clone().successor(newest.clone(), horizon);
            let built = NewRecord::new(b"k", chain(entries));
            let found = built.record().successor(b"k", write(&newest), horizon);
            let expected: Vec<(u64, Option<Vec<u8>>)> = expected
                .entries
                .iter()
                .map(|entry| (entry.version, entry.value.as_ref().map(Value::to_vec)))
                .collect();
            let found: Vec<(u64, Option<Vec<u8>>)> = found
                .map(|found| versions_of(found.record()))
                .unwrap_or_default()
                .into_iter()
                .map(|(version, value, _)| (version, value))
                .collect();
            assert_eq!(found, expected, "old {old:?}, horizon {versions:?}");
        }
    }
}
