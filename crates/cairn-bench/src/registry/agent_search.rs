//! The agent search entry: top-10 queries over 100,000 documents on Cairn's in-commit BM25
//! index and on SQLite FTS5, timed in turns in the same run, one row per query shape and
//! store, and Cairn's speed over FTS5's per shape. The size is the same in quick mode: the
//! target is stated at 100,000 documents.

use super::side_by_side::latency_row;
use super::{Context, Entry, Kind, Timed};
use crate::measure::{self, count_as_f64};
use crate::report::Row;
use crate::targets as t;
use crate::workloads::agent_search::{
    CairnIndex, CairnSearch, Fts5Index, Fts5Search, SearchCorpus, SEARCH_DOCUMENTS,
};
use crate::workloads::{Result, Workload};

const ENTRY: &str = "agent_search";
const PEER: &str = "sqlite-fts5";

/// The corpus and both stores built over it.
fn build(context: &mut Context) -> Result<(SearchCorpus, CairnIndex, Fts5Index)> {
    context.building(&format!(
        "a {SEARCH_DOCUMENTS}-document corpus, indexed twice"
    ));
    let corpus = SearchCorpus::generate(SEARCH_DOCUMENTS);
    let cairn = CairnIndex::build(&corpus)?;
    let fts5 = Fts5Index::build(&corpus)?;
    context.building_done();
    Ok((corpus, cairn, fts5))
}

/// Every agent search entry.
pub fn entries(_quick: bool) -> Vec<Entry> {
    vec![Entry::new(ENTRY, Kind::Latency, |context, name| {
        let (corpus, cairn, fts5) = build(context)?;
        let mut rows = Vec::new();
        for shape in &corpus.shapes {
            let mut ours = CairnSearch::new(&cairn, shape);
            let mut theirs = Fts5Search::new(&fts5, shape);
            let pair: &mut [&mut dyn Workload] = &mut [&mut ours, &mut theirs];
            let plan = context.latency_plan();
            let latencies = measure::measure_latency_round_robin(pair, plan, 1, None)?;
            let [cairn_latency, fts5_latency] = latencies.as_slice() else {
                return Err(super::nothing_to_measure(ENTRY));
            };
            let workload = format!("{name}/{}", shape.name);
            let matches = format!("{} matching documents", shape.matches);
            let cairn_row = latency_row(&format!("{workload}/cairn"), cairn_latency)
                .side_by_side(&workload, "cairn")
                .annotate(&matches)
                .target(&t::AGENT_SEARCH);
            let fts5_row = latency_row(&format!("{workload}/{PEER}"), fts5_latency)
                .side_by_side(&workload, PEER);
            let (cairn_p50, fts5_p50) = (
                count_as_f64(cairn_latency.p50_ns),
                count_as_f64(fts5_latency.p50_ns),
            );
            let explained = "Cairn's speed over SQLite FTS5's (p50 over p50), timed in turns; \
                above 1.00x Cairn is ahead";
            let ratio = Row::ratio(
                &format!("{workload}/cairn vs {PEER}"),
                fts5_p50,
                cairn_p50,
                explained,
            )
            .side_by_side(&workload, PEER)
            .goal(&t::CAIRN_AHEAD);
            rows.extend([cairn_row, fts5_row, ratio]);
        }
        Ok(rows)
    })
    .timed_by(|context| {
        let (corpus, cairn, fts5) = build(context)?;
        let mut timed = Vec::new();
        for shape in &corpus.shapes {
            let ours = Timed::Single(Box::new(CairnSearch::new(&cairn, shape)));
            let theirs = Timed::Single(Box::new(Fts5Search::new(&fts5, shape)));
            timed.push((format!("{}/cairn", shape.name), ours));
            timed.push((format!("{}/{PEER}", shape.name), theirs));
        }
        Ok(timed)
    })]
}
