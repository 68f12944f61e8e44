//! The oracle: the same seeded random command sequences go to a real `redis-server` and to a
//! Cairn server, and every reply must be equal, byte for byte after framing (errors
//! included).
//!
//! The generator draws keys from a small pool, so commands collide on keys and meet every
//! type error, missing key and overwrite; values from a pool of integers, floats, the empty
//! string and text, so the counters meet both their successes and their errors; and options,
//! TTLs and arities at random, including wrong ones.
//!
//! The gate runs [`COMMANDS_DEFAULT`] commands; `CAIRN_DIFF_COMMANDS=n` runs more and
//! `CAIRN_DIFF_SEED=s` replays one seed. The differences we keep on purpose, listed once
//! (docs/design.md has the same list):
//! - `KEYS`, `SMEMBERS`, `HKEYS`, `HVALS` and `HGETALL` order: Redis returns hash (or
//!   insertion) order, Cairn byte order; replies are compared sorted.
//! - `SPOP` picks a random member in both, so it is not sent (the server tests check it).
//! - Scores are drawn from values both print alike (Redis 7.0 prints 17 significant digits,
//!   Cairn the shortest text that reads back the same).
//! - `SCAN` cursors are opaque in both; `SCAN` is checked for completeness in `server.rs`.
//! - `INCRBYFLOAT` computes in `f64` where Redis uses `long double`; the generator keeps
//!   floats in a key of their own, with values and increments both represent exactly.
//! - Stream ids are always given (`ms-seq` or `ms-*`), never `*`, and trimming is exact (no
//!   `~`, which lets Redis keep whole nodes of its own layout).
//! - The two servers read their clocks a moment apart, so TTLs are drawn in whole seconds,
//!   100 s or more, each one new (two expiries of the same length set a millisecond apart
//!   compare differently under `GT`/`LT`), and only `TTL` (seconds) is compared, not `PTTL`.

use std::net::SocketAddr;

use cairn_server::{Config, RunningServer};
use cairn_testkit::redis_server::RedisServer;
use cairn_testkit::{Frame, RespClient, SplitMix64};

/// Commands per gate run.
const COMMANDS_DEFAULT: usize = 100_000;

/// Commands sent to each server before their replies are read.
const PIPELINE: usize = 200;

const KEYS: &[&str] = &["a", "b", "c", "counter", "k:1", "k:2", ""];
const VALUES: &[&str] = &[
    "1",
    "0",
    "-7",
    "10",
    "9223372036854775807",
    "-9223372036854775808",
    "3.5",
    "0.25",
    "",
    "hello",
    "a b",
    "007",
    " 1",
];
const FLOAT_STEPS: &[&str] = &["0.5", "-1.25", "2", "1e2", "abc", "inf"];

struct Generator {
    rng: SplitMix64,
    /// Every TTL drawn so far: each is new, so that two expiries compare (`EXPIRE ... GT`)
    /// the same on both servers however their clocks tick between commands.
    ttls: std::collections::HashSet<i64>,
    /// Whether the main connection is between MULTI and EXEC (the generator follows it, so
    /// that it queues no command whose reply order differs, which `normalized` cannot sort
    /// inside EXEC's reply).
    in_multi: bool,
    /// The milliseconds part of the next stream ids: ids are given, never `*`, since the two
    /// servers' clocks differ.
    stream_ms: u64,
}

