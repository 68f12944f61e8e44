//! Connections for blocking stream reads (`XREAD ... BLOCK`, `XREADGROUP ... BLOCK`).
//!
//! A blocking command holds its connection for the whole wait: Redis answers one client's
//! commands in order, so whatever is sent behind it on the same socket waits too. The
//! store's command connection is multiplexed (every call shares one socket per node), so a
//! blocking read is never sent there. Each blocking call has a connection of its own to the
//! node that serves the stream's slot: an idle one an earlier call left, or a new one. After
//! a reply (or a server error, which leaves the connection sound) the connection is kept for
//! the next call, up to [`BLOCKING_IDLE_PER_NODE`] per node; a call that times out or is
//! cancelled drops its connection, and closing the socket ends the server's wait. There is no
//! limit on how many blocking calls run at once: each costs one connection meanwhile.
//!
//! A blocking call waits for its reply at most the command's own `BLOCK` plus
//! [`RESPONSE_TIMEOUT`]; past that the server is reported `Unavailable`.
//!
//! Cluster: the call goes to the node last seen serving the slot (at first, the first seed
//! node) and follows `MOVED` (remembering the new node) and `ASK` (sending `ASKING` first)
//! replies, [`CLUSTER_RETRIES`] times at most. When a node cannot be reached, the seed
//! nodes are tried in turn.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::cluster_routing::Slot;
use redis::{Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, RedisResult, Value};

use super::connection::{CLUSTER_RETRIES, CONNECT_TIMEOUT, RESPONSE_TIMEOUT};

/// Most idle blocking connections kept per node.
pub const BLOCKING_IDLE_PER_NODE: usize = 4;

/// The blocking connections of one store (shared by its clones).
pub(super) struct BlockingConnections {
    /// The one server, or the Cluster's seed nodes as given.
    seeds: Box<[ConnectionInfo]>,
    cluster: bool,
    /// Idle connections by node address (`host:port`).
    idle: Mutex<HashMap<String, Vec<MultiplexedConnection>>>,
    /// In a Cluster: the node last seen serving each slot.
    slot_nodes: Mutex<HashMap<Slot, ConnectionInfo>>,
}

/// Why a call to one node failed.
enum Failure {
    /// No connection could be made: the command was not sent.
    Connect(RedisError),
    /// The command was sent (or its connection broke).
    Command(RedisError),
}

impl BlockingConnections {
    pub(super) fn new(seeds: &[redis::Client], cluster: bool) -> Self {
        BlockingConnections {
            seeds: seeds
                .iter()
                .map(|client| client.get_connection_info().clone())
                .collect(),
            cluster,
            idle: Mutex::new(HashMap::new()),
            slot_nodes: Mutex::new(HashMap::new()),
        }
    }

