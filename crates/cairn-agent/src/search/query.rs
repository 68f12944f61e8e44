//! A search's input ([`Query`]) and output ([`SearchResults`]): the terms and filters, the
//! hits with their scores and snippets, and the budget report of what the search read.

use std::ops::Range;
use std::time::Duration;

use super::doc::{check_id, Primitive, PrimitiveSet};
use super::error::{Result, SearchError};
use super::limits::{
    POSTINGS_READ_DEFAULT, POSTINGS_READ_MAX, QUERY_TAGS_MAX, QUERY_TERMS_MAX,
    QUERY_TEXT_BYTES_MAX, RUN_ID_BYTES_MAX, TAG_BYTES_MAX, TOP_K_MAX,
};
use super::tokenize::tokens;

/// A keyword query: its text (tokenized like documents; any term may match) and its filters.
/// Every filter narrows the hits; none changes a hit's score except the run filter, which
/// makes the run the collection BM25's statistics are taken over (see `docs/agent-search.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    text: String,
    top_k: usize,
    run: Option<Vec<u8>>,
    primitives: PrimitiveSet,
    tags: Vec<String>,
    time_ms: Option<(u64, u64)>,
    postings_budget: usize,
}

impl Query {
    /// A query for `text`, top 10, no filters.
    pub fn new(text: impl Into<String>) -> Self {
        Query {
            text: text.into(),
            top_k: 10,
            run: None,
            primitives: PrimitiveSet::default(),
            tags: Vec::new(),
            time_ms: None,
            postings_budget: POSTINGS_READ_DEFAULT,
        }
    }

    /// At most `top_k` hits (1 to `TOP_K_MAX`).
    #[must_use]
    pub fn top_k(mut self, top_k: usize) -> Self {
        self.top_k = top_k;
        self
    }

    /// Only documents of `run`, scored against that run's statistics.
    #[must_use]
    pub fn run(mut self, run: impl Into<Vec<u8>>) -> Self {
        self.run = Some(run.into());
        self
    }

    /// Only documents of `primitive` (repeat to allow several).
    #[must_use]
    pub fn primitive(mut self, primitive: Primitive) -> Self {
        self.primitives = self.primitives.with(primitive);
        self
    }

    /// Only documents carrying `tag` (repeat to require several: all must be present).
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Only documents with `range.start <= timestamp_ms < range.end`.
    #[must_use]
    pub fn time_range_ms(mut self, range: Range<u64>) -> Self {
        self.time_ms = Some((range.start, range.end));
        self
    }

    /// Reads at most `postings` postings (default `POSTINGS_READ_DEFAULT`), else fails with
    /// `PostingsBudget`.
    #[must_use]
    pub fn postings_budget(mut self, postings: usize) -> Self {
        self.postings_budget = postings;
        self
    }

    /// Its text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How many hits it asks for.
    pub fn limit(&self) -> usize {
        self.top_k
    }

    /// Its run filter.
    pub fn run_filter(&self) -> Option<&[u8]> {
        self.run.as_deref()
    }

    /// Its primitive filter (empty: any).
    pub fn primitive_filter(&self) -> PrimitiveSet {
        self.primitives
    }

    /// Its required tags, distinct, ascending.
    pub fn tag_filter(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        tags.sort_unstable();
        tags.dedup();
        tags
    }

    /// Its time filter, `start..end` in ms.
    pub fn time_filter_ms(&self) -> Option<Range<u64>> {
        self.time_ms.map(|(start, end)| start..end)
    }

    /// True when a document at `timestamp_ms` of `primitive` passes the time and primitive
    /// filters.
    pub fn admits(&self, primitive: Primitive, timestamp_ms: u64) -> bool {
        let in_time = self
            .time_ms
            .is_none_or(|(start, end)| (start..end).contains(&timestamp_ms));
        in_time && self.primitives.admits(primitive)
    }

