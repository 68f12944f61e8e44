//! Agent search: top-10 keyword queries over a corpus of agent memory, on Cairn's in-commit
//! BM25 index (`cairn_agent::search`) and on SQLite FTS5 (rusqlite's bundled SQLite, which
//! compiles FTS5 in; ranked by its built-in `bm25()`), both in memory, in the same run.
//!
//! The corpus is generated from a seed: documents of 12 to 40 words drawn from a Zipf
//! distribution over 5,000 made-up words (so a few words are in most documents and most are
//! rare, as in real text), spread over 100 runs and the five primitives, plus three planted
//! words whose document counts are known exactly: `quasar` (every 10th document), `xylem`
//! (every 33rd) and `zephyrine` (5 documents). The planted words use letters the made-up
//! words never contain, so the counts are exact. Each query shape is one workload; every
//! query's result is checked (hit count, scores in order, and for Cairn that each snippet
//! marks a query word), so a wrong answer is an error, not a fast number.
//!
//! Both indexes are built in bulk, then compacted: Cairn's fresh postings moved into blocks
//! (`Indexer::compact`), FTS5's segments merged (`optimize`). Both sides do the same work per
//! query: rank every document holding any query word, keep
//! the best ten, and make a snippet for each. FTS5 gets `ORDER BY rank LIMIT 10`, which it
//! runs with its own sorter, and `snippet()` on the ten rows it returns; words are OR-ed, as
//! Cairn's queries are.

use super::{ensure, Result, WorkloadError};
use crate::keys::SplitMix64;
use crate::measure::count_as_f64;
use crate::workloads::Workload;
use cairn::Db;
use cairn_agent::search::{Doc, Indexer, Primitive, Query};
use cairn_kv::backends::sqlite::rusqlite;
use rusqlite::{params, Connection};
use std::sync::Arc;

/// Documents in the corpus.
pub const SEARCH_DOCUMENTS: usize = 100_000;
/// Hits each query asks for.
pub const TOP_K: usize = 10;
const VOCABULARY_WORDS: usize = 5_000;
const WORDS_MIN: usize = 12;
const WORDS_MAX: usize = 40;
const RUNS: usize = 100;
const SEED: u64 = 0x5EA2_C400_0001;
/// Fresh postings moved into blocks per compaction transaction.
const COMPACT_POSTINGS: usize = 100_000;
/// Documents per indexing transaction while the fixture is built.
const DOCS_PER_COMMIT: usize = 1_000;
const SYLLABLES: [&str; 25] = [
    "ba", "be", "bi", "bo", "bu", "da", "de", "di", "do", "du", "ka", "ke", "ki", "ko", "ku", "la",
    "le", "li", "lo", "lu", "ma", "me", "mi", "mo", "mu",
];
const COMMON: &str = "quasar";
const SECOND: &str = "xylem";
const RARE: &str = "zephyrine";
const RARE_DOCUMENTS: usize = 5;

/// A query shape: its name in rows, its words, and how many documents match it.
#[derive(Clone, Debug)]
pub struct Shape {
    /// The row name's part: `common_term`, `two_terms`, `rare_term`, `frequent_word`.
    pub name: &'static str,
    /// Its words, OR-ed.
    pub words: Vec<String>,
    /// Documents holding at least one of them.
    pub matches: usize,
}

/// The generated corpus and the query shapes over it.
#[derive(Debug)]
pub struct SearchCorpus {
    /// `(id, run, primitive, timestamp, text)` of every document.
    docs: Vec<(String, String, Primitive, u64, String)>,
    /// The query shapes, with their exact match counts.
    pub shapes: Vec<Shape>,
}

fn made_up_word(index: usize) -> String {
    let (mut word, mut rest) = (String::new(), index + 1);
    while rest > 0 {
        word.push_str(SYLLABLES.get(rest % SYLLABLES.len()).unwrap_or(&""));
        rest /= SYLLABLES.len();
    }
    word
}

