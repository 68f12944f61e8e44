//! `cairn inspect`, `cairn verify` and `cairn dump`: offline tools over a data directory.
//!
//! All three only read: no file is created, written, renamed or removed, and no lock is
//! taken beyond a momentary shared probe of the `LOCK` file to tell whether the database is
//! open elsewhere. They read the files through the same decoders recovery uses
//! (`cairn_log::reader` for the WAL, `cairn::format` for snapshots and commit bodies), and
//! `verify` is `cairn::verify`, recovery's own rules, formatted: so what they report is what
//! `Db::open` would see, not a second opinion. Memory stays bounded: files are read a block or a frame at a
//! time and nothing collects the whole directory.
//!
//! - `inspect` is fast: headers, and a frame scan per segment (checksums, no body decoding).
//! - `verify` is thorough: every snapshot end to end, every frame's checksum and LSN, every
//!   commit body decoded; it exits 0 (intact, a torn tail included), 1 (damage found) or 2
//!   (could not run).
//! - `dump` streams the newest valid snapshot and the WAL records after it, one line each.
//!
//! Trade-off: `verify` and `dump` read the WAL twice (once to classify it exactly as recovery
//! would, once to decode the records that classification kept), buying exact agreement with
//! recovery at the cost of a second sequential read.

mod dump;
pub mod escape;
pub mod layout;
mod summary;
mod verify;

pub use dump::{run as dump, DumpSettings, Format, Part};
pub use summary::run as inspect;
pub use verify::run as verify;

/// How an offline command ended when it could run at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing damaged was found (a torn tail of the last segment counts as intact).
    Intact,
    /// Damage was found and reported.
    Damaged,
}

/// Exit code for [`Outcome::Intact`].
pub const EXIT_INTACT: u8 = 0;
/// Exit code for [`Outcome::Damaged`].
pub const EXIT_DAMAGED: u8 = 1;
/// Exit code when the command could not run (missing directory, permission, I/O error).
pub const EXIT_COULD_NOT_RUN: u8 = 2;

impl Outcome {
    /// The process exit code for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Intact => EXIT_INTACT,
            Outcome::Damaged => EXIT_DAMAGED,
        }
    }
}

/// Writes `document` as pretty JSON and a newline to `out`.
pub fn write_json(
    out: &mut impl std::io::Write,
    document: &impl serde::Serialize,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, document).map_err(std::io::Error::from)?;
    writeln!(out)?;
    out.flush()
}

/// Prints `document` to stdout: pretty JSON with `json`, else by `text`. A closed stdout is
/// success (see [`ignore_closed_stdout`]).
pub fn print_document<T: serde::Serialize>(
    json: bool,
    document: &T,
    text: impl FnOnce(&mut std::io::StdoutLock<'static>, &T) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    ignore_closed_stdout(if json {
        write_json(&mut out, document)
    } else {
        text(&mut out, document)
    })
}

/// Treats a closed stdout as success: `cairn verify DIR | head` has told its reader enough.
pub fn ignore_closed_stdout(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
