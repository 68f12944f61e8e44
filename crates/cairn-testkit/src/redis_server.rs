//! Throwaway Redis servers for tests and benchmarks: [`RedisServer`] (one server) and
//! [`RedisCluster`] (three masters joined into a Redis Cluster).
//!
//! Each server runs `redis-server` from `PATH` on 127.0.0.1 at a free port, in a temp dir of
//! its own, with persistence off (`--save "" --appendonly no`), so nothing outside the test
//! is touched and nothing is left behind. [`RedisServer::start`] returns once the server
//! answers `PING`; [`RedisCluster::start`] returns once every node reports
//! `cluster_state:ok`. Both waits are bounded ([`START_WAIT`]) and fail with an error that
//! names the server's log. A missing binary fails with an error naming the install command.
//!
//! No server outlives the process that started it, whatever happens to that process:
//! - Dropping a server kills it and removes its directory.
//! - Every server is started by a watchdog: a small `sh` script that runs `redis-server` as
//!   its child and then blocks reading a pipe from the starting process. The pipe reaches
//!   end-of-file when the server is dropped or when that process ends in any way (a panic,
//!   `SIGKILL`, or a normal exit that never drops the shared servers below, which live in
//!   `static`s): the kernel closes a dead process's descriptors. The watchdog then kills
//!   the server, reaps it (so no zombie is left for `init`), removes its directory and exits.
//!
//! Starting a cluster takes about a second, so each test binary shares one of each:
//! [`RedisServer::shared`] and [`RedisCluster::shared`] start it on first use. Sharing is
//! safe when every test uses keys of its own (the key-value conformance suite uses unique
//! scopes per case).
//!
//! Ports: the OS picks a free port (bind to port 0, then release it), so two test binaries
//! never collide by design; the short race between releasing the port and the server binding
//! it is covered by retrying with new ports ([`START_ATTEMPTS`]).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::temp_dir::TempDir;

/// The longest a server (or a cluster) may take to come up.
pub const START_WAIT: Duration = Duration::from_secs(20);

/// How many times a start is tried with fresh ports when a port was taken meanwhile.
pub const START_ATTEMPTS: u32 = 3;

/// The command that installs the server on Debian and Ubuntu.
pub const INSTALL_HINT: &str =
    "install it with `apt-get install redis-server` (Debian/Ubuntu); scripts/test.sh does so";

/// The watchdog. Arguments: the server's directory, then the server's command line. It
/// prints the server's pid on its first line, waits for end-of-file on its stdin (the pipe
/// whose other end only the starting process holds), then kills and reaps the server and
/// removes its directory. The directory pattern guards the `rm` against a wrong argument.
const WATCHDOG_SCRIPT: &str = r#"
dir="$1"; shift
"$@" </dev/null >/dev/null 2>&1 &
server=$!
echo "$server"
while read -r _; do :; done
kill -9 "$server" 2>/dev/null
wait "$server" 2>/dev/null
case "$dir" in
  */cairn-redis-*) rm -rf "$dir" ;;
esac
"#;

