//! The frame codec: pure functions from records to bytes and back, no I/O.
//!
//! A frame is `len u32 | record_type u8 | format_version u8 | payload | crc32c u32`, with the
//! payload `lsn u64 | version u64 | body` (layout in [`crate::format`]). The CRC covers
//! everything before it, so a torn or flipped frame fails to decode instead of decoding to
//! different content.
//!
//! Guarantees of [`decode_frame`]: it never panics and never allocates, whatever the input; it
//! checks `len` against the payload limit before anything depends on it; a buffer that is a
//! strict prefix of a valid frame decodes as [`Decoded::Incomplete`]; `record_type` 0 never
//! decodes, so zero-filled space is never mistaken for a frame. Trade-off: the decoder reports
//! *why* a frame is invalid only as a static string, which keeps it allocation-free.

use crate::format::{
    read_u32, read_u64, FRAME_BODY_OFFSET, FRAME_FORMAT_VERSION, FRAME_FORMAT_VERSION_OFFSET,
    FRAME_HEADER_BYTES, FRAME_LSN_OFFSET, FRAME_OVERHEAD_BYTES, FRAME_PAYLOAD_BYTES_MAX,
    FRAME_RECORD_TYPE_OFFSET, FRAME_TRAILER_BYTES, FRAME_VERSION_OFFSET, RECORD_PREFIX_BYTES,
};

/// One decoded frame, borrowing its body from the decoded buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// The caller's record type (never 0).
    pub record_type: u8,
    /// The frame's log sequence number.
    pub lsn: u64,
    /// The commit version the caller stored with the frame.
    pub version: u64,
    /// The caller's body bytes.
    pub body: &'a [u8],
}

/// What [`decode_frame`] found at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid frame occupying the first `frame_bytes` bytes.
    Frame {
        /// The frame.
        frame: FrameRef<'a>,
        /// Bytes the whole frame occupies (header, payload, trailer).
        frame_bytes: usize,
    },
    /// The buffer is shorter than the frame its header claims (or than a header); nothing
    /// checked so far is wrong.
    Incomplete,
    /// The bytes cannot be a frame.
    Invalid {
        /// Why: bad CRC, record type 0, unknown format version, `len` above the limit, or a
        /// payload shorter than the record prefix.
        reason: &'static str,
    },
}

/// Reason given when the CRC does not match.
pub const INVALID_CRC: &str = "frame checksum mismatch";
/// Reason given for record type 0.
pub const INVALID_RECORD_TYPE: &str = "record type 0 is reserved";
/// Reason given for an unknown frame format version.
pub const INVALID_FORMAT_VERSION: &str = "unknown frame format version";
/// Reason given when `len` is above the payload limit.
pub const INVALID_LEN_ABOVE_MAX: &str = "frame length above the payload limit";
/// Reason given when `len` is below the record prefix.
pub const INVALID_LEN_BELOW_PREFIX: &str = "frame payload shorter than the record prefix";

/// Bytes a frame with a body of `body_bytes` occupies: `body_bytes + 26` (saturating).
pub fn encoded_frame_bytes(body_bytes: usize) -> usize {
    body_bytes.saturating_add(FRAME_OVERHEAD_BYTES)
}

/// Appends one encoded frame to `out`.
///
/// # Panics
///
/// If `record_type` is 0 or the payload (16 + `body.len()`) is above
/// [`FRAME_PAYLOAD_BYTES_MAX`]. Both are caller bugs: `Log::append` refuses them with a typed
/// error before encoding, and a frame that could not be decoded must never be written.
pub fn encode_frame(out: &mut Vec<u8>, record_type: u8, lsn: u64, version: u64, body: &[u8]) {
    assert_ne!(record_type, 0, "record type 0 is reserved");
    let payload_bytes = RECORD_PREFIX_BYTES.saturating_add(body.len());
    assert!(
        payload_bytes <= FRAME_PAYLOAD_BYTES_MAX,
        "frame payload of {payload_bytes} bytes is above {FRAME_PAYLOAD_BYTES_MAX}"
    );
    // Cannot fail after the assertion above; the fallback is never taken.
    let len = u32::try_from(payload_bytes).unwrap_or(u32::MAX);
    out.reserve(encoded_frame_bytes(body.len()));
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.push(record_type);
    out.push(FRAME_FORMAT_VERSION);
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(body);
    #[expect(
        clippy::indexing_slicing,
        reason = "`start` was `out.len()` before the pushes"
    )]
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Checks the 6-byte header at the start of `bytes` and returns the bytes the whole frame would
/// occupy, or the reason it cannot start a frame. `None` when fewer than 6 bytes are given.
/// This is the cheap prefilter of the forward scan: no CRC is computed.
pub(crate) fn check_frame_header(
    bytes: &[u8],
    payload_bytes_max: usize,
) -> Option<Result<usize, &'static str>> {
    let header = bytes.get(..FRAME_HEADER_BYTES)?;
    Some(check_header_fields(header, payload_bytes_max))
}

