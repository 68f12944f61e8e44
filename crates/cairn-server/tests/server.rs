//! The server end to end over loopback: commands through a real Redis client library, the
//! protocol byte by byte, pipelining, RESP3, authentication and every connection limit, and
//! durability across a restart.

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

fn memory() -> std::io::Result<RunningServer> {
    start(Config::new())
}

fn client(server: &RunningServer) -> std::io::Result<RespClient> {
    RespClient::connect(server.addr())
}

fn bulk(text: &str) -> Frame {
    Frame::Bulk(text.as_bytes().to_vec())
}

fn ok() -> Frame {
    Frame::Status("OK".to_owned())
}

#[test]
fn a_redis_client_library_runs_string_and_key_commands() {
    let server = memory().expect("starts");
    let client = redis::Client::open(format!("redis://{}", server.addr())).expect("url");
    let mut connection = client.get_connection().expect("connects");
    let (): () = redis::cmd("SET")
        .arg("greeting")
        .arg("hello")
        .query(&mut connection)
        .expect("set");
    let got: String = redis::cmd("GET")
        .arg("greeting")
        .query(&mut connection)
        .expect("get");
    assert_eq!(got, "hello");
    let total: i64 = redis::cmd("INCRBY")
        .arg("n")
        .arg(41)
        .query(&mut connection)
        .expect("incrby");
    assert_eq!(total, 41);
    let (): () = redis::cmd("MSET")
        .arg(&["a", "1", "b", "2"])
        .query(&mut connection)
        .expect("mset");
    let values: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&["a", "missing", "b"])
        .query(&mut connection)
        .expect("mget");
    assert_eq!(
        values,
        vec![Some("1".to_owned()), None, Some("2".to_owned())]
    );
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut connection)
        .expect("keys");
    keys.sort();
    assert_eq!(keys, ["a", "b", "greeting", "n"]);
    let deleted: i64 = redis::cmd("DEL")
        .arg(&["a", "b", "missing"])
        .query(&mut connection)
        .expect("del");
    assert_eq!(deleted, 2);
    let error = redis::cmd("INCR")
        .arg("greeting")
        .query::<i64>(&mut connection)
        .expect_err("not an integer");
    assert_eq!(
        error.detail(),
        Some("value is not an integer or out of range")
    );
}

#[test]
fn keys_expire_on_their_deadline_and_report_their_ttl() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    assert_eq!(
        client
            .command(&["SET", "k", "v", "PX", "150"])
            .expect("set"),
        ok()
    );
    let Frame::Integer(pttl) = client.command(&["PTTL", "k"]).expect("pttl") else {
        panic!("PTTL is an integer");
    };
    assert!((1..=150).contains(&pttl), "pttl {pttl}");
    assert_eq!(
        client.command(&["TTL", "k"]).expect("ttl"),
        Frame::Integer(0)
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(client.command(&["GET", "k"]).expect("get"), Frame::Null);
    assert_eq!(
        client.command(&["TTL", "k"]).expect("ttl"),
        Frame::Integer(-2)
    );
    assert_eq!(
        client.command(&["EXISTS", "k"]).expect("exists"),
        Frame::Integer(0)
    );
    // KEEPTTL keeps it; a plain SET drops it; PERSIST removes it.
    client
        .command(&["SET", "k", "v", "EX", "100"])
        .expect("set");
    client.command(&["SET", "k", "w", "KEEPTTL"]).expect("set");
    assert_eq!(
        client.command(&["TTL", "k"]).expect("ttl"),
        Frame::Integer(100)
    );
    assert_eq!(
        client.command(&["PERSIST", "k"]).expect("persist"),
        Frame::Integer(1)
    );
    assert_eq!(
        client.command(&["TTL", "k"]).expect("ttl"),
        Frame::Integer(-1)
    );
    assert_eq!(
        client.command(&["EXPIRE", "k", "-1"]).expect("expire"),
        Frame::Integer(1)
    );
    assert_eq!(client.command(&["GET", "k"]).expect("get"), Frame::Null);
}

#[test]
fn a_pipeline_of_a_thousand_commands_gets_a_thousand_replies_in_order() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    let mut pipeline = Vec::new();
    for i in 0..1000 {
        pipeline.extend(cairn_testkit::resp_client::encode(&["INCR", "counter"]));
        if i % 100 == 0 {
            pipeline.extend_from_slice(b"PING\r\n");
        }
    }
    client.send_raw(&pipeline).expect("send");
    for i in 0..1000 {
        assert_eq!(client.read().expect("reply"), Frame::Integer(i + 1));
        if i % 100 == 0 {
            assert_eq!(
                client.read().expect("pong"),
                Frame::Status("PONG".to_owned())
            );
        }
    }
}

