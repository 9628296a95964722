//! Where things live on a host, and the shell commands that act on them.
//!
//! Everything the backend leaves on a host is under one labelled directory,
//! [`REMOTE_ROOT`] (`/tmp/dynamo-workbench`): the uploaded binaries in
//! `bin/`, and per run `<run>/` with, per node, `<node>/data/` (its data
//! directory, kept across restarts), `<node>.log` (stdout and stderr,
//! appended across restarts), `<node>.pid` and `<node>.faketime`; in a
//! run with link proxies `<node>.proxy.pid` and `<node>.proxy.log`; in a
//! run that cuts power `<node>/backing/` (the disk under the node's lazy
//! filesystem, mounted at `<node>/data/`), `<node>.lazyfs.pid`,
//! `<node>.lazyfs.log` and its control socket `<node>.lazyfs.sock`. Partition
//! rules live in one iptables chain of our own, [`CHAIN`], jumped to from
//! INPUT, so healing flushes only our rules and never the host's own.
//!
//! A node runs under `setsid` (its own session: no terminal, no SIGHUP when
//! the SSH channel closes), its stdio on its log, and its pid is written by
//! the shell that started it. A pid is trusted only while `/proc/<pid>`
//! shows a live (not zombie) process whose command line names our binary
//! ([`alive_function`]), so a recycled pid is never signalled.
//!
//! Every function here returns a command line built by [`quote`], with
//! the values that vary (paths, ids, addresses, flags) quoted. Those that
//! need root (iptables, [`clean`], [`hand_over`]) are run by the caller
//! through [`super::SshClient::run_as_root`], which adds `sudo -n` for a
//! login other than root.

use super::quote::{as_root, command, quote};

/// The directory everything the backend creates on a host lives under.
pub const REMOTE_ROOT: &str = "/tmp/dynamo-workbench";
/// The iptables chain holding this backend's partition rules on a host.
pub const CHAIN: &str = "dynamo-workbench";
/// The file in a run's directory that marks its data as kept (`--keep-data`):
/// the next start's clean leaves that directory alone.
pub const KEPT_MARKER: &str = ".kept";

/// Where the uploaded `name` binary lives on every host.
pub fn binary_path(name: &str) -> String {
    assert!(!name.contains('/'), "a binary name, not a path");
    format!("{REMOTE_ROOT}/bin/{name}")
}

/// The paths of one node of one run on its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    /// The run's directory.
    pub run_dir: String,
    /// The node's `--data-dir`.
    pub data_dir: String,
    /// Its stdout and stderr.
    pub log: String,
    /// The pid of its process.
    pub pid: String,
    /// Its libfaketime timestamp file.
    pub faketime: String,
    /// The pid of the link proxy in front of it (a run with link proxies).
    pub proxy_pid: String,
    /// The link proxy's stdout and stderr.
    pub proxy_log: String,
    /// What the disk keeps under the lazy filesystem (a run that cuts power).
    pub backing: String,
    /// The lazy filesystem's process.
    pub lazyfs_pid: String,
    /// Its stdout and stderr.
    pub lazyfs_log: String,
    /// Its control socket.
    pub lazyfs_socket: String,
}

impl NodePaths {
    /// The paths of node `id` of run `run`; both are plain names (checked).
    pub fn new(run: &str, id: &str) -> NodePaths {
        for name in [run, id] {
            assert!(is_plain_name(name), "{name:?} is not a plain name");
        }
        let run_dir = format!("{REMOTE_ROOT}/{run}");
        NodePaths {
            data_dir: format!("{run_dir}/{id}/data"),
            log: format!("{run_dir}/{id}.log"),
            pid: format!("{run_dir}/{id}.pid"),
            faketime: format!("{run_dir}/{id}.faketime"),
            proxy_pid: format!("{run_dir}/{id}.proxy.pid"),
            proxy_log: format!("{run_dir}/{id}.proxy.log"),
            backing: format!("{run_dir}/{id}/backing"),
            lazyfs_pid: format!("{run_dir}/{id}.lazyfs.pid"),
            lazyfs_log: format!("{run_dir}/{id}.lazyfs.log"),
            lazyfs_socket: format!("{run_dir}/{id}.lazyfs.sock"),
            run_dir,
        }
    }
}

