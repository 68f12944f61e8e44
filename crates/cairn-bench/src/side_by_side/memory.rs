//! The memory tier: what a store of N keys costs in memory and on disk. Resident memory
//! belongs to a whole process, so [`probe`] runs in a child that `cairn bench` starts for one
//! store: it reads `VmRSS` (Linux's `/proc/self/status`) before the store is opened, fills it
//! with N keys of 100-byte values, settles it, and reads `VmRSS` and `VmHWM` (the peak) again;
//! it prints one line ([`MemoryFigures::to_line`]) that the parent parses back. Bytes per key
//! are the RSS growth over N (for Redis, the server's `used_memory` growth instead).

use crate::keys::KeySet;
use crate::peers::{self, Label, Places, ValuePool};
use crate::workloads::{Result, WorkloadError};

use super::{fill, FillOrder};
use crate::sizes::VALUE_BYTES;

/// What one probe measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryFigures {
    /// Keys stored.
    pub keys: u64,
    /// Resident bytes before the store was opened.
    pub rss_before: u64,
    /// Resident bytes after the fill, once the store settled.
    pub rss_after: u64,
    /// The process's resident high-water mark.
    pub peak_rss: u64,
    /// The store's files, if it has any.
    pub disk_bytes: Option<u64>,
    /// The server's `used_memory` growth over the fill, for a store in a server.
    pub server_bytes: Option<u64>,
}

impl MemoryFigures {
    /// Memory per key: the server's growth for a server, the process's otherwise.
    pub fn bytes_per_key(&self) -> u64 {
        let grown = self
            .server_bytes
            .unwrap_or(self.rss_after.saturating_sub(self.rss_before));
        grown / self.keys.max(1)
    }

    /// Disk bytes per key, for a store with files.
    pub fn disk_bytes_per_key(&self) -> Option<u64> {
        self.disk_bytes.map(|bytes| bytes / self.keys.max(1))
    }

    /// One line, `memory keys=N rss_before=B rss_after=B peak_rss=B disk=B|- server=B|-`.
    pub fn to_line(&self) -> String {
        let optional = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let values = [self.keys, self.rss_before, self.rss_after, self.peak_rss].map(Some);
        let values = values
            .into_iter()
            .chain([self.disk_bytes, self.server_bytes]);
        let fields = FIELDS.iter().zip(values);
        let fields = fields.map(|(name, value)| format!(" {name}={}", optional(value)));
        fields.fold("memory".to_owned(), |line, field| line + &field)
    }

    /// Reads back a line written by [`MemoryFigures::to_line`]: its six fields, in order.
    pub fn parse_line(line: &str) -> Result<Self> {
        let bad = || WorkloadError::unexpected("memory", format!("unreadable probe line {line:?}"));
        let fields = line
            .strip_prefix("memory ")
            .ok_or_else(bad)?
            .split_whitespace();
        let mut values = Vec::new();
        for (field, name) in fields.zip(FIELDS) {
            let value = field
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='));
            values.push(match value.ok_or_else(bad)? {
                "-" => None,
                number => Some(number.parse::<u64>().map_err(|_| bad())?),
            });
        }
        let [Some(keys), Some(rss_before), Some(rss_after), Some(peak_rss), disk_bytes, server_bytes] =
            values[..]
        else {
            return Err(bad());
        };
        Ok(MemoryFigures {
            keys,
            rss_before,
            rss_after,
            peak_rss,
            disk_bytes,
            server_bytes,
        })
    }
}

/// The fields of a probe's line, in order.
const FIELDS: [&str; 6] = [
    "keys",
    "rss_before",
    "rss_after",
    "peak_rss",
    "disk",
    "server",
];

/// Opens `label`'s store, fills it with `key_count` keys, and measures this process.
pub fn probe(label: Label, places: &Places, key_count: usize) -> Result<MemoryFigures> {
    // Formatted before the first reading, so neither is part of the store's figure.
    let keys = KeySet::sequential(key_count);
    let values = ValuePool::new(VALUE_BYTES);
    let rss_before = process_memory("VmRSS")?;
    let peer = peers::open(label, places)?;
    let server_before = peer.server_memory_bytes()?;
    fill(peer.as_ref(), &keys, &values, FillOrder::Sequential)?;
    peer.settle()?;
    let server_after = peer.server_memory_bytes()?;
    let rss_after = process_memory("VmRSS")?;
    let peak_rss = process_memory("VmHWM")?;
    let disk_bytes = peer.disk_bytes();
    drop(peer);
    Ok(MemoryFigures {
        keys: key_count as u64,
        rss_before,
        rss_after,
        peak_rss,
        disk_bytes,
        server_bytes: server_before
            .zip(server_after)
            .map(|(before, after)| after.saturating_sub(before)),
    })
}

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmHWM`), in bytes.
fn process_memory(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|error| {
        WorkloadError::io("memory", "reading /proc/self/status (Linux only)", &error)
    })?;
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            let kilobytes: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
            Some(kilobytes * 1_024)
        })
        .ok_or_else(|| {
            WorkloadError::unexpected("memory", format!("/proc/self/status has no {field} line"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::{Engine, Mode};

    #[test]
    fn figures_survive_their_line() {
        let figures = MemoryFigures {
            keys: 1_000,
            rss_before: 10,
            rss_after: 20_010,
            peak_rss: 30_000,
            disk_bytes: Some(4_096),
            server_bytes: None,
        };
        let line = figures.to_line();
        assert_eq!(
            MemoryFigures::parse_line(&line).expect("its own line"),
            figures
        );
        assert_eq!(figures.bytes_per_key(), 20);
        assert!(MemoryFigures::parse_line("memory keys=1").is_err());
        assert!(MemoryFigures::parse_line("rss keys=1").is_err());
        assert!(MemoryFigures::parse_line(&line.replace("disk=4096", "disk=x")).is_err());
    }

    #[test]
    fn a_probe_of_an_in_memory_store_sees_it_grow() {
        let places = Places { redis_url: None };
        let figures = probe(Label::new(Engine::Cairn, Mode::InMemory), &places, 50_000)
            .expect("an in-memory probe");
        assert_eq!(figures.keys, 50_000);
        assert!(figures.peak_rss >= figures.rss_after);
        // 50,000 keys of 100-byte values hold at least 5.8 MB. Other tests of this binary run
        // in parallel and may hand memory back meanwhile, so the bound leaves a wide margin.
        assert!(
            figures.rss_after >= figures.rss_before + 4_000_000,
            "{figures:?}"
        );
        assert_eq!(figures.disk_bytes, None);
    }
}