#[test]
fn hello_3_switches_the_connection_to_resp3() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    let Frame::Map(fields) = client.command(&["HELLO", "3"]).expect("hello") else {
        panic!("HELLO 3 replies with a map");
    };
    assert!(fields.contains(&(bulk("proto"), Frame::Integer(3))));
    assert!(fields.contains(&(bulk("version"), bulk(cairn_server::REDIS_VERSION))));
    client
        .send_raw(b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n")
        .expect("send");
    assert_eq!(client.read().expect("null"), Frame::Null);
    assert_eq!(
        client.command(&["HELLO", "4"]).expect("hello"),
        Frame::Error("NOPROTO unsupported protocol version".to_owned())
    );
}

#[test]
fn unknown_commands_and_bad_arity_get_redis_errors() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    assert_eq!(
        client.command(&["SORT", "l", "BY", "v"]).expect("reply"),
        Frame::Error(
            "ERR unknown command 'SORT', with args beginning with: 'l' 'BY' 'v' ".to_owned()
        )
    );
    assert_eq!(
        client.command(&["GET"]).expect("reply"),
        Frame::Error("ERR wrong number of arguments for 'get' command".to_owned())
    );
    assert_eq!(
        client
            .command(&["SET", "k", "v", "EX", "0"])
            .expect("reply"),
        Frame::Error("ERR invalid expire time in 'set' command".to_owned())
    );
}

#[test]
fn randomkey_reaches_every_key() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    assert_eq!(client.command(&["RANDOMKEY"]).expect("empty"), Frame::Null);
    let keys: Vec<String> = (0..100).map(|index| format!("user:{index:08}")).collect();
    for key in &keys {
        assert_eq!(client.command(&["SET", key, "v"]).expect("set"), ok());
    }
    // 10,000 picks, 100 per key on average: every key picked, none ignored or favoured
    // beyond the bound the documentation of `RANDOMKEY` gives (a probe between the first and
    // last key, then a window of neighbours).
    let mut seen = std::collections::HashMap::new();
    for _ in 0..10_000 {
        match client.command(&["RANDOMKEY"]).expect("pick") {
            Frame::Bulk(key) => *seen.entry(key).or_insert(0_u32) += 1,
            other => panic!("a key, not {other:?}"),
        }
    }
    assert_eq!(seen.len(), keys.len(), "every key picked: {seen:?}");
    assert!(
        seen.values().all(|count| (12..=400).contains(count)),
        "picks too uneven: {seen:?}"
    );
    // Expired keys are never picked: among many, the one live key; then none.
    assert_eq!(client.command(&["FLUSHDB"]).expect("flush"), ok());
    for key in &keys {
        client.command(&["SET", key, "v", "PX", "1"]).expect("set");
    }
    client.command(&["SET", "live", "v"]).expect("set");
    std::thread::sleep(std::time::Duration::from_millis(20));
    for _ in 0..20 {
        assert_eq!(
            client.command(&["RANDOMKEY"]).expect("pick"),
            Frame::Bulk(b"live".to_vec())
        );
    }
    client.command(&["DEL", "live"]).expect("del");
    assert_eq!(client.command(&["RANDOMKEY"]).expect("none"), Frame::Null);
}

#[test]
fn random_picks_are_uniform_and_bounded() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    let members: Vec<String> = (0..10).map(|index| format!("m{index}")).collect();
    let mut sadd = vec!["SADD", "s"];
    sadd.extend(members.iter().map(String::as_str));
    assert_eq!(client.command(&sadd).expect("sadd"), Frame::Integer(10));
    // 20,000 picks that may repeat: each member near 2,000 times (a bias of a tenth would put
    // one outside 1,700..2,300 with overwhelming likelihood).
    let mut seen = std::collections::HashMap::new();
    for _ in 0..2 {
        let Frame::Array(picks) = client
            .command(&["SRANDMEMBER", "s", "-10000"])
            .expect("picks")
        else {
            panic!("an array");
        };
        assert_eq!(picks.len(), 10_000);
        for pick in picks {
            *seen.entry(format!("{pick:?}")).or_insert(0_u32) += 1;
        }
    }
    assert_eq!(seen.len(), 10, "every member picked: {seen:?}");
    assert!(
        seen.values().all(|count| (1_700..2_300).contains(count)),
        "picks far from uniform: {seen:?}"
    );
    // Distinct picks: no member twice, and all of them when asked for more.
    let Frame::Array(distinct) = client
        .command(&["SRANDMEMBER", "s", "6"])
        .expect("distinct")
    else {
        panic!("an array");
    };
    let unique: std::collections::HashSet<_> =
        distinct.iter().map(|pick| format!("{pick:?}")).collect();
    assert_eq!((distinct.len(), unique.len()), (6, 6));
    let Frame::Array(all) = client.command(&["SRANDMEMBER", "s", "50"]).expect("all") else {
        panic!("an array");
    };
    assert_eq!(all.len(), 10);
    // A reply is built whole, so picks that may repeat are bounded.
    let limit = format!("-{}", cairn_server::RANDOM_PICKS_MAX + 1);
    assert!(matches!(
        client.command(&["SRANDMEMBER", "s", &limit]).expect("reply"),
        Frame::Error(text) if text.contains("at most")
    ));
}

