//! The Redis server a run measures: the one at `--redis URL` if it answers, or a throwaway
//! `redis-server` started for the run with `--start-redis`; otherwise the Redis rows are
//! skipped with one note saying why.

use cairn_bench::peers::redis::RedisPeer;
use cairn_testkit::redis_server::RedisServer;

/// The Redis server `cairn bench` measures unless told otherwise.
pub const REDIS_URL_DEFAULT: &str = "redis://127.0.0.1:6379";

/// The server a run measures, if any, and the note that says which (or why none).
pub struct RedisChoice {
    /// The server's URL, when one answers.
    pub url: Option<String>,
    note: Option<String>,
    /// A server started for this run; stopped when the choice is dropped.
    _server: Option<RedisServer>,
}

impl RedisChoice {
    /// Starts a throwaway server if `start`, else checks that one answers at `url`.
    pub fn resolve(url: &str, start: bool) -> Self {
        if start {
            return match RedisServer::start() {
                Ok(server) => RedisChoice {
                    url: Some(server.url()),
                    note: Some(format!(
                        "Redis: a redis-server started for this run at {}",
                        server.url()
                    )),
                    _server: Some(server),
                },
                Err(error) => RedisChoice::skipped(format!(
                    "Redis rows skipped: --start-redis could not start redis-server: {error}"
                )),
            };
        }
        match RedisPeer::open(url) {
            Ok(_) => RedisChoice {
                url: Some(url.to_owned()),
                note: Some(format!("Redis: the server at {url}")),
                _server: None,
            },
            Err(error) => RedisChoice::skipped(format!(
                "Redis rows skipped: no server answered at {url} ({error}); pass --redis URL or \
                 --start-redis"
            )),
        }
    }

    /// No Redis, and nothing to say about it: the run measures no side-by-side row.
    pub fn not_needed() -> Self {
        RedisChoice {
            url: None,
            note: None,
            _server: None,
        }
    }

    fn skipped(note: String) -> Self {
        RedisChoice {
            url: None,
            note: Some(note),
            _server: None,
        }
    }

    /// The note for the report.
    pub fn described(&self) -> Option<String> {
        self.note.clone()
    }
}
