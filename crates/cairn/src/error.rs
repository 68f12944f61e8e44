//! The one error type of the engine.
//!
//! Variants are grouped by what the caller can do about them: retry (`Conflict`), fix the
//! input (`KeyEmpty`, `KeyTooLarge`, `ValueTooLarge`, `InvalidArgument`, `NotAnInteger`,
//! `Overflow`), or stop using the handle (`Closed`, `Poisoned`, `Unsupported`). Every message
//! names the limit or the reason, so a log line alone tells what went wrong.

use std::fmt;

/// The result type of every fallible engine call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another commit changed something this transaction wrote (or, under `Serializable`,
    /// read) after it began. Retry the whole transaction; `Db::transaction` does that for you.
    #[error("transaction conflict on key {key}: another commit changed it after this transaction began; retry")]
    Conflict {
        /// The first conflicting key found.
        key: KeyDisplay,
    },

    /// The key was empty; keys are 1 to `KEY_BYTES_MAX` bytes.
    #[error("key is empty; keys must be 1 to {max} bytes", max = crate::limits::KEY_BYTES_MAX)]
    KeyEmpty,

    /// The key was longer than `KEY_BYTES_MAX`.
    #[error("key is {len} bytes; the limit is {max} bytes")]
    KeyTooLarge {
        /// Length of the refused key.
        len: usize,
        /// The limit it broke.
        max: usize,
    },

    /// The value was longer than `Options::max_value_bytes`.
    #[error("value is {len} bytes; the limit is {max} bytes (Options::max_value_bytes)")]
    ValueTooLarge {
        /// Length of the refused value.
        len: usize,
        /// The limit it broke.
        max: usize,
    },

    /// An argument was out of its documented range (a zero TTL, a reversed range, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// `increment` found a value that is not a decimal i64.
    #[error("value at key {key} is not a decimal 64-bit integer")]
    NotAnInteger {
        /// The key whose value could not be parsed.
        key: KeyDisplay,
    },

    /// `increment` would overflow an i64; nothing was written.
    #[error("increment of key {key} by {delta} overflows a 64-bit integer")]
    Overflow {
        /// The key being incremented.
        key: KeyDisplay,
        /// The delta that overflowed.
        delta: i64,
    },

    /// The database handle was closed.
    #[error("the database is closed")]
    Closed,

    /// The requested feature is not available in this build or mode.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    /// True when the same operation may succeed if simply tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

/// A key rendered for an error message: printable ASCII as is, other bytes as `\xNN`,
/// cut after 64 bytes so that a 64 KiB key does not flood a log.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyDisplay(Vec<u8>);

/// How many bytes of a key an error message shows.
const KEY_DISPLAY_BYTES_MAX: usize = 64;

impl KeyDisplay {
    /// Captures (a prefix of) `key` for display.
    pub fn new(key: &[u8]) -> Self {
        let shown = key.len().min(KEY_DISPLAY_BYTES_MAX);
        let mut bytes = key[..shown].to_vec();
        if key.len() > shown {
            bytes.extend_from_slice(b"...");
        }
        KeyDisplay(bytes)
    }
}

impl fmt::Display for KeyDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &byte in &self.0 {
            if byte.is_ascii_graphic() || byte == b' ' {
                write!(f, "{}", char::from(byte))?;
            } else {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for KeyDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
