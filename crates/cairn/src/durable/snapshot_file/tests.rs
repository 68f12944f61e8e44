//! Tests of the snapshot file: round trips through the writer and both readers, the layout
//! byte for byte against the documented format, and damage of every kind (truncation, flipped
//! bits, resealed structural damage, random bytes), which must be refused and never panic.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cairn_log::fs::{DirLock, FileHandle, FileSystem, OpenMode};
use cairn_log::DatabaseId;

use super::format::*;
use super::reader::*;
use super::writer::*;
use crate::limits::KEY_BYTES_MAX;

/// A file system in memory: enough of the trait for the writer and reader.
#[derive(Debug, Default)]
struct MemoryFileSystem {
    files: Mutex<HashMap<PathBuf, Arc<Mutex<Vec<u8>>>>>,
}

#[derive(Debug)]
struct MemoryFile {
    bytes: Arc<Mutex<Vec<u8>>>,
}

fn poisoned() -> io::Error {
    io::Error::other("lock poisoned")
}

impl FileHandle for MemoryFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let bytes = self.bytes.lock().map_err(|_| poisoned())?;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let available = bytes.get(start..).unwrap_or_default();
        let count = available.len().min(buf.len());
        buf[..count].copy_from_slice(&available[..count]);
        Ok(count)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut bytes = self.bytes.lock().map_err(|_| poisoned())?;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start + buf.len();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[start..end].copy_from_slice(buf);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let length = usize::try_from(len).map_err(io::Error::other)?;
        self.bytes.lock().map_err(|_| poisoned())?.resize(length, 0);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.bytes.lock().map_err(|_| poisoned())?.len() as u64)
    }
}

impl FileSystem for MemoryFileSystem {
    fn create_dir_all(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list_dir(&self, _path: &Path) -> io::Result<Vec<String>> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FileHandle>> {
        let mut files = self.files.lock().map_err(|_| poisoned())?;
        let bytes = match (mode, files.get(path)) {
            (OpenMode::CreateNew, Some(_)) => {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists))
            }
            (OpenMode::CreateNew, None) => {
                let bytes = Arc::new(Mutex::new(Vec::new()));
                files.insert(path.to_path_buf(), Arc::clone(&bytes));
                bytes
            }
            (_, Some(bytes)) => Arc::clone(bytes),
            (_, None) => return Err(io::Error::from(io::ErrorKind::NotFound)),
        };
        Ok(Box::new(MemoryFile { bytes }))
    }

    fn rename(&self, _from: &Path, _to: &Path) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut files = self.files.lock().map_err(|_| poisoned())?;
        files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn lock_dir(&self, _path: &Path) -> io::Result<Box<dyn DirLock>> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

impl MemoryFileSystem {
    fn bytes(&self, path: &Path) -> Vec<u8> {
        let files = self.files.lock().expect("files lock");
        let file = files.get(path).expect("file exists");
        let bytes = file.lock().expect("file lock").clone();
        bytes
    }
}

/// An owned copy of a [`SnapshotEntry`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnedEntry {
    key: Vec<u8>,
    value: Vec<u8>,
    version: u64,
    deadline_millis: u64,
}

impl OwnedEntry {
    fn borrow(&self) -> SnapshotEntry<'_> {
        SnapshotEntry {
            key: &self.key,
            value: &self.value,
            version: self.version,
            deadline_millis: self.deadline_millis,
        }
    }
}

const SNAPSHOT_VERSION: u64 = 1_000_000;
const WAL_LSN: u64 = 77;
const CREATED_UNIX_MILLIS: u64 = 1_700_000_000_123;
const DATABASE_ID: DatabaseId = DatabaseId::from_bytes(*b"snapshot-test-id");

/// Writes `entries` into a fresh in-memory file and returns the header and the file's bytes.
fn write_snapshot(entries: &[OwnedEntry], block_target_bytes: usize) -> (SnapshotHeader, Vec<u8>) {
    let fs = MemoryFileSystem::default();
    let path = Path::new("snapshot");
    let mut writer = SnapshotWriter::create(
        &fs,
        path,
        SNAPSHOT_VERSION,
        WAL_LSN,
        CREATED_UNIX_MILLIS,
        DATABASE_ID,
    )
    .expect("create writer")
    .with_block_target(block_target_bytes);
    for entry in entries {
        writer.push(entry.borrow()).expect("push entry");
    }
    let header = writer.finish().expect("finish snapshot");
    (header, fs.bytes(path))
}

