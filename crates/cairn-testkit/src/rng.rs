//! Seeded randomness for tests and benchmarks: one small generator, the same everywhere, so a
//! printed seed reproduces a run exactly.

/// The `SplitMix64` generator: a 64-bit state stepped by a constant and scrambled. Statistically
/// good enough to pick keys, deterministic for a seed, and a handful of instructions per draw.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index in `0..bound` (`bound` > 0), by Lemire's multiply-and-shift: no
    /// division and no modulo bias worth measuring at these sizes.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the high half of a 64x64-bit product is below `bound`, so it fits a usize"
    )]
    pub fn below(&mut self, bound: usize) -> usize {
        let wide = u128::from(self.next_u64()) * bound as u128;
        (wide >> 64) as usize
    }

    /// A random permutation of `0..count` (Fisher-Yates).
    pub fn permutation(&mut self, count: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..count).collect();
        for last in (1..count).rev() {
            let pick = self.below(last + 1);
            order.swap(last, pick);
        }
        order
    }
}
