//! The Lua scripts behind every Redis write, and how they are invoked.
//!
//! Each write is one script, so the write and the `PUBLISH` of its change event happen in
//! one atomic step: no other command runs in between, which is what puts events in commit
//! order and makes `multi_put`, `cas`, `increment` and `clear_prefix` atomic. Every script
//! declares the keys it touches in `KEYS` (so a Redis Cluster routes it to the slot's
//! master), except `clear_prefix`, which declares the stored prefix and deletes the keys its
//! `SCAN` finds. Those keys carry the same hash tag as the prefix, so they live in the same
//! slot; Redis 7 allows a script to touch undeclared keys of a slot its node serves, and the
//! cluster tests check it.
//!
//! Change events (see `events`) are built here, in Lua, and read in Rust. One message holds
//! one or more events back to back:
//!
//! ```text
//! put:    "P" <stored key length> ":" <stored key> <value length> ":" <value>
//! delete: "D" <stored key length> ":" <stored key>
//! ```
//!
//! Lengths are decimal byte counts, which makes the encoding unambiguous for any bytes in
//! keys and values. A write of one key publishes one event; `multi_put` and `clear_prefix`
//! publish their events in messages of up to [`EVENT_BATCH_BYTES`] of keys and values (or
//! a thousand events), in order. Batching matters: a `clear_prefix` of a million keys took
//! 8.7 s publishing one message per key and 4.0 s batched.
//!
//! Scripts are loaded with `SCRIPT LOAD` when a store connects and run with `EVALSHA`
//! (one round trip, only the 40-byte hash on the wire). A server that lost its script cache
//! (a restart, a new cluster node) answers `NOSCRIPT`; the script is then loaded and the
//! call repeated once. No script uses a `#!lua` shebang, so they also run on Redis 6.
//!
//! Lists are walked with numeric `for` loops, never `unpack` over a list the caller sizes:
//! Lua's C stack holds only a few thousand values, and a `multi_put` carries up to 10,000.
//! The one `unpack` is in `stream_append`, which spreads one stream entry's fields into an
//! `XADD`: at most 137 values, since a message has at most `STREAM_HEADERS_MAX` (64) headers.
//!
//! The stream scripts (`stream_*`, used by `streams`) publish no events: streams are read,
//! not watched. Their ids are `0-<sequence>` (see `streams`); sequences are compared as
//! decimal text (shorter is smaller), because Lua numbers are doubles and would round
//! sequences above 2^53.

use std::sync::LazyLock;

/// One Lua script: its source and its SHA-1, as `EVALSHA` names it.
pub(super) struct LuaScript {
    /// The Lua source, as `SCRIPT LOAD` takes it.
    pub(super) source: &'static str,
    /// The SHA-1 of `source`, in lower-case hex.
    pub(super) hash: String,
}

impl LuaScript {
    fn new(source: &'static str) -> Self {
        LuaScript {
            source,
            hash: redis::Script::new(source).get_hash().to_owned(),
        }
    }

    /// An `EVALSHA` command for this script with `key_count` keys; the caller appends the
    /// keys, then the arguments.
    pub(super) fn evalsha(&self, key_count: usize) -> redis::Cmd {
        let mut command = redis::cmd("EVALSHA");
        command.arg(&self.hash).arg(key_count);
        command
    }

    /// The `SCRIPT LOAD` command for this script.
    pub(super) fn load(&self) -> redis::Cmd {
        let mut command = redis::cmd("SCRIPT");
        command.arg("LOAD").arg(self.source);
        command
    }
}

/// Every script the store runs.
pub(super) struct Scripts {
    pub(super) put: LuaScript,
    pub(super) delete: LuaScript,
    pub(super) multi_put: LuaScript,
    pub(super) cas: LuaScript,
    pub(super) increment: LuaScript,
    pub(super) clear_prefix: LuaScript,
    pub(super) stream_append: LuaScript,
    pub(super) stream_info: LuaScript,
    pub(super) stream_trim: LuaScript,
    pub(super) stream_commit: LuaScript,
}

