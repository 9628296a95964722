//! Before any node starts: every host is checked, then given the binaries.
//!
//! [`check_host`] asks a host, in one command, for its OS, architecture,
//! user id and tools, and refuses it unless it is Linux on this machine's
//! architecture (the binaries are ours, not cross-compiled), logged in as
//! root or, with sudo on for the host, able to run `sudo -n true` (no
//! password: nothing can type one; iptables needs root) and has `iptables`,
//! `sha256sum`, `setsid` and libfaketime at [`crate::LIBFAKETIME`]. Every
//! refusal names the host and what is missing, and the caller refuses the
//! whole cluster before any node starts. With `--ssh-install`, a host that
//! lacks tools (and has root, or sudo) gets their Debian packages from its
//! own `apt-get` first ([`remote::apt_install`]), and is asked again.
//!
//! [`upload`] sends a local binary to [`super::remote::binary_path`] unless
//! the host already has the same bytes there: the local file's SHA-256 is
//! compared with the host's `sha256sum`, so a campaign of many runs
//! uploads each binary once per host, and a rebuilt binary is sent again.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::client::SshClient;
use super::error::SshError;
use super::remote;

/// The deadline of the probe.
const PROBE_TIMEOUT_MS: u64 = 20_000;
/// The deadline of one upload (a release `dynamo-node` is tens of MiB).
const UPLOAD_TIMEOUT_MS: u64 = 300_000;
/// The deadline of installing what a host lacks (`apt-get update` and `install`).
const INSTALL_TIMEOUT_MS: u64 = 600_000;

/// Each tool a host may lack, and the Debian package that brings it.
const PACKAGES: [(&str, &str); 4] =
    [("iptables", "iptables"), ("sha256sum", "coreutils"), ("setsid", "util-linux"), ("libfaketime", "libfaketime")];

/// Why a host cannot run nodes, or could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The host could not be reached or asked.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The host answered, and lacks something.
    #[error("{host}: {why}")]
    Unfit {
        /// The host.
        host: String,
        /// What it lacks.
        why: String,
    },
}

/// What a run needs of its hosts beyond running nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostNeeds {
    /// Mounting the lazy filesystem (a run that cuts power).
    pub fuse: bool,
    /// Setting the real clock (`--ssh-real-clock` in a run with clock faults).
    pub sys_time: bool,
}

/// Checks that the host can run our nodes and take every fault (see the
/// module docs), and what `needs` asks besides; with `install`, installs
/// the tools it lacks first.
pub async fn check_host(client: &SshClient, needs: HostNeeds, install: bool) -> Result<(), Refusal> {
    let host = client.host();
    let mut facts = probe(client).await?;
    let missing = missing_tools(&facts);
    if install && !missing.is_empty() && has_root(&facts) {
        install_packages(client, &missing).await?;
        facts = probe(client).await?;
    }
    let why = unfit_reason(&facts, host.sudo)
        .or_else(|| needs.fuse.then(|| no_fuse_reason(&facts)).flatten())
        .or_else(|| (needs.sys_time && facts.get("sys_time").is_none_or(|v| v != "yes")).then(no_sys_time_reason));
    why.map_or(Ok(()), |why| Err(Refusal::Unfit { host: host.label(), why }))
}

/// The host's facts (see [`remote::probe`]).
async fn probe(client: &SshClient) -> Result<BTreeMap<String, String>, Refusal> {
    let script = remote::probe(crate::LIBFAKETIME, client.host().uses_sudo());
    Ok(parse_facts(&client.run_script(&script, PROBE_TIMEOUT_MS).await?.stdout))
}

/// Whether the login can act as root: it is root, or `sudo -n` works.
fn has_root(facts: &BTreeMap<String, String>) -> bool {
    facts.get("uid").is_some_and(|u| u == "0") || facts.get("sudo").is_some_and(|s| s == "yes")
}

