//! One client connection: read, run every complete request, (under `strict`) wait until what
//! the replies show is durable, write the replies, repeat.
//!
//! - Pipelining: every request already in the input buffer runs before the replies are
//!   written, in one `write`; the durability wait is once per such batch, so a pipeline of
//!   writes shares one fsync (and the fsync is shared with every other connection's batch).
//!   Consecutive data commands of a pipeline (at most [`BATCH_REQUESTS_MAX`] of them, or
//!   [`BATCH_BYTES_MAX`] of arguments) run as one engine transaction, committed once
//!   (`commands::run_batch`).
//! - Replies are held back, not sent early: if the engine's sync fails, the connection closes
//!   without sending them, so no client is told a write is durable when it may not be.
//! - Memory: the input holds at most one incomplete request plus what one read brings (the
//!   parser bounds a request, `resp::parse`); the output is written out whenever it passes
//!   [`OUTPUT_FLUSH_BYTES`], so a long pipeline of large replies does not pile up.
//! - A protocol error gets Redis's `-ERR Protocol error: ...` and closes the connection; the
//!   server goes on. The idle timeout, `CLIENT KILL` and shutdown end a connection between
//!   batches, never in the middle of a command.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};

use crate::commands::{self, Client};
use crate::pubsub::Outbox;
use crate::resp::{Reply, RequestParser};
use crate::state::Shared;

/// Replies buffered before they are written out mid-batch.
pub const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;

/// Pipelined requests run as one engine transaction at most (`commands::run_batch`).
const BATCH_REQUESTS_MAX: usize = 256;

/// Argument bytes of one such batch at most, so that a batch's transaction stays small.
const BATCH_BYTES_MAX: usize = 1024 * 1024;

/// How much room a read gets at least. Small, so an idle connection costs little: a busy
/// one's buffer grows to what its requests need.
const READ_CHUNK_BYTES: usize = 4 * 1024;

/// Serves one connection until the client leaves, is killed, errs, or the server stops.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    id: u64,
    kill: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) {
    let mut client = Client::new(id, shared.config.requirepass.is_none());
    run_connection(&shared, &mut stream, &mut client, &kill, shutdown).await;
    commands::release(&shared, &mut client);
}

/// The connection's loop; returns when the connection is to close.
async fn run_connection(
    shared: &Arc<Shared>,
    stream: &mut TcpStream,
    client: &mut Client,
    kill: &Notify,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut parser = RequestParser::new();
    let mut input = BytesMut::new();
    let mut output = Vec::new();
    let outbox = Arc::clone(&client.subscriptions.outbox);
    let mut batch: Vec<Vec<Bytes>> = Vec::new();
    loop {
        let more_ready = run_ready(
            shared,
            client,
            &mut parser,
            &mut input,
            &mut batch,
            &mut output,
        );
        if !output.is_empty() {
            if let Some(gate) = &shared.gate {
                if !gate.wait_for_current(&shared.stats).await {
                    return;
                }
            }
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
            if output.capacity() > 4 * OUTPUT_FLUSH_BYTES {
                output.shrink_to(OUTPUT_FLUSH_BYTES);
            }
        }
        if client.closing {
            let _ = stream.shutdown().await;
            return;
        }
        if more_ready {
            continue;
        }
        input.reserve(READ_CHUNK_BYTES);
        let idle = shared.config.timeout;
        let read = async {
            match idle {
                Some(limit) => tokio::time::timeout(limit, stream.read_buf(&mut input))
                    .await
                    .unwrap_or(Ok(0)),
                None => stream.read_buf(&mut input).await,
            }
        };
        tokio::select! {
            read = read => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            // Pub/sub messages, written as they arrive; a full outbox closes the connection.
            () = outbox.wake.notified() => {
                let Some(messages) = outbox.drain() else {
                    return;
                };
                for message in messages {
                    message.encode(client.protocol, &mut output);
                }
                if !write_unless_cut(stream, &output, &outbox).await {
                    return;
                }
                output.clear();
            }
            () = outbox.cut.notified() => return,
            () = kill.notified() => return,
            _ = shutdown.changed() => return,
        }
    }
}

/// Runs every complete request in `input`, appending the replies to `output`. Returns
/// `true` when it stopped early because `output` is full and more requests may be ready;
/// sets `client.closing` on `QUIT` or a protocol error.
fn run_ready(
    shared: &Shared,
    client: &mut Client,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    batch: &mut Vec<Vec<Bytes>>,
    output: &mut Vec<u8>,
) -> bool {
    let mut batch_bytes = 0;
    let mut more_ready = false;
    loop {
        let limits = shared.config.limits(client.authenticated);
        match parser.next(input, limits) {
            Ok(Some(args)) if args.is_empty() => {}
            Ok(Some(args)) if commands::batchable(client, &args) => {
                batch_bytes += args.iter().map(Bytes::len).sum::<usize>();
                batch.push(args);
                if batch.len() >= BATCH_REQUESTS_MAX || batch_bytes >= BATCH_BYTES_MAX {
                    run_batch(shared, client, batch, output);
                    batch_bytes = 0;
                    if output.len() >= OUTPUT_FLUSH_BYTES {
                        more_ready = true;
                        break;
                    }
                }
            }
            Ok(Some(args)) => {
                run_batch(shared, client, batch, output);
                batch_bytes = 0;
                run(shared, client, &args).encode(client.protocol, output);
                if client.closing {
                    break;
                }
                if output.len() >= OUTPUT_FLUSH_BYTES {
                    more_ready = true;
                    break;
                }
            }
            Ok(None) => break,
            Err(error) => {
                run_batch(shared, client, batch, output);
                Reply::err(format!("Protocol error: {}", error.0)).encode(client.protocol, output);
                client.closing = true;
                break;
            }
        }
    }
    run_batch(shared, client, batch, output);
    more_ready
}

/// Runs the requests of `batch` (`commands::run_batch`), encodes their replies into
/// `output`, and empties it.
fn run_batch(
    shared: &Shared,
    client: &mut Client,
    batch: &mut Vec<Vec<Bytes>>,
    output: &mut Vec<u8>,
) {
    if batch.is_empty() {
        return;
    }
    for reply in commands::run_batch(shared, client, batch) {
        reply.encode(client.protocol, output);
    }
    batch.clear();
}

/// Writes `bytes`, unless the outbox overflows first (a subscriber that does not read):
/// whether all of it was written.
async fn write_unless_cut(stream: &mut TcpStream, bytes: &[u8], outbox: &Outbox) -> bool {
    let mut written = 0;
    while let Some(rest) = bytes.get(written..).filter(|rest| !rest.is_empty()) {
        tokio::select! {
            result = stream.write(rest) => match result {
                Ok(0) | Err(_) => return false,
                Ok(count) => written += count,
            },
            () = outbox.cut.notified() => return false,
        }
    }
    true
}

/// Runs one request, off the runtime's worker for the commands that walk a whole database.
fn run(shared: &Shared, client: &mut Client, args: &[bytes::Bytes]) -> Reply {
    if commands::runs_long(args) {
        tokio::task::block_in_place(|| commands::dispatch(shared, client, args))
    } else {
        commands::dispatch(shared, client, args)
    }
}
