//! Agent-state workloads (`cairn-agent`), each with a SQLite implementation of the same work:
//! the event log as a table keyed by `(run, seq)` with the same BLAKE3 chain computed by the
//! application, state cells, spans and KV as tables, and history as a table of mutations that
//! a replay folds. Both sides write under `Buffered`-class durability (Cairn `Buffered`,
//! SQLite WAL with `synchronous=NORMAL`) on files in a temporary directory, and every
//! operation checks its result. Both sides make what they write searchable in the same commit,
//! as `cairn-agent` does: SQLite through an FTS5 table holding the text of every event, span,
//! KV value and cell value (one row per item, replaced when the item is).

use super::{ensure, Result, Workload, WorkloadError};
use cairn::{Db, Durability, Options};
use cairn_agent::{chain_hash, Agent, At, RunId, RunSpec, SpanInput, SpanKind, GENESIS};
use cairn_kv::backends::sqlite::rusqlite;
use cairn_testkit::TempDir;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// Events appended to one run before an untimed `prepare` starts a fresh run.
const EVENTS_PER_RUN_MAX: u64 = 100_000;
/// Events of the read fixture.
pub const READ_EVENTS: u64 = 10_000;
/// Events of the `verify_chain` fixture.
pub const VERIFY_EVENTS: u64 = 1_000;
/// KV keys of each run of the `diff_runs` fixture; every tenth differs.
pub const DIFF_KEYS: usize = 1_000;

fn agent_error(error: cairn_agent::Error) -> WorkloadError {
    WorkloadError::client("cairn-agent", error)
}

