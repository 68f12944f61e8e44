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
//! - A blocking read (`XREAD ... BLOCK`, `BLPOP`, `BRPOP`) that finds nothing parks the
//!   connection: it sends the replies before it, registers the keys it waits on, then waits
//!   for a committed write to one of them (`Shared::blocked_keys_written`, re-armed before each
//!   look so no wake-up is lost), the timeout, `CLIENT UNBLOCK`, the client leaving, a kill
//!   or shutdown, and runs the read again. Requests sent meanwhile wait in the input, at most
//!   [`BLOCKED_INPUT_MAX`] of them; then the socket is no longer read until the read ends.
//! - A protocol error gets Redis's `-ERR Protocol error: ...` and closes the connection; the
//!   server goes on. The idle timeout, `CLIENT KILL` and shutdown end a connection between
//!   batches, never in the middle of a command.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};

use crate::commands::{self, Client, Request};
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

/// Input held at most while a blocking read waits.
const BLOCKED_INPUT_MAX: usize = 1024 * 1024;

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
    let mut batch: Vec<Request> = Vec::new();
    loop {
        let step = run_ready(
            shared,
            client,
            &mut parser,
            &mut input,
            &mut batch,
            &mut output,
        );
        if !flush(shared, stream, &mut output).await {
            return;
        }
        if client.closing {
            let _ = stream.shutdown().await;
            return;
        }
        match step {
            Step::Idle => {}
            Step::MoreReady => continue,
            Step::Blocked(blocked) => {
                let waited = wait_blocked(
                    shared,
                    stream,
                    client,
                    blocked,
                    &mut input,
                    &mut output,
                    kill,
                    &mut shutdown,
                )
                .await;
                if !waited || !flush(shared, stream, &mut output).await {
                    return;
                }
                continue;
            }
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

/// Sends `output` once (under `strict`) everything its replies show is durable; whether the
/// connection goes on.
async fn flush(shared: &Shared, stream: &mut TcpStream, output: &mut Vec<u8>) -> bool {
    if output.is_empty() {
        return true;
    }
    if let Some(gate) = &shared.gate {
        if !gate.wait_for_current(&shared.stats).await {
            return false;
        }
    }
    if stream.write_all(output).await.is_err() {
        return false;
    }
    output.clear();
    if output.capacity() > 4 * OUTPUT_FLUSH_BYTES {
        output.shrink_to(OUTPUT_FLUSH_BYTES);
    }
    true
}

/// Waits out a blocking read: runs it again after each committed `XADD` until it finds
/// something or times out (the null array), and appends its reply to `output`. Returns
/// `false` when the connection is to close (the client left, a kill, shutdown).
#[expect(
    clippy::too_many_arguments,
    reason = "the connection's parts, borrowed from its loop"
)]
async fn wait_blocked(
    shared: &Shared,
    stream: &mut TcpStream,
    client: &mut Client,
    blocked: commands::Blocked,
    input: &mut BytesMut,
    output: &mut Vec<u8>,
    kill: &Notify,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let _counted = shared.clients.block(&blocked.keys);
    let unblock = shared
        .clients
        .read(client.id, |entry| Arc::clone(&entry.unblock))
        .unwrap_or_default();
    let unblocked = unblock.notify.notified();
    tokio::pin!(unblocked);
    unblocked.as_mut().enable();
    unblock.with_error.store(false, Ordering::Release);
    unblock.blocked.store(true, Ordering::Release);
    let _unmarked = Unmark(&unblock);
    let deadline = blocked
        .timeout
        .map(|timeout| tokio::time::Instant::now() + timeout);
    loop {
        // Armed before the look, so an XADD committed in between still wakes this wait.
        let appended = shared.blocked_keys_written.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        client.rerun = true;
        let reply = commands::dispatch(shared, client, &blocked.args);
        client.rerun = false;
        if client.blocked.take().is_none() {
            client.send(&reply, output);
            return true;
        }
        let expired = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        loop {
            let room = input.len() < BLOCKED_INPUT_MAX;
            if room {
                input.reserve(READ_CHUNK_BYTES);
            }
            tokio::select! {
                () = &mut appended => break,
                () = &mut expired => {
                    client.send(&Reply::NullArray, output);
                    return true;
                }
                () = &mut unblocked => {
                    let reply = if unblock.with_error.load(Ordering::Acquire) {
                        Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".to_owned())
                    } else {
                        Reply::NullArray
                    };
                    client.send(&reply, output);
                    return true;
                }
                read = stream.read_buf(input), if room => match read {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                },
                () = kill.notified() => return false,
                _ = shutdown.changed() => return false,
            }
        }
    }
}

/// Marks a client no longer blocked when its blocking read ends, however it ends.
struct Unmark<'a>(&'a crate::state::Unblock);

impl Drop for Unmark<'_> {
    fn drop(&mut self) {
        self.0.blocked.store(false, Ordering::Release);
    }
}

/// Where [`run_ready`] stopped.
enum Step {
    /// Every complete request ran.
    Idle,
    /// The output is full and more requests may be ready.
    MoreReady,
    /// A blocking read found nothing: the requests after it wait until it ends.
    Blocked(commands::Blocked),
}

/// Runs every complete request in `input`, appending the replies to `output`, until the
/// input runs dry, the output fills, or a blocking read has to wait; sets `client.closing`
/// on `QUIT` or a protocol error.
fn run_ready(
    shared: &Shared,
    client: &mut Client,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    batch: &mut Vec<Request>,
    output: &mut Vec<u8>,
) -> Step {
    let mut batch_bytes = 0;
    let mut step = Step::Idle;
    loop {
        let limits = shared.config.limits(client.authenticated);
        match parser.next(input, limits) {
            Ok(Some(args)) if args.is_empty() => {}
            Ok(Some(args)) if let Some(spec) = commands::batchable(client, &args) => {
                batch_bytes += args.iter().map(Bytes::len).sum::<usize>();
                batch.push(Request { spec, args });
                if batch.len() >= BATCH_REQUESTS_MAX || batch_bytes >= BATCH_BYTES_MAX {
                    run_batch(shared, client, batch, output);
                    batch_bytes = 0;
                    if output.len() >= OUTPUT_FLUSH_BYTES {
                        step = Step::MoreReady;
                        break;
                    }
                }
            }
            Ok(Some(args)) => {
                run_batch(shared, client, batch, output);
                batch_bytes = 0;
                let reply = run(shared, client, &args);
                if let Some(blocked) = client.blocked.take() {
                    step = Step::Blocked(blocked);
                    break;
                }
                client.send(&reply, output);
                if client.closing {
                    break;
                }
                if output.len() >= OUTPUT_FLUSH_BYTES {
                    step = Step::MoreReady;
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
    step
}

/// Runs the requests of `batch` (`commands::run_batch`), encodes their replies into
/// `output`, and empties it.
fn run_batch(shared: &Shared, client: &mut Client, batch: &mut Vec<Request>, output: &mut Vec<u8>) {
    if batch.is_empty() {
        return;
    }
    for reply in commands::run_batch(shared, client, batch) {
        client.send(&reply, output);
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
