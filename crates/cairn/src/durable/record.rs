//! The body of a commit record: what one WAL frame says about one commit.
//!
//! A commit (single put, batch, transaction, `clear_prefix`, CAS, increment, TTL change) is
//! one frame whose body lists its mutations. The frame itself (length, LSN, version, CRC) is
//! `cairn_log`'s; this module owns only the body, little-endian:
//!
//! ```text
//! mutation_count u32
//! then per mutation:
//!   kind u8            1 = put, 2 = delete
//!   key_bytes u32      1 ..= 65,536
//!   key
//!   put only:
//!     deadline_millis u64   absolute TTL deadline; u64::MAX = none
//!     value_bytes u32
//!     value
//! ```
//!
//! Deadlines are absolute, so a key with a TTL expires at the same instant after a restart
//! and never comes back. Decoding checks every length against the bytes left and the key
//! limit, and never panics on any input (it is fuzzed).

use crate::limits;
use crate::types::Mutation;

/// Record type of a commit frame (the frame's `record_type` byte).
pub const RECORD_TYPE_COMMIT: u8 = 1;

const MUTATION_KIND_PUT: u8 = 1;
const MUTATION_KIND_DELETE: u8 = 2;

/// Appends the body of a commit holding `mutations` to `out`.
pub(crate) fn encode_commit<'k>(
    out: &mut Vec<u8>,
    mutations: impl IntoIterator<Item = (&'k [u8], Mutation<'k>)>,
) -> Result<(), String> {
    let count_at = out.len();
    out.extend_from_slice(&0_u32.to_le_bytes());
    let mut count: u32 = 0;
    for (key, mutation) in mutations {
        count = count
            .checked_add(1)
            .ok_or_else(|| "a commit holds more than u32::MAX mutations".to_owned())?;
        let key_bytes = u32::try_from(key.len()).map_err(|_| "key too long".to_owned())?;
        match mutation {
            Mutation::Put {
                value,
                deadline_millis,
            } => {
                let value_bytes = u32::try_from(value.len()).map_err(|_| {
                    format!("a {}-byte value does not fit a WAL record", value.len())
                })?;
                out.push(MUTATION_KIND_PUT);
                out.extend_from_slice(&key_bytes.to_le_bytes());
                out.extend_from_slice(key);
                out.extend_from_slice(&deadline_millis.to_le_bytes());
                out.extend_from_slice(&value_bytes.to_le_bytes());
                out.extend_from_slice(value);
            }
            Mutation::Delete => {
                out.push(MUTATION_KIND_DELETE);
                out.extend_from_slice(&key_bytes.to_le_bytes());
                out.extend_from_slice(key);
            }
        }
    }
    #[expect(
        clippy::indexing_slicing,
        reason = "the count's 4 bytes were pushed at `count_at`"
    )]
    out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    Ok(())
}

/// The exact length of the body `encode_commit` writes for `mutations` (saturating), so a
/// commit's size can be checked before anything is encoded or locked.
pub(crate) fn encoded_commit_bytes<'k>(
    mutations: impl IntoIterator<Item = (&'k [u8], Mutation<'k>)>,
) -> usize {
    mutations
        .into_iter()
        .fold(4_usize, |total, (key, mutation)| {
            let bytes = match mutation {
                Mutation::Put { value, .. } => 17_usize
                    .saturating_add(key.len())
                    .saturating_add(value.len()),
                Mutation::Delete => 5_usize.saturating_add(key.len()),
            };
            total.saturating_add(bytes)
        })
}

/// Decodes a commit body into its mutations, in order, borrowed from `body`. Any
/// inconsistency is an error that says what is wrong; nothing is allocated beyond the list.
pub(crate) fn decode_commit(body: &[u8]) -> Result<Vec<(&[u8], Mutation<'_>)>, String> {
    let mut mutations = Vec::new();
    decode_commit_with(body, |key, mutation| mutations.push((key, mutation)))?;
    Ok(mutations)
}

/// Decodes a commit body, handing each mutation to `visit` in order, borrowed from `body`,
/// with no list and no copy of its own (recovery's replay folds a million of them into
/// records). On an error `visit` may already have seen the mutations before the damage: a
/// caller that keeps them must drop them again.
pub(crate) fn decode_commit_with<'a>(
    body: &'a [u8],
    mut visit: impl FnMut(&'a [u8], Mutation<'a>),
) -> Result<(), String> {
    let mut reader = ByteReader { bytes: body, at: 0 };
    let count = reader.u32()?;
    // Each mutation takes at least 6 bytes; a count the body cannot hold is damage.
    if u64::from(count) * 6 > body.len() as u64 {
        return Err(format!(
            "commit claims {count} mutations but holds only {} bytes",
            body.len()
        ));
    }
    for _ in 0..count {
        let kind = reader.u8()?;
        let key_bytes = reader.u32()? as usize;
        if !(limits::KEY_BYTES_MIN..=limits::KEY_BYTES_MAX).contains(&key_bytes) {
            return Err(format!("key length {key_bytes} is outside 1..=65536"));
        }
        let key = reader.bytes(key_bytes)?;
        let mutation = match kind {
            MUTATION_KIND_PUT => {
                let deadline_millis = reader.u64()?;
                let value_bytes = reader.u32()? as usize;
                let value = reader.bytes(value_bytes)?;
                Mutation::Put {
                    value,
                    deadline_millis,
                }
            }
            MUTATION_KIND_DELETE => Mutation::Delete,
            other => return Err(format!("unknown mutation kind {other}")),
        };
        visit(key, mutation);
    }
    if reader.at != body.len() {
        return Err(format!(
            "{} bytes follow the last mutation",
            body.len() - reader.at
        ));
    }
    Ok(())
}

