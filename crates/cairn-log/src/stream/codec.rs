//! The byte formats of durable streams, as pure functions with no I/O: the message batch (the
//! body of one log frame), the per-stream metadata file and the store's identity file.
//!
//! Guarantees of every decoder here: it never panics, whatever the input; every length is
//! checked against the bytes that are actually there (and against its documented limit)
//! before anything is allocated, so the memory a decode takes is bounded by the input's size;
//! it accepts exactly what the matching encoder writes (a decoded value re-encodes to the same
//! bytes; trailing bytes, unknown flags and non-zero reserved fields are refused). Errors are
//! static strings, and the metadata decoders also give the byte offset of the problem so the
//! caller can report `Corrupted` naming file and offset. Layouts are in `docs/streams.md` and
//! pinned byte by byte by the unit tests below.

use crate::format::{read_u32, read_u64};
use crate::identity::DatabaseId;

/// Longest stream name, in bytes. 512 leaves room for a name that encodes a scope and a
/// stream of `cairn-kv` (hex of a 64-byte tenant and namespace, then a 128-byte name).
pub const STREAM_NAME_BYTES_MAX: usize = 512;
/// Most messages in one batch (and in one read).
pub const BATCH_MESSAGES_MAX: usize = 10_000;
/// Largest message: key, header names and values, and value together, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most headers on one message.
pub const MESSAGE_HEADERS_MAX: usize = 64;

/// Bytes of the batch header: `timestamp_ms u64 | count u32`.
pub const BATCH_HEADER_BYTES: usize = 12;
/// Bytes of a message's fixed part: `flags u8 | header_count u8 | value_len u32`.
pub const MESSAGE_FIXED_BYTES: usize = 6;
/// The only flag: the message has a key.
pub const FLAG_HAS_KEY: u8 = 1;

/// First bytes of a stream metadata file.
pub const META_MAGIC: [u8; 8] = *b"CAIRNSTM";
/// The metadata file format written and accepted by this build.
pub const META_FORMAT_VERSION: u32 = 1;
/// Bytes of a metadata file before the name.
pub const META_FIXED_BYTES: usize = 48;
/// Bytes of a metadata file after the name: its CRC.
pub const META_TRAILER_BYTES: usize = 4;

/// First bytes of the store identity file.
pub const IDENTITY_MAGIC: [u8; 8] = *b"CAIRNSTS";
/// The identity file format written and accepted by this build.
pub const IDENTITY_FORMAT_VERSION: u32 = 1;
/// Bytes of the store identity file.
pub const IDENTITY_FILE_BYTES: usize = 36;

/// One message: an optional key, headers in order, and a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// An optional key (for the reader's use; streams do not index it).
    pub key: Option<Vec<u8>>,
    /// Headers, in order; names need not be unique.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The payload.
    pub value: Vec<u8>,
}

impl Message {
    /// A message with only a value.
    pub fn value(value: impl Into<Vec<u8>>) -> Self {
        Message {
            key: None,
            headers: Vec::new(),
            value: value.into(),
        }
    }

    /// The same message with `key`.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The same message with one more header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The bytes this message counts against [`MESSAGE_BYTES_MAX`] (and read budgets): key,
    /// header names and values, and value.
    pub fn payload_bytes(&self) -> usize {
        let headers = self.headers.iter().fold(0_usize, |sum, (name, value)| {
            sum.saturating_add(name.len()).saturating_add(value.len())
        });
        self.key
            .as_ref()
            .map_or(0, Vec::len)
            .saturating_add(headers)
            .saturating_add(self.value.len())
    }

    /// Bytes this message takes in a batch body.
    fn encoded_bytes(&self) -> usize {
        let key = self
            .key
            .as_ref()
            .map_or(0, |key| 4_usize.saturating_add(key.len()));
        let headers = self.headers.iter().fold(0_usize, |sum, (name, value)| {
            sum.saturating_add(8)
                .saturating_add(name.len())
                .saturating_add(value.len())
        });
        MESSAGE_FIXED_BYTES
            .saturating_add(key)
            .saturating_add(headers)
            .saturating_add(self.value.len())
    }
}

