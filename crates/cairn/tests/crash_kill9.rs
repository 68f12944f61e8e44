//! Crash and fault matrix, kill -9 loop: a child process (this test binary, re-run in the
//! `kill9_child` role) commits into one data directory and reports every acknowledgement on
//! stdout; the parent kills it with `SIGKILL` at a seeded moment (during recovery, during a
//! checkpoint, or while committing), reopens the directory itself and checks what survived.
//! The directory is reused across all kills, so it grows to thousands of keys and every
//! recovery loads a snapshot of megabytes and replays the WAL written since.
//!
//! The workload is a pure function of the commit number `i` (1, 2, 3, ...): commit `i` writes
//! key `k{i:010}` with a value derived from `i`, and every third commit is a batch that also
//! writes `m{i:010}`. The child continues from the highest commit it finds, with one writer
//! thread, so the acknowledgements arrive in commit order.
//!
//! Pass, after every kill: the database holds exactly commits `1..=m` for some `m` (no gaps,
//! every value right, every batch whole or absent, no other key) and its version is `m`;
//! nothing that was durable before the child started is lost; at most the one commit in flight
//! at the kill is present beyond the last acknowledgement; old snapshot files are not leaked
//! (the newest two are kept). Strict additionally: every
//! acknowledged commit is present (zero lost acknowledged commits). The loop also asserts that
//! enough kills landed in recovery and in checkpoints, judged from what the child had printed,
//! not from what was planned. `CAIRN_SOAK=1` runs ten times as many kills.
//!
//! Trade-off: kill timing depends on the machine, so a run is reproducible in its plan (the
//! seed) but not in the exact instruction each kill lands on; the phase counts show whether
//! the interesting moments were hit.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn::{Db, Durability, Options, WriteBatch};
use cairn_testkit::crash::{self_exe_child, ChildRun, KilledChild};
use cairn_testkit::SplitMix64;

/// Snapshot files a completed checkpoint leaves on disk: the newest two are kept, so that a
/// damaged newest one can fall back to the older.
const SNAPSHOT_FILES_KEPT: usize = 2;

/// The environment variable that turns [`kill9_child`] into a child: the data directory.
const CHILD_DIR_ENV: &str = "CAIRN_KILL9_CHILD_DIR";

/// The environment variable carrying the child's durability mode ([`Mode::env_name`]).
const CHILD_MODE_ENV: &str = "CAIRN_KILL9_CHILD_MODE";

/// Set (to any value) to make the child run the test-only broken build that deletes WAL
/// segments before the new snapshot is durable; read only with the `sabotage` feature.
#[cfg(feature = "sabotage")]
const CHILD_SABOTAGE_ENV: &str = "CAIRN_KILL9_CHILD_SABOTAGE";

/// The prefix of the line a child prints when an engine call fails, before it panics.
const CHILD_ERROR_PREFIX: &str = "child error: ";

/// The child role's test name, as `self_exe_child` selects it.
const CHILD_TEST_NAME: &str = "kill9_child";

/// The seed of every kill plan; printed in every failure message.
const SEED: u64 = 0x6b69_6c6c_2d39_0001;

/// Kills in the Strict loop of a normal run.
const STRICT_KILLS: usize = 300;

/// Kills in the Buffered loop of a normal run.
const BUFFERED_KILLS: usize = 60;

/// How many times more kills a soak run (`CAIRN_SOAK=1`) does.
const SOAK_FACTOR: usize = 10;

/// The least number of kills that must land while the child was still recovering (it had not
/// printed `ready`), per 300 Strict kills.
const RECOVERY_KILLS_MIN: usize = 30;

/// The least number of kills that must land inside a checkpoint (`checkpoint begin` printed,
/// `checkpoint end` not), per 300 Strict kills.
const CHECKPOINT_KILLS_MIN: usize = 30;

/// The least number of commits the Strict loop must leave in the directory: proof that it did
/// real work (several snapshots' worth), with room for a slow disk.
const STRICT_COMMITS_MIN: u64 = 500;

/// The same for the Buffered loop, whose commits do not wait for the disk.
const BUFFERED_COMMITS_MIN: u64 = 1_000;

/// In Strict, the child checkpoints before every commit whose number is a multiple of this.
const STRICT_CHECKPOINT_EVERY_COMMITS: u64 = 40;

/// The same for Buffered. A Buffered commit does not wait for an fsync, so it is far faster
/// than a Strict one; with 40 commits per checkpoint the child would spend nearly all its time
/// in checkpoints and almost no kill would land between commits.
const BUFFERED_CHECKPOINT_EVERY_COMMITS: u64 = 1_000;

