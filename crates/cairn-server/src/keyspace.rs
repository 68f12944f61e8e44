//! How Redis keys and values are laid out in Cairn's ordered keyspace (docs/design.md, "The
//! RESP server's keyspace", has the byte-by-byte table).
//!
//! - A key `K` of database `D` (0 to [`DATABASES`] - 1) is the engine key `[D] b'k' K`: its
//!   *metadata* record. One database is one engine prefix, so `FLUSHDB` clears one prefix and
//!   `SCAN` walks one in key order.
//! - The record's value opens with one byte: the type (low bits) and [`HAS_DEADLINE`]; then,
//!   if that bit is set, the expiry deadline in Unix milliseconds (8 bytes, little-endian);
//!   then the payload. A string's payload is its bytes.
//! - The deadline in the record is the truth: a key is live while `now <= deadline`, as in
//!   Redis, whatever the engine's own TTL says. The engine's TTL on the record is set a little
//!   *later* ([`REAP_SLACK_MILLIS`]), only so that its reaper reclaims the record; it can
//!   never hide a key that is still live.
//! - A collection (hash, list, set, sorted set) keeps a [`Collection`] header in its metadata
//!   record: a *version* unique to this incarnation of the key, and its element count (a list
//!   also its head and tail chunk ids). Its elements are records of their own under
//!   [`member_prefix`]: `[D] b'm' len(K) K version element`, with `len(K)` 4 bytes and
//!   `version` 8 bytes, big-endian, so one collection's elements are one contiguous range in
//!   element order. A sorted set also keeps `[D] b'z' len(K) K version score member`
//!   ([`score_prefix`]), ordered by score. A list's element records are chunks of up to
//!   [`LIST_CHUNK_ELEMENTS`] elements ([`ListChunk`]), keyed by chunk id.
//! - `DEL`, an overwrite or an expiry of a collection removes only its metadata record: O(1)
//!   whatever its size. Its elements, under a version no live key has any more, are garbage
//!   that the server's reclaimer deletes in the background (`reclaim`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Databases selectable with `SELECT` (Redis's default too).
pub const DATABASES: usize = 16;

/// The tag byte of a metadata record, after the database byte.
const META_TAG: u8 = b'k';

/// The type byte's bit that says a deadline follows.
pub const HAS_DEADLINE: u8 = 0x80;

/// How much later than a key's deadline the engine's own TTL falls.
pub const REAP_SLACK_MILLIS: u64 = 1_000;

/// The longest user key: the engine's key limit less the two prefix bytes.
pub const KEY_BYTES_MAX: usize = cairn::limits::KEY_BYTES_MAX - 2;

/// A value's type, as `TYPE` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string (bytes).
    String,
    /// A hash: fields and their values.
    Hash,
    /// A list of elements.
    List,
    /// A set of members.
    Set,
    /// A sorted set: members ordered by score.
    ZSet,
    /// A stream: entries ordered by id, and its consumer groups.
    Stream,
}

impl Kind {
    /// The name `TYPE` and `SCAN ... TYPE` use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }

    fn code(self) -> u8 {
        match self {
            Kind::String => 0,
            Kind::Hash => 1,
            // 2 was a list of one record per element, before lists were chunked: such a
            // record no longer decodes, so it is refused as damaged, never misread.
            Kind::List => 6,
            Kind::Set => 3,
            Kind::ZSet => 4,
            Kind::Stream => 5,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        match code {
            0 => Some(Kind::String),
            1 => Some(Kind::Hash),
            6 => Some(Kind::List),
            3 => Some(Kind::Set),
            4 => Some(Kind::ZSet),
            5 => Some(Kind::Stream),
            _ => None,
        }
    }
}

/// The tag of element records, after the database byte.
const MEMBER_TAG: u8 = b'm';
/// The tag of sorted-set score records.
const SCORE_TAG: u8 = b'z';
/// The tag of a stream's consumer-group and pending-entry records.
const STREAM_TAG: u8 = b'x';

/// A list's first chunk id: ids grow both ways from the middle of `u64`.
pub const LIST_ORIGIN: u64 = 1 << 63;

/// The most elements a push puts in one list chunk; the next push at that end starts a new
/// chunk.
pub const LIST_CHUNK_ELEMENTS: u32 = 32;

/// The most bytes (its whole encoding) a push fills a list chunk to; an element too large to
/// fit an empty chunk gets a chunk of its own.
pub const LIST_CHUNK_BYTES: usize = 2048;

/// A run of a list's elements, the value of one element record: a 4-byte little-endian
/// count, then each element as a 4-byte little-endian length and its bytes.
///
/// Invariants, held by every constructor and edit: the count is the number of elements the
/// bytes hold, and the bytes end with the last element. A stored chunk is never empty: a
/// list drops a chunk its pops empty. The edits ([`ListChunk::push_front`] and the others)
/// change the bytes in place, so a push at a list's end copies one chunk, not one record per
/// element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListChunk {
    bytes: Vec<u8>,
}