    /// The query's distinct terms, ascending (the order scores are summed in), after every
    /// limit is checked.
    pub fn terms(&self) -> Result<Vec<String>> {
        if self.text.len() > QUERY_TEXT_BYTES_MAX {
            let len = self.text.len();
            let limit = "QUERY_TEXT_BYTES_MAX";
            return Err(SearchError::too_large(
                "query text bytes",
                len,
                QUERY_TEXT_BYTES_MAX,
                limit,
            ));
        }
        if self.top_k == 0 {
            return Err(SearchError::TopKZero);
        }
        if self.top_k > TOP_K_MAX {
            return Err(SearchError::too_large(
                "top_k",
                self.top_k,
                TOP_K_MAX,
                "TOP_K_MAX",
            ));
        }
        if self.postings_budget > POSTINGS_READ_MAX {
            let (len, limit) = (self.postings_budget, "POSTINGS_READ_MAX");
            return Err(SearchError::too_large(
                "postings budget",
                len,
                POSTINGS_READ_MAX,
                limit,
            ));
        }
        if let Some(run) = &self.run {
            check_id("run id", run, RUN_ID_BYTES_MAX, "RUN_ID_BYTES_MAX")?;
        }
        let tags = self.tag_filter();
        if tags.len() > QUERY_TAGS_MAX {
            let len = tags.len();
            return Err(SearchError::too_large(
                "query tags",
                len,
                QUERY_TAGS_MAX,
                "QUERY_TAGS_MAX",
            ));
        }
        for tag in tags {
            check_id("tag", tag.as_bytes(), TAG_BYTES_MAX, "TAG_BYTES_MAX")?;
        }
        if let Some((start_ms, end_ms)) = self.time_ms {
            if start_ms > end_ms {
                return Err(SearchError::ReversedTimeRange { start_ms, end_ms });
            }
        }
        let mut terms: Vec<String> = tokens(&self.text).map(|t| t.term.into_owned()).collect();
        terms.sort_unstable();
        terms.dedup();
        if terms.len() > QUERY_TERMS_MAX {
            let len = terms.len();
            return Err(SearchError::too_large(
                "query terms",
                len,
                QUERY_TERMS_MAX,
                "QUERY_TERMS_MAX",
            ));
        }
        Ok(terms)
    }

    pub(crate) fn budget(&self) -> usize {
        self.postings_budget
    }
}

/// One hit.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The document's id.
    pub doc_id: Vec<u8>,
    /// Its run.
    pub run: Vec<u8>,
    /// Its primitive.
    pub primitive: Primitive,
    /// Its timestamp, in ms.
    pub timestamp_ms: u64,
    /// Its BM25 score (higher is better).
    pub score: f64,
    /// Text around the first occurrence of a query term.
    pub snippet: Snippet,
}

/// A piece of a document's text around its first match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    /// The text, with `…` where it was cut.
    pub text: String,
    /// Where the matching word is in `text`, in bytes.
    pub matched: Range<usize>,
}

/// What one search read and how long it took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// Posting lists read (one per query term, one per required tag).
    pub lists_read: usize,
    /// Postings read, over all of those lists (fresh ones and those in blocks).
    pub postings_read: usize,
    /// Posting blocks read (compacted postings, up to `BLOCK_POSTINGS_MAX` each).
    pub blocks_read: usize,
    /// Distinct documents that matched a query term in scope (before filters).
    pub candidates: usize,
    /// Candidates that passed every filter and were scored.
    pub scored: usize,
    /// Document records read (one per hit, for its snippet).
    pub records_read: usize,
    /// Wall time of the whole search.
    pub elapsed: Duration,
}

/// The hits, best first (ties: ascending doc id), and the budget report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchResults {
    /// The hits.
    pub hits: Vec<Hit>,
    /// What the search read.
    pub budget: Budget,
    /// Documents in the searched scope (all runs, or the run filtered on).
    pub documents_in_scope: u64,
}
