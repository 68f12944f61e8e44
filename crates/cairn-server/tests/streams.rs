//! Stream commands and keyspace events end to end, for what the differential test cannot
//! show: blocking reads woken by other connections, their timeouts and disconnects, streams
//! with their groups and pending entries across a restart, a rename and a delete, and the
//! `notify-keyspace-events` setting's classes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cairn_server::{Config, Mode, RunningServer};
use cairn_testkit::{Frame, RespClient, TempDir};

fn start(config: Config) -> std::io::Result<RunningServer> {
    RunningServer::start(Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..config
    })
}

fn bulk(text: &str) -> Frame {
    Frame::Bulk(text.as_bytes().to_vec())
}

/// One entry as a read returns it.
fn entry(id: &str, fields: &[&str]) -> Frame {
    Frame::Array(vec![
        bulk(id),
        Frame::Array(fields.iter().map(|field| bulk(field)).collect()),
    ])
}

/// A read's reply for one stream.
fn served(key: &str, entries: Vec<Frame>) -> Frame {
    Frame::Array(vec![Frame::Array(vec![bulk(key), Frame::Array(entries)])])
}

/// The `name` field of `INFO`.
fn info_field(client: &mut RespClient, section: &str, name: &str) -> std::io::Result<u64> {
    let info = client
        .command(&["INFO", section])?
        .text()
        .unwrap_or_default();
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0))
}

/// Polls `done` until it holds; fails after `limit`, naming `what` did not happen.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_blocked_xread_wakes_on_another_clients_xadd_and_only_sees_new_entries() {
    let server = start(Config::new()).expect("starts");
    let mut writer = RespClient::connect(server.addr()).expect("connects");
    writer
        .command(&["XADD", "s", "1-1", "old", "1"])
        .expect("xadd");
    let mut reader = RespClient::connect(server.addr()).expect("connects");
    // A blocked read holds back the request pipelined after it.
    reader
        .send(&["XREAD", "BLOCK", "10000", "STREAMS", "s", "$"])
        .expect("send");
    reader.send(&["PING"]).expect("send");
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    writer
        .command(&["XADD", "s", "2-1", "new", "2"])
        .expect("xadd");
    assert_eq!(
        reader.read().expect("reply"),
        served("s", vec![entry("2-1", &["new", "2"])])
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the read waited for its timeout, not for the XADD"
    );
    assert_eq!(reader.read().expect("reply"), Frame::Status("PONG".into()));

    // A write inside EXEC wakes a blocked group read once it commits.
    writer
        .command(&["XGROUP", "CREATE", "s", "g", "$"])
        .expect("xgroup");
    reader
        .send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "10000",
            "STREAMS",
            "s",
            ">",
        ])
        .expect("send");
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    writer.command(&["MULTI"]).expect("multi");
    writer
        .command(&["XADD", "s", "3-1", "in", "exec"])
        .expect("queued");
    writer.command(&["EXEC"]).expect("exec");
    assert_eq!(
        reader.read().expect("reply"),
        served("s", vec![entry("3-1", &["in", "exec"])])
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the group read waited for its timeout, not for the EXEC"
    );
    assert_eq!(
        reader
            .command(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"])
            .expect("history"),
        served("s", vec![entry("3-1", &["in", "exec"])]),
        "the delivered entry is pending for the consumer"
    );
}

