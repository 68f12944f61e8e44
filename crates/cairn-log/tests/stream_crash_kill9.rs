//! Stream crash matrix, kill -9 loop: a child process (this test binary, re-run in the
//! `stream_kill9_child` role) appends to three streams of one store on the real file system,
//! two producer threads per stream, singles and batches of up to eight messages, and reports
//! every acknowledgement on stdout; the parent kills it with `SIGKILL` at a seeded moment
//! (during recovery or while appending), reopens the store itself in Strict mode and checks
//! what survived. The directory is reused across all kills, so streams grow over many
//! segments and every recovery runs on the tail a kill left.
//!
//! Every message describes itself: stream, run (kill number), producer thread and that
//! thread's sequence number, with a key, headers and padding derived from them. An
//! acknowledgement line gives the stream, the offset range, the thread and the first sequence
//! number, so the parent knows the exact content of every acknowledged offset.
//!
//! Pass, after every kill: offsets are dense from 0 and unique; every message's content is the
//! one its identity derives; messages from before this run are unchanged and nothing durable
//! before the child started is lost; every message past them belongs to this run, and each
//! producer's messages are its sequence 0, 1, 2, ... in offset order with no gap or
//! duplicate; every acknowledged batch lies wholly below or wholly above the recovered end
//! (atomic batches) and, below it, holds exactly what was acknowledged. Strict additionally:
//! every acknowledged message is present, and at most one batch per producer beyond its
//! acknowledgements. Buffered: each stream is a prefix of what was acknowledged (lost
//! acknowledged batches allowed, holes not). `CAIRN_SOAK=1` runs ten times as many kills.
//!
//! Kill timing depends on the machine: a run is reproducible in its plan (the seed), not in
//! the instruction each kill lands on; the phase counts show which moments were hit.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "test offsets index small vectors; a check reads best as one function"
)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cairn_log::stream::StreamError;
use cairn_log::{Message, StdFileSystem, StreamOptions, Streams, SyncPolicy};
use cairn_testkit::crash::{self_exe_child, ChildRun};
use cairn_testkit::{SplitMix64, TempDir};

/// Turns [`stream_kill9_child`] into a child: the store directory.
const CHILD_DIR_ENV: &str = "CAIRN_STREAM_KILL9_DIR";
/// The child's sync mode: `strict` or `buffered`.
const CHILD_MODE_ENV: &str = "CAIRN_STREAM_KILL9_MODE";
/// The child's run number, written into every message it appends.
const CHILD_RUN_ENV: &str = "CAIRN_STREAM_KILL9_RUN";
/// The child role's test name.
const CHILD_TEST_NAME: &str = "stream_kill9_child";
/// The prefix of the line a child prints when a store call fails, before it exits.
const CHILD_ERROR_PREFIX: &str = "child error: ";

/// Streams of the store, and producer threads per stream.
const STREAMS: usize = 3;
const PRODUCERS_PER_STREAM: u64 = 2;
/// Largest batch a producer appends.
const BATCH_MESSAGES_MAX: u64 = 8;
/// Padding of a message value is below this many bytes.
const PAD_BYTES_MAX: u64 = 300;

/// The seed of every kill plan.
const SEED: u64 = 0x7374_7265_616d_0009;
/// Kills per mode in a normal run; `CAIRN_SOAK=1` multiplies by [`SOAK_FACTOR`].
const STRICT_KILLS: usize = 40;
const BUFFERED_KILLS: usize = 20;
const SOAK_FACTOR: usize = 10;
/// Percentage of kills planned during recovery (after `opening`, before `ready`).
const PLAN_RECOVERY_PERCENT: usize = 30;
/// A recovery kill lands below this long after `opening` is read, in µs (half at once).
const RECOVERY_KILL_AFTER_MICROS_MAX: usize = 2_000;
/// An appending kill lands this long after `ready`, in µs.
const APPEND_KILL_AFTER_MICROS: std::ops::Range<usize> = 2_000..40_000;
/// How far below the previous end each check re-reads (everything is re-read at the end).
const VERIFY_BACK_MESSAGES: u64 = 256;
/// How long the parent waits for a line it needs before it calls the child stuck.
const CHILD_PATIENCE: Duration = Duration::from_secs(30);
/// The child gives up after this long (only reached when the parent died).
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(60);

