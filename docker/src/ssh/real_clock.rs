//! Real clock bumps on SSH hosts (`--ssh-real-clock`): dangerous, for
//! disposable VMs only.
//!
//! By default a clock fault on an SSH host is libfaketime's: the node's
//! process sees a skewed wall clock and nothing else on the host does.
//! Some bugs only show with the kernel's own clock moved (timers, file
//! times, another process's view), so with `--ssh-real-clock` a run with
//! clock faults moves each host's real clock with `date -s`, as Jepsen's
//! clock nemesis does. That changes the whole machine's time: never use it
//! on a host that matters, and never on containers (they share their
//! host's clock; the check refuses a host whose root lacks
//! `CAP_SYS_TIME`, which a container does).
//!
//! What keeps it bounded:
//! - before the nodes start, every NTP daemon that runs (systemd-timesyncd,
//!   chrony, ntp, ntpsec) is stopped, and the units stopped are listed in
//!   the run's directory ([`NTP_FILE`]), so nothing undoes a bump mid-run;
//! - each bump moves the clock by the difference between the offset asked
//!   and the one in force, and the offset in force is written to the run's
//!   directory ([`OFFSET_FILE`]) before the bump;
//! - teardown, and the clean of the next start or of `workbench clean`,
//!   moves the clock back by that offset and starts the NTP units again,
//!   before the run's directory goes ([`super::remote::clean`]).
//!
//! A node is one host here, so "skew n2's clock" moves n2's host.

use super::quote::quote;
use super::{SshCluster, SshNode, COMMAND_TIMEOUT_MS};
use crate::Result;

/// The file, in a run's directory on a host, holding the offset in force
/// (whole seconds) while the real clock is moved.
pub const OFFSET_FILE: &str = "clock.offset";

/// The file, in a run's directory on a host, listing the NTP units the run
/// stopped.
pub const NTP_FILE: &str = "ntp.stopped";

/// What performs clock faults with `--ssh-real-clock`, recorded in every event.
pub const MECHANISM: &str = "date -s over ssh";

/// The NTP daemons' systemd units a run stops.
const NTP_UNITS: [&str; 5] = ["systemd-timesyncd", "chrony", "chronyd", "ntp", "ntpsec"];

/// Stops every NTP unit that runs and lists it in `run_dir`'s [`NTP_FILE`]
/// (run as root).
pub fn stop_ntp(run_dir: &str) -> String {
    let file = quote(&format!("{run_dir}/{NTP_FILE}"));
    format!(
        "mkdir -p -- {dir} && : > {file} || exit 1; command -v systemctl >/dev/null 2>&1 || exit 0; \
         for u in {units}; do if systemctl is-active --quiet \"$u\"; then systemctl stop \"$u\" && echo \"$u\" >> {file}; fi; done",
        dir = quote(run_dir),
        units = NTP_UNITS.join(" "),
    )
}

/// Moves the host's clock from offset `from_secs` to `to_secs` (relative
/// to the real time), writing `to_secs` to the run's [`OFFSET_FILE`]
/// first (run as root).
pub fn bump(run_dir: &str, from_secs: i64, to_secs: i64) -> String {
    let delta = to_secs - from_secs;
    format!(
        "printf '%s\\n' {to_secs} > {file} && date -s {shift} >/dev/null",
        file = quote(&format!("{run_dir}/{OFFSET_FILE}")),
        shift = quote(&format!("{delta:+} seconds")),
    )
}

/// Undoes what a run in `dir_word` (a shell word: a quoted path or a
/// quoted variable) did to the host's time: the clock moved back by the
/// offset in force, the NTP units started again (run as root; fine when
/// the run did neither).
pub fn restore(dir_word: &str) -> String {
    format!(
        "if [ -s {dir_word}/{OFFSET_FILE} ]; then o=$(cat {dir_word}/{OFFSET_FILE}); \
           [ \"$o\" = 0 ] || date -s \"$((-o)) seconds\" >/dev/null; rm -f {dir_word}/{OFFSET_FILE}; fi; \
         if [ -s {dir_word}/{NTP_FILE} ]; then for u in $(cat {dir_word}/{NTP_FILE}); do systemctl start \"$u\" || true; done; \
           rm -f {dir_word}/{NTP_FILE}; fi"
    )
}

/// Prints `sys_time=yes` when this shell may set the clock
/// (`CAP_SYS_TIME`, bit 25 of its effective capabilities), else `sys_time=no`.
pub fn probe_sys_time() -> String {
    "cap=$(awk '/^CapEff/ {print $2}' /proc/self/status); \
     if [ -n \"$cap\" ] && [ $(( (0x$cap >> 25) & 1 )) = 1 ]; then echo sys_time=yes; else echo sys_time=no; fi"
        .to_string()
}

impl SshCluster {
    /// Moves `node`'s host's real clock to `offset_secs` from the real
    /// time (from the offset in force), as root.
    pub(super) async fn bump_real_clock(&self, node: &SshNode, offset_secs: i64) -> Result<()> {
        let mut offsets = self.clock_offsets_s.lock().await;
        let from_secs = offsets.get(&node.id).copied().unwrap_or(0);
        let script = bump(&node.paths.run_dir, from_secs, offset_secs);
        node.slot.client.run_as_root(&script, COMMAND_TIMEOUT_MS).await?;
        offsets.insert(node.id.clone(), offset_secs);
        tracing::warn!(node = %node.id, host = %node.slot.client.host(), offset_secs, "the host's real clock moved");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_moves_by_the_difference_and_records_the_target() {
        let script = bump("/tmp/dynamo-workbench/r", 30, -90);
        assert!(script.contains("'-120 seconds'"), "{script}");
        assert!(script.starts_with("printf '%s\\n' -90 > /tmp/dynamo-workbench/r/clock.offset"), "{script}");
        assert!(bump("/tmp/dynamo-workbench/r", 0, 5).contains("'+5 seconds'"));
    }

    /// The scripts are valid sh (parsed, not run: running them would move
    /// this machine's clock).
    #[test]
    fn every_script_parses() {
        for script in
            [stop_ntp("/tmp/dynamo-workbench/r"), bump("/tmp/r", 0, 3), restore("\"${d%/}\""), probe_sys_time()]
        {
            let status = std::process::Command::new("sh").args(["-n", "-c", &script]).status().unwrap();
            assert!(status.success(), "{script}");
        }
    }

    /// The probe reads this shell's own capabilities (and changes nothing).
    #[test]
    fn the_probe_answers_yes_or_no() {
        let out = std::process::Command::new("sh").args(["-c", &probe_sys_time()]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.trim() == "sys_time=yes" || text.trim() == "sys_time=no", "{text}");
    }
}