#[test]
fn a_blocked_read_learns_when_its_stream_is_deleted_or_replaced() {
    let server = start(Config::new()).expect("starts");
    let mut writer = RespClient::connect(server.addr()).expect("connects");
    let mut reader = RespClient::connect(server.addr()).expect("connects");
    let blocked = |writer: &mut RespClient| {
        wait_until(Duration::from_secs(5), "the read blocks", || {
            info_field(writer, "clients", "blocked_clients").unwrap_or(0) == 1
        });
    };

    // A group read whose stream is deleted ends with Redis's error, not at its timeout.
    writer
        .command(&["XADD", "s", "1-1", "f", "v"])
        .expect("xadd");
    writer
        .command(&["XGROUP", "CREATE", "s", "g", "$"])
        .expect("xgroup");
    let group_read = [
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ];
    reader.send(&group_read).expect("send");
    blocked(&mut writer);
    writer.command(&["DEL", "s"]).expect("del");
    assert_eq!(
        reader.read().expect("reply"),
        Frame::Error("UNBLOCKED the stream key no longer exists".into())
    );

    // So does one whose stream is overwritten by another type inside EXEC.
    writer
        .command(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"])
        .expect("xgroup");
    reader.send(&group_read).expect("send");
    blocked(&mut writer);
    writer.command(&["MULTI"]).expect("multi");
    writer
        .command(&["SET", "s", "now a string"])
        .expect("queued");
    writer.command(&["EXEC"]).expect("exec");
    assert_eq!(
        reader.read().expect("reply"),
        Frame::Error("UNBLOCKED the stream key no longer exists".into())
    );

    // A plain XREAD waits on past a key that holds another type for a while, and is served
    // by the stream written there later.
    writer.command(&["DEL", "s"]).expect("del");
    reader
        .send(&["XREAD", "BLOCK", "10000", "STREAMS", "s", "$"])
        .expect("send");
    blocked(&mut writer);
    writer.command(&["LPUSH", "s", "x"]).expect("lpush");
    writer.command(&["DEL", "s"]).expect("del");
    writer
        .command(&["XADD", "s", "5-1", "new", "1"])
        .expect("xadd");
    assert_eq!(
        reader.read().expect("reply"),
        served("s", vec![entry("5-1", &["new", "1"])])
    );
    assert_eq!(
        info_field(&mut writer, "clients", "blocked_clients").expect("info"),
        0
    );
}

#[test]
fn a_blocked_read_times_out_with_a_null_and_never_blocks_inside_multi() {
    let server = start(Config::new()).expect("starts");
    let mut client = RespClient::connect(server.addr()).expect("connects");
    let started = Instant::now();
    assert_eq!(
        client
            .command(&["XREAD", "BLOCK", "200", "STREAMS", "none", "$"])
            .expect("xread"),
        Frame::Null
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(5),
        "waited {waited:?} for a 200 ms timeout"
    );
    client.command(&["MULTI"]).expect("multi");
    client
        .command(&["XREAD", "BLOCK", "0", "STREAMS", "none", "0"])
        .expect("queued");
    let started = Instant::now();
    assert_eq!(
        client.command(&["EXEC"]).expect("exec"),
        Frame::Array(vec![Frame::Null])
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_client_that_leaves_while_blocked_is_released() {
    let server = start(Config::new()).expect("starts");
    let mut watcher = RespClient::connect(server.addr()).expect("connects");
    for _ in 0..20 {
        let mut reader = RespClient::connect(server.addr()).expect("connects");
        reader
            .send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"])
            .expect("send");
        drop(reader);
    }
    wait_until(
        Duration::from_secs(10),
        "blocked clients that left are released",
        || info_field(&mut watcher, "clients", "connected_clients").expect("info") == 1,
    );
}

#[test]
fn streams_groups_and_pending_entries_survive_a_restart_a_rename_and_are_reclaimed() {
    let dir = TempDir::new("server-streams");
    let config = Config {
        dir: Some(dir.path().to_path_buf()),
        mode: Mode::Strict,
        ..Config::new()
    };
    let server = start(config.clone()).expect("starts");
    let mut client = RespClient::connect(server.addr()).expect("connects");
    for i in 1..=100 {
        client
            .send(&["XADD", "s", &format!("{i}-0"), "n", &i.to_string()])
            .expect("send");
    }
    for i in 1..=100 {
        assert_eq!(client.read().expect("reply"), bulk(&format!("{i}-0")));
    }
    client
        .command(&["XGROUP", "CREATE", "s", "g", "0"])
        .expect("xgroup");
    client
        .command(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "3",
            "STREAMS",
            "s",
            ">",
        ])
        .expect("xreadgroup");
    assert_eq!(
        client.command(&["XACK", "s", "g", "2-0"]).expect("xack"),
        Frame::Integer(1)
    );
    drop(client);
    server.shutdown().expect("a clean shutdown");

    let server = start(config).expect("restarts");
    let mut client = RespClient::connect(server.addr()).expect("connects");
    assert_eq!(
        client.command(&["XLEN", "s"]).expect("xlen"),
        Frame::Integer(100)
    );
    assert_eq!(
        client.command(&["RENAME", "s", "t"]).expect("rename"),
        Frame::Status("OK".into())
    );
    let pending = served(
        "t",
        vec![entry("1-0", &["n", "1"]), entry("3-0", &["n", "3"])],
    );
    assert_eq!(
        client
            .command(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "t", "0"])
            .expect("history"),
        pending,
        "the pending entries came through the restart and the rename"
    );
    assert_eq!(
        client
            .command(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "COUNT",
                "1",
                "STREAMS",
                "t",
                ">"
            ])
            .expect("new"),
        served("t", vec![entry("4-0", &["n", "4"])]),
        "the group's position came through too"
    );
    // 100 entries, one group record and three pending entries, gone after a DEL.
    let before = info_field(&mut client, "cairn", "cairn_elements_reclaimed").expect("info");
    assert_eq!(
        client.command(&["DEL", "t"]).expect("del"),
        Frame::Integer(1)
    );
    assert_eq!(
        client.command(&["XLEN", "t"]).expect("xlen"),
        Frame::Integer(0)
    );
    wait_until(
        Duration::from_secs(20),
        "the deleted stream's records are reclaimed",
        || {
            info_field(&mut client, "cairn", "cairn_elements_reclaimed").expect("info")
                >= before + 104
        },
    );
}

