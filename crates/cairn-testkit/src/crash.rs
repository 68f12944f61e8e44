//! A kill -9 harness: run a child process that reports progress on stdout, one line per event,
//! kill it with `SIGKILL` at a moment of the test's choosing, and collect every line it
//! completed before it died.
//!
//! The usual shape of a crash test: the parent spawns a child role of its own test binary
//! ([`self_exe_child`]), reads lines until some point ([`ChildRun::lines_until`]), kills it
//! ([`ChildRun::kill_now`]), reopens the data directory and checks that everything the child
//! acknowledged is there. The child role is an ordinary `#[test]` that returns at once unless
//! its environment variable is set:
//!
//! ```no_run
//! # use std::time::{Duration, Instant};
//! # use cairn_testkit::crash::{self_exe_child, ChildRun};
//! const CHILD_DIR: &str = "CAIRN_CRASH_CHILD_DIR";
//!
//! #[test]
//! fn crash_child() {
//!     let Ok(dir) = std::env::var(CHILD_DIR) else { return };
//!     for commit in 0_u64.. {
//!         // ... commit durably into `dir` ...
//!         println!("ack {commit}"); // after the commit returned Ok, never before
//!     }
//! }
//!
//! #[test]
//! fn acknowledged_commits_survive_kill() -> std::io::Result<()> {
//!     let command = self_exe_child("crash_child", &[(CHILD_DIR, "data".to_owned())])?;
//!     let mut run = ChildRun::spawn(command)?;
//!     run.lines_until(Instant::now() + Duration::from_millis(50), |_| false);
//!     let killed = run.kill_now()?;
//!     let acks = killed.lines.iter().filter_map(|line| line.strip_prefix("ack "));
//!     // ... reopen "data" and check every acknowledged commit ...
//!     Ok(())
//! }
//! ```
//!
//! Guarantees and limits:
//! - A line counts only once its `\n` arrived. A child killed inside a line leaves a partial
//!   line, which is dropped and reported ([`KilledChild::partial_line_dropped`]). A line of up
//!   to `PIPE_BUF` (4096) bytes written by one `write` call reaches the pipe whole or not at
//!   all; Rust's stdout is line-buffered, so `println!` flushes each line with one write.
//! - libtest prints its own lines to stdout ("running 1 test", the result, a summary), so the
//!   child must prefix its protocol lines (for example `"ack "`) and the parent must ignore
//!   every other line.
//! - After the kill, the harness waits for the end of the child's stdout, so lines still in
//!   the pipe are collected. A grandchild that inherited stdout keeps the pipe open: the wait
//!   then lasts until it exits or [`DRAIN_AFTER_EXIT_MAX`] passes
//!   ([`KilledChild::stdout_reached_end`] says which).
//! - The line queue is bounded ([`LINE_QUEUE_CAPACITY`]); when it is full the reader stops
//!   reading, so the child blocks on its stdout (pipe back-pressure) and no line is lost.
//! - Unix only: "killed" means `SIGKILL`, which `std::process::Child::kill` sends.

use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest line the reader accepts, in bytes (without the `\n`). A longer line is
/// dropped and counted ([`KilledChild::overlong_lines_dropped`]) rather than buffered without
/// bound.
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// How many complete lines may wait between the reader thread and the test. When full, the
/// reader blocks, and through the pipe so does the child; nothing is dropped.
pub const LINE_QUEUE_CAPACITY: usize = 65_536;

/// How long [`ChildRun::kill_now`] waits, after the child is reaped, for the end of its
/// stdout. The end comes at once unless a grandchild holds the pipe open.
pub const DRAIN_AFTER_EXIT_MAX: Duration = Duration::from_secs(10);

/// The signal number of `SIGKILL` on Linux.
const SIGKILL: i32 = 9;

/// What the reader thread found besides the lines it sent.
#[derive(Debug, Default)]
struct ReaderOutcome {
    partial_line_dropped: bool,
    overlong_lines_dropped: u64,
    read_error: Option<io::Error>,
}

