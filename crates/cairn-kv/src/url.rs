//! Store URLs: which backend, where, in which mode. A leaf module: parsing only.
//!
//! | URL | store |
//! |---|---|
//! | `cairn:memory` | Cairn engine, `InMemory` |
//! | `cairn:///path?durability=strict` | Cairn engine at `/path`; `strict` (default), `buffered` or `memory` |
//! | `sqlite:memory` | `SQLite`, in memory |
//! | `sqlite:///path?synchronous=normal` | `SQLite` file at `/path`; `normal` (default) or `full` |
//! | `redis://host:port[/db]` | one Redis server |
//! | `redis+cluster://host:port,host:port,...` | a Redis Cluster, from any of its nodes |
//!
//! Parsing is a pure function ([`StoreUrl::parse`]) so it is tested without any backend;
//! `crate::open` then builds the store, or fails with `Unsupported` when this build lacks the
//! backend's cargo feature. Paths are taken literally (no percent-decoding); a relative
//! path is written `cairn:data/dir`.

use std::path::PathBuf;

use crate::error::{KvError, KvResult};

/// The Cairn engine's durability, as a URL names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CairnDurability {
    /// No files; `Buffered` and `Strict` are the engine's modes of the same name.
    InMemory,
    /// Acknowledged once in the WAL buffer; synced in the background.
    Buffered,
    /// Acknowledged once the commit is on disk.
    Strict,
}

/// `SQLite`'s `synchronous` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SqliteSynchronous {
    /// `synchronous=NORMAL` in WAL mode: a power loss may drop the last commits, never
    /// corrupts.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is synced before it returns.
    Full,
}

/// A parsed store URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// The Cairn engine.
    Cairn {
        /// The data directory; `None` for `InMemory`.
        path: Option<PathBuf>,
        /// The durability mode.
        durability: CairnDurability,
    },
    /// `SQLite`.
    Sqlite {
        /// The database file; `None` for an in-memory database.
        path: Option<PathBuf>,
        /// The `synchronous` setting.
        synchronous: SqliteSynchronous,
    },
    /// One Redis server, as a `redis://` URL.
    Redis {
        /// The server URL, passed to the client as is.
        url: String,
    },
    /// A Redis Cluster: the `redis://` URL of each seed node.
    RedisCluster {
        /// One URL per node given.
        nodes: Vec<String>,
    },
}

impl StoreUrl {
    /// Parses `url`; see the module docs for the forms.
    pub fn parse(url: &str) -> KvResult<StoreUrl> {
        let invalid = |reason: &str| KvError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url.split_once(':').ok_or_else(|| {
            invalid("no scheme; expected cairn:, sqlite:, redis: or redis+cluster:")
        })?;
        match scheme {
            "cairn" => {
                let (location, query) = split_query(rest);
                let mut durability = None;
                for (name, value) in query_pairs(query).map_err(|reason| invalid(&reason))? {
                    match (name, value) {
                        ("durability", "strict") => durability = Some(CairnDurability::Strict),
                        ("durability", "buffered") => durability = Some(CairnDurability::Buffered),
                        ("durability", "memory") => durability = Some(CairnDurability::InMemory),
                        ("durability", _) => {
                            return Err(invalid("durability must be strict, buffered or memory"))
                        }
                        _ => return Err(invalid(&format!("unknown parameter {name:?}"))),
                    }
                }
                if location == "memory" {
                    if durability.is_some_and(|mode| mode != CairnDurability::InMemory) {
                        return Err(invalid("cairn:memory has no files, so no durable mode"));
                    }
                    return Ok(StoreUrl::Cairn {
                        path: None,
                        durability: CairnDurability::InMemory,
                    });
                }
                let path = file_path(location).ok_or_else(|| invalid("no path given"))?;
                let durability = durability.unwrap_or(CairnDurability::Strict);
                let path = (durability != CairnDurability::InMemory).then_some(path);
                Ok(StoreUrl::Cairn { path, durability })
            }
            "sqlite" => {
                let (location, query) = split_query(rest);
                let mut synchronous = SqliteSynchronous::default();
                for (name, value) in query_pairs(query).map_err(|reason| invalid(&reason))? {
                    match (name, value) {
                        ("synchronous", "normal") => synchronous = SqliteSynchronous::Normal,
                        ("synchronous", "full") => synchronous = SqliteSynchronous::Full,
                        ("synchronous", _) => {
                            return Err(invalid("synchronous must be normal or full"))
                        }
                        _ => return Err(invalid(&format!("unknown parameter {name:?}"))),
                    }
                }
                let path = if location == "memory" {
                    None
                } else {
                    Some(file_path(location).ok_or_else(|| invalid("no path given"))?)
                };
                Ok(StoreUrl::Sqlite { path, synchronous })
            }
            "redis" | "rediss" => {
                if !rest.starts_with("//") || rest.len() <= 2 {
                    return Err(invalid("expected redis://host:port"));
                }
                Ok(StoreUrl::Redis {
                    url: url.to_owned(),
                })
            }
            "redis+cluster" => {
                let hosts = rest
                    .strip_prefix("//")
                    .ok_or_else(|| invalid("expected redis+cluster://host:port,host:port"))?;
                let nodes: Vec<String> = hosts
                    .split(',')
                    .map(str::trim)
                    .filter(|host| !host.is_empty())
                    .map(|host| format!("redis://{host}"))
                    .collect();
                if nodes.is_empty() {
                    return Err(invalid("no cluster nodes given"));
                }
                Ok(StoreUrl::RedisCluster { nodes })
            }
            _ => Err(invalid(
                "unknown scheme; expected cairn:, sqlite:, redis: or redis+cluster:",
            )),
        }
    }
}