/// Held while a parent has a store open and while a child is spawned: a child forked by one
/// loop's thread inherits the other loop's directory lock until it execs, which could make
/// that loop's next child fail with `Locked`.
static OPEN_OR_SPAWN: Mutex<()> = Mutex::new(());

fn stream_name(stream: usize) -> String {
    format!("s{stream}")
}

/// Who appended a message: run, producer thread, the thread's sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ident {
    run: u64,
    thread: u64,
    seq: u64,
}

/// The message `ident` appends to `stream`.
fn message_for(stream: usize, ident: Ident) -> Message {
    let Ident { run, thread, seq } = ident;
    let pad = usize::try_from((seq * 7_919 + thread * 13 + run) % PAD_BYTES_MAX).expect("small");
    let mut value = format!("s{stream}/r{run}/t{thread}/q{seq}|").into_bytes();
    value.extend(std::iter::repeat_n(b'a' + (seq % 26) as u8, pad));
    let mut message = Message::value(value);
    if seq.is_multiple_of(3) {
        message = message.with_key(format!("t{thread}"));
    }
    if seq.is_multiple_of(4) {
        message = message.with_header("run", run.to_le_bytes().to_vec());
    }
    message
}

/// The identity a message claims (checked against [`message_for`] by the caller).
fn parse_ident(stream: usize, message: &Message) -> Option<Ident> {
    let text = std::str::from_utf8(&message.value).ok()?;
    let head = text.split('|').next()?;
    let rest = head.strip_prefix(&format!("s{stream}/r"))?;
    let (run, rest) = rest.split_once("/t")?;
    let (thread, seq) = rest.split_once("/q")?;
    Some(Ident {
        run: run.parse().ok()?,
        thread: thread.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

/// How many messages the batch starting at `seq` holds (1: a single `append`).
fn batch_len(ident: Ident) -> u64 {
    let mix = ident.seq.wrapping_mul(0x9e37_79b9) ^ ident.thread ^ ident.run.wrapping_mul(31);
    if mix.is_multiple_of(3) {
        1
    } else {
        1 + mix % BATCH_MESSAGES_MAX
    }
}

fn options(sync: SyncPolicy) -> StreamOptions {
    let mut options = StreamOptions::new(sync);
    options.segment_bytes = 64 * 1024;
    options.index_interval_bytes = 4 * 1024;
    options
}

fn open_store(dir: &Path, sync: SyncPolicy) -> Result<Streams, StreamError> {
    Streams::open(Arc::new(StdFileSystem), dir, options(sync))
}

/// Prints one protocol line in one write.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("write a protocol line (the parent is gone?)");
    out.flush().expect("flush a protocol line");
}

fn child_failed(step: &str, error: &StreamError) -> ! {
    emit(&format!("{CHILD_ERROR_PREFIX}{step}: {error}"));
    std::process::exit(1);
}

// ----- the child role ------------------------------------------------------------------------

/// The child role: a no-op unless [`CHILD_DIR_ENV`] is set. Prints `opening`, opens the store,
/// creates the streams that are missing, prints `ready`, then runs the producers, each
/// printing `ack <stream> <start> <end> <thread> <seq>` after an append returned.
#[test]
fn stream_kill9_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let sync = match std::env::var(CHILD_MODE_ENV).as_deref() {
        Ok("strict") => SyncPolicy::Strict,
        Ok("buffered") => SyncPolicy::buffered(),
        other => panic!("child: unknown mode {other:?}"),
    };
    let run: u64 = std::env::var(CHILD_RUN_ENV)
        .expect("the parent sets the run")
        .parse()
        .expect("a run number");
    let started = Instant::now();
    emit("opening");
    let store =
        open_store(Path::new(&dir), sync).unwrap_or_else(|error| child_failed("open", &error));
    for stream in 0..STREAMS {
        match store.create(&stream_name(stream)) {
            Ok(()) | Err(StreamError::AlreadyExists { .. }) => {}
            Err(error) => child_failed("create", &error),
        }
    }
    emit("ready");
    let store = Arc::new(store);
    let mut producers = Vec::new();
    for stream in 0..STREAMS {
        for thread in 0..PRODUCERS_PER_STREAM {
            let store = Arc::clone(&store);
            producers.push(std::thread::spawn(move || {
                let name = stream_name(stream);
                let mut seq = 0;
                while started.elapsed() < CHILD_LIFETIME_MAX {
                    let first = Ident { run, thread, seq };
                    let count = batch_len(first);
                    let range = if count == 1 {
                        store
                            .append(&name, &message_for(stream, first))
                            .map(|offset| offset..offset + 1)
                    } else {
                        let batch: Vec<Message> = (seq..seq + count)
                            .map(|seq| message_for(stream, Ident { run, thread, seq }))
                            .collect();
                        store.append_batch(&name, &batch)
                    };
                    let range = range.unwrap_or_else(|error| child_failed("append", &error));
                    emit(&format!(
                        "ack {stream} {} {} {thread} {seq}",
                        range.start, range.end
                    ));
                    seq += count;
                }
            }));
        }
    }
    for producer in producers {
        let _ = producer.join();
    }
}

// ----- the parent ----------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Strict,
    Buffered,
}

