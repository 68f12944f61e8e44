//! The read path: [`Indexer::search`], and the reads tools need (`document`, `stats`).
//!
//! A search reads, at one snapshot: the counter shards of its scope (at most
//! `COUNTER_SHARDS` keys), the posting list of each query term (its fresh postings and its
//! blocks) and of each required tag, narrowed to the run when the query has a run filter, and
//! one document record per hit, for its snippet. Nothing else: it never visits a document that holds none of its terms.
//!
//! A term's document frequency is the length of its list in scope, counted while the list is
//! read; the index stores no per-term counter, so two writers that share a word never touch
//! the same key. Lists are merged by posting suffix (every list is ordered by run, then doc
//! id), each document is scored once with all its terms, and a bounded heap keeps the best
//! `top_k`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use cairn::{Key, Snapshot};

use super::bm25;
use super::error::{CorruptionReason, Result, SearchError};
use super::format::{
    block_list_key, counters_key, decode_block, decode_counter, decode_posting, decode_record,
    decode_record_text, posting_list_key, push_run, record_key, run_counters_key, split_suffix,
    tag_list_key, Counter, Posting, Record, BLOCK_POSTINGS_MAX,
};
use super::limits::{SNIPPET_BYTES_MAX, SNIPPET_LEAD_BYTES};
use super::query::{Budget, Hit, Query, SearchResults, Snippet};
use super::tokenize::{ceil_char_boundary, floor_char_boundary, tokens};
use super::Indexer;

/// One posting as read: its suffix `run_len run doc_id` (the document's identity), borrowed
/// from the key or the block it was read from, and its decoded value.
#[derive(Clone, Copy)]
struct Entry<'data> {
    suffix: &'data [u8],
    posting: Posting,
}

impl<'data> Entry<'data> {
    fn suffix(&self) -> &'data [u8] {
        self.suffix
    }
}

/// One posting list as fetched from a snapshot: its fresh postings (one key each, the suffix
/// at `suffix_at`) and, for a term, its blocks. The list's entries borrow from it, so a
/// search copies no suffix.
#[derive(Default)]
struct Fetched {
    fresh: Vec<(Key, cairn::Value)>,
    suffix_at: usize,
    blocks: Vec<(Key, cairn::Value)>,
    /// The run part of the blocks' keys that a run filter asks for (empty: every run).
    run_prefix: Vec<u8>,
}

/// A scored document in the top-k heap: a list and a position in it, so that the heap holds
/// no copies of keys. Ordered worst first (lower score, then larger doc id), so the heap's
/// top is the one to evict.
struct Ranked<'lists> {
    score: f64,
    entry: &'lists Entry<'lists>,
}

impl Ranked<'_> {
    fn doc_id(&self) -> &[u8] {
        split_suffix(self.entry.suffix()).map_or(&[], |(_, doc_id)| doc_id)
    }
}

impl Ord for Ranked<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.doc_id().cmp(other.doc_id()))
    }
}

impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked<'_> {}

