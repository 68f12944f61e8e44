//! The search index's contract, case by case: each filter alone; snapshot isolation (a search
//! sees exactly the commits at or before its snapshot, statistics included, and never a
//! transaction's uncommitted writes); atomicity under a concurrent writer; the cost bound (a
//! search reads only its terms' postings, never the other documents); writers that share
//! words do not conflict; every limit refused with a typed error and the transaction left
//! untouched; damaged index bytes reported as `Corrupted`; and the index surviving a reopen.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cairn::{Db, Durability, Options};
use cairn_agent::search::format::{posting_list_key, push_suffix, shard_of};
use cairn_agent::search::limits::{
    DOC_ID_BYTES_MAX, PREFIX_BYTES_MAX, QUERY_TERMS_MAX, RUN_ID_BYTES_MAX, TAGS_PER_DOC_MAX,
    TAG_BYTES_MAX, TEXT_BYTES_MAX, TOP_K_MAX,
};
use cairn_agent::search::{Doc, Indexer, Primitive, Query, SearchError, SearchResults};
use cairn_testkit::TempDir;

fn indexer() -> Indexer {
    Indexer::new(b"ix/".to_vec()).expect("short prefix")
}

fn index_all(db: &Db, index: &Indexer, docs: &[Doc]) {
    let mut tx = db.begin();
    for doc in docs {
        index.index(&mut tx, doc).expect("index");
    }
    tx.commit().expect("commit");
}

fn ids(results: &SearchResults) -> Vec<String> {
    let mut ids: Vec<String> = results
        .hits
        .iter()
        .map(|hit| String::from_utf8(hit.doc_id.clone()).expect("text ids"))
        .collect();
    ids.sort();
    ids
}

fn search(db: &Db, index: &Indexer, query: &Query) -> SearchResults {
    index.search(&db.snapshot(), query).expect("search")
}

/// Five documents over two runs, each primitive, tags and times spread out.
fn corpus() -> Vec<Doc> {
    vec![
        Doc::new(
            "e1",
            "r1",
            Primitive::Event,
            100,
            "tool call failed: timeout",
        )
        .tag("tool"),
        Doc::new("t1", "r1", Primitive::Trace, 200, "retry the tool call")
            .tag("tool")
            .tag("slow"),
        Doc::new(
            "s1",
            "r2",
            Primitive::State,
            300,
            "state says timeout again",
        ),
        Doc::new(
            "j1",
            "r2",
            Primitive::Json,
            400,
            "json field: call me maybe",
        )
        .tag("slow"),
        Doc::new("k1", "r2", Primitive::Kv, 500, "a plain timeout value").tag("tool"),
    ]
}

