//! Multi-version concurrency control: what each reader sees, and what may be forgotten.
//!
//! Every key in the index owns a [`chain::Chain`]: its versions, newest first. Writers (one at
//! a time, under the commit lock) publish a new chain; readers load the current chain without
//! any lock and pick the newest version at or below their read version. [`readers`] tracks the
//! read versions of live snapshots and transactions: the *horizon*, which decides what
//! history may be pruned. [`slot`] is the pointer each key's chain is published through (the
//! engine's only `unsafe` code).

pub(crate) mod chain;
pub(crate) mod readers;
#[expect(
    unsafe_code,
    reason = "the slot's lock-free pointer swap with epoch-deferred freeing; the safety \
              argument is in the module's documentation and it is model-checked"
)]
pub(crate) mod slot;
