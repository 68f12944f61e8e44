//! Consumer groups of one stream: the `GROUPS` file (each group's committed offset, the only
//! group state that is durable) and the in-memory state built on it (what each group has
//! delivered, and its pending messages).
//!
//! Guarantees:
//! - A group's committed offset is the lowest offset it has not acknowledged: the lowest
//!   pending offset, or the delivery position when nothing is pending. It never goes down
//!   while the store is open.
//! - The `GROUPS` file decoder never panics, checks every length and count against the bytes
//!   present and the limits before allocating, refuses unknown versions, bad CRCs, names
//!   outside the alphabet, names out of order (so no duplicates) and trailing bytes, and
//!   accepts exactly what the encoder writes (a decoded file re-encodes to its bytes).
//! - After open, every group delivers from its persisted committed offset with nothing
//!   pending: whatever was delivered and not acknowledged is delivered again (at least once).
//!
//! This module does no I/O; the stream (`single`) writes the file and reads the messages.
//! Layout in `docs/streams.md`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::format::{read_u32, read_u64, to_u64};
use crate::identity::DatabaseId;

use super::error::StreamError;

/// First bytes of a `GROUPS` file.
pub const GROUPS_MAGIC: [u8; 8] = *b"CAIRNSTG";
/// The `GROUPS` format written and accepted by this build.
pub const GROUPS_FORMAT_VERSION: u32 = 1;
/// Bytes of a `GROUPS` file before its first group.
pub const GROUPS_HEADER_BYTES: usize = 40;
/// Bytes of a group entry before its name: `name_len u8 | committed u64`.
pub const GROUP_ENTRY_FIXED_BYTES: usize = 9;
/// Longest group or consumer name, in bytes.
pub const GROUP_NAME_BYTES_MAX: usize = 128;
/// Most groups one stream may have (bounds the `GROUPS` file and the time to load it).
pub const GROUPS_PER_STREAM_MAX: usize = 1024;
/// Largest `GROUPS` file: header, the most groups with the longest names, CRC.
pub const GROUPS_FILE_BYTES_MAX: usize = GROUPS_HEADER_BYTES
    + GROUPS_PER_STREAM_MAX * (GROUP_ENTRY_FIXED_BYTES + GROUP_NAME_BYTES_MAX)
    + 4;

/// True when `name` is 1 to [`GROUP_NAME_BYTES_MAX`] bytes of `[A-Za-z0-9._-]` (group and
/// consumer names).
pub fn is_valid_group_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= GROUP_NAME_BYTES_MAX
        && name
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// `InvalidArgument` unless `name` is a valid group or consumer name.
pub(crate) fn check_group_name(what: &str, name: &str) -> Result<(), StreamError> {
    if is_valid_group_name(name.as_bytes()) {
        Ok(())
    } else {
        Err(StreamError::InvalidArgument {
            reason: format!(
                "{what} name {name:?} must be 1 to {GROUP_NAME_BYTES_MAX} bytes of [A-Za-z0-9._-]"
            ),
        })
    }
}

/// The contents of a stream's `GROUPS` file: every group's committed offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupsFile {
    /// The store the stream belongs to.
    pub database_id: DatabaseId,
    /// The stream's id.
    pub stream_id: u64,
    /// Committed offset by group name (names checked by [`is_valid_group_name`]).
    pub committed: BTreeMap<String, u64>,
}

