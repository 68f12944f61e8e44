//! The Prometheus endpoint (`--metrics-bind ADDR`): `GET /metrics` answers the server's
//! counters in Prometheus's text format, version 0.0.4.
//!
//! It is a few lines of HTTP/1.1, not an HTTP stack: one request per connection, read up to
//! [`REQUEST_BYTES_MAX`] and for at most [`REQUEST_WAIT`], answered and closed. Anything but
//! `GET /metrics` gets a 404. So a scraper works, and nothing a client sends can hold memory
//! or a task for long.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::state::Shared;

/// The most bytes of a request read.
pub const REQUEST_BYTES_MAX: usize = 8 * 1024;

/// The longest a request may take to arrive.
pub const REQUEST_WAIT: Duration = Duration::from_secs(5);

/// Serves scrapes on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_WAIT, answer(stream, &shared)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n")
        && request.len() < REQUEST_BYTES_MAX
    {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        request.extend_from_slice(chunk.get(..read).unwrap_or_default());
    }
    let response = if request.starts_with(b"GET /metrics ") {
        let body = render(shared);
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The metrics, in Prometheus's text format.
pub(crate) fn render(shared: &Shared) -> String {
    let stats = &shared.stats;
    let metrics = [
        (
            "cairn_server_connected_clients",
            "gauge",
            "Clients connected now.",
            u64::try_from(shared.clients.connected()).unwrap_or(u64::MAX),
        ),
        (
            "cairn_server_connections_received_total",
            "counter",
            "Connections accepted since start.",
            stats.connections_received.load(Ordering::Relaxed),
        ),
        (
            "cairn_server_connections_rejected_total",
            "counter",
            "Connections refused (protected mode, maxclients).",
            stats.connections_rejected.load(Ordering::Relaxed),
        ),
        (
            "cairn_server_commands_processed_total",
            "counter",
            "Commands run since start.",
            stats.commands_processed.load(Ordering::Relaxed),
        ),
        (
            "cairn_server_syncs_total",
            "counter",
            "fdatasyncs led for strict replies.",
            stats.syncs.load(Ordering::Relaxed),
        ),
        (
            "cairn_server_elements_reclaimed_total",
            "counter",
            "Element records of dead collections deleted.",
            stats.elements_reclaimed.load(Ordering::Relaxed),
        ),
        (
            "cairn_engine_version",
            "gauge",
            "The engine's newest visible commit version.",
            shared.db.version().get(),
        ),
        (
            "cairn_server_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
            shared.started.elapsed().as_secs(),
        ),
    ];
    let mut text = String::new();
    for (name, kind, help, value) in metrics {
        let _ = write!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    }
    text
}