impl Generator {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items
            .get(self.rng.below(items.len()))
            .copied()
            .unwrap_or_default()
    }

    fn key(&mut self) -> String {
        self.pick(KEYS).to_owned()
    }

    fn value(&mut self) -> String {
        self.pick(VALUES).to_owned()
    }

    fn int(&mut self, low: i64, high: i64) -> String {
        let span = u64::try_from(high - low + 1).unwrap_or(1);
        (low + i64::try_from(self.rng.next_u64() % span).unwrap_or(0)).to_string()
    }

    /// A TTL in whole seconds, 100 s or more, never drawn before.
    fn ttl_seconds(&mut self) -> i64 {
        loop {
            let seconds = 100 + i64::try_from(self.rng.below(10_000_000)).unwrap_or(0);
            if self.ttls.insert(seconds) {
                return seconds;
            }
        }
    }

    /// A fresh TTL in seconds, as text.
    fn seconds(&mut self) -> String {
        self.ttl_seconds().to_string()
    }

    /// A fresh TTL in milliseconds (whole seconds), as text.
    fn millis(&mut self) -> String {
        (self.ttl_seconds() * 1000).to_string()
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.rng.below(100) < percent
    }

    /// A long TTL option for SET, or none.
    fn set_options(&mut self) -> Vec<String> {
        let mut options = Vec::new();
        match self.rng.below(8) {
            0 => options.extend(["EX".to_owned(), self.seconds()]),
            1 => options.extend(["PX".to_owned(), self.millis()]),
            2 => options.push("KEEPTTL".to_owned()),
            3 => options.extend(["EX".to_owned(), self.int(-2, 0)]),
            4 => options.extend(["EX".to_owned(), "x".to_owned()]),
            _ => {}
        }
        match self.rng.below(6) {
            0 => options.push("NX".to_owned()),
            1 => options.push("XX".to_owned()),
            _ => {}
        }
        if self.chance(25) {
            options.push("GET".to_owned());
        }
        if self.chance(3) {
            options.push("BOGUS".to_owned());
        }
        options
    }

    /// A write from the second connection, to a key the main one may be watching.
    fn other_write(&mut self) -> Vec<String> {
        let key = self.key();
        match self.rng.below(4) {
            0 => vec!["SET".into(), key, self.value()],
            1 => vec!["INCR".into(), key],
            2 => vec!["DEL".into(), key],
            _ => vec!["HSET".into(), "h:1".into(), self.member(), self.value()],
        }
    }

    /// One random transaction command.
    fn transaction_command(&mut self) -> Vec<String> {
        match self.rng.below(8) {
            0 | 1 => vec!["MULTI".into()],
            2 | 3 => vec!["EXEC".into()],
            4 => vec!["DISCARD".into()],
            5 => {
                let mut args = vec!["WATCH".into(), self.key()];
                if self.chance(30) {
                    args.push("h:1".into());
                }
                args
            }
            6 => vec!["UNWATCH".into()],
            _ => vec!["EXEC".into(), "extra".into()],
        }
    }

    /// One random command for the main connection.
    fn command(&mut self) -> Vec<String> {
        loop {
            let command = self.any_command();
            let name = command.first().map(|name| name.to_ascii_uppercase());
            match name.as_deref() {
                Some("MULTI") => self.in_multi = true,
                Some("EXEC" | "DISCARD") => self.in_multi = false,
                Some(
                    "KEYS" | "SMEMBERS" | "HKEYS" | "HVALS" | "HGETALL" | "XPENDING" | "SINTER"
                    | "SUNION" | "SDIFF" | "HSCAN" | "SSCAN" | "ZSCAN" | "SRANDMEMBER"
                    | "HRANDFIELD" | "ZRANDMEMBER" | "OBJECT" | "RANDOMKEY" | "XINFO",
                ) if self.in_multi => {
                    continue;
                }
                _ => {}
            }
            return command;
        }
    }

    /// Any random command.
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per command, read as a table"
    )]
    fn any_command(&mut self) -> Vec<String> {
        let key = self.key();
        if self.chance(6) {
            return self.transaction_command();
        }
        if self.chance(45) {
            return self.collection_command();
        }
        if self.chance(20) {
            return self.stream_command();
        }
        if self.chance(3) {
            return self.script_command();
        }
        let mut args: Vec<String> = match self.rng.below(34) {
            0..=3 => vec!["GET".into(), key],
            4..=7 => {
                let mut args = vec!["SET".into(), key, self.value()];
                args.extend(self.set_options());
                args
            }
            8 => vec!["SETNX".into(), key, self.value()],
            9 => vec!["GETSET".into(), key, self.value()],
            10 => vec!["GETDEL".into(), key],
            11 => {
                let mut args = vec!["GETEX".into(), key];
                match self.rng.below(4) {
                    0 => args.extend(["EX".into(), self.seconds()]),
                    1 => args.push("PERSIST".into()),
                    2 => args.extend(["PX".into(), self.int(-1, 0)]),
                    _ => {}
                }
                args
            }
            12 => {
                let mut args = vec!["MGET".into()];
                for _ in 0..=self.rng.below(4) {
                    args.push(self.key());
                }
                args
            }
            13 => {
                let command = if self.chance(50) { "MSET" } else { "MSETNX" };
                let mut args = vec![command.into()];
                for _ in 0..=self.rng.below(3) {
                    args.push(self.key());
                    args.push(self.value());
                }
                if self.chance(5) {
                    args.pop();
                }
                args
            }
            14 => vec!["APPEND".into(), key, self.value()],
            15 => vec!["STRLEN".into(), key],
            16 if self.chance(30) => {
                let mut args = vec!["LCS".into(), key, self.key()];
                for _ in 0..self.rng.below(3) {
                    match self.rng.below(6) {
                        0 => args.push("LEN".into()),
                        1 | 2 => args.push("IDX".into()),
                        3 => args.push("WITHMATCHLEN".into()),
                        4 => args.extend(["MINMATCHLEN".into(), self.int(-1, 3)]),
                        _ => args.push(self.pick(&["MINMATCHLEN", "BOGUS"]).into()),
                    }
                }
                args
            }
            16 => vec!["GETRANGE".into(), key, self.int(-12, 12), self.int(-12, 12)],
            17 if self.chance(30) => self.bit_command(key),
            17 if self.chance(50) => {
                if self.chance(50) {
                    let bit = self.pick(&["0", "1", "2", "x"]).into();
                    vec!["SETBIT".into(), key, self.int(-1, 40), bit]
                } else {
                    vec!["GETBIT".into(), key, self.int(-1, 40)]
                }
            }
            17 => vec!["SETRANGE".into(), key, self.int(-1, 20), self.value()],
            18 => vec!["INCR".into(), key],
            19 => vec!["DECR".into(), key],
            20 => vec!["INCRBY".into(), key, self.pick(VALUES).to_owned()],
            21 => vec!["DECRBY".into(), key, self.int(-100, 100)],
            // Floats live in a key of their own, which holds only values that an f64 and a
            // long double both represent exactly.
            22 => match self.rng.below(6) {
                0 => vec![
                    "SET".into(),
                    "f".into(),
                    self.pick(&["3.5", "0.25", "-10", "x"]).into(),
                ],
                1 => vec!["GET".into(), "f".into()],
                _ => vec![
                    "INCRBYFLOAT".into(),
                    "f".into(),
                    self.pick(FLOAT_STEPS).to_owned(),
                ],
            },
            23 => {
                let command = if self.chance(50) { "DEL" } else { "UNLINK" };
                let mut args = vec![command.into(), key];
                if self.chance(30) {
                    args.push(self.key());
                }
                args
            }
            24 => {
                let mut args = vec!["EXISTS".into(), key];
                if self.chance(30) {
                    args.push(self.key());
                }
                args
            }
            25 => {
                let (command, amount) = match self.rng.below(3) {
                    0 => ("EXPIRE", self.seconds()),
                    1 => ("PEXPIRE", self.millis()),
                    _ => ("EXPIRE", self.int(-5, 0)),
                };
                let mut args = vec![command.into(), key, amount];
                match self.rng.below(8) {
                    0 => args.push("NX".into()),
                    1 => args.push("XX".into()),
                    2 => args.push("GT".into()),
                    3 => args.push("LT".into()),
                    4 => args.extend(["NX".into(), "GT".into()]),
                    5 => args.push("ZZ".into()),
                    _ => {}
                }
                args
            }
            26 => vec!["TTL".into(), key],
            27 => vec!["PERSIST".into(), key],
            28 => vec!["TYPE".into(), key],
            29 => self.key_transfer(),
            30 => vec![
                "KEYS".into(),
                self.pick(&["*", "k:*", "?", "[a-c]", "k\\:1"]).into(),
            ],
            31 if self.chance(30) => vec!["RANDOMKEY".into()],
            31 => vec!["DBSIZE".into()],
            32 if self.chance(25) => {
                let sub = self.pick(&[
                    "CHANNELS",
                    "NUMSUB",
                    "NUMPAT",
                    "SHARDCHANNELS",
                    "SHARDNUMSUB",
                    "NOSUCH",
                ]);
                let mut args = vec!["PUBSUB".into(), sub.into()];
                for _ in 0..self.rng.below(3) {
                    args.push(self.pick(&["*", "__key*", "news", "marks", "m*"]).into());
                }
                args
            }
            32 => match self.rng.below(4) {
                0 => vec!["PING".into()],
                1 => vec!["ECHO".into(), self.value()],
                2 => vec!["NOSUCHCOMMAND".into(), key],
                _ => vec!["GET".into(), key, "extra".into()],
            },
            _ => vec!["SELECT".into(), self.int(-1, 2)],
        };
        // Now and then, a command name in another case.
        if self.chance(5) {
            if let Some(name) = args.first_mut() {
                *name = name.to_ascii_lowercase();
            }
        }
        args
    }
}

impl Generator {
    fn member(&mut self) -> String {
        self.pick(&["m1", "m2", "m3", "x", "", "10"]).to_owned()
    }

    fn score(&mut self) -> String {
        self.pick(&[
            "1",
            "2",
            "-3",
            "0.5",
            "2.5",
            "10",
            "inf",
            "-inf",
            "x",
            "nan",
            "0.1",
            "-1.7",
            "1e20",
            "3.14159e-7",
        ])
        .to_owned()
    }

    fn with_members(&mut self, mut args: Vec<String>, most: usize) -> Vec<String> {
        for _ in 0..=self.rng.below(most) {
            args.push(self.member());
        }
        args
    }

    /// A key for a collection command: mostly one that only commands of its type use (so
    /// most commands succeed), sometimes one of the shared keys (so types collide).
    /// `BITCOUNT`, `BITPOS` or `BITOP`, with ranges in bytes and bits.
    fn bit_command(&mut self, key: String) -> Vec<String> {
        let mut args = match self.rng.below(5) {
            3 | 4 => return self.bitfield_command(key),
            0 => vec!["BITCOUNT".into(), key],
            1 => vec![
                "BITPOS".into(),
                key,
                self.pick(&["0", "1", "2", "x"]).into(),
            ],
            _ => {
                let op = self.pick(&["AND", "OR", "XOR", "NOT", "NAND"]);
                let mut args = vec!["BITOP".into(), op.into(), key, self.key()];
                for _ in 0..self.rng.below(3) {
                    args.push(self.key());
                }
                return args;
            }
        };
        let range = self.rng.below(4);
        for _ in 0..range {
            args.push(self.int(-20, 20));
        }
        if range >= 2 && self.chance(50) {
            args.push(self.pick(&["BIT", "BYTE", "WORD"]).into());
        }
        args
    }

