//! Keys, values and random choices. Keys are `key:` and a zero-padded 12-digit index: byte
//! order is numeric order, and dropping `d` digits gives a prefix matching exactly `10^d`
//! consecutive keys. A [`KeySet`] is formatted before timing; a timed operation only slices it.

/// Every key starts with this.
pub const KEY_PREFIX: &str = "key:";
/// Decimal digits after [`KEY_PREFIX`].
pub const KEY_DIGITS: usize = 12;

pub use cairn_testkit::SplitMix64;

/// Fixed-width byte strings formatted ahead of time, stored back to back in one buffer.
#[derive(Clone, Debug)]
pub struct KeySet {
    width: usize,
    bytes: Vec<u8>,
}

impl KeySet {
    /// The first `count` keys, in order.
    pub fn sequential(count: usize) -> Self {
        Self::sequential_with_prefix(KEY_PREFIX, 0, count)
    }

    /// Keys `first ..` with `prefix` (4 bytes) for `key:`: a disjoint key space.
    pub fn sequential_with_prefix(prefix: &str, first: u64, count: usize) -> Self {
        debug_assert_eq!(prefix.len(), KEY_PREFIX.len(), "keys keep their width");
        let keys =
            (first..first + count as u64).map(|index| format!("{prefix}{index:0KEY_DIGITS$}"));
        Self::from_strings(prefix.len() + KEY_DIGITS, keys)
    }

    /// One prefix per group of `keys_per_prefix` (a power of ten dividing `key_count`) keys.
    pub fn group_prefixes(key_count: usize, keys_per_prefix: usize) -> Option<Self> {
        let dropped_digits = decimal_exponent(keys_per_prefix)?;
        if dropped_digits == 0
            || dropped_digits >= KEY_DIGITS
            || !key_count.is_multiple_of(keys_per_prefix)
        {
            return None;
        }
        let kept = KEY_DIGITS - dropped_digits;
        let groups = (key_count / keys_per_prefix) as u64;
        let prefixes = (0..groups).map(|group| format!("{KEY_PREFIX}{group:0kept$}"));
        Some(Self::from_strings(KEY_PREFIX.len() + kept, prefixes))
    }

    fn from_strings(width: usize, strings: impl Iterator<Item = String>) -> Self {
        let mut bytes = Vec::new();
        for string in strings {
            debug_assert_eq!(string.len(), width, "every entry has the set's width");
            bytes.extend_from_slice(string.as_bytes());
        }
        KeySet { width, bytes }
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.width
    }

    /// True when the set holds no keys.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The key at `index`, which must be below `len()`.
    #[expect(
        clippy::indexing_slicing,
        reason = "the caller keeps `index` below `len()`"
    )]
    pub fn get(&self, index: usize) -> &[u8] {
        let start = index * self.width;
        &self.bytes[start..start + self.width]
    }

    /// Every key, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.bytes.chunks_exact(self.width)
    }
}

fn decimal_exponent(number: usize) -> Option<usize> {
    let mut rest = number;
    let mut exponent = 0;
    while rest > 1 && rest.is_multiple_of(10) {
        rest /= 10;
        exponent += 1;
    }
    (rest == 1).then_some(exponent)
}

/// `length` deterministic pseudo-random bytes: a value for the workloads to write.
pub fn value_of_length(length: usize) -> Vec<u8> {
    random_bytes(length as u64, length)
}

/// `length` bytes of [`SplitMix64`] output from `seed`, eight little-endian bytes per draw.
pub(crate) fn random_bytes(seed: u64, length: usize) -> Vec<u8> {
    let mut random = SplitMix64::new(seed);
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        bytes.extend_from_slice(&random.next_u64().to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fixed_width_and_ordered_and_group_prefixes_match_exactly_their_group() {
        let keys = KeySet::sequential(10_000);
        assert_eq!(keys.len(), 10_000);
        assert_eq!(keys.get(42), b"key:000000000042");
        assert!(keys.iter().all(|key| key.len() == 16));
        assert!(keys.iter().zip(keys.iter().skip(1)).all(|(a, b)| a < b));
        let fresh = KeySet::sequential_with_prefix("new:", 7, 1);
        assert_eq!(fresh.get(0), b"new:000000000007");
        let prefixes = KeySet::group_prefixes(10_000, 100).expect("100 divides 10,000");
        assert_eq!(prefixes.len(), 100);
        for group in [0, 7, 99] {
            let matching =
                (0..keys.len()).filter(|&index| keys.get(index).starts_with(prefixes.get(group)));
            assert!(matching.eq(group * 100..group * 100 + 100));
        }
        for (count, per_prefix) in [(10_000, 30), (10_050, 100), (10_000, 1)] {
            assert!(KeySet::group_prefixes(count, per_prefix).is_none());
        }
    }

    #[test]
    fn values_have_their_length_and_bytes() {
        assert_eq!(value_of_length(10_240).len(), 10_240);
        // The first draw of seed 3, little-endian: rows depend on these exact bytes.
        let first = SplitMix64::new(3).next_u64().to_le_bytes();
        assert_eq!(value_of_length(3), first[..3]);
    }
}
