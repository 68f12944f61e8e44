//! What a repository stores: the [`Record`] trait (primary key, secondary indexes, schema
//! version), the [`PrimaryKey`] byte encoding and the [`IndexValue`] an index is keyed by.
//!
//! Guarantees: a primary key's byte encoding sorts exactly as the key's `Ord` does (so a
//! memtable, ordered by `Ord`, and a store, ordered by bytes, agree on `scan` order), and
//! decoding a key's encoding gives the key back. An [`IndexValue`] compares as its bytes, so an
//! ordered index sorts integers built with [`IndexValue::from_u64`] / [`IndexValue::from_i64`]
//! numerically and strings by their UTF-8 bytes.
//!
//! A stored record is one schema-version byte ([`Record::SCHEMA_VERSION`]) followed by the
//! record's `postcard` encoding. A record read back with another version byte goes through
//! [`Record::upgrade`], which by default refuses it with a typed error.

use std::fmt::Debug;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;
use smallvec::SmallVec;

use crate::error::{Error, Result};

/// The kind of a secondary index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    /// At most one live record holds each value; a second one is refused with
    /// [`Error::UniqueViolation`]. Exact lookups only.
    Unique,
    /// Any number of records may hold a value; exact lookups return all of them. Stored as
    /// (value, primary key) pairs, so a value held by millions of records costs the same per
    /// record as any other.
    NonUnique,
    /// Like [`IndexKind::NonUnique`], and also answers range and prefix queries over values.
    Ordered,
}

/// One secondary index of a record type: a name (used in queries and in store keys) and a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSpec {
    /// The index name. Changing it orphans the entries already stored under the old name.
    pub name: &'static str,
    /// Its kind.
    pub kind: IndexKind,
}

impl IndexSpec {
    /// An index named `name` of kind `kind`.
    pub const fn new(name: &'static str, kind: IndexKind) -> Self {
        IndexSpec { name, kind }
    }
}

/// The value a record holds for one index: bytes, compared as bytes. Values up to 22 bytes are
/// stored inline, without an allocation.
///
/// Beside the bytes it keeps their first eight, zero-padded, as a big-endian `u64` (`head`):
/// two values whose heads differ compare as their heads do, so most comparisons in an ordered
/// index are one integer comparison instead of a `memcmp` call. (Zero padding never inverts an
/// order: a shorter value padded with zeros is at most any value it is a prefix of, and equal
/// heads fall back to the bytes.)
#[derive(Debug, Default)]
pub struct IndexValue {
    head: u64,
    bytes: SmallVec<[u8; 22]>,
}

// By hand rather than derived: the slice paths are a plain copy and a `memcmp`, where the
// derived ones go through `SmallVec`'s generic iterator code (a measurable share of an insert).
impl Clone for IndexValue {
    fn clone(&self) -> Self {
        IndexValue {
            head: self.head,
            bytes: SmallVec::from_slice(&self.bytes),
        }
    }
}

impl PartialEq for IndexValue {
    fn eq(&self, other: &Self) -> bool {
        // Equal heads and lengths settle values of up to eight bytes; longer ones compare the
        // rest.
        let (mine, theirs) = (self.as_bytes(), other.as_bytes());
        self.head == other.head
            && mine.len() == theirs.len()
            && mine.get(8..).unwrap_or_default() == theirs.get(8..).unwrap_or_default()
    }
}

impl Eq for IndexValue {}

// The bytes alone: `head` is a function of them, so equal values hash alike.
impl std::hash::Hash for IndexValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for IndexValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IndexValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.head
            .cmp(&other.head)
            .then_with(|| self.as_bytes().cmp(other.as_bytes()))
    }
}

/// The first eight bytes of `bytes`, zero-padded, big-endian.
fn head_of(bytes: &[u8]) -> u64 {
    let mut head = [0_u8; 8];
    for (to, from) in head.iter_mut().zip(bytes) {
        *to = *from;
    }
    u64::from_be_bytes(head)
}

impl IndexValue {
    /// The value of these bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        IndexValue {
            head: head_of(bytes),
            bytes: SmallVec::from_slice(bytes),
        }
    }

    /// An unsigned integer, big-endian, so that values sort numerically.
    pub fn from_u64(value: u64) -> Self {
        IndexValue {
            head: value,
            bytes: SmallVec::from_slice(&value.to_be_bytes()),
        }
    }

    /// A signed integer, big-endian with the sign bit flipped, so that values sort
    /// numerically (negative before positive).
    pub fn from_i64(value: i64) -> Self {
        IndexValue::from_u64(value.cast_unsigned() ^ (1 << 63))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// True when the value starts with `prefix`.
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.bytes.starts_with(prefix)
    }
}

