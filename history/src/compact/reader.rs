//! Reading `history.jsonl` into the compact form on several threads:
//! parsers parse lines, and the caller's thread interns them in file
//! order.
//!
//! Why: parsing a line (UTF-8 checks, serde_json's struct parse, a
//! value's shape) is most of a read, and it needs nothing but the line.
//! Interning gives names, values and versions their ids in the order they
//! first appear, so it must see the lines one at a time, in order. So the
//! read is a pipeline: up to [`MAX_PARSERS`] scoped threads parse batches
//! of lines (batch i is parser i mod P's) while the interning thread takes
//! the parsed batches in order. With the checkers also run side by side
//! (`checker::side_by_side`), re-checking an hour-long history on two
//! cores went from a median of 26 s to 18 s.
//!
//! The file is read in chunks of [`CHUNK_BYTES`], each cut after its last
//! newline (the rest begins the next chunk; a line longer than a chunk
//! grows it), and a chunk in batches of the lines that start in each of
//! its [`BATCH_BYTES`]. A parsed line borrows its chunk, so the pipeline
//! drains at the end of each chunk before the chunk's buffer is filled
//! again. Memory is bounded by two chunks and [`BATCHES_IN_FLIGHT`] parsed
//! batches per parser, whatever the file's length.
//!
//! The ids and errors are those of a read one line at a time: a line the
//! fast path hands back is read the plain way by the interning thread, in
//! its place; a malformed line, a line that is not UTF-8 and an index out
//! of place stop the read with the error naming it, and the parsers stop
//! at their next batch.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::parse::{ready, Ready};
use super::{CompactBuilder, CompactHistory};
use crate::HistoryError;

/// Bytes read from the file at a time (a chunk ends at its last newline).
const CHUNK_BYTES: u64 = 8 << 20;
/// Bytes of a chunk a parser takes at a time: its lines are a batch.
const BATCH_BYTES: usize = 256 << 10;
/// Batches each parser parses ahead of the interning thread, at most.
const BATCHES_IN_FLIGHT: usize = 2;
/// Parsing threads, at most. A read starts one more than the machine has
/// cores: the interning thread spends part of its time waiting for
/// parsed batches, and an hour's re-check on two cores took 18.6 to
/// 20.4 s with two parsers and 14.8 to 17.7 s with three.
const MAX_PARSERS: usize = 4;
/// A history line's length in bytes below which the table of ops may
/// have to grow: lines are about 140 bytes; room for ones of 96 is never
/// short by much, and the pages no line fills are never touched.
const EXPECTED_MIN_LINE_BYTES: u64 = 96;