fn decode_all(bytes: &[u8]) -> Result<(SnapshotHeader, Vec<OwnedEntry>), SnapshotError> {
    let mut entries = Vec::new();
    let header = decode_snapshot_bytes(bytes, &mut |entry| {
        entries.push(OwnedEntry {
            key: entry.key.to_vec(),
            value: entry.value.to_vec(),
            version: entry.version,
            deadline_millis: entry.deadline_millis,
        });
        Ok(())
    })?;
    Ok((header, entries))
}

/// `count` entries with keys `key-00000000`.., values of varied lengths (some empty),
/// varied versions and deadlines.
fn sample_entries(count: usize) -> Vec<OwnedEntry> {
    (0..count)
        .map(|index| OwnedEntry {
            key: format!("key-{index:08}").into_bytes(),
            value: vec![u8::try_from(index % 251).expect("below 256"); (index * 37) % 300],
            version: (index as u64 * 13) % SNAPSHOT_VERSION,
            deadline_millis: if index % 3 == 0 {
                SNAPSHOT_DEADLINE_NONE
            } else {
                index as u64
            },
        })
        .collect()
}

/// Nine small entries; with a 100-byte block target they fill exactly three blocks.
fn three_block_snapshot() -> (Vec<OwnedEntry>, Vec<u8>) {
    let entries: Vec<OwnedEntry> = (0..9_u8)
        .map(|index| OwnedEntry {
            key: vec![b'a' + index, b'k'],
            value: vec![index; usize::from(index % 4) * 3],
            version: u64::from(index) + 1,
            deadline_millis: if index == 4 {
                5_000
            } else {
                SNAPSHOT_DEADLINE_NONE
            },
        })
        .collect();
    let (header, bytes) = write_snapshot(&entries, 100);
    assert_eq!(header.block_count, 3, "the fixture must span three blocks");
    (entries, bytes)
}

fn expect_corrupted(
    result: Result<(SnapshotHeader, Vec<OwnedEntry>), SnapshotError>,
    what: &str,
) -> u64 {
    match result {
        Err(SnapshotError::Corrupted { offset, .. }) => offset,
        Err(other) => panic!("{what}: expected Corrupted, got {other}"),
        Ok((header, entries)) => {
            panic!("{what}: decoded {header:?} with {} entries", entries.len())
        }
    }
}

#[test]
fn empty_snapshot_round_trips_as_header_and_footer_only() {
    let (header, bytes) = write_snapshot(&[], BLOCK_TARGET_BYTES);
    assert_eq!(bytes.len(), SNAPSHOT_HEADER_BYTES + SNAPSHOT_FOOTER_BYTES);
    assert_eq!(
        header,
        SnapshotHeader {
            snapshot_version: SNAPSHOT_VERSION,
            wal_lsn: WAL_LSN,
            entry_count: 0,
            block_count: 0,
            created_unix_millis: CREATED_UNIX_MILLIS,
            database_id: DATABASE_ID,
        }
    );
    let (decoded, entries) = decode_all(&bytes).expect("decode empty snapshot");
    assert_eq!(decoded, header);
    assert!(entries.is_empty());
}

#[test]
fn one_entry_snapshot_matches_the_documented_layout_byte_for_byte() {
    let entry = OwnedEntry {
        key: b"k1".to_vec(),
        value: b"val".to_vec(),
        version: 9,
        deadline_millis: SNAPSHOT_DEADLINE_NONE,
    };
    let (header, bytes) = write_snapshot(std::slice::from_ref(&entry), BLOCK_TARGET_BYTES);
    assert_eq!(header.entry_count, 1);
    assert_eq!(header.block_count, 1);

    let mut expected = Vec::new();
    expected.extend_from_slice(b"CAIRNSNP");
    expected.extend_from_slice(&2_u32.to_le_bytes());
    expected.extend_from_slice(&80_u32.to_le_bytes());
    expected.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    expected.extend_from_slice(&WAL_LSN.to_le_bytes());
    expected.extend_from_slice(&1_u64.to_le_bytes());
    expected.extend_from_slice(&1_u64.to_le_bytes());
    expected.extend_from_slice(&CREATED_UNIX_MILLIS.to_le_bytes());
    expected.extend_from_slice(b"snapshot-test-id");
    expected.extend_from_slice(&0_u32.to_le_bytes());
    let header_crc = crc32c::crc32c(&expected);
    expected.extend_from_slice(&header_crc.to_le_bytes());
    assert_eq!(expected.len(), 80);

    let block_start = expected.len();
    expected.extend_from_slice(&(24_u32 + 2 + 3).to_le_bytes());
    expected.extend_from_slice(&1_u32.to_le_bytes());
    expected.extend_from_slice(&2_u32.to_le_bytes());
    expected.extend_from_slice(&3_u32.to_le_bytes());
    expected.extend_from_slice(&9_u64.to_le_bytes());
    expected.extend_from_slice(&u64::MAX.to_le_bytes());
    expected.extend_from_slice(b"k1val");
    let block_crc = crc32c::crc32c(&expected[block_start..]);
    expected.extend_from_slice(&block_crc.to_le_bytes());

    let footer_start = expected.len();
    expected.extend_from_slice(b"CAIRNEND");
    expected.extend_from_slice(&1_u64.to_le_bytes());
    expected.extend_from_slice(&1_u64.to_le_bytes());
    let chain = crc32c::crc32c_append(0, &block_crc.to_le_bytes());
    let footer_crc = crc32c::crc32c_append(chain, &expected[footer_start..]);
    expected.extend_from_slice(&footer_crc.to_le_bytes());
    expected.extend_from_slice(&0_u32.to_le_bytes());

    assert_eq!(bytes, expected);
    let (_, entries) = decode_all(&bytes).expect("decode one entry");
    assert_eq!(entries, vec![entry]);
}