/// Reads `stdout` line by line into `sender` until the end of the stream, a read error, or
/// the receiving side going away.
fn read_lines(stdout: ChildStdout, sender: &SyncSender<String>) -> ReaderOutcome {
    let mut reader = BufReader::new(stdout);
    let mut outcome = ReaderOutcome::default();
    let mut line = Vec::new();
    // One byte past the limit tells an overlong line from one that just fits.
    let read_limit = u64::try_from(LINE_BYTES_MAX + 1).unwrap_or(u64::MAX);
    loop {
        line.clear();
        match (&mut reader).take(read_limit).read_until(b'\n', &mut line) {
            Ok(0) => return outcome,
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if sender
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    return outcome;
                }
            }
            Ok(_) if line.len() > LINE_BYTES_MAX => {
                outcome.overlong_lines_dropped += 1;
                if let Err(error) = reader.skip_until(b'\n') {
                    outcome.read_error = Some(error);
                    return outcome;
                }
            }
            Ok(_) => {
                // The stream ended inside a line: the child died (or exited) mid-line.
                outcome.partial_line_dropped = true;
                return outcome;
            }
            Err(error) => {
                outcome.read_error = Some(error);
                return outcome;
            }
        }
    }
}

/// A running child process whose stdout lines are being collected.
#[derive(Debug)]
pub struct ChildRun {
    child: Child,
    lines: Receiver<String>,
    reader: Option<JoinHandle<ReaderOutcome>>,
    /// Every line handed to the test so far, in order.
    received: Vec<String>,
    /// The child has been reaped; nothing is left to clean up on drop.
    reaped: bool,
    /// The reader thread has finished and its queue is empty.
    stdout_ended: bool,
}

/// What [`ChildRun::kill_now`] found.
#[derive(Debug)]
pub struct KilledChild {
    /// Every complete line the child wrote, in order: those already returned by
    /// [`ChildRun::lines_until`] and those still queued or in the pipe when it died.
    pub lines: Vec<String>,
    /// True when the child had ended by itself (exit or its own signal) before the kill.
    pub exited_on_its_own: bool,
    /// The child's exit status (`signal() == Some(9)` when the kill ended it).
    pub status: ExitStatus,
    /// True when the output ended inside a line, which was dropped.
    pub partial_line_dropped: bool,
    /// Lines longer than [`LINE_BYTES_MAX`], dropped.
    pub overlong_lines_dropped: u64,
    /// True when the end of stdout was seen, so `lines` is complete; false when a process
    /// still held the pipe open after [`DRAIN_AFTER_EXIT_MAX`].
    pub stdout_reached_end: bool,
}

