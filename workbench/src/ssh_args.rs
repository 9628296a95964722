//! The flags of `--backend ssh`, shared by `campaign` and `clean`.
//!
//! `--hosts` names the machines (`[user@]host[:port]`, comma-separated;
//! `--ssh-user` and `--ssh-port` fill in what a host leaves out), `--ssh-key`
//! the private key (default `~/.ssh/id_ed25519`), `--ssh-sudo` has a login
//! other than root run root's commands through `sudo -n`,
//! `--ssh-known-hosts` the file host keys are checked against (default
//! `~/.ssh/known_hosts`), and `--ssh-accept-new` pins the key of a host
//! that file does not know yet. A campaign's TOML file may give the hosts
//! instead, each with its own user, port, key and sudo (the `[ssh]` table:
//! [`crate::ssh_table`]). Host key checking cannot be turned off.
//! `--keep-data` leaves the nodes' data directories on the hosts after each
//! run. [`SshArgs::config`] checks all of it (names, key files) before
//! anything connects, so bad input exits 2 with the host or file named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use docker::ssh::{default_known_hosts, parse_hosts, HostKeyPolicy, SshHost, SshOptions};
use docker::SshConfig;

use crate::ssh_table::{FlagDefaults, SshTable};

/// `--backend ssh` flags.
#[derive(Args, Debug, Clone, Default)]
pub struct SshArgs {
    /// SSH hosts for --backend ssh, comma-separated: host, user@host, host:port, user@[v6]:port.
    /// Node i runs on host i; hosts beyond --nodes take joining nodes.
    #[arg(long)]
    pub hosts: Option<String>,
    /// The login user of hosts that name none [default: root].
    #[arg(long)]
    pub ssh_user: Option<String>,
    /// The SSH port of hosts that name none [default: 22].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub ssh_port: Option<u16>,
    /// The private key (unencrypted); default: ~/.ssh/id_ed25519.
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// Run what needs root (iptables, cleaning other users' leftovers) as `sudo -n` when the
    /// login user is not root; a host where `sudo -n true` fails is refused.
    #[arg(long)]
    pub ssh_sudo: bool,
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
    /// The `[ssh]` table of the campaign's `--config` file, if it has one.
    #[arg(skip)]
    pub table: Option<SshTable>,
}

impl SshArgs {
    /// These flags with the `[ssh]` table of the TOML file at `config`, if any.
    pub fn with_table(mut self, config: Option<&Path>) -> Result<SshArgs> {
        if let Some(path) = config {
            self.table = crate::ssh_table::load(path).map_err(|e| anyhow!(e))?;
        }
        Ok(self)
    }

    /// The SSH cluster configuration these flags describe, checked;
    /// `node_binary` is the local `dynamo-node` to upload.
    pub fn config(&self, node_binary: PathBuf) -> Result<SshConfig> {
        let hosts = self.hosts()?;
        for host in &hosts {
            if !host.key.is_file() {
                bail!("{host}: its SSH key {} is no such file (--ssh-key, or key in [ssh])", host.key.display());
            }
        }
        let known_hosts = match &self.ssh_known_hosts {
            Some(path) => path.clone(),
            None => default_known_hosts().context("no HOME to find ~/.ssh/known_hosts in: pass --ssh-known-hosts")?,
        };
        let policy = if self.ssh_accept_new { HostKeyPolicy::AcceptNew } else { HostKeyPolicy::Strict };
        let options =
            SshOptions::new(&hosts, known_hosts, policy, self.ssh_connect_timeout_ms).map_err(|e| anyhow!(e))?;
        Ok(SshConfig { hosts, options: Arc::new(options), node_binary, keep_data: self.keep_data })
    }

    /// The hosts: `--hosts`, else the `[ssh]` table's, each with its defaults filled in.
    fn hosts(&self) -> Result<Vec<SshHost>> {
        let table = self.table.clone().unwrap_or_default();
        let flags = FlagDefaults {
            user: self.ssh_user.clone(),
            port: self.ssh_port,
            key: self.ssh_key.clone(),
            sudo: self.ssh_sudo,
        };
        let defaults = table.defaults(&flags, default_key);
        match (&self.hosts, table.hosts.is_empty()) {
            (Some(list), _) => parse_hosts(list, &defaults).map_err(|e| anyhow!("--hosts: {e}")),
            (None, false) => table.hosts(&defaults).map_err(|e| anyhow!(e)),
            (None, true) => bail!("--backend ssh needs --hosts h1,h2,... (or hosts in the [ssh] table of --config)"),
        }
    }
}

/// `~/.ssh/id_ed25519` (relative, and so refused as missing, without a HOME).
fn default_key() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".ssh/id_ed25519")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_key_are_checked_before_anything_connects() {
        let args = SshArgs::default();
        let err = args.config("/bin/true".into()).unwrap_err().to_string();
        assert!(err.contains("--hosts"), "{err}");
        let args = SshArgs { hosts: Some("h1,-oProxyCommand=x".into()), ..args };
        let err = args.config("/bin/true".into()).unwrap_err().to_string();
        assert!(err.contains("-oProxyCommand=x"), "{err}");
        let args = SshArgs { hosts: Some("h1".into()), ssh_key: Some("/nonexistent/key".into()), ..args };
        let err = args.config("/bin/true".into()).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/key") && err.contains("root@h1:22"), "{err}");
    }

    #[test]
    fn a_table_host_without_its_key_is_refused_by_name() {
        let text = "[ssh]\nkey = \"/nonexistent/lab\"\nhosts = [{ address = \"db1\", user = \"ops\" }]\n";
        let mut file: toml::Table = text.parse().unwrap();
        let table = serde::Deserialize::deserialize(file.remove("ssh").unwrap()).unwrap();
        let args = SshArgs { table: Some(table), ..Default::default() };
        let err = args.config("/bin/true".into()).unwrap_err().to_string();
        assert!(err.contains("ops@db1:22") && err.contains("/nonexistent/lab"), "{err}");
    }
}