    /// `BITFIELD` (or `BITFIELD_RO`) with one to three operations: fields of every width and
    /// sign, small and `#` offsets, values at and past the limits, each overflow mode, and
    /// now and then a bad type, offset, value, mode or subcommand.
    fn bitfield_command(&mut self, key: String) -> Vec<String> {
        let name = if self.chance(20) {
            "BITFIELD_RO"
        } else {
            "BITFIELD"
        };
        let mut args = vec![name.into(), key];
        for _ in 0..=self.rng.below(3) {
            if self.chance(50) {
                args.push("OVERFLOW".into());
                args.push(
                    self.pick(&["WRAP", "SAT", "SAT", "FAIL", "FAIL", "BAD"])
                        .into(),
                );
            }
            let op = self.pick(&["GET", "SET", "INCRBY", "INCRBY", "INCRBY", "NOPE"]);
            args.push(op.into());
            let kind = self.pick(&[
                "u1", "u2", "u8", "i8", "i5", "u63", "i64", "i16", "u0", "u64", "i65", "x8",
            ]);
            args.push(kind.into());
            let offset = if self.chance(20) {
                self.pick(&["#0", "#1", "#3", "-1", "x", "#-1"]).to_owned()
            } else {
                self.int(0, 40)
            };
            args.push(offset);
            if op != "GET" {
                let value = if self.chance(20) {
                    self.pick(&[
                        "9223372036854775807",
                        "-9223372036854775808",
                        "x",
                        "255",
                        "-129",
                    ])
                    .to_owned()
                } else {
                    self.int(-300, 300)
                };
                args.push(value);
            }
        }
        args
    }

    /// `RENAME`, `RENAMENX`, `COPY` or `MOVE` of a key of any type, or `OBJECT REFCOUNT`.
    fn key_transfer(&mut self) -> Vec<String> {
        const ANY: &[&str] = &[
            "a", "b", "h:1", "h:2", "l:1", "l:2", "s:1", "s:2", "z:1", "z:2", "x:1", "x:2",
        ];
        let source = self.typed_key(ANY);
        let target = self.typed_key(ANY);
        let db = || ["0", "1", "2", "16", "-1", "x"];
        match self.rng.below(7) {
            0 => vec!["RENAME".into(), source, target],
            1 => vec!["RENAMENX".into(), source, target],
            2 | 3 => {
                let mut args = vec!["COPY".into(), source, target];
                if self.chance(40) {
                    let db = self.pick(&db()).to_owned();
                    args.extend(["DB".into(), db]);
                }
                if self.chance(40) {
                    args.push("REPLACE".into());
                }
                if self.chance(5) {
                    args.push("BOGUS".into());
                }
                args
            }
            4 | 5 => vec!["MOVE".into(), source, self.pick(&db()).into()],
            _ => {
                let sub = self.pick(&["REFCOUNT", "REFCOUNT", "NOSUCH"]).to_owned();
                vec!["OBJECT".into(), sub, source]
            }
        }
    }

    fn typed_key(&mut self, own: &[&str]) -> String {
        if self.chance(70) {
            self.pick(own).to_owned()
        } else {
            self.key()
        }
    }

    /// One random hash, list, set or sorted-set command.
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per command, read as a table"
    )]
    fn collection_command(&mut self) -> Vec<String> {
        // 29 and above: the rarer commands (`more_collection_command`) and the score ranges.
        let choice = self.rng.below(36);
        let own: &[&str] = match choice {
            0..=9 => &["h:1", "h:2"],
            10..=16 => &["l:1", "l:2"],
            17..=21 => &["s:1", "s:2"],
            _ => &["z:1", "z:2"],
        };
        let key = self.typed_key(own);
        match choice {
            0 | 1 => {
                let mut args = vec!["HSET".into(), key];
                for _ in 0..=self.rng.below(2) {
                    args.push(self.member());
                    args.push(self.value());
                }
                if self.chance(5) {
                    args.pop();
                }
                args
            }
            2 => vec!["HGET".into(), key, self.member()],
            3 => self.with_members(vec!["HMGET".into(), key], 3),
            4 => vec!["HGETALL".into(), key],
            5 => self.with_members(vec!["HDEL".into(), key], 2),
            6 => vec!["HLEN".into(), key],
            7 if self.chance(30) => {
                // Binary fractions, on a field `HINCRBY` leaves alone: Redis adds in `long
                // double`, Cairn in `f64`, and the two agree exactly on these sums (not on
                // `HINCRBY`'s integers near 2^63).
                let delta = self.pick(&["0.5", "-1.25", "2", "x", "1e3", "inf"]).into();
                vec!["HINCRBYFLOAT".into(), key, "float".into(), delta]
            }
            7 => vec!["HINCRBY".into(), key, self.member(), self.int(-5, 5)],
            8 => vec!["HEXISTS".into(), key, self.member()],
            9 => vec![self.pick(&["HKEYS", "HVALS", "HSETNX"]).into(), key],
            10 | 11 if self.chance(15) => {
                // Moves between lists (the same list, too), and the pushes onto a list that
                // must already be there.
                let ends = ["LEFT", "RIGHT", "up"];
                let destination = self.typed_key(own);
                match self.rng.below(5) {
                    0 => vec!["RPOPLPUSH".into(), key, destination],
                    1 => vec!["BRPOPLPUSH".into(), key, destination, "0.01".into()],
                    2 => vec![
                        "BLMOVE".into(),
                        key,
                        destination,
                        self.pick(&ends).into(),
                        self.pick(&ends).into(),
                        self.pick(&["0.01", "-1"]).into(),
                    ],
                    3 => {
                        let command = if self.chance(50) { "LPUSHX" } else { "RPUSHX" };
                        self.with_members(vec![command.into(), key], 2)
                    }
                    _ => vec![
                        "LMOVE".into(),
                        key,
                        destination,
                        self.pick(&ends).into(),
                        self.pick(&ends).into(),
                    ],
                }
            }
            10 | 11 => {
                let command = if self.chance(50) { "LPUSH" } else { "RPUSH" };
                self.with_members(vec![command.into(), key], 3)
            }
            12 | 13 if self.chance(10) => {
                // A blocking pop, with a timeout short enough that an empty list costs little
                // (inside MULTI it never blocks), and sometimes a bad timeout.
                let command = if self.chance(50) { "BLPOP" } else { "BRPOP" };
                let mut args = vec![command.into(), key];
                if self.chance(40) {
                    args.push(self.typed_key(own));
                }
                args.push(self.pick(&["0.01", "0.01", "-1", "x"]).into());
                args
            }
            12 | 13 => {
                let command = if self.chance(50) { "LPOP" } else { "RPOP" };
                let mut args = vec![command.into(), key];
                if self.chance(30) {
                    args.push(self.int(-1, 3));
                }
                args
            }
            14 => vec!["LRANGE".into(), key, self.int(-6, 6), self.int(-6, 6)],
            15 => vec!["LLEN".into(), key],
            16 => vec!["LINDEX".into(), key, self.int(-6, 6)],
            17 => self.with_members(vec!["SADD".into(), key], 3),
            18 => self.with_members(vec!["SREM".into(), key], 2),
            19 => vec!["SMEMBERS".into(), key],
            20 => vec!["SISMEMBER".into(), key, self.member()],
            21 => vec!["SCARD".into(), key],
            22 | 23 => {
                let mut args = vec!["ZADD".into(), key];
                match self.rng.below(10) {
                    0 => args.push("NX".into()),
                    1 => args.push("XX".into()),
                    2 => args.push("CH".into()),
                    3 => args.push("GT".into()),
                    4 => args.extend(["LT".into(), "CH".into()]),
                    5 => args.push("INCR".into()),
                    6 => args.extend(["NX".into(), "XX".into()]),
                    _ => {}
                }
                for _ in 0..=self.rng.below(2) {
                    args.push(self.score());
                    args.push(self.member());
                }
                args
            }
            24 => vec!["ZINCRBY".into(), key, self.score(), self.member()],
            25 => vec!["ZSCORE".into(), key, self.member()],
            26 => vec!["ZCARD".into(), key],
            27 => self.with_members(vec!["ZREM".into(), key], 2),
            28 => {
                let mut args = vec!["ZRANGE".into(), key, self.int(-4, 4), self.int(-4, 4)];
                if self.chance(50) {
                    args.push("WITHSCORES".into());
                }
                args
            }
            _ => match self.rng.below(4) {
                3 => self.more_collection_command(key),
                0 => {
                    let bounds = ["-inf", "+inf", "0", "(0", "1", "(2.5", "10", "x"];
                    // The old form, its reverse, and `ZRANGE`'s options (in any order).
                    let (name, modern) = match self.rng.below(3) {
                        0 => ("ZRANGEBYSCORE", false),
                        1 => ("ZREVRANGEBYSCORE", false),
                        _ => ("ZRANGE", true),
                    };
                    let mut args = vec![
                        name.into(),
                        key,
                        self.pick(&bounds).into(),
                        self.pick(&bounds).into(),
                    ];
                    let mut options: Vec<Vec<String>> = Vec::new();
                    if modern && self.chance(85) {
                        options.push(vec!["BYSCORE".into()]);
                    }
                    if modern && self.chance(50) {
                        options.push(vec!["REV".into()]);
                    }
                    if self.chance(50) {
                        options.push(vec!["WITHSCORES".into()]);
                    }
                    if self.chance(30) {
                        options.push(vec!["LIMIT".into(), self.int(-1, 2), self.int(-1, 3)]);
                    }
                    if options.len() > 1 && self.chance(50) {
                        options.swap(0, 1);
                    }
                    args.extend(options.into_iter().flatten());
                    args
                }
                1 => {
                    let command = if self.chance(50) {
                        "ZPOPMIN"
                    } else {
                        "ZPOPMAX"
                    };
                    let mut args = vec![command.into(), key];
                    if self.chance(50) {
                        args.push(self.int(-1, 3));
                    }
                    args
                }
                _ if self.chance(30) => {
                    let bounds = ["-inf", "+inf", "0", "(0", "1", "(2.5", "10", "x"];
                    if self.chance(50) {
                        vec![
                            "ZREMRANGEBYSCORE".into(),
                            key,
                            self.pick(&bounds).into(),
                            self.pick(&bounds).into(),
                        ]
                    } else {
                        vec![
                            "ZREMRANGEBYRANK".into(),
                            key,
                            self.int(-3, 3),
                            self.int(-3, 3),
                        ]
                    }
                }
                _ => vec!["TYPE".into(), key],
            },
        }
    }
}