impl Indexer {
    /// The best `query.limit()` documents for `query` at `snapshot`, by BM25, with snippets and
    /// a budget report.
    pub fn search(&self, snapshot: &Snapshot, query: &Query) -> Result<SearchResults> {
        let started = Instant::now();
        let terms = query.terms()?;
        let run = query.run_filter();
        let scope = self.stats(snapshot, run)?;
        let mut budget = Budget::default();
        let mut results = SearchResults {
            documents_in_scope: scope.documents,
            ..SearchResults::default()
        };
        if terms.is_empty() || scope.documents == 0 {
            budget.elapsed = started.elapsed();
            results.budget = budget;
            return Ok(results);
        }
        let mut fetched = Vec::with_capacity(terms.len());
        for term in &terms {
            fetched.push(self.fetch_term(snapshot, term, run, query, &mut budget)?);
        }
        let mut tags_fetched = Vec::new();
        for tag in query.tag_filter() {
            let list_key = tag_list_key(&self.prefix, tag);
            tags_fetched.push(Self::fetch_list(
                snapshot,
                list_key,
                run,
                query,
                &mut budget,
            )?);
        }
        let mut lists = Vec::with_capacity(terms.len());
        for (term, data) in terms.iter().zip(&fetched) {
            lists.push(self.term_entries(term, data, query, &mut budget)?);
        }
        let mut tag_lists = Vec::with_capacity(tags_fetched.len());
        for data in &tags_fetched {
            tag_lists.push(Self::list_entries(data, false)?);
        }
        let avg_len = bm25::count(scope.tokens) / bm25::count(scope.documents);
        let idfs: Vec<f64> = lists
            .iter()
            .map(|list| bm25::idf(scope.documents, list.len() as u64))
            .collect();
        let heap = merge(&lists, &tag_lists, &idfs, avg_len, query, &mut budget);
        for ranked in heap.into_sorted_vec() {
            results.hits.push(self.hit(snapshot, &ranked, &terms)?);
            budget.records_read += 1;
        }
        budget.elapsed = started.elapsed();
        results.budget = budget;
        Ok(results)
    }

    /// The stored record of `doc_id` at `snapshot`.
    pub fn document(&self, snapshot: &Snapshot, doc_id: &[u8]) -> Result<Option<Record>> {
        let key = record_key(&self.prefix, doc_id);
        let Some(bytes) = snapshot.get(&key) else {
            return Ok(None);
        };
        decode_record(&bytes)
            .map(Some)
            .map_err(|error| SearchError::corrupted(&key, error))
    }

    /// Documents and tokens at `snapshot`: of `run`, or of every run. Sums the counter shards.
    pub fn stats(&self, snapshot: &Snapshot, run: Option<&[u8]>) -> Result<Counter> {
        let key = match run {
            Some(run) => run_counters_key(&self.prefix, run),
            None => counters_key(&self.prefix),
        };
        let mut total = Counter::default();
        for (key, value) in snapshot.scan_prefix(&key) {
            let shard =
                decode_counter(&value).map_err(|error| SearchError::corrupted(&key, error))?;
            let sum = total
                .documents
                .checked_add(shard.documents)
                .zip(total.tokens.checked_add(shard.tokens));
            let (documents, tokens) =
                sum.ok_or_else(|| SearchError::corrupted(&key, CorruptionReason::Counter))?;
            total = Counter { documents, tokens };
        }
        Ok(total)
    }

    /// Fetches `term`'s postings (narrowed to `run`): its fresh postings and its blocks.
    fn fetch_term(
        &self,
        snapshot: &Snapshot,
        term: &str,
        run: Option<&[u8]>,
        query: &Query,
        budget: &mut Budget,
    ) -> Result<Fetched> {
        let list_key = posting_list_key(&self.prefix, term);
        let mut fetched = Self::fetch_list(snapshot, list_key, run, query, budget)?;
        let list_key = block_list_key(&self.prefix, term);
        let mut run_key = list_key.clone();
        if let Some(run) = run {
            push_run(&mut run_key, run);
        }
        fetched.run_prefix = run_key.get(list_key.len()..).unwrap_or_default().to_vec();
        if run.is_some() {
            // The block before the run's first one may hold the run's first postings.
            let before = snapshot
                .range(list_key.as_slice()..run_key.as_slice())?
                .next_back();
            fetched.blocks.extend(before);
        }
        fetched.blocks.extend(snapshot.scan_prefix(&run_key));
        Ok(fetched)
    }