/// The tools the host lacks, by the names [`PACKAGES`] gives them.
fn missing_tools(facts: &BTreeMap<String, String>) -> Vec<&'static str> {
    PACKAGES
        .iter()
        .map(|(tool, _)| *tool)
        .filter(|tool| {
            let key = if *tool == "libfaketime" { tool.to_string() } else { format!("has_{tool}") };
            facts.get(&key).is_none_or(|v| v != "yes")
        })
        .collect()
}

/// The Debian packages that bring `tools`.
fn packages_for(tools: &[&str]) -> Vec<&'static str> {
    PACKAGES.iter().filter(|(tool, _)| tools.contains(tool)).map(|(_, package)| *package).collect()
}

/// Installs the packages of `tools` with the host's apt-get, as root; a
/// failure refuses the host with apt's own words.
async fn install_packages(client: &SshClient, tools: &[&str]) -> Result<(), Refusal> {
    let packages = packages_for(tools);
    tracing::info!(host = %client.host(), ?packages, "installing what the host lacks (--ssh-install)");
    client.run_as_root(&remote::apt_install(&packages), INSTALL_TIMEOUT_MS).await.map_err(|e| Refusal::Unfit {
        host: client.host().label(),
        why: format!("lacks {}, and --ssh-install could not install {}: {e}", tools.join(", "), packages.join(" ")),
    })?;
    eprintln!("{}: installed {} (--ssh-install)", client.host().label(), packages.join(" "));
    Ok(())
}

/// Why a host whose root may not set the clock is refused `--ssh-real-clock`.
fn no_sys_time_reason() -> String {
    "cannot set its clock: root lacks CAP_SYS_TIME (a container shares its host's clock; \
     --ssh-real-clock is for disposable VMs)"
        .to_string()
}

/// Why a host with these facts cannot mount the lazy filesystem under its
/// nodes (power loss); None when it can.
fn no_fuse_reason(facts: &BTreeMap<String, String>) -> Option<String> {
    let fact = |k: &str| facts.get(k).map(String::as_str).unwrap_or("?");
    if fact("fuse") != "yes" {
        return Some("has no /dev/fuse: power-loss mounts a lazy filesystem under each node (modprobe fuse)".into());
    }
    if fact("uid") != "0" {
        return Some(format!(
            "logs in as uid {}: power-loss mounts a lazy filesystem under each node, which needs a root login",
            fact("uid")
        ));
    }
    None
}

