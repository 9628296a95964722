//! The control socket: a command per line, a one-line JSON answer.
//!
//! A Unix socket because the workbench runs on the same host as the mount
//! (or reaches it through `docker exec`), and a person can drive it with
//! `socat - UNIX-CONNECT:SOCKET`. Commands:
//!
//! ```text
//! lose-unsynced   drop everything not synced; answers {"ok":true,"loss":{...}}
//! stats           the counters; answers {"ok":true,"stats":{...}}
//! ping            answers {"ok":true}
//! ```
//!
//! Anything else gets `{"ok":false,"error":"..."}` and changes nothing; the
//! connection stays open. Lines are bounded ([`MAX_LINE_BYTES`]): a longer
//! one is refused and its connection closed, so a stray client cannot grow
//! the process. [`Client`] is the workbench's end.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::LazyError;
use crate::report::{LossReport, Stats};
use crate::state::State;

/// The longest command line accepted, newline included.
pub const MAX_LINE_BYTES: usize = 4096;

/// A control command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Drop everything not synced.
    LoseUnsynced,
    /// Report the counters.
    Stats,
    /// Check the mount answers.
    Ping,
}

impl Command {
    /// Every command, for error messages.
    const ALL: [Command; 3] = [Command::LoseUnsynced, Command::Stats, Command::Ping];

    /// The command's word on the wire.
    pub fn word(self) -> &'static str {
        match self {
            Command::LoseUnsynced => "lose-unsynced",
            Command::Stats => "stats",
            Command::Ping => "ping",
        }
    }

    /// Parses one line (surrounding whitespace ignored).
    pub fn parse(line: &str) -> Result<Command, String> {
        let word = line.trim();
        Command::ALL.into_iter().find(|c| c.word() == word).ok_or_else(|| {
            let words: Vec<&str> = Command::ALL.iter().map(|c| c.word()).collect();
            format!("unknown command {word:?}; commands are: {}", words.join(", "))
        })
    }
}

/// One answer line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Whether the command was carried out.
    pub ok: bool,
    /// What a `lose-unsynced` did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossReport>,
    /// What `stats` reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// Why the command was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Answer {
    /// A refusal saying why.
    fn refused(error: String) -> Answer {
        Answer { ok: false, loss: None, stats: None, error: Some(error) }
    }
}

/// Carries out one command line against `state`.
pub fn apply(state: &Mutex<State>, line: &str) -> Answer {
    let command = match Command::parse(line) {
        Ok(command) => command,
        Err(error) => return Answer::refused(error),
    };
    let mut state = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut answer = Answer { ok: true, loss: None, stats: None, error: None };
    match command {
        Command::LoseUnsynced => answer.loss = Some(state.lose_unsynced()),
        Command::Stats => answer.stats = Some(state.stats()),
        Command::Ping => {}
    }
    answer
}

/// The listening control socket; its file is removed on drop.
#[derive(Debug)]
pub struct ControlServer {
    /// The socket's path.
    path: PathBuf,
}

impl ControlServer {
    /// Listens at `path` (a stale socket file there is replaced) and serves
    /// each connection on its own thread.
    pub fn spawn(path: &Path, state: Arc<Mutex<State>>) -> Result<ControlServer, LazyError> {
        let err = |e| LazyError::Control(path.to_owned(), e);
        if path.exists() {
            std::fs::remove_file(path).map_err(err)?;
        }
        let listener = UnixListener::bind(path).map_err(err)?;
        std::thread::Builder::new()
            .name("lazyfs-control".into())
            .spawn(move || accept_loop(listener, state))
            .map_err(err)?;
        Ok(ControlServer { path: path.to_owned() })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Accepts connections for as long as the process lives.
fn accept_loop(listener: UnixListener, state: Arc<Mutex<State>>) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let state = Arc::clone(&state);
                let spawned =
                    std::thread::Builder::new().name("lazyfs-conn".into()).spawn(move || serve(stream, &state));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "control connection not served");
                }
            }
            Err(e) => tracing::warn!(error = %e, "control accept failed"),
        }
    }
}

/// Answers one connection's lines until it closes.
fn serve(stream: UnixStream, state: &Mutex<State>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        match reader.by_ref().take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let too_long = !line.ends_with(b"\n") && line.len() >= MAX_LINE_BYTES;
        let answer = if too_long {
            Answer::refused(format!("line longer than {MAX_LINE_BYTES} bytes; closing"))
        } else {
            apply(state, &String::from_utf8_lossy(&line))
        };
        let mut text = serde_json::to_string(&answer).expect("answers serialize");
        text.push('\n');
        if writer.write_all(text.as_bytes()).is_err() || too_long {
            return;
        }
    }
}

/// A connection to a mount's control socket.
#[derive(Debug)]
pub struct Client {
    /// The socket's path, for errors.
    path: PathBuf,
    /// Where answers are read.
    reader: BufReader<UnixStream>,
    /// Where commands are written.
    writer: UnixStream,
}

impl Client {
    /// Connects to the control socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, LazyError> {
        let path = path.as_ref().to_owned();
        let stream = UnixStream::connect(&path).map_err(|e| LazyError::Control(path.clone(), e))?;
        let writer = stream.try_clone().map_err(|e| LazyError::Control(path.clone(), e))?;
        Ok(Client { path, reader: BufReader::new(stream), writer })
    }

    /// Sends one raw line and reads its answer (refusals included).
    pub fn send(&mut self, line: &str) -> Result<Answer, LazyError> {
        let io = |e| LazyError::Control(self.path.clone(), e);
        self.writer.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
        let mut text = String::new();
        let n = self.reader.read_line(&mut text).map_err(|e| LazyError::Control(self.path.clone(), e))?;
        if n == 0 {
            return Err(LazyError::BadAnswer("connection closed".into()));
        }
        serde_json::from_str(&text).map_err(|e| LazyError::BadAnswer(format!("{e}: {}", text.trim())))
    }

    /// Sends `command`; a refusal is an error.
    fn command(&mut self, command: Command) -> Result<Answer, LazyError> {
        let answer = self.send(command.word())?;
        if !answer.ok {
            return Err(LazyError::Refused(answer.error.unwrap_or_default()));
        }
        Ok(answer)
    }

    /// Drops everything not synced.
    pub fn lose_unsynced(&mut self) -> Result<LossReport, LazyError> {
        self.command(Command::LoseUnsynced)?.loss.ok_or_else(|| LazyError::BadAnswer("no loss in the answer".into()))
    }

    /// The mount's counters.
    pub fn stats(&mut self) -> Result<Stats, LazyError> {
        self.command(Command::Stats)?.stats.ok_or_else(|| LazyError::BadAnswer("no stats in the answer".into()))
    }

    /// Checks the mount answers.
    pub fn ping(&mut self) -> Result<(), LazyError> {
        self.command(Command::Ping).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_unknown_ones_are_named() {
        assert_eq!(Command::parse(" lose-unsynced\n"), Ok(Command::LoseUnsynced));
        assert_eq!(Command::parse("stats"), Ok(Command::Stats));
        let error = Command::parse("lose everything").unwrap_err();
        assert!(error.contains("\"lose everything\"") && error.contains("lose-unsynced"), "{error}");
    }
}