/// One element's length prefix; `None` for an element longer than a chunk can say.
fn element_length(element: &[u8]) -> Option<[u8; 4]> {
    u32::try_from(element.len()).ok().map(u32::to_le_bytes)
}

/// The elements of an encoded chunk, first to last; `None` if `bytes` is not a stored chunk
/// (damaged, or empty). Reads use this and copy nothing.
pub fn chunk_elements(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let (count, mut rest) = bytes.split_first_chunk::<4>()?;
    let count = usize::try_from(u32::from_le_bytes(*count)).ok()?;
    if count == 0 {
        return None;
    }
    let mut elements = Vec::with_capacity(count.min(rest.len() / 4));
    while let Some((length, after)) = rest.split_first_chunk::<4>() {
        let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
        let (element, after) = after.split_at_checked(length)?;
        elements.push(element);
        rest = after;
    }
    (rest.is_empty() && elements.len() == count).then_some(elements)
}

/// Walks an encoded chunk without copying: where its last element's length prefix starts,
/// or `None` if `bytes` is not a stored chunk (damaged, or empty).
fn last_element_at(bytes: &[u8]) -> Option<usize> {
    let count = chunk_count(bytes)?;
    let mut at = 4;
    let mut last = None;
    let mut walked = 0_u32;
    while at < bytes.len() {
        let length = bytes.get(at..at + 4)?.first_chunk::<4>()?;
        let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
        last = Some(at);
        at = at.checked_add(4 + length)?;
        walked = walked.checked_add(1)?;
    }
    (at == bytes.len() && walked == count).then_some(last?)
}

/// The element count of an encoded chunk, read without walking it.
pub fn chunk_count(bytes: &[u8]) -> Option<u32> {
    bytes
        .first_chunk::<4>()
        .map(|count| u32::from_le_bytes(*count))
}

impl ListChunk {
    /// A chunk of `elements`; `None` for none, or for one longer than 4 GiB.
    pub fn of<'a>(elements: impl IntoIterator<Item = &'a [u8]>) -> Option<ListChunk> {
        let mut chunk = ListChunk { bytes: vec![0; 4] };
        for element in elements {
            if !chunk.push_back(element) {
                return None;
            }
        }
        (chunk.count() > 0).then_some(chunk)
    }

    /// Decodes a stored chunk; `None` if `bytes` is not one.
    pub fn decode(bytes: &[u8]) -> Option<ListChunk> {
        last_element_at(bytes)?;
        Some(ListChunk {
            bytes: bytes.to_vec(),
        })
    }

    /// The encoding, as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many elements the chunk holds.
    pub fn count(&self) -> u32 {
        chunk_count(&self.bytes).unwrap_or(0)
    }

    /// The elements, first to last.
    pub fn elements(&self) -> Vec<&[u8]> {
        chunk_elements(&self.bytes).unwrap_or_default()
    }

    /// Whether a push may add `element` to this chunk: it holds fewer than
    /// [`LIST_CHUNK_ELEMENTS`] and stays within [`LIST_CHUNK_BYTES`].
    pub fn has_room_for(&self, element: &[u8]) -> bool {
        self.count() < LIST_CHUNK_ELEMENTS
            && self.bytes.len() + 4 + element.len() <= LIST_CHUNK_BYTES
    }

    fn set_count(&mut self, count: u32) {
        if let Some(prefix) = self.bytes.first_chunk_mut::<4>() {
            *prefix = count.to_le_bytes();
        }
    }

    /// Puts `element` before the first; `false` (and no change) for an element longer than
    /// 4 GiB or a chunk of `u32::MAX` elements.
    pub fn push_front(&mut self, element: &[u8]) -> bool {
        let (Some(length), Some(count)) = (element_length(element), self.count().checked_add(1))
        else {
            return false;
        };
        let held = self.bytes.len();
        let added = 4 + element.len();
        self.bytes.resize(held + added, 0);
        self.bytes.copy_within(4..held, 4 + added);
        if let Some(room) = self.bytes.get_mut(4..4 + added) {
            let (prefix, bytes) = room.split_at_mut(4);
            prefix.copy_from_slice(&length);
            bytes.copy_from_slice(element);
        }
        self.set_count(count);
        true
    }

    /// Puts `element` after the last; `false` (and no change) as [`ListChunk::push_front`].
    pub fn push_back(&mut self, element: &[u8]) -> bool {
        let (Some(length), Some(count)) = (element_length(element), self.count().checked_add(1))
        else {
            return false;
        };
        self.bytes.extend_from_slice(&length);
        self.bytes.extend_from_slice(element);
        self.set_count(count);
        true
    }

    /// Takes the first element (`None` when empty).
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let (length, after) = self.bytes.get(4..)?.split_first_chunk::<4>()?;
        let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
        let first = after.get(..length)?.to_vec();
        let count = self.count() - 1;
        self.bytes.drain(4..8 + first.len());
        self.set_count(count);
        Some(first)
    }

    /// Takes the last element (`None` when empty).
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let at = last_element_at(&self.bytes)?;
        let last = self.bytes.get(at + 4..)?.to_vec();
        let count = self.count() - 1;
        self.bytes.truncate(at);
        self.set_count(count);
        Some(last)
    }

    /// Replaces element `index`; `false` (and no change) when there is none, or for an
    /// element longer than 4 GiB.
    pub fn set(&mut self, index: usize, element: &[u8]) -> bool {
        let elements = self.elements();
        if index >= elements.len() || element_length(element).is_none() {
            return false;
        }
        let Some(chunk) = ListChunk::of(elements.iter().enumerate().map(|(at, old)| {
            if at == index {
                element
            } else {
                *old
            }
        })) else {
            return false;
        };
        *self = chunk;
        true
    }
}

