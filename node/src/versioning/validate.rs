//! Validation of client requests, before anything is stored.
//!
//! The requirements are strict: empty or oversized keys, oversized values,
//! impossible quorums and malformed contexts are rejected with a clear
//! `INVALID_ARGUMENT` and nothing is stored. Doing all checks here, in one
//! pure function per request kind, makes "nothing stored" easy to see: the
//! coordinator only starts once validation returned a [`ValidWrite`] or
//! [`ValidRead`].

use crate::placement::quorum::{BadQuorumWord, Quorum};
use crate::versioning::context::{self, ContextError};
use crate::versioning::vclock::VClock;

/// Largest accepted key.
pub const MAX_KEY_BYTES: usize = 1024;

/// Why a client request was rejected.
#[derive(Debug, thiserror::Error)]
pub enum InvalidRequest {
    /// The key is empty.
    #[error("key must not be empty")]
    EmptyKey,
    /// The key is longer than [`MAX_KEY_BYTES`].
    #[error("key is {0} bytes; the limit is {MAX_KEY_BYTES}")]
    KeyTooLong(usize),
    /// The value is longer than `--max-value-bytes`.
    #[error("value is {size} bytes; the limit is {limit} (--max-value-bytes)")]
    ValueTooLarge {
        /// Bytes sent.
        size: usize,
        /// Bytes allowed.
        limit: usize,
    },
    /// A requested W or R outside `1..=N`.
    #[error("{name} must be between 1 and n={n}; got {got}")]
    BadQuorum {
        /// "w" or "r".
        name: &'static str,
        /// The requested value.
        got: u32,
        /// The replication factor.
        n: usize,
    },
    /// A quorum word that is not one of the known ones.
    #[error(transparent)]
    BadQuorumWord(#[from] BadQuorumWord),
    /// The context bytes do not decode.
    #[error("malformed context: {0}")]
    MalformedContext(#[from] ContextError),
}

/// The limits requests are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Replication factor (upper bound for W and R).
    pub n: usize,
    /// Default W when the request does not override it.
    pub w: Quorum,
    /// Default R when the request does not override it.
    pub r: Quorum,
    /// Largest accepted value.
    pub max_value_bytes: usize,
}

/// A write that passed validation.
#[derive(Debug, Clone)]
pub struct ValidWrite {
    /// The clock of the client's context (empty: blind write).
    pub context: VClock,
    /// The write quorum to wait for.
    pub w: Quorum,
}

/// A read that passed validation.
#[derive(Debug, Clone, Copy)]
pub struct ValidRead {
    /// The read quorum to wait for.
    pub r: Quorum,
}

/// Checks a Put (`value: Some`) or a Delete (`value: None`).
pub fn write(
    limits: &Limits,
    key: &[u8],
    value: Option<&[u8]>,
    context: &[u8],
    w: Asked,
) -> Result<ValidWrite, InvalidRequest> {
    check_key(key)?;
    if let Some(value) = value {
        if value.len() > limits.max_value_bytes {
            return Err(InvalidRequest::ValueTooLarge { size: value.len(), limit: limits.max_value_bytes });
        }
    }
    let w = quorum("w", w, limits.w, limits.n)?;
    let context = context::decode(context)?;
    Ok(ValidWrite { context, w })
}

/// Checks a Get.
pub fn read(limits: &Limits, key: &[u8], r: Asked) -> Result<ValidRead, InvalidRequest> {
    check_key(key)?;
    Ok(ValidRead { r: quorum("r", r, limits.r, limits.n)? })
}

fn check_key(key: &[u8]) -> Result<(), InvalidRequest> {
    match key.len() {
        0 => Err(InvalidRequest::EmptyKey),
        len if len > MAX_KEY_BYTES => Err(InvalidRequest::KeyTooLong(len)),
        _ => Ok(()),
    }
}

/// A request's own quorum, as the wire carries it: a number (`w`, `r`)
/// and a word (`w_quorum`, `r_quorum`), the word winning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asked {
    /// The number asked for, if any.
    pub count: Option<u32>,
    /// The word asked for, if any (`local`, `each`, `one`, `all`, or a number).
    pub word: Option<String>,
}

impl Asked {
    /// A request that asks for `count` replicas.
    pub fn count(count: u32) -> Asked {
        Asked { count: Some(count), word: None }
    }
}

fn quorum(name: &'static str, asked: Asked, default: Quorum, n: usize) -> Result<Quorum, InvalidRequest> {
    let q = match (asked.word, asked.count) {
        (Some(word), _) => word.parse::<Quorum>()?,
        (None, Some(0)) => return Err(InvalidRequest::BadQuorum { name, got: 0, n }),
        (None, Some(got)) => Quorum::Count(got as usize),
        (None, None) => return Ok(default),
    };
    match q.count() {
        Some(k) if k > n => Err(InvalidRequest::BadQuorum { name, got: u32::try_from(k).unwrap_or(u32::MAX), n }),
        _ => Ok(q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { n: 3, w: Quorum::Count(2), r: Quorum::Count(2), max_value_bytes: 10 };
    const NONE: Asked = Asked { count: None, word: None };

    fn some(count: u32) -> Asked {
        Asked::count(count)
    }

    #[test]
    fn accepts_good_writes_with_defaults_and_overrides() {
        let ok = write(&LIMITS, b"k", Some(b"v"), b"", NONE).unwrap();
        assert_eq!(ok.w, Quorum::Count(2));
        assert!(ok.context.is_empty());
        assert_eq!(write(&LIMITS, b"k", None, b"", some(3)).unwrap().w, Quorum::Count(3));
        assert_eq!(read(&LIMITS, &[7; MAX_KEY_BYTES], some(1)).unwrap().r, Quorum::Count(1));
        let local = Asked { count: Some(3), word: Some("local".into()) };
        assert_eq!(read(&LIMITS, b"k", local).unwrap().r, Quorum::Local, "the word wins");
    }

    #[test]
    fn rejects_bad_writes() {
        let msg = |r: Result<ValidWrite, InvalidRequest>| r.unwrap_err().to_string();
        assert_eq!(msg(write(&LIMITS, b"", Some(b"v"), b"", NONE)), "key must not be empty");
        assert!(msg(write(&LIMITS, &[0; 1025], Some(b"v"), b"", NONE)).contains("1025 bytes"));
        assert!(msg(write(&LIMITS, b"k", Some(&[0; 11]), b"", NONE)).contains("limit is 10"));
        assert!(msg(write(&LIMITS, b"k", Some(b"v"), b"", some(4))).contains("w must be between 1 and n=3"));
        assert!(msg(write(&LIMITS, b"k", Some(b"v"), b"", some(0))).contains("got 0"));
        assert!(msg(write(&LIMITS, b"k", Some(b"v"), b"junk", NONE)).starts_with("malformed context: "));
        assert!(read(&LIMITS, b"k", some(4)).is_err());
        let word = |w: &str| Asked { count: None, word: Some(w.into()) };
        assert!(msg(write(&LIMITS, b"k", Some(b"v"), b"", word("most"))).contains("\"most\""));
        assert!(msg(write(&LIMITS, b"k", Some(b"v"), b"", word("4"))).contains("w must be between 1 and n=3"));
    }
}
