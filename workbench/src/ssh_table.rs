//! The `[ssh]` table of a campaign's TOML file (`--config`).
//!
//! `--hosts` can say who logs in where (`user@host:port`), but not which
//! key each host takes or which hosts need sudo: a fleet of VMs made by
//! different hands differs in exactly that. So the campaign's TOML file may
//! hold the hosts as a table:
//!
//! ```toml
//! [ssh]
//! user = "admin"          # defaults for every host below
//! key = "~/.ssh/lab"      # (a path; `~/` is the home directory)
//! port = 22
//! sudo = true
//! hosts = [
//!   { address = "10.0.0.11" },
//!   { address = "10.0.0.12", user = "root", sudo = false, key = "/keys/db2" },
//! ]
//! ```
//!
//! What decides a host's user, port, key and sudo, first found wins: the
//! host's own entry, then the command line's `--ssh-user`, `--ssh-port`,
//! `--ssh-key`, `--ssh-sudo`, then the table's defaults, then root, 22,
//! `~/.ssh/id_ed25519` and no sudo. `--hosts` on the command line replaces
//! the table's hosts (flags override the file, as everywhere). Every entry
//! is checked here ([`SshTable::hosts`]) with the same rules as `--hosts`,
//! and a bad one is refused, naming the host, before anything connects.

use std::path::{Path, PathBuf};

use docker::ssh::{HostDefaults, SshHost};
use serde::Deserialize;

/// The TOML key of the table.
pub const TABLE: &str = "ssh";

/// The `[ssh]` table: defaults and hosts, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshTable {
    /// The hosts, in order (node `i` on host `i`), each a table read by [`HostEntry`].
    #[serde(default)]
    pub hosts: Vec<toml::Table>,
    /// The login user of hosts that name none.
    pub user: Option<String>,
    /// The private key file of hosts that name none.
    pub key: Option<PathBuf>,
    /// The SSH port of hosts that name none.
    pub port: Option<u16>,
    /// Whether hosts that say nothing run root's commands through sudo.
    pub sudo: Option<bool>,
}

/// One entry of `hosts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    /// An IP address or a DNS name.
    address: String,
    /// Its SSH port.
    port: Option<u16>,
    /// Its login user.
    user: Option<String>,
    /// Its private key file.
    key: Option<PathBuf>,
    /// Whether root's commands go through `sudo -n`.
    sudo: Option<bool>,
}

/// What the command line says about every host (`None`: not given).
#[derive(Debug, Clone, Default)]
pub struct FlagDefaults {
    /// `--ssh-user`.
    pub user: Option<String>,
    /// `--ssh-port`.
    pub port: Option<u16>,
    /// `--ssh-key`.
    pub key: Option<PathBuf>,
    /// `--ssh-sudo` (a switch: only ever says yes).
    pub sudo: bool,
}

/// Reads the `[ssh]` table of the TOML file at `path`; None when it has none.
pub fn load(path: &Path) -> Result<Option<SshTable>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut file: toml::Table = text.parse().map_err(|e| format!("{} is not valid TOML: {e}", path.display()))?;
    let Some(table) = file.remove(TABLE) else { return Ok(None) };
    SshTable::deserialize(table).map(Some).map_err(|e| format!("{}: [{TABLE}]: {e}", path.display()))
}

impl SshTable {
    /// The defaults of hosts: the command line's, else the table's, else
    /// root, 22, `default_key` and no sudo.
    pub fn defaults(&self, flags: &FlagDefaults, default_key: impl FnOnce() -> PathBuf) -> HostDefaults {
        let key = flags.key.clone().or_else(|| self.key.as_deref().map(expand_home));
        HostDefaults {
            user: flags.user.clone().or_else(|| self.user.clone()).unwrap_or_else(|| "root".into()),
            port: flags.port.or(self.port).unwrap_or(22),
            key: key.unwrap_or_else(default_key),
            sudo: flags.sudo || self.sudo.unwrap_or(false),
        }
    }

    /// The table's hosts, each entry over `defaults`, checked; an error
    /// names the entry's host (or its place when it has no address).
    pub fn hosts(&self, defaults: &HostDefaults) -> Result<Vec<SshHost>, String> {
        let hosts =
            self.hosts.iter().enumerate().map(|(i, entry)| host(i, entry, defaults)).collect::<Result<Vec<_>, _>>()?;
        docker::ssh::check_distinct(&hosts).map_err(|e| format!("[{TABLE}] hosts: {e}"))?;
        Ok(hosts)
    }
}

