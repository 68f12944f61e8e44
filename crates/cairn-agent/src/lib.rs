//! `cairn-agent`: what an agent runtime keeps as its memory, on the Cairn engine. Runs with a
//! status lifecycle; per run an event log chained with BLAKE3, state cells, plain KV, JSON
//! documents and traces; an append-only history of every mutation, from which any point of a
//! run can be replayed, two runs or two points diffed, and a new run forked.
//!
//! Everything lives in the engine's keyspace under `@a/` (the layout is in `keys` and
//! `docs/agent.md`), so it inherits the engine's durability, snapshots and crash recovery.
//! Every write is one engine commit and one history step; [`Run::transaction`] groups several.
//! Every searchable write also updates a BM25 index (the [`search`] module, under `@a/x`) in
//! that same commit, so [`Agent::search`] at a snapshot sees exactly the writes it holds.
//!
//! ```
//! use cairn_agent::{Agent, At, RunSpec};
//! # fn main() -> cairn_agent::Result<()> {
//! let (agent, _orphans) = Agent::open(cairn::Db::in_memory())?;
//! let run = agent.begin_run(RunSpec::named("demo"))?;
//! agent.append(run, "user", r#"{"text":"hi"}"#)?;
//! agent.cell_init(run, "phase", b"plan")?;
//! agent.cell_set(run, "phase", b"act")?;
//! let fork = agent.fork_run(run, At::Step(2), RunSpec::named("retry"))?;
//! agent.cell_set(fork, "phase", b"ask")?;
//! let diff = agent.diff_runs(run, fork)?;
//! assert_eq!(diff.changes.len(), 1);
//! assert_eq!(agent.replay_run(run, At::End)?, agent.head_state(run)?);
//! # Ok(()) }
//! ```

mod agent;
mod codec;
mod doc;
mod error;
mod find;
mod history;
mod index;
mod keys;
pub mod limits;
mod read;
mod record;
mod run;
pub mod search;
mod tx;

#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    //! Decoder entry points for the fuzz target and its corpus replay test. Not for
    //! applications.
    pub use crate::record::decode_any;
}

pub use agent::{Agent, OrphanReport, Run};
pub use error::{Error, Result};
pub use find::{AgentHit, AgentQuery, AgentResults};
pub use history::{
    diff_states, At, Change, ChangeKind, Diff, EventDivergence, HistoryEntry, PruneReport,
    Retention, RunSize, RunState, SweepPolicy, SweepReport,
};
pub use read::{ChainReport, SpanNode, SpanQuery};
pub use record::{
    chain_hash, Cell, Event, Hash, Mutation, Op, Primitive, Span, SpanKind, Step, GENESIS,
};
pub use run::{ForkPoint, RunId, RunInfo, RunQuery, RunSpec, RunStatus};
pub use tx::{RunTx, SpanInput};