/// The header of a collection's metadata record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collection {
    /// Unique to this incarnation of the key; its elements carry it.
    pub version: u64,
    /// Elements held.
    pub count: u64,
    /// A list's first chunk id (others: [`LIST_ORIGIN`]).
    pub head: u64,
    /// A list's chunk id after its last (others: [`LIST_ORIGIN`]); the ids between are all
    /// chunks, none empty.
    pub tail: u64,
}

impl Collection {
    /// A new, empty collection.
    pub fn new(version: u64) -> Collection {
        Collection {
            version,
            count: 0,
            head: LIST_ORIGIN,
            tail: LIST_ORIGIN,
        }
    }

    /// The header's bytes (the metadata record's payload).
    pub fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (slot, value) in
            out.chunks_exact_mut(8)
                .zip([self.version, self.count, self.head, self.tail])
        {
            slot.copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Decodes a header; `None` if `payload` is not one.
    pub fn decode(payload: &[u8]) -> Option<Collection> {
        let words: &[u8; 32] = payload.try_into().ok()?;
        let mut values = words
            .chunks_exact(8)
            .map(|word| word.try_into().map_or(0, u64::from_le_bytes));
        let collection = Collection {
            version: values.next()?,
            count: values.next()?,
            head: values.next()?,
            tail: values.next()?,
        };
        (collection.head <= collection.tail).then_some(collection)
    }
}

fn collection_prefix(tag: u8, db: u8, key: &[u8], version: u64) -> Vec<u8> {
    collection_key(tag, db, key, version, &[])
}

/// A record key under [`collection_prefix`], `suffix` after the prefix, in one allocation.
fn collection_key(tag: u8, db: u8, key: &[u8], version: u64, suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 14 + suffix.len());
    out.push(db);
    out.push(tag);
    out.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(suffix);
    out
}

/// The engine prefix of every element record of collection `version` of `key`.
pub fn member_prefix(db: u8, key: &[u8], version: u64) -> Vec<u8> {
    collection_prefix(MEMBER_TAG, db, key, version)
}

/// The engine key of element `element` of collection `version` of `key`: its
/// [`member_prefix`], then the element.
pub fn member_key(db: u8, key: &[u8], version: u64, element: &[u8]) -> Vec<u8> {
    collection_key(MEMBER_TAG, db, key, version, element)
}

/// The engine prefix of every score record of sorted set `version` of `key`.
pub fn score_prefix(db: u8, key: &[u8], version: u64) -> Vec<u8> {
    collection_prefix(SCORE_TAG, db, key, version)
}

