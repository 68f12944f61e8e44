//! The one error type of the `KeyValueStore` trait, the same for every backend.
//!
//! Variants are grouped by what the caller can do: fix the input (`InvalidScope`, `KeyEmpty`,
//! `KeyTooLarge`, `ValueTooLarge`, `InvalidArgument`, `NotAnInteger`, `Overflow`,
//! `InvalidUrl`), retry later (`Unavailable`), build with another feature (`Unsupported`), or
//! look at the backend (`Backend`, whose `source()` is the backend's own error).

use std::fmt;

/// The result type of every fallible `KeyValueStore` call.
pub type KvResult<T> = std::result::Result<T, KvError>;

/// A boxed backend error kept as the `source()` of a `KvError`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a `KeyValueStore` call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// A tenant or namespace name was empty or too long.
    #[error("invalid scope: {reason}")]
    InvalidScope {
        /// What was wrong with it.
        reason: String,
    },

    /// The key was empty.
    #[error("key is empty; keys must be 1 to {max} bytes", max = crate::limits::KEY_BYTES_MAX)]
    KeyEmpty,

    /// The key was longer than [`KEY_BYTES_MAX`](crate::limits::KEY_BYTES_MAX).
    #[error("key is {len} bytes; the limit is {max} bytes")]
    KeyTooLarge {
        /// Length of the refused key.
        len: usize,
        /// The limit it broke.
        max: usize,
    },

    /// The value was longer than [`VALUE_BYTES_MAX`](crate::limits::VALUE_BYTES_MAX).
    #[error("value is {len} bytes; the limit is {max} bytes")]
    ValueTooLarge {
        /// Length of the refused value.
        len: usize,
        /// The limit it broke.
        max: usize,
    },

    /// An argument was out of its documented range (a zero TTL, too many keys, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// `increment` found a value that is not a decimal 64-bit integer; nothing was written.
    #[error("value at key {key} is not a decimal 64-bit integer")]
    NotAnInteger {
        /// The key, printed with non-text bytes escaped.
        key: KeyText,
    },

    /// `increment` or `decrement` would overflow a 64-bit integer; nothing was written.
    #[error("changing key {key} by {delta} overflows a 64-bit integer")]
    Overflow {
        /// The key, printed with non-text bytes escaped.
        key: KeyText,
        /// The change that overflowed (negative for `decrement`).
        delta: i128,
    },

    /// The store URL could not be understood.
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What was wrong with it.
        reason: String,
    },

    /// The operation needs a cargo feature this build does not have, or the backend cannot
    /// do it.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// The backend could not be reached (connection refused, reset or timed out). Nothing
    /// is known about an in-flight write; retrying a write is safe only if it is idempotent.
    #[error("{backend} is unavailable: {source}")]
    Unavailable {
        /// The backend's name.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// The backend failed in another way: I/O, corruption, a poisoned engine, a server error.
    #[error("{backend} failed: {source}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },

    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

impl KvError {
    /// A `Backend` error from any backend error value.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        KvError::Backend {
            backend,
            source: source.into(),
        }
    }

    /// An `Unavailable` error from any backend error value.
    pub fn unavailable(backend: &'static str, source: impl Into<BoxError>) -> Self {
        KvError::Unavailable {
            backend,
            source: source.into(),
        }
    }

    /// True when retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, KvError::Unavailable { .. })
    }
}

/// A key printed for an error message: text as is, other bytes as `\xNN`, cut at 64 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyText(Vec<u8>);

impl KeyText {
    const SHOWN_BYTES_MAX: usize = 64;

    /// Keeps the first bytes of `key` for display.
    pub fn new(key: &[u8]) -> Self {
        KeyText(key.get(..=Self::SHOWN_BYTES_MAX).unwrap_or(key).to_vec())
    }
}

impl fmt::Display for KeyText {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..Self::SHOWN_BYTES_MAX).unwrap_or(&self.0);
        write!(formatter, "\"{}\"", shown.escape_ascii())?;
        if self.0.len() > Self::SHOWN_BYTES_MAX {
            formatter.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyText {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_escapes_and_truncates() {
        assert_eq!(KeyText::new(b"a\x00b").to_string(), "\"a\\x00b\"");
        let long = KeyText::new(&[b'k'; 100]).to_string();
        assert!(long.ends_with("\"..."));
        assert_eq!(long.len(), 64 + 2 + 3);
    }
}
