//! What a benchmark ran on and when: CPU count, CPU model, platform and UTC date.
//!
//! Figures mean little without the machine and date that produced them, so `cairn bench`
//! prints these first. Everything here degrades to "unknown" rather than failing: a missing
//! `/proc/cpuinfo` must not stop a benchmark. Dates are `jiff`'s.

use jiff::Timestamp;

/// The machine a run happens on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    /// CPUs this process may use (`nproc`).
    pub cpus: usize,
    /// The first `model name` of `/proc/cpuinfo`, or "unknown".
    pub cpu_model: String,
    /// The operating system and architecture Rust was built for.
    pub platform: String,
}

impl Machine {
    /// Describes the current machine.
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|cpuinfo| {
                cpuinfo.lines().find_map(|line| {
                    let (field, value) = line.split_once(':')?;
                    (field.trim() == "model name").then(|| value.trim().to_owned())
                })
            });
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            cpu_model: cpu_model.unwrap_or_else(|| "unknown".to_owned()),
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

const FORMAT: &str = "%Y-%m-%d %H:%M:%S UTC";

/// The current time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_now() -> String {
    Timestamp::now().strftime(FORMAT).to_string()
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (past the year 9999, the
/// count itself).
pub fn format_unix_millis(unix_millis: u64) -> String {
    i64::try_from(unix_millis)
        .ok()
        .and_then(|millis| Timestamp::from_millisecond(millis).ok())
        .map_or_else(
            || format!("{unix_millis} ms after 1970-01-01 UTC"),
            |time| time.strftime(FORMAT).to_string(),
        )
}
