//! `dynamo-lazyfs`: mounts a lazy filesystem until SIGINT or SIGTERM,
//! clears a stale mount (`--unmount-stale PATH`), or sends one command to a
//! mount's control socket and prints its JSON answer (`--ctl COMMAND`: what
//! the workbench runs through `docker exec` inside a node's container, where
//! the socket is).
//!
//! The signals are blocked in every thread and taken by one waiting thread
//! (no handler runs in signal context), and the mount is unmounted before
//! the process exits, so a test that signals it finds no mount left.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use nix::sys::signal::{SigSet, Signal};

/// A FUSE filesystem that holds unsynced writes in memory and drops them
/// on `lose-unsynced` (control socket), as a power loss would.
#[derive(Debug, Parser)]
#[command(name = "dynamo-lazyfs")]
struct Args {
    /// The directory whose tree the mount shows (what the disk keeps).
    #[arg(long, required_unless_present_any = ["unmount_stale", "ctl"])]
    backing: Option<PathBuf>,
    /// Where to mount.
    #[arg(long, required_unless_present_any = ["unmount_stale", "ctl"])]
    mount: Option<PathBuf>,
    /// The control socket's path.
    #[arg(long, required_unless_present = "unmount_stale")]
    control: Option<PathBuf>,
    /// Most unsynced bytes held over all files; past it a write syncs its file.
    #[arg(long, default_value_t = 64 << 20)]
    cap_bytes: u64,
    /// Seed of the torn-write choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A loss keeps a seeded prefix of each file's unsynced writes.
    #[arg(long)]
    torn: bool,
    /// Lazily unmount a stale mount at this path and exit.
    #[arg(long, conflicts_with_all = ["backing", "mount", "control", "ctl"])]
    unmount_stale: Option<PathBuf>,
    /// Send this command (`lose-unsynced`, `stats`, `ping`) to the mount at
    /// `--control`, print the one-line JSON answer and exit (1 if refused).
    #[arg(long, requires = "control", conflicts_with_all = ["backing", "mount"])]
    ctl: Option<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        // Warnings (a failed unmount, an undo skipped) show without RUST_LOG.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    if let Some(path) = &args.unmount_stale {
        let was = lazyfs::unmount_stale(path)?;
        eprintln!("lazyfs: {} {}", if was { "unmounted" } else { "nothing mounted at" }, path.display());
        return Ok(());
    }
    if let (Some(command), Some(control)) = (&args.ctl, &args.control) {
        return ctl(control, command);
    }
    let (Some(backing), Some(mountpoint), Some(control)) = (args.backing, args.mount, args.control) else {
        bail!("--backing, --mount and --control are required");
    };
    if args.cap_bytes == 0 {
        bail!("--cap-bytes must be positive");
    }
    // Blocked before any thread starts, so every thread inherits the mask.
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals.thread_block().context("blocking signals")?;
    let config = lazyfs::Config {
        backing: backing.clone(),
        cap_bytes: args.cap_bytes,
        torn_seed: args.torn.then_some(args.seed),
    };
    let mounted = lazyfs::mount(config, &mountpoint, &control)?;
    eprintln!("lazyfs: {} mounted at {}, control at {}", backing.display(), mountpoint.display(), control.display());
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("lazyfs-signals".into())
        .spawn(move || {
            if let Ok(signal) = signals.wait() {
                let _ = tx.send(signal);
            }
        })
        .context("spawning the signal thread")?;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(signal) => {
                eprintln!("lazyfs: {signal}, unmounting {}", mountpoint.display());
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) if !mounted.is_finished() => {}
            Err(_) => {
                eprintln!("lazyfs: {} was unmounted", mountpoint.display());
                break;
            }
        }
    }
    mounted.unmount()?;
    Ok(())
}

/// Sends `command` to the control socket at `control` and prints the
/// answer line; a refusal is an error (exit status 1) after the answer.
fn ctl(control: &std::path::Path, command: &str) -> anyhow::Result<()> {
    let mut client = lazyfs::Client::connect(control)?;
    let answer = client.send(command)?;
    println!("{}", serde_json::to_string(&answer).context("printing the answer")?);
    if !answer.ok {
        bail!("refused: {}", answer.error.unwrap_or_default());
    }
    Ok(())
}
