//! Integration tests of `cairn streams inspect`, `cairn streams tail` and `cairn verify` on a
//! stream store, through the real binary.
//!
//! This process writes a store with `cairn_log::stream::Streams` (Strict, 4 KiB segments so
//! that a stream spans several, a clock this test controls): `orders` with 60 messages (keys,
//! headers, a binary value), two consumer groups, truncated before offset 30 (its first
//! segments removed); `events` with 5 messages in one segment. Then it closes the store and
//! runs the binary: `inspect --json` must show both streams with their offsets, segments and
//! groups; `tail` must print what `--from`, `--since-ms`, `--max` and `--json` select;
//! `verify` must call the store intact. Then single faults on fresh copies: a flipped byte in
//! a sealed segment (exit 1, naming the file and offset), a garbage `STREAM` or `GROUPS` file
//! (exit 1), a torn last frame (exit 0, torn tail reported), and directories of garbage (exit
//! 1 or 2 with a message, never a panic). Last, with the store open in this process (its lock
//! held), every command still runs and no file changes.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_log::stream::{Clock, Message, StreamError, StreamOptions, Streams};
use cairn_log::{StdFileSystem, SyncPolicy};
use serde_json::Value as Json;
use tempfile::TempDir;

mod common;
use common::{assert_no_panic, cairn, describe, json_of, path_arg, stdout_of, temp_dir};

/// The time of the first batch; each append is one second later.
const T0_MS: u64 = 1_700_000_000_000;
/// Messages appended to `orders`, one batch each.
const ORDERS: u64 = 60;
/// `orders` is truncated before this offset.
const ORDERS_FIRST: u64 = 30;
/// Messages appended to `events`, in one batch of 2 and three of 1.
const EVENTS: u64 = 5;
/// The offset of `orders` whose value is not UTF-8.
const BINARY_OFFSET: u64 = 45;
const BINARY_VALUE: &[u8] = b"\x00\xff\t";

fn options(now: &Arc<AtomicU64>) -> StreamOptions {
    let mut options = StreamOptions::new(SyncPolicy::Strict);
    options.segment_bytes = 4096;
    let clock = Arc::clone(now);
    options.clock = Clock::new(move || clock.fetch_add(1000, Ordering::SeqCst));
    options
}

fn orders_value(offset: u64) -> Vec<u8> {
    if offset == BINARY_OFFSET {
        return BINARY_VALUE.to_vec();
    }
    format!("order {offset} {}", "x".repeat(80)).into_bytes()
}

/// Writes the store described in the module documentation into `dir`.
fn write_store(dir: &Path) {
    let now = Arc::new(AtomicU64::new(T0_MS));
    let streams =
        Streams::open(Arc::new(StdFileSystem), dir, options(&now)).expect("open the store");
    streams.create("orders").expect("create orders");
    streams.create("events").expect("create events");
    for offset in 0..ORDERS {
        let message = Message::value(orders_value(offset))
            .with_key(format!("customer-{}", offset % 7))
            .with_header("source", "web");
        assert_eq!(streams.append("orders", &message).expect("append"), offset);
    }
    let batch = [Message::value("e0"), Message::value("e1")];
    streams
        .append_batch("events", &batch)
        .expect("append a batch");
    for index in 2..EVENTS {
        streams
            .append("events", &Message::value(format!("e{index}")))
            .expect("append");
    }
    assert!(streams.create_group("orders", "billing", 0).expect("group"));
    assert!(streams.create_group("orders", "audit", 0).expect("group"));
    streams.commit("orders", "billing", 40).expect("commit");
    streams
        .truncate_before("orders", ORDERS_FIRST)
        .expect("truncate");
    streams.close().expect("close");
}

/// A fresh store in its own directory.
fn fresh_store(name: &str) -> TempDir {
    let dir = temp_dir("cairn-streams-cli", name);
    write_store(dir.path());
    dir
}