/// Sends `bytes`, expects Redis's protocol error `text` and a closed connection, and checks
/// that the server still serves a new connection.
fn protocol_error_closes(server: &RunningServer, bytes: &[u8], text: &str) -> std::io::Result<()> {
    let mut client = client(server)?;
    client.send_raw(bytes)?;
    assert_eq!(
        client.read()?,
        Frame::Error(format!("ERR Protocol error: {text}")),
        "for {:?}",
        String::from_utf8_lossy(bytes.get(..40.min(bytes.len())).unwrap_or_default())
    );
    assert!(client.is_closed(), "the connection closes");
    let mut next = RespClient::connect(server.addr())?;
    let answer = next.command(&["PING"])?;
    let noauth = Frame::Error("NOAUTH Authentication required.".to_owned());
    assert!(
        answer == Frame::Status("PONG".to_owned()) || answer == noauth,
        "{answer:?}"
    );
    Ok(())
}

#[test]
fn malformed_requests_close_their_connection_and_the_server_goes_on() {
    let server = memory().expect("starts");
    protocol_error_closes(&server, b"*1\r\n:1\r\n", "expected '$', got ':'")
        .expect("the protocol error");
    protocol_error_closes(&server, b"*x\r\n", "invalid multibulk length")
        .expect("the protocol error");
    protocol_error_closes(&server, b"*2000000\r\n", "invalid multibulk length")
        .expect("the protocol error");
    protocol_error_closes(&server, b"*1\r\n$999999999999\r\n", "invalid bulk length")
        .expect("the protocol error");
    protocol_error_closes(&server, b"*1\r\n$-5\r\n", "invalid bulk length")
        .expect("the protocol error");
    protocol_error_closes(&server, b"SET a \"b\r\n", "unbalanced quotes in request")
        .expect("the protocol error");
    // Nested arrays are not requests.
    protocol_error_closes(&server, b"*1\r\n*1\r\n*1\r\n", "expected '$', got '*'")
        .expect("the protocol error");
    // A line that never ends is cut off at 64 KiB, not buffered forever.
    let endless = vec![b'a'; 70 * 1024];
    protocol_error_closes(&server, &endless, "too big inline request").expect("the protocol error");
}

#[test]
fn a_password_guards_every_command_and_limits_what_an_unknown_client_may_send() {
    let server = start(Config {
        requirepass: Some("sesame".to_owned()),
        ..Config::new()
    })
    .expect("starts");
    let mut client = client(&server).expect("connects");
    assert_eq!(
        client.command(&["GET", "k"]).expect("reply"),
        Frame::Error("NOAUTH Authentication required.".to_owned())
    );
    assert_eq!(
        client.command(&["AUTH", "wrong"]).expect("reply"),
        Frame::Error("WRONGPASS invalid username-password pair or user is disabled.".to_owned())
    );
    assert_eq!(client.command(&["AUTH", "sesame"]).expect("reply"), ok());
    assert_eq!(client.command(&["SET", "k", "v"]).expect("reply"), ok());
    // Before authenticating: at most 10 arguments and 16 KiB per argument.
    protocol_error_closes(&server, b"*11\r\n", "unauthenticated multibulk length")
        .expect("the protocol error");
    protocol_error_closes(&server, b"*1\r\n$16385\r\n", "unauthenticated bulk length")
        .expect("the protocol error");
    // HELLO can authenticate.
    let mut hello = RespClient::connect(server.addr()).expect("connects");
    let reply = hello
        .command(&["HELLO", "2", "AUTH", "default", "sesame"])
        .expect("hello");
    assert!(matches!(reply, Frame::Array(_)), "{reply:?}");
    assert_eq!(hello.command(&["GET", "k"]).expect("get"), bulk("v"));
}

#[test]
fn the_client_past_maxclients_is_refused_and_the_others_are_unaffected() {
    let server = start(Config {
        maxclients: 2,
        ..Config::new()
    })
    .expect("starts");
    let mut first = client(&server).expect("connects");
    let mut second = client(&server).expect("connects");
    assert_eq!(
        first.command(&["PING"]).expect("ping"),
        Frame::Status("PONG".to_owned())
    );
    assert_eq!(
        second.command(&["PING"]).expect("ping"),
        Frame::Status("PONG".to_owned())
    );
    let mut third = client(&server).expect("connects");
    assert_eq!(
        third.read().expect("refusal"),
        Frame::Error("ERR max number of clients reached".to_owned())
    );
    assert!(third.is_closed());
    assert_eq!(
        first.command(&["PING"]).expect("ping"),
        Frame::Status("PONG".to_owned())
    );
}

