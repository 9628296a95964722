//! What a lazy filesystem's `lose-unsynced` printed, read as the loss it
//! reports: the same for every backend that asks it through a command (in
//! a container, on an SSH host), so they cannot drift in what a power
//! loss's event records or in how a refusal reads.

use lazyfs::control::{Answer, Command};
use lazyfs::LossReport;

use crate::{ClusterError, ExecOutput, Result};

/// The loss `node`'s lazy filesystem reported in `out` (the output of
/// `dynamo-lazyfs --ctl lose-unsynced`), or an error that says what it
/// printed instead.
pub(crate) fn loss_of(node: &str, out: &ExecOutput) -> Result<LossReport> {
    let command = Command::LoseUnsynced.word();
    let bad = |why: String| ClusterError::Other(format!("{command} on {node}: {why}"));
    let answer: Answer = serde_json::from_str(out.stdout.trim())
        .map_err(|e| bad(format!("{e}; exit {}, stdout {:?}, stderr {:?}", out.exit_code, out.stdout, out.stderr)))?;
    if !answer.ok {
        return Err(bad(answer.error.unwrap_or_default()));
    }
    answer.loss.ok_or_else(|| bad("the answer has no loss".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(stdout: &str) -> ExecOutput {
        ExecOutput { exit_code: 0, stdout: stdout.to_string(), stderr: String::new() }
    }

    #[test]
    fn a_refusal_or_garbage_is_an_error_that_quotes_it() {
        let refused = loss_of("n1", &out(r#"{"ok":false,"error":"no such mount"}"#)).unwrap_err().to_string();
        assert!(refused.contains("n1") && refused.contains("no such mount"), "{refused}");
        let garbage = loss_of("n2", &out("sh: dynamo-lazyfs: not found")).unwrap_err().to_string();
        assert!(garbage.contains("n2") && garbage.contains("not found"), "{garbage}");
    }
}
