//! [`Value`]: an immutable byte string shared by reference count, either in a block of its own
//! or inline in the record the index holds for its key.
//!
//! A value the caller builds (`Value::from_slice`, `From<Vec<u8>>`) lives in a block of its
//! own: an 8-byte header (the count) and the bytes. A value read from the index is a handle
//! into the key's record (`mvcc::record`), which holds the newest value inline: a read costs
//! one count increment on the record it already loaded, never a copy, and the record is freed
//! when both the index and the last handle have let go of it.
//!
//! Guarantees:
//! - Every block starts with its count (`AtomicU32`), and the 4 bytes just before a value's
//!   bytes hold their offset from the start of the block (8 in a standalone block, more in a
//!   record, whose key comes first): so a handle finds its count with one load beside its
//!   bytes, and tells the two kinds apart by that offset.
//! - The count follows `std::sync::Arc`'s protocol: increments `Relaxed`, decrements
//!   `Release`, an `Acquire` fence before the block is freed, and an abort (not a wrap) if a
//!   count ever passes `MAX_REFS`.
//! - The bytes are never written after the block is published.

use std::alloc::Layout;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

use crate::mvcc::record;

/// Counts above this abort the process, as `Arc` does: a count that wrapped would free a block
/// still in use.
const MAX_REFS: u32 = u32::MAX / 2;

/// A standalone block's header: its count, then the offset of its bytes (this size).
const STANDALONE_HEADER: usize = 8;
const STANDALONE_BACK: [u8; BACK_BYTES] = 8u32.to_le_bytes();
const _: () = assert!(STANDALONE_HEADER == 8 && BACK_BYTES == 4);

/// The size of the offset stored just before a value's bytes.
pub(crate) const BACK_BYTES: usize = 4;

/// A value: an immutable, reference-counted byte string. Cloning is one atomic increment;
/// derefs to `[u8]`.
pub struct Value {
    /// The first byte of the value (or, for an empty value, where it would be). The 4 bytes
    /// before it hold its offset from the start of its block.
    bytes: NonNull<u8>,
    len: usize,
}

// SAFETY: the bytes are immutable once published and the count is atomic, as for
// `Arc<[u8]>`.
unsafe impl Send for Value {}
// SAFETY: as above.
unsafe impl Sync for Value {}

/// The block's count: the first field of every block.
///
/// # Safety
///
/// `block` is the start of a live block.
unsafe fn refs<'a>(block: NonNull<u8>) -> &'a AtomicU32 {
    // SAFETY: every block starts with an `AtomicU32`, 8-aligned (the caller's contract).
    unsafe { block.cast::<AtomicU32>().as_ref() }
}

/// Takes one more reference to `block`, aborting if the count would pass `MAX_REFS`.
///
/// # Safety
///
/// The caller holds a reference to `block` (so its count is at least 1) for the duration.
pub(crate) unsafe fn acquire(block: NonNull<u8>) {
    // SAFETY: the caller holds a reference, so the block is live.
    let old = unsafe { refs(block) }.fetch_add(1, Ordering::Relaxed);
    if old > MAX_REFS {
        std::process::abort();
    }
}

/// Drops one reference to `block`; returns true when it was the last, and the caller must
/// free the block.
///
/// # Safety
///
/// The caller holds a reference to `block`, and gives it up here.
pub(crate) unsafe fn release(block: NonNull<u8>) -> bool {
    // SAFETY: the caller holds a reference, so the block is live.
    if unsafe { refs(block) }.fetch_sub(1, Ordering::Release) != 1 {
        return false;
    }
    fence(Ordering::Acquire);
    true
}

/// A new block's count, before it is shared.
pub(crate) fn first_reference() -> AtomicU32 {
    AtomicU32::new(1)
}