/// A bounds-checked little-endian cursor.
struct ByteReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> ByteReader<'a> {
    fn bytes(&mut self, len: usize) -> Result<&'a [u8], String> {
        let (end, slice) = self
            .at
            .checked_add(len)
            .and_then(|end| Some((end, self.bytes.get(self.at..end)?)))
            .ok_or_else(|| {
                format!(
                    "record ends after {} bytes; {len} more were expected at offset {}",
                    self.bytes.len(),
                    self.at
                )
            })?;
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, String> {
        let [byte] = self.array::<1>()?;
        Ok(byte)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut raw = [0_u8; N];
        raw.copy_from_slice(self.bytes(N)?);
        Ok(raw)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

/// One decoded write of a commit record: the key, and the value with its deadline
/// (`u64::MAX` = none), or `None` for a delete.
pub type DecodedWrite = (Vec<u8>, Option<(Vec<u8>, u64)>);

/// Decodes a commit record body into its writes, in order, for tools that read the files
/// (`cairn dump`, `cairn verify`). The engine itself uses the internal decoder.
pub fn decode_commit_body(body: &[u8]) -> Result<Vec<DecodedWrite>, String> {
    Ok(decode_commit(body)?
        .into_iter()
        .map(|(key, mutation)| {
            let write = match mutation {
                Mutation::Put {
                    value,
                    deadline_millis,
                } => Some((value.to_vec(), deadline_millis)),
                Mutation::Delete => None,
            };
            (key.to_vec(), write)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::chain::NO_DEADLINE;

    fn sample() -> Vec<(&'static [u8], Mutation<'static>)> {
        vec![
            (
                b"a",
                Mutation::Put {
                    value: b"xyz",
                    deadline_millis: 42,
                },
            ),
            (b"bb", Mutation::Delete),
            (
                b"c",
                Mutation::Put {
                    value: b"",
                    deadline_millis: NO_DEADLINE,
                },
            ),
        ]
    }

    #[test]
    fn encoded_size_is_exact() {
        let mutations = sample();
        assert_eq!(
            encoded_commit_bytes(mutations.iter().copied()),
            encode(&mutations).len()
        );
        assert_eq!(encoded_commit_bytes(std::iter::empty()), encode(&[]).len());
    }

    fn encode(mutations: &[(&[u8], Mutation<'_>)]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_commit(&mut out, mutations.iter().copied()).expect("encodes");
        out
    }

    #[test]
    fn layout_is_pinned_byte_by_byte() {
        let body = encode(&sample()[..2]);
        let mut expected = Vec::new();
        expected.extend_from_slice(&2_u32.to_le_bytes());
        expected.push(1);
        expected.extend_from_slice(&1_u32.to_le_bytes());
        expected.push(b'a');
        expected.extend_from_slice(&42_u64.to_le_bytes());
        expected.extend_from_slice(&3_u32.to_le_bytes());
        expected.extend_from_slice(b"xyz");
        expected.push(2);
        expected.extend_from_slice(&2_u32.to_le_bytes());
        expected.extend_from_slice(b"bb");
        assert_eq!(body, expected);
    }

    #[test]
    fn round_trip_keeps_every_mutation_in_order() {
        let mutations = sample();
        let body = encode(&mutations);
        assert_eq!(decode_commit(&body).expect("decodes"), mutations);
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_an_error() {
        let body = encode(&sample());
        for cut in 0..body.len() {
            assert!(decode_commit(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert!(decode_commit(&longer).is_err());
    }

    #[test]
    fn huge_counts_and_lengths_are_refused_without_allocating() {
        assert!(decode_commit(&u32::MAX.to_le_bytes()).is_err());
        let mut body = 1_u32.to_le_bytes().to_vec();
        body.push(1);
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_commit(&body).is_err());
        let mut zero_key = 1_u32.to_le_bytes().to_vec();
        zero_key.push(2);
        zero_key.extend_from_slice(&0_u32.to_le_bytes());
        assert!(decode_commit(&zero_key).is_err());
    }
}
