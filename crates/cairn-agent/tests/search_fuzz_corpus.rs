//! The search index's decoders on untrusted bytes, as ordinary tests on stable Rust:
//! - the `agent_search` fuzz corpus (`fuzz/corpus/agent_search/`) replayed through the same
//!   property check as the fuzz target (`search_fuzz_checks/mod.rs`);
//! - seeded random inputs, proptest-style: random bytes of every small length, and every
//!   truncation and single-bit flip of real records, postings and counters. Each must decode
//!   to a canonical value or be refused with a typed error; none may panic.
//!
//! File names carry expectations: `valid-record-*`, `valid-posting-*`, `valid-counter-*` and
//! `valid-block-*` seeds must decode as that value, `invalid-*` seeds as no stored value, other names
//! (what the fuzzer found) only have to satisfy the properties. The seeds come from
//! `regenerate_search_seed_corpus` (ignored; run it with `--ignored` after a format change),
//! which builds them from a real index.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::fs;
use std::path::{Path, PathBuf};

use cairn::Db;
use cairn_agent::search::format::{SPACE_BLOCK, SPACE_COUNTER, SPACE_DOC, SPACE_POSTING};
use cairn_agent::search::{Doc, Indexer, Primitive};
use cairn_testkit::SplitMix64;

mod search_fuzz_checks;
use search_fuzz_checks::{check_search_bytes, Decoded};

const TARGET: &str = "agent_search";
/// Fewest files the corpus may hold: the seeds alone are more.
const CORPUS_FILES_MIN: usize = 12;
/// Most files it may hold; minimize (`cargo fuzz cmin`) past this.
const CORPUS_FILES_MAX: usize = 200;
const CORPUS_FILE_BYTES_MAX: usize = 64 * 1024;
const RANDOM_INPUTS: u64 = 200_000;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(TARGET)
}

/// Real stored values from a small index: (kind, bytes).
fn real_values() -> Vec<(&'static str, Vec<u8>)> {
    let db = Db::in_memory();
    let index = Indexer::new(b"ix/".to_vec()).expect("prefix");
    let docs = [
        Doc::new(
            "e1",
            "run-1",
            Primitive::Event,
            1_700_000_000_000,
            "Tool call failed: timeout",
        )
        .tag("tool")
        .tag("error"),
        Doc::new(
            "t1",
            "run-1",
            Primitive::Trace,
            5,
            "retry retry retry the call",
        ),
        Doc::new("j1", "run-2", Primitive::Json, 9, "Größe naïve über"),
        Doc::new("s1", "run-2", Primitive::State, 0, ""),
    ];
    let mut tx = db.begin();
    for doc in &docs {
        index.index(&mut tx, doc).expect("index");
    }
    tx.commit().expect("commit");
    let mut values = Vec::new();
    let collect = |values: &mut Vec<(&'static str, Vec<u8>)>, spaces: &[u8]| {
        for (key, value) in db.scan_prefix(index.prefix()).expect("scan") {
            let space = key[index.prefix().len()];
            let kind = match space {
                SPACE_DOC => "record",
                SPACE_POSTING => "posting",
                SPACE_COUNTER => "counter",
                SPACE_BLOCK => "block",
                _ => continue,
            };
            if spaces.contains(&space) {
                values.push((kind, value.to_vec()));
            }
        }
    };
    collect(&mut values, &[SPACE_DOC, SPACE_POSTING, SPACE_COUNTER]);
    let mut tx = db.begin();
    assert!(index.compact(&mut tx, 1_000).expect("compact").done);
    tx.commit().expect("commit");
    collect(&mut values, &[SPACE_BLOCK]);
    values
}

/// True when the input decoded as a record, posting or counter. (Most byte strings split as
/// a posting key suffix: a length, a run and the rest, so that one does not count.)
fn stored_value(decoded: Decoded) -> bool {
    decoded.record || decoded.posting || decoded.counter || decoded.block
}

fn expect_kind(name: &str, decoded: Decoded) {
    let expected = |kind: &str| name.starts_with(&format!("valid-{kind}-"));
    assert!(
        !expected("record") || decoded.record,
        "{name}: must decode as a record"
    );
    assert!(
        !expected("posting") || decoded.posting,
        "{name}: must decode as a posting"
    );
    assert!(
        !expected("counter") || decoded.counter,
        "{name}: must decode as a counter"
    );
    if name.starts_with("invalid-") {
        assert!(
            !stored_value(decoded),
            "{name}: must decode as no stored value"
        );
    }
}