#[derive(Clone, Copy, Debug)]
struct Ack {
    stream: usize,
    start: u64,
    end: u64,
    thread: u64,
    seq: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut fields = line.strip_prefix("ack ")?.split(' ');
    let mut next = || fields.next()?.parse::<u64>().ok();
    Some(Ack {
        stream: usize::try_from(next()?).ok()?,
        start: next()?,
        end: next()?,
        thread: next()?,
        seq: next()?,
    })
}

#[derive(Debug, Default)]
struct Summary {
    kills: usize,
    before_open_kills: usize,
    recovery_kills: usize,
    appending_kills: usize,
    acks: u64,
    acked_messages: u64,
    lost_acked_messages: u64,
    unacked_recovered: u64,
}

struct KillLoop {
    mode: Mode,
    dir: TempDir,
    rng: SplitMix64,
    /// Per stream, the identity of every offset known durable (what the last check found).
    known: Vec<Vec<Ident>>,
    /// The streams exist for sure (a child printed `ready`).
    created: bool,
    summary: Summary,
}

impl KillLoop {
    fn new(mode: Mode, seed: u64) -> Self {
        KillLoop {
            mode,
            dir: TempDir::new(&format!("stream-kill9-{mode:?}")),
            rng: SplitMix64::new(seed),
            known: vec![Vec::new(); STREAMS],
            created: false,
            summary: Summary::default(),
        }
    }

    fn one_kill(&mut self, run: u64) -> Result<(), String> {
        let mode_name = match self.mode {
            Mode::Strict => "strict",
            Mode::Buffered => "buffered",
        };
        let command = self_exe_child(
            CHILD_TEST_NAME,
            &[
                (CHILD_DIR_ENV, self.dir.path().display().to_string()),
                (CHILD_MODE_ENV, mode_name.to_owned()),
                (CHILD_RUN_ENV, run.to_string()),
            ],
        )
        .map_err(|error| format!("child command: {error}"))?;
        let recovery_kill = self.rng.below(100) < PLAN_RECOVERY_PERCENT;
        let delay = if recovery_kill {
            if self.rng.below(2) == 0 {
                Duration::ZERO
            } else {
                micros(self.rng.below(RECOVERY_KILL_AFTER_MICROS_MAX))
            }
        } else {
            micros(
                APPEND_KILL_AFTER_MICROS.start
                    + self
                        .rng
                        .below(APPEND_KILL_AFTER_MICROS.end - APPEND_KILL_AFTER_MICROS.start),
            )
        };
        let mut child = {
            let _no_open = OPEN_OR_SPAWN.lock().unwrap_or_else(PoisonError::into_inner);
            ChildRun::spawn(command).map_err(|error| format!("spawn: {error}"))?
        };
        let wanted = if recovery_kill { "opening" } else { "ready" };
        let lines = child.lines_until(Instant::now() + CHILD_PATIENCE, |line| {
            line == wanted || line.starts_with(CHILD_ERROR_PREFIX)
        });
        if lines.last().map(String::as_str) != Some(wanted) {
            return Err(format!(
                "the child did not print {wanted:?} in time: {lines:?}"
            ));
        }
        std::thread::sleep(delay);
        let killed = child.kill_now().map_err(|error| format!("kill: {error}"))?;
        if let Some(line) = killed
            .lines
            .iter()
            .find(|line| line.starts_with(CHILD_ERROR_PREFIX))
        {
            return Err(format!("the child failed: {line}"));
        }
        if killed.exited_on_its_own {
            return Err(format!("the child exited by itself: {:?}", killed.status));
        }
        self.summary.kills += 1;
        let ready = killed.lines.iter().any(|line| line == "ready");
        if ready {
            self.summary.appending_kills += 1;
        } else if killed.lines.iter().any(|line| line == "opening") {
            self.summary.recovery_kills += 1;
        } else {
            self.summary.before_open_kills += 1;
        }
        let acks: Vec<Ack> = killed
            .lines
            .iter()
            .filter(|line| line.starts_with("ack "))
            .map(|line| parse_ack(line).ok_or_else(|| format!("unreadable line {line:?}")))
            .collect::<Result<_, _>>()?;
        self.summary.acks += acks.len() as u64;
        self.check(run, &acks)?;
        self.created |= ready;
        Ok(())
    }