    /// `term`'s entries: its blocks' and its fresh postings, merged by suffix.
    fn term_entries<'data>(
        &self,
        term: &str,
        data: &'data Fetched,
        query: &Query,
        budget: &mut Budget,
    ) -> Result<Vec<Entry<'data>>> {
        let fresh = Self::list_entries(data, true)?;
        let blocks = Self::block_entries(data, query, budget)?;
        if blocks.is_empty() {
            return Ok(fresh);
        }
        if fresh.is_empty() {
            return Ok(blocks);
        }
        let mut merged = Vec::with_capacity(fresh.len() + blocks.len());
        let (mut fresh, mut blocks) = (fresh.into_iter().peekable(), blocks.into_iter().peekable());
        loop {
            let take_fresh = match (fresh.peek(), blocks.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(a), Some(b)) => match a.suffix().cmp(b.suffix()) {
                    Ordering::Less => true,
                    Ordering::Greater => false,
                    Ordering::Equal => {
                        let key = block_list_key(&self.prefix, term);
                        let reason =
                            CorruptionReason::KeyLayout("a posting both fresh and in a block");
                        return Err(SearchError::corrupted(&key, reason));
                    }
                },
            };
            let next = if take_fresh {
                fresh.next()
            } else {
                blocks.next()
            };
            merged.extend(next);
        }
        Ok(merged)
    }

    /// The entries of a term's blocks (the blocks whose first suffix is in the run, and the
    /// one before them), narrowed to the run.
    fn block_entries<'data>(
        data: &'data Fetched,
        query: &Query,
        budget: &mut Budget,
    ) -> Result<Vec<Entry<'data>>> {
        // Counted first, so the list is allocated once at its final size (growing a list of
        // ten thousand entries by doubling cost a third of a search in malloc).
        let capacity = data
            .blocks
            .iter()
            .map(|(_, value)| {
                let count = value
                    .get(..2)
                    .and_then(|count| <[u8; 2]>::try_from(count).ok())
                    .map_or(0, u16::from_le_bytes);
                usize::from(count).min(BLOCK_POSTINGS_MAX)
            })
            .sum();
        let mut list = Vec::with_capacity(capacity);
        for (key, value) in &data.blocks {
            budget.blocks_read += 1;
            let mut read = 0;
            decode_block(value, |suffix, posting| {
                read += 1;
                if suffix.starts_with(&data.run_prefix) {
                    list.push(Entry { suffix, posting });
                }
            })
            .map_err(|error| SearchError::corrupted(key, error))?;
            budget.postings_read += read;
            if budget.postings_read > query.budget() {
                return Err(SearchError::PostingsBudget {
                    max: query.budget(),
                });
            }
        }
        Ok(list)
    }

    /// Fetches one list of fresh postings (narrowed to `run`), within the postings budget.
    fn fetch_list(
        snapshot: &Snapshot,
        mut list_key: Vec<u8>,
        run: Option<&[u8]>,
        query: &Query,
        budget: &mut Budget,
    ) -> Result<Fetched> {
        let suffix_at = list_key.len();
        if let Some(run) = run {
            push_run(&mut list_key, run);
        }
        budget.lists_read += 1;
        let mut fresh = Vec::new();
        for pair in snapshot.scan_prefix(&list_key) {
            budget.postings_read += 1;
            if budget.postings_read > query.budget() {
                return Err(SearchError::PostingsBudget {
                    max: query.budget(),
                });
            }
            fresh.push(pair);
        }
        Ok(Fetched {
            fresh,
            suffix_at,
            ..Fetched::default()
        })
    }

    /// The entries of a fetched list's fresh postings: term postings decoded (`decode`), or
    /// tag postings' suffixes only.
    fn list_entries(data: &Fetched, decode: bool) -> Result<Vec<Entry<'_>>> {
        let mut list = Vec::with_capacity(data.fresh.len());
        for (key, value) in &data.fresh {
            let corrupted = |reason: CorruptionReason| SearchError::corrupted(key, reason);
            let suffix = key.get(data.suffix_at..).unwrap_or_default();
            split_suffix(suffix).map_err(|error| corrupted(error.into()))?;
            let posting = if decode {
                decode_posting(value).map_err(|error| corrupted(error.into()))?
            } else if value.is_empty() {
                // Tag postings carry no value; the placeholder is never read.
                Posting {
                    term_frequency: 1,
                    doc_len: 1,
                    timestamp_ms: 0,
                    primitive: super::doc::Primitive::Event,
                }
            } else {
                return Err(corrupted(CorruptionReason::KeyLayout(
                    "tag posting with a value",
                )));
            };
            list.push(Entry { suffix, posting });
        }
        Ok(list)
    }

    fn hit(&self, snapshot: &Snapshot, ranked: &Ranked<'_>, terms: &[String]) -> Result<Hit> {
        let entry = ranked.entry;
        let corrupted = |reason| SearchError::corrupted(entry.suffix(), reason);
        let (run, doc_id) =
            split_suffix(entry.suffix()).map_err(|error| corrupted(error.into()))?;
        let key = record_key(&self.prefix, doc_id);
        let bytes = snapshot
            .get(&key)
            .ok_or_else(|| corrupted(CorruptionReason::MissingRecord))?;
        let text =
            decode_record_text(&bytes).map_err(|error| SearchError::corrupted(&key, error))?;
        Ok(Hit {
            doc_id: doc_id.to_vec(),
            run: run.to_vec(),
            primitive: entry.posting.primitive,
            timestamp_ms: entry.posting.timestamp_ms,
            score: ranked.score,
            snippet: snippet(text, terms),
        })
    }
}

