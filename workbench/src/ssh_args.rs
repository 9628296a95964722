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
//! run; `--ssh-install` installs what a host lacks with its apt-get instead
//! of refusing it; `--ssh-real-clock` (dangerous: disposable VMs only) has
//! clock faults move the hosts' real clocks instead of libfaketime's. [`SshArgs::config`] checks all of it (names, key files) before
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
    /// Install what a host lacks (iptables, libfaketime, coreutils, util-linux) with its apt-get
    /// (as root, or through sudo) before refusing it.
    #[arg(long)]
    pub ssh_install: bool,
    /// DANGEROUS, for disposable VMs only: clock faults move each host's real clock with
    /// `date -s` (NTP stopped for the run, clock and NTP restored at the end) instead of
    /// libfaketime. A host whose root may not set the clock (a container) is refused.
    #[arg(long)]
    pub ssh_real_clock: bool,
    /// Leave the nodes' data directories on the hosts at the end of each run (where is printed
    /// and recorded in run.json as kept_data); `clean` then spares them too.
    #[arg(long)]
    pub keep_data: bool,
    /// The `[ssh]` table of the campaign's `--config` file, if it has one.
    #[arg(skip)]
    pub table: Option<SshTable>,
    /// The file that table came from.
    #[arg(skip)]
    pub table_file: Option<PathBuf>,
}

impl SshArgs {
    /// These flags with the `[ssh]` table of the TOML file at `config`, if any.
    pub fn with_table(mut self, config: Option<&Path>) -> Result<SshArgs> {
        if let Some(path) = config {
            self.table = crate::ssh_table::load(path).map_err(|e| anyhow!(e))?;
            self.table_file = self.table.as_ref().map(|_| path.to_path_buf());
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
        Ok(SshConfig {
            hosts,
            options: Arc::new(options),
            node_binary,
            keep_data: self.keep_data,
            install: self.ssh_install,
            real_clock: self.ssh_real_clock,
        })
    }

    /// The flags that run on the same hosts again, for a run's replay
    /// command: every host as `user@address:port` with the key (its path,
    /// never its contents) and sudo, then the known_hosts file, the connect
    /// deadline, `--ssh-accept-new` and `--keep-data` as given. Hosts whose
    /// keys or sudo differ (only an `[ssh]` table says that) are named by
    /// that table's file instead (`--config`, whose other flags the
    /// replay's own override), with the SSH flags that were given.
    pub fn replay_flags(&self) -> Result<Vec<String>> {
        let hosts = self.hosts()?;
        let first = hosts.first().context("--backend ssh with no host")?;
        let uniform = hosts.iter().all(|h| h.key == first.key && h.sudo == first.sudo);
        let mut out = Vec::new();
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                out.push(format!("--{name}"));
                out.push(value);
            }
        };
        let by_table = self.table_file.as_ref().filter(|_| !uniform);
        match by_table {
            Some(file) => {
                flag("config", Some(absolute(file)));
                flag("ssh-user", self.ssh_user.clone());
                flag("ssh-port", self.ssh_port.map(|p| p.to_string()));
                flag("ssh-key", self.ssh_key.as_deref().map(absolute));
            }
            None => {
                flag("hosts", Some(hosts.iter().map(SshHost::label).collect::<Vec<_>>().join(",")));
                flag("ssh-key", Some(absolute(&first.key)));
            }
        }
        let known_hosts = self.ssh_known_hosts.clone().or_else(default_known_hosts);
        flag("ssh-known-hosts", known_hosts.as_deref().map(absolute));
        flag("ssh-connect-timeout-ms", Some(self.ssh_connect_timeout_ms.to_string()));
        let switches = [
            ("--ssh-sudo", if by_table.is_some() { self.ssh_sudo } else { first.sudo }),
            ("--ssh-accept-new", self.ssh_accept_new),
            ("--ssh-install", self.ssh_install),
            ("--ssh-real-clock", self.ssh_real_clock),
            ("--keep-data", self.keep_data),
        ];
        out.extend(switches.into_iter().filter(|(_, on)| *on).map(|(name, _)| name.to_string()));
        Ok(out)
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

/// `path` from the root, so a replay run elsewhere finds the same file.
fn absolute(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
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

    /// The replay's flags, parsed again, name the same hosts with the same
    /// keys and sudo, and carry paths only.
    #[test]
    fn the_replay_flags_name_the_same_hosts() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            ssh: SshArgs,
        }
        let args = SshArgs {
            hosts: Some("dwb@10.0.0.2:2222,10.0.0.3,[fd00::4]".into()),
            ssh_user: Some("ops".into()),
            ssh_key: Some("/keys/lab".into()),
            ssh_sudo: true,
            ssh_known_hosts: Some("/keys/known_hosts".into()),
            ssh_connect_timeout_ms: 5_000,
            keep_data: true,
            ..Default::default()
        };
        let flags = args.replay_flags().unwrap();
        let joined = flags.join(" ");
        assert!(joined.starts_with("--hosts dwb@10.0.0.2:2222,ops@10.0.0.3:22,ops@[fd00::4]:22 --ssh-key /keys/lab"));
        for expected in
            ["--ssh-known-hosts /keys/known_hosts", "--ssh-connect-timeout-ms 5000", "--ssh-sudo", "--keep-data"]
        {
            assert!(joined.contains(expected), "{expected:?} missing from {joined}");
        }
        let again = Cli::parse_from(std::iter::once("x".to_string()).chain(flags)).ssh;
        assert_eq!(again.hosts().unwrap(), args.hosts().unwrap());
        assert_eq!((again.ssh_known_hosts, again.keep_data), (args.ssh_known_hosts, true));
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
