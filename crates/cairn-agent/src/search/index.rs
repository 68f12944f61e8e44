//! The write path: [`Indexer::index`] and [`Indexer::remove`], each a set of buffered writes in
//! the caller's transaction, so the index changes in the same commit as the data it indexes,
//! or not at all.
//!
//! Indexing a document writes its record (with its term list, so removal deletes exactly the
//! postings it made), one posting per distinct term, one tag posting per tag, and adds its
//! counts to two counter shards (all runs, and its run). Re-indexing an id first takes back
//! everything the old record made, so the index never holds a stale posting. Every limit is
//! checked before the first write: an input error leaves the transaction untouched. An engine
//! error part-way (rare: a closed database, a full transaction) leaves some writes buffered;
//! drop the transaction then.

use std::collections::BTreeMap;

use cairn::{Key, Transaction, Value};

use super::doc::{check_id, Doc};
use super::error::{CorruptionReason, Result, SearchError};
use super::format::{
    block_list_key, counters_key, decode_block, decode_counter, decode_posting, decode_record,
    encode_block, encode_counter, encode_posting, encode_record, posting_list_key, push_suffix,
    record_key, run_counters_key, shard_of, tag_list_key, Counter, Posting, Record,
    BLOCK_POSTINGS_MAX,
};
use super::limits::DOC_ID_BYTES_MAX;
use super::tokenize::tokens;
use super::Indexer;

/// What [`Indexer::index`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexReport {
    /// Distinct terms indexed (one posting each).
    pub terms: usize,
    /// The document's length in tokens.
    pub tokens: u32,
    /// True when the id was indexed before and its old postings were taken back.
    pub replaced: bool,
}

/// What one [`Indexer::compact`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Terms whose blocks were rewritten.
    pub terms: usize,
    /// Fresh postings moved into blocks.
    pub postings_moved: usize,
    /// True when no fresh posting is left (at the transaction's snapshot).
    pub done: bool,
}

/// Counter changes of one call, by counter key: (documents, tokens).
type Deltas = BTreeMap<Vec<u8>, (i64, i64)>;

impl Indexer {
    /// Indexes `doc` in `tx`, replacing whatever its id had indexed before.
    pub fn index(&self, tx: &mut Transaction, doc: &Doc) -> Result<IndexReport> {
        doc.validate()?;
        let record = build_record(doc);
        let id = doc.id();
        let old = self.read_record(tx, id)?;
        let mut deltas = Deltas::new();
        if let Some(old) = &old {
            self.take_back(tx, id, old, &mut deltas)?;
        }
        let posting = |term_frequency| Posting {
            term_frequency,
            doc_len: record.doc_len,
            timestamp_ms: record.timestamp_ms,
            primitive: record.primitive,
        };
        for (term, frequency) in &record.terms {
            let mut key = posting_list_key(&self.prefix, term);
            push_suffix(&mut key, &record.run, id);
            tx.put(&key, encode_posting(&posting(*frequency)))?;
        }
        for tag in &record.tags {
            let mut key = tag_list_key(&self.prefix, tag);
            push_suffix(&mut key, &record.run, id);
            tx.put(&key, [])?;
        }
        tx.put(record_key(&self.prefix, id), encode_record(&record))?;
        self.count(&mut deltas, id, &record.run, 1, record.doc_len);
        Self::apply(tx, &deltas)?;
        Ok(IndexReport {
            terms: record.terms.len(),
            tokens: record.doc_len,
            replaced: old.is_some(),
        })
    }

    /// Removes the document `doc_id` from the index in `tx`; false when it was not indexed.
    pub fn remove(&self, tx: &mut Transaction, doc_id: &[u8]) -> Result<bool> {
        check_id("doc id", doc_id, DOC_ID_BYTES_MAX, "DOC_ID_BYTES_MAX")?;
        let Some(old) = self.read_record(tx, doc_id)? else {
            return Ok(false);
        };
        let mut deltas = Deltas::new();
        self.take_back(tx, doc_id, &old, &mut deltas)?;
        tx.delete(record_key(&self.prefix, doc_id))?;
        Self::apply(tx, &deltas)?;
        Ok(true)
    }

    fn read_record(&self, tx: &mut Transaction, doc_id: &[u8]) -> Result<Option<Record>> {
        let key = record_key(&self.prefix, doc_id);
        let Some(bytes) = tx.get(&key)? else {
            return Ok(None);
        };
        decode_record(&bytes)
            .map(Some)
            .map_err(|error| SearchError::corrupted(&key, error))
    }