    /// Reopens the store in Strict mode and checks every stream against the acknowledgements.
    fn check(&mut self, run: u64, acks: &[Ack]) -> Result<(), String> {
        let _no_spawn = OPEN_OR_SPAWN.lock().unwrap_or_else(PoisonError::into_inner);
        let store = open_store(self.dir.path(), SyncPolicy::Strict)
            .map_err(|error| format!("the parent's reopen failed: {error}"))?;
        let listed = store.list();
        let expected: Vec<String> = (0..STREAMS).map(stream_name).collect();
        if self.created || !listed.is_empty() {
            // Creation is durable when it returns: once `ready` was printed all three exist;
            // before, a kill may leave any prefix of the creations.
            if self.created && listed != expected
                || listed.iter().any(|name| !expected.contains(name))
            {
                return Err(format!("the store lists {listed:?}, expected {expected:?}"));
            }
        }
        for stream in 0..STREAMS {
            let stream_acks: Vec<&Ack> = acks.iter().filter(|ack| ack.stream == stream).collect();
            if !listed.contains(&stream_name(stream)) {
                if !stream_acks.is_empty() {
                    return Err(format!(
                        "s{stream} is missing but appends to it were acknowledged"
                    ));
                }
                continue;
            }
            self.check_stream(&store, stream, run, &stream_acks)
                .map_err(|error| format!("s{stream}: {error}"))?;
        }
        store
            .close()
            .map_err(|error| format!("closing the parent's store failed: {error}"))
    }