#[test]
fn each_filter_narrows_the_hits() {
    let (db, index) = (Db::in_memory(), indexer());
    index_all(&db, &index, &corpus());
    let all = |query: Query| ids(&search(&db, &index, &query.top_k(100)));
    assert_eq!(
        all(Query::new("timeout call")),
        ["e1", "j1", "k1", "s1", "t1"]
    );
    assert_eq!(all(Query::new("timeout call").run("r1")), ["e1", "t1"]);
    assert_eq!(
        all(Query::new("timeout call").run("r9")),
        Vec::<String>::new()
    );
    assert_eq!(
        all(Query::new("timeout call").primitive(Primitive::State)),
        ["s1"]
    );
    assert_eq!(
        all(Query::new("timeout call")
            .primitive(Primitive::Json)
            .primitive(Primitive::Kv)),
        ["j1", "k1"]
    );
    assert_eq!(
        all(Query::new("timeout call").tag("tool")),
        ["e1", "k1", "t1"]
    );
    assert_eq!(
        all(Query::new("timeout call").tag("tool").tag("slow")),
        ["t1"]
    );
    assert_eq!(
        all(Query::new("timeout call").tag("nope")),
        Vec::<String>::new()
    );
    assert_eq!(
        all(Query::new("timeout call").time_range_ms(200..400)),
        ["s1", "t1"]
    );
    assert_eq!(
        all(Query::new("timeout call")
            .run("r2")
            .tag("tool")
            .time_range_ms(0..1_000)),
        ["k1"]
    );
    // top_k keeps the best ones.
    let top = search(&db, &index, &Query::new("timeout").top_k(1));
    assert_eq!(top.hits.len(), 1);
    let every = search(&db, &index, &Query::new("timeout").top_k(10));
    assert_eq!(top.hits[0], every.hits[0]);
    assert!(every.hits.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn a_run_filter_scores_against_the_run_alone() {
    let (db, index) = (Db::in_memory(), indexer());
    index_all(&db, &index, &corpus());
    // "timeout" is in 1 of 2 documents of r1 and in 3 of 5 overall: its idf (and so the score
    // of e1) is higher within r1.
    let global = search(&db, &index, &Query::new("timeout"));
    let in_run = search(&db, &index, &Query::new("timeout").run("r1"));
    let score_of = |results: &SearchResults| {
        results
            .hits
            .iter()
            .find(|hit| hit.doc_id == b"e1")
            .map(|hit| hit.score)
    };
    assert!(score_of(&in_run).expect("e1") > score_of(&global).expect("e1"));
    assert_eq!(
        (global.documents_in_scope, in_run.documents_in_scope),
        (5, 2)
    );
}

#[test]
fn a_search_sees_exactly_its_snapshot() {
    let (db, index) = (Db::in_memory(), indexer());
    index_all(&db, &index, &corpus()[..2]);
    let before = db.snapshot();
    index_all(&db, &index, &corpus()[2..]);
    let mut tx = db.begin();
    assert!(index.remove(&mut tx, b"e1").expect("remove"));
    tx.commit().expect("commit");
    let after = db.snapshot();
    let query = Query::new("timeout call").top_k(100);
    let old = index.search(&before, &query).expect("search");
    assert_eq!(ids(&old), ["e1", "t1"]);
    assert_eq!(old.documents_in_scope, 2);
    let new = index.search(&after, &query).expect("search");
    assert_eq!(ids(&new), ["j1", "k1", "s1", "t1"]);
    assert_eq!(new.documents_in_scope, 4);
    // The old snapshot's scores use the old statistics: t1 scores differently in each.
    let t1 = |results: &SearchResults| {
        results
            .hits
            .iter()
            .find(|hit| hit.doc_id == b"t1")
            .expect("t1")
            .score
    };
    assert!((t1(&old) - t1(&new)).abs() > 1e-6);

    // Uncommitted writes are invisible to every snapshot, and a rollback leaves nothing.
    let mut tx = db.begin();
    index
        .index(&mut tx, &Doc::new("x1", "r1", Primitive::Event, 1, "zebra"))
        .expect("index");
    assert!(search(&db, &index, &Query::new("zebra")).hits.is_empty());
    tx.rollback();
    assert!(search(&db, &index, &Query::new("zebra")).hits.is_empty());
}

#[test]
fn re_indexing_replaces_and_removal_is_exact() {
    let (db, index) = (Db::in_memory(), indexer());
    index_all(&db, &index, &corpus());
    let moved = Doc::new("e1", "r2", Primitive::Event, 100, "zebra crossing").tag("animal");
    let mut tx = db.begin();
    let report = index.index(&mut tx, &moved).expect("index");
    tx.commit().expect("commit");
    assert!(report.replaced);
    assert_eq!((report.terms, report.tokens), (2, 2));
    assert!(!ids(&search(&db, &index, &Query::new("tool").top_k(100))).contains(&"e1".into()));
    assert_eq!(
        ids(&search(&db, &index, &Query::new("zebra").run("r2"))),
        ["e1"]
    );
    assert!(search(&db, &index, &Query::new("zebra").run("r1"))
        .hits
        .is_empty());
    let stats = |run: &str| {
        index
            .stats(&db.snapshot(), Some(run.as_bytes()))
            .expect("stats")
    };
    assert_eq!((stats("r1").documents, stats("r2").documents), (1, 4));
    let mut tx = db.begin();
    assert!(!index.remove(&mut tx, b"never").expect("remove"));
    for doc in corpus() {
        assert!(index.remove(&mut tx, doc.id()).expect("remove"));
    }
    tx.commit().expect("commit");
    assert_eq!(db.scan_prefix(index.prefix()).expect("scan").count(), 0);
}

#[test]
fn a_search_reads_only_its_terms_postings() {
    let (db, index) = (Db::in_memory(), indexer());
    let docs: Vec<Doc> = (0..2_000)
        .map(|i| {
            let run = if i % 2 == 0 { "even" } else { "odd" };
            let rare = if i % 500 == 7 { " needle" } else { "" };
            let text = format!("filler words number {i}{rare}");
            Doc::new(format!("d{i:05}"), run, Primitive::Event, i, text)
        })
        .collect();
    index_all(&db, &index, &docs);
    let results = search(&db, &index, &Query::new("needle"));
    assert_eq!(ids(&results), ["d00007", "d00507", "d01007", "d01507"]);
    let budget = results.budget;
    assert_eq!((budget.lists_read, budget.postings_read), (1, 4));
    assert_eq!(
        (budget.candidates, budget.scored, budget.records_read),
        (4, 4, 4)
    );
    // Narrowed to a run, it reads only that run's part of the list.
    let odd = search(&db, &index, &Query::new("needle filler").run("odd"));
    assert_eq!(odd.budget.postings_read, 1_000 + 4);
    assert_eq!(odd.documents_in_scope, 1_000);
    // A term nobody used reads nothing.
    let none = search(&db, &index, &Query::new("absent"));
    assert_eq!((none.hits.len(), none.budget.postings_read), (0, 0));
    // Punctuation alone has no terms.
    let empty = search(&db, &index, &Query::new("?!"));
    assert_eq!((empty.hits.len(), empty.budget.lists_read), (0, 0));
}

#[test]
fn writers_sharing_words_do_not_conflict() {
    let (db, index) = (Db::in_memory(), indexer());
    // Two documents whose counters fall in different shards, in the same run, with the same
    // words: the two transactions share no key, so both commit.
    let first = "a-0".to_owned();
    let second = (1..1_000)
        .map(|i| format!("a-{i}"))
        .find(|id| shard_of(id.as_bytes()) != shard_of(first.as_bytes()))
        .expect("some id hashes elsewhere");
    let text = "the same common words in both";
    let (mut tx1, mut tx2) = (db.begin(), db.begin());
    index
        .index(&mut tx1, &Doc::new(first, "r", Primitive::Event, 1, text))
        .expect("index");
    index
        .index(&mut tx2, &Doc::new(second, "r", Primitive::Event, 2, text))
        .expect("index");
    tx1.commit().expect("first commits");
    tx2.commit().expect("second commits too: no shared key");
    let results = search(&db, &index, &Query::new("common"));
    assert_eq!((results.hits.len(), results.documents_in_scope), (2, 2));

    // The same id twice does conflict: the loser retries, and nothing is lost.
    let (mut tx1, mut tx2) = (db.begin(), db.begin());
    index
        .index(&mut tx1, &Doc::new("same", "r", Primitive::Event, 1, "one"))
        .expect("index");
    index
        .index(&mut tx2, &Doc::new("same", "r", Primitive::Event, 2, "two"))
        .expect("index");
    tx1.commit().expect("first commits");
    let error = tx2.commit().expect_err("same record key");
    assert!(error.is_retryable());
}

#[test]
fn concurrent_searches_see_whole_commits() {
    let db = Db::in_memory();
    let index = indexer();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, index, stop) = (db.clone(), index.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            for batch in 0..200_u64 {
                let mut tx = db.begin();
                for i in 0..5 {
                    let id = format!("b{batch:03}-{i}");
                    let doc = Doc::new(id, "r", Primitive::Event, batch, "shared word");
                    index.index(&mut tx, &doc).expect("index");
                }
                // Every other batch also removes the previous batch's first document.
                if batch % 2 == 1 {
                    let previous = format!("b{:03}-0", batch - 1);
                    index.remove(&mut tx, previous.as_bytes()).expect("remove");
                }
                tx.commit().expect("one writer");
            }
            stop.store(true, Ordering::Release);
        })
    };
    let mut searches = 0;
    while !stop.load(Ordering::Acquire) || searches < 10 {
        let snapshot = db.snapshot();
        let results = index
            .search(&snapshot, &Query::new("shared").top_k(TOP_K_MAX))
            .expect("search");
        // Every document holds the word, so the list and the counters must agree exactly.
        let in_scope = usize::try_from(results.documents_in_scope).expect("small");
        assert_eq!(results.budget.postings_read, in_scope);
        assert_eq!(results.hits.len(), in_scope.min(TOP_K_MAX));
        searches += 1;
    }
    writer.join().expect("writer");
}

