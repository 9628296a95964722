//! The client for Redis, a peer store (a primary with asynchronous replicas).
//!
//! Redis keeps no version per key, so the checkers could not tell a stale
//! read from a fresh one. The client therefore makes one the store itself
//! assigns: every write runs a Lua script on the primary that increments a
//! per-key counter and stores `<counter>:<value>` atomically; replicas apply
//! the script's effects in the primary's order. A read parses the counter
//! back into the clock `{"seq": <counter>}`. The counter is the primary's
//! serial order of writes to the key, so "covers" is exact as long as the
//! primary does not change (this workbench runs no failover). The results
//! say so (`run.json` records the store), and a value that does not parse is
//! an error, never guessed.
//!
//! Writes always go to the primary; reads go to the member this client is
//! bound to: the primary, or a replica (`--redis-read replica`), which is
//! where stale reads come from.

use std::collections::BTreeMap;
use std::time::Duration;

use history::Version;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use crate::{Client, ClientError, ReadReply, WriteReply};

/// INCR the key's version counter and SET `<counter>:<value>`, atomically.
const WRITE_SCRIPT: &str = "local v = redis.call('INCR', KEYS[2]) \
     redis.call('SET', KEYS[1], v .. ':' .. ARGV[1]) return v";

/// A client of one Redis deployment: writes go to the primary, reads to the
/// member it is bound to.
pub struct RedisClient {
    /// Where writes go.
    primary: String,
    /// Where reads go (the primary or one replica).
    reader: String,
    /// Connections made on first use, so a member down at start-up is an op
    /// outcome, not a setup error.
    connections: Mutex<BTreeMap<String, MultiplexedConnection>>,
    /// Per-request deadline.
    timeout: Duration,
}

impl RedisClient {
    /// `primary` and `reader` are `redis://host:port` URLs.
    pub fn new(primary: &str, reader: &str, timeout_ms: u64) -> RedisClient {
        RedisClient {
            primary: primary.to_string(),
            reader: reader.to_string(),
            connections: Mutex::new(BTreeMap::new()),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    async fn connection(&self, url: &str) -> Result<MultiplexedConnection, String> {
        let mut guard = self.connections.lock().await;
        if let Some(con) = guard.get(url) {
            return Ok(con.clone());
        }
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let con = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        guard.insert(url.to_string(), con.clone());
        Ok(con)
    }

    /// Forgets a connection after an error, so the next op reconnects.
    async fn drop_connection(&self, url: &str) {
        self.connections.lock().await.remove(url);
    }
}

fn seq_version(seq: u64) -> Version {
    Version { clock: BTreeMap::from([("seq".to_string(), seq)]), ts: 0, dot: None }
}

/// `<counter>:<value>` back into its parts.
fn parse_stored(stored: &str) -> Result<(u64, String), String> {
    let (seq, value) = stored.split_once(':').ok_or_else(|| format!("stored value {stored:?} has no version"))?;
    let seq = seq.parse().map_err(|_| format!("stored value {stored:?} has a malformed version"))?;
    Ok((seq, value.to_string()))
}

#[async_trait::async_trait]
impl Client for RedisClient {
    async fn read(&self, key: &str) -> Result<ReadReply, ClientError> {
        let call = async {
            let mut con = self.connection(&self.reader).await?;
            redis::cmd("GET").arg(key).query_async::<Option<String>>(&mut con).await.map_err(|e| e.to_string())
        };
        let stored = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(stored)) => stored,
            Ok(Err(e)) => {
                self.drop_connection(&self.reader).await;
                return Err(ClientError::Definite(e));
            }
            Err(_) => return Err(ClientError::Indefinite("timeout: no answer".into())),
        };
        let siblings = match stored {
            None => Vec::new(),
            Some(s) => {
                let (seq, value) = parse_stored(&s).map_err(ClientError::Definite)?;
                vec![(Some(value), seq_version(seq))]
            }
        };
        Ok(ReadReply { siblings, context: Vec::new(), answered_by: None })
    }

    async fn write(&self, key: &str, value: &str, _context: &[u8]) -> Result<WriteReply, ClientError> {
        let call = async {
            let mut con = self.connection(&self.primary).await?;
            redis::Script::new(WRITE_SCRIPT)
                .key(key)
                .key(format!("__version:{key}"))
                .arg(value)
                .invoke_async::<u64>(&mut con)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(seq)) => Ok(WriteReply { version: seq_version(seq), hinted_for: Vec::new() }),
            Ok(Err(e)) => {
                self.drop_connection(&self.primary).await;
                Err(ClientError::Indefinite(e))
            }
            Err(_) => Err(ClientError::Indefinite("timeout: no answer".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_parse_or_fail_loudly() {
        assert_eq!(parse_stored("12:p3-4").unwrap(), (12, "p3-4".to_string()));
        assert_eq!(parse_stored("7:a:b").unwrap(), (7, "a:b".to_string()));
        assert!(parse_stored("p3-4").is_err());
        assert!(parse_stored("x:p3-4").is_err());
    }
}
