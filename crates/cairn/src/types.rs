//! The engine's vocabulary types: [`Key`], [`Value`], [`Version`].
//!
//! `Key` keeps keys of up to 24 bytes inline, so the ordered index compares short keys without
//! chasing a pointer. `Value` (module `value`) is a reference-counted byte string: reading it out
//! of the index costs one atomic increment on the key's record, never a copy. `Version` is a commit's sequence number, strictly
//! increasing for the life of the database.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use smallvec::SmallVec;

pub use crate::value::Value;

/// How many key bytes are stored inline, without a heap allocation.
const KEY_INLINE_BYTES: usize = 24;

/// A key: an ordered byte string. Derefs to `[u8]`; orders like `[u8]`.
#[derive(PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key(SmallVec<[u8; KEY_INLINE_BYTES]>);

impl Clone for Key {
    /// One copy of the bytes. (`SmallVec`'s derived clone goes through its generic `extend`,
    /// byte by byte: a scan, which clones every key it returns, spent 7 % of its time there.)
    fn clone(&self) -> Self {
        Key::from_slice(self.as_bytes())
    }
}

impl Key {
    /// Copies `bytes` into a new key. Length limits are checked by the calls that take keys,
    /// not here.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Key(SmallVec::from_slice(bytes))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key's bytes, as an owned vector.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }
}

impl Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Self {
        Key::from_slice(bytes)
    }
}

impl From<&str> for Key {
    fn from(text: &str) -> Self {
        Key::from_slice(text.as_bytes())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&crate::error::KeyDisplay::new(&self.0), f)
    }
}

/// One write inside a commit, borrowed from whoever holds its bytes (the caller's slice, a
/// batch's buffer, a transaction's writes, a WAL frame): what the commit path applies, the WAL
/// records and replay decodes. The commit copies the value once, into the key's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mutation<'a> {
    /// Set the value, with an absolute deadline in milliseconds (`mvcc::chain::NO_DEADLINE`
    /// for none).
    Put {
        value: &'a [u8],
        deadline_millis: u64,
    },
    /// Remove the key.
    Delete,
}

/// A commit's version: strictly increasing, one per commit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Version(pub(crate) u64);

impl Version {
    /// The version before the first commit.
    pub const ZERO: Version = Version(0);

    /// Builds a version from its number (for example, one stored by the caller).
    pub fn new(number: u64) -> Self {
        Version(number)
    }

    /// The version's number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}
