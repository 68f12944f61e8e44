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

/// Pushes the epoch collector until `freed` holds `count` ids (or a thousand pushes have
/// passed), then fails the test unless it does: every value made was freed, none leaked.
#[cfg(test)]
pub(crate) fn assert_all_freed(
    freed: &std::sync::Mutex<std::collections::HashSet<u64>>,
    count: usize,
) {
    let freed_now = || freed.lock().map_or(0, |set| set.len());
    for _ in 0..1_000 {
        if freed_now() == count {
            break;
        }
        crossbeam_epoch::pin().flush();
    }
    assert_eq!(freed_now(), count, "a value was leaked");
}