impl Generator {
    /// A stream id argument: mostly near the ids being added, sometimes a bound, an
    /// exclusive id or a malformed one.
    fn stream_id(&mut self) -> String {
        let back = u64::try_from(self.rng.below(8)).unwrap_or(0);
        let ms = (self.stream_ms + 1).saturating_sub(back);
        match self.rng.below(12) {
            0 => "-".into(),
            1 => "+".into(),
            2 => format!("({ms}-{}", self.rng.below(3)),
            3 => "abc".into(),
            4 | 5 => format!("{ms}"),
            _ => format!("{ms}-{}", self.rng.below(3)),
        }
    }

    /// An id `XADD` is given: mostly the next free one, sometimes one already taken.
    fn new_stream_id(&mut self) -> String {
        if self.chance(40) {
            self.stream_ms += 1;
        }
        let ms = self.stream_ms;
        match self.rng.below(10) {
            0..=5 => format!("{ms}-*"),
            6 => format!("{ms}"),
            7 => "0-0".into(),
            8 => format!("{}-{}", ms.saturating_sub(1), self.rng.below(3)),
            _ => format!("{ms}-{}", self.rng.below(4)),
        }
    }

    /// A trimming option of `XADD` or `XTRIM` (exact only: `~` trims differently).
    fn stream_trim(&mut self) -> Vec<String> {
        let mut args = Vec::new();
        if self.chance(50) {
            args.push("MAXLEN".into());
        } else {
            args.push("MINID".into());
        }
        if self.chance(30) {
            args.push("=".into());
        }
        if args.first().is_some_and(|option| option == "MAXLEN") {
            args.push(self.int(-1, 4));
        } else {
            args.push(self.stream_id());
        }
        if self.chance(5) {
            args.extend(["LIMIT".into(), "10".into()]);
        }
        args
    }