impl Scripts {
    /// Every script, for loading them all at connect time.
    pub(super) fn all(&self) -> [&LuaScript; 10] {
        [
            &self.put,
            &self.delete,
            &self.multi_put,
            &self.cas,
            &self.increment,
            &self.clear_prefix,
            &self.stream_append,
            &self.stream_info,
            &self.stream_trim,
            &self.stream_commit,
        ]
    }
}

/// The scripts, hashed once per process.
pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    put: LuaScript::new(PUT),
    delete: LuaScript::new(DELETE),
    multi_put: LuaScript::new(MULTI_PUT),
    cas: LuaScript::new(CAS),
    increment: LuaScript::new(INCREMENT),
    clear_prefix: LuaScript::new(CLEAR_PREFIX),
    stream_append: LuaScript::new(STREAM_APPEND),
    stream_info: LuaScript::new(STREAM_INFO),
    stream_trim: LuaScript::new(STREAM_TRIM),
    stream_commit: LuaScript::new(STREAM_COMMIT),
});

/// The error code `increment` answers for a value that is not a decimal i64.
pub(super) const NOT_AN_INTEGER_CODE: &str = "CAIRN_NOT_AN_INTEGER";
/// The error code `increment` answers for an overflow.
pub(super) const OVERFLOW_CODE: &str = "CAIRN_OVERFLOW";
/// The error code `clear_prefix` answers when more keys match than it may delete.
pub(super) const TOO_MANY_KEYS_CODE: &str = "CAIRN_TOO_MANY_KEYS";

/// The error code `stream_trim` answers when asked to trim above the next offset.
pub(super) const BEYOND_NEXT_CODE: &str = "CAIRN_BEYOND_NEXT";

/// Most bytes of keys and values one event message carries before it is published; a
/// single larger event goes alone.
pub const EVENT_BATCH_BYTES: usize = 1024 * 1024;

/// The event builders every script shares (see the module docs for the format): events
/// gather in `event_parts` and `publish_events` sends them as one message. Parts are kept
/// apart and joined once by `table.concat`, which costs less than `..` chains, each of which
/// makes (and interns) a new Lua string.
macro_rules! with_event_builders {
    ($body:expr) => {
        concat!(
            "local event_parts = {}\n",
            "local event_used = 0\n",
            "local event_bytes = 0\n",
            "local function publish_events(channel)\n",
            "  if event_used > 0 then\n",
            "    redis.call('PUBLISH', channel, table.concat(event_parts, '', 1, event_used))\n",
            "    event_used = 0\n",
            "    event_bytes = 0\n",
            "  end\n",
            "end\n",
            "local function add_event(channel, parts, bytes)\n",
            "  event_used = event_used + parts\n",
            "  event_bytes = event_bytes + bytes\n",
            "  if event_bytes >= 1048576 or event_used >= 7000 then\n",
            "    publish_events(channel)\n",
            "  end\n",
            "end\n",
            "local function add_put(channel, key, value)\n",
            "  local at = event_used\n",
            "  event_parts[at + 1] = 'P'\n",
            "  event_parts[at + 2] = #key\n",
            "  event_parts[at + 3] = ':'\n",
            "  event_parts[at + 4] = key\n",
            "  event_parts[at + 5] = #value\n",
            "  event_parts[at + 6] = ':'\n",
            "  event_parts[at + 7] = value\n",
            "  add_event(channel, 7, #key + #value)\n",
            "end\n",
            "local function add_delete(channel, key)\n",
            "  local at = event_used\n",
            "  event_parts[at + 1] = 'D'\n",
            "  event_parts[at + 2] = #key\n",
            "  event_parts[at + 3] = ':'\n",
            "  event_parts[at + 4] = key\n",
            "  add_event(channel, 4, #key)\n",
            "end\n",
            $body
        )
    };
}

/// `put` and `put_with_ttl`.
/// `KEYS[1]` the key; `ARGV[1]` the value; `ARGV[2]` the event channel; `ARGV[3]` the TTL in
/// milliseconds, or empty for none.
const PUT: &str = with_event_builders!(
    r"
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
end
add_put(ARGV[2], KEYS[1], ARGV[1])
publish_events(ARGV[2])
return 1
"
);

