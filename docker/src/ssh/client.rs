//! The SSH client: one connection per host, a channel per command.
//!
//! # Why russh
//!
//! The backend needs, per host, a long-lived authenticated connection over
//! which hundreds of short commands run during a campaign (signals, iptables
//! rules, clock files, reads of logs), each with its own deadline, from many
//! tasks at once. Two maintained async crates do that on tokio:
//!
//! - `openssh` drives the system's `ssh` binary (a ControlMaster socket per
//!   host); it inherits OpenSSH's configuration and agent, but every fault
//!   then depends on which `ssh` is installed, its config files, a socket
//!   directory, and the parsing of a child process's failures.
//! - `russh` is SSH in pure Rust on tokio: a connection is a value
//!   ([`russh::client::Handle`]) whose channels are opened concurrently,
//!   exit codes and stderr arrive as typed messages, and host key checking
//!   is code we own ([`super::known_hosts`]), so it cannot be disabled by a
//!   stray `~/.ssh/config`. It is the one chosen. It is built with ring's
//!   crypto (`default-features = false, features = ["ring"]`): its default,
//!   aws-lc-rs, needs cmake and a C compile that CI would pay for.
//!
//! Jepsen's `control` namespace makes the same cut: one session per node,
//! reused, every command a string built from escaped arguments, with
//! retries on a broken session.
//!
//! # Connections, deadlines, retries
//!
//! [`SshClient`] connects lazily and keeps the connection; a closed one is
//! replaced on the next command. Every command has a deadline (`timeout_ms`)
//! and is a fresh channel. Only failures before the command was sent
//! (connecting, opening the channel) are retried, at most
//! [`CONNECT_ATTEMPTS`] times with a growing pause: a command that was sent
//! may have run, and running a kill or an iptables rule twice is not the
//! caller's intent. A refused host key or key file is never retried.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::ChannelMsg;

use super::error::{kept_stderr, SshError};
use super::host::SshHost;
use super::known_hosts::{self, HostKeyPolicy};
use super::quote;
use crate::ExecOutput;

/// How many times a command's connection or channel is tried before giving up.
pub const CONNECT_ATTEMPTS: u32 = 3;
/// The pause before the second attempt; doubled before each later one.
const RETRY_PAUSE_MS: u64 = 500;
/// A command's stdout beyond this is refused (a log read is a few MiB).
const MAX_OUTPUT_BYTES: usize = 256 << 20;

/// What every connection of a cluster shares: the keys, the known hosts, deadlines.
pub struct SshOptions {
    /// Every host's private key by its file (only paths are ever shown),
    /// each loaded once (never logged, never written anywhere).
    keys: BTreeMap<PathBuf, Arc<PrivateKey>>,
    /// The known_hosts file host keys are checked against.
    pub known_hosts: PathBuf,
    /// What to do with an unknown host key.
    pub host_keys: HostKeyPolicy,
    /// The deadline of a TCP connect plus SSH handshake and authentication.
    pub connect_timeout_ms: u64,
}

impl std::fmt::Debug for SshOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshOptions")
            .field("key_paths", &self.keys.keys().collect::<Vec<_>>())
            .field("known_hosts", &self.known_hosts)
            .field("host_keys", &self.host_keys)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish_non_exhaustive()
    }
}

impl SshOptions {
    /// Loads every key the hosts name (unencrypted: OpenSSH or PEM format).
    pub fn new(
        hosts: &[SshHost],
        known_hosts: PathBuf,
        host_keys: HostKeyPolicy,
        connect_timeout_ms: u64,
    ) -> Result<SshOptions, String> {
        let mut keys = BTreeMap::new();
        for host in hosts {
            if keys.contains_key(&host.key) {
                continue;
            }
            let key = russh::keys::load_secret_key(&host.key, None).map_err(|e| {
                format!(
                    "{host}: cannot load the SSH key {}: {e} (encrypted keys are not supported)",
                    host.key.display()
                )
            })?;
            keys.insert(host.key.clone(), Arc::new(key));
        }
        Ok(SshOptions { keys, known_hosts, host_keys, connect_timeout_ms })
    }
}

/// The connection's handler: checks the host key, remembers why it refused.
struct HostKeyCheck {
    /// The host being connected to.
    host: SshHost,
    /// Shared options (known_hosts and policy).
    options: Arc<SshOptions>,
    /// Why the key was refused, for the error (russh only says "unknown key").
    refusal: Arc<std::sync::Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let verdict = match offered {
            PublicKeyOrCertificate::Certificate(_) => {
                Err("it offered a host certificate; only plain host keys are checked".to_string())
            }
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                known_hosts::check(&self.host, key, &self.options.known_hosts, self.options.host_keys)
            }
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(why) => {
                *self.refusal.lock().expect("never poisoned") = Some(why);
                Ok(false)
            }
        }
    }
}