/// A name that is one path component of letters, digits, `-`, `_` and `.`.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A shell function `alive PID`: true while PID is a live process of ours.
fn alive_function() -> String {
    format!(
        "alive() {{ [ -r /proc/$1/status ] && ! grep -q '^State:[[:space:]]*Z' /proc/$1/status 2>/dev/null \
         && tr '\\0' ' ' < /proc/$1/cmdline 2>/dev/null | grep -qF {}; }}",
        quote(&format!("{REMOTE_ROOT}/bin/"))
    )
}

/// Starts a node: its directories, then `env ... setsid argv` in the
/// background with its output appended to the log, and its pid recorded.
pub fn start_node(paths: &NodePaths, env: &[(String, String)], argv: &[String]) -> String {
    start_process(&paths.data_dir, &paths.log, &paths.pid, env, argv)
}

/// Starts the link proxy in front of a node (the same way as the node,
/// its own pid file and log), unless it already runs: a proxy outlives
/// its node's kills and restarts, as a host's TCP stack does.
pub fn start_proxy(paths: &NodePaths, argv: &[String]) -> String {
    format!(
        "{}; pid=$(cat {} 2>/dev/null) && alive \"$pid\" && exit 0; {}",
        alive_function(),
        quote(&paths.proxy_pid),
        start_process(&paths.run_dir, &paths.proxy_log, &paths.proxy_pid, &[], argv)
    )
}

/// How many tenths of a second a fresh lazy filesystem may take to answer.
const MOUNT_POLLS: u32 = 300;

/// The command asking the lazy filesystem in front of a node's data
/// directory `word` (`ping`, `lose-unsynced`) on its control socket; it
/// prints the answer as JSON.
pub fn lazyfs_ctl(paths: &NodePaths, word: &str) -> String {
    command(&[&binary_path(LAZYFS), "--control", &paths.lazyfs_socket, "--ctl", word])
}

/// The program of the lazy filesystem, uploaded with the others.
pub const LAZYFS: &str = "dynamo-lazyfs";

/// Mounts the lazy filesystem at the node's data directory over its
/// backing directory, unless it runs already (it outlives the node's
/// kills and restarts, as a disk does), and waits until it answers; a
/// mount that fails says why, with the end of its log.
pub fn mount_lazyfs(paths: &NodePaths) -> String {
    let argv = [
        binary_path(LAZYFS),
        "--backing".into(),
        paths.backing.clone(),
        "--mount".into(),
        paths.data_dir.clone(),
        "--control".into(),
        paths.lazyfs_socket.clone(),
    ];
    format!(
        "{alive}; pid=$(cat {pid} 2>/dev/null) && alive \"$pid\" && exit 0; {mkdir} && {start} && i=0; \
         until {ping} >/dev/null 2>&1; do \
           alive \"$(cat {pid})\" || {{ echo 'lazyfs could not mount '{data}' (it needs /dev/fuse, and root or \
             fusermount3 with user_allow_other):' >&2; tail -n 5 {log} >&2; exit 1; }}; \
           i=$((i+1)); [ $i -lt {MOUNT_POLLS} ] || {{ echo 'lazyfs did not answer on '{socket} >&2; exit 1; }}; \
           sleep 0.1; done",
        alive = alive_function(),
        pid = quote(&paths.lazyfs_pid),
        mkdir = command(&["mkdir", "-p", "--", &paths.backing]),
        start = start_process(&paths.data_dir, &paths.lazyfs_log, &paths.lazyfs_pid, &[], &argv),
        ping = lazyfs_ctl(paths, "ping"),
        data = quote(&paths.data_dir),
        log = quote(&paths.lazyfs_log),
        socket = quote(&paths.lazyfs_socket),
    )
}

