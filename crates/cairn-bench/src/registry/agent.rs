//! The agent-state entries (`cairn-agent`), each measuring Cairn and SQLite in turns in one
//! run: `event_microbenchmarks/{append,read,verify_chain}`, `state_cell_transitions`,
//! `trace_recording`, `replay_simulation/{1000,10000}`, `diff_runs/1000` and
//! `scenario/{agent_run_simulation,multi_agent_coordination}`, each with a `<entry> sqlite vs cairn` ratio row (above 1
//! when Cairn is ahead).

use super::side_by_side::latency_row;
use super::{Context, Entry, Kind, Timed};
use crate::measure::{self, count_as_f64};
use crate::report::Row;
use crate::targets::{self as t, Bound, Limit, Source};
use crate::workloads::agent::{pair, AgentOp};
use crate::workloads::Workload;

/// Goal: Cairn ahead of SQLite (the SQLite p50 over Cairn's).
pub const AHEAD_OF_SQLITE: Limit = t::from(Source::Cairn, Bound::Above(1.0), "> 1x");

struct Spec {
    name: &'static str,
    op: AgentOp,
    ops_per_sample: u32,
    target: Option<Limit>,
    goal: Option<Limit>,
}

#[rustfmt::skip]
fn specs() -> Vec<Spec> {
    let spec = |name, op, ops_per_sample, target, goal| Spec { name, op, ops_per_sample, target, goal };
    vec![
        spec("event_microbenchmarks/append", AgentOp::Append, 1, Some(t::AGENT_APPEND), None),
        spec("event_microbenchmarks/read", AgentOp::Read, 16, None, None),
        spec("event_microbenchmarks/verify_chain/1000", AgentOp::VerifyChain, 1, None, None),
        spec("state_cell_transitions", AgentOp::CellTransition, 1, None, None),
        spec("trace_recording", AgentOp::TraceRecord, 1, None, None),
        spec("replay_simulation/1000", AgentOp::Replay(1_000), 1, Some(t::AGENT_REPLAY_1K), None),
        spec("replay_simulation/10000", AgentOp::Replay(10_000), 1, Some(t::AGENT_REPLAY_10K), None),
        spec("diff_runs/1000", AgentOp::DiffRuns, 1, Some(t::AGENT_DIFF_1K), None),
        spec("scenario/agent_run_simulation", AgentOp::RunSimulation, 1, None, None),
        spec("scenario/multi_agent_coordination", AgentOp::MultiAgent, 1, None, None),
    ]
}

/// Every agent entry.
pub fn entries(_quick: bool) -> Vec<Entry> {
    specs()
        .into_iter()
        .map(|spec| {
            let op = spec.op;
            Entry::new(spec.name, Kind::Latency, move |context, name| {
                let (mut cairn, mut sqlite) = pair(op)?;
                let mut both: [&mut dyn Workload; 2] = [&mut cairn, &mut sqlite];
                let plan = context.latency_plan();
                let latencies = measure::measure_latency_round_robin(
                    &mut both,
                    plan,
                    spec.ops_per_sample,
                    None,
                )?;
                let mut rows = Vec::new();
                for (label, latency) in ["cairn", "sqlite"].into_iter().zip(&latencies) {
                    let row = latency_row(&format!("{name}/{label}"), latency);
                    rows.push(if label == "cairn" {
                        row.check(spec.target.as_ref(), spec.goal.as_ref())
                    } else {
                        row
                    });
                }
                if let [cairn, sqlite] = latencies.as_slice() {
                    let ratio = Row::ratio(
                        &format!("{name} sqlite vs cairn"),
                        count_as_f64(sqlite.p50_ns),
                        count_as_f64(cairn.p50_ns.max(1)),
                        "SQLite's p50 over Cairn's in the same run: above 1 when Cairn is ahead",
                    );
                    rows.push(ratio.check(None, Some(&AHEAD_OF_SQLITE)));
                }
                Ok(rows)
            })
            .timed_by(move |_: &mut Context| {
                let (cairn, sqlite) = pair(op)?;
                Ok(vec![
                    ("cairn".to_owned(), Timed::Single(Box::new(cairn))),
                    ("sqlite".to_owned(), Timed::Single(Box::new(sqlite))),
                ])
            })
        })
        .collect()
}
