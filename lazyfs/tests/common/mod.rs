//! A mount under a temporary directory for the tests, in this process.
//!
//! A test that cannot mount because the machine forbids it (no
//! `/dev/fuse`, or a mount refused for permissions) says why and returns
//! as skipped; any other failure to mount fails the test.

#![allow(dead_code, reason = "each test binary uses a part of the helpers")]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use lazyfs::{Client, Config, LazyError, Mounted};

/// The default cap of the tests (the binary's).
pub const CAP_BYTES: u64 = 64 << 20;

/// Why FUSE cannot be used here, if it cannot.
pub fn fuse_unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    None
}

/// Whether a mount failed because this machine does not permit it.
pub fn is_permission(e: &std::io::Error) -> bool {
    let text = e.to_string();
    e.kind() == std::io::ErrorKind::PermissionDenied
        || matches!(e.raw_os_error(), Some(1 | 13))
        || text.contains("Operation not permitted")
        || text.contains("Permission denied")
}

/// A mount over a fresh backing directory.
pub struct Fixture {
    /// Holds backing, mount point and socket.
    pub dir: tempfile::TempDir,
    /// The live mount (None once unmounted).
    mounted: Option<Mounted>,
}

impl Fixture {
    /// Mounts with `cap_bytes` and `torn_seed`, or says why it is skipped.
    pub fn mount(cap_bytes: u64, torn_seed: Option<u64>) -> Option<Fixture> {
        if let Some(why) = fuse_unavailable() {
            eprintln!("skipped: {why}");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("backing")).unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        let config = Config { backing: dir.path().join("backing"), cap_bytes, torn_seed };
        match lazyfs::mount(config, &dir.path().join("mnt"), &dir.path().join("control.sock")) {
            Ok(mounted) => Some(Fixture { dir, mounted: Some(mounted) }),
            Err(LazyError::Mount(_, e)) if is_permission(&e) => {
                eprintln!("skipped: mounting is not permitted here: {e}");
                None
            }
            Err(e) => panic!("mount failed: {e}"),
        }
    }

    /// A mount with the default cap, torn mode off.
    pub fn plain() -> Option<Fixture> {
        Fixture::mount(CAP_BYTES, None)
    }

    /// A path under the mount.
    pub fn m(&self, rel: &str) -> PathBuf {
        self.dir.path().join("mnt").join(rel)
    }

    /// A path under the backing directory.
    pub fn b(&self, rel: &str) -> PathBuf {
        self.dir.path().join("backing").join(rel)
    }

    /// A client of the control socket.
    pub fn client(&self) -> Client {
        Client::connect(self.dir.path().join("control.sock")).expect("control socket")
    }

    /// Drops everything not synced.
    pub fn lose(&self) -> lazyfs::LossReport {
        self.client().lose_unsynced().expect("lose-unsynced")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mounted) = self.mounted.take() {
            mounted.unmount().expect("unmount");
        }
    }
}

/// Creates `path` with `data` (not synced).
pub fn write_new(path: &Path, data: &[u8]) -> File {
    let mut f = File::options().read(true).write(true).create_new(true).open(path).unwrap();
    f.write_all(data).unwrap();
    f
}

/// Fsyncs directory `path`.
pub fn fsync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

/// The contents of `path`, or None if it does not exist.
pub fn read(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(data) => Some(data),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

/// The names in directory `path`, sorted.
pub fn names(path: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(path).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}