/// Every third commit is a batch of two keys (see [`is_batch`]).
const BATCH_EVERY_COMMITS: u64 = 3;

/// Values are padded with 0 up to (excluding) this many filler bytes, varying with the
/// commit number, so WAL records and snapshot entries vary in size.
const VALUE_PAD_BYTES_MAX: usize = 2_000;

/// The filler the padding is cut from.
const VALUE_FILLER: [u8; VALUE_PAD_BYTES_MAX] = [b'~'; VALUE_PAD_BYTES_MAX];

/// Percentage of kills planned during recovery (before `ready`).
const PLAN_RECOVERY_PERCENT: usize = 20;

/// Percentage of kills planned during a checkpoint; the rest are at a random moment.
const PLAN_CHECKPOINT_PERCENT: usize = 20;

/// A recovery kill lands this long (random, below the bound) after the spawn, in µs.
const RECOVERY_KILL_AFTER_MICROS_MAX: usize = 10_000;

/// A checkpoint kill lands this long (random, below the bound) after `checkpoint begin` is
/// read, in µs; half of them land at once.
const CHECKPOINT_KILL_AFTER_MICROS_MAX: usize = 2_000;

/// A random kill lands at least this long after `ready`, in µs.
const RANDOM_KILL_AFTER_MICROS_MIN: usize = 1_000;

/// A random kill lands below this long after `ready`, in µs.
const RANDOM_KILL_AFTER_MICROS_MAX: usize = 40_000;

/// How long the parent waits for a line it needs (`ready`, `checkpoint begin`) before it calls
/// the child stuck: generous for a loaded machine, short enough to fail a hang.
const CHILD_PATIENCE: Duration = Duration::from_secs(30);

/// The child gives up after this long: it is only reached when the parent died without
/// killing it, and must not fill the disk.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(120);

/// Held while a parent thread has a database open and while a child is being spawned. The two
/// loops run on two threads of one process: a child forked by one loop while the other loop's
/// parent holds its directory lock gets a copy of the lock's file descriptor, and `flock`
/// belongs to the open file, so the lock outlives the parent's close until that child execs
/// (which drops close-on-exec descriptors). Under load that window reached the next child's
/// open, which then failed with `Locked`. `Command::spawn` returns only after the exec, so
/// holding this lock across it closes the window.
static OPEN_OR_SPAWN: Mutex<()> = Mutex::new(());

/// The durability mode the child commits in. The parent always reopens in Strict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Strict,
    Buffered,
}

impl Mode {
    fn env_name(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Buffered => "buffered",
        }
    }

    fn from_env_name(name: &str) -> Option<Mode> {
        [Mode::Strict, Mode::Buffered]
            .into_iter()
            .find(|mode| mode.env_name() == name)
    }

    fn checkpoint_every_commits(self) -> u64 {
        match self {
            Mode::Strict => STRICT_CHECKPOINT_EVERY_COMMITS,
            Mode::Buffered => BUFFERED_CHECKPOINT_EVERY_COMMITS,
        }
    }

    fn durability(self) -> Durability {
        match self {
            Mode::Strict => Durability::Strict,
            Mode::Buffered => Durability::buffered(),
        }
    }
}

/// The engine settings of child and parent: small WAL segments and frequent automatic
/// checkpoints, so that segment rotation, checkpoints and WAL deletion all happen often.
fn options(dir: &Path, durability: Durability) -> Options {
    Options::new(dir)
        .durability(durability)
        .wal_segment_bytes(64 * 1024)
        .checkpoint_wal_bytes(1 << 20)
        .maintenance_interval(Duration::from_millis(5))
}

/// The child's settings: [`options`] in the child's mode, plus the broken build when the
/// parent asks for it.
fn child_options(dir: &Path, mode: Mode) -> Options {
    let options = options(dir, mode.durability());
    #[cfg(feature = "sabotage")]
    if std::env::var_os(CHILD_SABOTAGE_ENV).is_some() {
        return options.sabotage(cairn_log::Sabotage::WalDeletedBeforeSnapshotDurable);
    }
    options
}

// ----- the workload: a pure function of the commit number ------------------------------------

fn commit_key(commit: u64) -> String {
    format!("k{commit:010}")
}

fn batch_key(commit: u64) -> String {
    format!("m{commit:010}")
}

fn is_batch(commit: u64) -> bool {
    commit.is_multiple_of(BATCH_EVERY_COMMITS)
}

