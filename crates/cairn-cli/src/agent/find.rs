//! `cairn agent search`: BM25 keyword search over the agent's search index (every run, or one
//! with `--run`), filtered by primitive and span tag, with each hit's score, run, primitive,
//! key and snippet, and the budget report of what the search read.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;
use cairn_agent::{AgentHit, AgentQuery, Primitive, RunId};
use serde::Serialize;

use super::{bytes_json, open, primitive_name, printable};
use crate::inspect::{print_document, Outcome};
use crate::streams::table;

/// What `search` takes besides the directory.
#[derive(Debug)]
pub struct SearchSettings {
    /// The query text.
    pub text: String,
    /// Only this run.
    pub run: Option<RunId>,
    /// Only these primitives (empty: any).
    pub primitives: Vec<Primitive>,
    /// Only spans carrying all these tags.
    pub tags: Vec<String>,
    /// At most this many hits.
    pub top: usize,
}

#[derive(Debug, Serialize)]
struct HitRow {
    score: f64,
    run: u64,
    primitive: &'static str,
    /// The event sequence or span id, or the KV key, cell or document name (`null` when the
    /// index holds only the hash of a long key).
    key: serde_json::Value,
    timestamp_ms: u64,
    snippet: String,
    /// Where the matching word is in `snippet`, in bytes.
    matched: [usize; 2],
}

impl From<&AgentHit> for HitRow {
    fn from(hit: &AgentHit) -> Self {
        let key = match (hit.number(), hit.key.as_deref()) {
            (Some(number), _) => serde_json::Value::from(number),
            (None, Some(key)) => bytes_json(key),
            (None, None) => serde_json::Value::Null,
        };
        HitRow {
            score: hit.score,
            run: hit.run.get(),
            primitive: primitive_name(hit.primitive),
            key,
            timestamp_ms: hit.timestamp_ms,
            snippet: hit.snippet.text.clone(),
            matched: [hit.snippet.matched.start, hit.snippet.matched.end],
        }
    }
}

#[derive(Debug, Serialize)]
struct SearchDocument {
    query: String,
    run: Option<u64>,
    documents_in_scope: u64,
    hits: Vec<HitRow>,
    budget: BudgetRow,
}

#[derive(Debug, Serialize)]
struct BudgetRow {
    lists_read: usize,
    postings_read: usize,
    blocks_read: usize,
    candidates: usize,
    scored: usize,
    records_read: usize,
    elapsed_us: u128,
}

/// `cairn agent search DIR QUERY [--run RUN] [--primitive P]... [--tag T]... [--top N]`.
pub fn search(dir: &Path, settings: &SearchSettings, json: bool) -> Result<Outcome> {
    let agent = open(dir)?;
    let mut query = AgentQuery::new(settings.text.clone()).top_k(settings.top);
    if let Some(run) = settings.run {
        query = query.run(run);
    }
    for primitive in &settings.primitives {
        query = query.primitive(*primitive);
    }
    for tag in &settings.tags {
        query = query.tag(tag.clone());
    }
    let results = agent.search(&query)?;
    let budget = results.budget;
    let document = SearchDocument {
        query: settings.text.clone(),
        run: settings.run.map(RunId::get),
        documents_in_scope: results.documents_in_scope,
        hits: results.hits.iter().map(HitRow::from).collect(),
        budget: BudgetRow {
            lists_read: budget.lists_read,
            postings_read: budget.postings_read,
            blocks_read: budget.blocks_read,
            candidates: budget.candidates,
            scored: budget.scored,
            records_read: budget.records_read,
            elapsed_us: budget.elapsed.as_micros(),
        },
    };
    print_document(json, &document, print_hits)?;
    Ok(Outcome::Intact)
}

fn print_hits(out: &mut impl Write, document: &SearchDocument) -> io::Result<()> {
    if document.hits.is_empty() {
        writeln!(
            out,
            "no hits among {} document(s)",
            document.documents_in_scope
        )?;
    } else {
        let rows = document.hits.iter().map(|hit| {
            let key = match &hit.key {
                serde_json::Value::String(text) => printable(text.as_bytes()),
                serde_json::Value::Null => "(long key)".to_owned(),
                other => other.to_string(),
            };
            vec![
                format!("{:.3}", hit.score),
                hit.run.to_string(),
                hit.primitive.to_owned(),
                key,
                hit.snippet.replace(|c: char| c.is_control(), " "),
            ]
        });
        let headers = ["score", "run", "primitive", "key", "snippet"];
        writeln!(out, "{}", table(headers, rows, &[0, 1]))?;
    }
    let budget = &document.budget;
    writeln!(
        out,
        "read {} list(s), {} posting(s), {} block(s), {} record(s) in {} µs; {} document(s) in scope",
        budget.lists_read,
        budget.postings_read,
        budget.blocks_read,
        budget.records_read,
        budget.elapsed_us,
        document.documents_in_scope
    )?;
    out.flush()
}
