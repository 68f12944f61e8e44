//! Targets and goals: the bounds a measured figure is checked against.
//!
//! Each benchmarked workload of `DESIGN.md` section 5 has a *seed target* (the floor the
//! earlier systems reached; a row passes when it meets it) and a *goal* (what Cairn is built
//! for; reported, never failed on). A [`Limit`] is one such bound with the text the table
//! shows; the numbers live here, in one place, next to their text.

/// Which side of a bound passes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    /// Strictly below.
    Below(f64),
    /// Below or equal.
    AtMost(f64),
    /// Strictly above.
    Above(f64),
    /// Above or equal.
    AtLeast(f64),
}

/// A bound and how the report writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    /// The bound on the checked value.
    pub bound: Bound,
    /// Its text in the table and the JSON, e.g. `< 1 µs`.
    pub text: &'static str,
}

impl Limit {
    /// True when `value` is on the passing side.
    pub fn is_met_by(&self, value: f64) -> bool {
        match self.bound {
            Bound::Below(limit) => value < limit,
            Bound::AtMost(limit) => value <= limit,
            Bound::Above(limit) => value > limit,
            Bound::AtLeast(limit) => value >= limit,
        }
    }
}

const fn limit(bound: Bound, text: &'static str) -> Limit {
    Limit { bound, text }
}

// Latency bounds apply to p50, in nanoseconds.

/// get at 1M keys, seed target.
pub const GET_LARGEST: Limit = limit(Bound::Below(1_000.0), "< 1 µs");
/// get at 1M keys, goal.
pub const GET_LARGEST_GOAL: Limit = limit(Bound::AtMost(300.0), "<= 300 ns");
/// p50 at 1M keys over p50 at 1K keys, seed target.
pub const GET_SCALING: Limit = limit(Bound::AtMost(2.0), "<= 2x");
/// The goal "flat from 1K to 1M keys", read as within 20 %.
pub const GET_SCALING_GOAL: Limit = limit(Bound::AtMost(1.2), "flat (<= 1.2x)");
/// put / delete / exists, seed target.
pub const POINT_OP: Limit = limit(Bound::Below(1_000.0), "< 1 µs");
/// put, goal.
pub const PUT_GOAL: Limit = limit(Bound::AtMost(500.0), "<= 500 ns");
/// `put_with_ttl`, seed target.
pub const PUT_WITH_TTL: Limit = limit(Bound::Below(2_000.0), "< 2 µs");
/// `put_with_ttl` p50 over put p50, goal.
pub const PUT_WITH_TTL_GOAL: Limit = limit(Bound::AtMost(1.1), "<= 1.1x put");
/// bulk put / get throughput, seed target.
pub const BULK: Limit = limit(Bound::Above(1_000_000.0), "> 1M ops/s");
/// bulk put / get throughput, goal.
pub const BULK_GOAL: Limit = limit(Bound::AtLeast(3_000_000.0), ">= 3M ops/s");
/// Read throughput at 2 threads over 1 thread, seed target ("linear", on 2 vCPUs).
pub const READ_SCALING: Limit = limit(Bound::AtLeast(1.7), ">= 1.7x");
/// Read throughput at 2 threads over 1 thread, goal.
pub const READ_SCALING_GOAL: Limit = limit(Bound::AtLeast(1.8), ">= 1.8x");
/// Mixed 80/20 throughput on 2 threads, seed target.
pub const MIXED: Limit = limit(Bound::Above(500_000.0), "> 500K ops/s");
/// Mixed 80/20 throughput on 2 threads, goal.
pub const MIXED_GOAL: Limit = limit(Bound::AtLeast(2_000_000.0), ">= 2M ops/s");
/// Prefix scan of 1000 keys, seed target.
pub const PREFIX_SCAN_1000: Limit = limit(Bound::Below(100_000.0), "< 100 µs");
/// Prefix scan of 1000 keys, goal.
pub const PREFIX_SCAN_1000_GOAL: Limit = limit(Bound::AtMost(30_000.0), "<= 30 µs");
/// CAS, seed target.
pub const CAS: Limit = limit(Bound::Below(5_000.0), "< 5 µs");
/// CAS, goal.
pub const CAS_GOAL: Limit = limit(Bound::AtMost(1_000.0), "<= 1 µs");
/// Versions one key retains after a million overwrites with no snapshot open: target and goal.
pub const VERSIONS_RETAINED: Limit = limit(Bound::AtMost(2.0), "<= 2");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_include_or_exclude_their_edge() {
        assert!(GET_LARGEST.is_met_by(999.0));
        assert!(!GET_LARGEST.is_met_by(1_000.0));
        assert!(GET_LARGEST_GOAL.is_met_by(300.0));
        assert!(!BULK.is_met_by(1_000_000.0));
        assert!(READ_SCALING.is_met_by(1.7));
        assert!(!READ_SCALING.is_met_by(1.69));
        assert!(!VERSIONS_RETAINED.is_met_by(3.0));
    }
}
