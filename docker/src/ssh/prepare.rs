//! Before any node starts: every host is checked, then given the binaries.
//!
//! [`check_host`] asks a host, in one command, for its OS, architecture,
//! user id and tools, and refuses it unless it is Linux on this machine's
//! architecture (the binaries are ours, not cross-compiled), logged in as
//! root or, with sudo on for the host, able to run `sudo -n true` (no
//! password: nothing can type one; iptables needs root) and has `iptables`,
//! `sha256sum`, `setsid` and libfaketime at [`crate::LIBFAKETIME`]. Every
//! refusal names the host and what is missing, and the caller refuses the
//! whole cluster before any node starts.
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

/// Checks that the host can run our nodes and take every fault (see the module docs).
pub async fn check_host(client: &SshClient) -> Result<(), Refusal> {
    let host = client.host();
    let out = client.run_script(&remote::probe(crate::LIBFAKETIME, host.uses_sudo()), PROBE_TIMEOUT_MS).await?;
    let facts = parse_facts(&out.stdout);
    unfit_reason(&facts, host.sudo).map_or(Ok(()), |why| Err(Refusal::Unfit { host: host.label(), why }))
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
    let missing: Vec<&str> = ["iptables", "sha256sum", "setsid"]
        .into_iter()
        .filter(|t| fact(&format!("has_{t}")) != "yes")
        .chain((fact("libfaketime") != "yes").then_some("libfaketime"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!("lacks {} (on Debian: apt-get install iptables coreutils util-linux libfaketime)", missing.join(", "))
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
