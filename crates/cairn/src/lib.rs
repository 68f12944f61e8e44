//! # Cairn
//!
//! An embedded, transactional, multi-version key-value engine. Keys and values are bytes;
//! keys are kept in order, so prefix and range scans are range reads on the index, never a
//! filter over everything.
//!
//! ```
//! use cairn::{Db, Expected};
//!
//! # fn main() -> cairn::Result<()> {
//! let db = Db::in_memory();
//! db.put("user:1", "ada")?;
//! assert_eq!(db.get("user:1")?.as_deref(), Some(&b"ada"[..]));
//!
//! let mut tx = db.begin();
//! tx.put("user:2", "grace")?;
//! tx.commit()?;
//! assert_eq!(db.scan_prefix("user:")?.count(), 2);
//!
//! let swapped = db.compare_and_swap("user:1", Expected::Value(b"ada"), Some(b"lovelace"))?;
//! assert!(swapped.is_swapped());
//! # Ok(()) }
//! ```
//!
//! Module map: [`engine`](self) holds the index and commit path; `mvcc` decides what each reader
//! sees and what may be pruned; `scan`, `transaction`, `snapshot`, `watch` and `maintenance`
//! build on them; `durable` holds the WAL commit records, checkpoints, the database identity
//! and recovery for the `Buffered` and `Strict` modes; [`limits`] lists every bound.
//!
//! The file formats are not API: [`mod@format`] offers what tools need to read them (`cairn
//! inspect`, `cairn dump`), [`verify`] checks a whole directory with recovery's own rules,
//! and the decoders' fuzz hooks live in `fuzzing`, behind the `fuzzing` cargo feature.

mod batch;
mod bounds;
mod clock;
mod db;
mod deadlines;
mod durable;
mod engine;
mod error;
pub mod format;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod integrity;
pub mod limits;
mod maintenance;
mod mvcc;
mod options;
mod scan;
mod snapshot;
mod transaction;
mod types;
#[expect(
    unsafe_code,
    reason = "a value is a reference-counted handle into a block of its own or into a \
              record; the safety argument is in the module's documentation"
)]
mod value;
mod watch;

pub use batch::WriteBatch;
pub use cairn_log::{DatabaseId, FileSystem, RecoveryMode, StdFileSystem};
pub use clock::{Clock, ManualClock, SystemClock};
pub use db::{CasOutcome, Db, Expected, Stats, Ttl};
pub use durable::checkpoint::CheckpointReport;
pub use durable::{RecoveryReport, SnapshotLoaded};
pub use error::{Error, KeyDisplay, Result};
pub use integrity::{
    verify, verify_with_progress, Damage, DamageKind, IntegrityReport, OpenVerdict, RecordCheck,
    SnapshotCheck, DAMAGED_RECORDS_LISTED_MAX,
};
pub use maintenance::MaintenanceReport;
pub use options::{Durability, Isolation, Options};
pub use scan::Scan;
pub use snapshot::Snapshot;
pub use transaction::{Transaction, TransactionScan};
pub use types::{Key, Value, Version};
pub use watch::{WakeupHook, WatchEvent, Watcher};