#[test]
fn ten_thousand_varied_entries_round_trip_including_one_larger_than_a_block() {
    let mut entries = sample_entries(10_000);
    let large_value_bytes = BLOCK_TARGET_BYTES + 12_345;
    entries[5_000].value = (0..large_value_bytes)
        .map(|index| u8::try_from(index % 256).expect("below 256"))
        .collect();
    entries[5_001].key = vec![b'k'; KEY_BYTES_MAX];
    entries[5_001].key[..12].copy_from_slice(b"key-00005001");
    let (header, bytes) = write_snapshot(&entries, BLOCK_TARGET_BYTES);
    assert_eq!(header.entry_count, 10_000);
    assert!(header.block_count >= 7, "{} blocks", header.block_count);

    let (decoded, decoded_entries) = decode_all(&bytes).expect("decode 10,000 entries");
    assert_eq!(decoded, header);
    assert_eq!(decoded_entries.len(), entries.len());
    assert_eq!(decoded_entries, entries);
    assert!(entries.iter().any(|entry| entry.value.is_empty()));
}

#[test]
fn read_snapshot_and_read_header_agree_with_the_bytes_decoder_through_a_real_file() {
    let dir = std::env::temp_dir().join(format!("cairn-snapshot-file-{}", std::process::id()));
    let fs = cairn_log::fs::StdFileSystem;
    fs.create_dir_all(&dir).expect("create dir");
    let path = dir.join("snapshot.tmp");
    let _ = std::fs::remove_file(&path);
    let entries = sample_entries(3_000);
    let mut writer = SnapshotWriter::create(
        &fs,
        &path,
        SNAPSHOT_VERSION,
        WAL_LSN,
        CREATED_UNIX_MILLIS,
        DATABASE_ID,
    )
    .expect("create writer")
    .with_block_target(4_096);
    for entry in &entries {
        writer.push(entry.borrow()).expect("push");
    }
    let written = writer.finish().expect("finish");
    assert!(written.block_count > 10);

    assert_eq!(read_header(&fs, &path).expect("read header"), written);
    let mut visited = Vec::new();
    let read = read_snapshot(&fs, &path, &mut |entry| {
        visited.push((
            entry.key.to_vec(),
            entry.value.to_vec(),
            entry.version,
            entry.deadline_millis,
        ));
        Ok(())
    })
    .expect("read snapshot");
    assert_eq!(read, written);
    let expected: Vec<_> = entries
        .iter()
        .map(|entry| {
            (
                entry.key.clone(),
                entry.value.clone(),
                entry.version,
                entry.deadline_millis,
            )
        })
        .collect();
    assert_eq!(visited, expected);

    let create_again =
        SnapshotWriter::create(&fs, &path, 1, 1, 1, DATABASE_ID).expect_err("the name is taken");
    assert!(
        matches!(create_again, SnapshotError::Io { .. }),
        "{create_again}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn header_fields_are_stored_and_read_back() {
    let (entries, bytes) = three_block_snapshot();
    let fs = MemoryFileSystem::default();
    let path = Path::new("copy");
    fs.open(path, OpenMode::CreateNew)
        .expect("create copy")
        .write_all_at(&bytes, 0)
        .expect("write copy");
    let header = read_header(&fs, path).expect("read header");
    assert_eq!(
        header,
        SnapshotHeader {
            snapshot_version: SNAPSHOT_VERSION,
            wal_lsn: WAL_LSN,
            entry_count: 9,
            block_count: 3,
            created_unix_millis: CREATED_UNIX_MILLIS,
            database_id: DATABASE_ID,
        }
    );
    assert_eq!(&bytes[..8], b"CAIRNSNP");
    assert_eq!(&bytes[bytes.len() - 32..bytes.len() - 24], b"CAIRNEND");
    let (decoded, decoded_entries) = decode_all(&bytes).expect("decode");
    assert_eq!(decoded, header);
    assert_eq!(decoded_entries, entries);
}

#[test]
fn every_single_bit_flip_is_reported_as_corrupted() {
    let (_, bytes) = three_block_snapshot();
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let offset = expect_corrupted(decode_all(&damaged), &format!("bit {bit} flipped"));
        assert!(
            offset <= bytes.len() as u64,
            "bit {bit}: offset {offset} past the end"
        );
    }
}

