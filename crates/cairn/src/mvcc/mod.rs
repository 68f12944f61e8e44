//! Multi-version concurrency control: what each reader sees, and what may be forgotten.
//!
//! Every key in the index owns a [`record::Record`]: one allocation with the key, its newest
//! value inline and any older versions still needed, newest first; [`chain`] holds the pure
//! rules that decide which. Writers (one at a time, under the commit lock) publish a new
//! record; readers load the current record without any lock and pick the newest version at
//! or below their read version. [`readers`] tracks the read versions of live snapshots and
//! transactions: the *horizon*, which decides what history may be pruned.

pub(crate) mod chain;
pub(crate) mod readers;
#[expect(
    unsafe_code,
    reason = "a record is one variable-length allocation shared by reference count; the \
              safety argument is in the module's documentation"
)]
pub(crate) mod record;