    /// One random stream command.
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per command, read as a table"
    )]
    fn stream_command(&mut self) -> Vec<String> {
        let key = self.typed_key(&["x:1", "x:2"]);
        let group = self.pick(&["g1", "g2"]).to_owned();
        let consumer = self.pick(&["c1", "c2"]).to_owned();
        match self.rng.below(15) {
            0..=3 => {
                let mut args = vec!["XADD".into(), key];
                if self.chance(10) {
                    args.push("NOMKSTREAM".into());
                }
                if self.chance(15) {
                    args.extend(self.stream_trim());
                }
                args.push(self.new_stream_id());
                for _ in 0..=self.rng.below(2) {
                    args.push(self.member());
                    args.push(self.value());
                }
                if self.chance(5) {
                    args.pop();
                }
                args
            }
            4 if self.chance(30) => {
                let mut args = vec!["XSETID".into(), key, self.stream_id()];
                match self.rng.below(5) {
                    0 => args.extend(["ENTRIESADDED".into(), self.int(-1, 4)]),
                    1 => args.extend(["MAXDELETEDID".into(), self.stream_id()]),
                    2 => args.push("ENTRIESADDED".into()),
                    _ => {}
                }
                args
            }
            4 => vec!["XLEN".into(), key],
            5 | 6 => {
                let command = if self.chance(50) {
                    "XRANGE"
                } else {
                    "XREVRANGE"
                };
                let mut args = vec![command.into(), key, self.stream_id(), self.stream_id()];
                if self.chance(40) {
                    args.extend(["COUNT".into(), self.int(-1, 3)]);
                }
                args
            }
            7 => {
                let mut args = vec!["XDEL".into(), key];
                for _ in 0..=self.rng.below(2) {
                    args.push(self.stream_id());
                }
                args
            }
            8 => {
                let mut args = vec!["XTRIM".into(), key];
                args.extend(self.stream_trim());
                args
            }
            9 => {
                let mut args = vec!["XREAD".into()];
                if self.chance(40) {
                    args.extend(["COUNT".into(), self.int(-1, 3)]);
                }
                if self.chance(3) {
                    args.extend(["BLOCK".into(), "1".into()]);
                }
                args.extend(["STREAMS".into(), key]);
                if self.chance(30) {
                    args.push(self.typed_key(&["x:1", "x:2"]));
                    args.push(self.stream_id());
                }
                let id = if self.chance(20) {
                    "$".into()
                } else {
                    self.stream_id()
                };
                args.push(id);
                args
            }
            10 => {
                let mut args = vec!["XREADGROUP".into(), "GROUP".into(), group, consumer];
                if self.chance(40) {
                    args.extend(["COUNT".into(), self.int(-1, 3)]);
                }
                if self.chance(15) {
                    args.push("NOACK".into());
                }
                args.extend(["STREAMS".into(), key]);
                let id = match self.rng.below(10) {
                    0..=5 => ">".into(),
                    6 | 7 => "0".into(),
                    _ => self.stream_id(),
                };
                args.push(id);
                args
            }
            11 => {
                let mut args = vec!["XACK".into(), key, group];
                for _ in 0..=self.rng.below(2) {
                    // Mostly an id an `XADD` of a new millisecond gave, so acks land.
                    let id = if self.chance(70) {
                        let back = u64::try_from(self.rng.below(4)).unwrap_or(0);
                        format!("{}-0", self.stream_ms.saturating_sub(back))
                    } else {
                        self.stream_id()
                    };
                    args.push(id);
                }
                args
            }
            12 => {
                let id = if self.chance(30) {
                    "$".into()
                } else {
                    self.stream_id()
                };
                let mut args = vec!["XGROUP".into(), "CREATE".into(), key, group, id];
                if self.chance(40) {
                    args.push("MKSTREAM".into());
                }
                args
            }
            13 => self.claim_command(key, group, consumer),
            _ => match self.rng.below(10) {
                0 => vec!["XGROUP".into(), "DESTROY".into(), key, group],
                1..=3 => vec![
                    "XGROUP".into(),
                    "SETID".into(),
                    key,
                    group,
                    self.stream_id(),
                ],
                4 => vec!["XGROUP".into(), "DELCONSUMER".into(), key, group, consumer],
                5 => vec![
                    "XGROUP".into(),
                    "CREATECONSUMER".into(),
                    key,
                    group,
                    consumer,
                ],
                6 => vec!["XINFO".into(), "CONSUMERS".into(), key, group],
                7 => vec!["XINFO".into(), "GROUPS".into(), key],
                _ => vec!["TYPE".into(), key],
            },
        }
    }
}

impl Generator {
    /// One `XPENDING`, `XCLAIM` or `XAUTOCLAIM`, always with a minimum idle time of 0, since
    /// the two servers' clocks differ (`normalized` zeroes the idle times `XPENDING` shows).
    fn claim_command(&mut self, key: String, group: String, consumer: String) -> Vec<String> {
        match self.rng.below(4) {
            0 => vec!["XPENDING".into(), key, group],
            1 => {
                let mut args = vec![
                    "XPENDING".into(),
                    key,
                    group,
                    self.stream_id(),
                    self.stream_id(),
                    self.int(-1, 4),
                ];
                if self.chance(30) {
                    args.push(consumer);
                }
                args
            }
            2 => {
                let mut args = vec!["XCLAIM".into(), key, group, consumer, "0".into()];
                for _ in 0..=self.rng.below(2) {
                    args.push(self.stream_id());
                }
                match self.rng.below(5) {
                    0 => args.push("JUSTID".into()),
                    1 => args.extend(["RETRYCOUNT".into(), self.int(0, 5)]),
                    2 => args.push("FORCE".into()),
                    _ => {}
                }
                args
            }
            _ => {
                let mut args = vec![
                    "XAUTOCLAIM".into(),
                    key,
                    group,
                    consumer,
                    "0".into(),
                    self.stream_id(),
                ];
                if self.chance(50) {
                    let count = if self.chance(80) {
                        self.int(0, 3)
                    } else {
                        // Past Redis's bound (2^63 / 16), and not a number.
                        self.pick(&["8070450532247928833", "x"]).into()
                    };
                    args.extend(["COUNT".into(), count]);
                }
                if self.chance(20) {
                    args.push("JUSTID".into());
                }
                args
            }
        }
    }
}

/// Scripts for `EVAL`: each makes at most one write, or fails before it, so that Cairn's
/// rollback of a failed script and Redis's partial writes never differ.
const SCRIPTS: &[&str] = &[
    "return redis.call('GET', KEYS[1])",
    "return redis.call('INCR', KEYS[1])",
    "return redis.pcall('INCR', KEYS[1])",
    "return {redis.call('EXISTS', KEYS[1]), ARGV[1], 7, 2.9, true, false}",
    "return redis.call('SET', KEYS[1], ARGV[1])",
    "return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])",
    "return redis.call('LRANGE', KEYS[1], 0, -1)",
    "return redis.error_reply('MY_CODE ' .. tostring(ARGV[1]))",
    "return redis.status_reply('FINE')",
    "return redis.call('TYPE', KEYS[1])",
    "return undefined_global",
    "return redis.call('NOSUCHCOMMAND')",
    "return redis.call('GET')",
    "this is not lua",
];

impl Generator {
    /// One `EVAL`, `EVALSHA` or `SCRIPT` command.
    fn script_command(&mut self) -> Vec<String> {
        let script = self.pick(SCRIPTS).to_owned();
        match self.rng.below(10) {
            0 => vec!["SCRIPT".into(), "LOAD".into(), script],
            1 => vec![
                "EVALSHA".into(),
                sha1_smol::Sha1::from(&script).digest().to_string(),
                "1".into(),
                self.key(),
                self.value(),
                self.member(),
            ],
            2 => vec!["EVAL".into(), script, self.int(-1, 3)],
            _ => vec![
                "EVAL".into(),
                script,
                "1".into(),
                self.key(),
                self.value(),
                self.member(),
            ],
        }
    }
}