/// The header checks of [`decode_frame`], in the order the bytes arrive; `header` may be
/// shorter than 6 bytes, in which case only the fields present are checked and `Ok(0)` means
/// "nothing wrong so far".
fn check_header_fields(header: &[u8], payload_bytes_max: usize) -> Result<usize, &'static str> {
    let Some(len) = read_u32(header, 0) else {
        return Ok(0);
    };
    if header.get(FRAME_RECORD_TYPE_OFFSET) == Some(&0) {
        return Err(INVALID_RECORD_TYPE);
    }
    if header
        .get(FRAME_FORMAT_VERSION_OFFSET)
        .is_some_and(|&version| version != FRAME_FORMAT_VERSION)
    {
        return Err(INVALID_FORMAT_VERSION);
    }
    let payload_bytes = usize::try_from(len).unwrap_or(usize::MAX);
    if payload_bytes > payload_bytes_max.min(FRAME_PAYLOAD_BYTES_MAX) {
        return Err(INVALID_LEN_ABOVE_MAX);
    }
    if payload_bytes < RECORD_PREFIX_BYTES {
        return Err(INVALID_LEN_BELOW_PREFIX);
    }
    Ok(payload_bytes + FRAME_HEADER_BYTES + FRAME_TRAILER_BYTES)
}

/// Decodes the frame at the start of `bytes`, accepting payloads up to `payload_bytes_max`
/// (never above [`FRAME_PAYLOAD_BYTES_MAX`]). Never panics and never allocates.
pub fn decode_frame(bytes: &[u8], payload_bytes_max: usize) -> Decoded<'_> {
    let header = bytes
        .get(..FRAME_HEADER_BYTES.min(bytes.len()))
        .unwrap_or(&[]);
    let frame_bytes = match check_header_fields(header, payload_bytes_max) {
        Err(reason) => return Decoded::Invalid { reason },
        Ok(frame_bytes) => frame_bytes,
    };
    if header.len() < FRAME_HEADER_BYTES {
        return Decoded::Incomplete;
    }
    let Some(frame) = bytes.get(..frame_bytes) else {
        return Decoded::Incomplete;
    };
    let crc_offset = frame_bytes - FRAME_TRAILER_BYTES;
    let (covered, stored) = (frame.get(..crc_offset), read_u32(frame, crc_offset));
    let (Some(covered), Some(stored)) = (covered, stored) else {
        return Decoded::Incomplete;
    };
    if crc32c::crc32c(covered) != stored {
        return Decoded::Invalid {
            reason: INVALID_CRC,
        };
    }
    // The header checks guarantee at least the record prefix; these lookups cannot fail.
    let (Some(&record_type), Some(lsn), Some(version), Some(body)) = (
        frame.get(FRAME_RECORD_TYPE_OFFSET),
        read_u64(frame, FRAME_LSN_OFFSET),
        read_u64(frame, FRAME_VERSION_OFFSET),
        frame.get(FRAME_BODY_OFFSET..crc_offset),
    ) else {
        return Decoded::Invalid {
            reason: INVALID_LEN_BELOW_PREFIX,
        };
    };
    Decoded::Frame {
        frame: FrameRef {
            record_type,
            lsn,
            version,
            body,
        },
        frame_bytes,
    }
}