/// The value of `k{commit}`: the commit number, then 0..2000 filler bytes (multiplying by a
/// prime spreads the sizes over the whole range).
fn commit_value(commit: u64) -> Vec<u8> {
    let pad_bytes = usize::try_from(commit.wrapping_mul(7_919) % VALUE_PAD_BYTES_MAX as u64)
        .expect("below VALUE_PAD_BYTES_MAX, which fits a usize");
    let mut value = format!("value-{commit}:").into_bytes();
    value.extend_from_slice(&VALUE_FILLER[..pad_bytes]);
    value
}

/// The value of `m{commit}` for a batch commit.
fn batch_value(commit: u64) -> Vec<u8> {
    format!("batch-{commit}").into_bytes()
}

/// The commit number of a `k` key, or `None` for any other key.
fn parse_commit_key(key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key.strip_prefix(b"k")?)
        .ok()?
        .parse()
        .ok()
}

/// Prints one protocol line and flushes it, so it reaches the pipe in one write before the
/// next step begins.
fn emit(out: &mut impl Write, line: fmt::Arguments<'_>) {
    writeln!(out, "{line}").expect("write a protocol line (the parent is gone?)");
    out.flush()
        .expect("flush a protocol line (the parent is gone?)");
}

// ----- the child role ------------------------------------------------------------------------

/// The child role: a no-op unless [`CHILD_DIR_ENV`] is set. Opens the database, prints
/// `ready <version>`, then commits forever from the highest commit present, printing
/// `ack <i>` after each commit returns Ok and `checkpoint begin` / `checkpoint end` around a
/// checkpoint every [`Mode::checkpoint_every_commits`] commits.
#[test]
fn kill9_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let mode_name = std::env::var(CHILD_MODE_ENV).expect("the parent sets the mode");
    let mode = Mode::from_env_name(&mode_name).expect("the parent passes a known mode");
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    let db = Db::open(child_options(Path::new(&dir), mode))
        .unwrap_or_else(|error| child_failed(&mut out, "open", &error));
    emit(&mut out, format_args!("ready {}", db.version().get()));

    let highest = db
        .scan_prefix("k")
        .expect("scan of an open database")
        .next_back()
        .map_or(0, |(key, _)| {
            parse_commit_key(key.as_bytes()).expect("child: every k key holds a commit number")
        });
    let mut batch = WriteBatch::new();
    for commit in highest + 1.. {
        assert!(
            started.elapsed() < CHILD_LIFETIME_MAX,
            "child: not killed within {CHILD_LIFETIME_MAX:?}; the parent is gone"
        );
        if commit.is_multiple_of(mode.checkpoint_every_commits()) {
            emit(&mut out, format_args!("checkpoint begin"));
            if let Err(error) = db.checkpoint() {
                child_failed(&mut out, "checkpoint", &error);
            }
            emit(&mut out, format_args!("checkpoint end"));
        }
        let committed = if is_batch(commit) {
            batch.clear();
            batch.put(commit_key(commit), commit_value(commit));
            batch.put(batch_key(commit), batch_value(commit));
            db.write(&batch)
        } else {
            db.put(commit_key(commit), commit_value(commit))
        };
        if let Err(error) = committed {
            child_failed(&mut out, &format!("commit {commit}"), &error);
        }
        emit(&mut out, format_args!("ack {commit}"));
    }
}

/// Reports a failed engine call on stdout (so the parent can quote it) and ends the child.
fn child_failed(out: &mut impl Write, step: &str, error: &cairn::Error) -> ! {
    emit(out, format_args!("{CHILD_ERROR_PREFIX}{step}: {error}"));
    panic!("child: {step} failed: {error}");
}

// ----- the parent ----------------------------------------------------------------------------

/// When the parent plans to kill the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillPlan {
    /// This long after the spawn, or as soon as `ready` arrives if that is sooner.
    DuringRecovery { after_spawn: Duration },
    /// This long after a `checkpoint begin` line arrived.
    DuringCheckpoint { after_begin: Duration },
    /// This long after `ready` arrived.
    WhileCommitting { after_ready: Duration },
}

/// Where the kill actually landed, judged from the lines the child completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No `ready` line: the child was starting or recovering.
    Recovery,
    /// The last checkpoint line is `checkpoint begin`.
    Checkpoint,
    /// Anything else: between or inside commits.
    Committing,
}

fn micros(rng: &mut SplitMix64, below: usize) -> Duration {
    Duration::from_micros(u64::try_from(rng.below(below)).expect("a usize fits a u64"))
}

