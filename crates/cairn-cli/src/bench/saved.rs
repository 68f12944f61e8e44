//! Saved runs: the JSON document `--json` writes and `--from-json` and `--compare` read.
//! Loading checks that the file is one (its `tool` is `cairn bench`; fields added since the
//! first format may be absent) and recomputes each row's figure, so a loaded run prints like
//! the live one; any other file is an error naming it, never a panic. Output files are opened
//! before the run but emptied only when their new content is written ([`OutputFile`]), so a
//! run that stops early leaves the previous file, and `--from-json F --json F` is safe.

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

/// A run: how, when and where it measured (`mode`: quick or full; `build`: release or
/// debug), the rows that met and missed their target, the failed workloads, and every row in
/// the order measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedRun {
    pub tool: String,
    pub version: String,
    pub mode: String,
    pub build: String,
    pub command: Option<String>,
    pub date: String,
    pub machine: Machine,
    pub filter: Option<String>,
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub elapsed_seconds: f64,
    #[serde(default)]
    pub passed: usize,
    #[serde(default)]
    pub missed: usize,
    #[serde(default)]
    pub failed: Vec<Failure>,
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