/// One host's connection, opened on first use and reused.
pub struct SshClient {
    /// The host.
    host: SshHost,
    /// Key, known hosts, deadlines.
    options: Arc<SshOptions>,
    /// The open connection, if any.
    session: tokio::sync::Mutex<Option<Arc<Handle<HostKeyCheck>>>>,
}

impl SshClient {
    /// A client of `host`; nothing connects until the first command.
    pub fn new(host: SshHost, options: Arc<SshOptions>) -> SshClient {
        SshClient { host, options, session: tokio::sync::Mutex::new(None) }
    }

    /// The host this client talks to.
    pub fn host(&self) -> &SshHost {
        &self.host
    }

    /// Runs `argv` (every argument quoted); an error unless it exits 0.
    pub async fn run<S: AsRef<str>>(&self, argv: &[S], timeout_ms: u64) -> Result<ExecOutput, SshError> {
        self.run_script(&quote::command(argv), timeout_ms).await
    }

    /// Runs `script`, a command line built from quoted arguments
    /// ([`quote::command`]); an error unless it exits 0.
    pub async fn run_script(&self, script: &str, timeout_ms: u64) -> Result<ExecOutput, SshError> {
        let out = self.output(script, None, timeout_ms).await?;
        self.require_success(script, out)
    }

    /// Runs `script` (built as for [`SshClient::run_script`]) as root:
    /// through `sudo -n` when the host's login is not root and it uses
    /// sudo ([`SshHost::uses_sudo`]), else as it is.
    pub async fn run_as_root(&self, script: &str, timeout_ms: u64) -> Result<ExecOutput, SshError> {
        self.run_script(&self.root_script(script), timeout_ms).await
    }

    /// `script` as this host runs it as root (see [`SshClient::run_as_root`]).
    pub fn root_script(&self, script: &str) -> String {
        match self.host.uses_sudo() {
            true => quote::as_root(script),
            false => script.to_string(),
        }
    }

    /// Writes `bytes` to `remote_path` (through a temporary file renamed
    /// into place, mode `mode`); an error unless that succeeded.
    pub async fn upload(&self, bytes: &[u8], remote_path: &str, mode: &str, timeout_ms: u64) -> Result<(), SshError> {
        let tmp = format!("{remote_path}.upload");
        let script = format!(
            "{} && {} && {}",
            quote::command(&["sh", "-c", "cat > \"$1\"", "sh", &tmp]),
            quote::command(&["chmod", mode, "--", &tmp]),
            quote::command(&["mv", "-f", "--", &tmp, remote_path])
        );
        let out = self.output(&script, Some(bytes), timeout_ms).await?;
        self.require_success(&script, out).map(|_| ())
    }