/// Why a batch is refused before anything is written.
pub fn check_batch(messages: &[Message]) -> Result<(), String> {
    if messages.is_empty() || messages.len() > BATCH_MESSAGES_MAX {
        return Err(format!(
            "a batch holds 1 to {BATCH_MESSAGES_MAX} messages, not {}",
            messages.len()
        ));
    }
    for message in messages {
        if message.headers.len() > MESSAGE_HEADERS_MAX {
            return Err(format!(
                "a message has at most {MESSAGE_HEADERS_MAX} headers, not {}",
                message.headers.len()
            ));
        }
        let bytes = message.payload_bytes();
        if bytes > MESSAGE_BYTES_MAX {
            return Err(format!(
                "a message holds at most {MESSAGE_BYTES_MAX} bytes, not {bytes}"
            ));
        }
    }
    Ok(())
}

/// Bytes the body of a batch of `messages` takes (saturating).
pub fn batch_body_bytes(messages: &[Message]) -> usize {
    messages.iter().fold(BATCH_HEADER_BYTES, |sum, message| {
        sum.saturating_add(message.encoded_bytes())
    })
}

/// Converts a length that [`check_batch`] bounded to the `u32` field it is stored in.
fn length_field(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes()
}

/// Appends the body of a batch to `out`. The caller checked the batch with [`check_batch`]
/// (so every length fits its field); an unchecked batch still encodes without panicking but
/// may not decode.
pub fn encode_batch(out: &mut Vec<u8>, timestamp_ms: u64, messages: &[Message]) {
    out.reserve(batch_body_bytes(messages));
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    out.extend_from_slice(&length_field(messages.len()));
    for message in messages {
        let flags = if message.key.is_some() {
            FLAG_HAS_KEY
        } else {
            0
        };
        out.push(flags);
        out.push(u8::try_from(message.headers.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&length_field(message.value.len()));
        if let Some(key) = &message.key {
            out.extend_from_slice(&length_field(key.len()));
            out.extend_from_slice(key);
        }
        for (name, value) in &message.headers {
            out.extend_from_slice(&length_field(name.len()));
            out.extend_from_slice(name);
            out.extend_from_slice(&length_field(value.len()));
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&message.value);
    }
}

/// The fixed header of a batch body: its timestamp and message count, checked against the
/// limits and the body's size (not the messages themselves).
pub fn batch_header(body: &[u8]) -> Result<(u64, u32), &'static str> {
    let (Some(timestamp_ms), Some(count)) = (read_u64(body, 0), read_u32(body, 8)) else {
        return Err("batch shorter than its header");
    };
    let count_bytes = usize::try_from(count).unwrap_or(usize::MAX);
    if count_bytes == 0 || count_bytes > BATCH_MESSAGES_MAX {
        return Err("batch message count outside 1..=10000");
    }
    let room = body.len().saturating_sub(BATCH_HEADER_BYTES) / MESSAGE_FIXED_BYTES;
    if count_bytes > room {
        return Err("batch message count above what its bytes can hold");
    }
    Ok((timestamp_ms, count))
}

/// A cursor over a body that refuses to read past its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], &'static str> {
        let end = self
            .position
            .checked_add(len)
            .ok_or("message field length overflows")?;
        let taken = self
            .bytes
            .get(self.position..end)
            .ok_or("message field runs past the end of the batch")?;
        self.position = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        self.take(1)?
            .first()
            .copied()
            .ok_or("message field runs past the end of the batch")
    }

    /// A `u32` length, refused above `max` before anything is read or allocated for it.
    fn len(&mut self, max: usize) -> Result<usize, &'static str> {
        let bytes = self.take(4)?;
        let len = read_u32(bytes, 0).ok_or("message field runs past the end of the batch")?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > max {
            return Err("message field length above the message limit");
        }
        Ok(len)
    }
}