impl SearchCorpus {
    /// Generates `documents` documents (deterministic).
    pub fn generate(documents: usize) -> SearchCorpus {
        let words: Vec<String> = (0..VOCABULARY_WORDS).map(made_up_word).collect();
        // Zipf (s = 1) by inverse transform over the cumulative weights.
        let mut cumulative = Vec::with_capacity(VOCABULARY_WORDS);
        let mut total = 0.0;
        for rank in 1..=VOCABULARY_WORDS {
            total += 1.0 / count_as_f64(rank as u64);
            cumulative.push(total);
        }
        let mut random = SplitMix64::new(SEED);
        let rare_every = documents / RARE_DOCUMENTS;
        let mut docs = Vec::with_capacity(documents);
        let (mut frequent_matches, mut counts) = (0, [0_usize; 3]);
        for i in 0..documents {
            let length = WORDS_MIN + random.below(WORDS_MAX - WORDS_MIN + 1);
            let mut text = String::with_capacity(length * 8);
            let mut has_frequent = false;
            for position in 0..length {
                let draw = count_as_f64(random.next_u64() >> 11) / count_as_f64(1 << 53);
                let rank = cumulative.partition_point(|&c| c < draw * total);
                let rank = rank.min(VOCABULARY_WORDS - 1);
                has_frequent |= rank == 0;
                if position > 0 {
                    text.push(if position % 9 == 0 { '.' } else { ' ' });
                    text.push(' ');
                }
                text.push_str(words.get(rank).map_or("", String::as_str));
            }
            for (slot, (planted, holds)) in [
                (COMMON, i % 10 == 3),
                (SECOND, i % 33 == 5),
                (
                    RARE,
                    rare_every > 0 && i % rare_every == 17 % rare_every.max(1),
                ),
            ]
            .into_iter()
            .enumerate()
            {
                if holds {
                    text.push_str(" — ");
                    text.push_str(planted);
                    if let Some(count) = counts.get_mut(slot) {
                        *count += 1;
                    }
                }
            }
            frequent_matches += usize::from(has_frequent);
            let primitive = Primitive::ALL
                .get(i % Primitive::ALL.len())
                .copied()
                .unwrap_or(Primitive::Event);
            let run = format!("r{}", i % RUNS);
            docs.push((format!("d{i:06}"), run, primitive, i as u64, text));
        }
        let both = (0..documents)
            .filter(|i| i % 10 == 3 || i % 33 == 5)
            .count();
        let shape = |name, words: &[&str], matches| Shape {
            name,
            words: words.iter().map(|word| (*word).to_owned()).collect(),
            matches,
        };
        let [common, _, rare] = counts;
        let frequent = words.first().map_or("", String::as_str);
        let shapes = vec![
            shape("rare_term", &[RARE], rare),
            shape("common_term", &[COMMON], common),
            shape("two_terms", &[COMMON, SECOND], both),
            shape("frequent_word", &[frequent], frequent_matches),
        ];
        SearchCorpus { docs, shapes }
    }

    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

/// Cairn: an in-memory database indexed by `cairn_agent::search`.
#[derive(Clone, Debug)]
pub struct CairnIndex {
    db: Db,
    index: Indexer,
}

impl CairnIndex {
    /// Indexes the corpus, `DOCS_PER_COMMIT` documents per transaction.
    pub fn build(corpus: &SearchCorpus) -> Result<CairnIndex> {
        let db = Db::in_memory();
        let index = Indexer::new(b"s/".to_vec()).map_err(search_error)?;
        for chunk in corpus.docs.chunks(DOCS_PER_COMMIT) {
            let mut tx = db.begin();
            for (id, run, primitive, timestamp, text) in chunk {
                let doc = Doc::new(id.as_bytes(), run.as_bytes(), *primitive, *timestamp, text);
                index.index(&mut tx, &doc).map_err(search_error)?;
            }
            tx.commit()?;
        }
        // Move the fresh postings into blocks, as a long-lived index's maintenance would
        // (and as FTS5's merge below does for its segments).
        loop {
            let mut tx = db.begin();
            let report = index
                .compact(&mut tx, COMPACT_POSTINGS)
                .map_err(search_error)?;
            tx.commit()?;
            if report.done {
                break;
            }
        }
        Ok(CairnIndex { db, index })
    }
}

fn search_error(error: cairn_agent::search::SearchError) -> WorkloadError {
    WorkloadError::client("cairn-agent search", error)
}

fn sqlite_error(error: rusqlite::Error) -> WorkloadError {
    WorkloadError::client("rusqlite", error)
}

/// One query shape on Cairn: a snapshot and a search per operation, results checked.
pub struct CairnSearch {
    index: CairnIndex,
    query: Query,
    shape: Shape,
}

impl CairnSearch {
    /// `shape` on `index`.
    pub fn new(index: &CairnIndex, shape: &Shape) -> Self {
        let query = Query::new(shape.words.join(" ")).top_k(TOP_K);
        CairnSearch {
            index: index.clone(),
            query,
            shape: shape.clone(),
        }
    }
}

impl Workload for CairnSearch {
    fn run_op(&mut self) -> Result<()> {
        let snapshot = self.index.db.snapshot();
        let results = self.index.index.search(&snapshot, &self.query);
        let results = results.map_err(search_error)?;
        let expected = self.shape.matches.min(TOP_K);
        let hits = &results.hits;
        ensure(
            hits.len() == expected,
            "agent_search",
            "wrong hit count (cairn)",
        )?;
        let ordered = hits.windows(2).all(|pair| match pair {
            [better, worse] => better.score >= worse.score,
            _ => true,
        });
        ensure(ordered, "agent_search", "hits out of order (cairn)")?;
        for hit in hits {
            let marked = hit.snippet.text.get(hit.snippet.matched.clone());
            let marked = marked.map(str::to_lowercase).unwrap_or_default();
            let is_query_word = self.shape.words.contains(&marked);
            ensure(is_query_word, "agent_search", "snippet marks no query word")?;
        }
        std::hint::black_box(results);
        Ok(())
    }
}

/// SQLite FTS5 in memory, holding the same corpus.
#[derive(Clone)]
pub struct Fts5Index {
    connection: Arc<parking_lot::Mutex<Connection>>,
}

const FTS5_SCHEMA: &str = "CREATE VIRTUAL TABLE docs USING fts5(body, doc_id UNINDEXED, \
    run UNINDEXED, primitive UNINDEXED, ts UNINDEXED)";
const FTS5_INSERT: &str =
    "INSERT INTO docs (body, doc_id, run, primitive, ts) VALUES (?1, ?2, ?3, ?4, ?5)";
const FTS5_QUERY: &str = "SELECT doc_id, bm25(docs), snippet(docs, 0, '[', ']', '…', 24) \
    FROM docs WHERE docs MATCH ?1 ORDER BY rank LIMIT ?2";

impl Fts5Index {
    /// Builds the table in one transaction; checks that FTS5 and `bm25()` are compiled in.
    pub fn build(corpus: &SearchCorpus) -> Result<Fts5Index> {
        let mut connection = Connection::open_in_memory().map_err(sqlite_error)?;
        connection
            .execute_batch(FTS5_SCHEMA)
            .map_err(sqlite_error)?;
        let transaction = connection.transaction().map_err(sqlite_error)?;
        {
            let mut insert = transaction.prepare(FTS5_INSERT).map_err(sqlite_error)?;
            for (id, run, primitive, timestamp, text) in &corpus.docs {
                let row = params![
                    text,
                    id,
                    run,
                    primitive.to_byte(),
                    (*timestamp).cast_signed()
                ];
                insert.execute(row).map_err(sqlite_error)?;
            }
        }
        transaction.commit().map_err(sqlite_error)?;
        // Merge FTS5's segments, as a long-lived index would be after its automerges.
        connection
            .execute_batch("INSERT INTO docs(docs) VALUES('optimize')")
            .map_err(sqlite_error)?;
        Ok(Fts5Index {
            connection: Arc::new(parking_lot::Mutex::new(connection)),
        })
    }
}

/// One query shape on FTS5: the ranked query with snippets, results checked.
pub struct Fts5Search {
    index: Fts5Index,
    expression: String,
    shape: Shape,
}

impl Fts5Search {
    /// `shape` on `index`: its words OR-ed, as Cairn's queries are.
    pub fn new(index: &Fts5Index, shape: &Shape) -> Self {
        Fts5Search {
            index: index.clone(),
            expression: shape.words.join(" OR "),
            shape: shape.clone(),
        }
    }
}

impl Workload for Fts5Search {
    fn run_op(&mut self) -> Result<()> {
        let connection = self.index.connection.lock();
        let mut statement = connection
            .prepare_cached(FTS5_QUERY)
            .map_err(sqlite_error)?;
        let limit = i64::try_from(TOP_K).unwrap_or(i64::MAX);
        let mut rows = statement
            .query(params![self.expression, limit])
            .map_err(sqlite_error)?;
        let (mut count, mut previous) = (0, f64::NEG_INFINITY);
        while let Some(row) = rows.next().map_err(sqlite_error)? {
            // bm25() is negated: lower is better, so ranks ascend.
            let rank: f64 = row.get(1).map_err(sqlite_error)?;
            let snippet: String = row.get(2).map_err(sqlite_error)?;
            ensure(rank >= previous, "agent_search", "hits out of order (fts5)")?;
            ensure(
                snippet.contains('['),
                "agent_search",
                "snippet marks no query word (fts5)",
            )?;
            std::hint::black_box(row.get_ref(0).map_err(sqlite_error)?);
            (count, previous) = (count + 1, rank);
        }
        let expected = self.shape.matches.min(TOP_K);
        ensure(count == expected, "agent_search", "wrong hit count (fts5)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_stores_answer_every_shape_of_a_small_corpus() {
        let corpus = SearchCorpus::generate(2_000);
        assert_eq!(corpus.len(), 2_000);
        let (cairn, fts5) = (
            CairnIndex::build(&corpus).expect("cairn"),
            Fts5Index::build(&corpus).expect("fts5"),
        );
        for shape in &corpus.shapes {
            assert!(shape.matches > 0, "{shape:?}");
            CairnSearch::new(&cairn, shape)
                .run_op()
                .expect("cairn answers");
            Fts5Search::new(&fts5, shape)
                .run_op()
                .expect("fts5 answers");
        }
    }

    #[test]
    fn a_wrong_count_is_an_error() {
        let corpus = SearchCorpus::generate(500);
        let cairn = CairnIndex::build(&corpus).expect("cairn");
        let mut shape = corpus.shapes[0].clone();
        shape.matches += 1;
        assert!(CairnSearch::new(&cairn, &shape).run_op().is_err());
    }
}
