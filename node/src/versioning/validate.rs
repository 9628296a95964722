//! Validation of client requests, before anything is stored.
//!
//! The requirements are strict: empty or oversized keys, oversized values,
//! impossible quorums and malformed contexts are rejected with a clear
//! `INVALID_ARGUMENT` and nothing is stored. Doing all checks here, in one
//! pure function per request kind, makes "nothing stored" easy to see: the
//! coordinator only starts once validation returned a [`ValidWrite`] or
//! [`ValidRead`].

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
    pub w: usize,
    /// Default R when the request does not override it.
    pub r: usize,
    /// Largest accepted value.
    pub max_value_bytes: usize,
}

/// A write that passed validation.
#[derive(Debug, Clone)]
pub struct ValidWrite {
    /// The clock of the client's context (empty: blind write).
    pub context: VClock,
    /// The write quorum to wait for.
    pub w: usize,
}

/// A read that passed validation.
#[derive(Debug, Clone, Copy)]
pub struct ValidRead {
    /// The read quorum to wait for.
    pub r: usize,
}

/// Checks a Put (`value: Some`) or a Delete (`value: None`).
pub fn write(
    limits: &Limits,
    key: &[u8],
    value: Option<&[u8]>,
    context: &[u8],
    w: Option<u32>,
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
pub fn read(limits: &Limits, key: &[u8], r: Option<u32>) -> Result<ValidRead, InvalidRequest> {
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

fn quorum(name: &'static str, requested: Option<u32>, default: usize, n: usize) -> Result<usize, InvalidRequest> {
    let Some(got) = requested else {
        return Ok(default);
    };
    let q = got as usize;
    if q == 0 || q > n {
        return Err(InvalidRequest::BadQuorum { name, got, n });
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { n: 3, w: 2, r: 2, max_value_bytes: 10 };

    #[test]
    fn accepts_good_writes_with_defaults_and_overrides() {
        let ok = write(&LIMITS, b"k", Some(b"v"), b"", None).unwrap();
        assert_eq!(ok.w, 2);
        assert!(ok.context.is_empty());
        assert_eq!(write(&LIMITS, b"k", None, b"", Some(3)).unwrap().w, 3);
        assert_eq!(read(&LIMITS, &[7; MAX_KEY_BYTES], Some(1)).unwrap().r, 1);
    }

    #[test]
    fn rejects_bad_writes() {
        let msg = |r: Result<ValidWrite, InvalidRequest>| r.unwrap_err().to_string();
        assert_eq!(msg(write(&LIMITS, b"", Some(b"v"), b"", None)), "key must not be empty");
        assert!(msg(write(&LIMITS, &[0; 1025], Some(b"v"), b"", None)).contains("1025 bytes"));
        assert!(msg(write(&LIMITS, b"k", Some(&[0; 11]), b"", None)).contains("limit is 10"));
        assert!(msg(write(&LIMITS, b"k", Some(b"v"), b"", Some(4))).contains("w must be between 1 and n=3"));
        assert!(msg(write(&LIMITS, b"k", Some(b"v"), b"", Some(0))).contains("got 0"));
        assert!(msg(write(&LIMITS, b"k", Some(b"v"), b"junk", None)).starts_with("malformed context: "));
        assert!(read(&LIMITS, b"k", Some(4)).is_err());
    }
}