fn split_query(rest: &str) -> (&str, &str) {
    rest.split_once('?').unwrap_or((rest, ""))
}

fn query_pairs(query: &str) -> Result<impl Iterator<Item = (&str, &str)>, String> {
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("parameter {pair:?} has no value"))?;
        pairs.push((name, value));
    }
    Ok(pairs.into_iter())
}

/// `///abs/path` -> `/abs/path`; `rel/path` -> `rel/path`; empty -> `None`.
fn file_path(location: &str) -> Option<PathBuf> {
    let path = location.strip_prefix("//").unwrap_or(location);
    (!path.is_empty()).then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_form_parses() -> KvResult<()> {
        assert_eq!(
            StoreUrl::parse("cairn:memory")?,
            StoreUrl::Cairn {
                path: None,
                durability: CairnDurability::InMemory
            }
        );
        assert_eq!(
            StoreUrl::parse("cairn:///var/lib/app?durability=buffered")?,
            StoreUrl::Cairn {
                path: Some(PathBuf::from("/var/lib/app")),
                durability: CairnDurability::Buffered
            }
        );
        assert_eq!(
            StoreUrl::parse("cairn:data/dir")?,
            StoreUrl::Cairn {
                path: Some(PathBuf::from("data/dir")),
                durability: CairnDurability::Strict
            }
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/x.db?synchronous=full")?,
            StoreUrl::Sqlite {
                path: Some(PathBuf::from("/tmp/x.db")),
                synchronous: SqliteSynchronous::Full
            }
        );
        assert_eq!(
            StoreUrl::parse("sqlite:memory")?,
            StoreUrl::Sqlite {
                path: None,
                synchronous: SqliteSynchronous::Normal
            }
        );
        assert_eq!(
            StoreUrl::parse("redis://127.0.0.1:6379/2")?,
            StoreUrl::Redis {
                url: "redis://127.0.0.1:6379/2".to_owned()
            }
        );
        assert_eq!(
            StoreUrl::parse("redis+cluster://127.0.0.1:7000, 127.0.0.1:7001")?,
            StoreUrl::RedisCluster {
                nodes: vec![
                    "redis://127.0.0.1:7000".to_owned(),
                    "redis://127.0.0.1:7001".to_owned()
                ]
            }
        );
        Ok(())
    }

    #[test]
    fn bad_urls_name_the_problem() {
        for url in [
            "",
            "memory",
            "mysql://x",
            "cairn:",
            "cairn:memory?durability=strict",
            "cairn:///x?durability=fast",
            "cairn:///x?durability",
            "cairn:///x?color=red",
            "sqlite:",
            "sqlite:///x?synchronous=off",
            "redis:",
            "redis://",
            "redis+cluster://",
            "redis+cluster://,,",
        ] {
            assert!(
                matches!(StoreUrl::parse(url), Err(KvError::InvalidUrl { .. })),
                "{url:?} was accepted"
            );
        }
    }
}
