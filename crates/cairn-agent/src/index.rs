//! The agent's search index: every write whose content is searchable calls [`index_hook`]
//! inside the same engine transaction as the write itself, and deleting a run calls
//! [`index_drop_run`] inside the delete's transaction. The index is a
//! [`search::Indexer`](crate::search::Indexer) under the key prefix [`PREFIX`] (`@a/x`), so an
//! index change is in the same commit as the data it indexes or in none, and a search at a
//! snapshot sees exactly the documents that snapshot holds.
//!
//! Guarantees:
//! - **One document per searchable thing.** Doc ids are `<run u64 BE> <code> <key>`, with the
//!   code `e` (event, key = seq BE), `t` (span, key = id BE), `k` (KV key), `c` (cell name) or
//!   `d` (document name). A key too long for the index's id limit is replaced by its BLAKE3
//!   hash under the upper-case code (`K`, `C`, `D`), so ids stay unique per (run, primitive,
//!   key) and always start with the run: a run's documents are one prefix of the record space.
//! - **What is indexed.** Events: the type, then every string of the payload. Spans: the name,
//!   the tags, then every string of the content; the span's tags that fit the index's tag
//!   limits (at most 16, each 1 to 64 bytes, the first in byte order) are also filterable tags.
//!   KV and cell values: every string if the value is JSON, else the value if it is UTF-8
//!   text, else nothing. Documents: every string of the JSON text. A value with no word in it
//!   is removed from the index rather than kept as an empty document.
//! - **Nothing is refused for size.** Text past the index's 64 KiB document limit
//!   (`search::limits::TEXT_BYTES_MAX`) is cut at a character boundary: the write commits,
//!   and only words past the cut are not searchable.
//! - **Removal.** A KV delete or a document destroy removes the document in the same commit;
//!   `delete_run` removes every document of the run.

use cairn::Transaction;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::record::Primitive;
use crate::run::RunId;
use crate::search::limits::{DOC_ID_BYTES_MAX, TAGS_PER_DOC_MAX, TAG_BYTES_MAX, TEXT_BYTES_MAX};
use crate::search::tokenize::{floor_char_boundary, tokens};
use crate::search::{self, format::record_key, Doc, Indexer};

/// The key prefix of the agent's search index. No other key family of `docs/agent.md` starts
/// with it (they continue `@a/` with `i`, `m`, `s`, `g` or `r`).
pub(crate) const PREFIX: &[u8] = b"@a/x";

/// Bytes of a doc id before the key: the run (8) and the primitive's code (1).
const ID_HEAD_BYTES: usize = 9;

/// Content that changed, as the search index wants it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SearchDoc<'a> {
    /// An event was appended (payload is JSON text).
    Event {
        run: RunId,
        seq: u64,
        time_ms: u64,
        event_type: &'a str,
        payload: &'a [u8],
    },
    /// A span was recorded (content is JSON text).
    Span {
        run: RunId,
        id: u64,
        start_ms: u64,
        name: &'a str,
        tags: &'a [String],
        content: &'a [u8],
    },
    /// A state cell, KV value or document was written (`value` is `None` when removed).
    Value {
        run: RunId,
        primitive: Primitive,
        key: &'a [u8],
        time_ms: u64,
        value: Option<&'a [u8]>,
    },
}

/// The agent's index handle.
pub(crate) fn indexer() -> Result<Indexer> {
    Ok(Indexer::new(PREFIX)?)
}

/// Indexes (or removes) `doc` in `tx`, the transaction of the write it describes.
pub(crate) fn index_hook(index: &Indexer, tx: &mut Transaction, doc: SearchDoc<'_>) -> Result<()> {
    match doc {
        SearchDoc::Event {
            run,
            seq,
            time_ms,
            event_type,
            payload,
        } => {
            let mut text = Text::default();
            text.push(event_type);
            text.push_json(payload);
            let id = doc_id(run, Primitive::Event, &seq.to_be_bytes());
            put(index, tx, run, &id, Primitive::Event, time_ms, text, &[])
        }
        SearchDoc::Span {
            run,
            id: span,
            start_ms,
            name,
            tags,
            content,
        } => {
            let mut text = Text::default();
            text.push(name);
            for tag in tags {
                text.push(tag);
            }
            text.push_json(content);
            let id = doc_id(run, Primitive::Span, &span.to_be_bytes());
            put(index, tx, run, &id, Primitive::Span, start_ms, text, tags)
        }
        SearchDoc::Value {
            run,
            primitive,
            key,
            time_ms,
            value,
        } => {
            let id = doc_id(run, primitive, key);
            let Some(value) = value else {
                index.remove(tx, &id)?;
                return Ok(());
            };
            let mut text = Text::default();
            if primitive == Primitive::Doc {
                text.push_json(value);
            } else {
                text.push_value(value);
            }
            put(index, tx, run, &id, primitive, time_ms, text, &[])
        }
    }
}

