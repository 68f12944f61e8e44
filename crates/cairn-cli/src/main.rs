//! `cairn`: the command-line tool of the Cairn storage engine.
//!
//! Commands: `cairn bench` runs the engine-core workloads of `cairn-bench` in this process
//! and checks them against their targets (or loads a saved run), then can
//! compare, chart and write the results as Markdown; `cairn inspect`, `cairn verify` and
//! `cairn dump` read a data directory offline (they never modify it); `cairn streams inspect` and
//! `cairn streams tail` read a stream store the same way, and `cairn verify` checks one too;
//! `cairn agent` reads the agent state of a data directory (it opens the database, so it
//! refuses one another process has open); `cairn serve` serves a database over the Redis
//! protocol until SIGINT or SIGTERM (`cairn-server`). Errors are reported as
//! one `error:` line (with its causes); `bench` then exits 1, the offline commands exit 2
//! ("could not run", since their exit code 1 means "damage found"). Bad arguments get clap's
//! usage message and exit code 2; `bench --validate` exits 3 when a row missed its target.
//! Nothing here panics on any input.

mod agent;
mod bench;
mod inspect;
mod machine;
mod streams;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Cairn: an embedded, transactional state store.
#[derive(Debug, Parser)]
#[command(name = "cairn", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the benchmark registry in this process and checks each row against its target.
    Bench(BenchArgs),
    /// Shows what a data directory holds: snapshots, WAL segments, leftovers, totals (fast:
    /// headers and a frame scan, no record decoding).
    Inspect(InspectArgs),
    /// Checks a data directory, or a stream store, end to end without modifying it. Exit code
    /// 0: intact (a torn WAL tail included); 1: damage found; 2: could not run.
    Verify(VerifyArgs),
    /// Prints the newest valid snapshot's entries, then every WAL record after it, one per
    /// line. Exit code 1 if it met damage (reported on stderr), 2 if it could not run.
    Dump(DumpArgs),
    /// Reads a stream store (`cairn_log::stream`) offline: `inspect`, `tail`.
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// Reads the agent state (`cairn-agent`) of a data directory: `list`, `show`, `replay`,
    /// `diff`, `verify`, `search`. Opens the database, so it refuses one open elsewhere.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Serves a database over the Redis protocol (RESP2/RESP3), so Redis clients and tools
    /// work against it. Runs until SIGINT or SIGTERM, then shuts down cleanly.
    Serve(ServeArgs),
}

/// How `cairn serve` keeps its data.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ServeDurability {
    /// A reply to a write is sent once the write is fdatasync'ed (shared by all clients).
    Strict,
    /// A reply is sent once the write is in the WAL buffer; synced in the background.
    Buffered,
    /// In memory only: nothing survives the process.
    Memory,
}

/// Options of `cairn serve`.
#[derive(Debug, Args)]
struct ServeArgs {
    /// The data directory (created if missing; unused with `--durability memory`).
    #[arg(long, default_value = "cairn-data")]
    dir: PathBuf,
    /// When a write is acknowledged.
    #[arg(long, value_enum, default_value = "strict")]
    durability: ServeDurability,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:6379")]
    bind: std::net::SocketAddr,
    /// The password clients must give with AUTH (the user is `default`).
    #[arg(long)]
    requirepass: Option<String>,
    /// Accept non-loopback clients even without a password.
    #[arg(long)]
    no_protected_mode: bool,
    /// Connections served at once.
    #[arg(long, default_value_t = 10_000)]
    maxclients: usize,
    /// Close connections idle this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    timeout: u64,
    /// Threads that serve connections (default: one per two CPUs, at least one).
    #[arg(long)]
    workers: Option<usize>,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (default: off).
    #[arg(long)]
    metrics_bind: Option<std::net::SocketAddr>,
}

/// The `cairn agent` commands. Each takes the data directory first and prints text, or one
/// JSON document with `--json`. Exit code 2 when it could not run.
#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Lists the runs, in id order.
    List(AgentListArgs),
    /// Shows one run: its record, its events, and its traces as a tree.
    Show(AgentRunArgs),
    /// Shows a run's KV, cells and documents replayed to an event (or to its end).
    Replay(AgentReplayArgs),
    /// Compares the current states and event logs of two runs.
    Diff(AgentDiffArgs),
    /// Recomputes a run's hash chain. Exit code 1 (naming the first bad sequence) when broken.
    Verify(AgentRunArgs),
    /// Keyword (BM25) search over every run's events, traces, KV, cells and documents.
    Search(AgentSearchArgs),
}