/// Entry `i` over `defaults`, checked.
fn host(i: usize, entry: &toml::Table, defaults: &HostDefaults) -> Result<SshHost, String> {
    let name = match entry.get("address").and_then(toml::Value::as_str) {
        Some(address) => format!("[{TABLE}] hosts[{i}] ({address})"),
        None => format!("[{TABLE}] hosts[{i}]"),
    };
    let e = HostEntry::deserialize(toml::Value::Table(entry.clone())).map_err(|e| format!("{name}: {e}"))?;
    let user = e.user.unwrap_or_else(|| defaults.user.clone());
    let port = e.port.unwrap_or(defaults.port);
    let key = e.key.as_deref().map(expand_home).unwrap_or_else(|| defaults.key.clone());
    let sudo = e.sudo.unwrap_or(defaults.sudo);
    SshHost::checked(user, e.address, port, key, sudo).map_err(|why| format!("{name}: {why}"))
}

/// `~/x` as `$HOME/x`; any other path as it is.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> SshTable {
        let mut file: toml::Table = text.parse().unwrap();
        SshTable::deserialize(file.remove(TABLE).unwrap()).unwrap()
    }

    const FLEET: &str = r#"
        [ssh]
        user = "admin"
        key = "/keys/lab"
        port = 2222
        sudo = true
        hosts = [
            { address = "10.0.0.11" },
            { address = "db2", user = "root", sudo = false, key = "/keys/db2", port = 22 },
        ]
    "#;

    #[test]
    fn a_host_s_own_entry_wins_then_the_flags_then_the_table() {
        let t = table(FLEET);
        let hosts = t.hosts(&t.defaults(&FlagDefaults::default(), || "/home/me/.ssh/id_ed25519".into())).unwrap();
        assert_eq!(hosts[0].label(), "admin@10.0.0.11:2222");
        assert_eq!((hosts[0].key.as_path(), hosts[0].sudo), (Path::new("/keys/lab"), true));
        assert_eq!(hosts[1].label(), "root@db2:22");
        assert_eq!((hosts[1].key.as_path(), hosts[1].sudo), (Path::new("/keys/db2"), false));
        let flags =
            FlagDefaults { user: Some("ops".into()), port: Some(2200), key: Some("/keys/flag".into()), sudo: false };
        let hosts = t.hosts(&t.defaults(&flags, || unreachable!("the table names a key"))).unwrap();
        assert_eq!(hosts[0].label(), "ops@10.0.0.11:2200");
        assert_eq!(hosts[0].key, Path::new("/keys/flag"));
        assert!(hosts[0].sudo, "no --ssh-sudo leaves the table's default");
        assert_eq!(hosts[1].label(), "root@db2:22", "the entry still wins over the flags");
    }

    #[test]
    fn without_table_or_flags_the_built_in_defaults_hold() {
        let d = SshTable::default().defaults(&FlagDefaults::default(), || "/home/me/.ssh/id_ed25519".into());
        assert_eq!((d.user.as_str(), d.port, d.sudo), ("root", 22, false));
        assert_eq!(d.key, Path::new("/home/me/.ssh/id_ed25519"));
        let d = SshTable::default().defaults(&FlagDefaults { sudo: true, ..Default::default() }, PathBuf::new);
        assert!(d.sudo);
    }

    #[test]
    fn bad_entries_are_refused_naming_the_host() {
        let cases = [
            (r#"{ address = "h1;reboot" }"#, "hosts[0] (h1;reboot)"),
            (r#"{ address = "h1", user = "$(id)" }"#, "hosts[0] (h1)"),
            (r#"{ address = "h1", port = 0 }"#, "hosts[0] (h1)"),
            (r#"{ address = "h1", port = "ssh" }"#, "hosts[0] (h1)"),
            (r#"{ address = "h1", sudo = "yes" }"#, "hosts[0] (h1)"),
            (r#"{ address = "h1", password = "x" }"#, "hosts[0] (h1)"),
            (r#"{ user = "root" }"#, "hosts[0]"),
        ];
        for (entry, named) in cases {
            let t = table(&format!("[ssh]\nhosts = [{entry}]\n"));
            let err = t.hosts(&t.defaults(&FlagDefaults::default(), PathBuf::new)).expect_err(entry);
            assert!(err.contains(named), "{entry}: {err}");
        }
        let t = table("[ssh]\nhosts = [{ address = \"h1\" }, { address = \"h1\" }]\n");
        let err = t.hosts(&t.defaults(&FlagDefaults::default(), PathBuf::new)).unwrap_err();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn an_unknown_default_is_refused_and_a_missing_table_is_none() {
        let dir = std::env::temp_dir().join(format!("wb-ssh-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "time-limit = 5\n[ssh]\nusr = \"admin\"\n").unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.contains("usr"), "{err}");
        std::fs::write(&path, "time-limit = 5\n").unwrap();
        assert!(load(&path).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