/// A decoded batch body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedBatch {
    /// When the batch was appended, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Its messages, in offset order.
    pub messages: Vec<Message>,
}

/// Decodes a batch body. Never panics; allocates at most a small multiple of `body.len()`.
pub fn decode_batch(body: &[u8]) -> Result<DecodedBatch, &'static str> {
    decode_batch_part(body, 0..usize::MAX).map(|(_, batch)| batch)
}

/// Decodes a batch body as [`decode_batch`] does, checking every message, but keeps only the
/// messages whose index in the batch is in `wanted` (a read of one message of a large batch
/// allocates for that one). Returns the batch's message count too.
pub fn decode_batch_part(
    body: &[u8],
    wanted: std::ops::Range<usize>,
) -> Result<(usize, DecodedBatch), &'static str> {
    let mut refs = Vec::new();
    let (timestamp_ms, count) = decode_batch_refs(body, wanted, &mut refs)?;
    let messages = refs.iter().map(MessageRef::to_message).collect();
    Ok((
        count,
        DecodedBatch {
            timestamp_ms,
            messages,
        },
    ))
}

/// One message of a batch body, borrowed from it: what a reader that does not keep the
/// message (a replay folding it into its state) needs, without an allocation per field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRef<'a> {
    /// The optional key.
    pub key: Option<&'a [u8]>,
    /// The headers, in order.
    pub headers: HeadersRef<'a>,
    /// The payload.
    pub value: &'a [u8],
}

impl<'a> MessageRef<'a> {
    /// The same message, borrowed from an owned one.
    pub fn of(message: &'a Message) -> MessageRef<'a> {
        MessageRef {
            key: message.key.as_deref(),
            headers: HeadersRef::Owned(&message.headers),
            value: &message.value,
        }
    }

    /// An owned copy.
    pub fn to_message(&self) -> Message {
        Message {
            key: self.key.map(<[u8]>::to_vec),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| (name.to_vec(), value.to_vec()))
                .collect(),
            value: self.value.to_vec(),
        }
    }

    /// As [`Message::payload_bytes`]: key, header names and values, and value.
    pub fn payload_bytes(&self) -> usize {
        let headers = self.headers.iter().fold(0_usize, |sum, (name, value)| {
            sum.saturating_add(name.len()).saturating_add(value.len())
        });
        self.key
            .map_or(0, <[u8]>::len)
            .saturating_add(headers)
            .saturating_add(self.value.len())
    }
}

/// The headers of a [`MessageRef`]: the encoded header fields of a checked batch body, or an
/// owned message's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadersRef<'a> {
    /// `count` pairs of `len u32 | bytes` fields (name, then value), already checked.
    Encoded {
        /// The fields.
        bytes: &'a [u8],
        /// Pairs in `bytes`.
        count: usize,
    },
    /// An owned message's headers.
    Owned(&'a [(Vec<u8>, Vec<u8>)]),
}

impl<'a> HeadersRef<'a> {
    /// The `(name, value)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let (encoded, owned) = match *self {
            HeadersRef::Encoded { bytes, count } => (
                Some((0..count).scan(
                    Cursor { bytes, position: 0 },
                    |cursor, _| -> Option<(&'a [u8], &'a [u8])> {
                        let name = cursor.len(usize::MAX).and_then(|len| cursor.take(len));
                        let value = cursor.len(usize::MAX).and_then(|len| cursor.take(len));
                        // The batch decoder checked these fields; a failure cannot happen
                        // and ends the iteration instead of panicking.
                        Some((name.ok()?, value.ok()?))
                    },
                )),
                None,
            ),
            HeadersRef::Owned(list) => (
                None,
                Some(
                    list.iter()
                        .map(|(name, value)| (name.as_slice(), value.as_slice())),
                ),
            ),
        };
        encoded
            .into_iter()
            .flatten()
            .chain(owned.into_iter().flatten())
    }

    /// How many headers.
    pub fn len(&self) -> usize {
        match *self {
            HeadersRef::Encoded { count, .. } => count,
            HeadersRef::Owned(list) => list.len(),
        }
    }

    /// True without headers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks a batch body as [`decode_batch`] does and appends to `out`, borrowed from `body`,
