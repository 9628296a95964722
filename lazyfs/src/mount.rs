//! Mounting, unmounting, and clearing a mount left behind.
//!
//! A mount is a FUSE session (one background thread) plus the control
//! socket. As root, fuser mounts with `mount(2)` itself and unmounts with
//! `umount2(2)`; otherwise it goes through `fusermount3`. `allow_other`
//! lets other users (a store running as its own user) in, and
//! `default_permissions` has the kernel check modes as on any disk.
//! [`Mounted::unmount`] unmounts and waits for the session to end, so the
//! mount is gone when it returns; a busy one is detached lazily.
//!
//! `auto_unmount` (fusermount3 unmounting when this process dies) is not
//! used: the fusermount3 of Debian 12 exited without unmounting when its
//! socket closed. A process killed with `SIGKILL` therefore leaves a stale
//! mount, which [`unmount_stale`] clears (a lazy detach: `umount2` with
//! `MNT_DETACH` as root, else `fusermount3 -u -z`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fuser::{BackgroundSession, MountOption, SessionACL};

use crate::control::ControlServer;
use crate::error::LazyError;
use crate::fs::LazyFs;
use crate::state::{Config, State};

/// A live mount: the FUSE session and the control socket.
#[derive(Debug)]
pub struct Mounted {
    /// The FUSE session's thread.
    session: BackgroundSession,
    /// The control socket (removed on drop).
    _control: ControlServer,
    /// The shared state.
    state: Arc<Mutex<State>>,
    /// Where it is mounted.
    mountpoint: PathBuf,
}

/// Mounts `config.backing` at `mountpoint`, with its control socket at `control`.
pub fn mount(config: Config, mountpoint: &Path, control: &Path) -> Result<Mounted, LazyError> {
    // Absolute: fusermount3 unmounts (auto_unmount) from another directory.
    let mountpoint = &mountpoint.canonicalize().map_err(|e| LazyError::Mount(mountpoint.to_owned(), e))?;
    let state = Arc::new(Mutex::new(State::new(config)?));
    let mut options = fuser::Config::default();
    options.mount_options = vec![MountOption::FSName("lazyfs".into()), MountOption::DefaultPermissions];
    options.acl = SessionACL::All;
    let session = fuser::spawn_mount(LazyFs::new(Arc::clone(&state)), mountpoint, &options)
        .map_err(|e| LazyError::Mount(mountpoint.to_owned(), e))?;
    let control = ControlServer::spawn(control, Arc::clone(&state))?;
    Ok(Mounted { session, _control: control, state, mountpoint: mountpoint.to_owned() })
}

impl Mounted {
    /// The shared state (what the control socket sees).
    pub fn state(&self) -> &Arc<Mutex<State>> {
        &self.state
    }

    /// Whether the session ended on its own (someone unmounted it).
    pub fn is_finished(&self) -> bool {
        self.session.guard.is_finished()
    }

    /// Unmounts and waits for the session to end. A busy mount (a process
    /// still has a file or its working directory in it) is detached
    /// lazily instead: it leaves the mount table at once and the kernel
    /// ends it when its last user goes.
    pub fn unmount(self) -> Result<(), LazyError> {
        let mountpoint = self.mountpoint.clone();
        match self.session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, mountpoint = %mountpoint.display(), "unmount failed; detaching");
                unmount_stale(&mountpoint).map(|_| ())
            }
        }
    }
}

/// Whether something is mounted at `path`, by `/proc/self/mountinfo`.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    info.lines().filter_map(|line| line.split(' ').nth(4)).any(|point| Path::new(&unescape_mountinfo(point)) == want)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lazily unmounts a (stale) mount at `path` (`umount2(MNT_DETACH)` as
/// root, else `fusermount3 -u -z`); returns whether something was mounted.
pub fn unmount_stale(path: &Path) -> Result<bool, LazyError> {
    if !is_mounted(path) {
        return Ok(false);
    }
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    match nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) => return Ok(true),
        Err(nix::errno::Errno::EPERM) => {}
        Err(e) => return Err(LazyError::Mount(path, e.into())),
    }
    let output = std::process::Command::new("fusermount3")
        .args(["-u", "-z", "--"])
        .arg(&path)
        .output()
        .map_err(|e| LazyError::Mount(path.clone(), e))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(LazyError::Mount(path, std::io::Error::other(why)));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