/// Options of `cairn agent list`.
#[derive(Debug, Args)]
struct AgentListArgs {
    /// The data directory.
    dir: PathBuf,
    /// Only runs of this status (active, paused, completed, failed, cancelled, archived,
    /// orphaned).
    #[arg(long, value_parser = agent::parse_status)]
    status: Option<cairn_agent::RunStatus>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

/// Options of the `cairn agent` commands about one run.
#[derive(Debug, Args)]
struct AgentRunArgs {
    /// The data directory.
    dir: PathBuf,
    /// The run's id.
    #[arg(value_parser = agent::parse_run)]
    run: cairn_agent::RunId,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

/// Options of `cairn agent replay`.
#[derive(Debug, Args)]
struct AgentReplayArgs {
    /// The data directory.
    dir: PathBuf,
    /// The run's id.
    #[arg(value_parser = agent::parse_run)]
    run: cairn_agent::RunId,
    /// Stop right after the commit that appended event SEQ (default: the run's end).
    #[arg(long, value_name = "SEQ")]
    upto: Option<u64>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

/// Options of `cairn agent diff`.
#[derive(Debug, Args)]
struct AgentDiffArgs {
    /// The data directory.
    dir: PathBuf,
    /// The left run.
    #[arg(value_parser = agent::parse_run)]
    left: cairn_agent::RunId,
    /// The right run.
    #[arg(value_parser = agent::parse_run)]
    right: cairn_agent::RunId,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

/// Options of `cairn agent search`.
#[derive(Debug, Args)]
struct AgentSearchArgs {
    /// The data directory.
    dir: PathBuf,
    /// The words to look for (any may match).
    query: String,
    /// Only this run (scored against the run's own statistics).
    #[arg(long, value_parser = agent::parse_run)]
    run: Option<cairn_agent::RunId>,
    /// Only this primitive (event, span, kv, cell, doc); repeat to allow several.
    #[arg(long, value_parser = agent::parse_primitive)]
    primitive: Vec<cairn_agent::Primitive>,
    /// Only spans carrying this tag; repeat to require several.
    #[arg(long)]
    tag: Vec<String>,
    /// At most N hits.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

/// The `cairn streams` commands.
#[derive(Debug, Subcommand)]
enum StreamsCommand {
    /// Shows each stream of a store: offsets, segments, bytes, consumer groups (read-only;
    /// never takes the store's lock).
    Inspect(StreamsInspectArgs),
    /// Prints a stream's messages, one per line (read-only). Exit code 1 if it met damage
    /// (reported on stderr), 2 if it could not run.
    Tail(TailArgs),
}

/// Options of `cairn streams inspect`.
#[derive(Debug, Args)]
struct StreamsInspectArgs {
    /// The stream store directory.
    dir: PathBuf,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
}

/// Options of `cairn streams tail`.
#[derive(Debug, Args)]
struct TailArgs {
    /// The stream store directory.
    dir: PathBuf,
    /// The stream's name.
    stream: String,
    /// Start at this offset (default: the first readable one).
    #[arg(long, value_name = "OFFSET", conflicts_with = "since_ms")]
    from: Option<u64>,
    /// Start at the first message appended at or after TS (milliseconds since the Unix epoch).
    #[arg(long, value_name = "TS")]
    since_ms: Option<u64>,
    /// Keep polling the files for new messages until interrupted.
    #[arg(long)]
    follow: bool,
    /// One JSON object per line (byte fields that are not UTF-8 as `<field>_hex`).
    #[arg(long)]
    json: bool,
    /// Stop after N messages.
    #[arg(long, value_name = "N")]
    max: Option<u64>,
    /// With --follow: milliseconds between polls.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = streams::tail::POLL_MS_DEFAULT,
        value_parser = streams::tail::parse_poll_ms
    )]
    poll_ms: u64,
}

/// Options of `cairn inspect`.
#[derive(Debug, Args)]
struct InspectArgs {
    /// The data directory.
    dir: PathBuf,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
}

/// Options of `cairn verify`.
#[derive(Debug, Args)]
struct VerifyArgs {
    /// The data directory, or a stream store directory.
    dir: PathBuf,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    json: bool,
}

/// Options of `cairn dump`.
#[derive(Debug, Args)]
struct DumpArgs {
    /// The data directory.
    dir: PathBuf,
    /// Line format: tab-separated text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = inspect::Format::Text)]
    format: inspect::Format,
    /// Print WAL records from LSN N on (default: after the snapshot; with --wal-only, all).
    #[arg(long, value_name = "N")]
    from_lsn: Option<u64>,
    /// Print only the snapshot's entries.
    #[arg(long, conflicts_with = "wal_only")]
    snapshot_only: bool,
    /// Print only WAL records.
    #[arg(long)]
    wal_only: bool,
    /// Stop after N lines.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

/// Options of `cairn bench`.
#[derive(Debug, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent command-line flags"
)]
#[command(
    after_help = "Exit codes: 0 done (a MISS is a result, not an error); 1 a workload \
failed, or a file could not be read or written; 2 bad arguments; 3 --validate found rows that \
missed their target (listed after the table); 4 --gate found a failed gate."
)]
struct BenchArgs {
    /// Shorter measurements (well under a minute); the 1M-key database is still used.
    #[arg(long, conflicts_with = "from_json")]
    quick: bool,
    /// Also write every result as JSON to FILE (read back by --from-json and --compare).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run only the workloads whose name contains SUBSTR (e.g. `cas`, `get_at_scale`; `kv`
    /// selects every `KeyValueStore` backend row). With --from-json: keep only the loaded rows
    /// whose name contains SUBSTR.
    #[arg(long, value_name = "SUBSTR")]
    filter: Option<String>,
    /// The Redis server the `KeyValueStore` rows measure, if one answers there.
    #[arg(long, value_name = "URL", default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Start a throwaway redis-server (from PATH) for the Redis rows instead of using --redis.
    #[arg(long, conflicts_with = "from_json")]
    start_redis: bool,
    /// Measure every timed row for S seconds (e.g. 0.05 for a smoke run, 10 for a stress run)
    /// instead of the mode's 0.2 s (quick) or 2 s.
    #[arg(long, value_name = "S", value_parser = parse_seconds, conflicts_with = "from_json")]
    seconds: Option<std::time::Duration>,
    /// Run only the latency or only the throughput workloads (steps measuring both, and the
    /// memory tier, run under either).
    #[arg(long, value_enum, conflicts_with = "from_json")]
    kind: Option<KindArg>,
    /// Internal: fill one side-by-side store (e.g. `redb-buffered`) with --keys keys in this
    /// process and print its memory figures; `cairn bench` runs itself this way for the memory
    /// tier.
    #[arg(long, value_name = "STORE", hide = true)]
    memory_probe: Option<String>,
    /// Keys for --memory-probe.
    #[arg(long, value_name = "N", hide = true, default_value_t = 1_000_000)]
    keys: usize,
    /// Measure nothing: load the rows of a --json FILE and print, compare, plot and write them
    /// as if they had just been measured.
    #[arg(long, value_name = "FILE")]
    from_json: Option<PathBuf>,
    /// After the table, compare every row with the saved run of a --json FILE (matched by
    /// name; change as a speed ratio, > 1 is better).
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
    /// Mark compared rows whose change exceeds PCT percent either way.
    #[arg(
        long,
        value_name = "PCT",
        default_value_t = 10.0,
        value_parser = parse_percent,
        requires = "compare"
    )]
    compare_threshold: f64,
    /// Write SVG charts of the side-by-side rows into DIR (created if missing): one per
    /// workload group, and ratios.svg with Cairn's speed over each peer's.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Write a Markdown report to FILE: header, side-by-side tables, Cairn-vs-peer ratios
    /// (with the --plot charts linked), then the other rows.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Exit with code 3 when any row misses its target, after listing the misses (a
    /// failed workload still exits 1).
    #[arg(long)]
    validate: bool,
    /// Exit with code 4 when a CI performance gate row (a same-run ratio with a generous
    /// bound) fails or is missing, after listing every gate.
    #[arg(long)]
    gate: bool,
    /// Print every row in full (figures with p99, targets, goals, notes) instead of one line
    /// per workload.
    #[arg(long)]
    wide: bool,
    /// Measure nothing: print every target and goal, the rows each checks, and where each
    /// comes from, as the Markdown table docs/benchmarks.md carries.
    #[arg(long)]
    targets: bool,
    /// Measure in the late state of a long-running process: first fill and free 3M keys in
    /// an in-memory Cairn database and 1.5M entries in each of two std maps, and run 256
    /// short-lived threads (about half a minute). Compare with a fresh run's --json.
    #[arg(long, conflicts_with = "from_json")]
    late: bool,
}

