//! The memory tier: what a store of N keys costs in memory and on disk. Resident memory
//! belongs to a process, so [`probe`] runs in a child that `cairn bench` starts for one store
//! and prints one line ([`MemoryFigures::to_line`]) that the parent parses back.

use super::{fill, FillOrder};
use crate::keys::KeySet;
use crate::peers::{self, Label, Places, ValuePool};
use crate::sizes::VALUE_BYTES;
use crate::workloads::{Result, WorkloadError};

/// What one probe measured: `VmRSS` before and after, `VmHWM`, files, server growth.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub struct MemoryFigures {
    pub keys: u64,
    pub rss_before: u64,
    pub rss_after: u64,
    pub peak_rss: u64,
    pub disk_bytes: Option<u64>,
    pub server_bytes: Option<u64>,
}

impl MemoryFigures {
    /// Memory per key: the server's growth for a server, the process's otherwise.
    pub fn bytes_per_key(&self) -> u64 {
        let grown = self.rss_after.saturating_sub(self.rss_before);
        self.server_bytes.unwrap_or(grown) / self.keys.max(1)
    }

    /// Disk bytes per key, for a store with files.
    pub fn disk_bytes_per_key(&self) -> Option<u64> {
        self.disk_bytes.map(|bytes| bytes / self.keys.max(1))
    }

    /// One line, `memory keys=N rss_before=B rss_after=B peak_rss=B disk=B|- server=B|-`.
    pub fn to_line(&self) -> String {
        let optional = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let values = [self.keys, self.rss_before, self.rss_after, self.peak_rss].map(Some);
        let extra = [self.disk_bytes, self.server_bytes];
        let values = values.into_iter().chain(extra);
        let fields = FIELDS.iter().zip(values);
        let fields = fields.map(|(name, value)| format!(" {name}={}", optional(value)));
        fields.fold("memory".to_owned(), |line, field| line + &field)
    }

    /// Reads back a line written by [`MemoryFigures::to_line`]: its six fields, in order.
    pub fn parse_line(line: &str) -> Result<Self> {
        let bad = || WorkloadError::unexpected("memory", format!("unreadable probe line {line:?}"));
        let fields = line.strip_prefix("memory ").ok_or_else(bad)?;
        let fields = fields.split_whitespace();
        let mut values = Vec::new();
        for (field, name) in fields.zip(FIELDS) {
            let value = field.strip_prefix(name).and_then(|it| it.strip_prefix('='));
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
    let server_bytes = server_before.zip(server_after);
    Ok(MemoryFigures {
        keys: key_count as u64,
        rss_before,
        rss_after,
        peak_rss,
        disk_bytes,
        server_bytes: server_bytes.map(|(before, after)| after.saturating_sub(before)),
    })
}

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmHWM`), in bytes.
pub(crate) fn process_memory(field: &str) -> Result<u64> {
    let unreadable = |error| WorkloadError::io("memory", "read /proc/self/status", &error);
    let status = std::fs::read_to_string("/proc/self/status").map_err(unreadable)?;
    let kilobytes = status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
    });
    let missing =
        || WorkloadError::unexpected("memory", format!("no {field} in /proc/self/status"));
    Ok(kilobytes.ok_or_else(missing)? * 1_024)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let parsed = MemoryFigures::parse_line(&line).expect("its own line");
        assert_eq!(parsed, figures);
        assert_eq!(figures.bytes_per_key(), 20);
        for bad in [
            "memory keys=1",
            "rss keys=1",
            &line.replace("disk=4096", "disk=x"),
        ] {
            assert!(MemoryFigures::parse_line(bad).is_err(), "{bad}");
        }
    }
}