fn plan_kill(rng: &mut SplitMix64) -> KillPlan {
    let roll = rng.below(100);
    if roll < PLAN_RECOVERY_PERCENT {
        KillPlan::DuringRecovery {
            after_spawn: micros(rng, RECOVERY_KILL_AFTER_MICROS_MAX),
        }
    } else if roll < PLAN_RECOVERY_PERCENT + PLAN_CHECKPOINT_PERCENT {
        let after_begin = if rng.below(2) == 0 {
            Duration::ZERO
        } else {
            micros(rng, CHECKPOINT_KILL_AFTER_MICROS_MAX)
        };
        KillPlan::DuringCheckpoint { after_begin }
    } else {
        let spread = micros(
            rng,
            RANDOM_KILL_AFTER_MICROS_MAX - RANDOM_KILL_AFTER_MICROS_MIN,
        );
        KillPlan::WhileCommitting {
            after_ready: Duration::from_micros(
                u64::try_from(RANDOM_KILL_AFTER_MICROS_MIN).expect("a usize fits a u64"),
            ) + spread,
        }
    }
}

fn is_ready(line: &str) -> bool {
    line.starts_with("ready ")
}

fn observed_phase(lines: &[String]) -> Phase {
    if !lines.iter().any(|line| is_ready(line)) {
        return Phase::Recovery;
    }
    let last_checkpoint_line = lines
        .iter()
        .rev()
        .find(|line| *line == "checkpoint begin" || *line == "checkpoint end");
    if last_checkpoint_line.is_some_and(|line| line == "checkpoint begin") {
        Phase::Checkpoint
    } else {
        Phase::Committing
    }
}

/// The protocol lines of one killed child, parsed.
#[derive(Debug)]
struct ChildReport {
    ready_version: Option<u64>,
    acks: Vec<u64>,
}

fn parse_child_lines(lines: &[String]) -> Result<ChildReport, String> {
    let mut report = ChildReport {
        ready_version: None,
        acks: Vec::new(),
    };
    for line in lines {
        if let Some(version) = line.strip_prefix("ready ") {
            let version = version
                .parse()
                .map_err(|_| format!("unreadable line {line:?}"))?;
            report.ready_version = Some(version);
        } else if let Some(commit) = line.strip_prefix("ack ") {
            let commit = commit
                .parse()
                .map_err(|_| format!("unreadable line {line:?}"))?;
            report.acks.push(commit);
        }
    }
    Ok(report)
}

/// What the parent found after one kill.
#[derive(Debug)]
struct Recovered {
    /// The highest commit present: the database holds exactly commits `1..=m`.
    commits: u64,
    recovery: Duration,
    snapshot_loaded: bool,
    wal_records_replayed: u64,
    torn_tail: bool,
}

/// Reopens the directory (Strict) and checks it against what the child reported. Returns
/// `Err(what is wrong)`.
fn check_recovered(
    dir: &Path,
    mode: Mode,
    before: u64,
    report: &ChildReport,
) -> Result<Recovered, String> {
    // Held until the handle is dropped: no child may be forked while the lock file is open.
    let _no_spawn = OPEN_OR_SPAWN.lock().unwrap_or_else(PoisonError::into_inner);
    let db = Db::open(options(dir, Durability::Strict))
        .map_err(|error| format!("the parent's reopen failed: {error}"))?;
    let outcome = check_open_db(&db, mode, before, report);
    let closed = db.close();
    drop(db);
    let recovered = outcome?;
    closed.map_err(|error| format!("closing the parent's handle failed: {error}"))?;
    Ok(recovered)
}

/// Counts the snapshot files in `dir` and checks that old ones are not leaked. A checkpoint
/// installs its snapshot and only then removes the oldest, so one interrupted checkpoint can
/// leave one file more than [`SNAPSHOT_FILES_KEPT`]. Hence: a child that completed a checkpoint
/// leaves at most `SNAPSHOT_FILES_KEPT + 1`; one that did not leaves at most one more than
/// were there before it ran. Returns the count.
fn check_snapshot_files(
    dir: &Path,
    completed_checkpoint: bool,
    files_before: usize,
) -> Result<usize, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|error| format!("cannot list the directory: {error}"))?;
    let mut snapshots = Vec::new();
    for entry in entries {
        let name = entry
            .map_err(|error| format!("cannot list the directory: {error}"))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if Path::new(&name)
            .extension()
            .is_some_and(|extension| extension == "snap")
        {
            snapshots.push(name);
        }
    }
    let (files_max, why) = if completed_checkpoint {
        (
            SNAPSHOT_FILES_KEPT + 1,
            "the child completed a checkpoint, which keeps the newest two, and at most one more \
             checkpoint was cut short",
        )
    } else {
        (
            files_before + 1,
            "the child completed no checkpoint, and a cut-short one adds at most one",
        )
    };
    if snapshots.len() > files_max {
        snapshots.sort();
        return Err(format!(
            "snapshots leaked: {} snapshot files on disk, at most {files_max} may be ({why}): \
             {snapshots:?}",
            snapshots.len()
        ));
    }
    Ok(snapshots.len())
}

