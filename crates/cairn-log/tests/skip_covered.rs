//! Tail-only recovery (`LogOptions::skip_covered_segments`): segments wholly at or below
//! `after_lsn` are not read at open, only their headers; the default still reads everything.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use cairn_log::{list_segments, StdFileSystem, SEGMENT_HEADER_BYTES};
use common::{append_all, flip_byte, open_collect, records, strict_options, TempDir};

#[test]
fn covered_segments_are_not_read_and_appends_continue() {
    let dir = TempDir::new("skip-covered");
    let written = records(1, 300, |lsn| {
        usize::try_from(lsn * 37 % 300).expect("small")
    });
    {
        let (log, _, _) = open_collect(&dir.path, strict_options(4096), 0).expect("open");
        append_all(&log, &written);
        log.close().expect("close");
    }
    let segments = list_segments(&StdFileSystem, &dir.path).expect("list");
    assert!(segments.len() > 10);
    // The last listed segment is the empty one the close left; the one before holds the tail.
    let tail = &segments[segments.len() - 2];
    let mut options = strict_options(4096);
    options.skip_covered_segments = true;
    let (log, report, replayed) =
        open_collect(&dir.path, options.clone(), tail.first_lsn - 1).expect("reopen");
    assert_eq!(
        replayed,
        written[usize::try_from(tail.first_lsn - 1).expect("small")..]
    );
    assert_eq!(report.last_lsn, 300);
    assert_eq!(report.frames_skipped, tail.first_lsn - 1);
    // Only the tail segment (and the empty last one's first header) were read.
    assert!(report.bytes_read <= 2 * 4096, "{report:?}");
    log.append(1, 301, 0, b"next").expect("append");
    log.sync().expect("sync");
    log.close().expect("close");

    // Damage in a covered segment goes unseen with the option, and is found without it.
    flip_byte(&segments[0].path, SEGMENT_HEADER_BYTES + 30, 0x40);
    let (log, report, _) =
        open_collect(&dir.path, options, tail.first_lsn - 1).expect("tail-only reopen");
    assert_eq!(report.last_lsn, 301);
    log.close().expect("close");
    assert!(open_collect(&dir.path, strict_options(4096), 0).is_err());
}
