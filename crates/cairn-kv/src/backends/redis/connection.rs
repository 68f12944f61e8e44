//! The store's command connection: one server or a Cluster behind one type, so every
//! operation is written once; and how Redis errors map to `KvError`.
//!
//! One server: a multiplexed async connection (many requests in flight on one socket, each
//! call a clone of a cheap handle), re-established on the next call after it breaks. A call
//! that fails because the connection dropped returns `Unavailable` and is not sent again: a
//! write whose reply was lost may or may not have happened, and only the caller knows
//! whether repeating it is safe. redis-rs's `ConnectionManager` would reconnect too, but it
//! needs another dependency (`backon`) and waits inside calls through a retry schedule, so a
//! server that is down would answer slowly instead of at once.
//!
//! Cluster: redis-rs's `ClusterConnection`, which follows `MOVED`/`ASK`, refreshes the slot
//! map, and reconnects to nodes. It also sends a request again when its connection dropped
//! ([`CLUSTER_RETRIES`] times at most; the same budget covers redirects, so it cannot be
//! turned off alone). A write whose reply was lost that way may run twice: an `increment`
//! counts twice, a `cas` that swapped then reports `false`, a `clear_prefix` reports 0, and
//! watchers see the events twice. This happens only when a connection fails mid-request.
//!
//! Timeouts: connecting gives up after [`CONNECT_TIMEOUT`]; a reply is awaited for at most
//! [`RESPONSE_TIMEOUT`], long enough for the largest script (`clear_prefix` of a million
//! keys) and short enough that a hung server is reported.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult, ServerErrorKind};

use crate::error::KvError;

pub(super) const BACKEND: &str = "redis";

/// How long connecting to a server (or a cluster node) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a reply may take, scripts included.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times the cluster client repeats a request after a redirect or a lost node.
pub const CLUSTER_RETRIES: u32 = 5;

/// Shortest and longest pause between two cluster retries, in milliseconds.
const CLUSTER_RETRY_WAIT_MIN_MILLIS: u64 = 20;
const CLUSTER_RETRY_WAIT_MAX_MILLIS: u64 = 1_000;

/// The command connection: one server or a Cluster.
pub(super) enum Connection {
    // Boxed: the server handle is large and lives once per store.
    Single(Box<SingleServer>),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Connects to one server; `client` holds its URL.
    pub(super) async fn single(client: redis::Client) -> RedisResult<Connection> {
        let server = SingleServer {
            client,
            config: redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT)),
            current: Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(()),
            generations: AtomicU64::new(0),
        };
        server.live().await?;
        Ok(Connection::Single(Box::new(server)))
    }

    /// Connects to a Cluster through its seed nodes.
    pub(super) async fn cluster(nodes: &[String]) -> RedisResult<Connection> {
        let client = redis::cluster::ClusterClient::builder(nodes.iter().map(String::as_str))
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_RETRY_WAIT_MIN_MILLIS)
            .max_retry_wait(CLUSTER_RETRY_WAIT_MAX_MILLIS)
            .build()?;
        Ok(Connection::Cluster(client.get_async_connection().await?))
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Connection::Cluster(_))
    }

    /// Sends `command`, routed by its first key in a Cluster (or by the command's own
    /// policy: `DBSIZE` goes to every master and is summed, `SCRIPT LOAD` to every node).
    pub(super) async fn query<T: FromRedisValue>(&self, command: &Cmd) -> RedisResult<T> {
        match self {
            Connection::Single(server) => server.query(command).await,
            Connection::Cluster(cluster) => command.query_async(&mut cluster.clone()).await,
        }
    }

    /// Sends `command` to the master that owns the slot of `routing_key`: for keyless
    /// commands that must reach the keys of one scope, such as `SCAN`.
    pub(super) async fn query_slot_owner<T: FromRedisValue>(
        &self,
        command: Cmd,
        routing_key: &[u8],
    ) -> RedisResult<T> {
        match self {
            Connection::Single(server) => server.query(&command).await,
            Connection::Cluster(cluster) => {
                let route = Route::with_slot(Slot::for_key(routing_key), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let reply = cluster.clone().route_command(command, routing).await?;
                Ok(redis::from_redis_value(reply.extract_error()?)?)
            }
        }
    }
}

/// One server's multiplexed connection, replaced on the next call after it breaks.
pub(super) struct SingleServer {
    client: redis::Client,
    config: redis::AsyncConnectionConfig,
    /// The connection in use and its generation; `None` after it broke.
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Held while connecting, so calls arriving meanwhile wait for one new connection
    /// instead of each opening their own.
    reconnecting: tokio::sync::Mutex<()>,
    generations: AtomicU64,
}

impl SingleServer {
    async fn live(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(live) = self.current.lock().clone() {
            return Ok(live);
        }
        let _turn = self.reconnecting.lock().await;
        if let Some(live) = self.current.lock().clone() {
            return Ok(live);
        }
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let live = (generation, connection);
        *self.current.lock() = Some(live.clone());
        Ok(live)
    }

    async fn query<T: FromRedisValue>(&self, command: &Cmd) -> RedisResult<T> {
        let (generation, mut connection) = self.live().await?;
        let result = command.query_async(&mut connection).await;
        if let Err(error) = &result {
            if error.is_connection_dropped() || error.is_unrecoverable_error() {
                // Forget this connection unless another call already replaced it.
                let mut current = self.current.lock();
                if current
                    .as_ref()
                    .is_some_and(|(live, _)| *live == generation)
                {
                    *current = None;
                }
            }
        }
        result
    }
}

/// Maps a Redis error: the server out of reach (refused, reset, timed out, a cluster without
/// a master for the slot, a server loading its data or busy in a script) is `Unavailable`;
/// anything else is `Backend`.
pub(super) fn redis_error(error: RedisError) -> KvError {
    let unavailable = matches!(
        error.kind(),
        ErrorKind::Io
            | ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
            )
    ) || error.code() == Some("BUSY");
    if unavailable {
        KvError::unavailable(BACKEND, error)
    } else {
        KvError::backend(BACKEND, error)
    }
}