impl GroupsFile {
    /// The file's bytes. Names must be valid and at most [`GROUPS_PER_STREAM_MAX`] groups
    /// (the store never holds more); the encoder writes what it is given.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            GROUPS_HEADER_BYTES
                + self.committed.len() * (GROUP_ENTRY_FIXED_BYTES + GROUP_NAME_BYTES_MAX)
                + 4,
        );
        out.extend_from_slice(&GROUPS_MAGIC);
        out.extend_from_slice(&GROUPS_FORMAT_VERSION.to_le_bytes());
        let count = u32::try_from(self.committed.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&self.database_id.to_bytes());
        out.extend_from_slice(&self.stream_id.to_le_bytes());
        for (name, committed) in &self.committed {
            out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(&committed.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a `GROUPS` file; the error is the byte offset and what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, (u64, &'static str)> {
        if bytes.len() > GROUPS_FILE_BYTES_MAX {
            return Err((0, "groups file longer than its format allows"));
        }
        if bytes.get(..8) != Some(&GROUPS_MAGIC[..]) {
            return Err((0, "bad groups file magic"));
        }
        let Some(crc_offset) = bytes.len().checked_sub(4) else {
            return Err((0, "groups file too short"));
        };
        if crc_offset < GROUPS_HEADER_BYTES {
            return Err((0, "groups file too short"));
        }
        let covered = bytes.get(..crc_offset).unwrap_or(&[]);
        if read_u32(bytes, crc_offset) != Some(crc32c::crc32c(covered)) {
            return Err((to_u64(crc_offset), "groups file checksum mismatch"));
        }
        if read_u32(bytes, 8) != Some(GROUPS_FORMAT_VERSION) {
            return Err((8, "unsupported groups file format version"));
        }
        let (Some(count), Some(id), Some(stream_id)) = (
            read_u32(bytes, 12),
            bytes
                .get(16..32)
                .and_then(|id| <[u8; 16]>::try_from(id).ok()),
            read_u64(bytes, 32),
        ) else {
            return Err((0, "groups file too short"));
        };
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let room = (crc_offset - GROUPS_HEADER_BYTES) / (GROUP_ENTRY_FIXED_BYTES + 1);
        if count > GROUPS_PER_STREAM_MAX || count > room {
            return Err((12, "group count above the limit or what the file can hold"));
        }
        let mut committed = BTreeMap::new();
        let mut position = GROUPS_HEADER_BYTES;
        let mut previous: Option<&[u8]> = None;
        for _ in 0..count {
            let at = to_u64(position);
            let Some(&name_len) = bytes.get(position) else {
                return Err((at, "group entry runs past the end"));
            };
            let name_len = usize::from(name_len);
            let Some(offset) = read_u64(bytes, position + 1) else {
                return Err((at, "group entry runs past the end"));
            };
            let name_start = position + GROUP_ENTRY_FIXED_BYTES;
            let Some(name) = bytes
                .get(name_start..name_start + name_len)
                .filter(|_| name_start + name_len <= crc_offset)
            else {
                return Err((at, "group entry runs past the end"));
            };
            if !is_valid_group_name(name) {
                return Err((
                    to_u64(name_start),
                    "group name outside [A-Za-z0-9._-]{1,128}",
                ));
            }
            if previous.is_some_and(|previous| previous >= name) {
                return Err((to_u64(name_start), "group names out of order"));
            }
            previous = Some(name);
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| (to_u64(name_start), "group name is not UTF-8"))?;
            committed.insert(name, offset);
            position = name_start + name_len;
        }
        if position != crc_offset {
            return Err((to_u64(position), "bytes after the last group"));
        }
        Ok(GroupsFile {
            database_id: DatabaseId::from_bytes(id),
            stream_id,
            committed,
        })
    }
}

/// A consumer group as `Streams::group_info` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's name.
    pub name: String,
    /// The next offset `read_group` delivers (before the first readable offset is applied).
    pub delivered_up_to: u64,
    /// The lowest offset the group has not acknowledged.
    pub committed: u64,
    /// Messages delivered and not yet acknowledged.
    pub pending: u64,
}

/// One pending message of a group, as `Streams::pending` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    /// The message's offset.
    pub offset: u64,
    /// The member it is pending for.
    pub consumer: String,
    /// Time since it was last delivered (or claimed).
    pub idle: Duration,
    /// How many times it was delivered (1 at its first delivery; claims add one).
    pub deliveries: u32,
}

/// A delivered, unacknowledged message.
#[derive(Clone, Debug)]
struct Pending {
    consumer: Arc<str>,
    delivered_at: Instant,
    deliveries: u32,
}

/// One group's in-memory state.
#[derive(Debug)]
struct Group {
    /// The next offset to deliver (the first readable offset applies on top).
    delivered_up_to: u64,
    pending: BTreeMap<u64, Pending>,
    /// The committed offset the `GROUPS` file holds (or is about to).
    persisted: Option<u64>,
}

impl Group {
    fn committed(&self) -> u64 {
        self.pending
            .keys()
            .next()
            .copied()
            .unwrap_or(self.delivered_up_to)
            .min(self.delivered_up_to)
    }
}

/// The groups of one stream.
#[derive(Debug, Default)]
pub(crate) struct GroupSet {
    groups: BTreeMap<String, Group>,
    /// A group was created or deleted since the file was written.
    dirty: bool,
    /// The stream was deleted: nothing more is written.
    pub deleted: bool,
}

fn missing(stream: &str, group: &str) -> StreamError {
    StreamError::GroupNotFound {
        stream: stream.to_owned(),
        group: group.to_owned(),
    }
}

