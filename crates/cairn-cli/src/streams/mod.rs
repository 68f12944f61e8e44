//! `cairn streams inspect` and `cairn streams tail`, and the stream-store half of
//! `cairn verify`: offline tools over a `cairn_log::stream` store directory.
//!
//! They read the files directly, following the on-disk format of `docs/streams.md` through
//! `cairn_log`'s public decoders, and never open the store: no lock is taken (a writer may
//! hold it; `inspect` and `verify` say so) and no file is created, written, renamed or
//! removed, not even the leftovers an open would clean up. Memory stays bounded whatever the
//! store holds: small files are refused above their format's size before they are read, and
//! segments are read one window and one batch at a time.
//!
//! - `inspect` ([`inspect`]): per stream, offsets, segments, bytes and consumer groups.
//! - `tail` ([`tail`]): a stream's messages from an offset or a time, as text or JSON lines,
//!   optionally following new appends by polling the files.
//! - `verify` ([`verify`], reached through `cairn verify` when the directory holds a store):
//!   every stream checked end to end, with the data directory's exit-code contract.

pub mod inspect;
pub mod store;
pub mod tail;
pub mod verify;

use comfy_table::{CellAlignment, ContentArrangement, LineStyle, Table, TableStyle};

pub use store::is_stream_store;

/// A table for the terminal: no borders, a rule under the header, two spaces between
/// columns, the columns `right` right-aligned, never wrapped.
pub(crate) fn table<'h>(
    headers: impl IntoIterator<Item = &'h str>,
    rows: impl IntoIterator<Item = Vec<String>>,
    right: &[usize],
) -> Table {
    let mut table = Table::new();
    let style = TableStyle::new().header_separator(LineStyle::none().fill('-'));
    let headers: Vec<&str> = headers.into_iter().collect();
    table
        .load_style(style)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers)
        .add_rows(rows);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
        if right.contains(&column.index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}
