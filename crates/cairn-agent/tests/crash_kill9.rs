//! Crash matrix for agent state, kill -9 loop: a child process (this test binary, re-run in
//! the `agent_kill9_child` role) opens the agent store in Strict mode, prints the orphan
//! report, begins a run, and from two threads appends events and transitions a state cell on
//! it, printing every acknowledgement; the parent kills it with `SIGKILL` at a seeded moment
//! and reopens the directory itself.
//!
//! Pass, after every kill: the run the child began is reported orphaned on reopen (and only
//! it: runs of earlier kills were already orphaned); every acknowledged event is present with
//! its acknowledged hash; sequences are dense and every run's hash chain verifies; each cell
//! holds at least the last acknowledged version; replaying every run to its end equals reading
//! its head. The directory is reused across kills, so later children recover a growing store.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn::{Db, Durability, Options};
use cairn_agent::{Agent, At, RunId, RunSpec};
use cairn_testkit::crash::{self_exe_child, ChildRun};
use cairn_testkit::{SplitMix64, TempDir};

const CHILD_DIR_ENV: &str = "CAIRN_AGENT_KILL9_DIR";
const CHILD_TEST_NAME: &str = "agent_kill9_child";
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(20);
const KILLS: usize = 8;

fn open(dir: &Path) -> (Agent, Vec<RunId>) {
    let db = Db::open(Options::new(dir).durability(Durability::Strict)).expect("open db");
    let (agent, report) = Agent::open(db).expect("open agent");
    (agent, report.orphaned)
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("write a protocol line");
    out.flush().expect("flush");
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The child role: a no-op unless [`CHILD_DIR_ENV`] is set.
#[test]
fn agent_kill9_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let started = Instant::now();
    let (agent, orphans) = open(Path::new(&dir));
    emit(&format!(
        "orphans {}",
        orphans
            .iter()
            .map(|r| r.get().to_string())
            .collect::<Vec<_>>()
            .join(",")
    ));
    let run = agent
        .begin_run(RunSpec::named("crash").tag("kill9"))
        .expect("begin");
    agent.cell_init(run, "count", b"0").expect("init");
    emit(&format!("run {}", run.get()));
    let appender = {
        let agent = agent.clone();
        std::thread::spawn(move || {
            let mut n = 0_u64;
            while started.elapsed() < CHILD_LIFETIME_MAX {
                let payload = format!(r#"{{"n":{n}}}"#);
                let (seq, hash) = agent.append(run, "step", &payload).expect("append");
                emit(&format!("ack event {} {seq} {}", run.get(), hex(&hash)));
                n += 1;
            }
        })
    };
    while started.elapsed() < CHILD_LIFETIME_MAX {
        let version = agent
            .transition(run, "count", |v| {
                let n: u64 = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                Ok((n + 1).to_string().into_bytes())
            })
            .expect("transition");
        emit(&format!("ack cell {} {version}", run.get()));
    }
    let _ = appender.join();
}

#[test]
fn acknowledged_events_and_transitions_survive_kill9() {
    let dir = TempDir::new("agent-kill9");
    let seed = 0x00a9_e7c4_a5e0;
    let mut rng = SplitMix64::new(seed);
    // run -> seq -> hash, and run -> last acknowledged cell version.
    let mut events: BTreeMap<u64, BTreeMap<u64, String>> = BTreeMap::new();
    let mut cells: BTreeMap<u64, u64> = BTreeMap::new();
    let mut total_acks = 0;
    for kill in 0..KILLS {
        let command = self_exe_child(
            CHILD_TEST_NAME,
            &[(CHILD_DIR_ENV, dir.path().display().to_string())],
        )
        .expect("command");
        let mut child = ChildRun::spawn(command).expect("spawn");
        // Wait for the first acknowledged event, so every kill lands while appending.
        let lines = child.lines_until(Instant::now() + Duration::from_secs(60), |l| {
            l.starts_with("ack event ")
        });
        assert!(
            lines.iter().any(|l| l.starts_with("ack event ")),
            "kill {kill}: the child did not start appending: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(5 + rng.below(60) as u64));
        let killed = child.kill_now().expect("kill");
        assert!(
            !killed.exited_on_its_own,
            "kill {kill}: the child exited by itself: {:?}",
            killed.lines.last()
        );
        let mut began = None;
        for line in &killed.lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["run", id] => began = Some(id.parse::<u64>().expect("id")),
                ["ack", "event", run, seq, hash] => {
                    events
                        .entry(run.parse().expect("run"))
                        .or_default()
                        .insert(seq.parse().expect("seq"), (*hash).to_owned());
                    total_acks += 1;
                }
                ["ack", "cell", run, version] => {
                    let v: u64 = version.parse().expect("version");
                    let e = cells.entry(run.parse().expect("run")).or_default();
                    *e = (*e).max(v);
                    total_acks += 1;
                }
                _ => {}
            }
        }
        let began = began.expect("run line");
        let (agent, orphaned) = open(dir.path());
        assert_eq!(
            orphaned,
            vec![RunId::from_u64(began)],
            "kill {kill}: exactly the killed child's run is orphaned"
        );
        for info in agent.list_runs().expect("list") {
            let run = info.id;
            let chain = agent.verify_chain(run).expect("verify");
            assert!(
                chain.is_intact(),
                "kill {kill}: chain of run {run} broken at {:?}",
                chain.first_bad
            );
            let stored = agent.read_all(run).expect("read");
            for (i, e) in stored.iter().enumerate() {
                assert_eq!(e.seq, i as u64, "dense sequences");
            }
            for (seq, hash) in events.get(&run.get()).into_iter().flatten() {
                let got = stored
                    .get(usize::try_from(*seq).expect("small"))
                    .unwrap_or_else(|| {
                        panic!("kill {kill}: acknowledged event {seq} of run {run} lost")
                    });
                assert_eq!(
                    &hex(&got.hash),
                    hash,
                    "kill {kill}: event {seq} of run {run} changed"
                );
            }
            if let Some(&v) = cells.get(&run.get()) {
                let cell = agent
                    .cell_read(run, "count")
                    .expect("cell")
                    .expect("cell exists");
                assert!(
                    cell.version >= v,
                    "kill {kill}: cell of run {run} at {} < acknowledged {v}",
                    cell.version
                );
            }
            assert_eq!(
                agent.replay_run(run, At::End).expect("replay"),
                agent.head_state(run).expect("head")
            );
        }
        agent.db().close().expect("close");
    }
    assert!(total_acks > 0, "the children acknowledged nothing");
    assert_eq!(events.len(), KILLS);
}