fn payload(n: u64) -> String {
    format!(r#"{{"tool":"search","args":{{"query":"weather in city {n}","limit":10}},"step":{n}}}"#)
}

/// One implementation of the agent workloads.
pub trait AgentStore {
    /// Begins a run.
    fn begin(&mut self) -> Result<u64>;
    /// Appends an event with the chain hash; returns its sequence.
    fn append(&mut self, run: u64, payload: &str) -> Result<u64>;
    /// Appends an event and, if `key` is given, puts a KV pair, in one commit.
    fn append_with_kv(
        &mut self,
        run: u64,
        payload: &str,
        key: Option<(&[u8], &[u8])>,
    ) -> Result<()>;
    /// Reads one event; returns its sequence.
    fn read(&mut self, run: u64, seq: u64) -> Result<Option<u64>>;
    /// Recomputes the chain; returns the events checked, or an error if it is broken.
    fn verify(&mut self, run: u64) -> Result<u64>;
    /// Creates the counter cell.
    fn cell_init(&mut self, run: u64) -> Result<()>;
    /// Increments the counter cell by read-modify-write; returns its new version.
    fn transition(&mut self, run: u64) -> Result<u64>;
    /// Records a tool-call span; returns its id.
    fn record(&mut self, run: u64) -> Result<u64>;
    /// Puts many KV pairs in one commit.
    fn put_many(&mut self, run: u64, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()>;
    /// Replays a run from its history; returns (events, KV pairs).
    fn replay(&mut self, run: u64) -> Result<(usize, usize)>;
    /// Diffs two runs' KV by key; returns the differing keys.
    fn diff(&mut self, a: u64, b: u64) -> Result<usize>;
    /// Marks a run completed.
    fn complete(&mut self, run: u64) -> Result<()>;
}

/// `cairn-agent` on a `Buffered` database.
pub struct CairnAgent {
    agent: Agent,
    _dir: TempDir,
}

impl CairnAgent {
    /// Opens a fresh store in a temporary directory.
    pub fn open() -> Result<Self> {
        let dir = TempDir::new("bench-agent");
        let options = Options::new(dir.path()).durability(Durability::buffered());
        let (agent, _) = Agent::open(Db::open(options)?).map_err(agent_error)?;
        Ok(CairnAgent { agent, _dir: dir })
    }
}

impl AgentStore for CairnAgent {
    fn begin(&mut self) -> Result<u64> {
        let run = self
            .agent
            .begin_run(RunSpec::named("bench"))
            .map_err(agent_error)?;
        Ok(run.get())
    }
    fn append(&mut self, run: u64, payload: &str) -> Result<u64> {
        let (seq, _) = self
            .agent
            .append(RunId::from_u64(run), "tool", payload)
            .map_err(agent_error)?;
        Ok(seq)
    }
    fn append_with_kv(
        &mut self,
        run: u64,
        payload: &str,
        key: Option<(&[u8], &[u8])>,
    ) -> Result<()> {
        self.agent
            .run(RunId::from_u64(run))
            .transaction(|tx| {
                tx.append("tool", payload)?;
                if let Some((k, v)) = key {
                    tx.kv_put(k, v)?;
                }
                Ok(())
            })
            .map_err(agent_error)
    }
    fn read(&mut self, run: u64, seq: u64) -> Result<Option<u64>> {
        let event = self
            .agent
            .read_event(RunId::from_u64(run), seq)
            .map_err(agent_error)?;
        Ok(event.map(|e| e.seq))
    }
    fn verify(&mut self, run: u64) -> Result<u64> {
        let report = self
            .agent
            .verify_chain(RunId::from_u64(run))
            .map_err(agent_error)?;
        ensure(report.is_intact(), "verify_chain", "the chain is broken")?;
        Ok(report.events)
    }
    fn cell_init(&mut self, run: u64) -> Result<()> {
        self.agent
            .cell_init(RunId::from_u64(run), "counter", b"0")
            .map_err(agent_error)?;
        Ok(())
    }
    fn transition(&mut self, run: u64) -> Result<u64> {
        self.agent
            .transition(RunId::from_u64(run), "counter", |v| Ok(increment(v)))
            .map_err(agent_error)
    }
    fn record(&mut self, run: u64) -> Result<u64> {
        let mut span = SpanInput::new(SpanKind::ToolCall, "search");
        span.duration = std::time::Duration::from_micros(1_250);
        span.tags = vec!["web".into()];
        self.agent
            .record(RunId::from_u64(run), &span)
            .map_err(agent_error)
    }
    fn put_many(&mut self, run: u64, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        self.agent
            .run(RunId::from_u64(run))
            .transaction(|tx| pairs.iter().try_for_each(|(k, v)| tx.kv_put(k, v)))
            .map_err(agent_error)
    }
    fn replay(&mut self, run: u64) -> Result<(usize, usize)> {
        let state = self
            .agent
            .replay_run(RunId::from_u64(run), At::End)
            .map_err(agent_error)?;
        Ok((state.events.len(), state.kv.len()))
    }
    fn diff(&mut self, a: u64, b: u64) -> Result<usize> {
        let diff = self
            .agent
            .diff_runs(RunId::from_u64(a), RunId::from_u64(b))
            .map_err(agent_error)?;
        Ok(diff.changes.len())
    }
    fn complete(&mut self, run: u64) -> Result<()> {
        self.agent
            .set_status(RunId::from_u64(run), cairn_agent::RunStatus::Completed)
            .map_err(agent_error)
    }
}

fn increment(value: &[u8]) -> Vec<u8> {
    let n: u64 = std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (n + 1).to_string().into_bytes()
}

const SCHEMA: &str = "
CREATE TABLE runs (run INTEGER PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
    created INTEGER NOT NULL);
CREATE TABLE events (run INTEGER NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    time INTEGER NOT NULL, payload BLOB NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (run, seq)) WITHOUT ROWID;
CREATE TABLE cells (run INTEGER NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
    value BLOB NOT NULL, PRIMARY KEY (run, name)) WITHOUT ROWID;
CREATE TABLE spans (run INTEGER NOT NULL, id INTEGER NOT NULL, parent INTEGER,
    kind TEXT NOT NULL, name TEXT NOT NULL, tags TEXT NOT NULL, start INTEGER NOT NULL,
    duration INTEGER NOT NULL, content BLOB NOT NULL, PRIMARY KEY (run, id)) WITHOUT ROWID;
CREATE TABLE kv (run INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (run, key)) WITHOUT ROWID;
CREATE TABLE history (run INTEGER NOT NULL, step INTEGER NOT NULL, idx INTEGER NOT NULL,
    prim INTEGER NOT NULL, key BLOB NOT NULL, after BLOB,
    PRIMARY KEY (run, step, idx)) WITHOUT ROWID;
CREATE VIRTUAL TABLE search USING fts5(body);
";

/// Makes `text` the searchable text of item `key` of primitive `prim` in `run`: one FTS5 row
/// per item, its rowid derived from the item, so a new value replaces the old row.
fn index_text(
    tx: &rusqlite::Transaction<'_>,
    run: u64,
    prim: i64,
    key: &[u8],
    text: &[u8],
) -> Result<()> {
    let mut hasher = std::hash::DefaultHasher::new();
    (run, prim, key).hash(&mut hasher);
    let rowid = i64::from_le_bytes(hasher.finish().to_le_bytes()) & i64::MAX;
    let mut insert =
        tx.prepare_cached("INSERT OR REPLACE INTO search (rowid, body) VALUES (?1, ?2)")?;
    insert.execute(params![rowid, String::from_utf8_lossy(text)])?;
    Ok(())
}

const PRIM_KV: i64 = 1;
const PRIM_CELL: i64 = 2;
const PRIM_EVENT: i64 = 4;
const PRIM_SPAN: i64 = 5;

/// What the application keeps in memory per run, as it would to append without a read.
#[derive(Clone, Copy)]
struct SqliteRun {
    next_seq: u64,
    last_hash: [u8; 32],
    next_step: u64,
    next_span: u64,
}

/// The same workloads on SQLite (WAL, `synchronous=NORMAL`).
pub struct SqliteAgent {
    connection: Connection,
    runs: BTreeMap<u64, SqliteRun>,
    _dir: TempDir,
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn as_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteAgent {
    /// Opens a fresh database in a temporary directory.
    pub fn open() -> Result<Self> {
        let dir = TempDir::new("bench-agent-sqlite");
        std::fs::create_dir_all(dir.path())
            .map_err(|e| WorkloadError::io("sqlite", "create dir", &e))?;
        let connection = Connection::open(dir.path().join("agent.sqlite"))?;
        connection.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        })?;
        connection.execute_batch("PRAGMA synchronous = NORMAL")?;
        connection.execute_batch(SCHEMA)?;
        Ok(SqliteAgent {
            connection,
            runs: BTreeMap::new(),
            _dir: dir,
        })
    }

    fn run(&mut self, run: u64) -> Result<SqliteRun> {
        self.runs
            .get(&run)
            .copied()
            .ok_or_else(|| WorkloadError::unexpected("sqlite agent", format!("no run {run}")))
    }
}

impl AgentStore for SqliteAgent {
    fn begin(&mut self) -> Result<u64> {
        let run = self.runs.keys().next_back().map_or(1, |r| r + 1);
        self.connection.execute(
            "INSERT INTO runs (run, name, status, created) VALUES (?1, 'bench', 'active', ?2)",
            params![as_i64(run), as_i64(now_ms())],
        )?;
        let fresh = SqliteRun {
            next_seq: 0,
            last_hash: GENESIS,
            next_step: 0,
            next_span: 0,
        };
        self.runs.insert(run, fresh);
        Ok(run)
    }
    fn append(&mut self, run: u64, payload: &str) -> Result<u64> {
        self.append_with_kv(run, payload, None)?;
        Ok(self.run(run)?.next_seq - 1)
    }
    fn append_with_kv(
        &mut self,
        run: u64,
        payload: &str,
        key: Option<(&[u8], &[u8])>,
    ) -> Result<()> {
        let mut state = self.run(run)?;
        let time = now_ms();
        let seq = state.next_seq;
        let hash = chain_hash(&state.last_hash, seq, time, "tool", payload.as_bytes());
        let tx = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (run, seq, type, time, payload, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            insert.execute(params![
                as_i64(run),
                as_i64(seq),
                "tool",
                as_i64(time),
                payload.as_bytes(),
                &hash[..]
            ])?;
            let mut history = tx.prepare_cached(
                "INSERT INTO history (run, step, idx, prim, key, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let step = as_i64(state.next_step);
            history.execute(params![
                as_i64(run),
                step,
                0,
                PRIM_EVENT,
                &seq.to_be_bytes()[..],
                None::<Vec<u8>>
            ])?;
            index_text(&tx, run, PRIM_EVENT, &seq.to_be_bytes(), payload.as_bytes())?;
            if let Some((k, v)) = key {
                let mut put = tx.prepare_cached(
                    "INSERT OR REPLACE INTO kv (run, key, value) VALUES (?1, ?2, ?3)",
                )?;
                put.execute(params![as_i64(run), k, v])?;
                history.execute(params![as_i64(run), step, 1, PRIM_KV, k, Some(v)])?;
                index_text(&tx, run, PRIM_KV, k, v)?;
            }
        }
        tx.commit()?;
        state.next_seq += 1;
        state.next_step += 1;
        state.last_hash = hash;
        self.runs.insert(run, state);
        Ok(())
    }
    fn read(&mut self, run: u64, seq: u64) -> Result<Option<u64>> {
        let mut select = self.connection.prepare_cached(
            "SELECT seq, type, time, payload, hash FROM events WHERE run = ?1 AND seq = ?2",
        )?;
        let found = select
            .query_row(params![as_i64(run), as_i64(seq)], |row| {
                let payload: Vec<u8> = row.get(3)?;
                let hash: Vec<u8> = row.get(4)?;
                std::hint::black_box((payload, hash));
                row.get::<_, i64>(0)
            })
            .optional()?;
        Ok(found.map(as_u64))
    }
    fn verify(&mut self, run: u64) -> Result<u64> {
        let mut select = self.connection.prepare_cached(
            "SELECT seq, type, time, payload, hash FROM events WHERE run = ?1 ORDER BY seq",
        )?;
        let mut rows = select.query(params![as_i64(run)])?;
        let (mut prev, mut expected) = (GENESIS, 0_u64);
        while let Some(row) = rows.next()? {
            let seq = as_u64(row.get(0)?);
            let ty: String = row.get(1)?;
            let time = as_u64(row.get(2)?);
            let payload: Vec<u8> = row.get(3)?;
            let stored: Vec<u8> = row.get(4)?;
            let hash = chain_hash(&prev, seq, time, &ty, &payload);
            ensure(
                seq == expected && stored == hash,
                "verify_chain",
                "the chain is broken",
            )?;
            prev = hash;
            expected += 1;
        }
        Ok(expected)
    }
    fn cell_init(&mut self, run: u64) -> Result<()> {
        self.connection.execute(
            "INSERT INTO cells (run, name, version, value) VALUES (?1, 'counter', 1, ?2)",
            params![as_i64(run), b"0".as_slice()],
        )?;
        Ok(())
    }
    fn transition(&mut self, run: u64) -> Result<u64> {
        let mut state = self.run(run)?;
        let tx = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version = {
            let mut select = tx.prepare_cached(
                "SELECT version, value FROM cells WHERE run = ?1 AND name = 'counter'",
            )?;
            let (version, value): (i64, Vec<u8>) =
                select.query_row(params![as_i64(run)], |row| Ok((row.get(0)?, row.get(1)?)))?;
            let next = increment(&value);
            let mut update = tx.prepare_cached(
                "UPDATE cells SET version = ?2, value = ?3 WHERE run = ?1 AND name = 'counter'",
            )?;
            update.execute(params![as_i64(run), version + 1, &next])?;
            let mut history = tx.prepare_cached(
                "INSERT INTO history (run, step, idx, prim, key, after) VALUES (?1, ?2, 0, ?3, 'counter', ?4)",
            )?;
            history.execute(params![
                as_i64(run),
                as_i64(state.next_step),
                PRIM_CELL,
                &next
            ])?;
            index_text(&tx, run, PRIM_CELL, b"counter", &next)?;
            as_u64(version + 1)
        };
        tx.commit()?;
        state.next_step += 1;
        self.runs.insert(run, state);
        Ok(version)
    }
    fn record(&mut self, run: u64) -> Result<u64> {
        let mut state = self.run(run)?;
        let id = state.next_span;
        let tx = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO spans (run, id, parent, kind, name, tags, start, duration, content) \
                 VALUES (?1, ?2, NULL, 'tool_call', 'search', 'web', ?3, 1250, 'null')",
            )?;
            insert.execute(params![as_i64(run), as_i64(id), as_i64(now_ms())])?;
            let mut history = tx.prepare_cached(
                "INSERT INTO history (run, step, idx, prim, key, after) VALUES (?1, ?2, 0, ?3, ?4, NULL)",
            )?;
            history.execute(params![
                as_i64(run),
                as_i64(state.next_step),
                PRIM_SPAN,
                &id.to_be_bytes()[..]
            ])?;
            index_text(&tx, run, PRIM_SPAN, &id.to_be_bytes(), b"search web")?;
        }
        tx.commit()?;
        state.next_span += 1;
        state.next_step += 1;
        self.runs.insert(run, state);
        Ok(id)
    }
    fn put_many(&mut self, run: u64, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut state = self.run(run)?;
        let tx = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO kv (run, key, value) VALUES (?1, ?2, ?3)",
            )?;
            let mut history = tx.prepare_cached(
                "INSERT INTO history (run, step, idx, prim, key, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (idx, (k, v)) in pairs.iter().enumerate() {
                put.execute(params![as_i64(run), k, v])?;
                let idx = i64::try_from(idx).unwrap_or(i64::MAX);
                history.execute(params![
                    as_i64(run),
                    as_i64(state.next_step),
                    idx,
                    PRIM_KV,
                    k,
                    Some(v)
                ])?;
                index_text(&tx, run, PRIM_KV, k, v)?;
            }
        }
        tx.commit()?;
        state.next_step += 1;
        self.runs.insert(run, state);
        Ok(())
    }
    fn replay(&mut self, run: u64) -> Result<(usize, usize)> {
        let mut kv: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        {
            let mut select = self.connection.prepare_cached(
                "SELECT prim, key, after FROM history WHERE run = ?1 ORDER BY step, idx",
            )?;
            let mut rows = select.query(params![as_i64(run)])?;
            while let Some(row) = rows.next()? {
                if row.get::<_, i64>(0)? == PRIM_KV {
                    let key: Vec<u8> = row.get(1)?;
                    let after: Vec<u8> = row.get(2)?;
                    kv.insert(key, after);
                }
            }
        }
        let mut events = Vec::new();
        let mut select = self.connection.prepare_cached(
            "SELECT seq, type, time, payload, hash FROM events WHERE run = ?1 ORDER BY seq",
        )?;
        let mut rows = select.query(params![as_i64(run)])?;
        while let Some(row) = rows.next()? {
            let event: (i64, String, i64, Vec<u8>, Vec<u8>) = (
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            );
            events.push(event);
        }
        Ok((events.len(), kv.len()))
    }
    fn diff(&mut self, a: u64, b: u64) -> Result<usize> {
        let load = |run: u64| -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
            let mut select = self
                .connection
                .prepare_cached("SELECT key, value FROM kv WHERE run = ?1 ORDER BY key")?;
            let rows =
                select.query_map(params![as_i64(run)], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        };
        let (left, right) = (load(a)?, load(b)?);
        let (mut i, mut j, mut changes) = (0, 0, 0);
        loop {
            match (left.get(i), right.get(j)) {
                (None, None) => break,
                (Some(_), None) => (changes, i) = (changes + 1, i + 1),
                (None, Some(_)) => (changes, j) = (changes + 1, j + 1),
                (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                    std::cmp::Ordering::Less => (changes, i) = (changes + 1, i + 1),
                    std::cmp::Ordering::Greater => (changes, j) = (changes + 1, j + 1),
                    std::cmp::Ordering::Equal => {
                        changes += usize::from(va != vb);
                        (i, j) = (i + 1, j + 1);
                    }
                },
            }
        }
        Ok(changes)
    }
    fn complete(&mut self, run: u64) -> Result<()> {
        let changed = self.connection.execute(
            "UPDATE runs SET status = 'completed' WHERE run = ?1 AND status = 'active'",
            params![as_i64(run)],
        )?;
        ensure(changed == 1, "sqlite agent", "the run was not active")
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Which agent operation a workload times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentOp {
    /// `append` with the chain, a fresh run every `EVENTS_PER_RUN_MAX` events.
    Append,
    /// Read one event of a run of [`READ_EVENTS`].
    Read,
    /// `verify_chain` of a run of [`VERIFY_EVENTS`].
    VerifyChain,
    /// A state cell transition (read, increment, write).
    CellTransition,
    /// Record one tool-call span.
    TraceRecord,
    /// `replay_run` to the end of a run of this many events (every tenth also puts a key).
    Replay(u64),
    /// `diff_runs` of two runs of [`DIFF_KEYS`] keys.
    DiffRuns,
    /// A whole small agent run: begin, [`SIMULATION_STEPS`] steps of an event, a cell
    /// transition and a span each, then complete.
    RunSimulation,
    /// [`COORDINATING_AGENTS`] agents, each with its own run, taking turns on one thread for
    /// [`COORDINATION_ROUNDS`] rounds. A turn appends an event to the agent's run, claims the
    /// next task by a transition of the shared counter cell in a coordinator run, and posts the
    /// claim on the coordinator's board (an event and a KV put in one commit). Then every agent
    /// run completes.
    MultiAgent,
}

/// Steps of one simulated agent run.
pub const SIMULATION_STEPS: u64 = 20;
/// Agents of the coordination scenario.
pub const COORDINATING_AGENTS: u64 = 4;
/// Rounds of the coordination scenario (each agent takes one turn a round).
pub const COORDINATION_ROUNDS: u64 = 10;

/// One agent operation on one store, with its fixture.
pub struct AgentWorkload {
    store: Box<dyn AgentStore>,
    op: AgentOp,
    run: u64,
    other: u64,
    count: u64,
    cursor: u64,
}

impl AgentWorkload {
    /// Builds the fixture `op` needs (untimed).
    pub fn new(mut store: Box<dyn AgentStore>, op: AgentOp) -> Result<Self> {
        let run = store.begin()?;
        let mut other = 0;
        match op {
            AgentOp::Read | AgentOp::VerifyChain => {
                let events = if op == AgentOp::Read {
                    READ_EVENTS
                } else {
                    VERIFY_EVENTS
                };
                for n in 0..events {
                    store.append(run, &payload(n))?;
                }
            }
            AgentOp::CellTransition | AgentOp::MultiAgent => store.cell_init(run)?,
            AgentOp::Replay(events) => {
                for n in 0..events {
                    let key = format!("key{:03}", (n / 10) % 100);
                    let kv = (n % 10 == 0).then_some((key.as_bytes(), b"value".as_slice()));
                    store.append_with_kv(run, &payload(n), kv)?;
                }
            }
            AgentOp::DiffRuns => {
                other = store.begin()?;
                let pairs = |differ: bool| {
                    (0..DIFF_KEYS)
                        .map(|i| {
                            let v = if differ && i % 10 == 0 {
                                "changed"
                            } else {
                                "same"
                            };
                            (format!("key{i:05}").into_bytes(), v.as_bytes().to_vec())
                        })
                        .collect::<Vec<_>>()
                };
                store.put_many(run, &pairs(false))?;
                store.put_many(other, &pairs(true))?;
            }
            AgentOp::Append | AgentOp::TraceRecord | AgentOp::RunSimulation => {}
        }
        Ok(AgentWorkload {
            store,
            op,
            run,
            other,
            count: 0,
            cursor: 0,
        })
    }
}

impl Workload for AgentWorkload {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        if self.op == AgentOp::Append
            && self.count + u64::try_from(runs).unwrap_or(0) > EVENTS_PER_RUN_MAX
        {
            self.run = self.store.begin()?;
            self.count = 0;
        }
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        match self.op {
            AgentOp::Append => {
                let seq = self.store.append(self.run, &payload(self.count))?;
                ensure(
                    seq == self.count,
                    "event_microbenchmarks/append",
                    "sequence not dense",
                )?;
                self.count += 1;
            }
            AgentOp::Read => {
                self.cursor = (self.cursor + 7_919) % READ_EVENTS;
                let seq = self.store.read(self.run, self.cursor)?;
                ensure(
                    seq == Some(self.cursor),
                    "event_microbenchmarks/read",
                    "wrong or missing event",
                )?;
            }
            AgentOp::VerifyChain => {
                let events = self.store.verify(self.run)?;
                ensure(
                    events == VERIFY_EVENTS,
                    "event_microbenchmarks/verify_chain",
                    "wrong event count",
                )?;
            }
            AgentOp::CellTransition => {
                let version = self.store.transition(self.run)?;
                self.count += 1;
                ensure(
                    version == self.count + 1,
                    "state_cell_transitions",
                    "wrong version",
                )?;
            }
            AgentOp::TraceRecord => {
                let id = self.store.record(self.run)?;
                ensure(id == self.count, "trace_recording", "span ids not dense")?;
                self.count += 1;
            }
            AgentOp::Replay(events) => {
                let (got, keys) = self.store.replay(self.run)?;
                let expected_keys = usize::try_from(events.div_ceil(10).min(100)).unwrap_or(0);
                let ok = u64::try_from(got).ok() == Some(events) && keys == expected_keys;
                ensure(ok, "replay_simulation", "replayed state is wrong")?;
            }
            AgentOp::DiffRuns => {
                let changes = self.store.diff(self.run, self.other)?;
                ensure(
                    changes == DIFF_KEYS / 10,
                    "diff_runs",
                    "wrong number of changes",
                )?;
            }
            AgentOp::RunSimulation => {
                let run = self.store.begin()?;
                self.store.cell_init(run)?;
                for step in 0..SIMULATION_STEPS {
                    let seq = self.store.append(run, &payload(step))?;
                    let version = self.store.transition(run)?;
                    let span = self.store.record(run)?;
                    let ok = seq == step && span == step && version == step + 2;
                    ensure(
                        ok,
                        "scenario/agent_run_simulation",
                        "wrong sequence, version or span",
                    )?;
                }
                self.store.complete(run)?;
            }
            AgentOp::MultiAgent => self.coordinate()?,
        }
        Ok(())
    }
}