    fn check_stream(
        &mut self,
        store: &Streams,
        stream: usize,
        run: u64,
        acks: &[&Ack],
    ) -> Result<(), String> {
        let name = stream_name(stream);
        let info = store.info(&name).map_err(|error| error.to_string())?;
        let known = &self.known[stream];
        let durable_before = known.len() as u64;
        if info.first_offset != 0 {
            return Err(format!(
                "first offset {} without truncation",
                info.first_offset
            ));
        }
        let end = info.next_offset;
        if end < durable_before {
            return Err(format!(
                "recovered end {end}, but {durable_before} messages were durable before the \
                 child started"
            ));
        }
        let from = durable_before.saturating_sub(VERIFY_BACK_MESSAGES);
        let found = read_idents(store, stream, from, end)?;
        for (offset, ident) in (from..).zip(&found) {
            if offset < durable_before {
                if *ident != known[offset as usize] {
                    return Err(format!(
                        "offset {offset} changed from {:?} to {ident:?}",
                        known[offset as usize]
                    ));
                }
            } else if ident.run != run {
                return Err(format!(
                    "offset {offset} (past the {durable_before} durable before this run) holds \
                     {ident:?}, not a message of run {run}"
                ));
            }
        }
        let new: Vec<Ident> = found
            .iter()
            .skip((durable_before - from) as usize)
            .copied()
            .collect();
        // Each producer's messages of this run: its sequence 0, 1, 2, ... in offset order.
        let mut per_thread: BTreeMap<u64, u64> = BTreeMap::new();
        for (offset, ident) in (durable_before..).zip(&new) {
            let next = per_thread.entry(ident.thread).or_default();
            if ident.seq != *next || ident.thread >= PRODUCERS_PER_STREAM {
                return Err(format!(
                    "offset {offset} holds {ident:?}; thread {} was at sequence {next} (a gap, \
                     duplicate or reordering)",
                    ident.thread
                ));
            }
            *next += 1;
        }
        let mut acked_per_thread: BTreeMap<u64, u64> = BTreeMap::new();
        for ack in acks {
            if ack.end <= ack.start || ack.end - ack.start > BATCH_MESSAGES_MAX {
                return Err(format!("a malformed acknowledgement {ack:?}"));
            }
            self.summary.acked_messages += ack.end - ack.start;
            let acked = acked_per_thread.entry(ack.thread).or_default();
            *acked = (*acked).max(ack.seq + ack.end - ack.start);
            if ack.start >= end {
                if self.mode == Mode::Strict {
                    return Err(format!(
                        "acknowledged {ack:?} lost: the stream ends at {end}"
                    ));
                }
                self.summary.lost_acked_messages += ack.end - ack.start;
                continue;
            }
            if ack.end > end {
                return Err(format!(
                    "half a batch: {ack:?} but the stream ends at {end}"
                ));
            }
            if ack.start < durable_before {
                return Err(format!(
                    "{ack:?} was acknowledged at offsets durable before the child started"
                ));
            }
            for (offset, seq) in (ack.start..ack.end).zip(ack.seq..) {
                let ident = new[(offset - durable_before) as usize];
                let want = Ident {
                    run,
                    thread: ack.thread,
                    seq,
                };
                if ident != want {
                    return Err(format!(
                        "acknowledged offset {offset} holds {ident:?}, the acknowledgement says \
                         {want:?}"
                    ));
                }
            }
        }
        for (thread, recovered) in &per_thread {
            let acked = acked_per_thread.get(thread).copied().unwrap_or(0);
            if self.mode == Mode::Strict && *recovered < acked {
                return Err(format!(
                    "thread {thread}: {recovered} messages recovered, {acked} acknowledged"
                ));
            }
            if *recovered > acked + BATCH_MESSAGES_MAX {
                return Err(format!(
                    "thread {thread}: {recovered} messages recovered, but only {acked} were \
                     acknowledged and one batch can have been in flight"
                ));
            }
            self.summary.unacked_recovered += recovered.saturating_sub(acked);
        }
        self.known[stream].extend(new);
        Ok(())
    }

    /// Reads every stream whole and compares it with what the checks recorded.
    fn final_check(&self) -> Result<(), String> {
        let _no_spawn = OPEN_OR_SPAWN.lock().unwrap_or_else(PoisonError::into_inner);
        let store = open_store(self.dir.path(), SyncPolicy::Strict)
            .map_err(|error| format!("the final reopen failed: {error}"))?;
        for stream in 0..STREAMS {
            if self.known[stream].is_empty() {
                continue;
            }
            let end = self.known[stream].len() as u64;
            let found = read_idents(&store, stream, 0, end)?;
            if found != self.known[stream] {
                return Err(format!("s{stream} changed after its checks"));
            }
        }
        store.close().map_err(|error| error.to_string())
    }
}

fn micros(count: usize) -> Duration {
    Duration::from_micros(count as u64)
}