impl From<&str> for IndexValue {
    fn from(value: &str) -> Self {
        IndexValue::from_bytes(value.as_bytes())
    }
}

impl From<String> for IndexValue {
    fn from(value: String) -> Self {
        IndexValue::from_bytes(value.as_bytes())
    }
}

impl From<&String> for IndexValue {
    fn from(value: &String) -> Self {
        IndexValue::from_bytes(value.as_bytes())
    }
}

impl From<&[u8]> for IndexValue {
    fn from(value: &[u8]) -> Self {
        IndexValue::from_bytes(value)
    }
}

impl From<u64> for IndexValue {
    fn from(value: u64) -> Self {
        IndexValue::from_u64(value)
    }
}

impl From<u32> for IndexValue {
    fn from(value: u32) -> Self {
        IndexValue::from_u64(u64::from(value))
    }
}

impl From<i64> for IndexValue {
    fn from(value: i64) -> Self {
        IndexValue::from_i64(value)
    }
}

/// A record's primary key: ordered, hashable, and encodable to bytes that sort like the key.
pub trait PrimaryKey: Clone + Ord + Hash + Debug + Send + Sync + 'static {
    /// Appends the key's encoding to `out`. It must sort (as bytes) exactly as `Ord` does, and
    /// [`PrimaryKey::decode_key`] must give the key back.
    fn encode_key(&self, out: &mut Vec<u8>);

    /// The key encoded in `bytes`, or `None` when they are no such encoding.
    fn decode_key(bytes: &[u8]) -> Option<Self>;
}

impl PrimaryKey for u64 {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }

    fn decode_key(bytes: &[u8]) -> Option<Self> {
        Some(u64::from_be_bytes(bytes.try_into().ok()?))
    }
}

impl PrimaryKey for u32 {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }

    fn decode_key(bytes: &[u8]) -> Option<Self> {
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }
}

impl PrimaryKey for i64 {
    fn encode_key(&self, out: &mut Vec<u8>) {
        let flipped = self.cast_unsigned() ^ (1 << 63);
        out.extend_from_slice(&flipped.to_be_bytes());
    }

    fn decode_key(bytes: &[u8]) -> Option<Self> {
        let flipped = u64::from_be_bytes(bytes.try_into().ok()?);
        Some((flipped ^ (1 << 63)).cast_signed())
    }
}

impl PrimaryKey for String {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }

    fn decode_key(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl PrimaryKey for Vec<u8> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }

    fn decode_key(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
}

/// The index values of one record, one slot per index in [`Record::INDEXES`] order.
pub type IndexValues = SmallVec<[Option<IndexValue>; 4]>;

/// A record type a [`crate::Repository`] stores.
///
/// ```
/// use cairn_memtable::{IndexKind, IndexSpec, IndexValue, Record};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize)]
/// struct User { id: u64, email: String, team: u32 }
///
/// impl Record for User {
///     type Key = u64;
///     const INDEXES: &'static [IndexSpec] = &[
///         IndexSpec::new("email", IndexKind::Unique),
///         IndexSpec::new("team", IndexKind::NonUnique),
///     ];
///     fn key(&self) -> u64 { self.id }
///     fn index_value(&self, index: usize) -> Option<IndexValue> {
///         match index {
///             0 => Some(IndexValue::from(&self.email)),
///             1 => Some(IndexValue::from(self.team)),
///             _ => None,
///         }
///     }
/// }
/// ```
pub trait Record: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The primary key.
    type Key: PrimaryKey;

    /// The schema version written before every stored record (default 1). Raise it when the
    /// serialized shape changes, and teach [`Record::upgrade`] to read the older versions.
    const SCHEMA_VERSION: u8 = 1;

    /// The secondary indexes, in the order [`Record::index_value`] numbers them. At most 255.
    const INDEXES: &'static [IndexSpec] = &[];

    /// The record's primary key.
    fn key(&self) -> Self::Key;

    /// The value this record holds for index number `index` (a position in
    /// [`Record::INDEXES`]); `None` leaves the record out of that index.
    fn index_value(&self, index: usize) -> Option<IndexValue> {
        let _ = index;
        None
    }

    /// Reads a record stored with schema version `version` (not [`Record::SCHEMA_VERSION`]),
    /// given the bytes after the version byte. The default refuses every other version.
    fn upgrade(version: u8, bytes: &[u8]) -> Result<Self> {
        let _ = bytes;
        Err(Error::SchemaVersion {
            found: version,
            expected: Self::SCHEMA_VERSION,
        })
    }

    /// An estimate of the memory one record takes, used for rotation by size. The default is
    /// its encoded length plus the size of the type, which suits records of plain data.
    fn memory_bytes(&self, encoded_len: usize) -> usize {
        encoded_len.saturating_add(std::mem::size_of::<Self>())
    }
}

