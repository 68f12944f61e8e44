//! `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`, with Redis's semantics, carried out as one
//! engine commit.
//!
//! - Between `MULTI` and `EXEC` a command is checked (it exists, its arity fits) and queued;
//!   one that fails the check gets its error at once and makes `EXEC` fail with `EXECABORT`.
//! - `EXEC` locks the stripes of every key the queued commands name (every stripe when one of
//!   them names no keys, such as `FLUSHDB`, or changes the database with `SELECT`), checks
//!   the watched keys, then runs the commands in order against one engine transaction
//!   (`store::Store::Tx`) and commits it once. So the block is atomic for other clients and
//!   for a crash, and a command in it sees the writes of the ones before it. As in Redis, a
//!   command that fails (a wrong type, say) gives its error in the reply array and the others
//!   still apply: there is no rollback.
//! - `WATCH` registers the client as a watcher of each key (`state::Watches`) and records the
//!   engine version of the key's metadata record. `EXEC` returns the null array, running
//!   nothing, when any of them was written since (every write to a key, a collection's
//!   included, writes that record, and marks its watchers), or its version differs (the
//!   engine's reaper deleted it).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cairn::Version;

use super::{engine_error, is, Ctx, Request, Spec, Store};
use crate::resp::{Reply, OK};

/// How often `EXEC` runs its block again when the engine reports a conflict (an expired key
/// reaped between the block's reads and its commit).
const EXEC_ATTEMPTS: usize = 8;

/// A client's transaction state.
#[derive(Debug, Default)]
pub struct TransactionState {
    /// The queued requests, while in `MULTI`.
    queued: Option<Vec<Request>>,
    /// A queued request failed its check: `EXEC` aborts.
    failed: bool,
    /// Watched metadata keys and the version each had (`None`: absent).
    watched: Vec<(Vec<u8>, Option<Version>)>,
    /// Set when a watched key is written (`state::Watches`).
    dirty: Arc<AtomicBool>,
}

impl TransactionState {
    /// Whether the client is between `MULTI` and `EXEC`.
    pub fn in_multi(&self) -> bool {
        self.queued.is_some()
    }

    /// Queues a checked request.
    pub(crate) fn queue(&mut self, spec: &'static Spec, args: &[Bytes]) {
        if let Some(queued) = self.queued.as_mut() {
            queued.push(Request {
                spec,
                args: args.to_vec(),
            });
        }
    }

    /// Marks the transaction failed (a request failed its check while queued).
    pub(crate) fn fail(&mut self) {
        if self.queued.is_some() {
            self.failed = true;
        }
    }
}

/// The commands that run at once, not queued, between `MULTI` and `EXEC` (`UNWATCH` is
/// queued, as in Redis).
pub(crate) fn runs_inside_multi(spec: &Spec) -> bool {
    matches!(spec.name, "exec" | "discard" | "multi" | "watch" | "quit")
}

pub(crate) fn multi(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    let state = &mut ctx.client.transaction;
    if state.in_multi() {
        return Reply::err("MULTI calls can not be nested");
    }
    state.queued = Some(Vec::new());
    state.failed = false;
    OK
}

/// Ends every watch of the client (at `EXEC`, `DISCARD`, `UNWATCH` and disconnect).
pub(crate) fn unwatch_all(shared: &crate::state::Shared, client: &mut super::Client) {
    let state = &mut client.transaction;
    shared
        .watches
        .unwatch(state.watched.iter().map(|(key, _)| key), client.id);
    state.watched.clear();
    state.dirty = Arc::new(AtomicBool::new(false));
}

/// Ends the client's transaction, if any, and every watch (Redis's `discardTransaction`).
pub(crate) fn discard_all(shared: &crate::state::Shared, client: &mut super::Client) {
    unwatch_all(shared, client);
    client.transaction.queued = None;
    client.transaction.failed = false;
}

pub(crate) fn discard(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    if !ctx.client.transaction.in_multi() {
        return Reply::err("DISCARD without MULTI");
    }
    discard_all(ctx.shared, ctx.client);
    OK
}