#[test]
fn every_truncation_and_any_trailing_byte_is_reported_as_corrupted() {
    let (_, bytes) = three_block_snapshot();
    for length in 0..bytes.len() {
        expect_corrupted(
            decode_all(&bytes[..length]),
            &format!("truncated to {length} bytes"),
        );
    }
    let mut extended = bytes.clone();
    extended.push(0);
    expect_corrupted(decode_all(&extended), "one byte appended");
    let mut doubled_footer = bytes.clone();
    doubled_footer.extend_from_slice(&bytes[bytes.len() - SNAPSHOT_FOOTER_BYTES..]);
    expect_corrupted(decode_all(&doubled_footer), "footer repeated");
}

#[test]
fn a_zeroed_header_from_an_unfinished_writer_is_corrupted_at_offset_zero() {
    let fs = MemoryFileSystem::default();
    let path = Path::new("unfinished");
    let mut writer = SnapshotWriter::create(
        &fs,
        path,
        SNAPSHOT_VERSION,
        WAL_LSN,
        CREATED_UNIX_MILLIS,
        DATABASE_ID,
    )
    .expect("create")
    .with_block_target(100);
    for entry in &three_block_snapshot().0 {
        writer.push(entry.borrow()).expect("push");
    }
    // A crash before finish: the blocks are written, the header is still zeros.
    drop(writer);
    let bytes = fs.bytes(path);
    assert!(bytes.len() > SNAPSHOT_HEADER_BYTES);
    assert!(bytes[..SNAPSHOT_HEADER_BYTES].iter().all(|&byte| byte == 0));
    assert_eq!(expect_corrupted(decode_all(&bytes), "unfinished"), 0);
    let error = read_header(&fs, path).expect_err("unfinished header");
    assert!(
        matches!(error, SnapshotError::Corrupted { offset: 0, .. }),
        "{error}"
    );

    // A finished file whose header is zeroed again is refused the same way.
    let (_, mut finished) = three_block_snapshot();
    finished[..SNAPSHOT_HEADER_BYTES].fill(0);
    assert_eq!(expect_corrupted(decode_all(&finished), "zeroed header"), 0);
}

#[test]
fn keys_out_of_order_or_repeated_are_refused_and_nothing_is_written() {
    let fs = MemoryFileSystem::default();
    let path = Path::new("order");
    let mut writer = SnapshotWriter::create(&fs, path, 10, 0, 0, DATABASE_ID).expect("create");
    let entry = |key: &'static [u8]| SnapshotEntry {
        key,
        value: b"v",
        version: 1,
        deadline_millis: SNAPSHOT_DEADLINE_NONE,
    };
    writer.push(entry(b"b")).expect("first key");
    let too_long = vec![b'z'; KEY_BYTES_MAX + 1];
    for bad_key in [&b"a"[..], b"b", b"", &too_long] {
        let error = writer
            .push(SnapshotEntry {
                key: bad_key,
                ..entry(b"x")
            })
            .expect_err("bad key must be refused");
        assert!(matches!(error, SnapshotError::Corrupted { .. }), "{error}");
    }
    let order_error = writer.push(entry(b"a")).expect_err("out of order");
    assert!(
        order_error.to_string().contains("keys out of order"),
        "{order_error}"
    );
    let newer = writer
        .push(SnapshotEntry {
            version: 11,
            ..entry(b"c")
        })
        .expect_err("version above the snapshot");
    assert!(matches!(newer, SnapshotError::Corrupted { .. }), "{newer}");
    // The refused entries left no trace: the writer goes on and the file holds two entries.
    writer.push(entry(b"c")).expect("next key in order");
    let header = writer.finish().expect("finish");
    assert_eq!(header.entry_count, 2);
    let (_, entries) = decode_all(&fs.bytes(path)).expect("decode");
    let keys: Vec<&[u8]> = entries.iter().map(|entry| entry.key.as_slice()).collect();
    assert_eq!(keys, vec![&b"b"[..], b"c"]);
}