fn check_open_db(
    db: &Db,
    mode: Mode,
    before: u64,
    report: &ChildReport,
) -> Result<Recovered, String> {
    let highest_acked = report.acks.last().copied();
    // 1. Strict: every acknowledged commit is present with its value.
    if mode == Mode::Strict {
        check_acknowledged_present(db, &report.acks)?;
    }
    // 2. The state is the one after a prefix of the commit order, and nothing else.
    let commits = check_prefix_of_commit_order(db)?;

    // Every commit of this workload is one version, so the version counts the commits.
    let version = db.version().get();
    if version != commits {
        return Err(format!(
            "the database is at version {version} but holds commits 1..={commits}"
        ));
    }
    // Nothing durable before the child started may be lost, in either mode.
    if commits < before {
        return Err(format!(
            "commits {}..={before} lost: they were durable before the child started",
            commits + 1
        ));
    }
    // 3. Strict: nothing acknowledged is lost.
    if mode == Mode::Strict && highest_acked.is_some_and(|acked| commits < acked) {
        return Err(format!(
            "acknowledged commits lost: recovered through {commits}, acknowledged through \
             {highest_acked:?}"
        ));
    }
    // One writer: a commit starts only after the previous ack was printed, so at most the
    // one in flight at the kill can be present beyond the last acknowledgement.
    let last_known = highest_acked.unwrap_or(before).max(before);
    if commits > last_known + 1 {
        return Err(format!(
            "recovered through {commits}, but only commits through {last_known} were \
             acknowledged and one more can have been in flight"
        ));
    }
    let recovery_report = db.recovery_report();
    Ok(Recovered {
        commits,
        recovery: recovery_report.duration,
        snapshot_loaded: recovery_report.snapshot.is_some(),
        wal_records_replayed: recovery_report.wal_records_replayed,
        torn_tail: recovery_report.torn_tail.is_some(),
    })
}

/// Every acknowledged commit's `k` key holds its value.
fn check_acknowledged_present(db: &Db, acks: &[u64]) -> Result<(), String> {
    for &commit in acks {
        let key = commit_key(commit);
        let found = db
            .get(&key)
            .map_err(|error| format!("get {key} failed: {error}"))?;
        match found {
            Some(value) if value.as_bytes() == commit_value(commit).as_slice() => {}
            Some(value) => {
                return Err(format!(
                    "acknowledged commit {commit}: {key} holds a wrong value of {} bytes \
                     ({:?}...)",
                    value.len(),
                    String::from_utf8_lossy(value.get(..24).unwrap_or(value.as_bytes()))
                ));
            }
            None => {
                return Err(format!(
                    "acknowledged commit {commit} lost: {key} is absent (acknowledged {:?}..={:?} \
                     in this run)",
                    acks.first(),
                    acks.last()
                ));
            }
        }
    }
    Ok(())
}