/// The identities at offsets `from..end` of `stream`, each message checked against the
/// content its identity derives and offsets checked dense.
fn read_idents(store: &Streams, stream: usize, from: u64, end: u64) -> Result<Vec<Ident>, String> {
    let name = stream_name(stream);
    let mut idents = Vec::new();
    let mut offset = from;
    while offset < end {
        let chunk = store
            .read_range(&name, offset, 10_000, usize::MAX)
            .map_err(|error| format!("read_range from {offset}: {error}"))?;
        if chunk.is_empty() {
            return Err(format!(
                "read_range from {offset} is empty below the end {end}"
            ));
        }
        for stored in chunk {
            if offset == end {
                break;
            }
            if stored.offset != offset {
                return Err(format!(
                    "offsets not dense: {} where {offset} was expected",
                    stored.offset
                ));
            }
            let ident = parse_ident(stream, &stored.message).ok_or_else(|| {
                format!(
                    "offset {offset} holds a message of no known producer ({} bytes)",
                    stored.message.value.len()
                )
            })?;
            if stored.message != message_for(stream, ident) {
                return Err(format!(
                    "offset {offset} claims {ident:?} but its content is not that message's"
                ));
            }
            idents.push(ident);
            offset += 1;
        }
    }
    Ok(idents)
}

fn soak() -> bool {
    std::env::var_os("CAIRN_SOAK").is_some()
}

fn kill_loop(mode: Mode, kills: usize, seed: u64) -> Summary {
    let kills = if soak() { kills * SOAK_FACTOR } else { kills };
    let mut kill_loop = KillLoop::new(mode, seed);
    for run in 1..=kills as u64 {
        kill_loop
            .one_kill(run)
            .unwrap_or_else(|error| panic!("{mode:?}, seed {seed:#x}, kill {run}: {error}"));
    }
    kill_loop
        .final_check()
        .unwrap_or_else(|error| panic!("{mode:?}, seed {seed:#x}, final check: {error}"));
    let summary = std::mem::take(&mut kill_loop.summary);
    eprintln!(
        "{mode:?}: {summary:?}, messages per stream {:?}",
        kill_loop.known.iter().map(Vec::len).collect::<Vec<_>>()
    );
    summary
}

#[test]
fn strict_keeps_every_acknowledged_message_across_kill9() {
    let summary = kill_loop(Mode::Strict, STRICT_KILLS, SEED);
    assert_eq!(summary.lost_acked_messages, 0);
    assert!(summary.acked_messages > 500, "{summary:?}");
    assert!(summary.appending_kills > STRICT_KILLS / 2, "{summary:?}");
    assert!(
        summary.recovery_kills + summary.before_open_kills > 0,
        "no kill landed before the store was ready: {summary:?}"
    );
}

#[test]
fn buffered_recovers_a_prefix_of_every_stream_across_kill9() {
    let summary = kill_loop(Mode::Buffered, BUFFERED_KILLS, SEED ^ 1);
    assert!(summary.acked_messages > 1_000, "{summary:?}");
    assert!(summary.appending_kills > BUFFERED_KILLS / 2, "{summary:?}");
}

/// The checks themselves catch what they are for: a lost acknowledged batch, a batch whose
/// content is not the acknowledged one, and half a batch.
#[test]
fn the_checks_catch_lost_wrong_and_half_batches() {
    let fresh = || {
        let kill_loop = KillLoop::new(Mode::Strict, SEED ^ 2);
        let store = open_store(kill_loop.dir.path(), SyncPolicy::Strict).expect("open");
        for stream in 0..STREAMS {
            store.create(&stream_name(stream)).expect("create");
        }
        let batch: Vec<Message> = (0..4)
            .map(|seq| {
                message_for(
                    0,
                    Ident {
                        run: 1,
                        thread: 0,
                        seq,
                    },
                )
            })
            .collect();
        assert_eq!(store.append_batch("s0", &batch).expect("append"), 0..4);
        store.close().expect("close");
        drop(store);
        kill_loop
    };
    let ack = |start, end, thread, seq| Ack {
        stream: 0,
        start,
        end,
        thread,
        seq,
    };
    fresh()
        .check(1, &[ack(0, 4, 0, 0)])
        .expect("the real acknowledgement passes");
    for (wrong, expected) in [
        (ack(4, 6, 0, 4), "lost"),
        (ack(0, 4, 1, 0), "the acknowledgement says"),
        (ack(2, 6, 0, 2), "half a batch"),
    ] {
        let error = fresh()
            .check(1, &[wrong])
            .expect_err("a wrong acknowledgement passed");
        assert!(error.contains(expected), "{error}");
    }
    let error = fresh()
        .check(2, &[])
        .expect_err("messages of another run passed");
    assert!(error.contains("not a message of run 2"), "{error}");
}