/// the messages whose index in the batch is in `wanted`. Returns the batch's timestamp and
/// message count. Never panics; allocates only what `out` grows by. This is the one parser of
/// batch bodies: the owned decoders are built on it.
pub fn decode_batch_refs<'a>(
    body: &'a [u8],
    wanted: std::ops::Range<usize>,
    out: &mut Vec<MessageRef<'a>>,
) -> Result<(u64, usize), &'static str> {
    let (timestamp_ms, count) = batch_header(body)?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if wanted.start >= wanted.end.min(count) {
        // Nothing wanted from this batch (a read walking past it): the header says all the
        // reader needs. The frame's checksum already covered the body.
        return Ok((timestamp_ms, count));
    }
    let mut cursor = Cursor {
        bytes: body,
        position: BATCH_HEADER_BYTES,
    };
    // `batch_header` bounded `count` by the body's size, so this reservation is too.
    let kept = wanted.end.min(count).saturating_sub(wanted.start);
    out.reserve(kept);
    let first = out.len();
    let parsed = match parse_messages(&mut cursor, count, &wanted, out) {
        Ok(()) if cursor.position != body.len() => Err("bytes after the last message of the batch"),
        other => other,
    };
    if let Err(reason) = parsed {
        out.truncate(first);
        return Err(reason);
    }
    debug_assert_eq!(
        out.len() - first,
        kept,
        "kept exactly the wanted messages present"
    );
    Ok((timestamp_ms, count))
}

/// Parses and checks `count` messages at `cursor`, pushing the wanted ones.
fn parse_messages<'a>(
    cursor: &mut Cursor<'a>,
    count: usize,
    wanted: &std::ops::Range<usize>,
    out: &mut Vec<MessageRef<'a>>,
) -> Result<(), &'static str> {
    for index in 0..count {
        let flags = cursor.u8()?;
        if flags & !FLAG_HAS_KEY != 0 {
            return Err("unknown message flags");
        }
        let header_count = usize::from(cursor.u8()?);
        if header_count > MESSAGE_HEADERS_MAX {
            return Err("message header count above the limit");
        }
        let value_len = cursor.len(MESSAGE_BYTES_MAX)?;
        let mut budget = MESSAGE_BYTES_MAX - value_len;
        let mut field = |cursor: &mut Cursor<'a>| -> Result<&'a [u8], &'static str> {
            let len = cursor.len(budget)?;
            budget -= len;
            cursor.take(len)
        };
        let key = if flags & FLAG_HAS_KEY == 0 {
            None
        } else {
            Some(field(cursor)?)
        };
        let headers_start = cursor.position;
        for _ in 0..header_count {
            field(cursor)?;
            field(cursor)?;
        }
        let headers = HeadersRef::Encoded {
            bytes: cursor
                .bytes
                .get(headers_start..cursor.position)
                .unwrap_or(&[]),
            count: header_count,
        };
        let value = cursor.take(value_len)?;
        if wanted.contains(&index) {
            out.push(MessageRef {
                key,
                headers,
                value,
            });
        }
    }
    Ok(())
}

/// True when `name` is 1 to [`STREAM_NAME_BYTES_MAX`] bytes of `[A-Za-z0-9._-]`.
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= STREAM_NAME_BYTES_MAX
        && name
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// The contents of a stream's metadata file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamMeta {
    /// The store the stream belongs to.
    pub database_id: DatabaseId,
    /// The stream's numeric id: its directory's name.
    pub stream_id: u64,
    /// The lowest readable offset (moved up by truncation).
    pub first_offset: u64,
    /// The stream's name (checked by [`is_valid_name`]).
    pub name: String,
}