/// Checks that the database holds exactly commits `1..=m` for some `m` (no gap, right
/// values, every batch whole, no other key) and returns `m`.
fn check_prefix_of_commit_order(db: &Db) -> Result<u64, String> {
    let mut commits = 0_u64;
    for (key, value) in db.scan_prefix("k").expect("scan of an open database") {
        let expected = commit_key(commits + 1);
        if key.as_bytes() != expected.as_bytes() {
            return Err(format!(
                "not a prefix of the commit order: found {} where {expected} was expected \
                 (commits 1..={commits} present)",
                String::from_utf8_lossy(key.as_bytes())
            ));
        }
        commits += 1;
        if value.as_bytes() != commit_value(commits).as_slice() {
            return Err(format!(
                "{expected} holds a wrong value of {} bytes",
                value.len()
            ));
        }
    }

    let mut batch_commits = (1..=commits).filter(|&commit| is_batch(commit));
    let mut batch_keys = 0_usize;
    for (key, value) in db.scan_prefix("m").expect("scan of an open database") {
        let Some(commit) = batch_commits.next() else {
            return Err(format!(
                "half a batch: {} is present but no batch commit after {commits} is \
                 (commits 1..={commits} present)",
                String::from_utf8_lossy(key.as_bytes())
            ));
        };
        let expected = batch_key(commit);
        if key.as_bytes() != expected.as_bytes() {
            return Err(format!(
                "half a batch: found {} where {expected} was expected (commits 1..={commits} \
                 present)",
                String::from_utf8_lossy(key.as_bytes())
            ));
        }
        if value.as_bytes() != batch_value(commit).as_slice() {
            return Err(format!("{expected} holds a wrong value"));
        }
        batch_keys += 1;
    }
    if let Some(missing) = batch_commits.next() {
        return Err(format!(
            "half a batch: commit {missing} is present but {} is not (commits 1..={commits} \
             present)",
            batch_key(missing)
        ));
    }

    let commit_keys = usize::try_from(commits).expect("a key count fits a usize");
    let all_keys = db
        .range::<&[u8]>(..)
        .map_err(|error| format!("scan failed: {error}"))?;
    let mut other_keys =
        all_keys.filter(|(key, _)| !matches!(key.as_bytes().first(), Some(b'k' | b'm')));
    if let Some((key, _)) = other_keys.next() {
        return Err(format!(
            "unexpected key {} in the database (with {commit_keys} k keys and {batch_keys} m \
             keys)",
            String::from_utf8_lossy(key.as_bytes())
        ));
    }
    Ok(commits)
}

/// A data directory under the system temp dir, unique to this process and loop. Removed on
/// drop, except when the test is failing, so the damage can be inspected.
struct DataDir {
    path: PathBuf,
    /// Set when a failure is reported: the directory stays for inspection.
    keep: bool,
}

impl DataDir {
    fn new(label: &str) -> DataDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "cairn-kill9-{label}-{}-{nanos}",
            std::process::id()
        ));
        DataDir { path, keep: false }
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if !self.keep && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// What one loop did.
#[derive(Debug, Default)]
struct Summary {
    kills: usize,
    recovery_kills: usize,
    checkpoint_kills: usize,
    committing_kills: usize,
    acks: u64,
    max_acked: u64,
    commits: u64,
    recovery_max: Duration,
    wal_records_replayed_max: u64,
    snapshot_loads: usize,
    torn_tails: usize,
}

/// One kill -9 loop over one directory: `kills` iterations of spawn, kill, reopen, check.
struct KillLoop {
    mode: Mode,
    dir: DataDir,
    rng: SplitMix64,
    /// Commits present after the previous iteration's check (durable before the next child).
    commits: u64,
    /// Snapshot files on disk after the previous iteration's check.
    snapshot_files: usize,
    summary: Summary,
    /// The child runs the test-only broken build (see [`CHILD_SABOTAGE_ENV`]).
    #[cfg(feature = "sabotage")]
    sabotaged: bool,
}

impl KillLoop {
    fn new(mode: Mode) -> KillLoop {
        KillLoop {
            mode,
            dir: DataDir::new(mode.env_name()),
            rng: SplitMix64::new(SEED ^ u64::from(mode == Mode::Buffered)),
            commits: 0,
            snapshot_files: 0,
            summary: Summary::default(),
            #[cfg(feature = "sabotage")]
            sabotaged: false,
        }
    }

    /// Runs `kills` iterations; panics with the failure (keeping the directory) on the first
    /// one that fails its checks.
    fn run(mut self, kills: usize) -> Summary {
        if let Err(failure) = self.try_run(kills) {
            self.dir.keep = true;
            panic!("{failure}");
        }
        self.summary
    }

    /// Runs `kills` iterations and prints the summary, or stops at the first failure and
    /// returns it: the seed, the iteration, the planned kill, where it landed and what is
    /// wrong.
    fn try_run(&mut self, kills: usize) -> Result<(), String> {
        let started = Instant::now();
        for iteration in 0..kills {
            let plan = plan_kill(&mut self.rng);
            if let Err((phase, what)) = self.iteration(plan) {
                return Err(format!(
                    "kill -9 loop ({mode:?}) failed: seed {SEED:#x}, iteration {iteration}, \
                     kill planned {plan:?}, landed {phase}, directory {dir}: {what}",
                    mode = self.mode,
                    phase =
                        phase.map_or_else(|| "unknown".to_owned(), |phase| format!("{phase:?}")),
                    dir = self.dir.path.display(),
                ));
            }
        }
        let summary = &self.summary;
        eprintln!(
            "kill -9 loop ({:?}): {} kills (recovery {}, checkpoint {}, committing {}), {} acks, \
             max acked {}, {} commits present, recovery max {:?} (WAL records replayed max {}, \
             snapshot loaded {} times, torn tail repaired {} times), {:?} in all",
            self.mode,
            summary.kills,
            summary.recovery_kills,
            summary.checkpoint_kills,
            summary.committing_kills,
            summary.acks,
            summary.max_acked,
            summary.commits,
            summary.recovery_max,
            summary.wal_records_replayed_max,
            summary.snapshot_loads,
            summary.torn_tails,
            started.elapsed(),
        );
        Ok(())
    }