/// Reads the bytes of the frame starting at `offset` of a buffer of frames this process
/// encoded itself: `10 + len`. `None` if the buffer ends inside the length field.
pub(crate) fn frame_bytes_at(frames: &[u8], offset: usize) -> Option<usize> {
    let len = usize::try_from(read_u32(frames, offset)?).ok()?;
    Some(len + FRAME_HEADER_BYTES + FRAME_TRAILER_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(record_type: u8, lsn: u64, version: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, record_type, lsn, version, body);
        out
    }

    #[test]
    fn layout_is_pinned_byte_by_byte() {
        let bytes = frame(7, 0x0102_0304_0506_0708, 42, b"hi");
        let mut expected = vec![
            18, 0, 0, 0, // len = 16 + 2, u32 LE
            7, // record_type
            1, // format_version
            8, 7, 6, 5, 4, 3, 2, 1, // lsn u64 LE
            42, 0, 0, 0, 0, 0, 0, 0, // version u64 LE
            b'h', b'i', // body
        ];
        let crc = crc32c::crc32c(&expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), 28);
        assert_eq!(encoded_frame_bytes(2), 28);
        // The CRC of this exact frame (computed independently), so that a change of CRC
        // function fails too; and the standard CRC-32C check value.
        assert_eq!(crc, 0x4994_7701);
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn round_trips_and_reports_frame_bytes() {
        let mut bytes = frame(3, 9, 11, b"body bytes");
        bytes.extend_from_slice(&[0xAA; 5]);
        let decoded = decode_frame(&bytes, FRAME_PAYLOAD_BYTES_MAX);
        assert_eq!(
            decoded,
            Decoded::Frame {
                frame: FrameRef {
                    record_type: 3,
                    lsn: 9,
                    version: 11,
                    body: b"body bytes",
                },
                frame_bytes: 36,
            }
        );
    }

    #[test]
    fn empty_body_round_trips() {
        let bytes = frame(1, 1, 0, b"");
        assert_eq!(bytes.len(), FRAME_OVERHEAD_BYTES);
        match decode_frame(&bytes, FRAME_PAYLOAD_BYTES_MAX) {
            Decoded::Frame { frame, frame_bytes } => {
                assert_eq!(frame_bytes, 26);
                assert_eq!(frame.body, b"");
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let bytes = frame(5, 77, 78, b"a somewhat longer body");
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_frame(&bytes[..cut], FRAME_PAYLOAD_BYTES_MAX),
                Decoded::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let original = frame(5, 77, 78, b"flip me");
        for bit in 0..original.len() * 8 {
            let mut flipped = original.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            match decode_frame(&flipped, FRAME_PAYLOAD_BYTES_MAX) {
                Decoded::Invalid { .. } => {}
                // Only a larger `len` can make the buffer look short.
                Decoded::Incomplete => assert!(bit < 32, "bit {bit} gave Incomplete"),
                Decoded::Frame { .. } => panic!("bit {bit} flipped still decodes"),
            }
        }
    }

    #[test]
    fn zeros_never_decode() {
        assert_eq!(
            decode_frame(&[0; 64], FRAME_PAYLOAD_BYTES_MAX),
            Decoded::Invalid {
                reason: INVALID_RECORD_TYPE
            }
        );
    }

    #[test]
    fn header_checks_name_the_reason() {
        let good = frame(5, 1, 1, b"x");
        let mut bad_version = good.clone();
        bad_version[5] = 2;
        assert_eq!(
            decode_frame(&bad_version, FRAME_PAYLOAD_BYTES_MAX),
            Decoded::Invalid {
                reason: INVALID_FORMAT_VERSION
            }
        );
        let mut short_payload = good.clone();
        short_payload[0] = 15;
        assert_eq!(
            decode_frame(&short_payload, FRAME_PAYLOAD_BYTES_MAX),
            Decoded::Invalid {
                reason: INVALID_LEN_BELOW_PREFIX
            }
        );
        let mut bad_crc = good;
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0xFF;
        assert_eq!(
            decode_frame(&bad_crc, FRAME_PAYLOAD_BYTES_MAX),
            Decoded::Invalid {
                reason: INVALID_CRC
            }
        );
    }

    #[test]
    fn len_above_the_limit_is_invalid_from_the_header_alone() {
        // A header claiming 4 GiB - 1 of payload, with nothing behind it: rejected from six
        // bytes, without reading (or allocating) what the length claims.
        let header = [0xFF, 0xFF, 0xFF, 0xFF, 1, FRAME_FORMAT_VERSION];
        assert_eq!(
            decode_frame(&header, FRAME_PAYLOAD_BYTES_MAX),
            Decoded::Invalid {
                reason: INVALID_LEN_ABOVE_MAX
            }
        );
        // A lowered limit applies too.
        let bytes = frame(1, 1, 1, &[0; 100]);
        assert_eq!(
            decode_frame(&bytes, 115),
            Decoded::Invalid {
                reason: INVALID_LEN_ABOVE_MAX
            }
        );
        assert!(matches!(decode_frame(&bytes, 116), Decoded::Frame { .. }));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic sweep; the fuzz target covers the rest.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buffer = Vec::new();
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let length = usize::try_from(state % 64).expect("small");
            buffer.clear();
            for index in 0..length {
                buffer.push(u8::try_from((state >> (index % 8 * 8)) & 0xFF).expect("byte"));
            }
            if let Some(byte) = buffer.get_mut(5) {
                *byte = FRAME_FORMAT_VERSION;
            }
            let _ = decode_frame(&buffer, 40);
        }
    }

    #[test]
    #[should_panic(expected = "record type 0 is reserved")]
    fn encoding_record_type_zero_is_a_caller_bug() {
        let _ = frame(0, 1, 1, b"");
    }

    #[test]
    fn frame_bytes_at_reads_the_length_of_own_frames() {
        let mut frames = frame(1, 1, 1, b"abc");
        frames.extend(frame(1, 2, 2, b""));
        assert_eq!(frame_bytes_at(&frames, 0), Some(29));
        assert_eq!(frame_bytes_at(&frames, 29), Some(26));
        assert_eq!(frame_bytes_at(&frames, 53), None);
    }
}