impl Generator {
    /// The rarer collection commands: list edits, set algebra, sorted-set ranks and counts.
    fn more_collection_command(&mut self, key: String) -> Vec<String> {
        let list = self.typed_key(&["l:1", "l:2"]);
        let set = self.typed_key(&["s:1", "s:2"]);
        let zset = self.typed_key(&["z:1", "z:2"]);
        match self.rng.below(30) {
            27 | 28 => self.zset_pop(),
            29 => self.random_pick(),
            0 => vec!["LSET".into(), list, self.int(-4, 4), self.member()],
            24..=26 => self.list_edit(list),
            1 => vec!["LTRIM".into(), list, self.int(-4, 4), self.int(-4, 4)],
            2 => self.with_members(vec!["SMISMEMBER".into(), set], 2),
            3 => {
                let command = self.pick(&["SINTER", "SUNION", "SDIFF"]).to_owned();
                let mut args = vec![command, set];
                for _ in 0..self.rng.below(3) {
                    args.push(self.typed_key(&["s:1", "s:2"]));
                }
                args
            }
            4 => vec!["ZCOUNT".into(), zset, self.score(), self.score()],
            5 => vec!["ZRANK".into(), zset, self.member()],
            6 => vec!["ZREVRANK".into(), zset, self.member()],
            7 => self.with_members(vec!["ZMSCORE".into(), zset], 2),
            8 => {
                let mut args = vec!["ZREVRANGE".into(), zset, self.int(-4, 4), self.int(-4, 4)];
                if self.chance(50) {
                    args.push("WITHSCORES".into());
                }
                args
            }
            9 => vec![
                "HSTRLEN".into(),
                self.typed_key(&["h:1", "h:2"]),
                self.member(),
            ],
            10 => vec![
                "SMOVE".into(),
                set,
                self.typed_key(&["s:1", "s:2"]),
                self.member(),
            ],
            11 => {
                let command = self
                    .pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])
                    .to_owned();
                let destination = if self.chance(70) {
                    self.typed_key(&["s:1", "s:2"])
                } else {
                    key
                };
                let mut args = vec![command, destination, set];
                for _ in 0..self.rng.below(3) {
                    args.push(self.typed_key(&["s:1", "s:2"]));
                }
                args
            }
            12 => {
                let keys = 1 + self.rng.below(3);
                let mut args = vec!["SINTERCARD".into(), self.int(-1, 4), set];
                for _ in 1..keys {
                    args.push(self.typed_key(&["s:1", "s:2"]));
                }
                if self.chance(50) {
                    args.push("LIMIT".into());
                    args.push(self.int(-1, 3));
                }
                args
            }
            13 => {
                let (command, own) = match self.rng.below(3) {
                    0 => ("HSCAN", ["h:1", "h:2"]),
                    1 => ("SSCAN", ["s:1", "s:2"]),
                    _ => ("ZSCAN", ["z:1", "z:2"]),
                };
                let mut args = vec![command.into(), self.typed_key(&own), "0".into()];
                if self.chance(40) {
                    args.push("MATCH".into());
                    args.push(self.pick(&["*", "m*", "*1*", "[a-m]*"]).into());
                }
                // Redis walks a hash-table set `COUNT` buckets at a time; 10 or more covers
                // every bucket of a set this small, so both servers answer in one reply.
                if self.chance(20) {
                    args.push("COUNT".into());
                    args.push(self.pick(&["0", "10", "20"]).into());
                }
                args
            }
            14 | 16..=18 => self.zset_algebra(key),
            19 | 20 => self.lex_command(),
            21 => self.zrangestore(),
            15 => {
                let mut args = vec!["ZINTERCARD".into(), self.int(-1, 3)];
                for _ in 0..=self.rng.below(3) {
                    args.push(self.typed_key(&["z:1", "z:2", "s:1"]));
                }
                if self.chance(40) {
                    args.push("LIMIT".into());
                    args.push(self.int(-1, 3));
                }
                args
            }
            _ => vec!["TYPE".into(), key],
        }
    }

    /// `SRANDMEMBER`, `HRANDFIELD` or `ZRANDMEMBER`: the replies are compared by shape only
    /// (`normalized`).
    fn random_pick(&mut self) -> Vec<String> {
        let (command, own, with) = match self.rng.below(3) {
            0 => ("SRANDMEMBER", ["s:1", "s:2"], "x"),
            1 => ("HRANDFIELD", ["h:1", "h:2"], "WITHVALUES"),
            _ => ("ZRANDMEMBER", ["z:1", "z:2"], "withscores"),
        };
        let mut args = vec![command.into(), self.typed_key(&own)];
        if self.chance(80) {
            args.push(self.int(-3, 3));
            if self.chance(40) {
                args.push(with.into());
            }
        }
        args
    }

    /// `LREM`, `LINSERT` or `LPOS` on `list`, with options at random (some wrong).
    /// Commands that grow a list past one chunk (many elements in one push, or large ones)
    /// and reach into its middle, so that the chunks' edges are crossed.
    fn long_list_command(&mut self, list: String) -> Vec<String> {
        let push = if self.chance(50) { "LPUSH" } else { "RPUSH" };
        match self.rng.below(7) {
            0 | 1 => {
                let mut args = vec![push.into(), list];
                for _ in 0..50 + self.rng.below(250) {
                    args.push(self.member());
                }
                args
            }
            2 => {
                let mut args = vec![push.into(), list];
                for _ in 0..=self.rng.below(3) {
                    let member = self.member();
                    args.push(member.repeat(200 + self.rng.below(800)));
                }
                args
            }
            3 => vec![
                "LRANGE".into(),
                list,
                self.int(-400, 400),
                self.int(-400, 400),
            ],
            4 => vec!["LINDEX".into(), list, self.int(-400, 400)],
            5 => vec!["LSET".into(), list, self.int(-400, 400), self.member()],
            _ => vec!["LTRIM".into(), list, self.int(0, 60), self.int(-400, -1)],
        }
    }

    fn list_edit(&mut self, list: String) -> Vec<String> {
        match self.rng.below(7) {
            5 | 6 => self.long_list_command(list),
            3 | 4 => {
                let blocking = self.chance(30);
                let mut args = if blocking {
                    vec!["BLMPOP".into(), "0.01".into()]
                } else {
                    vec!["LMPOP".into()]
                };
                self.mpop_arguments(&mut args, &["l:1", "l:2"], ["LEFT", "right"]);
                args
            }
            0 => vec!["LREM".into(), list, self.int(-2, 2), self.member()],
            1 => vec![
                "LINSERT".into(),
                list,
                self.pick(&["BEFORE", "after", "middle"]).into(),
                self.member(),
                self.member(),
            ],
            _ => {
                let mut args = vec!["LPOS".into(), list, self.member()];
                for _ in 0..self.rng.below(3) {
                    let option = self.pick(&["RANK", "COUNT", "MAXLEN", "LIMIT"]);
                    args.push(option.into());
                    args.push(self.int(-2, 3));
                }
                args
            }
        }
    }

    /// `numkeys key [key ...] END [COUNT count]`, as `LMPOP` and `ZMPOP` take them, with a
    /// wrong count, end or option now and then.
    fn mpop_arguments(&mut self, args: &mut Vec<String>, own: &[&str], ends: [&str; 2]) {
        let keys = 1 + self.rng.below(2);
        args.push(if self.chance(90) {
            keys.to_string()
        } else {
            self.int(-1, 3)
        });
        for _ in 0..keys {
            args.push(self.typed_key(own));
        }
        args.push(if self.chance(95) {
            self.pick(&ends).into()
        } else {
            "MIDDLE".into()
        });
        if self.chance(40) {
            args.push("COUNT".into());
            args.push(self.int(-1, 3));
        }
    }

    /// `ZMPOP`, `BZMPOP`, `BZPOPMIN` or `BZPOPMAX` (the blocking ones with a 10 ms timeout).
    fn zset_pop(&mut self) -> Vec<String> {
        match self.rng.below(3) {
            0 => {
                let mut args = vec![self.pick(&["BZPOPMIN", "BZPOPMAX"]).into()];
                for _ in 0..=self.rng.below(2) {
                    args.push(self.typed_key(&["z:1", "z:2"]));
                }
                args.push("0.01".into());
                args
            }
            1 => {
                let mut args = vec!["BZMPOP".into(), "0.01".into()];
                self.mpop_arguments(&mut args, &["z:1", "z:2"], ["MIN", "max"]);
                args
            }
            _ => {
                let mut args = vec!["ZMPOP".into()];
                self.mpop_arguments(&mut args, &["z:1", "z:2"], ["MIN", "max"]);
                args
            }
        }
    }

    /// A lex-range command on `zl`, whose members all have score 0 (Redis defines lex ranges
    /// only for equal scores; Cairn reads them in byte order, which is the same then).
    fn lex_command(&mut self) -> Vec<String> {
        let bound = |generator: &mut Generator| {
            generator
                .pick(&["-", "+", "[m1", "(m2", "[", "(", "x", "[x", "(10", "[10"])
                .to_owned()
        };
        let (min, max) = (bound(self), bound(self));
        let mut args = match self.rng.below(6) {
            0 => {
                let mut args = vec!["ZADD".into(), "zl".into()];
                for _ in 0..=self.rng.below(2) {
                    args.push("0".into());
                    args.push(self.member());
                }
                return args;
            }
            1 => vec!["ZRANGEBYLEX".into(), "zl".into(), min, max],
            2 => vec!["ZREVRANGEBYLEX".into(), "zl".into(), min, max],
            3 => return vec!["ZLEXCOUNT".into(), "zl".into(), min, max],
            4 => return vec!["ZREMRANGEBYLEX".into(), "zl".into(), min, max],
            _ => {
                let mut args = vec!["ZRANGE".into(), "zl".into(), min, max, "BYLEX".into()];
                if self.chance(40) {
                    args.push("REV".into());
                }
                if self.chance(10) {
                    args.push("WITHSCORES".into());
                }
                args
            }
        };
        if self.chance(40) {
            args.push("LIMIT".into());
            args.push(self.int(-1, 2));
            args.push(self.int(-1, 2));
        }
        args
    }

    /// `ZRANGESTORE` by rank, by score or (from `zl`) by lex.
    fn zrangestore(&mut self) -> Vec<String> {
        let destination = self.typed_key(&["z:1", "z:2"]);
        let mut args = match self.rng.below(3) {
            0 => vec![
                "ZRANGESTORE".into(),
                destination,
                self.typed_key(&["z:1", "z:2"]),
                self.int(-3, 3),
                self.int(-3, 3),
            ],
            1 => vec![
                "ZRANGESTORE".into(),
                destination,
                self.typed_key(&["z:1", "z:2"]),
                self.pick(&["-inf", "0", "(1", "2.5"]).into(),
                self.pick(&["+inf", "10", "(2"]).into(),
                "BYSCORE".into(),
            ],
            _ => vec![
                "ZRANGESTORE".into(),
                destination,
                "zl".into(),
                self.pick(&["-", "[m1", "(m2"]).into(),
                self.pick(&["+", "[x", "(m3"]).into(),
                "BYLEX".into(),
            ],
        };
        if self.chance(30) {
            args.push("REV".into());
        }
        if self.chance(20) {
            args.push("LIMIT".into());
            args.push(self.int(-1, 2));
            args.push(self.int(-1, 2));
        }
        if self.chance(5) {
            args.push("WITHSCORES".into());
        }
        args
    }

    /// `ZUNION`, `ZINTER`, `ZDIFF` or a `STORE` form, over sorted sets and sets, with
    /// weights, an aggregate and `WITHSCORES` at random (and sometimes where they do not fit).
    fn zset_algebra(&mut self, key: String) -> Vec<String> {
        let command = self
            .pick(&[
                "ZUNION",
                "ZINTER",
                "ZDIFF",
                "ZUNIONSTORE",
                "ZINTERSTORE",
                "ZDIFFSTORE",
            ])
            .to_owned();
        let storing = command.ends_with("STORE");
        let mut args = vec![command];
        if storing {
            args.push(if self.chance(70) {
                self.typed_key(&["z:1", "z:2"])
            } else {
                key
            });
        }
        let inputs = 1 + self.rng.below(3);
        args.push(if self.chance(90) {
            inputs.to_string()
        } else {
            self.int(-1, 4)
        });
        for _ in 0..inputs {
            args.push(if self.chance(90) {
                self.pick(&["z:1", "z:2", "s:1"]).to_owned()
            } else {
                self.key()
            });
        }
        if self.chance(40) {
            args.push("WEIGHTS".into());
            for _ in 0..inputs {
                args.push(self.pick(&["1", "2", "-1", "0", "0.5", "inf", "x"]).into());
            }
        }
        if self.chance(40) {
            args.push("AGGREGATE".into());
            args.push(self.pick(&["SUM", "min", "MAX", "avg"]).into());
        }
        if self.chance(40) {
            args.push("WITHSCORES".into());
        }
        args
    }
}

