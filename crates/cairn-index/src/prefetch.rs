//! A cache prefetch hint, for readers that know which memory they will touch a few steps
//! ahead (a scan walking records in key order).
//!
//! Guarantee: it reads nothing a caller can observe and never faults, whatever the address
//! (the instruction is a hint the CPU may drop), so it is safe to call with any pointer,
//! dangling or null. On targets other than x86-64 it does nothing.

/// Asks the CPU to start loading the cache line holding `address` into every cache level.
#[inline]
pub fn prefetch<T>(address: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` only hints the cache; it has no architectural effect and cannot
    // fault, so any address is fine, and SSE is part of the x86-64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