/// `key=value` lines into a map (other lines ignored).
fn parse_facts(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Why a host with these facts cannot run nodes (`sudo`: whether the host
/// may use sudo); None when it can.
fn unfit_reason(facts: &BTreeMap<String, String>, sudo: bool) -> Option<String> {
    let fact = |k: &str| facts.get(k).map(String::as_str).unwrap_or("?");
    if fact("os") != "Linux" {
        return Some(format!("runs {}, not Linux", fact("os")));
    }
    if fact("arch") != std::env::consts::ARCH {
        return Some(format!("is {}, but the binaries are {}", fact("arch"), std::env::consts::ARCH));
    }
    if fact("uid") != "0" && !sudo {
        return Some(format!(
            "logs in as uid {}, not root, and sudo is off: iptables needs root (--ssh-sudo, or sudo = true in [ssh])",
            fact("uid")
        ));
    }
    if fact("uid") != "0" && fact("sudo") != "yes" {
        return Some(format!(
            "no sudo where it is needed: `sudo -n true` fails for uid {} (iptables needs root; \
             give the user passwordless sudo)",
            fact("uid")
        ));
    }
    let missing = missing_tools(facts);
    (!missing.is_empty()).then(|| {
        format!(
            "lacks {} (on Debian: apt-get install {}; or pass --ssh-install)",
            missing.join(", "),
            packages_for(&missing).join(" ")
        )
    })
}

/// The SHA-256 of a local file, hex.
pub fn local_sha256(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Sends `local` to the host as `remote::binary_path(name)` unless the host
/// already has it (same SHA-256); returns whether it was sent.
pub async fn upload(client: &SshClient, local: &Path, name: &str) -> Result<bool, Refusal> {
    let unreadable = |e: std::io::Error| Refusal::Unfit {
        host: client.host().label(),
        why: format!("cannot read {} to upload it: {e}", local.display()),
    };
    let bytes = std::fs::read(local).map_err(unreadable)?;
    let want = hex::encode(Sha256::digest(&bytes));
    let target = remote::binary_path(name);
    let have = client.run_script(&remote::sha256_of(&target), PROBE_TIMEOUT_MS).await?.stdout;
    if have.trim() == want {
        tracing::info!(host = %client.host(), binary = name, "already on the host (same sha256)");
        return Ok(false);
    }
    client.run(&["mkdir", "-p", "--", &format!("{}/bin", remote::REMOTE_ROOT)], PROBE_TIMEOUT_MS).await?;
    client.upload(&bytes, &target, "0755", UPLOAD_TIMEOUT_MS).await?;
    tracing::info!(host = %client.host(), binary = name, bytes = bytes.len(), "uploaded");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(text: &str) -> BTreeMap<String, String> {
        parse_facts(text)
    }

    fn fit() -> String {
        format!(
            "os=Linux\narch={}\nuid=0\nhas_iptables=yes\nhas_sha256sum=yes\nhas_setsid=yes\nlibfaketime=yes\n",
            std::env::consts::ARCH
        )
    }

    #[test]
    fn a_fit_host_passes() {
        assert_eq!(unfit_reason(&facts(&fit()), false), None);
        let with_sudo = fit().replace("uid=0", "uid=1000\nsudo=yes");
        assert_eq!(unfit_reason(&facts(&with_sudo), true), None);
    }

    #[test]
    fn a_user_without_sudo_is_refused() {
        let no_sudo = fit().replace("uid=0", "uid=1000\nsudo=no");
        let why = unfit_reason(&facts(&no_sudo), true).unwrap();
        assert!(why.contains("no sudo where it is needed"), "{why}");
        let why = unfit_reason(&facts(&fit().replace("uid=0", "uid=1000")), false).unwrap();
        assert!(why.contains("sudo is off"), "{why}");
    }

    #[test]
    fn what_is_missing_maps_to_its_packages() {
        let lacking = fit().replace("has_iptables=yes", "has_iptables=no").replace("libfaketime=yes", "");
        let missing = missing_tools(&facts(&lacking));
        assert_eq!(missing, ["iptables", "libfaketime"]);
        assert_eq!(packages_for(&missing), ["iptables", "libfaketime"]);
        assert!(unfit_reason(&facts(&lacking), false).unwrap().contains("--ssh-install"));
        assert!(missing_tools(&facts(&fit())).is_empty());
        assert!(has_root(&facts(&fit())) && !has_root(&facts(&fit().replace("uid=0", "uid=5\nsudo=no"))));
    }

    #[test]
    fn power_loss_needs_fuse_and_a_root_login() {
        assert_eq!(no_fuse_reason(&facts(&format!("{}fuse=yes\n", fit()))), None);
        assert!(no_fuse_reason(&facts(&fit())).unwrap().contains("/dev/fuse"));
        let as_user = format!("{}fuse=yes\n", fit()).replace("uid=0", "uid=1000");
        assert!(no_fuse_reason(&facts(&as_user)).unwrap().contains("root login"));
    }

    #[test]
    fn each_lack_is_named() {
        let cases = [
            ("os=Linux", "os=Darwin", "not Linux"),
            ("uid=0", "uid=1000", "not root"),
            ("has_iptables=yes", "has_iptables=no", "lacks iptables"),
            ("libfaketime=yes", "libfaketime=no", "lacks libfaketime"),
        ];
        for (from, to, said) in cases {
            let why = unfit_reason(&facts(&fit().replace(from, to)), false).expect(to);
            assert!(why.contains(said), "{why}");
        }
        let other_arch = fit().replace(&format!("arch={}", std::env::consts::ARCH), "arch=riscv64");
        assert!(unfit_reason(&facts(&other_arch), false).unwrap().contains("riscv64"));
    }
}
