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

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_unix_millis(unix_millis: u64) -> String {
    let seconds = unix_millis / 1_000;
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX);
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`),
/// for `days` from 0 on; saturates instead of overflowing on absurd inputs.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days.saturating_add(719_468);
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era
        .saturating_add(era.saturating_mul(400))
        .saturating_add(i64::from(month <= 2));
    (
        year,
        u32::try_from(month).unwrap_or(0),
        u32::try_from(day).unwrap_or(0),
    )
}

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