#[test]
fn the_fuzz_corpus_satisfies_the_properties() {
    let dir = corpus_dir();
    let entries: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert!(
        (CORPUS_FILES_MIN..=CORPUS_FILES_MAX).contains(&entries.len()),
        "{} files in {}",
        entries.len(),
        dir.display()
    );
    let (mut valid, mut invalid) = (0, 0);
    for path in entries {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let bytes = fs::read(&path).expect("read");
        assert!(bytes.len() <= CORPUS_FILE_BYTES_MAX, "{name} is too large");
        expect_kind(&name, check_search_bytes(&bytes));
        valid += usize::from(name.starts_with("valid-"));
        invalid += usize::from(name.starts_with("invalid-"));
    }
    assert!(
        valid >= 6 && invalid >= 4,
        "seeds missing: {valid} valid, {invalid} invalid"
    );
}

#[test]
fn random_bytes_decode_canonically_or_are_refused() {
    let mut random = SplitMix64::new(0x5EA7_C400);
    for _ in 0..RANDOM_INPUTS {
        let len = random.below(80);
        let bytes: Vec<u8> = (0..len)
            .map(|_| random.next_u64().to_le_bytes()[0])
            .collect();
        check_search_bytes(&bytes);
    }
}

#[test]
fn every_truncation_and_bit_flip_of_real_values_is_handled() {
    for (kind, bytes) in real_values() {
        let decoded = check_search_bytes(&bytes);
        expect_kind(&format!("valid-{kind}-real"), decoded);
        for cut in 0..bytes.len() {
            let prefix = check_search_bytes(&bytes[..cut]);
            if kind == "record" || kind == "block" {
                assert!(
                    !prefix.record && !prefix.block,
                    "a strict prefix of a {kind} decoded"
                );
            }
        }
        let (mut refused, mut flips) = (0, 0);
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let decoded = check_search_bytes(&flipped);
            flips += 1;
            let still = match kind {
                "record" => decoded.record,
                "posting" => decoded.posting,
                "block" => decoded.block,
                _ => decoded.counter,
            };
            refused += usize::from(!still);
        }
        // Length, order and UTF-8 checks refuse many flips of a record (its text bytes may
        // flip into other valid text); every flip must at least be handled without a panic.
        assert!(
            flips > 0 && (kind != "record" || refused > 0),
            "{kind}: {refused}/{flips}"
        );
    }
}

/// Rebuilds the seed files of the corpus from a real index, plus damaged variants.
#[test]
#[ignore = "rewrites fuzz/corpus/agent_search; run after a format change"]
fn regenerate_search_seed_corpus() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).expect("mkdir");
    for entry in fs::read_dir(&dir).expect("list") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.starts_with("valid-")
            || name.starts_with("invalid-")
            || name.starts_with("mutated-")
        {
            fs::remove_file(path).expect("remove seed");
        }
    }
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut records = Vec::new();
    for (kind, bytes) in real_values() {
        let count = counts.entry(kind).or_default();
        if *count < 4 {
            fs::write(dir.join(format!("valid-{kind}-{count}")), &bytes).expect("write");
        }
        *count += 1;
        if kind == "record" {
            records.push(bytes);
        }
    }
    let record = records.first().expect("a record").clone();
    let mut invalid = vec![
        ("empty", Vec::new()),
        ("format-2", {
            let mut bytes = record.clone();
            bytes[0] = 2;
            bytes
        }),
        ("truncated-record", record[..record.len() - 1].to_vec()),
        ("trailing-byte", {
            let mut bytes = record.clone();
            bytes.push(0);
            bytes
        }),
        (
            "posting-tf-zero",
            vec![0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ),
        (
            "posting-bad-primitive",
            vec![1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
        ),
        ("counter-zero-documents", vec![0; 16]),
        ("block-zero-count", vec![0, 0]),
        ("huge-term-count", {
            let mut bytes = vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, b'r', 0, 0, 0, 0, 0];
            bytes.extend_from_slice(&u32::MAX.to_le_bytes());
            bytes
        }),
    ];
    for (name, bytes) in invalid.drain(..) {
        assert!(!stored_value(check_search_bytes(&bytes)), "{name} decodes");
        fs::write(dir.join(format!("invalid-{name}")), bytes).expect("write");
    }
    for (at, bytes) in records.iter().enumerate() {
        let mut mutated = bytes.clone();
        let middle = mutated.len() / 2;
        mutated[middle] ^= 0x80;
        fs::write(dir.join(format!("mutated-record-{at}")), mutated).expect("write");
    }
}