#[test]
fn an_idle_client_is_closed_after_the_timeout() {
    let server = start(Config {
        timeout: Some(Duration::from_millis(200)),
        ..Config::new()
    })
    .expect("starts");
    let mut idle = client(&server).expect("connects");
    assert_eq!(
        idle.command(&["PING"]).expect("ping"),
        Frame::Status("PONG".to_owned())
    );
    let started = Instant::now();
    assert!(idle.is_closed());
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn client_reply_silences_replies_but_not_messages() {
    let server = memory().expect("starts");
    let mut quiet = client(&server).expect("connects");
    // OFF silences its own reply and every one after it until ON, whose OK comes back: the
    // first frame read is that OK, not the SET's or the GET's.
    for command in [
        &["CLIENT", "REPLY", "OFF"][..],
        &["SET", "a", "1"],
        &["GET", "a"],
        &["CLIENT", "REPLY", "ON"],
    ] {
        quiet.send(command).expect("sends");
    }
    assert_eq!(quiet.read().expect("reply"), ok());
    // SKIP silences itself and the next command only.
    for command in [
        &["CLIENT", "REPLY", "SKIP"][..],
        &["GET", "a"],
        &["ECHO", "x"],
    ] {
        quiet.send(command).expect("sends");
    }
    assert_eq!(quiet.read().expect("reply"), bulk("x"));
    assert!(matches!(
        quiet.command(&["CLIENT", "REPLY", "LOUD"]).expect("reply"),
        Frame::Error(text) if text.starts_with("ERR syntax error")
    ));
    // A silenced subscriber still gets its confirmations and its messages.
    quiet.send(&["CLIENT", "REPLY", "OFF"]).expect("sends");
    let confirmation = quiet.command(&["SUBSCRIBE", "news"]).expect("confirmation");
    assert_eq!(
        confirmation,
        Frame::Array(vec![bulk("subscribe"), bulk("news"), Frame::Integer(1)])
    );
    let mut publisher = client(&server).expect("connects");
    assert_eq!(
        publisher
            .command(&["PUBLISH", "news", "hi"])
            .expect("publish"),
        Frame::Integer(1)
    );
    assert_eq!(
        quiet.read().expect("message"),
        Frame::Array(vec![bulk("message"), bulk("news"), bulk("hi")])
    );
}

#[test]
fn lcs_refuses_a_table_over_the_bulk_limit() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    // 2,000 x 2,000 bytes: a 16 MB table, under the 64 MiB bulk limit.
    let a = "ab".repeat(1_000);
    let b = "ba".repeat(1_000);
    client.command(&["SET", "a", &a]).expect("set");
    client.command(&["SET", "b", &b]).expect("set");
    assert_eq!(
        client.command(&["LCS", "a", "b", "LEN"]).expect("len"),
        Frame::Integer(1_999)
    );
    // 5,000 x 5,000 bytes: 100 MB of table, refused with Redis's error, and the server goes on.
    client
        .command(&["SET", "a", &"x".repeat(5_000)])
        .expect("set");
    client
        .command(&["SET", "b", &"y".repeat(5_000)])
        .expect("set");
    assert!(matches!(
        client.command(&["LCS", "a", "b"]).expect("reply"),
        Frame::Error(text) if text.contains("exceeds proto-max-bulk-len")
    ));
    assert_eq!(
        client.command(&["PING"]).expect("ping"),
        Frame::Status("PONG".into())
    );
}

#[test]
fn client_kill_closes_the_named_connection() {
    let server = memory().expect("starts");
    let mut victim = client(&server).expect("connects");
    let Frame::Integer(id) = victim.command(&["CLIENT", "ID"]).expect("id") else {
        panic!("CLIENT ID is an integer");
    };
    let mut admin = client(&server).expect("connects");
    assert_eq!(
        admin
            .command(&["CLIENT", "KILL", "ID", &id.to_string()])
            .expect("kill"),
        Frame::Integer(1)
    );
    assert!(victim.is_closed());
}