/// The engine prefix of every group and pending-entry record of stream `version` of `key`.
pub fn stream_prefix(db: u8, key: &[u8], version: u64) -> Vec<u8> {
    collection_prefix(STREAM_TAG, db, key, version)
}

/// The engine prefixes of every record a collection keeps besides its metadata record, in
/// key order: elements, stream groups, scores. The reclaimer walks these.
pub fn element_prefixes(db: u8) -> [[u8; 2]; 3] {
    [[db, MEMBER_TAG], [db, STREAM_TAG], [db, SCORE_TAG]]
}

/// The prefixes of every record collection `version` of `key` keeps besides its metadata
/// record, one per tag of [`element_prefixes`] (`RENAME` moves them).
pub fn collection_prefixes(db: u8, key: &[u8], version: u64) -> [Vec<u8>; 3] {
    [
        member_prefix(db, key, version),
        stream_prefix(db, key, version),
        score_prefix(db, key, version),
    ]
}

/// The version of a collection's metadata payload (a [`Collection`] or a [`StreamHeader`]:
/// both open with it), `None` if it is too short.
pub fn version_of(payload: &[u8]) -> Option<u64> {
    payload
        .first_chunk::<8>()
        .map(|word| u64::from_le_bytes(*word))
}

/// A stream entry id: milliseconds and a sequence number, ordered as the pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// The milliseconds part.
    pub ms: u64,
    /// The sequence number within the millisecond.
    pub seq: u64,
}

impl StreamId {
    /// The smallest id, `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest id.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// The 16 bytes an entry's record key ends with: both parts big-endian, so records sort
    /// as ids.
    pub fn to_key_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (ms, seq) = out.split_at_mut(8);
        ms.copy_from_slice(&self.ms.to_be_bytes());
        seq.copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// The inverse of [`StreamId::to_key_bytes`]; `None` unless `bytes` is 16 bytes long.
    pub fn from_key_bytes(bytes: &[u8]) -> Option<StreamId> {
        let (ms, seq) = bytes.split_first_chunk::<8>()?;
        let seq: &[u8; 8] = seq.try_into().ok()?;
        Some(StreamId {
            ms: u64::from_be_bytes(*ms),
            seq: u64::from_be_bytes(*seq),
        })
    }

    /// The next id, `None` after [`StreamId::MAX`].
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The previous id, `None` before [`StreamId::MIN`].
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self
                .ms
                .checked_sub(1)
                .map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// The header of a stream's metadata record: its version (as a [`Collection`]'s), its entry
/// count, and the last id it ever gave, which stays after the entry is trimmed or deleted.
/// A stream, unlike the other collections, lives on when it is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    /// Unique to this incarnation of the key; its records carry it.
    pub version: u64,
    /// Entries held.
    pub count: u64,
    /// The greatest id ever added (`0-0` for none).
    pub last_id: StreamId,
}