    /// Spawns a child, kills it as `plan` says, and checks the directory. On failure returns
    /// the phase the kill landed in (when known) and what is wrong.
    fn iteration(&mut self, plan: KillPlan) -> Result<(), (Option<Phase>, String)> {
        let killed = self.spawn_and_kill(plan).map_err(|what| (None, what))?;
        let phase = observed_phase(&killed.lines);
        self.check(&killed).map_err(|what| (Some(phase), what))?;
        self.summary.kills += 1;
        match phase {
            Phase::Recovery => self.summary.recovery_kills += 1,
            Phase::Checkpoint => self.summary.checkpoint_kills += 1,
            Phase::Committing => self.summary.committing_kills += 1,
        }
        Ok(())
    }

    fn spawn_and_kill(&self, plan: KillPlan) -> Result<KilledChild, String> {
        let dir = self.dir.path.to_string_lossy().into_owned();
        #[cfg_attr(
            not(feature = "sabotage"),
            expect(unused_mut, reason = "used with sabotage")
        )]
        let mut env = vec![
            (CHILD_DIR_ENV, dir),
            (CHILD_MODE_ENV, self.mode.env_name().to_owned()),
        ];
        #[cfg(feature = "sabotage")]
        if self.sabotaged {
            env.push((CHILD_SABOTAGE_ENV, "1".to_owned()));
        }
        let command = self_exe_child(CHILD_TEST_NAME, &env)
            .map_err(|error| format!("cannot build the child command: {error}"))?;
        let spawned_at = Instant::now();
        let spawned = {
            let _no_open = OPEN_OR_SPAWN.lock().unwrap_or_else(PoisonError::into_inner);
            ChildRun::spawn(command)
        };
        let mut run = spawned.map_err(|error| format!("cannot spawn the child: {error}"))?;
        match plan {
            KillPlan::DuringRecovery { after_spawn } => {
                run.lines_until(spawned_at + after_spawn, is_ready);
            }
            KillPlan::DuringCheckpoint { after_begin } => {
                let lines = run.lines_until(Instant::now() + CHILD_PATIENCE, |line| {
                    line == "checkpoint begin"
                });
                if lines.last().is_none_or(|line| line != "checkpoint begin") {
                    return Err(stuck(run, "checkpoint begin"));
                }
                if !after_begin.is_zero() {
                    std::thread::sleep(after_begin);
                }
            }
            KillPlan::WhileCommitting { after_ready } => {
                let lines = run.lines_until(Instant::now() + CHILD_PATIENCE, is_ready);
                if !lines.last().is_some_and(|line| is_ready(line)) {
                    return Err(stuck(run, "ready"));
                }
                // Keep reading while waiting, so the child never blocks on a full pipe.
                run.lines_until(Instant::now() + after_ready, |_| false);
            }
        }
        let killed = run
            .kill_now()
            .map_err(|error| format!("killing the child failed: {error}"))?;
        if killed.exited_on_its_own {
            return Err(format!(
                "the child ended by itself ({}) instead of being killed: {}",
                killed.status,
                child_last_words(&killed.lines)
            ));
        }
        if !killed.stdout_reached_end {
            return Err("the child's stdout stayed open after the kill".to_owned());
        }
        Ok(killed)
    }

    fn check(&mut self, killed: &KilledChild) -> Result<(), String> {
        let report = parse_child_lines(&killed.lines)?;
        if let Some(version) = report.ready_version {
            if version != self.commits {
                return Err(format!(
                    "the child opened at version {version}, but the parent had closed the \
                     database at version {}",
                    self.commits
                ));
            }
        }
        let expected_acks = self.commits + 1..;
        if let Some((position, (&acked, expected))) = report
            .acks
            .iter()
            .zip(expected_acks)
            .enumerate()
            .find(|(_, (&acked, expected))| acked != *expected)
        {
            return Err(format!(
                "the child's acknowledgement #{position} is {acked}, expected {expected}: \
                 acknowledgements must continue from {} in order",
                self.commits + 1
            ));
        }
        let recovered = check_recovered(&self.dir.path, self.mode, self.commits, &report)?;
        let completed_checkpoint = killed.lines.iter().any(|line| line == "checkpoint end");
        self.snapshot_files =
            check_snapshot_files(&self.dir.path, completed_checkpoint, self.snapshot_files)?;
        let summary = &mut self.summary;
        summary.acks += u64::try_from(report.acks.len()).expect("a count fits a u64");
        if let Some(&acked) = report.acks.last() {
            summary.max_acked = summary.max_acked.max(acked);
        }
        summary.commits = recovered.commits;
        summary.recovery_max = summary.recovery_max.max(recovered.recovery);
        summary.wal_records_replayed_max = summary
            .wal_records_replayed_max
            .max(recovered.wal_records_replayed);
        summary.snapshot_loads += usize::from(recovered.snapshot_loaded);
        summary.torn_tails += usize::from(recovered.torn_tail);
        self.commits = recovered.commits;
        Ok(())
    }
}