/// `delete`: an event only when something was deleted.
/// `KEYS[1]` the key; `ARGV[1]` the event channel. Returns 1 when the key was live.
const DELETE: &str = with_event_builders!(
    r"
local deleted = redis.call('DEL', KEYS[1])
if deleted == 1 then
  add_delete(ARGV[1], KEYS[1])
  publish_events(ARGV[1])
end
return deleted
"
);

/// `multi_put`: every SET in order, so a later entry for a key wins; events in the same order.
/// `KEYS[i]` key i; `ARGV[i]` value i; `ARGV[#KEYS + 1]` the event channel.
const MULTI_PUT: &str = with_event_builders!(
    r"
local count = #KEYS
local channel = ARGV[count + 1]
for i = 1, count do
  redis.call('SET', KEYS[i], ARGV[i])
  add_put(channel, KEYS[i], ARGV[i])
end
publish_events(channel)
return count
"
);

/// `cas`: compares the current value (false when absent) and writes like `put`.
/// `KEYS[1]` the key; `ARGV[1]` '1' when a value is expected, '0' when absence is; `ARGV[2]` the
/// expected value; `ARGV[3]` the new value; `ARGV[4]` the event channel. Returns 1 on a swap.
const CAS: &str = with_event_builders!(
    r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then
    return 0
  end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
add_put(ARGV[4], KEYS[1], ARGV[3])
publish_events(ARGV[4])
return 1
"
);

/// `increment`: INCRBY keeps the TTL. The trait's integers are what a decimal i64 parser
/// accepts, which is a little wider than what INCRBY reads ('+7', '007' and '-0' are
/// integers too): such a value is rewritten in INCRBY's form first, and put back if INCRBY
/// still fails, so a refused increment leaves the value as it was. The new value is read
/// back with GET because Lua numbers are doubles and would round integers above 2^53.
/// `KEYS[1]` the key; `ARGV[1]` the delta; `ARGV[2]` the event channel. Returns the new value as
/// decimal text.
const INCREMENT: &str = with_event_builders!(
    r"
local key = KEYS[1]
local original = redis.call('GET', key)
local rewritten = false
if original and original ~= '0' and not string.find(original, '^%-?[1-9]%d*$') then
  local sign, digits = string.match(original, '^([+-]?)(%d+)$')
  if not digits then
    return redis.error_reply('CAIRN_NOT_AN_INTEGER the value is not a decimal integer')
  end
  digits = string.gsub(digits, '^0+', '')
  if #digits > 19 then
    return redis.error_reply('CAIRN_NOT_AN_INTEGER the value is out of the 64-bit range')
  end
  local canonical = digits
  if digits == '' then
    canonical = '0'
  elseif sign == '-' then
    canonical = '-' .. digits
  end
  redis.call('SET', key, canonical, 'KEEPTTL')
  rewritten = true
end
local ok, failure = pcall(redis.call, 'INCRBY', key, ARGV[1])
if not ok then
  if rewritten then
    redis.call('SET', key, original, 'KEEPTTL')
  end
  local message = failure
  if type(failure) == 'table' then
    message = failure.err
  end
  if string.find(tostring(message), 'overflow', 1, true) then
    return redis.error_reply('CAIRN_OVERFLOW the result would overflow a 64-bit integer')
  end
  return redis.error_reply('CAIRN_NOT_AN_INTEGER the value is not a 64-bit integer')
end
local value = redis.call('GET', key)
add_put(ARGV[2], key, value)
publish_events(ARGV[2])
return value
"
);

/// `clear_prefix`: one SCAN of the node's keyspace for the prefix, then every DEL and its
/// event. Refuses (deleting nothing) when more than the limit match. The SCAN sees each
/// key present for the whole scan, and nothing else runs during a script, so it sees all of
/// them; SCAN may report a key twice, hence the `seen` set. SCAN skips expired keys, and DEL
/// of one returns 0, so only live keys are counted and announced.
/// `KEYS[1]` the stored prefix (it routes the script to the scope's slot); `ARGV[1]` the SCAN
/// MATCH pattern; `ARGV[2]` the most keys to delete; `ARGV[3]` the event channel; `ARGV[4]` the
/// SCAN COUNT hint. Returns how many keys were deleted.
const CLEAR_PREFIX: &str = with_event_builders!(
    r"
local prefix = KEYS[1]
local prefix_length = #prefix
local limit = tonumber(ARGV[2])
local seen = {}
local keys = {}
local count = 0
local cursor = '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', ARGV[4])
  cursor = page[1]
  local found = page[2]
  for i = 1, #found do
    local key = found[i]
    if not seen[key] and string.sub(key, 1, prefix_length) == prefix then
      seen[key] = true
      count = count + 1
      if count > limit then
        return redis.error_reply('CAIRN_TOO_MANY_KEYS more than ' .. ARGV[2] ..
          ' keys start with the prefix; nothing was deleted')
      end
      keys[count] = key
    end
  end
