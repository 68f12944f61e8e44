//! Kill -9 with the write-ahead log on (Strict): a child process (this test binary, re-run in
//! the `memtable_kill9_child` role) inserts and deletes records through a repository over an
//! on-disk Cairn database, printing a line after each acknowledged write, while small
//! memtables rotate and flush. The parent kills it with `SIGKILL` at a seeded moment, reopens
//! the repository (which replays the log) and checks that every acknowledged insert is there
//! with its content and indexes, and every acknowledged delete is gone. The directory is
//! reused across kills, so recovery also runs on what earlier recoveries left.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![allow(
    clippy::too_many_lines,
    reason = "a kill loop reads best as one function"
)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_memtable::{DbPersister, Options, Repository, WalOptions, WalSync};
use cairn_testkit::crash::{self_exe_child, ChildRun};
use cairn_testkit::{SplitMix64, TempDir};
use common::{ids, item, test_options, Item};

const CHILD_DIR_ENV: &str = "CAIRN_MEMTABLE_KILL9_DIR";
const CHILD_RUN_ENV: &str = "CAIRN_MEMTABLE_KILL9_RUN";
const CHILD_TEST_NAME: &str = "memtable_kill9_child";
const KILLS: u64 = 6;
const SEED: u64 = 0x6d74_6b69_6c6c;
/// The child stops by itself after this long (only reached when the parent died).
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(60);

fn repo_options(dir: &Path) -> Options {
    let mut options = test_options();
    options.rotate_bytes = 8 * 1024;
    options.rotate_after = Some(Duration::from_millis(5));
    options.wal = Some(WalOptions {
        segment_bytes: 16 * 1024,
        ..WalOptions::new(dir.join("wal"), WalSync::Strict)
    });
    options
}

fn open_repo(dir: &Path) -> (cairn::Db, Repository<Item>) {
    let db =
        cairn::Db::open(cairn::Options::new(dir.join("db")).durability(cairn::Durability::Strict))
            .expect("open the database");
    let persister = Arc::new(DbPersister::new(db.clone(), Vec::new()));
    let repo = Repository::open(persister, repo_options(dir)).expect("open the repository");
    (db, repo)
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("write a protocol line");
    out.flush().expect("flush a protocol line");
}

/// The child role: a no-op unless [`CHILD_DIR_ENV`] is set.
#[test]
fn memtable_kill9_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let run: u64 = std::env::var(CHILD_RUN_ENV)
        .expect("the parent sets the run")
        .parse()
        .expect("a run number");
    let started = Instant::now();
    let (_db, repo) = open_repo(Path::new(&dir));
    emit("ready");
    let mut rng = SplitMix64::new(SEED ^ run);
    let mut mine = Vec::new();
    for seq in 0_u64.. {
        if started.elapsed() > CHILD_LIFETIME_MAX {
            return;
        }
        if seq % 7 == 6 && !mine.is_empty() {
            let victim = mine.swap_remove(rng.below(mine.len()));
            emit(&format!("try-del {victim}"));
            repo.delete(&victim).expect("delete");
            emit(&format!("del {victim}"));
        } else {
            let id = run * 1_000_000 + seq;
            emit(&format!("try-ins {id}"));
            repo.insert(item(
                id,
                &format!("r{run}s{seq}"),
                u32::try_from(run).expect("small"),
            ))
            .expect("insert");
            emit(&format!("ins {id}"));
            mine.push(id);
        }
    }
}

#[test]
fn acknowledged_writes_survive_kill9_with_the_wal() {
    let dir = TempDir::new("memtable-kill9");
    let mut rng = SplitMix64::new(SEED);
    let mut present: BTreeSet<u64> = BTreeSet::new();
    let mut deleted: BTreeSet<u64> = BTreeSet::new();
    for run in 1..=KILLS {
        let command = self_exe_child(
            CHILD_TEST_NAME,
            &[
                (CHILD_DIR_ENV, dir.path().display().to_string()),
                (CHILD_RUN_ENV, run.to_string()),
            ],
        )
        .expect("the child command");
        let mut child = ChildRun::spawn(command).expect("spawn the child");
        let ready = child.lines_until(Instant::now() + Duration::from_secs(30), |line| {
            line == "ready"
        });
        assert_eq!(
            ready.last().map(String::as_str),
            Some("ready"),
            "run {run}: child ready"
        );
        let after = Duration::from_millis(50 + rng.next_u64() % 300);
        child.lines_until(Instant::now() + after, |_| false);
        let killed = child.kill_now().expect("kill the child");
        assert!(
            !killed.exited_on_its_own,
            "run {run}: the child was killed, not finished"
        );
        let mut in_flight = None;
        let mut acked = 0;
        for line in &killed.lines {
            let Some((what, id)) = line.split_once(' ') else {
                continue;
            };
            let Ok(id) = id.parse::<u64>() else {
                continue;
            };
            match what {
                "try-ins" | "try-del" => in_flight = Some(id),
                "ins" => {
                    present.insert(id);
                    in_flight = None;
                    acked += 1;
                }
                "del" => {
                    present.remove(&id);
                    deleted.insert(id);
                    in_flight = None;
                    acked += 1;
                }
                _ => {}
            }
        }
        assert!(
            acked > 0,
            "run {run}: the child acknowledged writes before the kill"
        );
        let (db, repo) = open_repo(dir.path());
        for &id in &present {
            if Some(id) == in_flight {
                continue;
            }
            let record = repo.get(&id).expect("get");
            let run_of = id / 1_000_000;
            assert_eq!(
                record.map(|r| (r.id, r.email.clone(), r.team)),
                Some((
                    id,
                    format!("r{run_of}s{}", id % 1_000_000),
                    u32::try_from(run_of).expect("small")
                )),
                "run {run}: acknowledged insert {id} survived"
            );
        }
        for &id in &deleted {
            if Some(id) != in_flight {
                assert_eq!(
                    repo.get(&id).expect("get"),
                    None,
                    "run {run}: acknowledged delete {id}"
                );
            }
        }
        // Index queries agree after recovery.
        let team: BTreeSet<u64> = ids(&repo
            .by_index("team", u32::try_from(run).expect("small"))
            .expect("by_index"))
        .into_iter()
        .collect();
        let expected: BTreeSet<u64> = present
            .iter()
            .copied()
            .filter(|id| id / 1_000_000 == run && Some(*id) != in_flight)
            .collect();
        assert!(
            expected.is_subset(&team),
            "run {run}: the team index holds every survivor"
        );
        // An in-flight write may or may not have landed: settle the model on what is there.
        if let Some(id) = in_flight {
            if repo.get(&id).expect("get").is_some() {
                present.insert(id);
                deleted.remove(&id);
            } else {
                present.remove(&id);
                deleted.insert(id);
            }
        }
        // Half the runs close cleanly (flushing everything), half leave the log to replay.
        if run % 2 == 0 {
            repo.close().expect("close");
        } else {
            drop(repo);
        }
        db.close().expect("close the database");
    }
}