impl StreamMeta {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let name = self.name.as_bytes();
        let mut out = Vec::with_capacity(META_FIXED_BYTES + name.len() + META_TRAILER_BYTES);
        out.extend_from_slice(&META_MAGIC);
        out.extend_from_slice(&META_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&length_field(name.len()));
        out.extend_from_slice(&self.database_id.to_bytes());
        out.extend_from_slice(&self.stream_id.to_le_bytes());
        out.extend_from_slice(&self.first_offset.to_le_bytes());
        out.extend_from_slice(name);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a metadata file; the error is the byte offset and what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, (u64, &'static str)> {
        if bytes.get(..8) != Some(&META_MAGIC[..]) {
            return Err((0, "bad stream metadata magic"));
        }
        let Some(name_len) = read_u32(bytes, 12) else {
            return Err((12, "stream metadata file too short"));
        };
        let name_len = usize::try_from(name_len).unwrap_or(usize::MAX);
        if name_len == 0 || name_len > STREAM_NAME_BYTES_MAX {
            return Err((12, "stream name length outside 1..=512"));
        }
        let total = META_FIXED_BYTES + name_len + META_TRAILER_BYTES;
        if bytes.len() != total {
            return Err((
                0,
                "stream metadata file length does not match its name length",
            ));
        }
        let crc_offset = META_FIXED_BYTES + name_len;
        let covered = bytes.get(..crc_offset).unwrap_or(&[]);
        if read_u32(bytes, crc_offset) != Some(crc32c::crc32c(covered)) {
            return Err((crc_offset as u64, "stream metadata checksum mismatch"));
        }
        if read_u32(bytes, 8) != Some(META_FORMAT_VERSION) {
            return Err((8, "unsupported stream metadata format version"));
        }
        let (Some(id), Some(stream_id), Some(first_offset), Some(name)) = (
            bytes
                .get(16..32)
                .and_then(|id| <[u8; 16]>::try_from(id).ok()),
            read_u64(bytes, 32),
            read_u64(bytes, 40),
            bytes.get(META_FIXED_BYTES..crc_offset),
        ) else {
            return Err((0, "stream metadata file too short"));
        };
        if !is_valid_name(name) {
            return Err((
                META_FIXED_BYTES as u64,
                "stream name outside [A-Za-z0-9._-]",
            ));
        }
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| (META_FIXED_BYTES as u64, "stream name is not UTF-8"))?;
        Ok(StreamMeta {
            database_id: DatabaseId::from_bytes(id),
            stream_id,
            first_offset,
            name,
        })
    }
}