fn json_lines(output: &Output) -> Vec<Json> {
    stdout_of(output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

fn inspect_json(dir: &Path) -> Json {
    let output = cairn(&["streams", "inspect", path_arg(dir), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    json_of(&output)
}

/// The `inspect` entry of stream `name`.
fn stream_of<'a>(inspect: &'a Json, name: &str) -> &'a Json {
    inspect["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|stream| stream["name"] == name)
        .unwrap_or_else(|| panic!("no stream {name} in {inspect:#}"))
}

/// The path of a stream's segment file named in `inspect` output.
fn segment_path(dir: &Path, stream: &Json, index: usize) -> PathBuf {
    dir.join(stream["dir"].as_str().expect("dir"))
        .join(stream["segments"][index]["file"].as_str().expect("file"))
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).expect("read the file");
    let index = usize::try_from(offset).expect("small offset");
    bytes[index] ^= 0x01;
    std::fs::write(path, bytes).expect("write the file");
}

#[test]
fn inspect_shows_streams_offsets_segments_and_groups() {
    let store = fresh_store("inspect");
    let inspect = inspect_json(store.path());
    assert_eq!(inspect["lock"], "free", "{inspect:#}");
    assert!(inspect["database_id"]
        .as_str()
        .is_some_and(|id| id.len() == 32));
    assert_eq!(inspect["streams"].as_array().expect("streams").len(), 2);

    let orders = stream_of(&inspect, "orders");
    assert_eq!(orders["state"], "live");
    assert_eq!(orders["first_offset"], ORDERS_FIRST);
    assert_eq!(orders["next_offset"], ORDERS);
    assert_eq!(orders["messages"], ORDERS - ORDERS_FIRST);
    let segments = orders["segments"].as_array().expect("segments");
    assert!(segments.len() >= 2, "{orders:#}");
    // Truncation removed the segments wholly below offset 30: the first one left holds it.
    let first = segments[0]["first_offset"].as_u64().expect("an offset");
    assert!(first > 0 && first <= ORDERS_FIRST, "{orders:#}");
    assert!(segments[0]["first_lsn"].as_u64().expect("an LSN") > 1);
    // Offset and LSN ranges chain from segment to segment.
    let with_frames: Vec<&Json> = segments.iter().filter(|s| s["frames"] != 0).collect();
    for pair in with_frames.windows(2) {
        assert_eq!(pair[0]["end_offset"], pair[1]["first_offset"], "{orders:#}");
        let last_lsn = pair[0]["last_lsn"].as_u64().expect("an LSN");
        assert_eq!(pair[1]["first_lsn"], last_lsn + 1, "{orders:#}");
    }
    assert_eq!(with_frames.last().expect("frames")["end_offset"], ORDERS);
    let file_bytes: u64 = segments
        .iter()
        .map(|segment| segment["file_bytes"].as_u64().expect("bytes"))
        .sum();
    assert!(orders["bytes"].as_u64().expect("bytes") > file_bytes);
    assert!(segments.iter().all(|segment| segment["note"].is_null()));
    let groups = orders["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["name"], "audit");
    assert_eq!(groups[0]["committed"], 0);
    assert_eq!(groups[0]["behind"], ORDERS - ORDERS_FIRST);
    assert_eq!(groups[1]["name"], "billing");
    assert_eq!(groups[1]["committed"], 40);
    assert_eq!(groups[1]["behind"], ORDERS - 40);

    let events = stream_of(&inspect, "events");
    assert_eq!(events["first_offset"], 0);
    assert_eq!(events["next_offset"], EVENTS);
    assert_eq!(events["segments"].as_array().expect("segments").len(), 1);
    assert_eq!(events["segments"][0]["frames"], 4);
    assert_eq!(events["segments"][0]["first_timestamp_ms"], T0_MS + 60_000);
    assert!(events["groups"].as_array().expect("groups").is_empty());

    let text = cairn(&["streams", "inspect", path_arg(store.path())]);
    assert_eq!(text.status.code(), Some(0), "{}", describe(&text));
    let text = stdout_of(&text);
    for expected in [
        "lock: not open",
        "orders",
        "events",
        "billing",
        "committed",
        "behind",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
}

#[test]
fn tail_selects_by_offset_time_and_count() {
    let store = fresh_store("tail");
    let dir = path_arg(store.path());

    // Default: from the first readable offset, to the end.
    let all = cairn(&["streams", "tail", dir, "orders"]);
    assert_eq!(all.status.code(), Some(0), "{}", describe(&all));
    let lines: Vec<String> = stdout_of(&all).lines().map(str::to_owned).collect();
    assert_eq!(
        lines.len(),
        usize::try_from(ORDERS - ORDERS_FIRST).expect("small")
    );
    assert_eq!(
        lines[0],
        format!(
            "offset=30\ttime=2023-11-14T22:13:50.000Z\tkey=customer-2\theader=source:web\t\
             value=order 30 {}",
            "x".repeat(80)
        )
    );
    let binary = &lines[usize::try_from(BINARY_OFFSET - ORDERS_FIRST).expect("small")];
    assert!(binary.ends_with("\tvalue=\\x00\\xff\\x09"), "{binary}");

    // --from below the first readable offset starts there; --max counts messages.
    let from = cairn(&[
        "streams", "tail", dir, "orders", "--from", "40", "--max", "3",
    ]);
    assert_eq!(from.status.code(), Some(0), "{}", describe(&from));
    let offsets: Vec<String> = stdout_of(&from)
        .lines()
        .map(|line| line.split('\t').next().expect("a field").to_owned())
        .collect();
    assert_eq!(offsets, ["offset=40", "offset=41", "offset=42"]);
    let below = cairn(&[
        "streams", "tail", dir, "orders", "--from", "0", "--max", "1",
    ]);
    assert!(
        stdout_of(&below).starts_with("offset=30\t"),
        "{}",
        describe(&below)
    );

    // --since-ms: the first message appended at or after that time (one second per append).
    let since = (T0_MS + 50_000).to_string();
    let by_time = cairn(&[
        "streams",
        "tail",
        dir,
        "orders",
        "--since-ms",
        &since,
        "--json",
    ]);
    assert_eq!(by_time.status.code(), Some(0), "{}", describe(&by_time));
    let messages = json_lines(&by_time);
    assert_eq!(messages.len(), 10);
    assert_eq!(messages[0]["offset"], 50);
    assert_eq!(messages[0]["timestamp_ms"], T0_MS + 50_000);
    assert_eq!(messages[0]["time"], "2023-11-14T22:14:10.000Z");
    assert_eq!(messages[0]["key"], "customer-1");
    assert_eq!(messages[0]["headers"][0]["name"], "source");
    assert_eq!(messages[0]["headers"][0]["value"], "web");
    assert_eq!(messages[0]["value"], format!("order 50 {}", "x".repeat(80)));
    let late = (T0_MS + 1_000_000).to_string();
    let none = cairn(&["streams", "tail", dir, "orders", "--since-ms", &late]);
    assert_eq!(none.status.code(), Some(0), "{}", describe(&none));
    assert!(none.stdout.is_empty());

    // JSON: bytes that are not UTF-8 are hex under `<field>_hex`.
    let offset = BINARY_OFFSET.to_string();
    let json = cairn(&[
        "streams", "tail", dir, "orders", "--from", &offset, "--max", "1", "--json",
    ]);
    let messages = json_lines(&json);
    assert_eq!(messages.len(), 1, "{}", describe(&json));
    assert_eq!(messages[0]["offset"], BINARY_OFFSET);
    assert_eq!(messages[0]["value_hex"], "00ff09");
    assert!(messages[0].get("value").is_none());

    // A batch of two messages shares its timestamp; messages without a key have a null key.
    let events = json_lines(&cairn(&["streams", "tail", dir, "events", "--json"]));
    let values: Vec<&str> = events
        .iter()
        .map(|m| m["value"].as_str().expect("text"))
        .collect();
    assert_eq!(values, ["e0", "e1", "e2", "e3", "e4"]);
    assert_eq!(events[0]["timestamp_ms"], events[1]["timestamp_ms"]);
    assert!(events[0]["key"].is_null());

    let missing = cairn(&["streams", "tail", dir, "nope"]);
    assert_eq!(missing.status.code(), Some(2), "{}", describe(&missing));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no stream named"));
}

#[test]
fn verify_calls_a_fresh_store_intact() {
    let store = fresh_store("verify-ok");
    let output = cairn(&["verify", path_arg(store.path()), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = json_of(&output);
    assert_eq!(report["store"], "streams");
    assert_eq!(report["status"], "intact");
    assert_eq!(report["exit_code"], 0);
    assert!(report["damage"].as_array().expect("damage").is_empty());
    let streams = report["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2);
    let orders = streams
        .iter()
        .find(|s| s["name"] == "orders")
        .expect("orders");
    // The batches checked include those of the first segment below the first readable offset.
    assert_eq!(
        orders["messages"],
        ORDERS - first_segment_offset(store.path())
    );
    assert_eq!(orders["next_offset"], ORDERS);
    assert_eq!(orders["groups"]["billing"], 40);
    assert!(orders["torn_tail"].is_null());
    let text = cairn(&["verify", path_arg(store.path())]);
    assert_eq!(text.status.code(), Some(0), "{}", describe(&text));
    assert!(
        stdout_of(&text).ends_with("result: INTACT\n"),
        "{}",
        describe(&text)
    );
}

/// The first offset of `orders`' first segment left (a segment is removed only when it is
/// wholly below the first readable offset).
fn first_segment_offset(dir: &Path) -> u64 {
    let inspect = inspect_json(dir);
    stream_of(&inspect, "orders")["segments"][0]["first_offset"]
        .as_u64()
        .expect("an offset")
}

#[test]
fn verify_names_a_flipped_byte_in_a_sealed_segment() {
    let store = fresh_store("verify-flip");
    let inspect = inspect_json(store.path());
    let orders = stream_of(&inspect, "orders");
    let sealed = segment_path(store.path(), orders, 0);
    // Inside the first frame's payload: its checksum fails and valid frames follow.
    flip_byte(&sealed, 64 + 40);
    let output = cairn(&["verify", path_arg(store.path()), "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = json_of(&output);
    assert_eq!(report["status"], "damaged");
    let damage = &report["damage"][0];
    let expected_file = format!(
        "{}/{}",
        orders["dir"].as_str().expect("dir"),
        orders["segments"][0]["file"].as_str().expect("file")
    );
    assert_eq!(damage["file"], expected_file, "{report:#}");
    assert_eq!(damage["offset"], 64, "{report:#}");
    assert_eq!(damage["kind"], "wal");
    let text = cairn(&["verify", path_arg(store.path())]);
    assert_eq!(text.status.code(), Some(1));
    let text = stdout_of(&text);
    assert!(
        text.contains(&format!("{expected_file} at byte offset 64")),
        "{text}"
    );
    assert!(text.ends_with("result: DAMAGED\n"), "{text}");

    // `tail` stops at the damage with exit code 1, after nothing it could not check.
    let tail = cairn(&["streams", "tail", path_arg(store.path()), "orders"]);
    assert_eq!(tail.status.code(), Some(1), "{}", describe(&tail));
    assert!(String::from_utf8_lossy(&tail.stderr).contains(&expected_file));
}

#[test]
fn verify_refuses_garbage_metadata_and_groups_files() {
    for file in ["STREAM", "GROUPS"] {
        let store = fresh_store("verify-garbage-file");
        let inspect = inspect_json(store.path());
        let orders = stream_of(&inspect, "orders");
        let path = store
            .path()
            .join(orders["dir"].as_str().expect("dir"))
            .join(file);
        std::fs::write(&path, b"this is not a cairn file at all, not even close").expect("write");
        let output = cairn(&["verify", path_arg(store.path()), "--json"]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{file}: {}",
            describe(&output)
        );
        let report = json_of(&output);
        let damage = &report["damage"][0];
        assert_eq!(
            damage["kind"],
            if file == "STREAM" {
                "metadata"
            } else {
                "groups"
            },
            "{report:#}"
        );
        assert!(
            damage["file"]
                .as_str()
                .is_some_and(|name| name.ends_with(file)),
            "{report:#}"
        );
        // `inspect` shows the error in the stream's row and still runs.
        let inspect = cairn(&["streams", "inspect", path_arg(store.path())]);
        assert_eq!(inspect.status.code(), Some(0), "{}", describe(&inspect));
        assert!(
            stdout_of(&inspect).contains("error:"),
            "{}",
            describe(&inspect)
        );
    }
}

#[test]
fn verify_calls_a_torn_last_frame_intact_and_reports_it() {
    let store = fresh_store("verify-torn");
    let inspect = inspect_json(store.path());
    let events = stream_of(&inspect, "events");
    let segment = segment_path(store.path(), events, 0);
    let used = events["segments"][0]["bytes_used"].as_u64().expect("bytes");
    // The last frame's checksum: its write did not finish.
    flip_byte(&segment, used - 1);
    let output = cairn(&["verify", path_arg(store.path()), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = json_of(&output);
    let checked = report["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["name"] == "events")
        .expect("events");
    assert!(!checked["torn_tail"].is_null(), "{report:#}");
    assert_eq!(checked["next_offset"], EVENTS - 1);
    // `tail` prints what recovery keeps and says where it stopped.
    let tail = cairn(&["streams", "tail", path_arg(store.path()), "events"]);
    assert_eq!(tail.status.code(), Some(0), "{}", describe(&tail));
    assert_eq!(stdout_of(&tail).lines().count(), 4);
    assert!(String::from_utf8_lossy(&tail.stderr).contains("torn tail"));
}

#[test]
fn garbage_directories_end_with_a_message_not_a_panic() {
    // Only garbage: not a store.
    let plain = temp_dir("cairn-streams-cli", "garbage-plain");
    for index in 0..4_u8 {
        let bytes: Vec<u8> = (0..200_u8)
            .map(|byte| byte.wrapping_mul(31) ^ index)
            .collect();
        std::fs::write(plain.path().join(format!("junk-{index}")), bytes).expect("write");
    }
    // Garbage under the store's names.
    let named = temp_dir("cairn-streams-cli", "garbage-named");
    std::fs::write(named.path().join("STREAMS"), [0xab_u8; 36]).expect("write");
    std::fs::write(named.path().join("LOCK"), b"").expect("write");
    let stream_dir = named.path().join("00000000000000000001");
    std::fs::create_dir_all(&stream_dir).expect("mkdir");
    std::fs::write(stream_dir.join("STREAM"), [0xff_u8; 700]).expect("write");
    std::fs::write(stream_dir.join("GROUPS"), [0x01_u8; 50]).expect("write");
    std::fs::write(stream_dir.join("00000000000000000001.wal"), [0x5a_u8; 5000]).expect("write");
    std::fs::write(stream_dir.join("00000000000000000009.wal"), [0_u8; 10]).expect("write");
    // Streams without an identity file.
    let headless = temp_dir("cairn-streams-cli", "garbage-headless");
    let stream_dir = headless.path().join("00000000000000000003");
    std::fs::create_dir_all(&stream_dir).expect("mkdir");
    std::fs::write(stream_dir.join("STREAM"), b"CAIRNSTM").expect("write");

    for dir in [plain.path(), named.path(), headless.path()] {
        let dir = path_arg(dir);
        for args in [
            vec!["verify", dir],
            vec!["verify", dir, "--json"],
            vec!["streams", "inspect", dir],
            vec!["streams", "inspect", dir, "--json"],
            vec!["streams", "tail", dir, "orders"],
        ] {
            let output = cairn(&args);
            assert_no_panic(&output);
            let code = output.status.code();
            if args[0] == "verify" {
                assert!(
                    matches!(code, Some(1 | 2)),
                    "{args:?}: {}",
                    describe(&output)
                );
            } else {
                assert!(
                    matches!(code, Some(0 | 2)),
                    "{args:?}: {}",
                    describe(&output)
                );
            }
            if code == Some(2) {
                assert!(
                    String::from_utf8_lossy(&output.stderr).starts_with("error: "),
                    "{args:?}: {}",
                    describe(&output)
                );
            }
        }
    }
    let verify = cairn(&["verify", path_arg(named.path())]);
    assert_eq!(verify.status.code(), Some(1), "{}", describe(&verify));
    let verify = cairn(&["verify", path_arg(headless.path()), "--json"]);
    assert_eq!(verify.status.code(), Some(1), "{}", describe(&verify));
    assert_eq!(json_of(&verify)["damage"][0]["kind"], "identity");
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

#[test]
fn commands_read_a_store_open_elsewhere_without_changing_it() {
    let store = fresh_store("locked");
    let now = Arc::new(AtomicU64::new(T0_MS + 1_000_000));
    // The lock is an `flock` on an open file: a child another test forks in the instant the
    // store's lock file is open shares it until its `exec`, so a reopen right after a close
    // may briefly find it held. Retry for up to two seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let open = loop {
        match Streams::open(Arc::new(StdFileSystem), store.path(), options(&now)) {
            Err(StreamError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            opened => break opened.expect("reopen"),
        }
    };
    open.append("events", &Message::value("live"))
        .expect("append");
    let before = contents(store.path());
    let dir = path_arg(store.path());

    let inspect = cairn(&["streams", "inspect", dir]);
    assert_eq!(inspect.status.code(), Some(0), "{}", describe(&inspect));
    assert!(
        stdout_of(&inspect).contains("lock: HELD"),
        "{}",
        describe(&inspect)
    );
    assert_eq!(inspect_json(store.path())["lock"], "held");
    let verify = cairn(&["verify", dir, "--json"]);
    assert_eq!(verify.status.code(), Some(0), "{}", describe(&verify));
    assert_eq!(json_of(&verify)["lock"], "held");
    let tail = cairn(&["streams", "tail", dir, "events", "--from", "5"]);
    assert_eq!(tail.status.code(), Some(0), "{}", describe(&tail));
    assert!(
        stdout_of(&tail).ends_with("\tvalue=live\n"),
        "{}",
        describe(&tail)
    );

    // Nothing the commands did changed a file.
    assert_eq!(contents(store.path()), before);

    // --follow sees an append made while it polls, then --max ends it.
    let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["streams", "tail", dir, "events", "--from", "6", "--follow"])
        .args(["--poll-ms", "20", "--max", "1", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start tail --follow");
    std::thread::sleep(std::time::Duration::from_millis(200));
    open.append("events", &Message::value("followed"))
        .expect("append");
    let followed = child
        .wait_with_output()
        .expect("tail --follow ends at --max");
    assert_eq!(followed.status.code(), Some(0), "{}", describe(&followed));
    let lines = json_lines(&followed);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["offset"], 6);
    assert_eq!(lines[0]["value"], "followed");

    open.close().expect("close");
}
