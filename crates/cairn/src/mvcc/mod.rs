//! Multi-version concurrency control: what each reader sees, and what may be forgotten.
//!
//! Every key in the index owns a [`record::Record`]: the key and its [`chain::Chain`] of
//! versions, newest first. Writers (one at a time, under the commit lock) publish a new
//! record; readers load the current record without any lock and pick the newest version at
//! or below their read version. [`readers`] tracks the read versions of live snapshots and
//! transactions: the *horizon*, which decides what history may be pruned.

pub(crate) mod chain;
pub(crate) mod readers;
pub(crate) mod record;