#[test]
fn keyspace_events_are_configured_and_published_as_redis_does() {
    let server = start(Config::new()).expect("starts");
    let mut client = RespClient::connect(server.addr()).expect("connects");
    let get = |client: &mut RespClient| {
        client
            .command(&["CONFIG", "GET", "notify-keyspace-events"])
            .expect("config get")
    };
    assert_eq!(
        get(&mut client),
        Frame::Array(vec![bulk("notify-keyspace-events"), bulk("")]),
        "off by default"
    );
    let refused = client
        .command(&["CONFIG", "SET", "notify-keyspace-events", "Kq"])
        .expect("config set");
    assert!(
        matches!(&refused, Frame::Error(text) if text.contains("Invalid event class character")),
        "{refused:?}"
    );
    let refused = client
        .command(&["CONFIG", "SET", "maxmemory", "10"])
        .expect("config set");
    assert!(matches!(refused, Frame::Error(_)), "{refused:?}");
    assert_eq!(
        client
            .command(&["CONFIG", "SET", "notify-keyspace-events", "Elt"])
            .expect("config set"),
        Frame::Status("OK".into())
    );
    assert_eq!(
        get(&mut client),
        Frame::Array(vec![bulk("notify-keyspace-events"), bulk("ltE")])
    );
    let mut subscriber = RespClient::connect(server.addr()).expect("connects");
    subscriber
        .command(&["PSUBSCRIBE", "__keyevent@0__:*"])
        .expect("psubscribe");
    // A hash write is not in the classes asked for; the list pop and the XADD are.
    client.command(&["HSET", "h", "f", "v"]).expect("hset");
    client.command(&["RPUSH", "l", "x"]).expect("rpush");
    client.command(&["LPOP", "l"]).expect("lpop");
    client
        .command(&["XADD", "s", "1-1", "f", "v"])
        .expect("xadd");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let Frame::Array(parts) = subscriber.read().expect("event") else {
            panic!("an event is an array");
        };
        seen.push((parts.get(2).cloned(), parts.get(3).cloned()));
    }
    let event = |name: &str, key: &str| {
        (
            Some(bulk(&format!("__keyevent@0__:{name}"))),
            Some(bulk(key)),
        )
    };
    assert_eq!(
        seen,
        vec![event("rpush", "l"), event("lpop", "l"), event("xadd", "s")],
        "the emptied list's `del` is generic, not asked for"
    );
}