until cursor == '0'
local deleted = 0
for i = 1, count do
  if redis.call('DEL', keys[i]) == 1 then
    deleted = deleted + 1
    add_delete(ARGV[3], keys[i])
  end
end
publish_events(ARGV[3])
return deleted
"
);

/// What the stream scripts share: sequences of `0-<sequence>` ids, compared as decimal text.
macro_rules! with_stream_helpers {
    ($body:expr) => {
        concat!(
            "local function sequence(id)\n",
            "  local digits = string.match(id, '^0%-(%d+)$')\n",
            "  if not digits then\n",
            "    return redis.error_reply('CAIRN_FOREIGN_ID the stream holds the entry id ' ..\n",
            "      id .. ', which no Cairn append makes')\n",
            "  end\n",
            "  return digits\n",
            "end\n",
            "local function decimal_le(left, right)\n",
            "  if #left ~= #right then\n",
            "    return #left < #right\n",
            "  end\n",
            "  return left <= right\n",
            "end\n",
            "local function field(list, name)\n",
            "  for i = 1, #list, 2 do\n",
            "    if list[i] == name then\n",
            "      return list[i + 1]\n",
            "    end\n",
            "  end\n",
            "  return false\n",
            "end\n",
            $body
        )
    };
}

/// `append` and `append_batch`: every message's `XADD` with the id `0-*`, in one atomic
/// step, all stamped with one server time (`TIME`, in milliseconds). An entry's fields are
/// `t` (the time), `k` (the key, when there is one), `h<name>` per header, `v` (the value).
/// `KEYS[1]` the stream; `ARGV[1]` the message count; then per message: `1` or `0` (has a
/// key), the key (empty without one), the header count, each header's field name and value,
/// the value. Returns the first and the last entry id.
const STREAM_APPEND: &str = r"
local stream = KEYS[1]
local time = redis.call('TIME')
local millis = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))
local count = tonumber(ARGV[1])
local at = 2
local first = false
local last = false
for m = 1, count do
  local fields = {'XADD', stream, '0-*', 't', millis}
  local used = 5
  if ARGV[at] == '1' then
    fields[used + 1] = 'k'
    fields[used + 2] = ARGV[at + 1]
    used = used + 2
  end
  local headers = tonumber(ARGV[at + 2])
  if headers > 64 then
    return redis.error_reply('ERR a message has at most 64 headers')
  end
  at = at + 3
  for h = 1, headers do
    fields[used + 1] = ARGV[at]
    fields[used + 2] = ARGV[at + 1]
    used = used + 2
    at = at + 2
  end
  fields[used + 1] = 'v'
  fields[used + 2] = ARGV[at]
  used = used + 2
  at = at + 1
  last = redis.call(unpack(fields, 1, used))
  if m == 1 then
    first = last
  end
end
return {first, last}
";

/// `info`, in one atomic step so that offsets, groups and pending counts agree.
/// `KEYS[1]` the stream. Returns false when it does not exist; else the last generated id,
/// the first entry's id (empty when there is none), then per group: its name, its last
/// delivered id, its pending count, its lowest pending id (empty when none is pending).
const STREAM_INFO: &str = with_stream_helpers!(
    r"
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then
  return false
end
local info = redis.call('XINFO', 'STREAM', stream)
local first = field(info, 'first-entry')
local reply = {field(info, 'last-generated-id'), ''}
if first then
  reply[2] = first[1]
end
local used = 2
local groups = redis.call('XINFO', 'GROUPS', stream)
for g = 1, #groups do
  local group = groups[g]
  local name = field(group, 'name')
  local pending = field(group, 'pending')
  local lowest = ''
  if pending > 0 then
    local oldest = redis.call('XPENDING', stream, name, '-', '+', 1)
    if oldest[1] then
      lowest = oldest[1][1]
    end
  end
  reply[used + 1] = name
  reply[used + 2] = field(group, 'last-delivered-id')
  reply[used + 3] = pending
  reply[used + 4] = lowest
  used = used + 4
end
return reply
"
);

