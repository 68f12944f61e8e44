//! `cairn serve` as a process: every write that got a reply under `strict` survives kill -9,
//! with many clients pipelining at once; SIGTERM shuts it down cleanly.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_testkit::{Frame, RespClient, TempDir};

/// A `cairn serve` process, killed on drop so that a failing test leaves none behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cairn serve --durability strict` on a free loopback port; returns the process and
/// its address, read from the line it prints once it listens.
fn serve(dir: &Path) -> io::Result<(Server, SocketAddr)> {
    serve_with(dir, &["--durability", "strict"])
}

fn serve_with(dir: &Path, args: &[&str]) -> io::Result<(Server, SocketAddr)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("serve")
        .arg("--dir")
        .arg(dir)
        .args(["--bind", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take();
    let child = Server(child);
    let stdout = stdout.ok_or_else(|| io::Error::other("no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected first line: {line:?}")))?;
    // The rest of its output is not read: closing the pipe is fine, the server writes no more.
    Ok((child, addr))
}

/// One client's loop: pipelines `SET`s of its own keys, 16 at a time, and records each key
/// whose `OK` arrived, until the server goes away.
fn writer(addr: SocketAddr, name: &str, acked: &Mutex<Vec<String>>) {
    let Ok(mut client) = RespClient::connect(addr) else {
        return;
    };
    let stream = format!("stream:{name}");
    let list = format!("list:{name}");
    for batch in 0.. {
        let keys: Vec<String> = (0..16).map(|i| format!("{name}-{batch}-{i}")).collect();
        for key in &keys {
            if client.send(&["SET", key.as_str(), key.as_str()]).is_err() {
                return;
            }
        }
        // One stream entry and one list element per batch too, in the same pipeline.
        let entry = batch.to_string();
        if client
            .send(&["XADD", stream.as_str(), "*", "batch", entry.as_str()])
            .is_err()
            || client
                .send(&["RPUSH", list.as_str(), entry.as_str()])
                .is_err()
        {
            return;
        }
        for key in keys {
            match client.read() {
                Ok(Frame::Status(status)) if status == "OK" => {
                    if let Ok(mut acked) = acked.lock() {
                        acked.push(key);
                    }
                }
                _ => return,
            }
        }
        match client.read() {
            Ok(Frame::Bulk(_)) => {
                if let Ok(mut acked) = acked.lock() {
                    acked.push(format!("xadd {stream} {entry}"));
                }
            }
            _ => return,
        }
        match client.read() {
            Ok(Frame::Integer(_)) => {
                if let Ok(mut acked) = acked.lock() {
                    acked.push(format!("rpush {list} {entry}"));
                }
            }
            _ => return,
        }
    }
}

/// Acknowledged writes `command KEY BATCH`, grouped by key, each key's batches in the order
/// they were acknowledged.
fn by_key(acked: &[String]) -> std::collections::BTreeMap<&str, Vec<&str>> {
    let mut by_key = std::collections::BTreeMap::<&str, Vec<&str>>::new();
    for write in acked {
        let mut parts = write.split(' ').skip(1);
        if let (Some(key), Some(batch)) = (parts.next(), parts.next()) {
            by_key.entry(key).or_default().push(batch);
        }
    }
    by_key
}

/// Every acknowledged `RPUSH` (`rpush LIST BATCH`) is in its list after the restart, in the
/// order it was pushed; the lists span many chunks.
fn check_list_elements(
    client: &mut RespClient,
    round: u64,
    pushes: &[String],
) -> std::io::Result<()> {
    let by_list = by_key(pushes);
    assert!(!by_list.is_empty(), "round {round}: no RPUSH acknowledged");
    for (list, batches) in by_list {
        let Frame::Array(found) = client.command(&["LRANGE", list, "0", "-1"])? else {
            panic!("round {round}: LRANGE {list} is an array");
        };
        let wanted: Vec<Frame> = batches
            .iter()
            .map(|batch| Frame::Bulk(batch.as_bytes().to_vec()))
            .collect();
        assert!(
            found.starts_with(&wanted),
            "round {round}: {list} holds {} elements, not every one of the {} acknowledged, \
             in order",
            found.len(),
            wanted.len()
        );
    }
    Ok(())
}

