//! Rendering bytes and times for people: the escaping `dump` uses for keys and values, and
//! the UTC dates `inspect` shows for snapshots.
//!
//! The escaping is lossless and unambiguous: printable ASCII (space through `~`) stays as is,
//! a backslash becomes `\\`, every other byte becomes `\xNN` (two lowercase hex digits). So
//! the output never holds a tab or a newline of its own, which lets `dump` separate fields with
//! tabs and records with newlines, and `unescape_bytes` (test-only) gives back the exact bytes.

use std::fmt::Write as _;

/// Escapes `bytes` as described in the module documentation.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b' '..=b'~' => out.push(char::from(byte)),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out
}

/// Reverses [`escape_bytes`]; `None` if `text` is not something it produces.
#[cfg(test)]
pub fn unescape_bytes(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        match bytes.next()? {
            b'\\' => out.push(b'\\'),
            b'x' => {
                let high = char::from(bytes.next()?).to_digit(16)?;
                let low = char::from(bytes.next()?).to_digit(16)?;
                out.push(u8::try_from(high * 16 + low).ok()?);
            }
            _ => return None,
        }
    }
    Some(out)
}

pub use crate::machine::format_unix_millis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_stays_and_everything_else_is_escaped() {
        assert_eq!(escape_bytes(b"user:1 ada~"), "user:1 ada~");
        assert_eq!(escape_bytes(b"a\\b"), "a\\\\b");
        assert_eq!(
            escape_bytes(&[0, b'\t', b'\n', 0x7f, 0xff]),
            "\\x00\\x09\\x0a\\x7f\\xff"
        );
        assert_eq!(escape_bytes(b""), "");
    }

    #[test]
    fn escaping_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let escaped = escape_bytes(&all);
        assert!(!escaped.contains('\t') && !escaped.contains('\n'));
        assert_eq!(unescape_bytes(&escaped), Some(all));
        assert_eq!(unescape_bytes("\\q"), None);
        assert_eq!(unescape_bytes("\\x4"), None);
    }

    #[test]
    fn dates_match_known_instants() {
        assert_eq!(format_unix_millis(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            format_unix_millis(951_782_400_000),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            format_unix_millis(1_704_067_199_999),
            "2023-12-31 23:59:59 UTC"
        );
        // Absurd values render something instead of panicking.
        assert!(!format_unix_millis(u64::MAX).is_empty());
    }
}