impl AgentWorkload {
    /// One [`AgentOp::MultiAgent`] scenario; `self.run` is the coordinator, `self.count` the
    /// tasks claimed so far.
    fn coordinate(&mut self) -> Result<()> {
        const NAME: &str = "scenario/multi_agent_coordination";
        let mut agents = Vec::new();
        for _ in 0..COORDINATING_AGENTS {
            agents.push(self.store.begin()?);
        }
        for round in 0..COORDINATION_ROUNDS {
            for (agent, &run) in agents.iter().enumerate() {
                let seq = self.store.append(run, &payload(round))?;
                let version = self.store.transition(self.run)?;
                self.count += 1;
                let claimed = self.count;
                let board = format!(
                    r#"{{"task":{claimed},"agent":{agent},"note":"claimed by agent {agent}"}}"#
                );
                let key = format!("task/{claimed:08}");
                let owner = agent.to_string();
                self.store.append_with_kv(
                    self.run,
                    &board,
                    Some((key.as_bytes(), owner.as_bytes())),
                )?;
                let ok = seq == round && version == claimed + 1;
                ensure(ok, NAME, "wrong sequence or claim version")?;
            }
        }
        for run in agents {
            self.store.complete(run)?;
        }
        Ok(())
    }
}

/// The Cairn and SQLite workloads of `op`.
pub fn pair(op: AgentOp) -> Result<(AgentWorkload, AgentWorkload)> {
    let cairn = AgentWorkload::new(Box::new(CairnAgent::open()?), op)?;
    let sqlite = AgentWorkload::new(Box::new(SqliteAgent::open()?), op)?;
    Ok((cairn, sqlite))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_runs_and_checks_on_both_stores() -> Result<()> {
        for op in [
            AgentOp::Append,
            AgentOp::Read,
            AgentOp::VerifyChain,
            AgentOp::CellTransition,
            AgentOp::TraceRecord,
            AgentOp::Replay(100),
            AgentOp::DiffRuns,
            AgentOp::RunSimulation,
            AgentOp::MultiAgent,
        ] {
            let (mut cairn, mut sqlite) = pair(op)?;
            for workload in [&mut cairn, &mut sqlite] {
                workload.prepare(3)?;
                workload.run_ops(3)?;
            }
        }
        Ok(())
    }
}
