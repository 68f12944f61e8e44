//! The identity of a database: a random 128-bit id, created once with the data directory and
//! written into the header of every file that belongs to it (every WAL segment, every
//! snapshot), so that a file copied in from another database is recognised and refused
//! instead of being replayed or loaded as if it were this database's.
//!
//! Ids are unique in practice, not secret: 128 bits from the operating system's random hash keys,
//! the clock, the process id and a counter, mixed. The all-zero id is [`DatabaseId::UNSET`],
//! the id of a log not tied to any database; [`DatabaseId::generate`] never returns it.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// The identity of a database. Displayed as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct DatabaseId([u8; 16]);

impl DatabaseId {
    /// The id of a log that belongs to no particular database (all zeros).
    pub const UNSET: DatabaseId = DatabaseId([0; 16]);

    /// Bytes of an encoded id.
    pub const BYTES: usize = 16;

    /// The id with these bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        DatabaseId(bytes)
    }

    /// The id's bytes, as stored in file headers.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// A new random id, never [`DatabaseId::UNSET`].
    pub fn generate() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let half = |salt: u64| {
            // Each RandomState carries keys drawn from the operating system's randomness.
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(salt);
            hasher.write_u128(nanos);
            hasher.write_u32(std::process::id());
            hasher.write_u64(count);
            hasher.finish()
        };
        let mut bytes = [0_u8; 16];
        bytes[..8].copy_from_slice(&half(0x9E37_79B9_7F4A_7C15).to_le_bytes());
        bytes[8..].copy_from_slice(&half(0xD1B5_4A32_D192_ED03).to_le_bytes());
        if bytes == [0; 16] {
            bytes[0] = 1;
        }
        DatabaseId(bytes)
    }
}

impl fmt::Display for DatabaseId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(formatter, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DatabaseId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "DatabaseId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_differ_and_are_never_unset() {
        let ids: Vec<DatabaseId> = (0..1_000).map(|_| DatabaseId::generate()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        assert!(ids.iter().all(|id| *id != DatabaseId::UNSET));
    }

    #[test]
    fn display_is_32_hex_digits_and_bytes_round_trip() {
        let id = DatabaseId::from_bytes([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_eq!(DatabaseId::from_bytes(id.to_bytes()), id);
    }
}