#[test]
fn scan_returns_every_key_exactly_once_across_pages() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    for i in 0..250 {
        client
            .command(&["SET", &format!("key:{i:03}"), "v"])
            .expect("set");
    }
    client.command(&["SET", "other", "v"]).expect("set");
    let mut cursor = "0".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let reply = client
            .command(&["SCAN", &cursor, "MATCH", "key:*", "COUNT", "40"])
            .expect("scan");
        let Frame::Array(parts) = reply else {
            panic!("SCAN replies with an array");
        };
        let [next, Frame::Array(keys)] = &parts[..] else {
            panic!("SCAN replies with a cursor and keys");
        };
        seen.extend(keys.iter().filter_map(Frame::text));
        cursor = next.text().expect("a cursor");
        pages += 1;
        if cursor == "0" {
            break;
        }
        assert!(pages < 100, "SCAN must end");
    }
    seen.sort();
    let expected: Vec<String> = (0..250).map(|i| format!("key:{i:03}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn strict_writes_survive_a_restart_and_select_keeps_databases_apart() {
    let dir = TempDir::new("server-strict");
    let config = Config {
        dir: Some(dir.path().to_path_buf()),
        mode: Mode::Strict,
        ..Config::new()
    };
    let server = start(config.clone()).expect("starts");
    let mut client = client(&server).expect("connects");
    for i in 0..100 {
        client
            .send(&["SET", &format!("k{i}"), &format!("v{i}")])
            .expect("send");
    }
    for _ in 0..100 {
        assert_eq!(client.read().expect("reply"), ok());
    }
    assert_eq!(client.command(&["SELECT", "3"]).expect("select"), ok());
    client.command(&["SET", "k0", "in three"]).expect("set");
    drop(client);
    server.shutdown().expect("a clean shutdown");

    let server = start(config).expect("starts");
    let mut client = RespClient::connect(server.addr()).expect("connects");
    assert_eq!(
        client.command(&["DBSIZE"]).expect("dbsize"),
        Frame::Integer(100)
    );
    assert_eq!(client.command(&["GET", "k99"]).expect("get"), bulk("v99"));
    client.command(&["SELECT", "3"]).expect("select");
    assert_eq!(
        client.command(&["GET", "k0"]).expect("get"),
        bulk("in three")
    );
    assert_eq!(client.command(&["FLUSHDB"]).expect("flushdb"), ok());
    assert_eq!(
        client.command(&["DBSIZE"]).expect("dbsize"),
        Frame::Integer(0)
    );
    client.command(&["SELECT", "0"]).expect("select");
    assert_eq!(
        client.command(&["DBSIZE"]).expect("dbsize"),
        Frame::Integer(100)
    );
}

/// The `cairn_` field `name` of `INFO cairn`.
fn info_field(client: &mut RespClient, name: &str) -> std::io::Result<u64> {
    let info = client
        .command(&["INFO", "cairn"])?
        .text()
        .unwrap_or_default();
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0))
}