    /// Deletes every posting `old` made and subtracts its counts.
    fn take_back(
        &self,
        tx: &mut Transaction,
        doc_id: &[u8],
        old: &Record,
        deltas: &mut Deltas,
    ) -> Result<()> {
        let mut suffix = Vec::new();
        push_suffix(&mut suffix, &old.run, doc_id);
        for (term, _) in &old.terms {
            let mut key = posting_list_key(&self.prefix, term);
            key.extend_from_slice(&suffix);
            // The posting is fresh or in a block: take it out of whichever holds it.
            if tx.get(&key)?.is_some() {
                tx.delete(&key)?;
            } else {
                self.remove_from_block(tx, term, &suffix)?;
            }
        }
        for tag in &old.tags {
            let mut key = tag_list_key(&self.prefix, tag);
            push_suffix(&mut key, &old.run, doc_id);
            tx.delete(&key)?;
        }
        self.count(deltas, doc_id, &old.run, -1, old.doc_len);
        Ok(())
    }

    /// Takes `suffix` out of the block of `term` that holds it: the last block whose first
    /// suffix is at or before it. Rewrites the block, or deletes it when it empties.
    fn remove_from_block(&self, tx: &mut Transaction, term: &str, suffix: &[u8]) -> Result<()> {
        let list_key = block_list_key(&self.prefix, term);
        let mut through = list_key.clone();
        through.extend_from_slice(suffix);
        let mut holder = None;
        for (key, value) in tx.range(list_key.as_slice()..=through.as_slice())? {
            holder = Some((key, value));
        }
        let Some((key, value)) = holder else {
            return Err(SearchError::corrupted(
                &through,
                CorruptionReason::MissingPosting,
            ));
        };
        let mut kept: Vec<(Vec<u8>, Posting)> = Vec::new();
        let mut found = false;
        decode_block(&value, |entry, posting| {
            if entry == suffix {
                found = true;
            } else {
                kept.push((entry.to_vec(), posting));
            }
        })
        .map_err(|error| SearchError::corrupted(&key, error))?;
        if !found {
            return Err(SearchError::corrupted(
                &through,
                CorruptionReason::MissingPosting,
            ));
        }
        tx.delete(&key)?;
        if let Some((first, _)) = kept.first() {
            // A block is keyed by its first suffix, which may just have changed.
            let mut new_key = list_key;
            new_key.extend_from_slice(first);
            let block = encode_block(
                kept.iter()
                    .map(|(entry, posting)| (entry.as_slice(), posting)),
            );
            tx.put(&new_key, block)?;
        }
        Ok(())
    }

    /// Moves fresh postings into blocks, one term at a time, until about `postings_max`
    /// postings have moved; returns what it did. Each term it touches has all its blocks
    /// rewritten (its fresh postings merged in, blocks of up to `BLOCK_POSTINGS_MAX`), so a
    /// search then reads that term's list from a few contiguous values instead of one key per
    /// posting. Searches give the same results before and after. Call it in its own
    /// transaction, again while `CompactReport::done` is false; it conflicts only with writes
    /// that remove or re-index an already compacted document of the terms it rewrites.
    pub fn compact(&self, tx: &mut Transaction, postings_max: usize) -> Result<CompactReport> {
        let postings_max = postings_max.max(1);
        let space = posting_list_key(&self.prefix, "");
        let space = space.get(..space.len() - 1).unwrap_or_default().to_vec();
        let mut report = CompactReport::default();
        // Fresh postings in key order are grouped by term (`term_len term suffix`): read whole
        // terms until `postings_max` is reached, so memory stays bounded by it (plus one term).
        let term_of = |key: &[u8]| -> usize {
            let term_len = key.get(space.len()).copied().map_or(0, usize::from);
            space.len() + 1 + term_len
        };
        let mut fresh: Vec<(Key, Value)> = Vec::new();
        let mut exhausted = true;
        for (key, value) in tx.scan_prefix(&space) {
            if fresh.len() >= postings_max {
                let same_term = fresh.last().is_some_and(|(last, _)| {
                    let end = term_of(last);
                    key.get(..end) == last.get(..end)
                });
                if !same_term {
                    exhausted = false;
                    break;
                }
            }
            fresh.push((key, value));
        }
        let mut at = 0;
        while let Some((first_key, _)) = fresh.get(at) {
            let rest = first_key.get(space.len()..).unwrap_or_default();
            let term_len = usize::from(rest.first().copied().unwrap_or(0));
            let term = rest
                .get(1..=term_len)
                .and_then(|term| std::str::from_utf8(term).ok())
                .ok_or_else(|| {
                    SearchError::corrupted(first_key, CorruptionReason::KeyLayout("term"))
                })?
                .to_owned();
            let list_key = posting_list_key(&self.prefix, &term);
            let end = at
                + fresh
                    .get(at..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|(key, _)| key.starts_with(&list_key))
                    .count();
            let group = fresh.get(at..end).unwrap_or_default();
            self.compact_term(tx, &term, &list_key, group)?;
            report.terms += 1;
            report.postings_moved += group.len();
            at = end.max(at + 1);
        }
        report.done = exhausted;
        Ok(report)
    }

