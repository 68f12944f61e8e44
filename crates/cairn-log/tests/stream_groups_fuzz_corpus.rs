//! Replays `fuzz/corpus/stream_groups/` through the property check of the `stream_groups`
//! fuzz target, as an ordinary test on stable Rust. File names carry expectations: `valid-*`
//! seeds must decode, `invalid-*` seeds must be refused, anything else (the fuzzer's finds)
//! only has to satisfy the properties. `regenerate_stream_groups_corpus` (ignored) rewrites
//! the seeds with the real encoder after a format change.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod stream_groups_fuzz_check;

use std::fs;
use std::path::{Path, PathBuf};

use cairn_log::stream::GroupsFile;
use cairn_log::DatabaseId;
use stream_groups_fuzz_check::check_stream_groups;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/stream_groups")
}

#[test]
fn stream_groups_corpus_replays() {
    let mut paths: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("read corpus")
        .map(|entry| entry.expect("entry").path())
        .collect();
    paths.sort();
    let name = |path: &Path| {
        path.file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned()
    };
    let count = |prefix: &str| paths.iter().filter(|p| name(p).starts_with(prefix)).count();
    assert!(count("valid-") >= 3);
    assert!(count("invalid-") >= 3);
    for path in &paths {
        let bytes = fs::read(path).expect("read seed");
        let decoded = check_stream_groups(&bytes);
        let file = name(path);
        if file.starts_with("valid-") {
            assert!(decoded, "{file} must decode");
        } else if file.starts_with("invalid-") {
            assert!(!decoded, "{file} must be refused");
        }
    }
}

fn groups(entries: &[(&str, u64)]) -> Vec<u8> {
    GroupsFile {
        database_id: DatabaseId::from_bytes(*b"cairn-fuzz-seed!"),
        stream_id: 42,
        committed: entries
            .iter()
            .map(|(name, offset)| ((*name).to_owned(), *offset))
            .collect(),
    }
    .encode()
}

/// Re-seals `bytes` with a correct CRC, so the checks behind it are reached.
fn resealed(mut bytes: Vec<u8>) -> Vec<u8> {
    let end = bytes.len() - 4;
    let crc = crc32c::crc32c(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
#[ignore = "rewrites the seed corpus; run after a format change"]
fn regenerate_stream_groups_corpus() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).expect("create corpus dir");
    let none = groups(&[]);
    let two = groups(&[("billing", 7), ("audit.v2", u64::MAX)]);
    let long_name = "g".repeat(128);
    let many: Vec<(String, u64)> = (0..40_u64)
        .map(|i| (format!("group-{i:02}"), i * 1000))
        .collect();
    let many_refs: Vec<(&str, u64)> = many
        .iter()
        .map(|(name, offset)| (name.as_str(), *offset))
        .collect();
    let many = groups(&many_refs);
    let mut seeds: Vec<(&str, Vec<u8>)> = vec![
        ("valid-none", none.clone()),
        ("valid-two", two.clone()),
        ("valid-long-name", groups(&[(&long_name, 1)])),
        ("valid-forty", many.clone()),
        ("invalid-empty", Vec::new()),
        ("invalid-header-only", none[..40].to_vec()),
        ("invalid-truncated", two[..two.len() - 1].to_vec()),
    ];
    let mut trailing = two.clone();
    trailing.insert(trailing.len() - 4, 0);
    seeds.push(("invalid-trailing-byte", resealed(trailing)));
    let mut huge_count = two.clone();
    huge_count[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    seeds.push(("invalid-huge-count", resealed(huge_count)));
    let mut bad_name = two.clone();
    bad_name[49] = b'/';
    seeds.push(("invalid-name-byte", resealed(bad_name)));
    let mut unordered = groups(&[("a", 1), ("b", 2)]);
    unordered[49] = b'c';
    seeds.push(("invalid-names-out-of-order", resealed(unordered)));
    let mut version = two.clone();
    version[8] = 9;
    seeds.push(("invalid-version", resealed(version)));
    let mut flipped = two;
    flipped[45] ^= 0x10;
    seeds.push(("invalid-bit-flip", flipped));
    let mut mutated = many;
    mutated[60] ^= 0x55;
    seeds.push(("mutated-forty", mutated));
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes).expect("write seed");
    }
}