    /// Sends the blocking `command` about `key` on a connection of its own, waiting at most
    /// `wait` (the command's `BLOCK`) plus [`RESPONSE_TIMEOUT`] for the reply.
    pub(super) async fn query(
        &self,
        command: &Cmd,
        key: &[u8],
        wait: Duration,
    ) -> RedisResult<Value> {
        let limit = wait.saturating_add(RESPONSE_TIMEOUT);
        let Some(first_seed) = self.seeds.first() else {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "no server to send a blocking read to",
            )));
        };
        if !self.cluster {
            return self
                .query_node(first_seed, command, false, limit)
                .await
                .map_err(Failure::into_error);
        }
        let slot = Slot::for_key(key);
        let cached = self.slot_nodes.lock().get(&slot).cloned();
        // Where to go next when a node cannot be reached: the seeds, in order.
        let mut seeds = self.seeds.iter();
        let mut node = match cached {
            Some(node) => node,
            None => seeds.next().unwrap_or(first_seed).clone(),
        };
        let mut asking = false;
        let mut redirects = 0;
        loop {
            match self.query_node(&node, command, asking, limit).await {
                Ok(reply) => {
                    if !asking {
                        self.slot_nodes.lock().insert(slot, node);
                    }
                    return Ok(reply);
                }
                Err(Failure::Command(error)) => {
                    let Some((address, _)) = error.redirect_node() else {
                        return Err(error);
                    };
                    if redirects >= CLUSTER_RETRIES {
                        return Err(error);
                    }
                    redirects += 1;
                    asking = error.kind() == ErrorKind::Server(redis::ServerErrorKind::Ask);
                    node = redirected(&node, address).ok_or(error)?;
                }
                Err(Failure::Connect(error)) => {
                    self.slot_nodes.lock().remove(&slot);
                    match seeds.next() {
                        Some(seed) => {
                            node = seed.clone();
                            asking = false;
                        }
                        None => return Err(error),
                    }
                }
            }
        }
    }

    async fn query_node(
        &self,
        node: &ConnectionInfo,
        command: &Cmd,
        asking: bool,
        limit: Duration,
    ) -> Result<Value, Failure> {
        let address = node.addr().to_string();
        let idle = self.idle.lock().get_mut(&address).and_then(Vec::pop);
        let (mut connection, reused) = match idle {
            Some(connection) => (connection, true),
            None => (connect(node).await.map_err(Failure::Connect)?, false),
        };
        let mut result = send(&mut connection, command, asking, limit).await;
        if reused && matches!(&result, Err(error) if error.is_connection_dropped()) {
            // The idle connection broke while it waited; the command did not reach the
            // server on it. One fresh try.
            connection = connect(node).await.map_err(Failure::Connect)?;
            result = send(&mut connection, command, asking, limit).await;
        }
        let sound = match &result {
            Ok(_) => true,
            Err(error) => matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension),
        };
        if sound {
            let mut idle = self.idle.lock();
            let kept = idle.entry(address).or_default();
            if kept.len() < BLOCKING_IDLE_PER_NODE {
                kept.push(connection);
            }
        }
        result.map_err(Failure::Command)
    }
}

impl Failure {
    fn into_error(self) -> RedisError {
        match self {
            Failure::Connect(error) | Failure::Command(error) => error,
        }
    }
}

async fn connect(node: &ConnectionInfo) -> RedisResult<MultiplexedConnection> {
    // No response timeout of the library's: `send` bounds each call by its own wait.
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(None);
    redis::Client::open(node.clone())?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

async fn send(
    connection: &mut MultiplexedConnection,
    command: &Cmd,
    asking: bool,
    limit: Duration,
) -> RedisResult<Value> {
    let reply = async {
        if asking {
            let mut pipeline = redis::pipe();
            pipeline.cmd("ASKING").ignore().add_command(command.clone());
            let (reply,): (Value,) = pipeline.query_async(connection).await?;
            Ok(reply)
        } else {
            command.query_async(connection).await
        }
    };
    tokio::time::timeout(limit, reply).await.map_err(|_| {
        RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no reply to a blocking read within {limit:?}"),
        ))
    })?
}

/// `node`'s connection settings for the node at `address` (`host:port`, the host empty for
/// "the host that answered"), as a `MOVED` or `ASK` reply names it.
fn redirected(node: &ConnectionInfo, address: &str) -> Option<ConnectionInfo> {
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let mut addr = node.addr().clone();
    match &mut addr {
        ConnectionAddr::Tcp(old_host, old_port)
        | ConnectionAddr::TcpTls {
            host: old_host,
            port: old_port,
            ..
        } => {
            if !host.is_empty() {
                host.clone_into(old_host);
            }
            *old_port = port;
        }
        _ => addr = ConnectionAddr::Tcp(host.to_owned(), port),
    }
    Some(node.clone().set_addr(addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::IntoConnectionInfo;

    #[test]
    fn redirects_keep_the_settings_and_change_the_address() -> RedisResult<()> {
        let node = "redis://user:secret@10.0.0.1:7000/".into_connection_info()?;
        let moved = redirected(&node, "10.0.0.2:7001");
        assert_eq!(
            moved.as_ref().map(|info| info.addr().to_string()),
            Some("10.0.0.2:7001".to_owned())
        );
        assert_eq!(
            moved
                .as_ref()
                .and_then(|info| info.redis_settings().username().map(str::to_owned)),
            Some("user".to_owned())
        );
        assert_eq!(
            redirected(&node, ":7002").map(|info| info.addr().to_string()),
            Some("10.0.0.1:7002".to_owned())
        );
        assert!(redirected(&node, "nonsense").is_none());
        Ok(())
    }
}
