//! The store-key layout: how records and index entries are named in a persistent store, so
//! that a cold start can serve every query from the store alone.
//!
//! ```text
//! record            'r' pk                                  -> version byte + postcard record
//! unique entry      'u' esc(index name) T esc(value)        -> pk
//! non-unique entry  'n' esc(index name) T esc(value) T pk   -> (empty)
//! ```
//!
//! `pk` is the primary key's [`crate::PrimaryKey`] encoding; `esc` doubles every `0x00` byte as
//! `0x00 0xFF`, and `T` is the terminator `0x00 0x01`. Escaping keeps byte order and prefixes:
//! entries of one index sort by value and then by primary key, the entries of values starting
//! with `p` are exactly the keys starting with `'n' esc(name) T esc(p)`, and a value never runs
//! into the primary key that follows it. Ordered indexes use the non-unique layout.

use crate::record::IndexValue;

/// First byte of a record key.
pub(crate) const RECORD_TAG: u8 = b'r';
/// First byte of a unique index entry.
pub(crate) const UNIQUE_TAG: u8 = b'u';
/// First byte of a non-unique (or ordered) index entry.
pub(crate) const MULTI_TAG: u8 = b'n';

const TERMINATOR: [u8; 2] = [0x00, 0x01];

/// Appends `bytes` escaped (every `0x00` becomes `0x00 0xFF`).
pub(crate) fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
}

/// The store key of the record with encoded primary key `pk`.
pub(crate) fn record_key(pk: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(pk.len() + 1);
    key.push(RECORD_TAG);
    key.extend_from_slice(pk);
    key
}

/// The prefix of every entry of index `name` with tag `tag`.
pub(crate) fn index_prefix(tag: u8, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 3);
    key.push(tag);
    escape_into(name.as_bytes(), &mut key);
    key.extend_from_slice(&TERMINATOR);
    key
}

/// The store key of a unique entry.
pub(crate) fn unique_key(name: &str, value: &IndexValue) -> Vec<u8> {
    let mut key = index_prefix(UNIQUE_TAG, name);
    escape_into(value.as_bytes(), &mut key);
    key
}

/// The prefix of every non-unique entry of `value` (ends with the terminator).
pub(crate) fn multi_value_prefix(name: &str, value: &IndexValue) -> Vec<u8> {
    let mut key = index_prefix(MULTI_TAG, name);
    escape_into(value.as_bytes(), &mut key);
    key.extend_from_slice(&TERMINATOR);
    key
}

/// The store key of a non-unique entry.
pub(crate) fn multi_key(name: &str, value: &IndexValue, pk: &[u8]) -> Vec<u8> {
    let mut key = multi_value_prefix(name, value);
    key.extend_from_slice(pk);
    key
}

/// A key that sorts after every entry of `value` and before every entry of a larger value,
/// within the entries of one index (`after_prefix` is [`index_prefix`]).
pub(crate) fn after_value(index_prefix: &[u8], value: &IndexValue) -> Vec<u8> {
    let mut key = index_prefix.to_vec();
    escape_into(value.as_bytes(), &mut key);
    key.extend_from_slice(&[0x00, 0x02]);
    key
}

/// A key that sorts before every entry of `value` and after every entry of a smaller value.
pub(crate) fn before_value(index_prefix: &[u8], value: &IndexValue) -> Vec<u8> {
    let mut key = index_prefix.to_vec();
    escape_into(value.as_bytes(), &mut key);
    key
}

/// Splits the part of a non-unique entry key after its index prefix into (value, pk bytes).
/// `None` for bytes that are no such entry.
pub(crate) fn split_multi_entry(rest: &[u8]) -> Option<(IndexValue, &[u8])> {
    let mut value = Vec::new();
    let mut position = 0;
    loop {
        let byte = *rest.get(position)?;
        if byte == 0 {
            match *rest.get(position + 1)? {
                0xFF => value.push(0),
                0x01 => {
                    let pk = rest.get(position + 2..)?;
                    return Some((IndexValue::from_bytes(&value), pk));
                }
                _ => return None,
            }
            position += 2;
        } else {
            value.push(byte);
            position += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_sort_by_value_then_key_and_split_back() {
        let name = "i\0x";
        let values: Vec<IndexValue> = [&b""[..], b"\0", b"\0\0", b"\x01", b"a", b"a\0", b"ab"]
            .iter()
            .map(|v| IndexValue::from_bytes(v))
            .collect();
        let mut keys = Vec::new();
        for value in &values {
            for pk in [&b"\0"[..], b"\x05", b"zz"] {
                keys.push(multi_key(name, value, pk));
            }
        }
        assert!(keys.is_sorted(), "entries sort by value, then primary key");
        let prefix = index_prefix(MULTI_TAG, name);
        let first = keys.first().expect("entries");
        let (value, pk) = split_multi_entry(&first[prefix.len()..]).expect("an entry");
        assert_eq!((value.as_bytes(), pk), (&b""[..], &b"\0"[..]));
        for value in &values {
            let lower = before_value(&prefix, value);
            let upper = after_value(&prefix, value);
            for (key, owner) in keys.iter().zip(values.iter().flat_map(|v| [v, v, v])) {
                let inside = key.as_slice() > lower.as_slice() && key.as_slice() < upper.as_slice();
                assert_eq!(inside, owner == value, "bounds of {value:?}");
            }
        }
    }
}
