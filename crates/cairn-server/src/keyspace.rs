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
//! - The engine prefix `[D] b's'` is reserved for the members of collections (hashes, lists,
//!   sets, sorted sets), which are not built yet.

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
}

impl Kind {
    /// The name `TYPE` and `SCAN ... TYPE` use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
        }
    }

    fn code(self) -> u8 {
        match self {
            Kind::String => 0,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        match code {
            0 => Some(Kind::String),
            _ => None,
        }
    }
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
    fn a_key_is_live_through_its_deadline_millisecond() {
        let record = encode(Kind::String, Some(100), b"");
        let entry = decode(&record).expect("present");
        assert!(entry.is_live(100));
        assert!(!entry.is_live(101));
    }
}