    /// Merges one term's fresh postings (`group`, in key order) with its blocks and rewrites
    /// the blocks.
    fn compact_term(
        &self,
        tx: &mut Transaction,
        term: &str,
        list_key: &[u8],
        group: &[(Key, Value)],
    ) -> Result<()> {
        let block_key = block_list_key(&self.prefix, term);
        let mut entries: Vec<(Vec<u8>, Posting)> = Vec::with_capacity(group.len());
        for (key, value) in group {
            let posting =
                decode_posting(value).map_err(|error| SearchError::corrupted(key, error))?;
            entries.push((
                key.get(list_key.len()..).unwrap_or_default().to_vec(),
                posting,
            ));
            tx.delete(key)?;
        }
        let blocks: Vec<(Key, Value)> = tx.scan_prefix(&block_key).collect();
        for (key, value) in &blocks {
            decode_block(value, |suffix, posting| {
                entries.push((suffix.to_vec(), posting));
            })
            .map_err(|error| SearchError::corrupted(key, error))?;
            tx.delete(key)?;
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if entries
            .windows(2)
            .any(|pair| matches!(pair, [a, b] if a.0 == b.0))
        {
            let reason = CorruptionReason::KeyLayout("a posting both fresh and in a block");
            return Err(SearchError::corrupted(&block_key, reason));
        }
        for chunk in entries.chunks(BLOCK_POSTINGS_MAX) {
            let Some((first, _)) = chunk.first() else {
                continue;
            };
            let mut key = block_key.clone();
            key.extend_from_slice(first);
            tx.put(
                &key,
                encode_block(
                    chunk
                        .iter()
                        .map(|(suffix, posting)| (suffix.as_slice(), posting)),
                ),
            )?;
        }
        Ok(())
    }

    /// Adds `sign` documents of `doc_len` tokens to the two counter shards of `doc_id`.
    fn count(&self, deltas: &mut Deltas, doc_id: &[u8], run: &[u8], sign: i64, doc_len: u32) {
        let shard = shard_of(doc_id);
        let mut global = counters_key(&self.prefix);
        global.push(shard);
        let mut per_run = run_counters_key(&self.prefix, run);
        per_run.push(shard);
        for key in [global, per_run] {
            let delta = deltas.entry(key).or_default();
            delta.0 += sign;
            delta.1 += sign * i64::from(doc_len);
        }
    }

    /// Applies counter changes; a counter that nets to no change is not touched, so
    /// re-indexing a document at the same length writes no counter (and cannot conflict on
    /// one); a counter reaching zero documents is deleted.
    fn apply(tx: &mut Transaction, deltas: &Deltas) -> Result<()> {
        for (key, &(documents, tokens)) in deltas {
            if documents == 0 && tokens == 0 {
                continue;
            }
            let current = match tx.get(key)? {
                Some(bytes) => {
                    decode_counter(&bytes).map_err(|error| SearchError::corrupted(key, error))?
                }
                None => Counter::default(),
            };
            let out_of_range = || SearchError::corrupted(key, CorruptionReason::Counter);
            let next = Counter {
                documents: current
                    .documents
                    .checked_add_signed(documents)
                    .ok_or_else(out_of_range)?,
                tokens: current
                    .tokens
                    .checked_add_signed(tokens)
                    .ok_or_else(out_of_range)?,
            };
            if next.documents == 0 {
                if next.tokens != 0 {
                    return Err(out_of_range());
                }
                tx.delete(key)?;
            } else {
                tx.put(key, encode_counter(&next))?;
            }
        }
        Ok(())
    }
}

/// The record of a validated document: its distinct tags and terms, ascending.
fn build_record(doc: &Doc) -> Record {
    let mut frequencies: BTreeMap<String, u32> = BTreeMap::new();
    let mut doc_len: u32 = 0;
    for token in tokens(doc.text()) {
        *frequencies.entry(token.term.into_owned()).or_default() += 1;
        doc_len += 1;
    }
    Record {
        primitive: doc.primitive(),
        timestamp_ms: doc.timestamp_ms(),
        run: doc.run().to_vec(),
        tags: doc.sorted_tags().into_iter().map(str::to_owned).collect(),
        doc_len,
        terms: frequencies.into_iter().collect(),
        text: doc.text().to_owned(),
    }
}