/// `trim`: refuses `before` above the next offset, then `XTRIM ... MINID` (exact).
/// `KEYS[1]` the stream; `ARGV[1]` `before` in decimal; `ARGV[2]` the id of offset
/// `before`. Returns how many entries were removed.
const STREAM_TRIM: &str = with_stream_helpers!(
    r"
local stream = KEYS[1]
local next_sequence = '0'
if redis.call('EXISTS', stream) == 1 then
  next_sequence = sequence(field(redis.call('XINFO', 'STREAM', stream), 'last-generated-id'))
  if type(next_sequence) == 'table' then
    return next_sequence
  end
end
if not decimal_le(ARGV[1], next_sequence) then
  return redis.error_reply('CAIRN_BEYOND_NEXT cannot trim below offset ' .. ARGV[1] ..
    ': the next offset is ' .. next_sequence)
end
return redis.call('XTRIM', stream, 'MINID', ARGV[2])
"
);

/// `commit`: acknowledges every pending id at or below `0-<offset>` (the offsets below
/// `offset`), a page of `XPENDING` at a time, then moves the group's last delivered id up
/// to `0-<offset>` if it is below.
/// `KEYS[1]` the stream; `ARGV[1]` the group; `ARGV[2]` the offset in decimal; `ARGV[3]`
/// `0-<offset>`; `ARGV[4]` the `XPENDING` page size. Returns how many were acknowledged.
const STREAM_COMMIT: &str = with_stream_helpers!(
    r"
local stream = KEYS[1]
local group = ARGV[1]
if redis.call('EXISTS', stream) == 0 then
  return redis.error_reply('NOGROUP the stream does not exist')
end
local delivered = false
local groups = redis.call('XINFO', 'GROUPS', stream)
for g = 1, #groups do
  if field(groups[g], 'name') == group then
    delivered = field(groups[g], 'last-delivered-id')
  end
end
if not delivered then
  return redis.error_reply('NOGROUP no such consumer group')
end
local delivered_sequence = sequence(delivered)
if type(delivered_sequence) == 'table' then
  return delivered_sequence
end
local page_size = tonumber(ARGV[4])
local acked = 0
if ARGV[2] ~= '0' then
  repeat
    local page = redis.call('XPENDING', stream, group, '-', ARGV[3], page_size)
    for i = 1, #page do
      acked = acked + redis.call('XACK', stream, group, page[i][1])
    end
  until #page < page_size
end
if not decimal_le(ARGV[2], delivered_sequence) then
  redis.call('XGROUP', 'SETID', stream, group, ARGV[3])
end
return acked
"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_hash_to_distinct_sha1s() {
        let mut hashes: Vec<&str> = SCRIPTS
            .all()
            .iter()
            .map(|script| script.hash.as_str())
            .collect();
        assert!(hashes.iter().all(|hash| hash.len() == 40));
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), SCRIPTS.all().len());
    }

    #[test]
    fn error_codes_match_the_scripts() {
        assert!(INCREMENT.contains(NOT_AN_INTEGER_CODE));
        assert!(INCREMENT.contains(OVERFLOW_CODE));
        assert!(CLEAR_PREFIX.contains(TOO_MANY_KEYS_CODE));
        assert!(STREAM_TRIM.contains(BEYOND_NEXT_CODE));
        // An id no Cairn append makes is a `Backend` error (`redis_error` of this code).
        assert!(STREAM_COMMIT.contains("CAIRN_FOREIGN_ID"));
        // The one bounded `unpack` (see the module docs) is the append's.
        assert!(SCRIPTS
            .all()
            .iter()
            .filter(|script| script.source.contains("unpack"))
            .all(|script| script.hash == SCRIPTS.stream_append.hash));
    }
}