/// Merges the term lists by suffix, scores each document that passes the filters, and keeps
/// the best `query.limit()` in a heap.
fn merge<'lists>(
    lists: &'lists [Vec<Entry<'lists>>],
    tag_lists: &[Vec<Entry<'_>>],
    idfs: &[f64],
    avg_len: f64,
    query: &Query,
    budget: &mut Budget,
) -> BinaryHeap<Ranked<'lists>> {
    let top_k = query.limit();
    let mut heap: BinaryHeap<Ranked<'lists>> = BinaryHeap::with_capacity(top_k + 1);
    let mut cursors = vec![0_usize; lists.len()];
    let mut tag_cursors = vec![0_usize; tag_lists.len()];
    loop {
        // The smallest suffix under any cursor is the next document.
        let mut next: Option<&'lists Entry<'lists>> = None;
        for (list, &cursor) in lists.iter().zip(&cursors) {
            if let Some(entry) = list.get(cursor) {
                if next.is_none_or(|best| entry.suffix() < best.suffix()) {
                    next = Some(entry);
                }
            }
        }
        let Some(first) = next else { break };
        let suffix = first.suffix();
        budget.candidates += 1;
        let mut score = 0.0;
        for ((list, cursor), idf) in lists.iter().zip(&mut cursors).zip(idfs) {
            if let Some(entry) = list.get(*cursor).filter(|entry| entry.suffix() == suffix) {
                let posting = &entry.posting;
                score += bm25::term_score(*idf, posting.term_frequency, posting.doc_len, avg_len);
                *cursor += 1;
            }
        }
        let posting = &first.posting;
        if !query.admits(posting.primitive, posting.timestamp_ms)
            || !has_tags(tag_lists, &mut tag_cursors, suffix)
        {
            continue;
        }
        budget.scored += 1;
        let ranked = Ranked {
            score,
            entry: first,
        };
        if heap.len() < top_k {
            heap.push(ranked);
        } else if heap.peek().is_some_and(|worst| ranked < *worst) {
            heap.pop();
            heap.push(ranked);
        }
    }
    heap
}

