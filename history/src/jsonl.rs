//! JSONL reading and writing. A malformed line is an error naming the file
//! and line, never skipped: a checker that silently drops ops proves nothing.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{AdminSnapshot, History, Op};

/// Why a run file could not be read or written; each names the file, and
/// the line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be opened for reading (missing, no permission).
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Reading a line failed (an I/O error, or a line that is not UTF-8).
    #[error("cannot read {path} line {line}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The error reading it.
        source: std::io::Error,
    },
    /// A line is not the JSON its file's format says.
    #[error("{path} line {line} is malformed: {source}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What serde_json found wrong with it.
        source: serde_json::Error,
    },
    /// An op of `history.jsonl` whose `index` is not its position in the file.
    #[error("{path} line {line}: index is {found}, expected {expected}")]
    BadIndex {
        /// The file.
        path: PathBuf,
        /// The op's position among the file's ops, from 1 (blank lines not counted).
        line: usize,
        /// The `index` the op carries.
        found: u64,
        /// The `index` its position calls for (the line minus 1).
        expected: u64,
    },
    /// Creating the file or appending a line to it failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error, or serde_json's wrapped in one.
        source: std::io::Error,
    },
}

/// Reads any JSONL file into values of `T`. Blank lines are allowed.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, HistoryError> {
    let file = File::open(path).map_err(|source| HistoryError::Open { path: path.into(), source })?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| HistoryError::Read { path: path.into(), line: i + 1, source })?;
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(&line).map_err(|source| HistoryError::Malformed {
            path: path.into(),
            line: i + 1,
            source,
        })?;
        out.push(value);
    }
    Ok(out)
}

/// Reads `history.jsonl`, checking that indices run 0, 1, 2, ...
pub fn read_history(path: &Path) -> Result<History, HistoryError> {
    let ops: Vec<Op> = read_jsonl(path)?;
    for (i, op) in ops.iter().enumerate() {
        if op.index != i as u64 {
            return Err(HistoryError::BadIndex { path: path.into(), line: i + 1, found: op.index, expected: i as u64 });
        }
    }
    Ok(History::new(ops))
}

/// Reads `admin.jsonl`; a missing file is an empty list (older runs).
pub fn read_admin(path: &Path) -> Result<Vec<AdminSnapshot>, HistoryError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    read_jsonl(path)
}

/// Appends JSON lines to a file, flushing after each so a crashed harness
/// leaves every recorded line readable.
pub struct JsonlWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonlWriter {
    /// Creates the file at `path`, truncating one that exists.
    pub fn create(path: &Path) -> Result<JsonlWriter, HistoryError> {
        let file = File::create(path).map_err(|source| HistoryError::Write { path: path.into(), source })?;
        Ok(JsonlWriter { path: path.into(), out: BufWriter::new(file) })
    }

    /// Writes `value` as one JSON line and flushes it to the file.
    pub fn append<T: Serialize>(&mut self, value: &T) -> Result<(), HistoryError> {
        let err = |source| HistoryError::Write { path: self.path.clone(), source };
        serde_json::to_writer(&mut self.out, value).map_err(|e| err(std::io::Error::other(e)))?;
        self.out.write_all(b"\n").map_err(err)?;
        self.out.flush().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OpType, Process};

    #[test]
    fn malformed_line_names_file_and_line() {
        let dir = std::env::temp_dir().join(format!("hist-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.jsonl");
        std::fs::write(
            &path,
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"value\":null}\n{not json\n",
        )
        .unwrap();
        let err = read_history(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("h.jsonl"), "{err}");
    }

    #[test]
    fn round_trip_spec_example() {
        let text = r#"{"index":0,"time":1200,"process":0,"type":"invoke","f":"write","key":"k1","value":"p0-1","node":"n1"}
{"index":1,"time":1500,"process":"nemesis","type":"info","f":"start-partition","value":{"grudge":{"n1":["n3"],"n2":["n3"],"n3":["n1","n2"]}}}
{"index":2,"time":3100,"process":0,"type":"ok","f":"write","key":"k1","value":"p0-1","node":"n1","version":{"clock":{"n1":1},"ts":1732435200123}}
{"index":3,"time":3300,"process":1,"type":"invoke","f":"read","key":"k1","value":null,"node":"n3"}
{"index":4,"time":5200,"process":1,"type":"ok","f":"read","key":"k1","value":[],"node":"n3"}
"#;
        let dir = std::env::temp_dir().join(format!("hist-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.jsonl");
        std::fs::write(&path, text).unwrap();
        let h = read_history(&path).unwrap();
        assert_eq!(h.ops.len(), 5);
        assert_eq!(h.ops[1].process, Process::Nemesis);
        assert_eq!(h.ops[2].kind, OpType::Ok);
        assert_eq!(h.ops[2].version.as_ref().unwrap().clock["n1"], 1);
        assert_eq!(h.ops[4].siblings().unwrap().len(), 0);
        let pairs = h.pairs();
        assert_eq!(pairs.len(), 2);
        // Serializing again gives the same lines.
        let again: Vec<String> = h.ops.iter().map(|o| serde_json::to_string(o).unwrap()).collect();
        for (a, b) in again.iter().zip(text.lines()) {
            let a: serde_json::Value = serde_json::from_str(a).unwrap();
            let b: serde_json::Value = serde_json::from_str(b).unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn hinted_for_is_written_only_when_present_and_read_back() {
        let mut op = crate::Op::client(3, OpType::Ok, "write", "k1", "n1");
        let plain = serde_json::to_value(&op).unwrap();
        assert!(plain.get("hinted_for").is_none(), "an unhinted write looks as it always did");
        op.hinted_for = vec!["n2".into()];
        let line = serde_json::to_string(&op).unwrap();
        assert!(line.contains(r#""hinted_for":["n2"]"#), "{line}");
        let back: crate::Op = serde_json::from_str(&line).unwrap();
        assert_eq!(back, op);
    }

    #[test]
    fn answered_by_is_written_only_when_reported_and_old_lines_still_read() {
        let old = r#"{"index":4,"time":5200,"process":1,"type":"ok","f":"read","key":"k1","value":[],"node":"n3"}"#;
        let op: crate::Op = serde_json::from_str(old).unwrap();
        assert_eq!(op.answered_by, None, "a line from before the field reads as not reported");
        assert!(!serde_json::to_string(&op).unwrap().contains("answered_by"), "and writes back the same");
        let mut op = op;
        op.answered_by = Some(vec!["n3".into(), "n1".into()]);
        let line = serde_json::to_string(&op).unwrap();
        assert!(line.contains(r#""answered_by":["n3","n1"]"#), "{line}");
        assert_eq!(serde_json::from_str::<crate::Op>(&line).unwrap(), op);
    }
}
