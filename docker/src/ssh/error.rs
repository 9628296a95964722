//! Errors of the SSH client: each names the host, and a command's error
//! names the command, its exit code and its stderr.

/// Why something on a host could not be done over SSH.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// No TCP connection or SSH handshake with the host.
    #[error("{host}: cannot connect over SSH: {detail}")]
    Connect {
        /// The host (`user@address:port`).
        host: String,
        /// What failed (refused, timed out, handshake).
        detail: String,
    },
    /// The host's key is not the one known_hosts holds, or is unknown.
    #[error("{host}: host key refused: {detail}")]
    HostKey {
        /// The host.
        host: String,
        /// Why, with the key's fingerprint (never the key itself).
        detail: String,
    },
    /// The host refused the key, or the key file could not be read.
    #[error("{host}: authentication as {user} failed: {detail}")]
    Auth {
        /// The host.
        host: String,
        /// The login user.
        user: String,
        /// Why (the key file's path, never its contents).
        detail: String,
    },
    /// A command ran and exited non-zero (or was killed by a signal).
    #[error("{host}: `{command}` exited {exit_code}: {stderr}")]
    Command {
        /// The host.
        host: String,
        /// The command line, as sent (quoted).
        command: String,
        /// Its exit code (-1: killed by a signal, or none reported).
        exit_code: i64,
        /// What it wrote to stderr (trimmed, at most a few KiB).
        stderr: String,
    },
    /// A command did not finish in time.
    #[error("{host}: `{command}` did not finish within {timeout_ms} ms")]
    Timeout {
        /// The host.
        host: String,
        /// The command line, as sent.
        command: String,
        /// The deadline it missed.
        timeout_ms: u64,
    },
    /// The connection failed while a command was being sent or run.
    #[error("{host}: `{command}`: the SSH session failed: {detail}")]
    Session {
        /// The host.
        host: String,
        /// The command line, as sent.
        command: String,
        /// The transport's error.
        detail: String,
    },
}

impl SshError {
    /// Whether trying again on a fresh connection may help: the
    /// connection or session failed before the command's outcome was
    /// known to be anything else. A command that ran and failed, a refused
    /// key or a timeout are not retried.
    pub fn is_transient(&self) -> bool {
        matches!(self, SshError::Connect { .. } | SshError::Session { .. })
    }
}

/// At most this much of a command's stderr goes into an error.
pub const STDERR_KEPT_BYTES: usize = 4096;

/// `stderr` trimmed and cut to [`STDERR_KEPT_BYTES`] (at a char boundary).
pub fn kept_stderr(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.len() <= STDERR_KEPT_BYTES {
        return trimmed.to_string();
    }
    let mut end = STDERR_KEPT_BYTES;
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &trimmed[..end], trimmed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_error_names_host_command_code_and_stderr() {
        let e = SshError::Command {
            host: "root@10.0.0.1:22".into(),
            command: "iptables -w -N X".into(),
            exit_code: 1,
            stderr: "iptables: Chain already exists.".into(),
        };
        assert_eq!(e.to_string(), "root@10.0.0.1:22: `iptables -w -N X` exited 1: iptables: Chain already exists.");
        assert!(!e.is_transient());
    }

    #[test]
    fn long_stderr_is_cut_at_a_char_boundary() {
        let long = "é".repeat(STDERR_KEPT_BYTES);
        let kept = kept_stderr(&long);
        assert!(kept.len() < STDERR_KEPT_BYTES + 40);
        assert!(kept.ends_with(&format!("({} bytes in all)", long.len())));
    }
}