/// Removes every document of `run` from the index, in `tx` (the run's delete).
pub(crate) fn index_drop_run(index: &Indexer, tx: &mut Transaction, run: RunId) -> Result<()> {
    let run_ids = record_key(index.prefix(), &run.get().to_be_bytes());
    // `P 'd' doc_id`: the doc id starts right after the prefix and the space byte.
    let id_at = index.prefix().len() + 1;
    let ids: Vec<Vec<u8>> = tx
        .scan_prefix(&run_ids)
        .map(|(key, _)| key.get(id_at..).unwrap_or_default().to_vec())
        .collect();
    for id in ids {
        debug_assert!(id.starts_with(&run.get().to_be_bytes()));
        index.remove(tx, &id)?;
    }
    Ok(())
}

/// Indexes `text` as document `id`, or removes the document when the text has no word.
#[expect(
    clippy::too_many_arguments,
    reason = "a document's parts, from one private call site per primitive"
)]
fn put(
    index: &Indexer,
    tx: &mut Transaction,
    run: RunId,
    id: &[u8],
    primitive: Primitive,
    time_ms: u64,
    text: Text,
    tags: &[String],
) -> Result<()> {
    let text = text.finish();
    if tokens(&text).next().is_none() {
        index.remove(tx, id)?;
        return Ok(());
    }
    let mut doc = Doc::new(
        id,
        run.get().to_be_bytes(),
        search_primitive(primitive),
        time_ms,
        text,
    );
    for tag in filterable_tags(tags) {
        doc = doc.tag(tag);
    }
    index.index(tx, &doc)?;
    Ok(())
}

/// The tags of a span the index can filter on: distinct, in byte order, 1 to
/// `TAG_BYTES_MAX` bytes, at most `TAGS_PER_DOC_MAX`.
fn filterable_tags(tags: &[String]) -> Vec<&str> {
    let mut fit: Vec<&str> = tags
        .iter()
        .map(String::as_str)
        .filter(|t| !t.is_empty() && t.len() <= TAG_BYTES_MAX)
        .collect();
    fit.sort_unstable();
    fit.dedup();
    fit.truncate(TAGS_PER_DOC_MAX);
    fit
}

/// The text of one document, built from parts and cut at `TEXT_BYTES_MAX`.
#[derive(Default)]
struct Text {
    text: String,
}

impl Text {
    fn is_full(&self) -> bool {
        self.text.len() >= TEXT_BYTES_MAX
    }

    fn push(&mut self, part: &str) {
        if self.is_full() || part.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        let room = TEXT_BYTES_MAX.saturating_sub(self.text.len());
        let end = floor_char_boundary(part, room.min(part.len()));
        self.text.push_str(part.get(..end).unwrap_or_default());
    }

    /// Every string of the JSON text `bytes`, depth first in document order.
    fn push_json(&mut self, bytes: &[u8]) {
        if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
            self.push_strings(&value);
        }
    }

    /// A KV or cell value: its strings if it is JSON, else itself if it is UTF-8.
    fn push_value(&mut self, bytes: &[u8]) {
        if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
            self.push_strings(&value);
        } else if let Ok(text) = std::str::from_utf8(bytes) {
            self.push(text);
        }
    }

    fn push_strings(&mut self, value: &Value) {
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            if self.is_full() {
                return;
            }
            match value {
                Value::String(s) => self.push(s),
                Value::Array(items) => stack.extend(items.iter().rev()),
                Value::Object(members) => stack.extend(members.values().rev()),
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
    }

    fn finish(self) -> String {
        debug_assert!(self.text.len() <= TEXT_BYTES_MAX);
        self.text
    }
}

fn code(primitive: Primitive) -> u8 {
    match primitive {
        Primitive::Event => b'e',
        Primitive::Span => b't',
        Primitive::Kv => b'k',
        Primitive::Cell => b'c',
        Primitive::Doc => b'd',
    }
}

fn search_primitive(primitive: Primitive) -> search::Primitive {
    match primitive {
        Primitive::Event => search::Primitive::Event,
        Primitive::Span => search::Primitive::Trace,
        Primitive::Kv => search::Primitive::Kv,
        Primitive::Cell => search::Primitive::State,
        Primitive::Doc => search::Primitive::Json,
    }
}

/// The agent primitive a search primitive stands for.
pub(crate) fn agent_primitive(primitive: search::Primitive) -> Primitive {
    match primitive {
        search::Primitive::Event => Primitive::Event,
        search::Primitive::Trace => Primitive::Span,
        search::Primitive::Kv => Primitive::Kv,
        search::Primitive::State => Primitive::Cell,
        search::Primitive::Json => Primitive::Doc,
    }
}