/// Every index value of `record`.
pub(crate) fn index_values<R: Record>(record: &R) -> IndexValues {
    (0..R::INDEXES.len())
        .map(|index| record.index_value(index))
        .collect()
}

/// Appends `record`'s stored form (version byte, then `postcard`) to `out`.
pub(crate) fn encode_record<R: Record>(record: &R, out: &mut Vec<u8>) -> Result<()> {
    out.push(R::SCHEMA_VERSION);
    let taken = std::mem::take(out);
    match postcard::to_extend(record, taken) {
        Ok(encoded) => {
            *out = encoded;
            Ok(())
        }
        Err(error) => Err(Error::Encode(error.to_string())),
    }
}

/// The length of `record`'s stored form ([`encode_record`]), without building it.
pub(crate) fn encoded_len<R: Record>(record: &R) -> Result<usize> {
    let size = postcard::ser_flavors::Size::default();
    postcard::serialize_with_flavor::<R, _, usize>(record, size)
        .map(|len| len.saturating_add(1))
        .map_err(|error| Error::Encode(error.to_string()))
}

/// The record stored as `bytes` (see [`encode_record`]).
pub(crate) fn decode_record<R: Record>(bytes: &[u8]) -> Result<R> {
    let (&version, body) = bytes.split_first().ok_or(Error::Decode {
        reason: "an empty stored record".to_owned(),
    })?;
    if version != R::SCHEMA_VERSION {
        return R::upgrade(version, body);
    }
    postcard::from_bytes(body).map_err(|error| Error::Decode {
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Item {
        id: u64,
        name: String,
        tags: Vec<String>,
    }

    impl Record for Item {
        type Key = u64;
        fn key(&self) -> u64 {
            self.id
        }
    }

    #[test]
    fn encoded_len_is_the_length_of_the_encoding() {
        for n in [0_usize, 1, 127, 128, 300] {
            let item = Item {
                id: u64::MAX >> n.min(63),
                name: "x".repeat(n),
                tags: vec!["t".repeat(n / 3); n % 5],
            };
            let mut out = Vec::new();
            encode_record(&item, &mut out).expect("encodes");
            assert_eq!(encoded_len(&item).expect("measures"), out.len(), "n = {n}");
        }
    }

    #[test]
    fn key_encodings_sort_like_the_keys() {
        let ints = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        let encoded: Vec<Vec<u8>> = ints
            .iter()
            .map(|key| {
                let mut out = Vec::new();
                key.encode_key(&mut out);
                out
            })
            .collect();
        assert!(encoded.is_sorted());
        for (key, bytes) in ints.iter().zip(&encoded) {
            assert_eq!(i64::decode_key(bytes), Some(*key));
        }
        let values: Vec<IndexValue> = ints.iter().map(|v| IndexValue::from_i64(*v)).collect();
        assert!(values.is_sorted());
    }

    /// Values compare, and are equal, exactly as their bytes are: the short ones (padded
    /// heads), the long ones (equal heads, bytes decide), prefixes of one another and bytes
    /// above 0x7f, every pair of a seeded random set plus the edge cases.
    #[test]
    fn index_values_order_as_their_bytes() {
        let mut rng = cairn_testkit::SplitMix64::new(7);
        let mut samples: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            vec![1],
            vec![1, 0],
            vec![0xff; 8],
            vec![0xff; 9],
            b"abcdefgh".to_vec(),
            b"abcdefgh\0".to_vec(),
            b"abcdefghi".to_vec(),
            vec![0x80; 30],
        ];
        for _ in 0..200 {
            let len = usize::try_from(rng.next_u64() % 14).unwrap_or(0);
            // A small alphabet, so equal heads and common prefixes are frequent.
            let bytes = (0..len)
                .map(|_| {
                    [0_u8, 1, 0x7f, 0x80, 0xff][usize::try_from(rng.next_u64() % 5).unwrap_or(0)]
                })
                .collect();
            samples.push(bytes);
        }
        for a in &samples {
            for b in &samples {
                let (x, y) = (IndexValue::from_bytes(a), IndexValue::from_bytes(b));
                assert_eq!(x.cmp(&y), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(x == y, a == b, "{a:?} vs {b:?}");
            }
        }
        assert_eq!(
            IndexValue::from_u64(9),
            IndexValue::from_bytes(&9_u64.to_be_bytes())
        );
    }
}
