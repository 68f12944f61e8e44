//! What gets indexed: a [`Doc`] (one event payload, trace, state value, JSON string field or
//! KV value) with its identity and the attributes a query filters on.
//!
//! A `Doc` owns its invariants only loosely (any bytes and text can be put in); the limits are
//! checked once, by [`Doc::validate`], which `Indexer::index` calls before it writes anything.

use super::error::{Result, SearchError};
use super::limits::{
    DOC_ID_BYTES_MAX, RUN_ID_BYTES_MAX, TAGS_PER_DOC_MAX, TAG_BYTES_MAX, TEXT_BYTES_MAX,
};

/// Which primitive a document came from. Stored as one byte (the discriminant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Primitive {
    /// An event log entry's payload.
    Event = 1,
    /// A trace span's contents.
    Trace = 2,
    /// A state cell's value.
    State = 3,
    /// A string field of a JSON document.
    Json = 4,
    /// A run's plain key-value entry.
    Kv = 5,
}

impl Primitive {
    /// Every primitive, in discriminant order.
    pub const ALL: [Primitive; 5] = [
        Primitive::Event,
        Primitive::Trace,
        Primitive::State,
        Primitive::Json,
        Primitive::Kv,
    ];

    /// Its stored byte.
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    /// The primitive stored as `byte`, if any.
    pub fn from_byte(byte: u8) -> Option<Primitive> {
        Primitive::ALL
            .into_iter()
            .find(|primitive| primitive.to_byte() == byte)
    }

    /// Its bit in a [`PrimitiveSet`].
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of primitives, for a query's filter. The empty set is "no filter".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrimitiveSet(u8);

impl PrimitiveSet {
    /// The set with `primitive` added.
    #[must_use]
    pub fn with(self, primitive: Primitive) -> Self {
        PrimitiveSet(self.0 | primitive.bit())
    }

    /// True when the set is empty (no filter).
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when the set holds `primitive`.
    pub fn contains(self, primitive: Primitive) -> bool {
        self.0 & primitive.bit() != 0
    }

    /// True when a document of `primitive` passes the filter: the set is empty or holds it.
    pub fn admits(self, primitive: Primitive) -> bool {
        self.is_empty() || self.contains(primitive)
    }
}

/// One document to index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    id: Vec<u8>,
    run: Vec<u8>,
    primitive: Primitive,
    timestamp_ms: u64,
    tags: Vec<String>,
    text: String,
}

impl Doc {
    /// A document `id` of `run`, from `primitive`, written at `timestamp_ms`, with `text`.
    ///
    /// The id is the document's identity across the whole index (for example run id,
    /// primitive and run-relative key, concatenated by the caller): indexing the same id again
    /// replaces the earlier document, whatever its run.
    pub fn new(
        id: impl Into<Vec<u8>>,
        run: impl Into<Vec<u8>>,
        primitive: Primitive,
        timestamp_ms: u64,
        text: impl Into<String>,
    ) -> Self {
        Doc {
            id: id.into(),
            run: run.into(),
            primitive,
            timestamp_ms,
            tags: Vec::new(),
            text: text.into(),
        }
    }

    /// The document with `tag` added (duplicates are kept once).
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Its id.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// Its run's id.
    pub fn run(&self) -> &[u8] {
        &self.run
    }

    /// Its primitive.
    pub fn primitive(&self) -> Primitive {
        self.primitive
    }

    /// When it was written, in ms.
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }

    /// Its tags, as given.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Its text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Checks every limit: id, run id, text, tags.
    pub fn validate(&self) -> Result<()> {
        check_id("doc id", &self.id, DOC_ID_BYTES_MAX, "DOC_ID_BYTES_MAX")?;
        check_id("run id", &self.run, RUN_ID_BYTES_MAX, "RUN_ID_BYTES_MAX")?;
        if self.text.len() > TEXT_BYTES_MAX {
            let len = self.text.len();
            return Err(SearchError::too_large(
                "text bytes",
                len,
                TEXT_BYTES_MAX,
                "TEXT_BYTES_MAX",
            ));
        }
        let tags = self.sorted_tags();
        if tags.len() > TAGS_PER_DOC_MAX {
            let len = tags.len();
            return Err(SearchError::too_large(
                "tags",
                len,
                TAGS_PER_DOC_MAX,
                "TAGS_PER_DOC_MAX",
            ));
        }
        for tag in tags {
            check_id("tag", tag.as_bytes(), TAG_BYTES_MAX, "TAG_BYTES_MAX")?;
        }
        Ok(())
    }

    /// Its distinct tags, in byte order (how the record stores them).
    pub(crate) fn sorted_tags(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        tags.sort_unstable();
        tags.dedup();
        tags
    }
}

/// Checks that an id is 1 to `max` bytes.
pub(crate) fn check_id(
    what: &'static str,
    id: &[u8],
    max: usize,
    limit: &'static str,
) -> Result<()> {
    if id.is_empty() {
        return Err(SearchError::Empty { what });
    }
    if id.len() > max {
        return Err(SearchError::too_large(what, id.len(), max, limit));
    }
    Ok(())
}