impl GroupSet {
    /// The state after open: every group delivers from its committed offset, nothing pending.
    pub fn from_file(file: &GroupsFile) -> Self {
        let groups = file
            .committed
            .iter()
            .map(|(name, &committed)| {
                (
                    name.clone(),
                    Group {
                        delivered_up_to: committed,
                        pending: BTreeMap::new(),
                        persisted: Some(committed),
                    },
                )
            })
            .collect();
        GroupSet {
            groups,
            dirty: false,
            deleted: false,
        }
    }

    /// Adds a group delivering from `start`; false when it exists.
    pub fn create(&mut self, group: &str, start: u64) -> Result<bool, StreamError> {
        if self.groups.contains_key(group) {
            return Ok(false);
        }
        if self.groups.len() >= GROUPS_PER_STREAM_MAX {
            return Err(StreamError::InvalidArgument {
                reason: format!("a stream has at most {GROUPS_PER_STREAM_MAX} groups"),
            });
        }
        self.groups.insert(
            group.to_owned(),
            Group {
                delivered_up_to: start,
                pending: BTreeMap::new(),
                persisted: None,
            },
        );
        self.dirty = true;
        Ok(true)
    }

    /// Removes a group; true when it existed.
    pub fn remove(&mut self, group: &str) -> bool {
        let existed = self.groups.remove(group).is_some();
        self.dirty |= existed;
        existed
    }

    /// Where the group's next delivery starts: its position, or the first readable offset
    /// when truncation passed it.
    pub fn position(
        &self,
        stream: &str,
        group: &str,
        first_offset: u64,
    ) -> Result<u64, StreamError> {
        self.groups
            .get(group)
            .map(|state| state.delivered_up_to.max(first_offset))
            .ok_or_else(|| missing(stream, group))
    }

    /// Records `offsets` (ascending) as delivered to `consumer` at `now`.
    pub fn delivered(&mut self, group: &str, consumer: &str, offsets: &[u64], now: Instant) {
        let Some(state) = self.groups.get_mut(group) else {
            return;
        };
        let Some(&last) = offsets.last() else {
            return;
        };
        let consumer: Arc<str> = Arc::from(consumer);
        for &offset in offsets {
            state.pending.insert(
                offset,
                Pending {
                    consumer: Arc::clone(&consumer),
                    delivered_at: now,
                    deliveries: 1,
                },
            );
        }
        state.delivered_up_to = state.delivered_up_to.max(last.saturating_add(1));
    }

    /// Acknowledges the pending `offsets`; returns how many were pending (0 for a missing
    /// group).
    pub fn ack(&mut self, group: &str, offsets: &[u64]) -> u64 {
        let Some(state) = self.groups.get_mut(group) else {
            return 0;
        };
        offsets
            .iter()
            .filter(|offset| state.pending.remove(offset).is_some())
            .fold(0, |count, _| count + 1)
    }

    /// Acknowledges everything below `offset` and moves delivery up to it.
    pub fn commit(&mut self, stream: &str, group: &str, offset: u64) -> Result<(), StreamError> {
        let state = self
            .groups
            .get_mut(group)
            .ok_or_else(|| missing(stream, group))?;
        state.pending = state.pending.split_off(&offset);
        state.delivered_up_to = state.delivered_up_to.max(offset);
        Ok(())
    }

    /// Takes over up to `max` messages pending for at least `min_idle`, lowest first, for
    /// `consumer` from `now`; returns their offsets (`None` when the group does not exist).
    /// Pending messages below `first_offset` (truncated away) are dropped instead, as
    /// acknowledged.
    pub fn claim(
        &mut self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max: usize,
        first_offset: u64,
        now: Instant,
    ) -> Option<Vec<u64>> {
        let state = self.groups.get_mut(group)?;
        state.pending = state.pending.split_off(&first_offset);
        let consumer: Arc<str> = Arc::from(consumer);
        let mut taken = Vec::new();
        for (&offset, pending) in &mut state.pending {
            if taken.len() >= max {
                break;
            }
            if now.saturating_duration_since(pending.delivered_at) >= min_idle {
                pending.consumer = Arc::clone(&consumer);
                pending.delivered_at = now;
                pending.deliveries = pending.deliveries.saturating_add(1);
                taken.push(offset);
            }
        }
        Some(taken)
    }

    /// Drops a pending message that can no longer be read (truncated meanwhile).
    pub fn drop_pending(&mut self, group: &str, offset: u64) {
        if let Some(state) = self.groups.get_mut(group) {
            state.pending.remove(&offset);
        }
    }