impl Value {
    /// Copies `bytes` into a new value.
    pub fn from_slice(bytes: &[u8]) -> Self {
        let layout = Self::standalone_layout(bytes.len());
        // SAFETY: the layout is never zero-sized (it has the header).
        let block = unsafe { std::alloc::alloc(layout) };
        let Some(block) = NonNull::new(block) else {
            std::alloc::handle_alloc_error(layout);
        };
        // SAFETY: `block` is a fresh allocation of `layout`, 8-aligned: the header and then
        // room for `bytes.len()` bytes, which cannot overlap `bytes`.
        unsafe {
            block.cast::<AtomicU32>().write(first_reference());
            let back = STANDALONE_BACK;
            let start = block.add(STANDALONE_HEADER);
            std::ptr::copy_nonoverlapping(
                back.as_ptr(),
                start.sub(BACK_BYTES).as_ptr(),
                BACK_BYTES,
            );
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), start.as_ptr(), bytes.len());
            Value {
                bytes: start,
                len: bytes.len(),
            }
        }
    }

    /// A handle on the `len` bytes at `bytes`, inline in a record.
    ///
    /// # Safety
    ///
    /// The caller has taken a reference to the record for this handle (`acquire`), `bytes`
    /// is where the record's `len` value bytes start, and the 4 bytes before it hold their
    /// offset from the start of the record, more than `STANDALONE_HEADER`.
    pub(crate) unsafe fn in_record(bytes: NonNull<u8>, len: usize) -> Self {
        Value { bytes, len }
    }

    fn standalone_layout(len: usize) -> Layout {
        let size = STANDALONE_HEADER
            .checked_add(len)
            .filter(|&size| size <= isize::MAX as usize - 7)
            .unwrap_or_else(|| std::alloc::handle_alloc_error(Layout::new::<u64>()));
        // A size at most `isize::MAX - 7` with alignment 8 is always a valid layout.
        Layout::from_size_align(size, 8).unwrap_or_else(|_| Layout::new::<u64>())
    }

    /// True for a handle into a record (one `mvcc::record` built), false for a value with
    /// a block of its own.
    pub(crate) fn is_in_record(&self) -> bool {
        self.back() != STANDALONE_HEADER
    }

    /// How far the bytes lie from the start of their block.
    fn back(&self) -> usize {
        let mut back = [0u8; BACK_BYTES];
        // SAFETY: every block stores the offset in the 4 bytes before the value's bytes
        // (`from_slice`, `mvcc::record`), and this handle keeps the block alive.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.bytes.sub(BACK_BYTES).as_ptr(),
                back.as_mut_ptr(),
                BACK_BYTES,
            );
        }
        u32::from_le_bytes(back) as usize
    }

    /// The start of the block this value's bytes lie in.
    fn block(&self) -> NonNull<u8> {
        // SAFETY: the bytes lie `back` bytes into their block.
        unsafe { self.bytes.sub(self.back()) }
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: this handle holds a reference, so the block and its `len` initialized,
        // never-written-again bytes are live for as long as `self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.bytes.as_ptr(), self.len) }
    }

    /// The value's bytes, as an owned vector.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl Clone for Value {
    fn clone(&self) -> Self {
        // SAFETY: `self` holds a reference for as long as this call borrows it.
        unsafe { acquire(self.block()) };
        Value {
            bytes: self.bytes,
            len: self.len,
        }
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        let block = self.block();
        // SAFETY: this handle's reference is given up here, once.
        if !unsafe { release(block) } {
            return;
        }
        if self.is_in_record() {
            // SAFETY: the last reference to the record is gone (the index let go of it
            // before, or it would hold one).
            unsafe { record::free(block) };
        } else {
            // SAFETY: the last reference is gone; the block was allocated by `from_slice`
            // with this layout.
            unsafe { std::alloc::dealloc(block.as_ptr(), Self::standalone_layout(self.len)) };
        }
    }
}

impl Deref for Value {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&[u8]> for Value {
    fn from(bytes: &[u8]) -> Self {
        Value::from_slice(bytes)
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Self {
        Value::from_slice(&bytes)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::from_slice(text.as_bytes())
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Value) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialEq<&[u8]> for Value {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_bytes() == *other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Value {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_bytes() == &other[..]
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&crate::error::KeyDisplay::new(self.as_bytes()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_holds_its_bytes_through_clones_and_drops() {
        let values = [
            Value::from_slice(b""),
            Value::from_slice(b"a"),
            Value::from(vec![7u8; 1000]),
        ];
        for value in values {
            let expected = value.to_vec();
            let copies: Vec<Value> = (0..5).map(|_| value.clone()).collect();
            drop(value);
            for copy in &copies {
                assert_eq!(copy.as_bytes(), &expected[..]);
            }
        }
    }

    #[test]
    fn values_compare_and_hash_as_their_bytes() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |value: &dyn Fn(&mut DefaultHasher)| {
            let mut hasher = DefaultHasher::new();
            value(&mut hasher);
            hasher.finish()
        };
        let a = Value::from("abc");
        let b = Value::from_slice(b"abc");
        assert_eq!(a, b);
        assert_eq!(a, &b"abc"[..]);
        assert!(Value::from("abb") < a);
        assert_eq!(
            hash(&|hasher| a.hash(hasher)),
            hash(&|hasher| b"abc"[..].hash(hasher))
        );
    }

    #[test]
    fn clones_across_threads_free_the_block_once() {
        let value = Value::from("shared");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let value = value.clone();
                scope.spawn(move || {
                    for _ in 0..1000 {
                        let copy = value.clone();
                        assert_eq!(copy.as_bytes(), b"shared");
                    }
                });
            }
        });
        assert_eq!(value.as_bytes(), b"shared");
    }
}
