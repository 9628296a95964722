//! A workbench built with a planted bug (`--features planted-bug-one-ack`,
//! test-only; see `node/src/planted.rs`) simulates nodes that carry it.
//!
//! Why guard it: its verdicts are about a deliberately broken store, so
//! they must never pass for a campaign's. Such a build says so in
//! `--version`, runs only under the simulator (a Docker or local cluster
//! runs the real node binary, which has no planted bug, so the build's
//! name would lie), and only with `--allow-planted-bugs`; every run it
//! writes records the bugs in `run.json` (`planted_bugs`).

use anyhow::{bail, Result};

/// The planted bugs compiled into this build (empty in a normal one).
pub fn bugs() -> &'static [&'static str] {
    dynamo_node::planted::PLANTED_BUGS
}

/// `--version`: the crate version and the planted bugs, as the node prints it.
pub const VERSION: &str = dynamo_node::planted::VERSION;

/// Refuses a run of a planted build unless it is simulated and allowed.
pub fn refuse_unless_allowed(simulated: bool, allowed: bool) -> Result<()> {
    let planted = bugs();
    if planted.is_empty() {
        return Ok(());
    }
    if !simulated {
        bail!("this workbench was built with planted bugs {planted:?} (test-only); it runs only under the simulator (--backend sim)");
    }
    if !allowed {
        bail!("this workbench was built with planted bugs {planted:?} (test-only); pass --allow-planted-bugs to run it anyway");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_build_runs_only_simulated_and_allowed() {
        let planted = cfg!(feature = "planted-bug-one-ack");
        assert_eq!(VERSION.contains("planted bugs: none"), !planted, "{VERSION}");
        assert!(refuse_unless_allowed(true, true).is_ok());
        assert_eq!(refuse_unless_allowed(false, true).is_err(), planted);
        assert_eq!(refuse_unless_allowed(true, false).is_err(), planted);
    }
}
