//! Lua scripts end to end, for what the differential test against Redis cannot show: the
//! limits Cairn puts on a script, and the rollback of a script that fails (Redis keeps the
//! writes made before the failure; Cairn commits nothing).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cairn_server::{Config, RunningServer};
use cairn_testkit::{Frame, RespClient};

fn start() -> std::io::Result<RunningServer> {
    RunningServer::start(Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::new()
    })
}

fn error_text(frame: &Frame) -> String {
    match frame {
        Frame::Error(text) => text.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_failing_script_commits_nothing_and_a_block_runs_it_in_its_transaction() {
    let server = start().expect("starts");
    let mut client = RespClient::connect(server.addr()).expect("connects");
    client.command(&["SET", "text", "abc"]).expect("set");
    let failed = client
        .command(&[
            "EVAL",
            "redis.call('SET', KEYS[1], 'written'); return redis.call('INCR', KEYS[2])",
            "2",
            "first",
            "text",
        ])
        .expect("eval");
    assert!(error_text(&failed).starts_with("ERR value is not an integer"));
    assert_eq!(
        client.command(&["EXISTS", "first"]).expect("exists"),
        Frame::Integer(0),
        "the write before the failure was rolled back"
    );
    client.command(&["MULTI"]).expect("multi");
    client
        .command(&["EVAL", "return redis.call('INCR', KEYS[1])", "1", "n"])
        .expect("queued");
    client.command(&["INCR", "n"]).expect("queued");
    assert_eq!(
        client.command(&["EXEC"]).expect("exec"),
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)])
    );
}

#[test]
fn a_script_past_its_memory_or_time_limit_is_stopped_and_the_server_goes_on() {
    let server = start().expect("starts");
    let mut client = RespClient::connect(server.addr()).expect("connects");
    let hog = client
        .command(&[
            "EVAL",
            "redis.call('SET', 'hog', 1); local t = {} for i = 1, 1e9 do t[i] = i end return 1",
            "0",
        ])
        .expect("eval");
    assert!(error_text(&hog).contains("more than 64 MiB"), "{hog:?}");
    let started = Instant::now();
    let spin = client
        .command(&[
            "EVAL",
            "redis.call('SET', 'spin', 1); while true do end",
            "0",
        ])
        .expect("eval");
    let took = started.elapsed();
    assert!(
        error_text(&spin).contains("ran longer than 5 s"),
        "{spin:?}"
    );
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(30),
        "stopped after {took:?}"
    );
    assert_eq!(
        client.command(&["EXISTS", "hog", "spin"]).expect("exists"),
        Frame::Integer(0),
        "neither stopped script committed its write"
    );
    assert_eq!(
        client
            .command(&["EVAL", "return 'alive'", "0"])
            .expect("eval"),
        Frame::Bulk(b"alive".to_vec()),
        "the thread's Lua state still runs scripts"
    );
}
