//! The one integration point for search: every write whose content must be searchable calls
//! [`index_hook`] inside the same engine transaction as the write itself, and deleting a run
//! calls [`index_drop_run`]. Both are no-ops today; search indexing lands here, so that an
//! index maintained here is always in the same commit as the data it indexes.

use crate::run::RunId;

/// Content that changed, as the search index will want it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum SearchDoc<'a> {
    /// An event was appended (payload is JSON text).
    Event {
        /// The run.
        run: RunId,
        /// The event's sequence.
        seq: u64,
        /// The event type.
        event_type: &'a str,
        /// The payload's JSON text.
        payload: &'a [u8],
    },
    /// A span was recorded (content is JSON text).
    Span {
        /// The run.
        run: RunId,
        /// The span id.
        id: u64,
        /// The span name.
        name: &'a str,
        /// The span's tags.
        tags: &'a [String],
        /// The content's JSON text.
        content: &'a [u8],
    },
    /// A state cell, KV value or document was written (`value` is `None` when removed).
    Value {
        /// The run.
        run: RunId,
        /// Which primitive.
        primitive: crate::Primitive,
        /// The run-relative key or name.
        key: &'a [u8],
        /// The new value (documents: JSON text), or `None` when removed.
        value: Option<&'a [u8]>,
    },
}

/// Search indexing lands here: called once per searchable write, inside the write's own
/// transaction. Today it does nothing.
#[inline]
pub(crate) fn index_hook(tx: &mut cairn::Transaction, doc: SearchDoc<'_>) {
    let _ = (tx, doc);
}

/// Search indexing lands here too: called inside `delete_run`'s transaction so the run's
/// postings go in the same commit. Today it does nothing.
#[inline]
pub(crate) fn index_drop_run(tx: &mut cairn::Transaction, run: RunId) {
    let _ = (tx, run);
}