/// A reply, with the differences we accept taken out.
fn normalized(command: &[String], reply: Frame) -> Frame {
    let name = command.first().map(|name| name.to_ascii_uppercase());
    match (name.as_deref(), reply) {
        (
            Some(
                "KEYS" | "SMEMBERS" | "HKEYS" | "HVALS" | "SINTER" | "SUNION" | "SDIFF" | "PUBSUB",
            ),
            Frame::Array(mut items),
        ) => {
            items.sort_by_key(|item| format!("{item:?}"));
            Frame::Array(items)
        }
        // Idle times depend on each server's clock.
        (Some("XPENDING"), Frame::Array(rows)) if command.len() > 3 => Frame::Array(
            rows.into_iter()
                .map(|row| match row {
                    Frame::Array(mut fields) => {
                        if let Some(idle) = fields.get_mut(2) {
                            *idle = Frame::Integer(0);
                        }
                        Frame::Array(fields)
                    }
                    other => other,
                })
                .collect(),
        ),
        (Some("XINFO"), Frame::Array(rows)) => Frame::Array(
            rows.into_iter()
                .map(|row| match row {
                    Frame::Array(mut fields) => {
                        normalize_xinfo_row(&mut fields);
                        Frame::Array(fields)
                    }
                    other => other,
                })
                .collect(),
        ),
        (Some("HGETALL"), Frame::Array(items)) => Frame::Array(sorted_in(&items, 2)),
        // Redis shares small integers between keys and counts them as referenced
        // 2147483647 times; Cairn shares nothing (docs/design.md section 15).
        (Some("OBJECT"), Frame::Integer(count)) if count > 0 => Frame::Integer(1),
        // Random picks agree in shape only: how many, and a member or none.
        (Some("SRANDMEMBER" | "HRANDFIELD" | "ZRANDMEMBER"), Frame::Array(items)) => {
            Frame::Integer(i64::try_from(items.len()).unwrap_or(i64::MAX))
        }
        (Some("SRANDMEMBER" | "HRANDFIELD" | "ZRANDMEMBER" | "RANDOMKEY"), Frame::Bulk(_)) => {
            Frame::Bulk(b"a member".to_vec())
        }
        // A small collection's whole scan comes back in one reply, in each server's order.
        (Some(name @ ("HSCAN" | "SSCAN" | "ZSCAN")), Frame::Array(mut reply))
            if reply.len() == 2 =>
        {
            if let Some(Frame::Array(items)) = reply.pop() {
                let width = if name == "SSCAN" { 1 } else { 2 };
                reply.push(Frame::Array(sorted_in(&items, width)));
            }
            Frame::Array(reply)
        }
        (_, reply) => reply,
    }
}

