//! Replays `fuzz/corpus/stream_batch/` through the property check of the `stream_batch` fuzz
//! target, as an ordinary test on stable Rust. File names carry expectations: `valid-*` seeds
//! must decode, `invalid-*` seeds must be refused, anything else (the fuzzer's finds) only has
//! to satisfy the properties. `regenerate_stream_batch_corpus` (ignored) rewrites the seeds
//! with the real encoder after a format change.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "test offsets index small vectors; a scenario reads best as one function"
)]

mod stream_fuzz_check;

use std::fs;
use std::path::{Path, PathBuf};

use cairn_log::stream::{encode_batch, Message};
use stream_fuzz_check::check_stream_batch;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/stream_batch")
}

#[test]
fn stream_batch_corpus_replays() {
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
    assert!(
        paths
            .iter()
            .filter(|p| name(p).starts_with("valid-"))
            .count()
            >= 3
    );
    assert!(
        paths
            .iter()
            .filter(|p| name(p).starts_with("invalid-"))
            .count()
            >= 3
    );
    for path in &paths {
        let bytes = fs::read(path).expect("read seed");
        let decoded = check_stream_batch(&bytes);
        let file = name(path);
        if file.starts_with("valid-") {
            assert!(decoded, "{file} must decode");
        } else if file.starts_with("invalid-") {
            assert!(!decoded, "{file} must be refused");
        }
    }
}

fn batch(timestamp_ms: u64, messages: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_batch(&mut out, timestamp_ms, messages);
    out
}

#[test]
#[ignore = "rewrites the seed corpus; run after a format change"]
fn regenerate_stream_batch_corpus() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).expect("create corpus dir");
    let one = batch(1_700_000_000_000, &[Message::value("hello")]);
    let keyed = batch(
        7,
        &[
            Message::value("v").with_key("k").with_header("h", "x"),
            Message::value(Vec::new()).with_key(Vec::new()),
            Message::value(vec![9; 300])
                .with_header("", "")
                .with_header("n", "vv"),
        ],
    );
    let many: Vec<Message> = (0..40_u8)
        .map(|i| Message::value(vec![i; usize::from(i)]))
        .collect();
    let many = batch(u64::MAX, &many);
    let mut seeds: Vec<(&str, Vec<u8>)> = vec![
        ("valid-one", one.clone()),
        ("valid-keyed-headers", keyed.clone()),
        ("valid-forty", many.clone()),
        ("invalid-empty", Vec::new()),
        ("invalid-header-only", one[..12].to_vec()),
        ("invalid-truncated", keyed[..keyed.len() - 1].to_vec()),
    ];
    let mut trailing = one.clone();
    trailing.push(0);
    seeds.push(("invalid-trailing-byte", trailing));
    let mut zero_count = one.clone();
    zero_count[8..12].copy_from_slice(&0_u32.to_le_bytes());
    seeds.push(("invalid-zero-count", zero_count));
    let mut huge_count = one.clone();
    huge_count[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    seeds.push(("invalid-huge-count", huge_count));
    let mut flags = one.clone();
    flags[12] = 0x80;
    seeds.push(("invalid-unknown-flags", flags));
    let mut huge_value = one.clone();
    huge_value[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
    seeds.push(("invalid-huge-value-length", huge_value));
    let mut headers = keyed.clone();
    headers[13] = 200;
    seeds.push(("invalid-too-many-headers", headers));
    let mut mutated = many;
    mutated[20] ^= 0x55;
    seeds.push(("mutated-forty", mutated));
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes).expect("write seed");
    }
}