/// The store identity file's bytes for `id`.
pub fn encode_identity(id: DatabaseId) -> [u8; IDENTITY_FILE_BYTES] {
    let mut bytes = [0_u8; IDENTITY_FILE_BYTES];
    let mut out = Vec::with_capacity(IDENTITY_FILE_BYTES);
    out.extend_from_slice(&IDENTITY_MAGIC);
    out.extend_from_slice(&IDENTITY_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0_u32.to_le_bytes());
    out.extend_from_slice(&id.to_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    for (slot, byte) in bytes.iter_mut().zip(out) {
        *slot = byte;
    }
    bytes
}

/// Decodes the store identity file; the error is the byte offset and what is wrong.
pub fn decode_identity(bytes: &[u8]) -> Result<DatabaseId, (u64, &'static str)> {
    if bytes.len() != IDENTITY_FILE_BYTES {
        return Err((0, "store identity file is not 36 bytes"));
    }
    if bytes.get(..8) != Some(&IDENTITY_MAGIC[..]) {
        return Err((0, "bad store identity magic"));
    }
    if read_u32(bytes, 32) != Some(crc32c::crc32c(bytes.get(..32).unwrap_or(&[]))) {
        return Err((32, "store identity checksum mismatch"));
    }
    if read_u32(bytes, 8) != Some(IDENTITY_FORMAT_VERSION) {
        return Err((8, "unsupported store identity format version"));
    }
    if read_u32(bytes, 12) != Some(0) {
        return Err((12, "reserved store identity bytes are not zero"));
    }
    let id = bytes
        .get(16..32)
        .and_then(|id| <[u8; 16]>::try_from(id).ok())
        .map(DatabaseId::from_bytes)
        .ok_or((16, "store identity file too short"))?;
    if id == DatabaseId::UNSET {
        return Err((16, "store identity is the unset id"));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Message> {
        vec![
            Message::value("v1"),
            Message::value(Vec::new())
                .with_key("k")
                .with_header("h", "x")
                .with_header("", ""),
            Message::value(vec![7; 300]).with_key(Vec::new()),
        ]
    }

    fn encoded(timestamp_ms: u64, messages: &[Message]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_batch(&mut out, timestamp_ms, messages);
        out
    }

    #[test]
    fn a_partial_decode_keeps_the_wanted_messages_and_checks_them_all() {
        let messages = sample();
        let bytes = encoded(9, &messages);
        for (start, end) in [(0, 3), (1, 2), (2, 9), (0, 0), (3, 5), (5, 1)] {
            let (count, part) = decode_batch_part(&bytes, start..end).expect("valid batch");
            assert_eq!(count, 3);
            assert_eq!(part.timestamp_ms, 9);
            let wanted = messages
                .get(start.min(3)..end.clamp(start.min(3), 3))
                .expect("in range");
            assert_eq!(part.messages, wanted, "{start}..{end}");
        }
        // A message the reader does not want is still checked: damage in it is an error.
        let mut damaged = bytes.clone();
        let flags_of_second = BATCH_HEADER_BYTES + 6 + 2;
        damaged[flags_of_second] = 0x80;
        assert!(decode_batch_part(&damaged, 0..1).is_err());
        assert!(decode_batch_part(&bytes[..bytes.len() - 1], 0..1).is_err());
    }

    #[test]
    fn batch_layout_is_pinned_byte_by_byte() {
        let messages = [
            Message::value("ab"),
            Message::value("c").with_key("k").with_header("n", "vv"),
        ];
        let bytes = encoded(0x0102_0304_0506_0708, &messages);
        let mut expected = vec![8, 7, 6, 5, 4, 3, 2, 1, 2, 0, 0, 0];
        expected.extend_from_slice(&[0, 0, 2, 0, 0, 0]);
        expected.extend_from_slice(b"ab");
        expected.extend_from_slice(&[1, 1, 1, 0, 0, 0]);
        expected.extend_from_slice(&[1, 0, 0, 0, b'k']);
        expected.extend_from_slice(&[1, 0, 0, 0, b'n', 2, 0, 0, 0, b'v', b'v']);
        expected.extend_from_slice(b"c");
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), batch_body_bytes(&messages));
    }

    #[test]
    fn batches_round_trip_and_re_encode_to_the_same_bytes() {
        let messages = sample();
        let bytes = encoded(42, &messages);
        let decoded = decode_batch(&bytes).expect("decode");
        assert_eq!(decoded.timestamp_ms, 42);
        assert_eq!(decoded.messages, messages);
        assert_eq!(encoded(42, &decoded.messages), bytes);
        assert_eq!(batch_header(&bytes), Ok((42, 3)));
    }

    #[test]
    fn every_strict_prefix_and_every_extension_is_refused() {
        let bytes = encoded(1, &sample());
        for len in 0..bytes.len() {
            assert!(decode_batch(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_batch(&longer).is_err());
    }

    #[test]
    fn lengths_are_checked_before_allocation() {
        // A count far above what the bytes can hold.
        let mut bytes = encoded(1, &[Message::value("x")]);
        bytes[8..12].copy_from_slice(&9_999_u32.to_le_bytes());
        assert!(decode_batch(&bytes).is_err());
        // A value length of 4 GiB in a tiny body.
        let mut bytes = encoded(1, &[Message::value("x")]);
        bytes[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode_batch(&bytes),
            Err("message field length above the message limit")
        );
        // Key, headers and value together above the message limit.
        let mut bytes = encoded(1, &[Message::value("").with_key("k")]);
        bytes[14..18].copy_from_slice(
            &u32::try_from(MESSAGE_BYTES_MAX)
                .expect("fits")
                .to_le_bytes(),
        );
        assert!(decode_batch(&bytes).is_err());
        // Zero and too many messages, unknown flags, too many headers.
        let mut bytes = encoded(1, &[Message::value("x")]);
        bytes[8..12].copy_from_slice(&0_u32.to_le_bytes());
        assert!(decode_batch(&bytes).is_err());
        let mut bytes = encoded(1, &[Message::value("x")]);
        bytes[12] = 2;
        assert_eq!(decode_batch(&bytes), Err("unknown message flags"));
        let mut bytes = encoded(1, &[Message::value("x")]);
        bytes[13] = 65;
        assert!(decode_batch(&bytes).is_err());
    }

    #[test]
    fn batches_over_the_limits_are_refused_before_writing() {
        assert!(check_batch(&[]).is_err());
        assert!(check_batch(&sample()).is_ok());
        let many_headers = Message {
            headers: vec![(Vec::new(), Vec::new()); MESSAGE_HEADERS_MAX + 1],
            ..Message::default()
        };
        assert!(check_batch(&[many_headers]).is_err());
        assert!(check_batch(&[Message::value(vec![0; MESSAGE_BYTES_MAX + 1])]).is_err());
        assert!(check_batch(&vec![Message::default(); BATCH_MESSAGES_MAX + 1]).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(is_valid_name(b"orders.eu-1_a"));
        for bad in [
            &b""[..],
            b"a b",
            b"a/b",
            b"..\0",
            "ü".as_bytes(),
            &[b'x'; STREAM_NAME_BYTES_MAX + 1],
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        assert!(is_valid_name(&[b'x'; STREAM_NAME_BYTES_MAX]));
    }

    fn meta() -> StreamMeta {
        StreamMeta {
            database_id: DatabaseId::from_bytes(*b"0123456789abcdef"),
            stream_id: 3,
            first_offset: 0x0102,
            name: "ab".to_owned(),
        }
    }

    #[test]
    fn meta_layout_is_pinned_and_round_trips() {
        let bytes = meta().encode();
        let mut expected = b"CAIRNSTM".to_vec();
        expected.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
        expected.extend_from_slice(b"0123456789abcdef");
        expected.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[2, 1, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(b"ab");
        let crc = crc32c::crc32c(&expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(StreamMeta::decode(&bytes), Ok(meta()));
    }

    #[test]
    fn every_bit_flip_prefix_and_extension_of_meta_is_refused() {
        let bytes = meta().encode();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(StreamMeta::decode(&flipped).is_err(), "bit {bit}");
        }
        for len in 0..bytes.len() {
            assert!(StreamMeta::decode(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(StreamMeta::decode(&longer).is_err());
        // A name with a bad byte is refused even under a valid checksum.
        let mut bad = meta();
        bad.name = "a/".to_owned();
        assert_eq!(
            StreamMeta::decode(&bad.encode()),
            Err((48, "stream name outside [A-Za-z0-9._-]"))
        );
    }

    #[test]
    fn identity_round_trips_and_refuses_every_bit_flip() {
        let id = DatabaseId::from_bytes([9; 16]);
        let bytes = encode_identity(id);
        assert_eq!(&bytes[..8], b"CAIRNSTS");
        assert_eq!(decode_identity(&bytes), Ok(id));
        for bit in 0..IDENTITY_FILE_BYTES * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_identity(&flipped).is_err(), "bit {bit}");
        }
        assert!(decode_identity(&bytes[..35]).is_err());
        assert!(decode_identity(&encode_identity(DatabaseId::UNSET)).is_err());
    }
}