/// One row of `XINFO CONSUMERS` or `XINFO GROUPS` (RESP2: names and values in turn): a
/// consumer's idle time depends on each server's clock, and a group's `entries-read` and
/// `lag` are counters Cairn does not keep (docs/design.md section 15).
fn normalize_xinfo_row(fields: &mut [Frame]) {
    let mut at = 0;
    while at + 1 < fields.len() {
        let replaced = match fields.get(at) {
            Some(Frame::Bulk(name)) if name == b"idle" => Some(Frame::Integer(0)),
            Some(Frame::Bulk(name)) if name == b"entries-read" || name == b"lag" => {
                Some(Frame::Null)
            }
            _ => None,
        };
        if let (Some(value), Some(slot)) = (replaced, fields.get_mut(at + 1)) {
            *slot = value;
        }
        at += 2;
    }
}

/// `items` sorted in groups of `width` (a member and its value, or a member alone).
fn sorted_in(items: &[Frame], width: usize) -> Vec<Frame> {
    let mut groups: Vec<Vec<Frame>> = items.chunks(width).map(<[Frame]>::to_vec).collect();
    groups.sort_by_key(|group| format!("{group:?}"));
    groups.concat()
}

/// Sends commands to both servers and compares the replies.
struct Checker {
    seed: u64,
    sent: usize,
    errors: usize,
    /// Keyspace events compared.
    events: usize,
    /// The last commands sent, oldest first, for a failure's message.
    recent: Vec<Vec<String>>,
}

impl Checker {
    /// Sends `commands` to both servers as one pipeline each, then compares the replies.
    fn pipeline(
        &mut self,
        oracle: &mut RespClient,
        subject: &mut RespClient,
        commands: &[Vec<String>],
    ) -> std::io::Result<()> {
        for command in commands {
            oracle.send(command)?;
            subject.send(command)?;
        }
        for command in commands {
            self.recent.push(command.clone());
            if self.recent.len() > 60 {
                self.recent.remove(0);
            }
            let expected = normalized(command, oracle.read()?);
            let got = normalized(command, subject.read()?);
            self.errors += usize::from(matches!(got, Frame::Error(_)));
            assert!(
                expected == got,
                "seed {}, command {}: {command:?}\n redis-server: {expected:?}\n \
                 cairn:        {got:?}\n the commands before it, oldest first: {:?}",
                self.seed,
                self.sent,
                self.recent
            );
            self.sent += 1;
        }
        Ok(())
    }
}

/// A connection subscribed to every keyspace event of one server, and to a marker channel
/// that tells where a batch's events end.
struct Subscriber {
    client: RespClient,
    marks: u64,
}

impl Subscriber {
    /// Switches every event on (through `control`), `new` included, and subscribes.
    fn connect(addr: SocketAddr, control: &mut RespClient) -> std::io::Result<Subscriber> {
        assert_eq!(
            control.command(&["CONFIG", "SET", "notify-keyspace-events", "KEAn"])?,
            Frame::Status("OK".to_owned())
        );
        let mut client = RespClient::connect(addr)?;
        client.command(&["PSUBSCRIBE", "__key*__:*"])?;
        client.command(&["SUBSCRIBE", "marks"])?;
        Ok(Subscriber { client, marks: 0 })
    }

    /// The events published since the last drain: publishes a mark through `control` (never
    /// inside MULTI) and reads up to it. Left out, as a documented difference: `expired`
    /// (Cairn does not send it).
    fn drain(&mut self, control: &mut RespClient) -> std::io::Result<Vec<Frame>> {
        self.marks += 1;
        let mark = self.marks.to_string();
        control.command(&["PUBLISH", "marks", &mark])?;
        let mut events = Vec::new();
        loop {
            let Frame::Array(parts) = self.client.read()? else {
                continue;
            };
            if parts.get(2) == Some(&Frame::Bulk(mark.as_bytes().to_vec())) {
                return Ok(events);
            }
            let text = format!("{parts:?}");
            let skipped = ["expired"].iter().any(|name| {
                parts.iter().any(|part| {
                    *part == Frame::Bulk(name.as_bytes().to_vec())
                        || matches!(part, Frame::Bulk(bytes) if bytes.ends_with(format!(":{name}").as_bytes()))
                })
            });
            if !skipped && !text.is_empty() {
                events.push(Frame::Array(parts));
            }
        }
    }
}

fn run(seed: u64, commands: usize, redis: SocketAddr, cairn: SocketAddr) -> std::io::Result<()> {
    let mut generator = Generator {
        rng: SplitMix64::new(seed),
        ttls: std::collections::HashSet::new(),
        in_multi: false,
        stream_ms: 1,
    };
    let mut oracle = RespClient::connect(redis)?;
    let mut subject = RespClient::connect(cairn)?;
    for client in [&mut oracle, &mut subject] {
        assert_eq!(
            client.command(&["FLUSHALL"])?,
            Frame::Status("OK".to_owned())
        );
    }
    // A second connection to each server: its writes between WATCH and EXEC are what make
    // EXEC abort. It runs one command at a time, once the main pipeline is drained.
    let mut oracle_other = RespClient::connect(redis)?;
    let mut subject_other = RespClient::connect(cairn)?;
    // A subscriber to every keyspace event on each server.
    let mut oracle_events = Subscriber::connect(redis, &mut oracle_other)?;
    let mut subject_events = Subscriber::connect(cairn, &mut subject_other)?;
    let mut checker = Checker {
        seed,
        sent: 0,
        errors: 0,
        events: 0,
        recent: Vec::new(),
    };
    while checker.sent < commands {
        let mut pending = Vec::new();
        let mut other = None;
        while pending.len() < PIPELINE && checker.sent + pending.len() < commands {
            if generator.chance(2) {
                other = Some(generator.other_write());
                break;
            }
            pending.push(generator.command());
        }
        checker.pipeline(&mut oracle, &mut subject, &pending)?;
        if let Some(command) = other {
            checker.pipeline(&mut oracle_other, &mut subject_other, &[command])?;
        }
        let expected = oracle_events.drain(&mut oracle_other)?;
        let got = subject_events.drain(&mut subject_other)?;
        checker.events += got.len();
        assert!(
            expected == got,
            "seed {seed}, keyspace events after command {}:\n redis-server: {expected:?}\n \
             cairn:        {got:?}\n the commands before, oldest first: {:?}",
            checker.sent,
            checker.recent
        );
    }
    let Checker { errors, events, .. } = checker;
    assert!(
        events > commands / 10,
        "seed {seed}: only {events} keyspace events"
    );
    // Agreement means something only if most commands succeed and some fail.
    assert!(
        errors > 0 && errors * 3 < commands,
        "seed {seed}: {errors} of {commands} replies were errors"
    );
    Ok(())
}

#[test]
fn cairn_agrees_with_redis_server_on_random_commands() {
    let redis = match RedisServer::start() {
        Ok(server) => server,
        Err(error) => panic!("the differential test needs redis-server: {error}"),
    };
    let cairn = RunningServer::start(Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::new()
    })
    .expect("cairn starts");
    let redis_addr = SocketAddr::from(([127, 0, 0, 1], redis.port()));
    let commands = std::env::var("CAIRN_DIFF_COMMANDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(COMMANDS_DEFAULT);
    let seeds: Vec<u64> = match std::env::var("CAIRN_DIFF_SEED") {
        Ok(seed) => vec![seed.parse().expect("CAIRN_DIFF_SEED is a number")],
        Err(_) => (1..=4).collect(),
    };
    let per_seed = commands.div_ceil(seeds.len());
    for seed in seeds {
        run(seed, per_seed, redis_addr, cairn.addr()).expect("both servers answer");
    }
}