fn assert_too_large(error: &SearchError, expected: &str) {
    match error {
        SearchError::TooLarge { limit, .. } => assert_eq!(*limit, expected),
        other => panic!("expected TooLarge({expected}), got {other:?}"),
    }
}

#[test]
fn limits_are_refused_with_typed_errors_before_any_write() {
    let (db, index) = (Db::in_memory(), indexer());
    let version = db.version();
    let doc = |id: &[u8], run: &[u8], text: String| Doc::new(id, run, Primitive::Event, 0, text);
    let mut tx = db.begin();
    let refused = [
        (
            doc(&[b'x'; DOC_ID_BYTES_MAX + 1], b"r", "ok".into()),
            Some("DOC_ID_BYTES_MAX"),
        ),
        (
            doc(b"d", &[b'r'; RUN_ID_BYTES_MAX + 1], "ok".into()),
            Some("RUN_ID_BYTES_MAX"),
        ),
        (
            doc(b"d", b"r", "a ".repeat(TEXT_BYTES_MAX / 2 + 1)),
            Some("TEXT_BYTES_MAX"),
        ),
        (
            (0..=TAGS_PER_DOC_MAX).fold(doc(b"d", b"r", "ok".into()), |d, i| d.tag(i.to_string())),
            Some("TAGS_PER_DOC_MAX"),
        ),
        (
            doc(b"d", b"r", "ok".into()).tag("t".repeat(TAG_BYTES_MAX + 1)),
            Some("TAG_BYTES_MAX"),
        ),
        (doc(b"", b"r", "ok".into()), None),
        (doc(b"d", b"", "ok".into()), None),
        (doc(b"d", b"r", "ok".into()).tag(""), None),
    ];
    for (doc, limit) in refused {
        let error = index.index(&mut tx, &doc).expect_err("refused");
        match limit {
            Some(limit) => assert_too_large(&error, limit),
            None => assert!(matches!(error, SearchError::Empty { .. }), "{error:?}"),
        }
    }
    // At the limits exactly, it is accepted.
    let at_limits = (0..TAGS_PER_DOC_MAX).fold(
        doc(
            &[b'x'; DOC_ID_BYTES_MAX],
            &[b'r'; RUN_ID_BYTES_MAX],
            "a".repeat(TEXT_BYTES_MAX),
        ),
        |d, i| d.tag(format!("{i:0>TAG_BYTES_MAX$}")),
    );
    let error = index
        .remove(&mut tx, &[b'x'; DOC_ID_BYTES_MAX + 1])
        .expect_err("refused");
    assert_too_large(&error, "DOC_ID_BYTES_MAX");
    // Nothing was buffered by the refused calls: the transaction commits nothing.
    assert_eq!(tx.commit().expect("empty commit"), version);
    assert_eq!(db.version(), version);
    index_all(&db, &index, &[at_limits]);
    index_all(&db, &index, &corpus());

    let query_error = |query: Query| index.search(&db.snapshot(), &query).expect_err("refused");
    let many_terms = (0..=QUERY_TERMS_MAX)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>();
    let many_terms = many_terms.join(" ");
    assert_too_large(&query_error(Query::new(many_terms)), "QUERY_TERMS_MAX");
    assert_too_large(
        &query_error(Query::new("a").top_k(TOP_K_MAX + 1)),
        "TOP_K_MAX",
    );
    assert!(matches!(
        query_error(Query::new("a").top_k(0)),
        SearchError::TopKZero
    ));
    assert!(matches!(
        query_error(Query::new("a").time_range_ms(std::ops::Range { start: 5, end: 4 })),
        SearchError::ReversedTimeRange { .. }
    ));
    assert_too_large(
        &query_error(Query::new("a".repeat(5_000))),
        "QUERY_TEXT_BYTES_MAX",
    );
    assert!(matches!(
        query_error(Query::new("timeout").postings_budget(2)),
        SearchError::PostingsBudget { max: 2 }
    ));
    // Repeated query words count once.
    let repeated = "w ".repeat(QUERY_TERMS_MAX * 4);
    assert!(index.search(&db.snapshot(), &Query::new(repeated)).is_ok());
    let long_prefix = Indexer::new(vec![b'p'; PREFIX_BYTES_MAX + 1]).expect_err("refused");
    assert_too_large(&long_prefix, "PREFIX_BYTES_MAX");
}