/// The search filter's primitive for an agent primitive.
pub(crate) fn filter_primitive(primitive: Primitive) -> search::Primitive {
    search_primitive(primitive)
}

/// `<run u64 BE> <code> <key>`, or `<run> <CODE> <BLAKE3(key)>` when the key is too long.
pub(crate) fn doc_id(run: RunId, primitive: Primitive, key: &[u8]) -> Vec<u8> {
    let mut id = Vec::with_capacity(ID_HEAD_BYTES + key.len().min(DOC_ID_BYTES_MAX));
    id.extend_from_slice(&run.get().to_be_bytes());
    if ID_HEAD_BYTES + key.len() <= DOC_ID_BYTES_MAX {
        id.push(code(primitive));
        id.extend_from_slice(key);
    } else {
        id.push(code(primitive).to_ascii_uppercase());
        id.extend_from_slice(blake3::hash(key).as_bytes());
    }
    debug_assert!(id.len() <= DOC_ID_BYTES_MAX);
    id
}

/// A doc id taken apart: the run, the primitive, and the run-relative key (`None` when the
/// id holds the key's hash). `Corrupt` for anything [`doc_id`] does not make.
pub(crate) fn parse_doc_id(id: &[u8]) -> Result<(RunId, Primitive, Option<Vec<u8>>)> {
    let bad = || Error::corrupt("search document id", "not an agent id");
    let run: [u8; 8] = id
        .get(..8)
        .and_then(|r| r.try_into().ok())
        .ok_or_else(bad)?;
    let run = RunId::from_u64(u64::from_be_bytes(run));
    let tag = *id.get(8).ok_or_else(bad)?;
    let key = id.get(ID_HEAD_BYTES..).unwrap_or_default();
    let primitive = [
        Primitive::Event,
        Primitive::Span,
        Primitive::Kv,
        Primitive::Cell,
        Primitive::Doc,
    ]
    .into_iter()
    .find(|p| code(*p) == tag.to_ascii_lowercase())
    .ok_or_else(bad)?;
    let hashed = tag.is_ascii_uppercase();
    let numbered = matches!(primitive, Primitive::Event | Primitive::Span);
    if (hashed && (numbered || key.len() != 32)) || (numbered && key.len() != 8) {
        return Err(bad());
    }
    Ok((run, primitive, (!hashed).then(|| key.to_vec())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, reason = "a test panics on a broken expectation")]
    use super::*;

    #[test]
    fn ids_round_trip_and_long_keys_hash() {
        let run = RunId::from_u64(7);
        let id = doc_id(run, Primitive::Kv, b"user/1");
        assert_eq!(
            parse_doc_id(&id).expect("parse"),
            (run, Primitive::Kv, Some(b"user/1".to_vec()))
        );
        let long = vec![b'x'; DOC_ID_BYTES_MAX];
        let id = doc_id(run, Primitive::Doc, &long);
        assert_eq!(id.len(), ID_HEAD_BYTES + 32);
        assert_eq!(
            parse_doc_id(&id).expect("parse"),
            (run, Primitive::Doc, None)
        );
        let id = doc_id(run, Primitive::Event, &3u64.to_be_bytes());
        assert_eq!(
            parse_doc_id(&id).expect("parse"),
            (run, Primitive::Event, Some(3u64.to_be_bytes().to_vec()))
        );
        assert!(parse_doc_id(b"short").is_err());
        let mut bad = doc_id(run, Primitive::Event, &3u64.to_be_bytes());
        bad.push(0);
        assert!(parse_doc_id(&bad).is_err());
    }

    #[test]
    fn text_is_strings_and_is_cut_at_the_limit() {
        let mut text = Text::default();
        text.push_json(br#"{"a": "first", "n": 3, "b": ["second", {"c": "third"}]}"#);
        assert_eq!(text.finish(), "first\nsecond\nthird");
        let mut text = Text::default();
        text.push_value(b"plain words");
        text.push_value(&[0xff, 0xfe]);
        assert_eq!(text.finish(), "plain words");
        let mut text = Text::default();
        let big = "\u{e9}".repeat(TEXT_BYTES_MAX);
        text.push(&big);
        let done = text.finish();
        assert!(done.len() <= TEXT_BYTES_MAX && done.len() > TEXT_BYTES_MAX - 4);
    }

    #[test]
    fn only_fitting_tags_filter() {
        let mut tags: Vec<String> = (0..20).map(|i| format!("t{i:02}")).collect();
        tags.push("x".repeat(TAG_BYTES_MAX + 1));
        tags.push("t00".into());
        let fit = filterable_tags(&tags);
        assert_eq!(fit.len(), TAGS_PER_DOC_MAX);
        assert_eq!(fit.first().copied(), Some("t00"));
        assert!(fit.iter().all(|t| t.len() <= TAG_BYTES_MAX));
    }
}