impl ChildRun {
    /// Spawns `command` with stdout piped (stderr inherited, stdin closed) and starts the
    /// thread that reads its lines.
    pub fn spawn(mut command: Command) -> io::Result<ChildRun> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn()?;
        let Some(stdout) = child.stdout.take() else {
            // Unreachable with `Stdio::piped`, but never leave a child behind.
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("the child's stdout was not piped"));
        };
        let (sender, lines) = mpsc::sync_channel(LINE_QUEUE_CAPACITY);
        let reader = std::thread::Builder::new()
            .name("child-stdout".to_owned())
            .spawn(move || read_lines(stdout, &sender));
        let reader = match reader {
            Ok(reader) => reader,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
        };
        Ok(ChildRun {
            child,
            lines,
            reader: Some(reader),
            received: Vec::new(),
            reaped: false,
            stdout_ended: false,
        })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Collects lines until `stop` returns true for one (that line included), the deadline
    /// passes, or the child's stdout ends. Returns the lines collected by this call; every
    /// line also stays in the history that [`ChildRun::kill_now`] returns.
    pub fn lines_until(
        &mut self,
        deadline: Instant,
        mut stop: impl FnMut(&str) -> bool,
    ) -> Vec<String> {
        let mut collected = Vec::new();
        while let Some(remaining) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(remaining) {
                Ok(line) => {
                    let stopping = stop(&line);
                    self.received.push(line.clone());
                    collected.push(line);
                    if stopping {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    self.stdout_ended = true;
                    break;
                }
            }
        }
        collected
    }

    /// Kills the child with `SIGKILL` (unless it already ended), reaps it, then collects every
    /// complete line it wrote, waiting for the end of its stdout (see the module docs).
    pub fn kill_now(mut self) -> io::Result<KilledChild> {
        let ended_before_kill = matches!(self.child.try_wait(), Ok(Some(_)));
        // `kill` returns Ok for a child that has exited but is not yet reaped.
        self.child.kill()?;
        let status = self.child.wait()?;
        self.reaped = true;
        // A child that ended between `try_wait` and the kill shows its own exit status.
        let exited_on_its_own = ended_before_kill || status.signal() != Some(SIGKILL);

        let mut lines = std::mem::take(&mut self.received);
        let drain_deadline = Instant::now() + DRAIN_AFTER_EXIT_MAX;
        let mut stdout_reached_end = false;
        loop {
            let remaining = drain_deadline
                .checked_duration_since(Instant::now())
                .unwrap_or(Duration::ZERO);
            match self.lines.recv_timeout(remaining) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => {
                    stdout_reached_end = true;
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        let mut outcome = ReaderOutcome::default();
        if stdout_reached_end {
            if let Some(reader) = self.reader.take() {
                outcome = reader
                    .join()
                    .map_err(|_| io::Error::other("the stdout reader thread panicked"))?;
            }
        }
        // Lines that raced with the timeout.
        while let Ok(line) = self.lines.try_recv() {
            lines.push(line);
        }
        if let Some(error) = outcome.read_error {
            return Err(error);
        }
        Ok(KilledChild {
            lines,
            exited_on_its_own,
            status,
            partial_line_dropped: outcome.partial_line_dropped,
            overlong_lines_dropped: outcome.overlong_lines_dropped,
            stdout_reached_end,
        })
    }

    /// True once a call to [`ChildRun::lines_until`] saw the end of the child's stdout (the
    /// child and everything that inherited its stdout have exited) with no line left.
    pub fn stdout_ended(&self) -> bool {
        self.stdout_ended
    }
}

impl Drop for ChildRun {
    /// A test that fails (or forgets `kill_now`) must not leave a child running.
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A command that re-runs the current test binary as a child, running only the test named
/// `test_name` (its full path, e.g. `"crash::tests::child_role"`), with output not captured,
/// on one thread, and with the extra environment `env`. See the module docs for the pattern.
pub fn self_exe_child(test_name: &str, env: &[(&str, String)]) -> io::Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args([
        test_name,
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ]);
    for (name, value) in env {
        command.env(name, value);
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough for a loaded machine, short enough to fail fast.
    const PATIENCE: Duration = Duration::from_secs(20);

    /// The variable that turns [`child_role_prints_acks`] into a child.
    const CHILD_ROLE: &str = "CAIRN_TESTKIT_CHILD_ROLE";

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    fn is_ack(line: &str) -> bool {
        line.starts_with("ack ")
    }

    #[test]
    fn kill_returns_every_line_before_the_kill() {
        // `exec` makes `sleep` the child itself; without it `sleep` would be a grandchild
        // holding stdout open (covered by the next test).
        let mut run = ChildRun::spawn(shell("for i in 1 2 3; do echo ack $i; done; exec sleep 5"))
            .expect("spawn sh");
        let mut acks = 0;
        let lines = run.lines_until(Instant::now() + PATIENCE, |line| {
            acks += usize::from(is_ack(line));
            acks == 3
        });
        assert_eq!(lines, vec!["ack 1", "ack 2", "ack 3"]);
        let killed = run.kill_now().expect("kill");
        assert_eq!(killed.lines, vec!["ack 1", "ack 2", "ack 3"]);
        assert!(!killed.exited_on_its_own);
        assert_eq!(killed.status.signal(), Some(SIGKILL));
        assert!(!killed.partial_line_dropped);
        assert!(killed.stdout_reached_end);
    }

    #[test]
    fn kill_waits_for_a_grandchild_holding_stdout_and_keeps_the_lines() {
        let mut run = ChildRun::spawn(shell("for i in 1 2 3; do echo ack $i; done; sleep 1"))
            .expect("spawn sh");
        let lines = run.lines_until(Instant::now() + PATIENCE, |line| line == "ack 3");
        assert_eq!(lines.len(), 3);
        let killed = run.kill_now().expect("kill");
        assert_eq!(killed.lines, vec!["ack 1", "ack 2", "ack 3"]);
        assert!(!killed.exited_on_its_own);
        assert!(killed.stdout_reached_end);
    }

    #[test]
    fn lines_still_queued_when_the_child_dies_are_returned() {
        let marker =
            std::env::temp_dir().join(format!("cairn-testkit-crash-marker-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let script = format!(
            "echo ack 1; echo noise; echo ack 2; touch '{}'; exec sleep 5",
            marker.display()
        );
        let run = ChildRun::spawn(shell(&script)).expect("spawn sh");
        let deadline = Instant::now() + PATIENCE;
        while !marker.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(marker.exists(), "the child wrote its lines");
        let killed = run.kill_now().expect("kill");
        std::fs::remove_file(&marker).expect("clean up the marker");
        assert_eq!(killed.lines, vec!["ack 1", "noise", "ack 2"]);
        assert!(!killed.exited_on_its_own);
    }

    #[test]
    fn child_that_exits_first_is_reported_and_its_partial_line_dropped() {
        let mut run = ChildRun::spawn(shell("echo ack 1; echo ack 2; printf 'ack 3 cut'; exit 3"))
            .expect("spawn sh");
        let lines = run.lines_until(Instant::now() + PATIENCE, |_| false);
        assert_eq!(lines, vec!["ack 1", "ack 2"]);
        assert!(
            run.stdout_ended(),
            "lines_until returns at the end of stdout"
        );
        let killed = run.kill_now().expect("kill after exit");
        assert!(killed.exited_on_its_own);
        assert_eq!(killed.status.code(), Some(3));
        assert_eq!(killed.lines, vec!["ack 1", "ack 2"]);
        assert!(killed.partial_line_dropped);
        assert_eq!(killed.overlong_lines_dropped, 0);
    }

    #[test]
    fn overlong_lines_are_dropped_and_counted() {
        let script = format!(
            "head -c {} /dev/zero | tr '\\0' x; echo; echo ack 1",
            LINE_BYTES_MAX + 10
        );
        let mut run = ChildRun::spawn(shell(&script)).expect("spawn sh");
        run.lines_until(Instant::now() + PATIENCE, |_| false);
        let killed = run.kill_now().expect("kill after exit");
        assert_eq!(killed.lines, vec!["ack 1"]);
        assert_eq!(killed.overlong_lines_dropped, 1);
    }

    /// The child role of [`self_exe_child_runs_one_test_of_this_binary`]; a no-op in a normal
    /// test run.
    #[test]
    fn child_role_prints_acks() {
        let Ok(count) = std::env::var(CHILD_ROLE) else {
            return;
        };
        let count: u32 = count.parse().expect("the parent passes a number");
        for index in 1..=count {
            println!("ack {index}");
        }
    }

    #[test]
    fn self_exe_child_runs_one_test_of_this_binary() {
        let command = self_exe_child(
            "crash::tests::child_role_prints_acks",
            &[(CHILD_ROLE, "4".to_owned())],
        )
        .expect("current exe");
        let mut run = ChildRun::spawn(command).expect("spawn the test binary");
        run.lines_until(Instant::now() + PATIENCE, |_| false);
        let killed = run.kill_now().expect("kill after exit");
        assert!(killed.exited_on_its_own);
        assert!(killed.status.success(), "the child test passed");
        let acks: Vec<&String> = killed.lines.iter().filter(|line| is_ack(line)).collect();
        assert_eq!(acks, vec!["ack 1", "ack 2", "ack 3", "ack 4"]);
        // libtest's own lines arrive too, which is why protocol lines carry a prefix.
        assert!(killed.lines.len() > acks.len(), "{:?}", killed.lines);
    }
}