/// One line as a parser leaves it.
#[allow(clippy::large_enum_variant, reason = "nearly every line is Fast: boxing it would allocate once per line")]
enum Parsed<'a> {
    /// Empty or whitespace: skipped, as the plain reader skips it.
    Blank,
    /// Read fast: ready to intern.
    Fast(Ready<'a>),
    /// To be read the plain way (see `parse`'s module documentation).
    Plain(&'a str),
    /// Not UTF-8.
    NotUtf8,
}

/// See [`CompactHistory::read`].
pub(super) fn read(path: &Path) -> Result<CompactHistory, HistoryError> {
    // One more than the cores; asked once per read, as the answer may
    // come from reading the process's cgroup files.
    let parsers = (std::thread::available_parallelism().map_or(1, |n| n.get()) + 1).clamp(1, MAX_PARSERS);
    read_in_chunks(path, Cuts { chunk_bytes: CHUNK_BYTES, batch_bytes: BATCH_BYTES, parsers })
}

/// How a read cuts the file (its chunks and their batches) and how many
/// threads parse it.
#[derive(Debug, Clone, Copy)]
struct Cuts {
    /// See [`CHUNK_BYTES`].
    chunk_bytes: u64,
    /// See [`BATCH_BYTES`].
    batch_bytes: usize,
    /// Parser threads (see [`MAX_PARSERS`]).
    parsers: usize,
}

/// [`read`] cut as `cuts` says (tests cut lines anywhere).
fn read_in_chunks(path: &Path, cuts: Cuts) -> Result<CompactHistory, HistoryError> {
    assert!(cuts.chunk_bytes > 0 && cuts.batch_bytes > 0 && cuts.parsers > 0);
    let mut file = File::open(path).map_err(|source| HistoryError::Open { path: path.into(), source })?;
    let mut builder = CompactBuilder::default();
    // Room for every line up front: growing the table by doubling copied
    // it again and again, a fifth of the read.
    let bytes = file.metadata().map_or(0, |m| m.len());
    builder.ops.reserve(usize::try_from(bytes / EXPECTED_MIN_LINE_BYTES).unwrap_or(0));
    let mut chunk: Vec<u8> = Vec::new();
    let mut next: Vec<u8> = Vec::new();
    let mut lines_done = 0usize;
    loop {
        std::mem::swap(&mut chunk, &mut next);
        next.clear();
        let at_end = fill(&mut file, &mut chunk, cuts.chunk_bytes).map_err(|source| HistoryError::Read {
            path: path.into(),
            line: lines_done + 1,
            source,
        })?;
        if !at_end {
            // Hand the unfinished last line to the next chunk.
            let cut = chunk.iter().rposition(|&b| b == b'\n').map_or(0, |newline| newline + 1);
            next.extend_from_slice(&chunk[cut..]);
            chunk.truncate(cut);
        }
        lines_done = intern_chunk(&mut builder, &chunk, cuts, lines_done, path)?;
        if at_end {
            return Ok(builder.finish());
        }
    }
}

/// Reads up to `chunk_bytes` more into `chunk`, more if it holds no
/// newline yet (a line longer than a chunk); whether the file has ended.
fn fill(file: &mut File, chunk: &mut Vec<u8>, chunk_bytes: u64) -> io::Result<bool> {
    loop {
        let before = chunk.len();
        let read = file.take(chunk_bytes).read_to_end(chunk)?;
        if (read as u64) < chunk_bytes {
            return Ok(true);
        }
        // What was carried over holds no newline: it is a line's start.
        if chunk[before..].contains(&b'\n') {
            return Ok(false);
        }
    }
}

/// Parses `chunk`'s lines on scoped threads and interns them here, in
/// order; the number of the chunk's last line (`lines_before` + its lines).
fn intern_chunk(
    builder: &mut CompactBuilder,
    chunk: &[u8],
    Cuts { batch_bytes, parsers, .. }: Cuts,
    lines_before: usize,
    path: &Path,
) -> Result<usize, HistoryError> {
    let batches = chunk.len().div_ceil(batch_bytes);
    std::thread::scope(|scope| {
        let parsed: Vec<Receiver<Vec<Parsed<'_>>>> = (0..parsers)
            .map(|parser| {
                let (send, receive) = sync_channel(BATCHES_IN_FLIGHT);
                scope.spawn(move || parse_batches((chunk, batch_bytes), (parser, parsers), &send));
                receive
            })
            .collect();
        let mut number = lines_before;
        // Batch i is parser i % parsers's; taken in order, they are the
        // chunk's lines in order. On an error, the receivers are dropped
        // here, and each parser stops at its next send.
        for batch in 0..batches {
            let lines = parsed[batch % parsers].recv().expect("a parser sends each of its batches");
            for line in lines {
                number += 1;
                intern_line(builder, line, number, path)?;
            }
        }
        Ok(number)
    })
}

/// Parses batches `parser`, `parser + parsers`, ... of `chunk` (see
/// [`batch_lines`]), each sent as it is done, until there are no more
/// or the interning thread stops listening.
fn parse_batches<'a>(
    (chunk, batch_bytes): (&'a [u8], usize),
    (parser, parsers): (usize, usize),
    send: &SyncSender<Vec<Parsed<'a>>>,
) {
    let batches = chunk.len().div_ceil(batch_bytes);
    for batch in (parser..batches).step_by(parsers) {
        let lines = batch_lines(chunk, batch * batch_bytes..(batch + 1) * batch_bytes)
            .split_inclusive(|&b| b == b'\n')
            .map(parse_line)
            .collect();
        if send.send(lines).is_err() {
            return;
        }
    }
}

/// The lines of a batch: those that start in its `bytes` of the chunk
/// (none when a longer line covers them all).
fn batch_lines(chunk: &[u8], bytes: std::ops::Range<usize>) -> &[u8] {
    let line_start = |at: usize| match at {
        0 => 0,
        at if at >= chunk.len() => chunk.len(),
        at => chunk[at - 1..].iter().position(|&b| b == b'\n').map_or(chunk.len(), |newline| at + newline),
    };
    &chunk[line_start(bytes.start)..line_start(bytes.end)]
}

/// One line, its newline included (serde_json's error positions count it).
fn parse_line(bytes: &[u8]) -> Parsed<'_> {
    let Ok(text) = std::str::from_utf8(bytes) else { return Parsed::NotUtf8 };
    if text.trim().is_empty() {
        return Parsed::Blank;
    }
    ready(text).map_or(Parsed::Plain(text), Parsed::Fast)
}