    /// The lowest committed offset over every group, counting for each group the lower of
    /// its committed offset in memory and the one its `GROUPS` file holds (so that a crash
    /// cannot bring a group back below what retention kept); `None` without groups.
    pub fn min_committed(&self) -> Option<u64> {
        self.groups
            .values()
            .map(|state| {
                let committed = state.committed();
                state
                    .persisted
                    .map_or(committed, |persisted| persisted.min(committed))
            })
            .min()
    }

    /// True when some group has a delivered, unacknowledged message.
    pub fn has_pending(&self) -> bool {
        self.groups.values().any(|state| !state.pending.is_empty())
    }

    /// Every group's summary, by name.
    pub fn info(&self) -> Vec<GroupInfo> {
        self.groups
            .iter()
            .map(|(name, state)| GroupInfo {
                name: name.clone(),
                delivered_up_to: state.delivered_up_to,
                committed: state.committed(),
                pending: to_u64(state.pending.len()),
            })
            .collect()
    }

    /// Up to `max` pending messages of `group` from offset `from`.
    pub fn pending(
        &self,
        stream: &str,
        group: &str,
        from: u64,
        max: usize,
        now: Instant,
    ) -> Result<Vec<PendingEntry>, StreamError> {
        let state = self
            .groups
            .get(group)
            .ok_or_else(|| missing(stream, group))?;
        Ok(state
            .pending
            .range(from..)
            .take(max)
            .map(|(&offset, pending)| PendingEntry {
                offset,
                consumer: pending.consumer.to_string(),
                idle: now.saturating_duration_since(pending.delivered_at),
                deliveries: pending.deliveries,
            })
            .collect())
    }

    /// True when the file does not hold what memory says: a group was created or deleted,
    /// or a committed offset moved.
    pub fn needs_persist(&self) -> bool {
        !self.deleted
            && (self.dirty
                || self
                    .groups
                    .values()
                    .any(|state| state.persisted != Some(state.committed())))
    }

    /// The file to write now.
    pub fn file(&self, database_id: DatabaseId, stream_id: u64) -> GroupsFile {
        GroupsFile {
            database_id,
            stream_id,
            committed: self
                .groups
                .iter()
                .map(|(name, state)| (name.clone(), state.committed()))
                .collect(),
        }
    }

