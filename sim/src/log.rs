//! Where the simulated nodes' logs go: one file per run, each line stamped
//! with the simulated time and tagged with the node's span, instead of the
//! workbench's own stderr.
//!
//! The subscriber is the calling thread's default for the simulation's
//! lifetime (the whole simulation runs on that thread), so parallel
//! simulations on other threads (`explore`) keep their logs apart.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::EnvFilter;

use crate::error::SimError;

/// Stamps a line with the simulated time since the run started.
struct SimTime;

impl FormatTime for SimTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default();
        write!(w, "[sim {:>10.3} s]", elapsed.as_secs_f64())
    }
}

/// Sends this thread's logs to `path` (`RUST_LOG` filters, default `info`),
/// or nowhere; restored when the guard drops.
pub fn capture(path: Option<&Path>) -> Result<DefaultGuard, SimError> {
    let Some(path) = path else {
        return Ok(tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default()));
    };
    let file = File::create(path).map_err(|source| SimError::Log { path: path.to_path_buf(), source })?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_timer(SimTime)
        .finish();
    Ok(tracing::subscriber::set_default(subscriber))
}
