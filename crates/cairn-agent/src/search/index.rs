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

use cairn::Transaction;

use super::doc::{check_id, Doc};
use super::error::{CorruptionReason, Result, SearchError};
use super::format::{
    counters_key, decode_counter, decode_record, encode_counter, encode_posting, encode_record,
    posting_list_key, push_suffix, record_key, run_counters_key, shard_of, tag_list_key, Counter,
    Posting, Record,
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
        for (term, _) in &old.terms {
            let mut key = posting_list_key(&self.prefix, term);
            push_suffix(&mut key, &old.run, doc_id);
            tx.delete(&key)?;
        }
        for tag in &old.tags {
            let mut key = tag_list_key(&self.prefix, tag);
            push_suffix(&mut key, &old.run, doc_id);
            tx.delete(&key)?;
        }
        self.count(deltas, doc_id, &old.run, -1, old.doc_len);
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