#[test]
fn an_error_from_visit_stops_the_load_as_rejected() {
    let (_, bytes) = three_block_snapshot();
    let mut visited = 0;
    let error = decode_snapshot_bytes(&bytes, &mut |_| {
        visited += 1;
        if visited == 5 {
            Err("out of memory budget".to_owned())
        } else {
            Ok(())
        }
    })
    .expect_err("visit rejects");
    assert_eq!(visited, 5);
    match error {
        SnapshotError::Rejected(reason) => assert_eq!(reason, "out of memory budget"),
        other => panic!("expected Rejected, got {other}"),
    }
}

/// Reseals a block's and the footer's checksums after a test edits a block, so the decoder's
/// structural checks (not only the checksums) are exercised.
fn reseal(bytes: &mut [u8], block_offsets: &[usize]) {
    let mut chain = 0;
    for &offset in block_offsets {
        let entries_bytes =
            u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        let crc_offset = offset + BLOCK_HEADER_BYTES + entries_bytes;
        let crc = crc32c::crc32c(&bytes[offset..crc_offset]);
        bytes[crc_offset..crc_offset + 4].copy_from_slice(&crc.to_le_bytes());
        chain = crc32c::crc32c_append(chain, &crc.to_le_bytes());
    }
    let footer = bytes.len() - SNAPSHOT_FOOTER_BYTES;
    let footer_crc = crc32c::crc32c_append(chain, &bytes[footer..footer + 24]);
    bytes[footer + 24..footer + 28].copy_from_slice(&footer_crc.to_le_bytes());
}

#[test]
fn resealed_structural_damage_is_still_caught() {
    let entries = vec![
        OwnedEntry {
            key: b"a".to_vec(),
            value: b"1".to_vec(),
            version: 1,
            deadline_millis: 0,
        },
        OwnedEntry {
            key: b"b".to_vec(),
            value: b"2".to_vec(),
            version: 2,
            deadline_millis: 0,
        },
    ];
    let (_, bytes) = write_snapshot(&entries, BLOCK_TARGET_BYTES);
    let block = SNAPSHOT_HEADER_BYTES;
    let first_key = block + BLOCK_HEADER_BYTES + ENTRY_HEADER_BYTES;
    let second_key = first_key + 2 + ENTRY_HEADER_BYTES;
    assert_eq!(bytes[first_key], b'a');
    assert_eq!(bytes[second_key], b'b');

    let mut swapped = bytes.clone();
    swapped[first_key] = b'b';
    swapped[second_key] = b'a';
    reseal(&mut swapped, &[block]);
    assert_eq!(
        expect_corrupted(decode_all(&swapped), "swapped keys"),
        (second_key - ENTRY_HEADER_BYTES) as u64
    );

    let mut repeated = bytes.clone();
    repeated[second_key] = b'a';
    reseal(&mut repeated, &[block]);
    expect_corrupted(decode_all(&repeated), "repeated key");

    let mut newer = bytes.clone();
    let version_offset = block + BLOCK_HEADER_BYTES + 8;
    newer[version_offset..version_offset + 8]
        .copy_from_slice(&(SNAPSHOT_VERSION + 1).to_le_bytes());
    reseal(&mut newer, &[block]);
    expect_corrupted(decode_all(&newer), "version above the snapshot");

    let mut fewer = bytes.clone();
    fewer[block + 4] = 1;
    reseal(&mut fewer, &[block]);
    expect_corrupted(decode_all(&fewer), "block claims one entry of two");

    let mut huge_key = bytes.clone();
    let key_bytes_offset = block + BLOCK_HEADER_BYTES;
    huge_key[key_bytes_offset..key_bytes_offset + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut huge_key, &[block]);
    expect_corrupted(decode_all(&huge_key), "key length u32::MAX");

    let mut huge_block = bytes.clone();
    huge_block[block..block + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        expect_corrupted(decode_all(&huge_block), "block length u32::MAX"),
        block as u64
    );
}

#[test]
fn random_multi_byte_damage_never_panics_and_never_decodes() {
    let (_, bytes) = three_block_snapshot();
    // xorshift64, seeded, so a failure reproduces.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..5_000 {
        let mut damaged = bytes.clone();
        for _ in 0..=(next() % 4) {
            let position = usize::try_from(next() % damaged.len() as u64).expect("fits");
            damaged[position] = u8::try_from(next() & 0xff).expect("masked");
        }
        if damaged == bytes {
            continue;
        }
        expect_corrupted(decode_all(&damaged), &format!("round {round}"));
    }
}
