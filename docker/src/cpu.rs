//! The CPU time a cluster's processes have used, from the kernel's own
//! accounting, so a benchmark can say how much CPU one operation cost.
//!
//! Throughput and latency on a shared machine move with whatever else runs
//! there; the CPU a server spent per operation moves much less, so it is
//! the figure a change to the server is judged by when the machine is noisy.
//! Two sources, one per backend, both cumulative since the process (or the
//! container) started, both split into user and kernel time:
//! - a container: its cgroup's usage as the engine reports it (`docker
//!   stats`, one shot: `cpu_usage.total_usage` and `usage_in_kernelmode`,
//!   nanoseconds), which covers every process in the container;
//! - a local process: `utime` and `stime` of `/proc/<pid>/stat` (every
//!   thread of the process, in clock ticks of `sysconf(_SC_CLK_TCK)`).
//!
//! A reader takes one sample before a load and one after, and divides the
//! difference ([`CpuTime::since`]) by the operations served in between.

use std::ops::Add;

use bollard::models::ContainerStatsResponse;

use crate::{ClusterError, Result};

/// CPU time used, split by mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time spent running the processes' own code, us.
    pub user_us: u64,
    /// Time the kernel spent on their behalf (system calls, network stack,
    /// page faults), us.
    pub system_us: u64,
}

impl CpuTime {
    /// User plus kernel time, us.
    pub fn total_us(&self) -> u64 {
        self.user_us + self.system_us
    }

    /// What was used between `earlier` and this sample (never negative: a
    /// restarted process starts counting again, and is counted from zero).
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user_us: self.user_us.saturating_sub(earlier.user_us),
            system_us: self.system_us.saturating_sub(earlier.system_us),
        }
    }

    /// The kernel's share of the total, in [0, 1] (0 when nothing was used).
    pub fn system_fraction(&self) -> f64 {
        match self.total_us() {
            0 => 0.0,
            total => self.system_us as f64 / total as f64,
        }
    }
}

impl Add for CpuTime {
    type Output = CpuTime;

    fn add(self, other: CpuTime) -> CpuTime {
        CpuTime { user_us: self.user_us + other.user_us, system_us: self.system_us + other.system_us }
    }
}

/// The CPU time of local process `pid` so far (all its threads).
pub(crate) fn of_process(pid: u32) -> Result<CpuTime> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path)
        .map_err(|source| ClusterError::Io { context: format!("read {path}"), source })?;
    let ticks_per_s = clock_ticks_per_s()?;
    parse_proc_stat(&text, ticks_per_s)
        .ok_or_else(|| ClusterError::Other(format!("{path}: no utime and stime in {text:?}")))
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat`'s times.
fn clock_ticks_per_s() -> Result<u64> {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .map_err(|e| ClusterError::Other(format!("sysconf(_SC_CLK_TCK): {e}")))?
        .ok_or_else(|| ClusterError::Other("sysconf(_SC_CLK_TCK) has no value".into()))?;
    u64::try_from(ticks)
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| ClusterError::Other(format!("sysconf(_SC_CLK_TCK) = {ticks}")))
}

/// utime and stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so fields are counted from the last `)`.
fn parse_proc_stat(text: &str, ticks_per_s: u64) -> Option<CpuTime> {
    assert!(ticks_per_s > 0, "clock ticks per second must be positive");
    let after_name = &text[text.rfind(')')? + 1..];
    // After the name: state is field 3, so utime (14) is the 12th, stime the 13th.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let us = |ticks: u64| ticks * 1_000_000 / ticks_per_s;
    Some(CpuTime { user_us: us(utime), system_us: us(stime) })
}

/// A container's CPU time from one `docker stats` sample. The total comes
/// from the cgroup's precise counter; the kernel part from its coarser
/// per-mode counter, so the user part is the rest.
pub(crate) fn of_container_stats(stats: &ContainerStatsResponse) -> Option<CpuTime> {
    let usage = stats.cpu_stats.as_ref()?.cpu_usage.as_ref()?;
    let total_ns = usage.total_usage?;
    let system_ns = usage.usage_in_kernelmode.unwrap_or(0).min(total_ns);
    Some(CpuTime { user_us: (total_ns - system_ns) / 1_000, system_us: system_ns / 1_000 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage};

    #[test]
    fn proc_stat_times_are_read_after_the_name() {
        // A name with a space and a parenthesis; utime 250 and stime 50 ticks.
        let line = "4242 (dyn ode) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 1000 0 0";
        assert_eq!(parse_proc_stat(line, 100), Some(CpuTime { user_us: 2_500_000, system_us: 500_000 }));
        assert_eq!(parse_proc_stat("4242 (short) S 1", 100), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        // The kernel counts in clock ticks (10 ms): spin, bounded, until one shows.
        let started = std::time::Instant::now();
        let mut used = of_process(std::process::id()).unwrap();
        while used.total_us() == 0 && started.elapsed() < std::time::Duration::from_secs(10) {
            std::hint::black_box((0..1_000_000u64).fold(0u64, |a, b| a.wrapping_add(b * b)));
            used = of_process(std::process::id()).unwrap();
        }
        assert!(used.total_us() > 0, "{used:?} after {:?}", started.elapsed());
    }

    #[test]
    fn container_stats_split_total_into_user_and_kernel() {
        let stats = ContainerStatsResponse {
            cpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(3_000_000_000),
                    usage_in_kernelmode: Some(1_000_000_000),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cpu = of_container_stats(&stats).unwrap();
        assert_eq!(cpu, CpuTime { user_us: 2_000_000, system_us: 1_000_000 });
        assert!((cpu.system_fraction() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(of_container_stats(&ContainerStatsResponse::default()), None);
    }

    #[test]
    fn since_subtracts_and_never_goes_negative() {
        let (a, b) = (CpuTime { user_us: 10, system_us: 5 }, CpuTime { user_us: 30, system_us: 4 });
        assert_eq!(b.since(&a), CpuTime { user_us: 20, system_us: 0 });
        assert_eq!((a + b).total_us(), 49);
    }
}