    /// Runs `script` with `stdin`, whatever its exit code.
    pub async fn output(&self, script: &str, stdin: Option<&[u8]>, timeout_ms: u64) -> Result<ExecOutput, SshError> {
        assert!(timeout_ms > 0, "every command has a deadline");
        let mut pause_ms = RETRY_PAUSE_MS;
        for attempt in 1..=CONNECT_ATTEMPTS {
            match self.open_channel(script).await {
                Ok(channel) => return self.finish(channel, script, stdin, timeout_ms).await,
                Err(e) if e.is_transient() && attempt < CONNECT_ATTEMPTS => {
                    tracing::warn!(host = %self.host, attempt, error = %e, "ssh: retrying on a fresh connection");
                    *self.session.lock().await = None;
                    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                    pause_ms *= 2;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Closes the connection, if open.
    pub async fn close(&self) {
        if let Some(session) = self.session.lock().await.take() {
            let _ = session.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        }
    }

    fn require_success(&self, script: &str, out: ExecOutput) -> Result<ExecOutput, SshError> {
        if out.exit_code == 0 {
            return Ok(out);
        }
        Err(SshError::Command {
            host: self.host.label(),
            command: script.to_string(),
            exit_code: out.exit_code,
            stderr: kept_stderr(&out.stderr),
        })
    }

    /// A new channel on the (possibly new) connection, the command sent.
    async fn open_channel(&self, script: &str) -> Result<russh::Channel<client::Msg>, SshError> {
        let session = self.session().await?;
        let session_error = |e: russh::Error| SshError::Session {
            host: self.host.label(),
            command: script.to_string(),
            detail: e.to_string(),
        };
        let channel = session.channel_open_session().await.map_err(session_error)?;
        channel.exec(true, script).await.map_err(session_error)?;
        Ok(channel)
    }

    /// Feeds stdin, then gathers the output until the channel closes or the deadline.
    async fn finish(
        &self,
        mut channel: russh::Channel<client::Msg>,
        script: &str,
        stdin: Option<&[u8]>,
        timeout_ms: u64,
    ) -> Result<ExecOutput, SshError> {
        let exchange = async {
            if let Some(bytes) = stdin {
                channel.data(bytes).await?;
            }
            channel.eof().await?;
            Ok::<_, russh::Error>(collect(&mut channel).await)
        };
        match tokio::time::timeout(Duration::from_millis(timeout_ms), exchange).await {
            Ok(Ok(Ok(out))) => Ok(out),
            Ok(Ok(Err(detail))) => {
                Err(SshError::Session { host: self.host.label(), command: script.to_string(), detail })
            }
            Ok(Err(e)) => {
                Err(SshError::Session { host: self.host.label(), command: script.to_string(), detail: e.to_string() })
            }
            Err(_) => {
                let _ = channel.close().await;
                Err(SshError::Timeout { host: self.host.label(), command: script.to_string(), timeout_ms })
            }
        }
    }

    /// The open connection, or a new one.
    async fn session(&self) -> Result<Arc<Handle<HostKeyCheck>>, SshError> {
        let mut guard = self.session.lock().await;
        if let Some(session) = guard.as_ref().filter(|s| !s.is_closed()) {
            return Ok(session.clone());
        }
        let session = Arc::new(self.connect().await?);
        *guard = Some(session.clone());
        Ok(session)
    }

    /// TCP, handshake (host key checked) and public key authentication, within the connect deadline.
    async fn connect(&self) -> Result<Handle<HostKeyCheck>, SshError> {
        let deadline = Duration::from_millis(self.options.connect_timeout_ms);
        let host = self.host.label();
        match tokio::time::timeout(deadline, self.handshake()).await {
            Ok(result) => result,
            Err(_) => Err(SshError::Connect {
                host,
                detail: format!("no connection within {} ms", self.options.connect_timeout_ms),
            }),
        }
    }

    async fn handshake(&self) -> Result<Handle<HostKeyCheck>, SshError> {
        let refusal = Arc::new(std::sync::Mutex::new(None));
        let check = HostKeyCheck { host: self.host.clone(), options: self.options.clone(), refusal: refusal.clone() };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(10)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        let address = (self.host.address.as_str(), self.host.port);
        let mut handle = client::connect(config, address, check).await.map_err(|e| {
            match refusal.lock().expect("never poisoned").take() {
                Some(why) => SshError::HostKey { host: self.host.label(), detail: why },
                None => SshError::Connect { host: self.host.label(), detail: e.to_string() },
            }
        })?;
        self.authenticate(&mut handle).await?;
        tracing::debug!(host = %self.host, "ssh: connected");
        Ok(handle)
    }

    async fn authenticate(&self, handle: &mut Handle<HostKeyCheck>) -> Result<(), SshError> {
        let auth_error = |detail: String| SshError::Auth {
            host: self.host.label(),
            user: self.host.user.clone(),
            detail: format!("key {}: {detail}", self.host.key.display()),
        };
        let key = self.options.keys.get(&self.host.key).ok_or_else(|| auth_error("not loaded".into()))?;
        let hash = handle.best_supported_rsa_hash().await.map_err(|e| auth_error(e.to_string()))?.flatten();
        let key = PrivateKeyWithHashAlg::new(key.clone(), hash);
        let result =
            handle.authenticate_publickey(self.host.user.clone(), key).await.map_err(|e| auth_error(e.to_string()))?;
        if !result.success() {
            return Err(auth_error("the host refused it".into()));
        }
        Ok(())
    }
}

/// Gathers a channel's stdout, stderr and exit status until it closes.
async fn collect(channel: &mut russh::Channel<client::Msg>) -> Result<ExecOutput, String> {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut exit_code = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => exit_code = Some(i64::from(exit_status)),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                exit_code = Some(-1);
                stderr.extend_from_slice(format!("(killed by signal {signal_name:?})").as_bytes());
            }
            _ => {}
        }
        if stdout.len() > MAX_OUTPUT_BYTES {
            return Err(format!("more than {MAX_OUTPUT_BYTES} bytes of output"));
        }
    }
    Ok(ExecOutput {
        exit_code: exit_code.unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}