/// Unmounts the node's lazy filesystem: SIGTERM (it unmounts on the way
/// out) and a bounded wait, then SIGKILL and a lazy detach of what stayed
/// mounted. Fine if it was not running.
pub fn unmount_lazyfs(paths: &NodePaths) -> String {
    format!(
        "{alive}; pid=$(cat {pid} 2>/dev/null) || exit 0; if alive \"$pid\"; then kill -s TERM \"$pid\"; i=0; \
         while alive \"$pid\" && [ $i -lt 50 ]; do i=$((i+1)); sleep 0.1; done; \
         alive \"$pid\" && kill -s KILL \"$pid\"; fi; {detach}",
        alive = alive_function(),
        pid = quote(&paths.lazyfs_pid),
        detach = detach_mounts_under(&quote(&paths.data_dir)),
    )
}

/// Detaches (lazily) every mount at or under the directory `dir_word`
/// (a shell word: a quoted path, or a quoted variable), deepest first:
/// what a killed lazy filesystem leaves ("transport endpoint is not
/// connected"), which no `rm -rf` gets through. Needs root, or the
/// mount's owner.
fn detach_mounts_under(dir_word: &str) -> String {
    format!(
        "awk -v d={dir_word} '$2 == d || index($2, d \"/\") == 1 {{ print $2 }}' /proc/mounts | sort -r | \
         while read -r m; do umount -l \"$m\" 2>/dev/null || fusermount3 -u -z \"$m\" 2>/dev/null || true; done"
    )
}

