//! The listener: opens the database, accepts connections, enforces the connection-level
//! limits, and shuts down gracefully.
//!
//! - **Limits at accept**: protected mode (no non-loopback client while no password is set)
//!   and `maxclients`; a refused client gets Redis's error text and is closed, and the server
//!   goes on.
//! - **Shutdown** ([`RunningServer::shutdown`], or SIGINT/SIGTERM under [`run`]): stop
//!   accepting, let every connection finish the batch it is running and close, stop the
//!   reclaimer, close the database (a `buffered` database syncs its WAL there).
//! - **Threads**: a multi-threaded tokio runtime with one worker per two CPUs, at least one
//!   (or `Config::workers`): the clients, here `redis-benchmark`, need CPU too, and on 2
//!   vCPUs one worker served `strict` writes 1.4x faster than two (docs/benchmarks.md).
//!   Beside it, the reclaimer of dead collections' elements (`reclaim`).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn::{Db, Durability, Options};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::session;
use crate::state::{Config, Mode, Shared};

/// How long shutdown waits for connections to finish their batches.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

const PROTECTED_MODE_ERROR: &[u8] = b"-DENIED Cairn is running in protected mode because \
protected mode is enabled and no password is set for the default user. In this mode \
connections are only accepted from the loopback interface. Set a password (--requirepass) or \
disable protected mode (--no-protected-mode) to accept other clients.\r\n";

const MAX_CLIENTS_ERROR: &[u8] = b"-ERR max number of clients reached\r\n";

/// Opens the database `config` describes.
fn open_db(config: &Config) -> io::Result<Db> {
    let options = match (config.mode, &config.dir) {
        (Mode::Memory, _) => return Ok(Db::in_memory()),
        (_, None) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a durable mode needs a data directory (--dir)",
            ))
        }
        // Strict is the engine's Buffered plus the reply gate (state::SyncGate).
        (Mode::Buffered | Mode::Strict, Some(dir)) => {
            Options::new(dir).durability(Durability::buffered())
        }
    };
    Db::open(options).map_err(io::Error::other)
}

/// A server running on a thread of its own (for tests and embedding).
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl RunningServer {
    /// Opens the database, binds `config.bind` (port 0 picks a free port) and serves on a new
    /// thread.
    pub fn start(config: Config) -> io::Result<RunningServer> {
        let runtime = runtime(config.workers)?;
        let db = open_db(&config)?;
        let listener = runtime.block_on(TcpListener::bind(config.bind))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("cairn-server".to_owned())
            .spawn(move || runtime.block_on(serve(listener, db, config, stopped)))?;
        Ok(RunningServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts the server down gracefully and waits for it; the result of closing the database.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        self.stop.send_replace(true);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

fn runtime(workers: Option<usize>) -> io::Result<tokio::runtime::Runtime> {
    let workers = workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |cpus| cpus.get() / 2));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers.max(1));
    builder
        .enable_all()
        .thread_name("cairn-server-worker")
        .build()
}

/// Runs a server in this thread until SIGINT or SIGTERM, then shuts down gracefully.
/// `ready` is called with the bound address once the server accepts connections.
pub fn run(config: Config, ready: impl FnOnce(SocketAddr)) -> io::Result<()> {
    let runtime = runtime(config.workers)?;
    let db = open_db(&config)?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(config.bind).await?;
        ready(listener.local_addr()?);
        let (stop, stopped) = watch::channel(false);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            stop.send_replace(true);
        });
        serve(listener, db, config, stopped).await
    })
}

/// Accepts and serves connections until `stop` turns true, then shuts down.
async fn serve(
    listener: TcpListener,
    db: Db,
    config: Config,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let shared = Arc::new(Shared::new(db, config));
    let reclaim_stop = Arc::new(crate::reclaim::Stop::default());
    let reclaimer = {
        let shared = Arc::clone(&shared);
        let stop = Arc::clone(&reclaim_stop);
        std::thread::Builder::new()
            .name("cairn-server-reclaim".to_owned())
            .spawn(move || crate::reclaim::run(&shared, &stop))?
    };
    let metrics = match shared.config.metrics_bind {
        Some(addr) => Some(tokio::spawn(crate::metrics::serve(
            TcpListener::bind(addr).await?,
            Arc::clone(&shared),
        ))),
        None => None,
    };
    let (closing, closing_seen) = watch::channel(false);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => admit(&shared, stream, peer, &closing_seen),
                // Out of descriptors or a connection reset before accept: wait a moment.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    drop(listener);
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    closing.send_replace(true);
    let deadline = Instant::now() + SHUTDOWN_WAIT;
    while shared.clients.connected() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reclaim_stop.stop();
    let _ = tokio::task::spawn_blocking(move || reclaimer.join()).await;
    shared.db.close().map_err(io::Error::other)
}

/// Admits a new connection, or refuses it with Redis's error text.
fn admit(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    closing: &watch::Receiver<bool>,
) {
    let stats = &shared.stats;
    stats.connections_received.fetch_add(1, Ordering::Relaxed);
    let config = &shared.config;
    let refusal = if config.protected_mode
        && config.requirepass.is_none()
        && !peer.ip().to_canonical().is_loopback()
    {
        Some(PROTECTED_MODE_ERROR)
    } else {
        None
    };
    let local = stream.local_addr().unwrap_or(config.bind);
    let registered = match refusal {
        None => shared.clients.register(config.maxclients, peer, local),
        Some(_) => None,
    };
    let Some((id, kill)) = registered else {
        stats.connections_rejected.fetch_add(1, Ordering::Relaxed);
        let message = refusal.unwrap_or(MAX_CLIENTS_ERROR);
        tokio::spawn(async move {
            let mut stream = stream;
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(message)).await;
        });
        return;
    };
    let _ = stream.set_nodelay(true);
    let shared = Arc::clone(shared);
    let closing = closing.clone();
    tokio::spawn(async move {
        session::serve(Arc::clone(&shared), stream, id, kill, closing).await;
        shared.clients.unregister(id);
    });
}