impl StreamHeader {
    /// The header's bytes: the four words little-endian.
    pub fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (slot, value) in out.chunks_exact_mut(8).zip([
            self.version,
            self.count,
            self.last_id.ms,
            self.last_id.seq,
        ]) {
            slot.copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Decodes a header; `None` if `payload` is not one.
    pub fn decode(payload: &[u8]) -> Option<StreamHeader> {
        let words: &[u8; 32] = payload.try_into().ok()?;
        let mut values = words
            .chunks_exact(8)
            .map(|word| word.try_into().map_or(0, u64::from_le_bytes));
        Some(StreamHeader {
            version: values.next()?,
            count: values.next()?,
            last_id: StreamId {
                ms: values.next()?,
                seq: values.next()?,
            },
        })
    }
}

/// Splits an element or score record's engine key into its user key, version and the rest.
pub fn split_element_key(engine_key: &[u8]) -> Option<(&[u8], u64, &[u8])> {
    let rest = engine_key.get(2..)?;
    let (length, rest) = rest.split_first_chunk::<4>()?;
    let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
    let key = rest.get(..length)?;
    let (version, element) = rest.get(length..)?.split_first_chunk::<8>()?;
    Some((key, u64::from_be_bytes(*version), element))
}

/// A score as 8 bytes that sort as the scores do (negative before positive).
pub fn sortable_score(score: f64) -> [u8; 8] {
    let bits = score.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    ordered.to_be_bytes()
}

/// The inverse of [`sortable_score`].
pub fn score_from_sortable(bytes: [u8; 8]) -> f64 {
    let ordered = u64::from_be_bytes(bytes);
    let bits = if ordered >> 63 == 1 {
        ordered & !(1 << 63)
    } else {
        !ordered
    };
    f64::from_bits(bits)
}

/// A stream entry's record value: each field and value with its length (4 bytes,
/// big-endian) before it.
pub fn encode_stream_fields<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(|item| item.as_ref().len() + 4).sum());
    for item in items {
        let item = item.as_ref();
        out.extend_from_slice(&u32::try_from(item.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// The fields and values of a stream entry's record value; `None` if it is not one (a length
/// past the end, or an odd count).
pub fn decode_stream_fields(mut value: &[u8]) -> Option<Vec<&[u8]>> {
    let mut items = Vec::new();
    while !value.is_empty() {
        let (length, rest) = value.split_first_chunk::<4>()?;
        let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
        items.push(rest.get(..length)?);
        value = rest.get(length..)?;
    }
    (items.len() % 2 == 0).then_some(items)
}

/// A consumer group's record value: its last delivered id (milliseconds and sequence, 8 bytes
/// each, little-endian).
pub fn encode_group(last: StreamId) -> [u8; 16] {
    let mut out = [0u8; 16];
    let (ms, seq) = out.split_at_mut(8);
    ms.copy_from_slice(&last.ms.to_le_bytes());
    seq.copy_from_slice(&last.seq.to_le_bytes());
    out
}

/// The inverse of [`encode_group`]; `None` unless `value` is 16 bytes.
pub fn group_last_id(value: &[u8]) -> Option<StreamId> {
    let (ms, rest) = value.split_first_chunk::<8>()?;
    let seq: &[u8; 8] = rest.try_into().ok()?;
    Some(StreamId {
        ms: u64::from_le_bytes(*ms),
        seq: u64::from_le_bytes(*seq),
    })
}

/// A pending entry's record value: its delivery time (Unix ms) and delivery count (8 bytes
/// each, little-endian), then the consumer's name.
pub fn encode_pending(delivered_ms: u64, deliveries: u64, consumer: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + consumer.len());
    out.extend_from_slice(&delivered_ms.to_le_bytes());
    out.extend_from_slice(&deliveries.to_le_bytes());
    out.extend_from_slice(consumer);
    out
}

/// The inverse of [`encode_pending`]: delivery time, delivery count and consumer; `None` if
/// `value` is shorter than 16 bytes.
pub fn decode_pending(value: &[u8]) -> Option<(u64, u64, &[u8])> {
    let (delivered, rest) = value.split_first_chunk::<8>()?;
    let (deliveries, consumer) = rest.split_first_chunk::<8>()?;
    Some((
        u64::from_le_bytes(*delivered),
        u64::from_le_bytes(*deliveries),
        consumer,
    ))
}

/// The consumer of a pending entry's record value.
pub fn pending_consumer(value: &[u8]) -> Option<&[u8]> {
    decode_pending(value).map(|(_, _, consumer)| consumer)
}

/// A consumer's record value: when it was last seen (Unix ms, 8 bytes, little-endian).
pub fn encode_consumer(seen_ms: u64) -> [u8; 8] {
    seen_ms.to_le_bytes()
}

/// The inverse of [`encode_consumer`]; `None` unless `value` is 8 bytes.
pub fn decode_consumer(value: &[u8]) -> Option<u64> {
    value.try_into().ok().map(u64::from_le_bytes)
}

/// The engine key of user key `key` in database `db`.
pub fn meta_key(db: u8, key: &[u8]) -> Vec<u8> {
    debug_assert!(usize::from(db) < DATABASES);
    let mut out = Vec::with_capacity(key.len() + 2);
    out.push(db);
    out.push(META_TAG);
    out.extend_from_slice(key);
    out
}

/// Whether `engine_key` is a key's metadata record (as [`meta_key`] makes them).
pub fn is_meta_key(engine_key: &[u8]) -> bool {
    engine_key.get(1) == Some(&META_TAG)
}

/// The engine prefix of every metadata record of database `db`.
pub fn meta_prefix(db: u8) -> [u8; 2] {
    [db, META_TAG]
}

/// The engine prefix of everything database `db` holds.
pub fn db_prefix(db: u8) -> [u8; 1] {
    [db]
}

/// The user key of an engine key under [`meta_prefix`].
pub fn user_key(engine_key: &[u8]) -> &[u8] {
    engine_key.get(2..).unwrap_or_default()
}

/// A decoded metadata record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The value's type.
    pub kind: Kind,
    /// When the key expires, in Unix milliseconds.
    pub deadline: Option<u64>,
    /// The type's payload (a string's bytes).
    pub payload: &'a [u8],
}

impl Entry<'_> {
    /// Whether the key is live at `now` (Unix milliseconds).
    pub fn is_live(&self, now: u64) -> bool {
        self.deadline.is_none_or(|deadline| now <= deadline)
    }
}