#[test]
fn damaged_index_bytes_are_reported_not_panicked_on() {
    let (db, index) = (Db::in_memory(), indexer());
    index_all(&db, &index, &corpus());
    let mut key = posting_list_key(index.prefix(), "timeout");
    push_suffix(&mut key, b"r1", b"e1");
    db.put(&key, b"garbage").expect("put");
    let error = index
        .search(&db.snapshot(), &Query::new("timeout"))
        .expect_err("damaged");
    assert!(matches!(error, SearchError::Corrupted { .. }), "{error:?}");
    // A posting whose record is gone.
    db.delete(key).expect("delete");
    let mut orphan = posting_list_key(index.prefix(), "orphan");
    push_suffix(&mut orphan, b"r1", b"ghost");
    db.put(&orphan, [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        .expect("put");
    let error = index
        .search(&db.snapshot(), &Query::new("orphan"))
        .expect_err("damaged");
    assert!(matches!(error, SearchError::Corrupted { .. }), "{error:?}");
}

#[test]
fn the_index_survives_a_reopen() {
    let dir = TempDir::new("search-reopen");
    let options = || Options::new(dir.path()).durability(Durability::Strict);
    let index = indexer();
    let query = Query::new("timeout call").top_k(100);
    let before = {
        let db = Db::open(options()).expect("open");
        index_all(&db, &index, &corpus());
        let mut tx = db.begin();
        index.remove(&mut tx, b"s1").expect("remove");
        tx.commit().expect("commit");
        let results = search(&db, &index, &query);
        db.close().expect("close");
        results
    };
    let db = Db::open(options()).expect("reopen");
    let after = search(&db, &index, &query);
    assert_eq!(before.hits, after.hits);
    assert_eq!(ids(&after), ["e1", "j1", "k1", "t1"]);
}

#[test]
fn compaction_keeps_every_result_and_moves_postings_into_blocks() {
    let (db, index) = (Db::in_memory(), indexer());
    let docs: Vec<Doc> = (0..1_000)
        .map(|i| {
            let run = ["r1", "r2", "r3"][i % 3];
            let text = format!("shared word {} and tail{}", i % 7, i % 11);
            let doc = Doc::new(format!("d{i:04}"), run, Primitive::Trace, i as u64, text);
            if i % 4 == 0 {
                doc.tag("even")
            } else {
                doc
            }
        })
        .collect();
    index_all(&db, &index, &docs);
    let queries = [
        Query::new("shared").top_k(50),
        Query::new("tail3 5").top_k(20),
        Query::new("tail3 word").run("r2").top_k(20),
        Query::new("word").tag("even").time_range_ms(100..600),
    ];
    let before: Vec<SearchResults> = queries.iter().map(|q| search(&db, &index, q)).collect();
    // Compact in bounded steps until done.
    let mut steps = 0;
    loop {
        let mut tx = db.begin();
        let report = index.compact(&mut tx, 700).expect("compact");
        tx.commit().expect("commit");
        steps += 1;
        if report.done {
            break;
        }
    }
    assert!(steps > 1, "a bounded compaction takes several steps");
    for (query, old) in queries.iter().zip(&before) {
        let new = search(&db, &index, query);
        assert_eq!(new.hits, old.hits, "{query:?}");
        assert!(new.budget.blocks_read > 0);
    }
    let shared = search(&db, &index, &Query::new("shared"));
    assert_eq!(shared.budget.postings_read, 1_000);
    assert_eq!(shared.budget.blocks_read, 1_000_usize.div_ceil(128));
    // Re-index and remove compacted documents: their postings leave the blocks.
    let mut tx = db.begin();
    index
        .index(
            &mut tx,
            &Doc::new("d0000", "r1", Primitive::Trace, 0, "replaced"),
        )
        .expect("index");
    for i in 1..1_000 {
        index
            .remove(&mut tx, format!("d{i:04}").as_bytes())
            .expect("remove");
    }
    tx.commit().expect("commit");
    assert!(search(&db, &index, &Query::new("shared")).hits.is_empty());
    assert_eq!(
        ids(&search(&db, &index, &Query::new("replaced"))),
        ["d0000"]
    );
    let mut tx = db.begin();
    index.remove(&mut tx, b"d0000").expect("remove");
    tx.commit().expect("commit");
    assert_eq!(db.scan_prefix(index.prefix()).expect("scan").count(), 0);
}