/// One `redis-server` on 127.0.0.1, killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct RedisServer {
    /// The watchdog, parent of the server.
    watchdog: Child,
    /// The write end of the watchdog's stdin; closing it stops the server.
    lifeline: Option<ChildStdin>,
    port: u16,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a plain server at a free port and waits until it answers `PING`.
    pub fn start() -> io::Result<RedisServer> {
        start_with_retries(|| {
            let port = free_port()?;
            RedisServer::spawn(port, &[])
        })
    }

    /// Starts a server at a free port with extra settings appended to its command line
    /// (later settings win, so `["--appendonly", "yes"]` turns persistence on), and waits
    /// until it answers `PING`.
    pub fn start_with(settings: &[&str]) -> io::Result<RedisServer> {
        let settings: Vec<String> = settings.iter().map(|&setting| setting.to_owned()).collect();
        start_with_retries(|| {
            let port = free_port()?;
            RedisServer::spawn(port, &settings)
        })
    }

    /// Starts a plain server at `port` (for a test that restarts a server where a client
    /// expects it) and waits until it answers `PING`.
    pub fn start_on_port(port: u16) -> io::Result<RedisServer> {
        RedisServer::spawn(port, &[])
    }

    /// The server this test binary shares, started on first use. Every caller gets the same
    /// server, or the same start error.
    pub fn shared() -> io::Result<&'static RedisServer> {
        static SHARED: OnceLock<Result<RedisServer, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| RedisServer::start().map_err(|error| error.to_string()))
            .as_ref()
            .map_err(|message| io::Error::other(message.clone()))
    }

    /// The server's URL: `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's directory (its log is `redis.log` there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends one command (words separated by spaces, no quoting) and returns the reply as
    /// text: a status or bulk string as is, an integer in decimal, an error as `Err`.
    pub fn command(&self, command: &str) -> io::Result<String> {
        inline_command(self.port, command, Duration::from_secs(5))
    }

    fn spawn(port: u16, extra_args: &[String]) -> io::Result<RedisServer> {
        let dir = TempDir::new("redis");
        std::fs::create_dir_all(dir.path())?;
        if !binary_on_path("redis-server") {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("redis-server is not on PATH; {INSTALL_HINT}"),
            ));
        }
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("cairn-redis-watchdog")
            .arg(dir.path())
            .arg("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--logfile", "redis.log"])
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut watchdog = command.spawn().map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot start the watchdog shell: {error}"),
            )
        })?;
        let lifeline = watchdog.stdin.take();
        // The pid line tells that the server was started; the pid itself is not needed.
        if let Err(error) = read_pid(&mut watchdog) {
            drop(lifeline);
            let _ = watchdog.wait();
            return Err(error);
        }
        let mut started = RedisServer {
            watchdog,
            lifeline,
            port,
            dir,
        };
        started.wait_until_ready()?;
        Ok(started)
    }

    fn wait_until_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_WAIT;
        loop {
            if self.watchdog.try_wait()?.is_some() {
                return Err(io::Error::other(format!(
                    "redis-server on port {} exited at start; its log: {}",
                    self.port,
                    read_log(self.dir.path())
                )));
            }
            match inline_command(self.port, "PING", Duration::from_millis(500)) {
                Ok(reply) if reply == "PONG" => return Ok(()),
                _ if Instant::now() >= deadline => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "redis-server on port {} did not answer PING within {START_WAIT:?}; \
                             its log: {}",
                            self.port,
                            read_log(self.dir.path())
                        ),
                    ));
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // End-of-file for the watchdog, which kills and reaps the server, removes the
        // directory and exits.
        drop(self.lifeline.take());
        let _ = self.watchdog.wait();
    }
}

/// A Redis Cluster of three masters (no replicas) on 127.0.0.1, killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

