//! The hosts of an SSH cluster, as `--hosts` names them.
//!
//! `--hosts h1,h2,...` takes `host`, `user@host`, `host:port` or
//! `user@host:port` (an IPv6 address in brackets: `[fd00::1]:2222`); what a
//! host leaves out (and its key file and whether it uses sudo) comes from
//! [`HostDefaults`] (`--ssh-user`, `--ssh-port`, `--ssh-key`, `--ssh-sudo`,
//! or a campaign file's `[ssh]` table, whose entries are checked by
//! [`SshHost::checked`] with the same rules). Names are checked here, before anything connects: a
//! host is an IP address or a DNS name (letters, digits, `-` and `.`, not
//! starting with `-`), a user a POSIX login name. Nothing else is accepted,
//! so a hostile `--hosts` value (`-oProxyCommand=...`, `a;rm -rf /`) is
//! refused with its text named rather than reaching a connection or a
//! command; quoting ([`super::quote`]) is the second line of defence.

use std::net::IpAddr;
use std::path::PathBuf;

/// What a host in `--hosts` leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDefaults {
    /// The login user (`--ssh-user`).
    pub user: String,
    /// The SSH port (`--ssh-port`).
    pub port: u16,
    /// The private key file (`--ssh-key`).
    pub key: PathBuf,
    /// Whether root's commands go through `sudo -n` (`--ssh-sudo`).
    pub sudo: bool,
}

/// One host a node may run on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshHost {
    /// The login user.
    pub user: String,
    /// The address as given: an IP address or a DNS name (no brackets).
    pub address: String,
    /// The SSH port.
    pub port: u16,
    /// The private key file it takes (only its path is ever shown).
    pub key: PathBuf,
    /// Whether commands that need root run as `sudo -n -- ...` (a login
    /// other than root with `sudo`; see [`SshHost::uses_sudo`]).
    pub sudo: bool,
}

impl SshHost {
    /// A host from its parts, checked as `--hosts` checks them: the user a
    /// login name, the address an IP address or DNS name, the port not 0.
    pub fn checked(user: String, address: String, port: u16, key: PathBuf, sudo: bool) -> Result<SshHost, String> {
        if !is_login_name(&user) {
            return Err(format!("{user:?} is not a login name"));
        }
        if port == 0 {
            return Err("port 0 is not a port".into());
        }
        if !is_address(&address) {
            return Err(format!("{address:?} is neither an IP address nor a DNS name"));
        }
        Ok(SshHost { user, address, port, key, sudo })
    }

    /// Whether root's commands go through sudo: asked for, and not root already.
    pub fn uses_sudo(&self) -> bool {
        self.sudo && self.user != "root"
    }

    /// `user@address:port`, as messages and `run.json` name the host.
    pub fn label(&self) -> String {
        match self.address.contains(':') {
            true => format!("{}@[{}]:{}", self.user, self.address, self.port),
            false => format!("{}@{}:{}", self.user, self.address, self.port),
        }
    }
}

impl std::fmt::Display for SshHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// Parses a comma-separated `--hosts` value; every host must be distinct.
pub fn parse_hosts(list: &str, defaults: &HostDefaults) -> Result<Vec<SshHost>, String> {
    let hosts = list
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| parse_host(h, defaults))
        .collect::<Result<Vec<_>, _>>()?;
    if hosts.is_empty() {
        return Err("--hosts names no host".into());
    }
    check_distinct(&hosts).map_err(|e| format!("{e} in --hosts"))?;
    Ok(hosts)
}

/// An error naming the first host listed twice (same address and port).
pub fn check_distinct(hosts: &[SshHost]) -> Result<(), String> {
    for (i, host) in hosts.iter().enumerate() {
        if hosts[..i].iter().any(|h| h.address == host.address && h.port == host.port) {
            return Err(format!("host {host} is listed twice"));
        }
    }
    Ok(())
}

/// Parses one `[user@]host[:port]`.
pub fn parse_host(text: &str, defaults: &HostDefaults) -> Result<SshHost, String> {
    let (user, rest) = match text.rsplit_once('@') {
        Some((user, rest)) => (user.to_string(), rest),
        None => (defaults.user.clone(), text),
    };
    let (address, port) = split_port(rest).map_err(|why| format!("{text:?}: {why}"))?;
    let port = port.unwrap_or(defaults.port);
    SshHost::checked(user, address, port, defaults.key.clone(), defaults.sudo).map_err(|why| format!("{text:?}: {why}"))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` into address and port.
fn split_port(rest: &str) -> Result<(String, Option<u16>), String> {
    if let Some(inner) = rest.strip_prefix('[') {
        let (address, tail) = inner.split_once(']').ok_or("an unclosed [")?;
        let port = match tail {
            "" => None,
            tail => Some(parse_port(tail.strip_prefix(':').ok_or("junk after ]")?)?),
        };
        return Ok((address.to_string(), port));
    }
    if rest.parse::<IpAddr>().is_ok() {
        return Ok((rest.to_string(), None));
    }
    match rest.rsplit_once(':') {
        Some((address, port)) => Ok((address.to_string(), Some(parse_port(port)?))),
        None => Ok((rest.to_string(), None)),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("{text:?} is not a port")),
    }
}

/// A POSIX portable login name: letters, digits, `.`, `_`, `-`, not starting with `-`.
fn is_login_name(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 32
        && !user.starts_with('-')
        && user.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// An IP address, or a DNS name of labels of letters, digits and `-`.
fn is_address(address: &str) -> bool {
    if address.parse::<IpAddr>().is_ok() {
        return true;
    }
    !address.is_empty()
        && address.len() <= 253
        && address.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> HostDefaults {
        HostDefaults { user: "admin".into(), port: 2222, key: "/keys/lab".into(), sudo: true }
    }

    #[test]
    fn every_form_parses_with_the_defaults_filling_in() {
        let hosts = parse_hosts("10.0.0.1, root@db2:22,db-3.example.com,[fd00::1]:2200,fd00::2", &defaults()).unwrap();
        let labels: Vec<String> = hosts.iter().map(SshHost::label).collect();
        assert_eq!(
            labels,
            [
                "admin@10.0.0.1:2222",
                "root@db2:22",
                "admin@db-3.example.com:2222",
                "admin@[fd00::1]:2200",
                "admin@[fd00::2]:2222"
            ]
        );
    }

    #[test]
    fn hostile_hosts_are_refused_with_their_text_named() {
        for hostile in [
            "-oProxyCommand=touch /tmp/x",
            "a;rm -rf /",
            "$(id)@h",
            "h:22;ls",
            "h:0",
            "h:99999",
            "user name@h",
            "-root@h",
            "h`id`",
            "[fd00::1",
            "h/../x",
            "",
        ] {
            let err = parse_host(hostile, &defaults()).expect_err(hostile);
            assert!(err.contains(&format!("{hostile:?}")), "{err}");
        }
    }

    #[test]
    fn key_and_sudo_come_from_the_defaults_and_root_needs_no_sudo() {
        let hosts = parse_hosts("h1,root@h2", &defaults()).unwrap();
        assert_eq!(hosts[0].key, PathBuf::from("/keys/lab"));
        assert!(hosts[0].uses_sudo());
        assert!(hosts[1].sudo && !hosts[1].uses_sudo(), "root runs root's commands itself");
    }

    #[test]
    fn a_host_listed_twice_is_refused() {
        let err = parse_hosts("h1,admin@h1:2222", &defaults()).unwrap_err();
        assert!(err.contains("listed twice in --hosts"), "{err}");
        assert!(parse_hosts(" , ", &defaults()).is_err());
    }
}