/// Adds line `number` to the history, or says why it cannot be.
fn intern_line(builder: &mut CompactBuilder, line: Parsed<'_>, number: usize, path: &Path) -> Result<(), HistoryError> {
    let expected = builder.ops.len() as u64;
    let index = match line {
        Parsed::Blank => return Ok(()),
        Parsed::NotUtf8 => {
            let source = io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8");
            return Err(HistoryError::Read { path: path.into(), line: number, source });
        }
        Parsed::Fast(ready) => builder.push_ready(ready, expected),
        Parsed::Plain(text) => CompactHistory::push_plain(builder, text, expected)
            .map_err(|source| HistoryError::Malformed { path: path.into(), line: number, source })?,
    };
    if index != expected {
        let at = builder.ops.len() + 1;
        return Err(HistoryError::BadIndex { path: path.into(), line: at, found: index, expected });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::write_file;
    use super::*;

    /// A few lines of every kind: fast, plain (an escape), blank, a read's
    /// siblings; the last without its newline.
    fn lines() -> String {
        let mut text = String::new();
        for i in 0..40u64 {
            let line = match i % 4 {
                0 => format!(
                    r#"{{"index":{i},"time":{i},"process":0,"type":"invoke","f":"write","key":"k{i}","node":"n1","value":"p0-{i}"}}"#
                ),
                1 => format!(
                    r#"{{"index":{i},"time":{i},"process":0,"type":"ok","f":"write","key":"k\u0031","node":"n1","value":"p0-{i}","version":{{"clock":{{"n1":{i}}},"ts":{i}}}}}"#
                ),
                2 => format!(
                    r#"{{"index":{i},"time":{i},"process":1,"type":"invoke","f":"read","key":"k1","node":"n2"}}"#
                ),
                _ => format!(
                    r#"{{"index":{i},"time":{i},"process":1,"type":"ok","f":"read","key":"k1","node":"n2","value":[{{"value":"p0-{i}","version":{{"clock":{{"n1":1}},"ts":5}}}}]}}"#
                ),
            };
            text.push_str(&line);
            text.push_str(if i % 7 == 0 { "\n  \n" } else { "\n" });
        }
        text.pop();
        text
    }

    #[test]
    fn chunks_cut_anywhere_give_the_history_one_chunk_gives() {
        let path = write_file("reader-chunks", &lines());
        let whole = read(&path).unwrap();
        assert_eq!(whole.ops().len(), 40);
        for chunk_bytes in [1, 2, 7, 64, 150, 151, 1_000, 4_096] {
            for batch_bytes in [1, 3, 100, 1_000, BATCH_BYTES] {
                let parsers = 1 + chunk_bytes as usize % 3;
                let cut = read_in_chunks(&path, Cuts { chunk_bytes, batch_bytes, parsers }).unwrap();
                assert_eq!(
                    format!("{cut:?}"),
                    format!("{whole:?}"),
                    "chunks of {chunk_bytes}, batches of {batch_bytes}"
                );
            }
        }
    }

    #[test]
    fn an_error_in_a_later_chunk_names_its_line_of_the_file() {
        let mut text = lines();
        text.push_str("\n{\"index\":40,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"wri\n");
        let path = write_file("reader-malformed", &text);
        let file_lines = text.lines().count();
        for (chunk_bytes, batch_bytes) in [(3, 1), (500, 7), (CHUNK_BYTES, 50), (CHUNK_BYTES, BATCH_BYTES)] {
            match read_in_chunks(&path, Cuts { chunk_bytes, batch_bytes, parsers: 3 }) {
                Err(HistoryError::Malformed { line, .. }) => assert_eq!(line, file_lines, "chunks of {chunk_bytes}"),
                other => panic!("chunks of {chunk_bytes}: {other:?}"),
            }
        }
        let mut bytes = lines().into_bytes();
        bytes.extend_from_slice(b"\n\xff\xfe\n");
        let path = write_file("reader-not-utf8", "");
        std::fs::write(&path, &bytes).unwrap();
        for (chunk_bytes, batch_bytes) in [(5, 2), (CHUNK_BYTES, BATCH_BYTES)] {
            match read_in_chunks(&path, Cuts { chunk_bytes, batch_bytes, parsers: 2 }) {
                Err(HistoryError::Read { line, source, .. }) => {
                    assert_eq!((line, source.kind()), (file_lines, io::ErrorKind::InvalidData));
                }
                other => panic!("chunks of {chunk_bytes}: {other:?}"),
            }
        }
    }
}
