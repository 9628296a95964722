//! The binary: it unmounts on SIGTERM and SIGINT, a stale mount left by
//! SIGKILL is cleared by `--unmount-stale`, and a malformed control line
//! gets a clear error while the filesystem keeps working.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{fuse_unavailable, read, write_new};

/// A `dynamo-lazyfs` process with its directories.
struct Process {
    /// Holds backing, mount point and socket.
    dir: tempfile::TempDir,
    /// The process.
    child: Child,
}

impl Process {
    /// Starts the binary and waits until it is mounted and answers, or says
    /// why it is skipped.
    fn start() -> Option<Process> {
        if let Some(why) = fuse_unavailable() {
            eprintln!("skipped: {why}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("backing")).unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_dynamo-lazyfs"))
            .arg("--backing")
            .arg(dir.path().join("backing"))
            .arg("--mount")
            .arg(dir.path().join("mnt"))
            .arg("--control")
            .arg(dir.path().join("control.sock"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut process = Process { dir, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = process.child.try_wait().unwrap() {
                let mut why = String::new();
                let mut stderr = process.child.stderr.take().unwrap();
                std::io::Read::read_to_string(&mut stderr, &mut why).unwrap();
                if why.contains("Operation not permitted") || why.contains("Permission denied") {
                    eprintln!("skipped: mounting is not permitted here: {why}");
                    return None;
                }
                panic!("dynamo-lazyfs exited with {status}: {why}");
            }
            if lazyfs::is_mounted(&process.mnt()) && process.control().exists() {
                return Some(process);
            }
            assert!(Instant::now() < deadline, "not mounted within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The mount point.
    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// The control socket.
    fn control(&self) -> PathBuf {
        self.dir.path().join("control.sock")
    }

    /// Sends `signal` and waits for the process to exit.
    fn signal_and_wait(&mut self, signal: Signal) -> std::process::ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 20 s of {signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = lazyfs::unmount_stale(&self.mnt());
    }
}

/// Starts the binary, checks the mount works, signals, checks it is gone.
fn unmounts_on(signal: Signal) {
    let Some(mut process) = Process::start() else { return };
    write_new(&process.mnt().join("f"), b"x");
    assert_eq!(read(&process.mnt().join("f")).unwrap(), b"x");
    let status = process.signal_and_wait(signal);
    assert!(status.success(), "exit status {status} after {signal}");
    assert!(!lazyfs::is_mounted(&process.mnt()), "still in /proc/self/mountinfo after {signal}");
    assert!(!process.control().exists(), "the control socket is removed");
}

#[test]
fn the_process_unmounts_on_sigterm() {
    unmounts_on(Signal::SIGTERM);
}

#[test]
fn the_process_unmounts_on_sigint() {
    unmounts_on(Signal::SIGINT);
}

#[test]
fn unmount_stale_clears_the_mount_a_sigkill_left() {
    let Some(mut process) = Process::start() else { return };
    process.signal_and_wait(Signal::SIGKILL);
    assert!(lazyfs::is_mounted(&process.mnt()), "SIGKILL leaves the mount");
    let status =
        Command::new(env!("CARGO_BIN_EXE_dynamo-lazyfs")).arg("--unmount-stale").arg(process.mnt()).status().unwrap();
    assert!(status.success());
    assert!(!lazyfs::is_mounted(&process.mnt()));
}

/// Sends one raw line and reads one answer line.
fn exchange(stream: &mut UnixStream, line: &[u8]) -> serde_json::Value {
    stream.write_all(line).unwrap();
    let mut answer = String::new();
    BufReader::new(stream.try_clone().unwrap()).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[test]
fn a_malformed_control_line_gets_an_error_and_the_fs_keeps_working() {
    let Some(process) = Process::start() else { return };
    let mut stream = UnixStream::connect(process.control()).unwrap();
    let answer = exchange(&mut stream, b"lose-everything\n");
    assert_eq!(answer["ok"], false);
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains("unknown command") && error.contains("lose-unsynced"), "{error}");
    assert_eq!(exchange(&mut stream, b"\xff\xfe\n")["ok"], false);
    assert_eq!(exchange(&mut stream, b"{\"op\":\"stats\"}\n")["ok"], false);
    assert_eq!(exchange(&mut stream, b"ping\n")["ok"], true, "the same connection goes on");

    let long = vec![b'x'; lazyfs::control::MAX_LINE_BYTES + 10];
    let answer = exchange(&mut stream, &long);
    assert!(answer["error"].as_str().unwrap().contains("longer than"), "{answer}");

    // The filesystem and a fresh connection still work.
    let path = process.mnt().join("after");
    write_new(&path, b"still works").sync_all().unwrap();
    let mut client = lazyfs::Client::connect(process.control()).unwrap();
    client.ping().unwrap();
    assert_eq!(client.stats().unwrap().synced_bytes, 11);
    assert!(!client.send("nonsense").unwrap().ok);
    assert_eq!(read(&path).unwrap(), b"still works");
    assert!(Path::new(&process.mnt()).is_dir());
}

#[test]
fn a_busy_mount_is_detached_on_sigterm() {
    let Some(mut process) = Process::start() else { return };
    let mut squatter = Command::new("sleep").arg("30").current_dir(process.mnt()).spawn().unwrap();
    let status = process.signal_and_wait(Signal::SIGTERM);
    squatter.kill().unwrap();
    squatter.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(!lazyfs::is_mounted(&process.mnt()), "a busy mount is detached");
}
