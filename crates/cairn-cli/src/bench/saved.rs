//! Saved runs: the JSON document `cairn bench --json` writes, read back by `--from-json` and
//! `--compare`.
//!
//! A [`SavedRun`] holds everything a run printed: tool and version, mode, build, command line,
//! date, machine, notes, failed workloads and every row with all its percentiles. Loading
//! checks that the file is such a document (its `tool` is `cairn bench`) and recomputes each
//! row's "measured" column, so a loaded run prints exactly like the live one; fields added
//! since the first format default when absent. A file that is missing, not JSON, or JSON of
//! another shape is an error naming the file; nothing here panics on any input.
//!
//! Output files are opened before anything is measured (a bad path fails at once) but only
//! emptied when their new content is written ([`OutputFile`]), so a run that stops early
//! leaves the previous report in place, and `--from-json F --json F` rewrites F safely.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use super::report::Row;
use crate::machine::Machine;

/// The `tool` field of every saved run.
pub const TOOL: &str = "cairn bench";

/// A workload that failed, and why (the error with its causes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    pub name: String,
    pub error: String,
}

/// The JSON document `--json` writes and `--from-json` and `--compare` read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedRun {
    /// Always [`TOOL`].
    pub tool: String,
    /// The version of `cairn` that measured.
    pub version: String,
    /// `quick` or `full`.
    pub mode: String,
    /// `release` or `debug`.
    pub build: String,
    /// The command line that measured.
    pub command: Option<String>,
    /// When the run started, `YYYY-MM-DD HH:MM:SS UTC`.
    pub date: String,
    pub machine: Machine,
    /// The `--filter` of the run (`A, then B` after `--from-json --filter B`).
    pub filter: Option<String>,
    /// How the rows were measured: printed after the `--wide` table and in the report.
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub elapsed_seconds: f64,
    /// Rows that met their target.
    #[serde(default)]
    pub passed: usize,
    /// Rows that missed their target.
    #[serde(default)]
    pub missed: usize,
    #[serde(default)]
    pub failed: Vec<Failure>,
    /// Every row, in the order measured.
    pub results: Vec<Row>,
}

impl SavedRun {
    /// Reads the saved run at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the saved run {}", path.display()))?;
        let context = || {
            let path = path.display();
            format!("{path} is not a JSON file written by `cairn bench --json`")
        };
        let mut run: SavedRun = serde_json::from_str(&text).with_context(context)?;
        if run.tool != TOOL {
            return Err(anyhow::anyhow!("its tool is {:?}, not {TOOL:?}", run.tool))
                .with_context(context);
        }
        run.results.iter_mut().for_each(Row::refresh_figure);
        Ok(run)
    }

    /// Keeps only the rows whose name contains `filter`; an error when none does.
    pub fn retain_matching(&mut self, filter: &str) -> Result<()> {
        let names: Vec<String> = self.results.iter().map(|row| row.name.clone()).collect();
        self.results.retain(|row| row.name.contains(filter));
        self.failed.retain(|failure| failure.name.contains(filter));
        if self.results.is_empty() && self.failed.is_empty() {
            let names = names.join("\n  ");
            bail!("no row name contains {filter:?}; the rows are:\n  {names}");
        }
        self.filter = Some(match self.filter.take() {
            Some(earlier) => format!("{earlier}, then {filter}"),
            None => filter.to_owned(),
        });
        (self.passed, self.missed) = cairn_bench::report::tally(&self.results);
        Ok(())
    }

    /// Prints what measured and when: mode, build, version, machine and date (the notes
    /// follow the table); `loaded_from` names the file of a loaded run.
    pub fn write_header(&self, out: &mut impl Write, loaded_from: Option<&Path>) -> io::Result<()> {
        let (mode, build, version) = (&self.mode, &self.build, &self.version);
        write!(
            out,
            "cairn bench: {mode} mode, {build} build, cairn {version}"
        )?;
        if let Some(path) = loaded_from {
            write!(out, " (loaded from {})", path.display())?;
        }
        let machine = describe_machine(&self.machine);
        writeln!(out, "\nmachine: {machine}\ndate:    {}\n", self.date)?;
        out.flush()
    }
}

/// `2 CPUs, AMD EPYC (linux-x86_64)`.
pub fn describe_machine(machine: &Machine) -> String {
    format!(
        "{} CPUs, {} ({})",
        machine.cpus, machine.cpu_model, machine.platform
    )
}

/// This process's command line as `cairn bench ...`, quoted as a shell would need it.
pub fn command_line() -> String {
    let arguments: Vec<String> = (std::env::args_os().skip(1))
        .map(|argument| argument.to_string_lossy().into_owned())
        .collect();
    let quoted = shlex::try_join(arguments.iter().map(String::as_str));
    format!("cairn {}", quoted.unwrap_or_else(|_| arguments.join(" ")))
}

/// A file opened (created if missing, never emptied) before the run, and replaced in full
/// once its content is ready; `what` names it in errors (`JSON`, `Markdown`).
pub struct OutputFile {
    file: File,
    pub path: PathBuf,
    what: &'static str,
}

impl OutputFile {
    /// Opens `path`, if any, for writing.
    pub fn open(path: Option<&PathBuf>, what: &'static str) -> Result<Option<Self>> {
        let Some(path) = path else { return Ok(None) };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path);
        let file =
            file.with_context(|| format!("cannot create the {what} file {}", path.display()))?;
        Ok(Some(OutputFile {
            file,
            path: path.clone(),
            what,
        }))
    }

    /// Empties the file and writes `content` into it.
    pub fn replace_with(
        self,
        content: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
    ) -> Result<()> {
        let OutputFile {
            mut file,
            path,
            what,
        } = self;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| {
                let mut writer = BufWriter::new(file);
                content(&mut writer)?;
                writer.flush()
            })
            .with_context(|| format!("cannot write the {what} file {}", path.display()))
    }
}
