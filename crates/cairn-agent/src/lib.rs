//! `cairn-agent`: agent state on the engine — runs, event logs, state cells, traces, JSON
//! documents, `replay_run`, `diff_runs` and search.
//!
//! Not built yet; this crate reserves its place in the layout.
pub mod search;
