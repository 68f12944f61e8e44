//! Scheduling points for the model checks: under a shuttle test they let another simulated
//! thread run between the steps of a read and of a publish; everywhere else they compile to
//! nothing.

#[cfg(test)]
thread_local! {
    /// Set by a model-checking test while it runs under shuttle on this thread.
    pub(crate) static ACTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A point where the model check may switch threads.
#[inline]
pub(crate) fn step() {
    #[cfg(test)]
    if ACTIVE.with(std::cell::Cell::get) {
        shuttle::thread::yield_now();
    }
}

/// Taken by each model-checking test for its whole run: the epoch collector is shared by the
/// process, so a test running beside another could see the other's pinned threads hold back
/// the frees it counts.
#[cfg(test)]
pub(crate) static EXCLUSIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());