/// `cairn bench --kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum KindArg {
    /// Latency rows.
    Latency,
    /// Throughput rows.
    Throughput,
}

/// A positive, finite number of seconds.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3_600.0) {
        return Err(format!("{text} s is not between 0 and 3600 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// A percentage: a finite number, 0 or more.
fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('%').trim().parse::<f64>() {
        Ok(percent) if percent.is_finite() && percent >= 0.0 => Ok(percent),
        _ => Err(format!(
            "{text:?} is not a percentage (a number, 0 or more)"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::run(&args).unwrap_or_else(|error| {
            report_error(&error);
            ExitCode::FAILURE
        }),
        Command::Inspect(args) => offline_exit(inspect::inspect(&args.dir, args.json)),
        Command::Verify(args) => offline_exit(inspect::verify(&args.dir, args.json)),
        Command::Dump(args) => {
            let part = if args.snapshot_only {
                inspect::Part::SnapshotOnly
            } else if args.wal_only {
                inspect::Part::WalOnly
            } else {
                inspect::Part::All
            };
            let settings = inspect::DumpSettings {
                format: args.format,
                from_lsn: args.from_lsn,
                part,
                limit: args.limit,
            };
            offline_exit(inspect::dump(&args.dir, &settings))
        }
        Command::Streams(StreamsCommand::Inspect(args)) => {
            offline_exit(streams::inspect::run(&args.dir, args.json))
        }
        Command::Streams(StreamsCommand::Tail(args)) => {
            let settings = streams::tail::TailSettings {
                stream: args.stream,
                from: args.from,
                since_ms: args.since_ms,
                follow: args.follow,
                json: args.json,
                max: args.max,
                poll: std::time::Duration::from_millis(args.poll_ms),
            };
            offline_exit(streams::tail::run(&args.dir, &settings))
        }
        Command::Agent(command) => offline_exit(run_agent(command)),
        Command::Serve(args) => match serve(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                report_error(&error);
                ExitCode::FAILURE
            }
        },
    }
}

/// Runs `cairn serve` until a signal stops it.
fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let mut config = cairn_server::Config::new();
    config.mode = match args.durability {
        ServeDurability::Strict => cairn_server::Mode::Strict,
        ServeDurability::Buffered => cairn_server::Mode::Buffered,
        ServeDurability::Memory => cairn_server::Mode::Memory,
    };
    config.dir = Some(args.dir.clone());
    config.bind = args.bind;
    config.requirepass.clone_from(&args.requirepass);
    config.protected_mode = !args.no_protected_mode;
    config.maxclients = args.maxclients;
    config.timeout = (args.timeout > 0).then(|| std::time::Duration::from_secs(args.timeout));
    config.workers = args.workers;
    config.metrics_bind = args.metrics_bind;
    cairn_server::run(config, |addr| {
        // One line on stdout once the server accepts connections, for scripts that wait.
        println!("cairn serve: listening on {addr} ({:?})", args.durability);
        let _ = std::io::stdout().flush();
    })?;
    Ok(())
}

/// Runs one `cairn agent` command.
fn run_agent(command: AgentCommand) -> anyhow::Result<inspect::Outcome> {
    match command {
        AgentCommand::List(args) => agent::runs::list(&args.dir, args.status, args.json),
        AgentCommand::Show(args) => agent::runs::show(&args.dir, args.run, args.json),
        AgentCommand::Replay(args) => {
            agent::state::replay(&args.dir, args.run, args.upto, args.json)
        }
        AgentCommand::Diff(args) => agent::state::diff(&args.dir, args.left, args.right, args.json),
        AgentCommand::Verify(args) => agent::state::verify(&args.dir, args.run, args.json),
        AgentCommand::Search(args) => {
            let settings = agent::find::SearchSettings {
                text: args.query,
                run: args.run,
                primitives: args.primitive,
                tags: args.tag,
                top: args.top,
            };
            agent::find::search(&args.dir, &settings, args.json)
        }
    }
}

/// The exit code of an offline command: its outcome's, or "could not run" after an error.
fn offline_exit(outcome: anyhow::Result<inspect::Outcome>) -> ExitCode {
    match outcome {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(error) => {
            report_error(&error);
            ExitCode::from(inspect::EXIT_COULD_NOT_RUN)
        }
    }
}

/// Prints `error` and its causes as one line on stderr.
fn report_error(error: &anyhow::Error) {
    // If stderr itself is gone there is nobody left to tell.
    let _ = writeln!(std::io::stderr(), "error: {error:#}");
}