/// `mkdir -p dir`, then `env ... setsid argv` in the background, its
/// output appended to `log` and its pid written to `pid`.
fn start_process(dir: &str, log: &str, pid: &str, env: &[(String, String)], argv: &[String]) -> String {
    let mut full = vec!["setsid".to_string(), "env".to_string()];
    full.extend(env.iter().map(|(k, v)| {
        assert!(k.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{k:?} is an environment name");
        format!("{k}={v}")
    }));
    full.extend(argv.iter().cloned());
    format!(
        "{} && {{ {} >> {} 2>&1 < /dev/null & echo $! > {}; }}",
        command(&["mkdir", "-p", "--", dir]),
        command(&full),
        quote(log),
        quote(pid)
    )
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`) to the node; fails if it is not running.
pub fn signal_node(paths: &NodePaths, signal: &str) -> String {
    assert!(signal.chars().all(|c| c.is_ascii_uppercase()), "a signal name");
    format!("{}; pid=$(cat {}) && alive \"$pid\" && kill -s {signal} \"$pid\"", alive_function(), quote(&paths.pid))
}

/// SIGKILLs the process whose pid `pid_file` holds (a node, or its proxy)
/// and waits until it is gone (the caller's deadline bounds the wait);
/// fine if it was not running.
pub fn kill_process(pid_file: &str) -> String {
    format!(
        "{}; pid=$(cat {} 2>/dev/null) || exit 0; alive \"$pid\" || exit 0; kill -s KILL \"$pid\"; \
         while alive \"$pid\"; do sleep 0.05; done",
        alive_function(),
        quote(pid_file)
    )
}

/// Exits 0 when the node's process is running (or stopped), 1 when not.
pub fn node_running(paths: &NodePaths) -> String {
    format!("{}; pid=$(cat {} 2>/dev/null) && alive \"$pid\"", alive_function(), quote(&paths.pid))
}

/// Replaces the node's libfaketime file with `line` (`+120s`), atomically.
pub fn write_faketime(paths: &NodePaths, line: &str) -> String {
    let tmp = format!("{}.new", paths.faketime);
    format!(
        "mkdir -p -- {} && printf '%s\\n' {} > {} && mv -f -- {} {}",
        quote(&paths.run_dir),
        quote(line),
        quote(&tmp),
        quote(&tmp),
        quote(&paths.faketime)
    )
}

/// Creates [`CHAIN`] (empty) and jumps to it first thing from INPUT.
pub fn install_chain() -> String {
    format!("{} && iptables -w -N {CHAIN} && iptables -w -I INPUT 1 -j {CHAIN}", remove_chain())
}

/// Drops, on this host, every packet from `source` (a cluster address).
pub fn drop_from(source: std::net::IpAddr) -> String {
    command(&["iptables", "-w", "-A", CHAIN, "-s", &source.to_string(), "-j", "DROP"])
}

/// Removes every rule of [`CHAIN`] (the heal); the chain stays.
pub fn flush_chain() -> String {
    format!("iptables -w -F {CHAIN}")
}

/// Removes [`CHAIN`] and every jump to it; fine if there is none.
pub fn remove_chain() -> String {
    format!(
        "while iptables -w -D INPUT -j {CHAIN} 2>/dev/null; do :; done; \
         if iptables -w -n -L {CHAIN} >/dev/null 2>&1; then iptables -w -F {CHAIN} && iptables -w -X {CHAIN}; fi"
    )
}

/// Kills every process of ours under [`REMOTE_ROOT`] (by pid file), puts
/// back the clock and the NTP units a `--ssh-real-clock` run moved and
/// stopped, detaches stale lazy filesystems, removes every run directory
/// (the uploaded binaries stay) and our iptables chain: what a run killed
/// mid-way left. With `spare_kept`, a run directory
/// holding [`KEPT_MARKER`] (its data kept by `--keep-data`) stays: a start
/// spares it, `workbench clean` removes it. Idempotent.
pub fn clean(spare_kept: bool) -> String {
    let spare = if spare_kept { format!("[ -e \"$d\"{} ] && continue; ", quote(KEPT_MARKER)) } else { String::new() };
    format!(
        "{}; for f in {root}/*/*.pid; do [ -f \"$f\" ] || continue; pid=$(cat \"$f\"); \
         if alive \"$pid\"; then kill -s CONT \"$pid\"; kill -s KILL \"$pid\"; fi; done; \
         for d in {root}/*/; do [ \"$d\" = {bin} ] && continue; {restore}; {spare}{detach}; rm -rf -- \"$d\"; done; {}",
        alive_function(),
        remove_chain(),
        root = REMOTE_ROOT,
        bin = quote(&format!("{REMOTE_ROOT}/bin/")),
        detach = detach_mounts_under("\"${d%/}\""),
        restore = super::real_clock::restore("\"${d%/}\""),
    )
}

/// Marks a run's directory as kept ([`KEPT_MARKER`]), where there is one
/// (a spare host that never ran a node has none).
pub fn mark_kept(run_dir: &str) -> String {
    format!("if [ -d {} ]; then {}; fi", quote(run_dir), command(&["touch", "--", &format!("{run_dir}/{KEPT_MARKER}")]))
}

/// Gives [`REMOTE_ROOT`] (created if missing) to `user`, so a login that
/// uses sudo can write where root, or another user, ran before. Needs root.
pub fn hand_over(user: &str) -> String {
    format!(
        "{} && {}",
        command(&["mkdir", "-p", "--", &format!("{REMOTE_ROOT}/bin")]),
        command(&["chown", "-R", "--", user, REMOTE_ROOT])
    )
}

/// The facts [`super::prepare`] checks, one `key=value` a line. With
/// `sudo`, whether `sudo -n` works (`sudo=yes|no`), and iptables is looked
/// for as root would find it (root's PATH has the sbin directories).
pub fn probe(libfaketime: &str, sudo: bool) -> String {
    let find_iptables = "command -v iptables >/dev/null 2>&1";
    let sys_time = super::real_clock::probe_sys_time();
    let (find_iptables, sys_time, sudo_check) = match sudo {
        true => (
            as_root(find_iptables),
            format!("{} 2>/dev/null || echo sys_time=no", as_root(&sys_time)),
            "if sudo -n true 2>/dev/null; then echo sudo=yes; else echo sudo=no; fi; ",
        ),
        false => (find_iptables.to_string(), sys_time, ""),
    };
    format!(
        "echo os=$(uname -s); echo arch=$(uname -m); echo uid=$(id -u); {sudo_check}\
         for t in sha256sum setsid; do \
           if command -v $t >/dev/null 2>&1; then echo has_$t=yes; else echo has_$t=no; fi; done; \
         if {find_iptables} 2>/dev/null; then echo has_iptables=yes; else echo has_iptables=no; fi; \
         if [ -e {} ]; then echo libfaketime=yes; else echo libfaketime=no; fi; \
         if [ -c /dev/fuse ]; then echo fuse=yes; else echo fuse=no; fi; {sys_time}",
        quote(libfaketime)
    )
}

/// Installs Debian `packages` with the host's apt-get (run as root):
/// refreshes the package lists first; fails, saying so, on a host with no
/// apt-get.
pub fn apt_install(packages: &[&str]) -> String {
    assert!(!packages.is_empty(), "something to install");
    let mut install = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends", "--"];
    install.extend_from_slice(packages);
    format!(
        "command -v apt-get >/dev/null 2>&1 || {{ echo 'no apt-get on this host: install '{} 'by hand' >&2; exit 1; }}; \
         export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && {}",
        quote(&packages.join(" ")),
        command(&install)
    )
}

/// Prints the SHA-256 of `path`, or nothing if it does not exist.
pub fn sha256_of(path: &str) -> String {
    format!("if [ -f {p} ]; then sha256sum -- {p} | cut -d' ' -f1; fi", p = quote(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_sit_under_the_labelled_root() {
        let p = NodePaths::new("c1-0", "n1");
        assert_eq!(p.data_dir, "/tmp/dynamo-workbench/c1-0/n1/data");
        assert_eq!(p.pid, "/tmp/dynamo-workbench/c1-0/n1.pid");
        assert_eq!(binary_path("dynamo-node"), "/tmp/dynamo-workbench/bin/dynamo-node");
    }

    #[test]
    #[should_panic(expected = "not a plain name")]
    fn a_run_name_cannot_climb_out() {
        let _ = NodePaths::new("..", "n1");
    }

    #[test]
    fn hostile_flags_stay_single_arguments() {
        let p = NodePaths::new("r", "n1");
        let argv = vec!["/tmp/dynamo-workbench/bin/dynamo-node".to_string(), "--x".into(), "$(reboot); `id`".into()];
        let line = start_node(&p, &[("FAKETIME_NO_CACHE".into(), "1".into())], &argv);
        assert!(line.contains("'$(reboot); `id`'"), "{line}");
    }

    /// A start's clean spares a kept run directory; `workbench clean` does not.
    #[test]
    fn clean_spares_kept_runs_only_when_asked() {
        let kept = clean(true);
        assert!(kept.contains("[ -e \"$d\".kept ] && continue"), "{kept}");
        assert!(!clean(false).contains(KEPT_MARKER), "{}", clean(false));
    }

    /// The scripts are valid sh (parsed, not run: `sh -n`).
    #[test]
    fn every_script_parses() {
        let p = NodePaths::new("r", "n1");
        let scripts = [
            start_node(&p, &[], &["/bin/true".to_string()]),
            signal_node(&p, "STOP"),
            kill_process(&p.pid),
            start_proxy(&p, &["/bin/true".to_string()]),
            mount_lazyfs(&p),
            unmount_lazyfs(&p),
            lazyfs_ctl(&p, "lose-unsynced"),
            node_running(&p),
            write_faketime(&p, "+5s"),
            install_chain(),
            drop_from("10.0.0.2".parse().unwrap()),
            flush_chain(),
            clean(true),
            clean(false),
            mark_kept("/tmp/dynamo-workbench/r"),
            probe("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1", false),
            probe("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1", true),
            hand_over("dwb"),
            apt_install(&["iptables", "libfaketime"]),
            as_root(&clean(true)),
            sha256_of("/tmp/dynamo-workbench/bin/dynamo-node"),
        ];
        for script in scripts {
            let status = std::process::Command::new("sh").args(["-n", "-c", &script]).status().unwrap();
            assert!(status.success(), "{script}");
        }
    }
}