/// How many keys the engine holds (`INFO cairn`'s `keys_indexed`) once that is `expected`,
/// or after 20 s: a delete leaves the index once the engine's maintenance prunes it.
fn keys_once(client: &mut RespClient, expected: u64) -> std::io::Result<u64> {
    let started = Instant::now();
    loop {
        let now = info_field(client, "cairn_keys_indexed")?;
        if now == expected || started.elapsed() > Duration::from_secs(20) {
            return Ok(now);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_list_is_one_record_per_chunk_and_drops_the_chunks_it_empties() {
    let per = u64::from(cairn_server::keyspace::LIST_CHUNK_ELEMENTS);
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    let base = info_field(&mut client, "cairn_keys_indexed").expect("info");
    let elements: Vec<String> = (0..1000).map(|i| format!("e{i}")).collect();
    let mut rpush = vec!["RPUSH".to_owned(), "l".to_owned()];
    rpush.extend(elements.iter().cloned());
    assert_eq!(client.command(&rpush).expect("rpush"), Frame::Integer(1000));
    // The metadata record and the chunks, each full but the last.
    let expected = base + 1 + 1000_u64.div_ceil(per);
    assert_eq!(
        keys_once(&mut client, expected).expect("info"),
        expected,
        "after the pushes"
    );
    // MEMORY USAGE estimates from a sample of chunks, each counted once per chunk: close to
    // the exact sum over every record (SAMPLES 0).
    let usage = |client: &mut RespClient, samples: &str| match client
        .command(&["MEMORY", "USAGE", "l", "SAMPLES", samples])
        .expect("memory usage")
    {
        Frame::Integer(bytes) => bytes,
        other => panic!("MEMORY USAGE answered {other:?}"),
    };
    let (sampled, exact) = (usage(&mut client, "5"), usage(&mut client, "0"));
    // The metadata record (key `[db] k l`, value: type byte and header), then each chunk:
    // key `[db] m len(l) l version id`, value: count, then each element with its length.
    let chunks = i64::try_from(1000_u64.div_ceil(per)).expect("small");
    let element_bytes =
        i64::try_from(elements.iter().map(|e| 4 + e.len()).sum::<usize>()).expect("small");
    assert_eq!(exact, 3 + 33 + chunks * (23 + 4) + element_bytes);
    assert!(
        sampled * 4 > exact * 3 && sampled * 3 < exact * 4,
        "sampled {sampled} bytes against {exact}"
    );
    let range =
        |from: usize, to: usize| Frame::Array(elements[from..to].iter().map(|e| bulk(e)).collect());
    client
        .command(&["LTRIM", "l", "200", "799"])
        .expect("ltrim");
    // Only the chunks holding indexes 200 to 799 stay; the others are dropped unread.
    let kept = 799 / per - 200 / per + 1;
    let expected = base + 1 + kept;
    assert_eq!(
        keys_once(&mut client, expected).expect("info"),
        expected,
        "after LTRIM"
    );
    assert_eq!(
        client.command(&["LRANGE", "l", "0", "-1"]).expect("lrange"),
        range(200, 800)
    );
    assert_eq!(
        client.command(&["LINDEX", "l", "100"]).expect("lindex"),
        bulk("e300")
    );
    // The first chunk kept holds 200 up to its end: popping those empties it.
    let in_first = per - 200 % per;
    let popped = client
        .command(&["LPOP", "l", &in_first.to_string()])
        .expect("lpop");
    assert_eq!(
        popped,
        range(200, 200 + usize::try_from(in_first).expect("small"))
    );
    let expected = base + kept;
    assert_eq!(
        keys_once(&mut client, expected).expect("info"),
        expected,
        "after the pops"
    );
    assert_eq!(
        client
            .command(&["LRANGE", "l", "-3", "-1"])
            .expect("lrange"),
        range(797, 800)
    );
    assert_eq!(
        client.command(&["LLEN", "l"]).expect("llen"),
        Frame::Integer(600 - i64::try_from(in_first).expect("small"))
    );
}

#[test]
fn a_deleted_collection_is_gone_at_once_and_its_elements_are_reclaimed_later() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    let mut hset = vec!["HSET".to_owned(), "big".to_owned()];
    for i in 0..3000 {
        hset.push(format!("field{i}"));
        hset.push("value".to_owned());
    }
    assert_eq!(client.command(&hset).expect("hset"), Frame::Integer(3000));
    client.command(&["SADD", "kept", "a", "b"]).expect("sadd");
    assert_eq!(
        client.command(&["DEL", "big"]).expect("del"),
        Frame::Integer(1)
    );
    assert_eq!(
        client.command(&["HLEN", "big"]).expect("hlen"),
        Frame::Integer(0)
    );
    // A new hash under the same name starts empty: the old fields are not its own.
    client.command(&["HSET", "big", "new", "1"]).expect("hset");
    assert_eq!(
        client.command(&["HGETALL", "big"]).expect("hgetall"),
        Frame::Array(vec![bulk("new"), bulk("1")])
    );
    let started = Instant::now();
    while info_field(&mut client, "cairn_elements_reclaimed").expect("info") < 3000 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the old fields were not reclaimed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Live collections keep every element through the reclaimer's passes.
    assert_eq!(
        client.command(&["SCARD", "kept"]).expect("scard"),
        Frame::Integer(2)
    );
    assert_eq!(
        client.command(&["HGETALL", "big"]).expect("hgetall"),
        Frame::Array(vec![bulk("new"), bulk("1")])
    );
    assert_eq!(
        info_field(&mut client, "cairn_elements_reclaimed").expect("info"),
        3000,
        "nothing live was reclaimed"
    );
}

#[test]
fn collections_rename_expire_and_pop_as_in_redis() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    client
        .command(&["RPUSH", "l", "a", "b", "c"])
        .expect("rpush");
    assert_eq!(client.command(&["RENAME", "l", "m"]).expect("rename"), ok());
    assert_eq!(
        client.command(&["LRANGE", "m", "0", "-1"]).expect("lrange"),
        Frame::Array(vec![bulk("a"), bulk("b"), bulk("c")])
    );
    assert_eq!(
        client.command(&["LLEN", "l"]).expect("llen"),
        Frame::Integer(0)
    );
    client
        .command(&["ZADD", "z", "2", "b", "1", "a"])
        .expect("zadd");
    client.command(&["PEXPIRE", "z", "100"]).expect("pexpire");
    assert_eq!(
        client.command(&["ZCARD", "z"]).expect("zcard"),
        Frame::Integer(2)
    );
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(
        client.command(&["ZCARD", "z"]).expect("zcard"),
        Frame::Integer(0)
    );
    assert_eq!(
        client.command(&["TYPE", "z"]).expect("type"),
        Frame::Status("none".to_owned())
    );
    client.command(&["SADD", "s", "1", "2", "3"]).expect("sadd");
    let Frame::Bulk(popped) = client.command(&["SPOP", "s"]).expect("spop") else {
        panic!("SPOP pops one member");
    };
    assert!([&b"1"[..], b"2", b"3"].contains(&popped.as_slice()));
    let Frame::Array(rest) = client.command(&["SPOP", "s", "5"]).expect("spop") else {
        panic!("SPOP with a count pops an array");
    };
    assert_eq!(rest.len(), 2);
    assert_eq!(
        client.command(&["EXISTS", "s"]).expect("exists"),
        Frame::Integer(0)
    );
}

#[test]
fn blpop_waits_for_a_push_from_another_client_and_holds_back_the_pipeline_behind_it() {
    let server = memory().expect("starts");
    let mut pusher = client(&server).expect("connects");
    let mut popper = client(&server).expect("connects");
    let blocked = |pusher: &mut RespClient| -> u64 {
        let info = pusher
            .command(&["INFO", "clients"])
            .expect("info")
            .text()
            .unwrap_or_default();
        info.lines()
            .find_map(|line| line.strip_prefix("blocked_clients:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    popper
        .send(&["BLPOP", "jobs", "other", "10"])
        .expect("send");
    popper.send(&["PING"]).expect("send");
    let started = Instant::now();
    while blocked(&mut pusher) != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "BLPOP never blocked"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    assert_eq!(
        pusher.command(&["RPUSH", "other", "job-1"]).expect("rpush"),
        Frame::Integer(1)
    );
    assert_eq!(
        popper.read().expect("reply"),
        Frame::Array(vec![bulk("other"), bulk("job-1")])
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the pop waited for its timeout, not for the push"
    );
    assert_eq!(popper.read().expect("reply"), Frame::Status("PONG".into()));
    assert_eq!(
        pusher.command(&["EXISTS", "other"]).expect("exists"),
        Frame::Integer(0),
        "the popped list was emptied and so deleted"
    );
    assert_eq!(blocked(&mut pusher), 0);

    // A pop that waits in vain ends at its timeout with the null array; inside MULTI it never
    // waits.
    let started = Instant::now();
    assert_eq!(
        popper.command(&["BRPOP", "jobs", "0.2"]).expect("brpop"),
        Frame::Null
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(popper.command(&["MULTI"]).expect("multi"), ok());
    popper.command(&["BLPOP", "jobs", "0"]).expect("queued");
    assert_eq!(
        popper.command(&["EXEC"]).expect("exec"),
        Frame::Array(vec![Frame::Null])
    );
}

#[test]
fn redis_cli_drives_a_session_through_its_real_binary() {
    let server = memory().expect("starts");
    let script = "SET greeting hello\nGET greeting\nINCR visits\nRPUSH queue a b\n\
                  LRANGE queue 0 -1\nHSET user name ada\nHGETALL user\nTYPE user\nNOSUCH x\n";
    let mut child = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &server.addr().port().to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli runs (scripts/test.sh installs it)");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), script.as_bytes())
        .expect("write the script");
    drop(child.stdin.take());
    let output = child.wait_with_output().expect("redis-cli ends");
    let text = String::from_utf8_lossy(&output.stdout);
    // redis-cli prints an empty line after an error.
    let lines: Vec<&str> = text.lines().filter(|line| !line.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "OK",
            "hello",
            "1",
            "2",
            "a",
            "b",
            "1",
            "name",
            "ada",
            "hash",
            "ERR unknown command 'NOSUCH', with args beginning with: 'x' ",
        ],
        "{text}"
    );
}

#[test]
fn exec_runs_its_block_as_one_engine_commit_and_watch_aborts_it() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    let before = info_field(&mut client, "cairn_version").expect("info");
    for command in [
        &["MULTI"][..],
        &["SET", "a", "1"],
        &["INCR", "a"],
        &["HSET", "h", "f", "v"],
        &["RPUSH", "l", "x", "y"],
    ] {
        client.command(command).expect("queue");
    }
    assert_eq!(
        client.command(&["EXEC"]).expect("exec"),
        Frame::Array(vec![
            ok(),
            Frame::Integer(2),
            Frame::Integer(1),
            Frame::Integer(2)
        ])
    );
    let after = info_field(&mut client, "cairn_version").expect("info");
    assert_eq!(after, before + 1, "the block is one commit");

    // A write by another client between WATCH and EXEC aborts it; nothing of it applies.
    let mut other = RespClient::connect(server.addr()).expect("connects");
    client.command(&["WATCH", "a"]).expect("watch");
    other.command(&["SET", "a", "changed"]).expect("set");
    client.command(&["MULTI"]).expect("multi");
    client.command(&["SET", "b", "never"]).expect("queue");
    assert_eq!(client.command(&["EXEC"]).expect("exec"), Frame::Null);
    assert_eq!(client.command(&["GET", "b"]).expect("get"), Frame::Null);
    // The next transaction watches nothing.
    client.command(&["MULTI"]).expect("multi");
    client.command(&["SET", "b", "now"]).expect("queue");
    assert_eq!(
        client.command(&["EXEC"]).expect("exec"),
        Frame::Array(vec![ok()])
    );
}

/// Runs a pub/sub exchange against `addr`: its replies, in order.
fn pubsub_exchange(addr: SocketAddr) -> std::io::Result<Vec<Frame>> {
    let mut subscriber = RespClient::connect(addr)?;
    let mut publisher = RespClient::connect(addr)?;
    let mut seen = Vec::new();
    subscriber.send(&["SUBSCRIBE", "news", "sport"])?;
    seen.push(subscriber.read()?);
    seen.push(subscriber.read()?);
    subscriber.send(&["PSUBSCRIBE", "n*"])?;
    seen.push(subscriber.read()?);
    seen.push(subscriber.command(&["GET", "k"])?);
    seen.push(subscriber.command(&["PING"])?);
    seen.push(publisher.command(&["PUBLISH", "news", "hello"])?);
    seen.push(subscriber.read()?);
    seen.push(subscriber.read()?);
    seen.push(publisher.command(&["PUBLISH", "nobody", "x"])?);
    seen.push(subscriber.read()?);
    subscriber.send(&["UNSUBSCRIBE"])?;
    seen.push(subscriber.read()?);
    seen.push(subscriber.read()?);
    seen.push(subscriber.command(&["PUNSUBSCRIBE"])?);
    seen.push(subscriber.command(&["UNSUBSCRIBE"])?);
    seen.push(subscriber.command(&["SET", "k", "v"])?);
    seen.push(publisher.command(&["PUBLISH", "news", "after"])?);
    Ok(seen)
}

#[test]
fn pub_sub_replies_as_redis_server_does() {
    let server = memory().expect("starts");
    let redis = cairn_testkit::redis_server::RedisServer::start().expect("redis-server starts");
    let redis_addr = SocketAddr::from(([127, 0, 0, 1], redis.port()));
    // `UNSUBSCRIBE` of every channel lists them in hash order in Redis, in subscription order
    // in Cairn: those two replies are compared as a set of names (their running counts follow
    // the order).
    let sorted = |mut frames: Vec<Frame>| {
        for frame in &mut frames[10..12] {
            if let Frame::Array(parts) = frame {
                parts.truncate(2);
            }
        }
        frames[10..12].sort_by_key(|frame| format!("{frame:?}"));
        frames
    };
    let expected = sorted(pubsub_exchange(redis_addr).expect("redis-server answers"));
    let got = sorted(pubsub_exchange(server.addr()).expect("cairn answers"));
    assert_eq!(got, expected);
    assert!(
        expected.contains(&Frame::Integer(2)),
        "the message reached two subscriptions"
    );
}

#[test]
fn a_subscriber_that_never_reads_is_cut_off_and_others_are_unaffected() {
    let server = memory().expect("starts");
    let mut stuck = client(&server).expect("connects");
    stuck.send(&["SUBSCRIBE", "firehose"]).expect("subscribe");
    let mut publisher = client(&server).expect("connects");
    let payload = "x".repeat(64 * 1024);
    // 64 MiB of messages: twice the outbox limit, and far more than the socket buffers.
    let mut delivered_to = Vec::new();
    for _ in 0..1024 {
        match publisher
            .command(&["PUBLISH", "firehose", payload.as_str()])
            .expect("publish")
        {
            Frame::Integer(count) => delivered_to.push(count),
            other => panic!("PUBLISH answered {other:?}"),
        }
    }
    assert_eq!(delivered_to.first(), Some(&1));
    // The publisher was never blocked, and the stuck subscriber was dropped.
    let started = Instant::now();
    loop {
        let count = publisher
            .command(&["PUBLISH", "firehose", "probe"])
            .expect("publish");
        if count == Frame::Integer(0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the stuck subscriber is still subscribed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        publisher.command(&["PING"]).expect("ping"),
        Frame::Status("PONG".to_owned())
    );
}

#[test]
fn a_pipeline_of_writes_is_one_engine_commit() {
    let server = memory().expect("starts");
    let mut client = client(&server).expect("connects");
    let before = info_field(&mut client, "cairn_version").expect("info");
    // Ten writes in one TCP write arrive together and run as one batch.
    let mut pipeline = Vec::new();
    for i in 0..10 {
        pipeline.extend(cairn_testkit::resp_client::encode(&[
            "RPUSH",
            "queue",
            &i.to_string(),
        ]));
    }
    client.send_raw(&pipeline).expect("send");
    for i in 1..=10 {
        assert_eq!(client.read().expect("reply"), Frame::Integer(i));
    }
    let after = info_field(&mut client, "cairn_version").expect("info");
    assert!(
        after - before < 10,
        "ten pipelined writes made {} commits",
        after - before
    );
    assert_eq!(
        client
            .command(&["LRANGE", "queue", "0", "-1"])
            .expect("lrange"),
        Frame::Array((0..10).map(|i| bulk(&i.to_string())).collect())
    );
}

#[test]
fn the_metrics_endpoint_answers_a_scrape_and_nothing_else() {
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let server = start(Config {
        metrics_bind: Some(metrics_addr),
        ..Config::new()
    })
    .expect("starts");
    let mut client = client(&server).expect("connects");
    client.command(&["SET", "k", "v"]).expect("set");
    let scrape = |request: &str| -> String {
        let mut stream = std::net::TcpStream::connect(metrics_addr).expect("connects");
        std::io::Write::write_all(&mut stream, request.as_bytes()).expect("send");
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).expect("read");
        response
    };
    let response = scrape("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.contains("\ncairn_server_connected_clients 1\n"),
        "{response}"
    );
    assert!(response.contains("# TYPE cairn_server_commands_processed_total counter"));
    assert!(
        response.contains("\ncairn_engine_version 1\n"),
        "{response}"
    );
    let other = scrape("GET / HTTP/1.1\r\n\r\n");
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
}