/// Decodes a metadata record; `None` if its bytes are not one (the server reports that key as
/// damaged rather than guessing).
pub fn decode(record: &[u8]) -> Option<Entry<'_>> {
    let (&tag, rest) = record.split_first()?;
    let kind = Kind::from_code(tag & !HAS_DEADLINE)?;
    if tag & HAS_DEADLINE == 0 {
        return Some(Entry {
            kind,
            deadline: None,
            payload: rest,
        });
    }
    let (deadline, payload) = rest.split_first_chunk::<8>()?;
    Some(Entry {
        kind,
        deadline: Some(u64::from_le_bytes(*deadline)),
        payload,
    })
}

/// Encodes a metadata record.
pub fn encode(kind: Kind, deadline: Option<u64>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 9);
    match deadline {
        None => out.push(kind.code()),
        Some(deadline) => {
            out.push(kind.code() | HAS_DEADLINE);
            out.extend_from_slice(&deadline.to_le_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Now, in Unix milliseconds (0 if the clock reads before 1970).
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_and_without_a_deadline() {
        for deadline in [None, Some(0), Some(u64::MAX)] {
            let record = encode(Kind::String, deadline, b"payload");
            let entry = decode(&record).expect("present");
            assert_eq!(entry.kind, Kind::String);
            assert_eq!(entry.deadline, deadline);
            assert_eq!(entry.payload, b"payload");
        }
        assert_eq!(decode(b""), None);
        assert_eq!(decode(&[0x7f]), None);
        assert_eq!(decode(&[HAS_DEADLINE, 1, 2]), None);
    }

    #[test]
    fn collection_headers_and_element_keys_round_trip() {
        let header = Collection {
            version: 7,
            count: 3,
            head: LIST_ORIGIN - 1,
            tail: LIST_ORIGIN + 2,
        };
        assert_eq!(Collection::decode(&header.encode()), Some(header));
        assert_eq!(Collection::decode(&[0; 31]), None);
        let mut key = member_prefix(3, b"user:1", 99);
        key.extend_from_slice(b"field");
        assert_eq!(
            split_element_key(&key),
            Some((&b"user:1"[..], 99, &b"field"[..]))
        );
        assert_eq!(split_element_key(&key[..9]), None);
    }

    #[test]
    fn sortable_scores_sort_as_the_scores() {
        let scores = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -0.0,
            0.0,
            1e-300,
            3.0,
            f64::INFINITY,
        ];
        for pair in scores.windows(2) {
            assert!(
                sortable_score(pair[0]) <= sortable_score(pair[1]),
                "{pair:?}"
            );
        }
        for score in scores {
            assert_eq!(
                score_from_sortable(sortable_score(score)).to_bits(),
                score.to_bits()
            );
        }
    }

    #[test]
    fn stream_records_round_trip_and_damage_is_refused() {
        let items: [&[u8]; 2] = [b"f", b""];
        let encoded = encode_stream_fields(&items);
        assert_eq!(decode_stream_fields(&encoded), Some(items.to_vec()));
        for cut in 1..encoded.len() {
            assert_eq!(
                decode_stream_fields(encoded.get(..cut).unwrap_or_default()),
                None
            );
        }
        assert_eq!(
            decode_stream_fields(&encode_stream_fields(&items[..1])),
            None,
            "an odd count is not an entry"
        );
        let id = StreamId {
            ms: 7,
            seq: u64::MAX,
        };
        assert_eq!(group_last_id(&encode_group(id)), Some(id));
        assert_eq!(group_last_id(&[0; 15]), None);
        let pending = encode_pending(5, 2, b"consumer");
        assert_eq!(decode_pending(&pending), Some((5, 2, &b"consumer"[..])));
        assert_eq!(decode_pending(&pending[..15]), None);
    }

    #[test]
    fn a_key_is_live_through_its_deadline_millisecond() {
        let record = encode(Kind::String, Some(100), b"");
        let entry = decode(&record).expect("present");
        assert!(entry.is_live(100));
        assert!(!entry.is_live(101));
    }
}
