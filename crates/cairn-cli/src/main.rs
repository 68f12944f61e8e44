//! `cairn`: the command-line tool of the Cairn storage engine.
//!
//! Today it has one command, `cairn bench`, which runs the engine-core workloads of
//! `cairn-bench` in this process and checks them against the targets of `DESIGN.md`. Errors
//! are reported as one `error:` line (with its causes) and exit code 1; bad arguments get
//! clap's usage message and exit code 2. Nothing here panics on any input.

mod bench;
mod machine;

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
    /// Runs the engine benchmarks in this process and checks them against DESIGN.md's targets.
    Bench(BenchArgs),
}

/// Options of `cairn bench`.
#[derive(Debug, Args)]
struct BenchArgs {
    /// Shorter measurements (well under a minute); the 1M-key database is still used.
    #[arg(long)]
    quick: bool,
    /// Also write every result as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run only the workloads whose name contains SUBSTR (e.g. `cas`, `get_at_scale`).
    #[arg(long, value_name = "SUBSTR")]
    filter: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Bench(args) => bench::run(&bench::Settings {
            quick: args.quick,
            json: args.json,
            filter: args.filter,
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // If stderr itself is gone there is nobody left to tell.
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