/// Kills a child that did not print `waited_for` in time and describes it.
fn stuck(run: ChildRun, waited_for: &str) -> String {
    match run.kill_now() {
        Ok(killed) if killed.exited_on_its_own => format!(
            "the child ended by itself ({}) before printing {waited_for:?}: {}",
            killed.status,
            child_last_words(&killed.lines)
        ),
        Ok(killed) => format!(
            "the child did not print {waited_for:?} within {CHILD_PATIENCE:?}: {}",
            child_last_words(&killed.lines)
        ),
        Err(error) => format!("the child did not print {waited_for:?}; killing it failed: {error}"),
    }
}

/// What a child that ended by itself said: its error line if it printed one, else its last
/// lines.
fn child_last_words(lines: &[String]) -> String {
    match lines
        .iter()
        .find(|line| line.starts_with(CHILD_ERROR_PREFIX))
    {
        Some(error) => error.clone(),
        None => format!(
            "no error line; last lines: {:?}",
            &lines[lines.len().saturating_sub(5)..]
        ),
    }
}

fn soak() -> bool {
    std::env::var_os("CAIRN_SOAK").is_some()
}

#[test]
fn strict_kill9_loop_loses_no_acknowledged_commit() {
    let scale = if soak() { SOAK_FACTOR } else { 1 };
    let kills = STRICT_KILLS * scale;
    let summary = KillLoop::new(Mode::Strict).run(kills);
    assert_eq!(summary.kills, kills, "{summary:?}");
    assert!(
        summary.recovery_kills >= RECOVERY_KILLS_MIN * scale,
        "only {} kills landed during recovery: {summary:?}",
        summary.recovery_kills
    );
    assert!(
        summary.checkpoint_kills >= CHECKPOINT_KILLS_MIN * scale,
        "only {} kills landed during a checkpoint: {summary:?}",
        summary.checkpoint_kills
    );
    // The loop must have done real work: the directory grew and recovery loaded snapshots.
    assert!(summary.max_acked >= STRICT_COMMITS_MIN, "{summary:?}");
    assert!(summary.commits >= summary.max_acked, "{summary:?}");
    assert!(summary.snapshot_loads >= kills / 2, "{summary:?}");
}

#[test]
fn buffered_kill9_loop_recovers_a_prefix_of_the_commit_order() {
    let scale = if soak() { SOAK_FACTOR } else { 1 };
    let kills = BUFFERED_KILLS * scale;
    let summary = KillLoop::new(Mode::Buffered).run(kills);
    assert_eq!(summary.kills, kills, "{summary:?}");
    assert!(summary.commits >= BUFFERED_COMMITS_MIN, "{summary:?}");
    assert!(summary.snapshot_loads >= kills / 2, "{summary:?}");
}

/// A harness that cannot fail proves nothing: with the test-only broken build that deletes WAL
/// segments before the new snapshot is durable, a kill inside a checkpoint leaves a gap between
/// the older snapshot and the remaining WAL, and the loop must report it.
#[cfg(feature = "sabotage")]
#[test]
fn kill9_loop_catches_wal_deleted_before_the_snapshot_is_durable() {
    let mut kill_loop = KillLoop::new(Mode::Strict);
    kill_loop.sabotaged = true;
    let failure = kill_loop
        .try_run(STRICT_KILLS)
        .expect_err("the loop must catch WAL deleted before the snapshot is durable");
    eprintln!("caught as expected: {failure}");
    assert!(failure.contains("landed Checkpoint"), "{failure}");
}
