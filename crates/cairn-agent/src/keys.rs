//! The key layout: every key `cairn-agent` writes, in one place. `docs/agent.md` describes the
//! same table. Integers in keys are big-endian so that byte order is numeric order; run ids
//! and sequence numbers are 8 bytes, so a run's event key is 21 bytes and stays inline in the
//! engine's key type.
//!
//! ```text
//! @a/id                              next run id (u64 LE)
//! @a/m <run>                         run meta record
//! @a/s <status u8> <run>             status index (empty value)
//! @a/g <tag> 0x00 <run>              tag index (empty value)
//! @a/r <run> e <seq>                 event envelope
//! @a/r <run> i <type> 0x00 <seq>     event type index (empty value)
//! @a/r <run> h <step>                history step record
//! @a/r <run> b                       pruned-history base record
//! @a/r <run> f <child run>           fork of this run at a step (u64 LE)
//! @a/r <run> k <key>                 KV current value
//! @a/r <run> c <name>                state cell current (version u64 LE + value)
//! @a/r <run> d <name>                JSON document current (JSON text)
//! @a/r <run> t <span>                trace span record
//! @a/r <run> p <parent+1> <span>     span children index; parent 0 = root (empty value)
//! @a/r <run> y <kind u8> <span>      span kind index (empty value)
//! @a/x ...                           the search index (`index::PREFIX`; the layout of
//!                                    `search::format` under that prefix)
//! ```

use crate::run::RunId;

pub(crate) const NEXT_RUN_ID: &[u8] = b"@a/id";
pub(crate) const META: &[u8] = b"@a/m";
pub(crate) const STATUS: &[u8] = b"@a/s";
pub(crate) const TAG: &[u8] = b"@a/g";
pub(crate) const RUN: &[u8] = b"@a/r";

pub(crate) const EVENT: u8 = b'e';
pub(crate) const EVENT_TYPE: u8 = b'i';
pub(crate) const STEP: u8 = b'h';
pub(crate) const BASE: u8 = b'b';
pub(crate) const FORK: u8 = b'f';
pub(crate) const KV: u8 = b'k';
pub(crate) const CELL: u8 = b'c';
pub(crate) const DOC: u8 = b'd';
pub(crate) const SPAN: u8 = b't';
pub(crate) const SPAN_CHILD: u8 = b'p';
pub(crate) const SPAN_KIND: u8 = b'y';

fn with(prefix: &[u8], extra: usize) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + extra);
    k.extend_from_slice(prefix);
    k
}

pub(crate) fn meta(run: RunId) -> Vec<u8> {
    let mut k = with(META, 8);
    k.extend_from_slice(&run.get().to_be_bytes());
    k
}

pub(crate) fn status(status: u8, run: RunId) -> Vec<u8> {
    let mut k = with(STATUS, 9);
    k.push(status);
    k.extend_from_slice(&run.get().to_be_bytes());
    k
}

pub(crate) fn status_prefix(status: u8) -> Vec<u8> {
    let mut k = with(STATUS, 1);
    k.push(status);
    k
}

pub(crate) fn tag(tag: &str, run: RunId) -> Vec<u8> {
    let mut k = tag_prefix(tag);
    k.extend_from_slice(&run.get().to_be_bytes());
    k
}

pub(crate) fn tag_prefix(tag: &str) -> Vec<u8> {
    let mut k = with(TAG, tag.len() + 9);
    k.extend_from_slice(tag.as_bytes());
    k.push(0);
    k
}

/// `@a/r <run>`: everything the run owns.
pub(crate) fn run_prefix(run: RunId) -> Vec<u8> {
    let mut k = with(RUN, 8 + 1 + 8);
    k.extend_from_slice(&run.get().to_be_bytes());
    k
}

/// `@a/r <run> <kind>`.
pub(crate) fn area(run: RunId, kind: u8) -> Vec<u8> {
    let mut k = run_prefix(run);
    k.push(kind);
    k
}

/// `@a/r <run> <kind> <n>` for the numbered records.
pub(crate) fn numbered(run: RunId, kind: u8, n: u64) -> Vec<u8> {
    let mut k = area(run, kind);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// `@a/r <run> <kind> <name>` for the named records.
pub(crate) fn named(run: RunId, kind: u8, name: &[u8]) -> Vec<u8> {
    let mut k = area(run, kind);
    k.extend_from_slice(name);
    k
}

pub(crate) fn event_type(run: RunId, event_type: &str, seq: u64) -> Vec<u8> {
    let mut k = event_type_prefix(run, event_type);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn event_type_prefix(run: RunId, event_type: &str) -> Vec<u8> {
    let mut k = area(run, EVENT_TYPE);
    k.extend_from_slice(event_type.as_bytes());
    k.push(0);
    k
}

pub(crate) fn span_child(run: RunId, parent: Option<u64>, span: u64) -> Vec<u8> {
    let mut k = span_child_prefix(run, parent);
    k.extend_from_slice(&span.to_be_bytes());
    k
}

pub(crate) fn span_child_prefix(run: RunId, parent: Option<u64>) -> Vec<u8> {
    let mut k = area(run, SPAN_CHILD);
    let p = parent.map_or(0, |p| p.saturating_add(1));
    k.extend_from_slice(&p.to_be_bytes());
    k
}

pub(crate) fn span_kind(run: RunId, kind: u8, span: u64) -> Vec<u8> {
    let mut k = span_kind_prefix(run, kind);
    k.extend_from_slice(&span.to_be_bytes());
    k
}

pub(crate) fn span_kind_prefix(run: RunId, kind: u8) -> Vec<u8> {
    let mut k = area(run, SPAN_KIND);
    k.push(kind);
    k
}

/// The trailing big-endian u64 of a numbered key.
pub(crate) fn trailing_u64(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    let tail: [u8; 8] = key.get(start..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// The run-relative name of a named key (`@a/r <run> <kind> <name>` → `<name>`).
pub(crate) fn name_of(key: &[u8]) -> Option<&[u8]> {
    key.get(RUN.len() + 8 + 1..)
}