pub(crate) fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if ctx.client.transaction.in_multi() {
        return Reply::err("WATCH inside MULTI is not allowed");
    }
    for key in args.iter().skip(1) {
        let meta_key = match ctx.meta_key(key) {
            Ok(meta_key) => meta_key,
            Err(error) => return error,
        };
        let version = match ctx.shared.db.get_versioned(&meta_key) {
            Ok(found) => found.map(|(_, version)| version),
            Err(error) => return engine_error(&error),
        };
        let state = &mut ctx.client.transaction;
        ctx.shared
            .watches
            .watch(meta_key.clone(), ctx.client.id, &state.dirty);
        state.watched.push((meta_key, version));
    }
    OK
}

pub(crate) fn unwatch(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    unwatch_all(ctx.shared, ctx.client);
    OK
}

/// The engine keys whose stripes `EXEC` locks for `queued`; `None` for every stripe.
pub(crate) fn keys_to_lock(ctx: &Ctx<'_>, queued: &[Request]) -> Option<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    for Request { spec, args } in queued {
        let (first, last, step) = spec.keys;
        // A key of another database than the selected one: its stripe is not the one the
        // selected database's key would have.
        let other_db = spec.name == "move"
            || (spec.name == "copy" && args.iter().skip(3).any(|arg| is(arg, "db")));
        if first == 0 || spec.name == "select" || other_db {
            if spec.writes() || spec.name == "select" {
                return None;
            }
            continue;
        }
        let count = i64::try_from(args.len()).ok()?;
        let last = if last < 0 { count + last } else { last };
        let mut position = first;
        while position <= last {
            let key = args.get(usize::try_from(position).ok()?)?;
            keys.push(ctx.meta_key(key).ok()?);
            position += step.max(1);
        }
    }
    Some(keys)
}

pub(crate) fn exec(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    let Some(queued) = ctx.client.transaction.queued.take() else {
        return Reply::err("EXEC without MULTI");
    };
    let failed = std::mem::take(&mut ctx.client.transaction.failed);
    let watched = std::mem::take(&mut ctx.client.transaction.watched);
    let dirty = Arc::clone(&ctx.client.transaction.dirty);
    ctx.client.transaction.watched.clone_from(&watched);
    unwatch_all(ctx.shared, ctx.client);
    if failed {
        return Reply::Error(
            "EXECABORT Transaction discarded because of previous errors.".to_owned(),
        );
    }
    let shared = ctx.shared;
    let _locks = match keys_to_lock(ctx, &queued) {
        Some(keys) => shared.stripes.lock(&keys),
        None => shared.stripes.lock_all(),
    };
    if dirty.load(Ordering::SeqCst) {
        return Reply::NullArray;
    }
    for (meta_key, version) in &watched {
        let now = match shared.db.get_versioned(meta_key) {
            Ok(found) => found.map(|(_, version)| version),
            Err(error) => return engine_error(&error),
        };
        if now != *version {
            return Reply::NullArray;
        }
    }
    run_block(shared, ctx.client, &queued).map_or_else(|error| error, Reply::Array)
}

/// Runs `block` (requests already checked) against one engine transaction and commits it
/// once; the caller holds the stripes of every key the block names. Runs the block again
/// when the engine reports a conflict.
pub(crate) fn run_block(
    shared: &crate::state::Shared,
    client: &mut super::Client,
    block: &[Request],
) -> Result<Vec<Reply>, Reply> {
    let first_db = client.db;
    let mut attempt = 0;
    loop {
        attempt += 1;
        client.db = first_db;
        let transaction = RefCell::new(shared.db.begin());
        let mut replies = Vec::with_capacity(block.len());
        client.events.clear();
        client.wake_readers.set(false);
        for Request { spec, args } in block {
            let mut inner = Ctx {
                shared,
                client: &mut *client,
                store: Store::Tx(&transaction),
            };
            replies.push((spec.handler)(&mut inner, args));
            super::note_events(shared, client, spec, args);
        }
        match transaction.into_inner().commit() {
            Ok(_) => {
                client.events.publish(&shared.notify, &shared.pubsub);
                if client.wake_readers.take() {
                    shared.blocked_keys_written.notify_waiters();
                }
                return Ok(replies);
            }
            Err(error) if error.is_retryable() && attempt < EXEC_ATTEMPTS => {}
            Err(error) => {
                client.events.clear();
                return Err(engine_error(&error));
            }
        }
    }
}