    /// Records that `file` is what the `GROUPS` file now holds.
    pub fn persisted(&mut self, file: &GroupsFile) {
        for (name, state) in &mut self.groups {
            state.persisted = file.committed.get(name).copied();
        }
        self.dirty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GroupsFile {
        GroupsFile {
            database_id: DatabaseId::from_bytes(*b"0123456789abcdef"),
            stream_id: 3,
            committed: [("a".to_owned(), 0x0102), ("b-2".to_owned(), 7)]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn groups_layout_is_pinned_and_round_trips() {
        let bytes = sample().encode();
        let mut expected = b"CAIRNSTG".to_vec();
        expected.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
        expected.extend_from_slice(b"0123456789abcdef");
        expected.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
        expected.push(1);
        expected.extend_from_slice(&[2, 1, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(b"a");
        expected.push(3);
        expected.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(b"b-2");
        let crc = crc32c::crc32c(&expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(GroupsFile::decode(&bytes), Ok(sample()));
        let mut empty = sample();
        empty.committed.clear();
        let bytes = empty.encode();
        assert_eq!(bytes.len(), GROUPS_HEADER_BYTES + 4);
        assert_eq!(GroupsFile::decode(&bytes), Ok(empty));
    }

    #[test]
    fn every_prefix_bit_flip_and_extension_is_refused() {
        let bytes = sample().encode();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(GroupsFile::decode(&flipped).is_err(), "bit {bit}");
        }
        for len in 0..bytes.len() {
            assert!(GroupsFile::decode(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(GroupsFile::decode(&longer).is_err());
    }

    /// Re-seals `bytes` with a correct CRC, so the checks behind the CRC are reached.
    fn resealed(mut bytes: Vec<u8>) -> Vec<u8> {
        let end = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[test]
    fn checks_behind_the_checksum_hold() {
        let bytes = sample().encode();
        // Bad name bytes, names out of order or repeated, a huge count, a zero name length.
        let mut bad_name = bytes.clone();
        bad_name[49] = b'/';
        assert_eq!(
            GroupsFile::decode(&resealed(bad_name)),
            Err((49, "group name outside [A-Za-z0-9._-]{1,128}"))
        );
        let mut unordered = sample();
        unordered.committed = [("a".to_owned(), 1), ("b".to_owned(), 1)]
            .into_iter()
            .collect();
        let mut repeated = unordered.encode();
        repeated[49] = b'b';
        assert_eq!(
            GroupsFile::decode(&resealed(repeated)).map(|_| ()),
            Err((59, "group names out of order"))
        );
        let mut huge = bytes.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            GroupsFile::decode(&resealed(huge)).map(|_| ()),
            Err((12, "group count above the limit or what the file can hold"))
        );
        let mut zero_len = bytes.clone();
        zero_len[40] = 0;
        assert!(GroupsFile::decode(&resealed(zero_len)).is_err());
        let mut version = bytes.clone();
        version[8] = 2;
        assert_eq!(
            GroupsFile::decode(&resealed(version)).map(|_| ()),
            Err((8, "unsupported groups file format version"))
        );
        let mut fewer = bytes;
        fewer[12] = 1;
        assert_eq!(
            GroupsFile::decode(&resealed(fewer)).map(|_| ()),
            Err((50, "bytes after the last group"))
        );
        assert!(GroupsFile::decode(&vec![0; GROUPS_FILE_BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn the_largest_file_decodes() {
        let mut file = sample();
        file.committed = (0..GROUPS_PER_STREAM_MAX)
            .map(|index| (format!("{index:0>128}"), u64::MAX))
            .collect();
        let bytes = file.encode();
        assert_eq!(bytes.len(), GROUPS_FILE_BYTES_MAX);
        assert_eq!(GroupsFile::decode(&bytes), Ok(file));
    }

    #[test]
    fn committed_is_the_lowest_unacknowledged_offset() {
        let now = Instant::now();
        let mut set = GroupSet::default();
        assert!(set.create("g", 0).expect("create"));
        assert!(!set.create("g", 5).expect("create again"));
        assert!(set.needs_persist());
        assert_eq!(set.position("s", "g", 0).expect("position"), 0);
        set.delivered("g", "c", &[0, 1, 2, 3], now);
        assert_eq!(set.info()[0].committed, 0);
        assert_eq!(set.ack("g", &[1, 1, 9]), 1);
        assert_eq!(set.info()[0].committed, 0);
        assert_eq!(set.ack("g", &[0]), 1);
        assert_eq!(set.info()[0].committed, 2);
        set.commit("s", "g", 3).expect("commit");
        assert_eq!(
            (
                set.info()[0].committed,
                set.info()[0].pending,
                set.info()[0].delivered_up_to
            ),
            (3, 1, 4)
        );
        set.commit("s", "g", 10).expect("commit ahead");
        assert_eq!(set.info()[0].committed, 10);
        // A truncation past the position moves delivery, not the recorded position.
        assert_eq!(set.position("s", "g", 20).expect("position"), 20);
        let file = set.file(DatabaseId::from_bytes([1; 16]), 1);
        set.persisted(&file);
        assert!(!set.needs_persist());
        let reopened = GroupSet::from_file(&file);
        assert_eq!(reopened.info(), set.info());
        assert!(matches!(
            set.commit("s", "nope", 1),
            Err(StreamError::GroupNotFound { .. })
        ));
        assert_eq!(set.ack("nope", &[1]), 0);
    }

    #[test]
    fn claim_takes_idle_messages_lowest_first_and_drops_truncated_ones() {
        let start = Instant::now();
        let mut set = GroupSet::default();
        set.create("g", 0).expect("create");
        set.delivered("g", "old", &[0, 1, 2], start);
        let later = start + Duration::from_secs(10);
        set.delivered("g", "new", &[3], later);
        let taken = set
            .claim("g", "heir", Duration::from_secs(5), 2, 1, later)
            .expect("claim");
        assert_eq!(taken, [1, 2]);
        let pending = set.pending("s", "g", 0, 10, later).expect("pending");
        assert_eq!(
            pending
                .iter()
                .map(|entry| (entry.offset, entry.consumer.as_str(), entry.deliveries))
                .collect::<Vec<_>>(),
            [(1, "heir", 2), (2, "heir", 2), (3, "new", 1)]
        );
        let none = set
            .claim("g", "other", Duration::from_secs(5), 10, 1, later)
            .expect("claim");
        assert!(none.is_empty());
        let all = set
            .claim("g", "other", Duration::ZERO, 10, 0, later)
            .expect("claim");
        assert_eq!(all, [1, 2, 3]);
    }
}
