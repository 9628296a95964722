//! The memory a cluster's processes hold, from the kernel's own
//! accounting, so a load sweep can show that no node grows without bound.
//!
//! Two sources, one per backend, as for CPU time (`cpu.rs`):
//! - a local process: `VmRSS` (resident now) and `VmHWM` (the high-water
//!   mark of resident memory since it started) of `/proc/<pid>/status`;
//! - a container: its cgroup's memory usage as the engine reports it
//!   (`docker stats`, one shot: `memory_stats.usage`; `max_usage` where the
//!   cgroup version keeps one, else the usage again).

use bollard::models::ContainerStatsResponse;

use crate::{ClusterError, Result};

/// One member's resident memory, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident now.
    pub rss_bytes: u64,
    /// The most it was resident at any time since it started (or `rss_bytes`
    /// where the kernel keeps no high-water mark).
    pub peak_bytes: u64,
}

/// The memory of local process `pid`.
pub(crate) fn of_process(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path)
        .map_err(|source| ClusterError::Io { context: format!("read {path}"), source })?;
    parse_proc_status(&text).ok_or_else(|| ClusterError::Other(format!("{path}: no VmRSS line")))
}

/// `VmRSS` and `VmHWM` of a `/proc/<pid>/status` text (kB there).
fn parse_proc_status(text: &str) -> Option<Memory> {
    let field_kb = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    let rss_bytes = field_kb("VmRSS:")? * 1024;
    let peak_bytes = field_kb("VmHWM:").map_or(rss_bytes, |kb| (kb * 1024).max(rss_bytes));
    Some(Memory { rss_bytes, peak_bytes })
}

/// The memory of a container, from one stats sample.
pub(crate) fn of_container_stats(stats: &ContainerStatsResponse) -> Option<Memory> {
    let memory = stats.memory_stats.as_ref()?;
    let rss_bytes = memory.usage?;
    let peak_bytes = memory.max_usage.map_or(rss_bytes, |max| max.max(rss_bytes));
    Some(Memory { rss_bytes, peak_bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_give_resident_and_peak_bytes() {
        let text = "Name:\tdynamo-node\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        let memory = parse_proc_status(text).expect("parsed");
        assert_eq!(memory, Memory { rss_bytes: 10 * 1024 * 1024, peak_bytes: 20 * 1024 * 1024 });
    }

    #[test]
    fn a_status_without_rss_is_refused_and_a_missing_peak_is_the_rss() {
        assert_eq!(parse_proc_status("Name:\tx\n"), None);
        let memory = parse_proc_status("VmRSS:\t 4 kB\n").expect("parsed");
        assert_eq!(memory.peak_bytes, 4096);
    }

    #[test]
    fn the_process_reading_this_has_memory() {
        let memory = of_process(std::process::id()).expect("own status");
        assert!(memory.rss_bytes > 0 && memory.peak_bytes >= memory.rss_bytes);
    }
}
