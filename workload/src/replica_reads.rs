//! Replica reads: each home replica's own copy of every key a hinted write
//! touched, written to `replica_reads.jsonl` for the hint-delivery checker.
//!
//! Why a separate read: a coordinator's read merges R replies (and may
//! repair on the way), so it cannot say whether one particular replica holds
//! a write. Hinted handoff promises exactly that, so for every key with an
//! acknowledged write whose answer named homes in `hinted_for`, the harness
//! asks a live node for the key's preference list (`Admin.PreferenceList`)
//! and then each home, plus any node named in `hinted_for` that the ring no
//! longer lists, for its stored siblings (`Admin.LocalGet`, no
//! coordinator). One line per (key, node); a node that does not answer is
//! recorded as unreachable, never skipped.
//!
//! The harness runs this after the quiet period and before the final reads,
//! so the final reads' read repair cannot deliver what a hint failed to.
//! Only our store has these admin calls; peer stores get no file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use history::{HistoryError, JsonlWriter, Op, OpType, Recorder, ReplicaRead, Sibling};
use proto::admin_client::AdminClient;
use tonic::transport::Channel;

use crate::dynamo::sibling_of;
use crate::Decode;

/// Per-call deadline of an admin read.
pub const TIMEOUT_MS: u64 = 2_000;

/// What the replica reads did, for the log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaReadSummary {
    /// Keys with at least one hinted acknowledged write.
    pub keys: usize,
    /// Lines written.
    pub reads: usize,
    /// Lines whose node did not answer.
    pub unreachable: usize,
}

/// Every key with a hinted acknowledged write, and the homes named for it.
pub fn hinted_keys(ops: &[Op]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.kind == OpType::Ok && !op.hinted_for.is_empty()) {
        let Some(key) = &op.key else { continue };
        out.entry(key.clone()).or_default().extend(op.hinted_for.iter().cloned());
    }
    out
}

/// Reads every hinted key on its homes through `channels` (node -> a
/// lazily connected channel to its admin service, each call bounded by the
/// channel's timeout and again by [`TIMEOUT_MS`] here) and writes `path`
/// (always created, empty when nothing was hinted).
pub async fn replica_reads(
    channels: &BTreeMap<String, Channel>,
    recorder: Arc<Recorder>,
    decode: Decode,
    path: &Path,
) -> Result<ReplicaReadSummary, HistoryError> {
    let mut writer = JsonlWriter::create(path)?;
    let keys = recorder.hinted_keys();
    let admins: BTreeMap<&str, AdminClient<Channel>> =
        channels.iter().map(|(node, channel)| (node.as_str(), AdminClient::new(channel.clone()))).collect();
    let mut summary = ReplicaReadSummary { keys: keys.len(), ..Default::default() };
    for (key, hinted) in &keys {
        let homes = preference_list(&admins, key).await;
        let nodes: BTreeSet<&String> = homes.iter().chain(hinted.iter()).collect();
        for node in nodes {
            let read = local_read(admins.get(node.as_str()), key, node, homes.contains(node), decode, &recorder).await;
            summary.reads += 1;
            summary.unreachable += usize::from(!read.reachable);
            writer.append(&read)?;
        }
    }
    Ok(summary)
}

/// The key's home replicas from the first node that answers; empty when
/// none does (then only the `hinted_for` nodes are read).
async fn preference_list(admins: &BTreeMap<&str, AdminClient<Channel>>, key: &str) -> BTreeSet<String> {
    for client in admins.values() {
        let request = proto::PreferenceListRequest { key: key.as_bytes().to_vec() };
        if let Ok(reply) = with_deadline(client.clone().preference_list(request)).await {
            return reply.into_inner().replicas.into_iter().collect();
        }
    }
    BTreeSet::new()
}

/// One node's own stored siblings for `key`, as a [`ReplicaRead`] line.
async fn local_read(
    client: Option<&AdminClient<Channel>>,
    key: &str,
    node: &str,
    home: bool,
    decode: Decode,
    recorder: &Recorder,
) -> ReplicaRead {
    let mut read = ReplicaRead {
        time: recorder.now_ns(),
        key: key.to_string(),
        node: node.to_string(),
        reachable: false,
        siblings: Vec::new(),
        home,
        error: None,
    };
    let Some(client) = client else {
        read.error = Some("no endpoint for this node".into());
        return read;
    };
    let request = proto::LocalGetRequest { key: key.as_bytes().to_vec() };
    match with_deadline(client.clone().local_get(request)).await {
        Ok(reply) => {
            let siblings: Vec<_> = reply.into_inner().siblings.into_iter().map(sibling_of).collect();
            match serde_json::from_value::<Vec<Sibling>>(decode(&siblings)) {
                Ok(parsed) => (read.reachable, read.siblings) = (true, parsed),
                Err(e) => read.error = Some(format!("cannot decode the siblings: {e}")),
            }
        }
        Err(e) => read.error = Some(e),
    }
    read
}

/// Runs an admin call under the deadline, whatever the transport does.
async fn with_deadline<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<tonic::Response<T>, String> {
    match tokio::time::timeout(Duration::from_millis(TIMEOUT_MS), call).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Err(_) => Err(format!("no answer within {TIMEOUT_MS} ms")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hinted_keys_collect_homes_of_ok_writes_only() {
        let mut a = Op::client(0, OpType::Ok, "write", "k1", "n1");
        a.hinted_for = vec!["n3".into()];
        let mut b = Op::client(1, OpType::Ok, "add", "k1", "n2");
        b.hinted_for = vec!["n2".into(), "n3".into()];
        let mut info = Op::client(2, OpType::Info, "write", "k2", "n1");
        info.hinted_for = vec!["n1".into()];
        let plain = Op::client(3, OpType::Ok, "write", "k3", "n1");
        let keys = hinted_keys(&[a, b, info, plain]);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["k1"].iter().collect::<Vec<_>>(), ["n2", "n3"]);
    }
}