/// Every acknowledged `XADD` (`xadd STREAM BATCH`) is in its stream after the restart, in the
/// order it was added.
fn check_stream_entries(
    client: &mut RespClient,
    round: u64,
    entries: &[String],
) -> std::io::Result<()> {
    let by_stream = by_key(entries);
    assert!(!by_stream.is_empty(), "round {round}: no XADD acknowledged");
    for (stream, batches) in by_stream {
        let Frame::Array(found) = client.command(&["XRANGE", stream, "-", "+"])? else {
            panic!("round {round}: XRANGE {stream} is an array");
        };
        let found: Vec<Vec<u8>> = found
            .into_iter()
            .filter_map(|entry| match entry {
                Frame::Array(mut parts) => match parts.pop() {
                    Some(Frame::Array(mut fields)) => match fields.pop() {
                        Some(Frame::Bulk(batch)) => Some(batch),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            })
            .collect();
        let wanted: Vec<Vec<u8>> = batches
            .iter()
            .map(|batch| batch.as_bytes().to_vec())
            .collect();
        assert!(
            found.starts_with(&wanted),
            "round {round}: {stream} holds {} entries, not every one of the {} acknowledged, \
             in order",
            found.len(),
            wanted.len()
        );
    }
    Ok(())
}

#[test]
fn every_acknowledged_strict_write_survives_kill_9() {
    let dir = TempDir::new("serve-kill");
    for round in 0..3 {
        let (mut server, addr) = serve(dir.path()).expect("cairn serve starts");
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..8)
            .map(|client| {
                let acked = Arc::clone(&acked);
                std::thread::spawn(move || writer(addr, &format!("r{round}c{client}"), &acked))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + 150 * round));
        server.0.kill().expect("kill -9");
        server.0.wait().expect("reaped");
        for writer in writers {
            writer.join().expect("the writer ends when the server dies");
        }
        let acked = acked.lock().expect("not poisoned").clone();
        assert!(
            acked.len() > 100,
            "round {round}: only {} writes acknowledged",
            acked.len()
        );

        let (mut server, addr) = serve(dir.path()).expect("cairn serve restarts");
        let mut client = RespClient::connect(addr).expect("connects");
        let (entries, acked): (Vec<String>, Vec<String>) =
            acked.into_iter().partition(|key| key.starts_with("xadd "));
        let (pushes, acked): (Vec<String>, Vec<String>) =
            acked.into_iter().partition(|key| key.starts_with("rpush "));
        check_stream_entries(&mut client, round, &entries).expect("XRANGE answers");
        check_list_elements(&mut client, round, &pushes).expect("LRANGE answers");
        for chunk in acked.chunks(500) {
            for key in chunk {
                client.send(&["GET", key.as_str()]).expect("send");
            }
            for key in chunk {
                assert_eq!(
                    client.read().expect("reply"),
                    Frame::Bulk(key.clone().into_bytes()),
                    "round {round}: acknowledged key {key} lost"
                );
            }
        }
        server.0.kill().expect("kill -9");
        server.0.wait().expect("reaped");
    }
}

#[test]
fn sigterm_shuts_the_server_down_cleanly() {
    let dir = TempDir::new("serve-term");
    let (mut server, addr) = serve(dir.path()).expect("cairn serve starts");
    let mut client = RespClient::connect(addr).expect("connects");
    assert_eq!(
        client.command(&["SET", "kept", "yes"]).expect("set"),
        Frame::Status("OK".to_owned())
    );
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = server.0.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(client.is_closed(), "the connection closes at shutdown");

    let (mut server, addr) = serve(dir.path()).expect("cairn serve restarts");
    let mut client = RespClient::connect(addr).expect("connects");
    assert_eq!(
        client.command(&["GET", "kept"]).expect("get"),
        Frame::Bulk(b"yes".to_vec())
    );
    server.0.kill().expect("kill");
    server.0.wait().expect("reaped");
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// This process's soft limit on open files.
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}

#[test]
fn ten_thousand_idle_connections_cost_little_and_a_slow_client_delays_no_one() {
    let dir = TempDir::new("serve-idle");
    let (server, addr) = serve_with(
        dir.path(),
        &["--durability", "memory", "--maxclients", "10100"],
    )
    .expect("starts");
    // Both processes share this machine's open-file limit; keep well inside it.
    let wanted = 10_000.min(open_files_limit().saturating_sub(500));
    assert!(
        wanted >= 1_000,
        "the open-file limit ({}) is too low for this test",
        open_files_limit()
    );
    let before = rss_kib(server.0.id());
    let idle: Vec<std::net::TcpStream> = (0..wanted)
        .map(|_| std::net::TcpStream::connect(addr).expect("connects"))
        .collect();
    // Every connection is accepted and registered before the memory is read.
    let mut probe = RespClient::connect(addr).expect("connects");
    let started = Instant::now();
    loop {
        let info = probe.command(&["INFO", "clients"]).expect("info");
        let connected = info
            .text()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("connected_clients:"))
                    .and_then(|value| value.trim().parse::<usize>().ok())
            })
            .unwrap_or(0);
        if connected > wanted {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {connected} connected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = rss_kib(server.0.id());
    let per_connection = (after.saturating_sub(before) * 1024) / wanted as u64;
    eprintln!(
        "{wanted} idle connections: {before} KiB -> {after} KiB RSS, {per_connection} B each"
    );
    assert!(
        per_connection < 16 * 1024,
        "{per_connection} B of RSS per idle connection"
    );

    // A client that sends one byte of a request every 20 ms holds no one up.
    let mut slow = std::net::TcpStream::connect(addr).expect("connects");
    let slow_writer = std::thread::spawn(move || {
        for byte in b"*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$1\r\nx" {
            if std::io::Write::write_all(&mut slow, &[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        slow
    });
    let started = Instant::now();
    for i in 0..200 {
        let key = format!("fast{i}");
        assert_eq!(
            probe.command(&["SET", key.as_str(), "v"]).expect("set"),
            Frame::Status("OK".to_owned())
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "200 commands took {:?} beside a slow client",
        started.elapsed()
    );
    let _slow = slow_writer.join().expect("the slow writer ends");
    drop(idle);
}
