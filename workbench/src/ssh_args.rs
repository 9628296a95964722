//! The flags of `--backend ssh`, shared by `campaign` and `clean`.
//!
//! `--hosts` names the machines (`[user@]host[:port]`, comma-separated;
//! `--ssh-user` and `--ssh-port` fill in what a host leaves out), `--ssh-key`
//! the private key (default `~/.ssh/id_ed25519`), `--ssh-known-hosts` the
//! file host keys are checked against (default `~/.ssh/known_hosts`), and
//! `--ssh-accept-new` pins the key of a host that file does not know yet.
//! Host key checking cannot be turned off. `--keep-data` leaves the nodes'
//! data directories on the hosts after each run. [`SshArgs::config`] checks all
//! of it (names, key file) before anything connects, so bad input exits 2
//! with the host or file named.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use docker::ssh::{default_known_hosts, parse_hosts, HostDefaults, HostKeyPolicy, SshOptions};
use docker::SshConfig;

/// `--backend ssh` flags.
#[derive(Args, Debug, Clone, Default)]
pub struct SshArgs {
    /// SSH hosts for --backend ssh, comma-separated: host, user@host, host:port, user@[v6]:port.
    /// Node i runs on host i; hosts beyond --nodes take joining nodes.
    #[arg(long)]
    pub hosts: Option<String>,
    /// The login user of hosts that name none (root: iptables needs it).
    #[arg(long, default_value = "root")]
    pub ssh_user: String,
    /// The SSH port of hosts that name none.
    #[arg(long, default_value_t = 22)]
    pub ssh_port: u16,
    /// The private key (unencrypted); default: ~/.ssh/id_ed25519.
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// The known_hosts file host keys are checked against; default: ~/.ssh/known_hosts.
    #[arg(long)]
    pub ssh_known_hosts: Option<PathBuf>,
    /// Pin the key of a host the known_hosts file does not know yet (trust on first use);
    /// a changed key is still refused.
    #[arg(long)]
    pub ssh_accept_new: bool,
    /// The deadline of connecting to a host (TCP, handshake, authentication), ms.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ssh_connect_timeout_ms: u64,
    /// Leave the nodes' data directories on the hosts at the end of each run (where is printed
    /// and recorded in run.json as kept_data); `clean` then spares them too.
    #[arg(long)]
    pub keep_data: bool,
}

impl SshArgs {
    /// The SSH cluster configuration these flags describe, checked;
    /// `node_binary` is the local `dynamo-node` to upload.
    pub fn config(&self, node_binary: PathBuf) -> Result<SshConfig> {
        let list = self.hosts.as_deref().context("--backend ssh needs --hosts h1,h2,...")?;
        let defaults = HostDefaults { user: self.ssh_user.clone(), port: self.ssh_port };
        let hosts = parse_hosts(list, &defaults).map_err(|e| anyhow!("--hosts: {e}"))?;
        let key = match &self.ssh_key {
            Some(key) => key.clone(),
            None => home().context("no HOME to find ~/.ssh/id_ed25519 in: pass --ssh-key")?.join(".ssh/id_ed25519"),
        };
        if !key.is_file() {
            bail!("--ssh-key {}: no such file", key.display());
        }
        let known_hosts = match &self.ssh_known_hosts {
            Some(path) => path.clone(),
            None => default_known_hosts().context("no HOME to find ~/.ssh/known_hosts in: pass --ssh-known-hosts")?,
        };
        let policy = if self.ssh_accept_new { HostKeyPolicy::AcceptNew } else { HostKeyPolicy::Strict };
        let options = SshOptions::new(key, known_hosts, policy, self.ssh_connect_timeout_ms).map_err(|e| anyhow!(e))?;
        Ok(SshConfig { hosts, options: Arc::new(options), node_binary, keep_data: self.keep_data })
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_key_are_checked_before_anything_connects() {
        let args = SshArgs { ssh_user: "root".into(), ssh_port: 22, ..Default::default() };
        let err = args.config("/bin/true".into()).unwrap_err().to_string();
        assert!(err.contains("--hosts"), "{err}");
        let args = SshArgs { hosts: Some("h1,-oProxyCommand=x".into()), ..args };
        let err = args.config("/bin/true".into()).unwrap_err().to_string();
        assert!(err.contains("-oProxyCommand=x"), "{err}");
        let args = SshArgs { hosts: Some("h1".into()), ssh_key: Some("/nonexistent/key".into()), ..args };
        let err = args.config("/bin/true".into()).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/key"), "{err}");
    }
}