/// How many masters a [`RedisCluster`] has.
pub const CLUSTER_MASTERS: usize = 3;

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them with `redis-cli --cluster create`,
    /// and waits until every node reports `cluster_state:ok`.
    pub fn start() -> io::Result<RedisCluster> {
        let mut nodes = Vec::with_capacity(CLUSTER_MASTERS);
        for _ in 0..CLUSTER_MASTERS {
            nodes.push(start_with_retries(|| {
                let port = free_port()?;
                let bus_port = free_port()?;
                RedisServer::spawn(
                    port,
                    &[
                        "--cluster-enabled".to_owned(),
                        "yes".to_owned(),
                        "--cluster-config-file".to_owned(),
                        "nodes.conf".to_owned(),
                        "--cluster-port".to_owned(),
                        bus_port.to_string(),
                        "--cluster-node-timeout".to_owned(),
                        "5000".to_owned(),
                    ],
                )
            })?);
        }
        let cluster = RedisCluster { nodes };
        cluster.create()?;
        cluster.wait_until_ok()?;
        Ok(cluster)
    }

    /// The cluster this test binary shares, started on first use. Every caller gets the same
    /// cluster, or the same start error.
    pub fn shared() -> io::Result<&'static RedisCluster> {
        static SHARED: OnceLock<Result<RedisCluster, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| RedisCluster::start().map_err(|error| error.to_string()))
            .as_ref()
            .map_err(|message| io::Error::other(message.clone()))
    }

    /// Every node's URL: `redis://127.0.0.1:PORT`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// A store URL naming every node: `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`.
    pub fn cluster_url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The nodes, for commands aimed at one of them.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    fn create(&self) -> io::Result<()> {
        let mut command = Command::new("redis-cli");
        command.arg("--cluster").arg("create");
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port()));
        }
        command
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null());
        let output = command.output().map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("redis-cli is not on PATH; {INSTALL_HINT}"),
                )
            } else {
                io::Error::new(error.kind(), format!("cannot run redis-cli: {error}"))
            }
        })?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    }

    fn wait_until_ok(&self) -> io::Result<()> {
        let deadline = Instant::now() + START_WAIT;
        for node in &self.nodes {
            loop {
                let info = node.command("CLUSTER INFO").unwrap_or_default();
                if info.lines().any(|line| line.trim() == "cluster_state:ok") {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the cluster node on port {} did not reach cluster_state:ok within \
                             {START_WAIT:?}; CLUSTER INFO said: {info:?}; its log: {}",
                            node.port(),
                            read_log(node.dir())
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

fn start_with_retries(
    mut start: impl FnMut() -> io::Result<RedisServer>,
) -> io::Result<RedisServer> {
    let mut last_error = None;
    for _ in 0..START_ATTEMPTS {
        match start() {
            Ok(server) => return Ok(server),
            // A missing binary will not appear by trying again.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(error),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("redis-server was never started")))
}

/// A port that was free a moment ago: the OS picks it for a listener we then close.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Reads the server's pid, the watchdog's first line.
fn read_pid(watchdog: &mut Child) -> io::Result<u32> {
    let stdout = watchdog
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("the watchdog has no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    line.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("the watchdog printed {line:?}, not a pid")))
}

fn binary_on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

fn read_log(dir: &Path) -> String {
    match std::fs::read_to_string(dir.join("redis.log")) {
        Ok(log) if log.trim().is_empty() => "(empty)".to_owned(),
        Ok(log) => log,
        Err(error) => format!("(unreadable: {error})"),
    }
}

/// Sends an inline command and reads one RESP reply, enough for `PING` and `CLUSTER INFO`.
fn inline_command(port: u16, command: &str, timeout: Duration) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(io::Error::other(format!("{command}: {rest}"))),
        "$" => {
            let len: i64 = rest
                .parse()
                .map_err(|_| io::Error::other(format!("{command}: bad bulk length {rest:?}")))?;
            let Ok(len) = usize::try_from(len) else {
                return Ok(String::new());
            };
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body)?;
            body.truncate(len);
            Ok(String::from_utf8_lossy(&body).into_owned())
        }
        _ => Err(io::Error::other(format!(
            "{command}: unexpected reply {line:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_server_is_gone() -> io::Result<()> {
        let server = RedisServer::start()?;
        assert_eq!(server.command("PING")?, "PONG");
        assert_eq!(server.command("SET k v")?, "OK");
        assert_eq!(server.command("GET k")?, "v");
        let (port, dir) = (server.port(), server.dir().to_path_buf());
        drop(server);
        assert!(inline_command(port, "PING", Duration::from_millis(200)).is_err());
        assert!(!dir.exists(), "the server's directory was left behind");
        Ok(())
    }

    /// The variable that turns [`server_child_role`] into a child that holds a server.
    const SERVER_CHILD_ROLE: &str = "CAIRN_TESTKIT_REDIS_CHILD";

    /// Child role: starts the shared server (a `static`, never dropped), reports its port,
    /// and waits to be killed.
    #[test]
    fn server_child_role() -> io::Result<()> {
        if std::env::var_os(SERVER_CHILD_ROLE).is_none() {
            return Ok(());
        }
        let server = RedisServer::shared()?;
        println!("port {}", server.port());
        std::thread::sleep(Duration::from_secs(60));
        Ok(())
    }

    #[test]
    fn a_server_dies_with_a_process_killed_by_sigkill() -> io::Result<()> {
        let command = crate::crash::self_exe_child(
            "redis_server::tests::server_child_role",
            &[(SERVER_CHILD_ROLE, "1".to_owned())],
        )?;
        let mut run = crate::crash::ChildRun::spawn(command)?;
        let lines = run.lines_until(Instant::now() + START_WAIT, |line| {
            line.starts_with("port ")
        });
        let port: u16 = lines
            .iter()
            .find_map(|line| line.strip_prefix("port "))
            .and_then(|port| port.parse().ok())
            .ok_or_else(|| io::Error::other(format!("the child reported no port: {lines:?}")))?;
        assert_eq!(
            inline_command(port, "PING", Duration::from_secs(1))?,
            "PONG"
        );
        let killed = run.kill_now()?;
        assert!(!killed.exited_on_its_own);
        let deadline = Instant::now() + Duration::from_secs(5);
        while inline_command(port, "PING", Duration::from_millis(100)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the server outlived the process that started it"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    #[test]
    fn a_cluster_comes_up_with_every_slot_served() -> io::Result<()> {
        let cluster = RedisCluster::shared()?;
        assert_eq!(cluster.urls().len(), CLUSTER_MASTERS);
        for node in cluster.nodes() {
            let info = node.command("CLUSTER INFO")?;
            assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
        }
        assert!(cluster
            .cluster_url()
            .starts_with("redis+cluster://127.0.0.1:"));
        Ok(())
    }
}