/// True when every tag list holds `suffix`; advances each tag cursor past smaller suffixes
/// (documents arrive in ascending suffix order, so each tag list is walked once).
fn has_tags(tag_lists: &[Vec<Entry<'_>>], cursors: &mut [usize], suffix: &[u8]) -> bool {
    let mut all = true;
    for (list, cursor) in tag_lists.iter().zip(cursors) {
        while list
            .get(*cursor)
            .is_some_and(|entry| entry.suffix() < suffix)
        {
            *cursor += 1;
        }
        all &= list
            .get(*cursor)
            .is_some_and(|entry| entry.suffix() == suffix);
    }
    all
}

/// The text around the first word whose term is one of `terms` (sorted), cut at character
/// boundaries, with `…` at each cut end.
fn snippet(text: &str, terms: &[String]) -> Snippet {
    let found = first_match(text, terms);
    let (match_start, match_end) = found.unwrap_or((0, 0));
    let start = floor_char_boundary(text, match_start.saturating_sub(SNIPPET_LEAD_BYTES));
    let end = floor_char_boundary(text, start + SNIPPET_BYTES_MAX).max(match_end);
    let end = ceil_char_boundary(text, end);
    let mut snippet = String::with_capacity(end - start + 6);
    if start > 0 {
        snippet.push('…');
    }
    let offset = snippet.len();
    snippet.push_str(text.get(start..end).unwrap_or_default());
    if end < text.len() {
        snippet.push('…');
    }
    let matched = if found.is_some() {
        offset + match_start - start..offset + match_end - start
    } else {
        offset..offset
    };
    Snippet {
        text: snippet,
        matched,
    }
}

/// Where the first word whose term is one of `terms` (sorted) starts and ends in `text`.
fn first_match(text: &str, terms: &[String]) -> Option<(usize, usize)> {
    if let Ok(decided) = first_match_ascii(text, terms) {
        return decided;
    }
    tokens(text)
        .find(|token| {
            terms
                .binary_search_by(|term| term.as_str().cmp(&token.term))
                .is_ok()
        })
        .map(|token| (token.start, token.end))
}

/// Failed candidates per term before [`first_match_ascii`] gives up.
const CANDIDATES_MAX: usize = 16;
/// Context tokenized on each side of a candidate, in bytes (UAX #29 decides a boundary from a
/// character or two around it; regional-indicator pairs are the one rule that looks further).
const CANDIDATE_CONTEXT_BYTES: usize = 32;

/// [`first_match`] for ASCII terms, without segmenting the whole text (word segmentation costs
/// about 0.1 µs a byte, and a query word may be the last of a long text): each term is found
/// as a substring of the text with its ASCII letters lowercased, and a candidate counts only if
/// segmenting its surroundings yields a word starting there with that term. A word whose term
/// is ASCII is made of ASCII characters (or the Kelvin sign, the one other character that
/// lowercases to ASCII), so it is always among the candidates; a text with a Kelvin sign, or a
/// non-ASCII term in a non-ASCII text, is left to the full segmentation. `Err(Undecided)` when too many candidates fail, or one cannot be decided from its
/// surroundings.
fn first_match_ascii(text: &str, terms: &[String]) -> Result<Option<(usize, usize)>, Undecided> {
    let ascii = text.is_ascii();
    if !ascii && (text.contains('\u{212A}') || terms.iter().any(|term| !term.is_ascii())) {
        return Err(Undecided);
    }
    // Lowercasing ASCII letters only keeps every byte offset.
    let lowered = text.to_ascii_lowercase();
    let mut best: Option<(usize, usize)> = None;
    for term in terms
        .iter()
        .filter(|term| term.is_ascii() && !term.is_empty())
    {
        let (mut from, mut failed) = (0, 0);
        while let Some(found) = lowered
            .get(from..)
            .and_then(|rest| rest.find(term.as_str()))
        {
            let at = from + found;
            if best.is_some_and(|(start, _)| start <= at) {
                break;
            }
            if spaced_word(text, at, term) {
                // A run of ASCII letters and digits between spaces (or the text's ends) is a
                // word under every UAX #29 rule: no need to segment anything.
                best = Some((at, at + term.len()));
                break;
            }
            let window_start =
                floor_char_boundary(text, at.saturating_sub(CANDIDATE_CONTEXT_BYTES));
            let window_end = ceil_char_boundary(text, at + term.len() + CANDIDATE_CONTEXT_BYTES);
            let window = text.get(window_start..window_end).ok_or(Undecided)?;
            let word = tokens(window).find(|token| window_start + token.start >= at);
            if let Some(word) =
                word.filter(|w| window_start + w.start == at && w.term == term.as_str())
            {
                if word.end == window.len() && window_end < text.len() {
                    return Err(Undecided); // the word may go on past the window
                }
                best = Some((at, window_start + word.end));
                break;
            }
            failed += 1;
            if failed >= CANDIDATES_MAX {
                return Err(Undecided);
            }
            from = at + 1;
        }
    }
    Ok(best)
}

/// True when `term` (found at `at`) is all ASCII letters and digits, with ASCII whitespace or
/// the text's start before it and ASCII whitespace or the text's end after it.
fn spaced_word(text: &str, at: usize, term: &str) -> bool {
    let bytes = text.as_bytes();
    let before = at.checked_sub(1).and_then(|index| bytes.get(index));
    let after = bytes.get(at + term.len());
    term.bytes().all(|byte| byte.is_ascii_alphanumeric())
        && before.is_none_or(u8::is_ascii_whitespace)
        && after.is_none_or(u8::is_ascii_whitespace)
}

/// [`first_match_ascii`] could not decide; segment the whole text instead.
struct Undecided;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_fast_path_agrees_with_segmenting_everything() {
        let terms = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        let cases = [
            ("the cat sat on the mat", terms(&["mat"])),
            ("concatenate cat", terms(&["cat"])),
            ("CAT. Cat! cat?", terms(&["cat"])),
            ("don't stop", terms(&["don", "don't"])),
            ("x3.14y 3.14", terms(&["3.14"])),
            ("foo.bar foo", terms(&["foo"])),
            ("scatter", terms(&["cat"])),
            ("", terms(&["cat"])),
            ("Größe — cat — CAT", terms(&["cat"])),
            ("é—needle", terms(&["needle"])),
            ("a needle\nin 3 needles", terms(&["needle", "3"])),
            ("x 3,5 3", terms(&["3"])),
            ("x 3.5\t3 y", terms(&["3"])),
        ];
        for (text, words) in cases {
            let mut sorted = words.clone();
            sorted.sort();
            let slow = tokens(text)
                .find(|token| {
                    sorted
                        .binary_search_by(|t| t.as_str().cmp(&token.term))
                        .is_ok()
                })
                .map(|token| (token.start, token.end));
            let fast = first_match_ascii(text, &sorted);
            // The fast path decides every one of these, and agrees.
            assert!(fast.is_ok_and(|fast| fast == slow), "{text:?}");
            assert_eq!(first_match(text, &sorted), slow, "{text:?}");
        }
        let long = format!("{} needle", "hay ".repeat(1_000));
        let found = first_match(&long, &terms(&["needle"])).expect("found");
        assert_eq!(&long[found.0..found.1], "needle");
    }

    #[test]
    fn a_snippet_shows_the_first_match_and_marks_its_cuts() {
        let terms = vec!["needle".to_owned()];
        let text = format!("{} Needle {}", "hay ".repeat(40), "straw ".repeat(60));
        let snip = snippet(&text, &terms);
        assert!(snip.text.starts_with('…') && snip.text.ends_with('…'));
        assert_eq!(&snip.text[snip.matched.clone()], "Needle");
        assert!(snip.text.len() <= SNIPPET_BYTES_MAX + 2 * '…'.len_utf8());
        let short = snippet("a needle here", &terms);
        assert_eq!(short.text, "a needle here");
        assert_eq!(&short.text[short.matched.clone()], "needle");
    }

    #[test]
    fn a_snippet_cuts_at_character_boundaries() {
        let terms = vec!["ß".to_owned()];
        let text = format!("{} ß {}", "é".repeat(100), "ü".repeat(200));
        let snip = snippet(&text, &terms);
        assert_eq!(&snip.text[snip.matched.clone()], "ß");
    }
}
