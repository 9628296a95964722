//! Host key checking: a host's key must be the one known_hosts holds.
//!
//! SSH authenticates the server by its host key; a client that accepts any
//! key talks to whoever answers on the address. So the key a host offers
//! is checked against a known_hosts file (`~/.ssh/known_hosts`, or
//! `--ssh-known-hosts`), in OpenSSH's format, hashed entries included:
//!
//! - [`HostKeyPolicy::Strict`] (the default): an unknown host is refused,
//!   naming the fingerprint to verify and the flag that pins it;
//! - [`HostKeyPolicy::AcceptNew`] (`--ssh-accept-new`, OpenSSH's
//!   `StrictHostKeyChecking=accept-new`): a host with no key at all in the
//!   file has the offered one appended (trust on first use), and is checked
//!   against it from then on.
//!
//! Under both, a key that differs from the recorded one is refused, as is
//! a host recorded with keys of other algorithms only. There is no policy
//! that turns checking off. Messages carry the key's SHA-256 fingerprint,
//! never the key, and the client's own key never appears anywhere.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use russh::keys::known_hosts::{check_known_hosts_path, known_host_keys_path, learn_known_hosts_path};
use russh::keys::{HashAlg, PublicKey};

use super::host::SshHost;

/// What to do with a host whose key the known_hosts file does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse it.
    Strict,
    /// Pin its key (append it to the file) when the file holds no key for it.
    AcceptNew,
}

/// Serialises appends to known_hosts files: hosts connect concurrently.
static PIN_LOCK: Mutex<()> = Mutex::new(());

/// `~/.ssh/known_hosts`, OpenSSH's default.
pub fn default_known_hosts() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".ssh").join("known_hosts"))
}

/// The key's SHA-256 fingerprint, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Whether `host` may be trusted with `key`: `Ok(())`, or why not.
pub fn check(host: &SshHost, key: &PublicKey, known_hosts: &Path, policy: HostKeyPolicy) -> Result<(), String> {
    let fp = fingerprint(key);
    let file = known_hosts.display();
    match check_known_hosts_path(&host.address, host.port, key, known_hosts) {
        Ok(true) => Ok(()),
        Err(russh::keys::Error::KeyChanged { line }) => Err(format!(
            "its {} key {fp} differs from the one at {file} line {line}: possible impostor; remove that line only \
             if the host was really reinstalled",
            key.algorithm()
        )),
        Err(e) => Err(format!("cannot read {file}: {e}")),
        Ok(false) => unknown(host, key, known_hosts, policy),
    }
}

/// A host whose offered key the file does not hold.
fn unknown(host: &SshHost, key: &PublicKey, known_hosts: &Path, policy: HostKeyPolicy) -> Result<(), String> {
    let fp = fingerprint(key);
    let file = known_hosts.display();
    let _guard = PIN_LOCK.lock().expect("the pin lock is never poisoned");
    let recorded =
        known_host_keys_path(&host.address, host.port, known_hosts).map_err(|e| format!("cannot read {file}: {e}"))?;
    if !recorded.is_empty() {
        return Err(format!(
            "{file} holds keys of other algorithms for it (lines {:?}), not its {} key {fp}",
            recorded.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
            key.algorithm()
        ));
    }
    match policy {
        HostKeyPolicy::Strict => Err(format!(
            "it is not in {file}; verify its key {fp} and add it (ssh-keyscan), or pass --ssh-accept-new to pin it"
        )),
        HostKeyPolicy::AcceptNew => {
            learn_known_hosts_path(&host.address, host.port, key, known_hosts)
                .map_err(|e| format!("cannot pin its key in {file}: {e}"))?;
            tracing::warn!(host = %host, fingerprint = %fp, file = %file, "pinned an unknown host key (--ssh-accept-new)");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINuc8q5LmV70jAaGpxrCHTfVn2MzEGM8ax49PRPWbYiA";
    const KEY_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB034KvgMR50cpuWG91uNdr2FTrgieH7/YJe75nVNlMZ";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).expect("a valid test key")
    }

    fn host() -> SshHost {
        SshHost { user: "root".into(), address: "10.9.0.2".into(), port: 2222, key: "/k".into(), sudo: false }
    }

    #[test]
    fn strict_refuses_an_unknown_host_and_names_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let err = check(&host(), &key(KEY_A), &file, HostKeyPolicy::Strict).unwrap_err();
        assert!(err.contains("--ssh-accept-new") && err.contains("SHA256:"), "{err}");
        assert!(!file.exists(), "strict checking writes nothing");
    }

    #[test]
    fn accept_new_pins_then_refuses_a_changed_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        check(&host(), &key(KEY_A), &file, HostKeyPolicy::AcceptNew).unwrap();
        let pinned = std::fs::read_to_string(&file).unwrap();
        assert!(pinned.trim_start().starts_with("[10.9.0.2]:2222 ssh-ed25519 "), "{pinned}");
        check(&host(), &key(KEY_A), &file, HostKeyPolicy::Strict).unwrap();
        let err = check(&host(), &key(KEY_B), &file, HostKeyPolicy::AcceptNew).unwrap_err();
        // russh starts a new file with an empty line: the key is on line 2.
        assert!(err.contains("differs") && err.contains("known_hosts line 2"), "{err}");
    }
}
