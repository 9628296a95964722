//! Active anti-entropy: replicas of a key range compare Merkle trees in the
//! background and exchange only the keys that differ.
//!
//! Read repair only fixes keys someone reads, and hinted handoff only
//! covers writes a stand-in saw; anti-entropy is the backstop that makes
//! every replica converge eventually, for keys nobody touches again.
//!
//! **Ranges.** A range is the set of ring arcs that share one replica set
//! (`Ring::replica_sets`): all their keys live on exactly the same N nodes,
//! so those N can compare them as one unit. We chose this over one tree per
//! arc (vnode range) because a 3-node ring with 64 vnodes each has 192 arcs
//! but a single replica set: one tree and one exchange per interval instead
//! of 192. A range is named by its sorted replica set, `"n1+n2+n3"`, which
//! every replica computes identically from the same ring, so the Merkle
//! roots that `Admin.Status` reports can be compared across nodes.
//!
//! **Index.** [`AaeIndex`] holds one [`RangeIndex`] (key digests + tree, see
//! `merkle.rs`) per range this node replicates. It observes every change to
//! the replica ([`StoreObserver`], called by `ReplicaStore::store` under the
//! key's lock), so trees are updated incrementally on write and never
//! rebuilt per exchange; [`AaeIndex::rebuild`] scans storage once at startup
//! (a disk engine may hold data) or when the ring changes
//! ([`AaeIndex::set_ring`]). The index lives in memory: about key + 40
//! bytes per key.
//!
//! **Exchange** ([`exchange`]), initiated every `--aae-interval-ms` by each
//! replica with another replica of each range (rotating through them):
//! 1. descend both trees top-down, level by level (`TreeNodes`): only the
//!    children of differing nodes are asked for, so a few differences cost
//!    O(differences x depth) hashes, not O(buckets);
//! 2. list the keys and digests of the differing leaves (`BucketDigests`);
//! 3. push the local sets of keys only this side holds, pull the peer's
//!    sets of keys only it holds, and for keys both hold differently offer
//!    just the local *versions* (clocks and timestamps, no values): the
//!    peer returns its set only if this side lacks something of it
//!    ([`lacks`]) and names the keys it lacks something of, which are then
//!    pushed (`SyncKeys`). A key newer on one side thus crosses the network
//!    once, not in both directions. Both sides merge with the normal replica
//!    merge, so after an exchange both hold the merge of both.
//!
//! Two replicas initiating the same range at the same moment would each
//! send the same repairs; a node refuses (`ABORTED`) an exchange of a range
//! it is itself initiating, and the refused initiator simply skips its turn.
//!
//! A semaphore (`--aae-concurrency`) bounds concurrent exchanges, every RPC
//! has a timeout, and batches are bounded in count and bytes, so the
//! background work cannot starve client traffic nor grow without bound.
//! The exchange logic is written against the [`AaePeer`] trait, so tests
//! run it between two in-memory replicas without sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use proto::anti_entropy_client::AntiEntropyClient;
use proto::anti_entropy_server::AntiEntropy as AntiEntropyRpc;
use tokio::sync::Semaphore;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tracing::{debug, info, warn};
use xxhash_rust::xxh3::xxh3_64;

use crate::repair::merkle::{bucket_of, children_of, diff_keys, set_hash, KeyDiff, RangeIndex};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::node_id::NodeId;
use crate::replica::{ReplicaError, ReplicaStore};
use crate::placement::ring::Ring;
use crate::storage::{Storage, StorageError};
use crate::versioning::vclock::Version;
use crate::versioning::vclock::{Resolution, SiblingSet};
use crate::wire;

/// Most tree nodes or buckets asked for in one RPC.
const MAX_IDS_PER_CALL: usize = 8_192;
/// Most keys pushed or wanted in one `SyncKeys` call.
const MAX_KEYS_PER_SYNC: usize = 1_024;
/// Soft cap on the encoded bytes pushed in one `SyncKeys` call (below
/// tonic's 4 MiB default message limit even with one max-size value over).
const MAX_SYNC_BYTES: usize = 1 << 20;
/// Entries read per page when rebuilding the index from storage.
const SCAN_PAGE: usize = 1_024;
/// Shortest timeout of one anti-entropy RPC.
const MIN_RPC_TIMEOUT_MS: u64 = 2_000;

/// Why an exchange (or a part of it) failed.
#[derive(Debug, thiserror::Error)]
pub enum AaeError {
    /// The peer could not be reached or refused.
    #[error("peer {peer}: {reason}")]
    Peer {
        /// The other replica.
        peer: NodeId,
        /// What went wrong.
        reason: String,
    },
    /// The peer's tree has another shape (different `--merkle-buckets`).
    #[error("range {0} is unknown here or has another bucket count")]
    Mismatch(String),
    /// The peer is itself exchanging this range right now; skip this turn.
    #[error("peer {0} is busy with this range")]
    Busy(NodeId),
    /// The local replica failed.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The storage scan failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The peer sent siblings that do not decode.
    #[error("bad siblings from peer: {0}")]
    Wire(#[from] wire::WireError),
}

/// Told about every change to a replica's stored set.
pub trait StoreObserver: Send + Sync + std::fmt::Debug {
    /// `key` now holds `merged` (called under the key's lock, so calls for
    /// one key arrive in the order of the changes).
    fn stored(&self, key: &[u8], merged: &SiblingSet);
}

/// The name of a range: its sorted replica set joined by `+`.
pub fn range_name(replicas: &[NodeId]) -> String {
    let mut sorted: Vec<&NodeId> = replicas.iter().collect();
    sorted.sort();
    let names: Vec<String> = sorted.iter().map(|n| n.to_string()).collect();
    names.join("+")
}

/// One range this node replicates.
#[derive(Debug)]
struct RangeEntry {
    /// The range's replicas (sorted), this node included.
    replicas: Vec<NodeId>,
    /// Digests and tree.
    index: RangeIndex,
}

/// The ring and the ranges it gives this node.
#[derive(Debug)]
struct IndexState {
    /// The ring placement is computed on.
    ring: Ring,
    /// Range name -> its index, for every range that includes this node.
    ranges: BTreeMap<String, RangeEntry>,
}

/// Every range this node replicates, with its Merkle tree.
#[derive(Debug)]
pub struct AaeIndex {
    /// This node.
    me: NodeId,
    /// Replicas per key.
    n: usize,
    /// Leaves per tree.
    buckets: usize,
    /// Ring and ranges, under one lock (a write's update is O(log buckets)).
    state: Mutex<IndexState>,
}

impl AaeIndex {
    /// Empty trees for every range of `ring` that includes `me`.
    pub fn new(me: NodeId, n: usize, buckets: usize, ring: Ring) -> Self {
        let ranges = ranges_for(&ring, &me, n, buckets);
        AaeIndex {
            me,
            n,
            buckets,
            state: Mutex::new(IndexState { ring, ranges }),
        }
    }

    /// Leaves per tree.
    pub fn buckets(&self) -> usize {
        self.buckets
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IndexState> {
        // A panic while updating a tree leaves at worst a stale digest,
        // which the next exchange repairs; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Recomputes every tree from `storage` (startup, ring change). Entries
    /// that do not decode as sibling sets are skipped and counted. Holds the
    /// lock throughout, so concurrent writes wait and none is lost.
    pub fn rebuild(&self, storage: &dyn Storage, mode: Resolution) -> Result<usize, StorageError> {
        let mut state = self.lock();
        state.ranges = ranges_for(&state.ring, &self.me, self.n, self.buckets);
        let (mut from, mut skipped) = (Vec::new(), 0usize);
        loop {
            let page = storage.scan(&from, SCAN_PAGE)?;
            for (key, bytes) in &page {
                match wire::decode_set(bytes, mode) {
                    Ok(set) => upsert(&mut state, &self.me, self.n, key, set_hash(&set)),
                    Err(_) => skipped += 1,
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == SCAN_PAGE => from = successor(last),
                _ => break,
            }
        }
        Ok(skipped)
    }

    /// Switches to a new ring and rebuilds from storage (membership change).
    pub fn set_ring(
        &self,
        ring: Ring,
        storage: &dyn Storage,
        mode: Resolution,
    ) -> Result<usize, StorageError> {
        self.lock().ring = ring;
        self.rebuild(storage, mode)
    }

    /// The members of the ring the ranges are computed on.
    pub fn ring_members(&self) -> Vec<crate::placement::ring::RingMember> {
        self.lock().ring.members().to_vec()
    }

    /// Range name -> root hash (16 hex digits) of every range replicated here.
    pub fn roots(&self) -> BTreeMap<String, String> {
        self.lock()
            .ranges
            .iter()
            .map(|(name, entry)| (name.clone(), format!("{:016x}", entry.index.tree().root())))
            .collect()
    }

    /// Range name -> the other replicas of that range.
    pub fn peers_by_range(&self) -> BTreeMap<String, Vec<NodeId>> {
        self.lock()
            .ranges
            .iter()
            .map(|(name, entry)| {
                let others = entry
                    .replicas
                    .iter()
                    .filter(|r| **r != self.me)
                    .cloned()
                    .collect();
                (name.clone(), others)
            })
            .collect()
    }

    /// The hashes of the given tree nodes of `range`.
    pub fn tree_nodes(&self, range: &str, nodes: &[u32]) -> Result<Vec<u64>, AaeError> {
        let state = self.lock();
        let entry = state
            .ranges
            .get(range)
            .ok_or_else(|| AaeError::Mismatch(range.to_string()))?;
        Ok(nodes
            .iter()
            .map(|i| entry.index.tree().node(*i).unwrap_or(0))
            .collect())
    }

    /// Of `asked`, the nodes whose local hash differs from `theirs`.
    fn differing(&self, range: &str, asked: &[u32], theirs: &[u64]) -> Result<Vec<u32>, AaeError> {
        let state = self.lock();
        let entry = state
            .ranges
            .get(range)
            .ok_or_else(|| AaeError::Mismatch(range.to_string()))?;
        Ok(entry.index.tree().differing(asked, theirs))
    }

    /// The (key, digest) pairs of the given buckets of `range`.
    pub fn bucket_digests(
        &self,
        range: &str,
        buckets: &[u32],
    ) -> Result<Vec<(Vec<u8>, u64)>, AaeError> {
        let state = self.lock();
        let entry = state
            .ranges
            .get(range)
            .ok_or_else(|| AaeError::Mismatch(range.to_string()))?;
        Ok(buckets
            .iter()
            .flat_map(|b| entry.index.bucket_digests(*b))
            .collect())
    }
}

impl StoreObserver for AaeIndex {
    fn stored(&self, key: &[u8], merged: &SiblingSet) {
        let hash = set_hash(merged);
        let mut state = self.lock();
        upsert(&mut state, &self.me, self.n, key, hash);
    }
}

/// Records a key's new digest in its range, if this node replicates it.
fn upsert(state: &mut IndexState, me: &NodeId, n: usize, key: &[u8], set_hash: u64) {
    let replicas = state.ring.preference_list(key, n);
    if !replicas.contains(me) {
        return;
    }
    let name = range_name(&replicas);
    match state.ranges.get_mut(&name) {
        Some(entry) => entry.index.upsert(key, set_hash),
        None => debug_assert!(false, "range {name} missing from the ring's replica sets"),
    }
}

/// Empty indices for the ranges of `ring` that include `me`.
fn ranges_for(ring: &Ring, me: &NodeId, n: usize, buckets: usize) -> BTreeMap<String, RangeEntry> {
    ring.replica_sets(n)
        .into_iter()
        .filter(|set| set.contains(me))
        .map(|replicas| {
            let entry = RangeEntry {
                index: RangeIndex::new(buckets),
                replicas: replicas.clone(),
            };
            (range_name(&replicas), entry)
        })
        .collect()
}

/// The smallest key greater than `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// True when a replica holding `mine` lacks something of `theirs`, i.e.
/// merging `theirs` in would change it. Under `siblings`: some version of
/// theirs is included by none of mine (`Version::includes`, the merge's own
/// rule; an equal history counts as held).
/// Under `lww`: their greatest version beats our greatest.
pub fn lacks(mine: &[Version], theirs: &[Version], mode: Resolution) -> bool {
    match mode {
        Resolution::Siblings => theirs
            .iter()
            .any(|t| !mine.iter().any(|m| m.includes(t))),
        Resolution::Lww => {
            let best = |vs: &[Version]| vs.iter().max_by(|a, b| a.lww_cmp(b)).cloned();
            match (best(mine), best(theirs)) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(m), Some(t)) => t.lww_cmp(&m).is_gt(),
            }
        }
    }
}

/// Which way a key both sides hold differently must go: (the responder
/// lacks something, the initiator lacks something). Sets whose versions
/// say neither (equal clocks with different contents, which a correct
/// system never produces) go both ways, so an exchange never stalls.
pub fn directions(responder: &[Version], initiator: &[Version], mode: Resolution) -> (bool, bool) {
    let responder_lacks = lacks(responder, initiator, mode);
    let initiator_lacks = lacks(initiator, responder, mode);
    if responder_lacks || initiator_lacks {
        (responder_lacks, initiator_lacks)
    } else {
        (true, true)
    }
}

/// The versions of a set's siblings.
fn versions_of(set: &SiblingSet) -> Vec<Version> {
    set.siblings().iter().map(|s| s.version.clone()).collect()
}

/// What the responder of a `SyncKeys` returns.
#[derive(Debug, Clone, Default)]
pub struct SyncReply {
    /// Its sets of the wanted keys and of offered keys the initiator lacks.
    pub entries: Vec<proto::KeyEntry>,
    /// Offered keys it lacks something of.
    pub need: Vec<Vec<u8>>,
}

/// The other side of an exchange, as the initiator sees it.
pub trait AaePeer {
    /// The peer's hashes of the given nodes of `range`'s tree.
    fn tree_nodes(
        &self,
        range: &str,
        nodes: Vec<u32>,
    ) -> impl Future<Output = Result<Vec<u64>, AaeError>> + Send;
    /// The peer's (key, digest) pairs of the given buckets.
    fn bucket_digests(
        &self,
        range: &str,
        buckets: Vec<u32>,
    ) -> impl Future<Output = Result<Vec<(Vec<u8>, u64)>, AaeError>> + Send;
    /// Merges `push` into the peer; returns its sets of `want`, and for
    /// `offer` its sets where we lack something and the keys it lacks
    /// something of (all read before the push).
    fn sync_keys(
        &self,
        range: &str,
        push: Vec<proto::KeyEntry>,
        want: Vec<Vec<u8>>,
        offer: Vec<proto::KeyVersions>,
    ) -> impl Future<Output = Result<SyncReply, AaeError>> + Send;
}

/// One replica's side of the protocol: its index, its store, its counters.
#[derive(Debug, Clone, Copy)]
pub struct Replica<'a> {
    /// The trees.
    pub index: &'a AaeIndex,
    /// The data.
    pub store: &'a ReplicaStore,
    /// Where exchanges are counted.
    pub metrics: &'a Metrics,
    /// How siblings decode and merge.
    pub mode: Resolution,
}

impl Replica<'_> {
    /// Serves `SyncKeys`: reads `want` and settles `offer`, then merges
    /// `push`; counts the entries it returns as sent.
    pub fn sync_keys(
        &self,
        push: Vec<proto::KeyEntry>,
        want: &[Vec<u8>],
        offer: Vec<proto::KeyVersions>,
    ) -> Result<SyncReply, AaeError> {
        let mut reply = SyncReply {
            entries: self.read_entries(want)?,
            need: Vec::new(),
        };
        for offered in offer {
            let theirs: Vec<Version> = offered
                .versions
                .iter()
                .map(wire::version_from_proto)
                .collect::<Result<_, _>>()?;
            let mine = self.store.fetch(&offered.key)?;
            let (i_lack, they_lack) = directions(&versions_of(&mine), &theirs, self.mode);
            if they_lack && !mine.is_empty() {
                reply.entries.push(proto::KeyEntry {
                    key: offered.key.clone(),
                    siblings: wire::set_to_proto(&mine),
                });
            }
            if i_lack {
                reply.need.push(offered.key);
            }
        }
        let bytes: usize = reply.entries.iter().map(Message::encoded_len).sum();
        self.metrics.aae_keys_sent.add(reply.entries.len() as u64);
        self.metrics.aae_bytes_sent.add(bytes as u64);
        self.merge_entries(push)?;
        Ok(reply)
    }

    /// The versions of the given keys, offered instead of their values.
    fn read_versions(&self, keys: &[Vec<u8>]) -> Result<Vec<proto::KeyVersions>, AaeError> {
        let mut offers = Vec::with_capacity(keys.len());
        for key in keys {
            let set = self.store.fetch(key)?;
            offers.push(proto::KeyVersions {
                key: key.clone(),
                versions: set
                    .siblings()
                    .iter()
                    .map(|s| wire::version_to_proto(&s.version))
                    .collect(),
            });
        }
        Ok(offers)
    }

    /// The stored sets of `keys`, as wire entries (absent keys skipped).
    fn read_entries(&self, keys: &[Vec<u8>]) -> Result<Vec<proto::KeyEntry>, AaeError> {
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            let set = self.store.fetch(key)?;
            if !set.is_empty() {
                entries.push(proto::KeyEntry {
                    key: key.clone(),
                    siblings: wire::set_to_proto(&set),
                });
            }
        }
        Ok(entries)
    }

    /// Merges a peer's entries into the local replica.
    fn merge_entries(&self, entries: Vec<proto::KeyEntry>) -> Result<(), AaeError> {
        for entry in entries {
            let set = wire::set_from_proto(entry.siblings, self.mode)?;
            if self.store.store(&entry.key, set)?.changed {
                self.metrics.aae_keys_repaired.inc();
            }
        }
        Ok(())
    }
}

/// What one exchange found and moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExchangeReport {
    /// Tree nodes compared at every level.
    pub nodes_compared: usize,
    /// Leaf buckets compared.
    pub buckets_compared: usize,
    /// Leaf buckets that differed.
    pub buckets_differing: usize,
    /// Keys pushed to the peer.
    pub keys_pushed: usize,
    /// Keys pulled from the peer.
    pub keys_pulled: usize,
    /// Encoded bytes of the pushed entries.
    pub bytes_pushed: usize,
}

/// Runs one exchange of `range` between `local` and `peer` (see the module
/// doc), counting into `local.metrics`.
pub async fn exchange<P: AaePeer>(
    local: Replica<'_>,
    peer: &P,
    range: &str,
) -> Result<ExchangeReport, AaeError> {
    let mut report = ExchangeReport::default();
    let leaves = differing_leaves(local, peer, range, &mut report).await?;
    report.buckets_differing = leaves.len();
    local
        .metrics
        .aae_buckets_compared
        .add(report.buckets_compared as u64);
    local.metrics.aae_buckets_differing.add(leaves.len() as u64);
    if !leaves.is_empty() {
        let diff = differing_keys(local, peer, range, &leaves).await?;
        sync(local, peer, range, diff, &mut report).await?;
    }
    local.metrics.aae_exchanges.inc();
    Ok(report)
}

/// Descends the trees top-down; returns the buckets whose leaves differ.
async fn differing_leaves<P: AaePeer>(
    local: Replica<'_>,
    peer: &P,
    range: &str,
    report: &mut ExchangeReport,
) -> Result<Vec<u32>, AaeError> {
    let buckets = local.index.buckets() as u32;
    let mut level = vec![1u32];
    // Bounded: one iteration per tree level (log2 buckets + 1).
    for _depth in 0..=buckets.trailing_zeros() {
        let mut differing = Vec::new();
        for chunk in level.chunks(MAX_IDS_PER_CALL) {
            let theirs = peer.tree_nodes(range, chunk.to_vec()).await?;
            if theirs.len() != chunk.len() {
                return Err(AaeError::Mismatch(range.to_string()));
            }
            local
                .metrics
                .aae_tree_bytes_sent
                .add(4 * chunk.len() as u64);
            differing.extend(local.index.differing(range, chunk, &theirs)?);
        }
        report.nodes_compared += level.len();
        if level[0] >= buckets {
            report.buckets_compared += level.len();
            return Ok(differing.iter().map(|i| i - buckets).collect());
        }
        if differing.is_empty() {
            return Ok(Vec::new());
        }
        level = children_of(&differing);
    }
    unreachable!(
        "a tree of {buckets} leaves has {} levels",
        buckets.trailing_zeros() + 1
    )
}

/// Lists both sides' keys in the differing buckets; what to push and pull.
async fn differing_keys<P: AaePeer>(
    local: Replica<'_>,
    peer: &P,
    range: &str,
    leaves: &[u32],
) -> Result<KeyDiff, AaeError> {
    let buckets = local.index.buckets();
    let mut theirs: BTreeMap<u32, Vec<(Vec<u8>, u64)>> = BTreeMap::new();
    for chunk in leaves.chunks(MAX_IDS_PER_CALL) {
        local
            .metrics
            .aae_tree_bytes_sent
            .add(4 * chunk.len() as u64);
        for (key, digest) in peer.bucket_digests(range, chunk.to_vec()).await? {
            theirs
                .entry(bucket_of(&key, buckets))
                .or_default()
                .push((key, digest));
        }
    }
    let mut diff = KeyDiff::default();
    for bucket in leaves {
        let mine = local.index.bucket_digests(range, &[*bucket])?;
        let remote = theirs.remove(bucket).unwrap_or_default();
        diff.extend(diff_keys(&mine, &remote));
    }
    Ok(diff)
}

/// Pushes, pulls and settles the differing keys in bounded batches.
async fn sync<P: AaePeer>(
    local: Replica<'_>,
    peer: &P,
    range: &str,
    diff: KeyDiff,
    report: &mut ExchangeReport,
) -> Result<(), AaeError> {
    let mut push = diff.push.into_iter().peekable();
    let mut pull = diff.pull.into_iter();
    let mut differ = diff.differ.into_iter();
    // Bounded: each call consumes at least one key while any remain.
    loop {
        let (entries, bytes) = next_push_batch(local, &mut push)?;
        let want: Vec<Vec<u8>> = pull.by_ref().take(MAX_KEYS_PER_SYNC).collect();
        let offered: Vec<Vec<u8>> = differ.by_ref().take(MAX_KEYS_PER_SYNC).collect();
        if entries.is_empty() && want.is_empty() && offered.is_empty() {
            return Ok(());
        }
        let offer = local.read_versions(&offered)?;
        local
            .metrics
            .aae_tree_bytes_sent
            .add(offer.iter().map(Message::encoded_len).sum::<usize>() as u64);
        count_push(local, report, entries.len(), bytes);
        let reply = peer.sync_keys(range, entries, want, offer).await?;
        report.keys_pulled += reply.entries.len();
        local.merge_entries(reply.entries)?;
        push_needed(local, peer, range, reply.need, report).await?;
    }
}

/// Pushes the keys the peer said it lacks something of (after merging its
/// versions here, so it gets the merge).
async fn push_needed<P: AaePeer>(
    local: Replica<'_>,
    peer: &P,
    range: &str,
    need: Vec<Vec<u8>>,
    report: &mut ExchangeReport,
) -> Result<(), AaeError> {
    let mut need = need.into_iter().peekable();
    while need.peek().is_some() {
        let (entries, bytes) = next_push_batch(local, &mut need)?;
        count_push(local, report, entries.len(), bytes);
        peer.sync_keys(range, entries, Vec::new(), Vec::new())
            .await?;
    }
    Ok(())
}

fn count_push(local: Replica<'_>, report: &mut ExchangeReport, keys: usize, bytes: usize) {
    report.keys_pushed += keys;
    report.bytes_pushed += bytes;
    local.metrics.aae_keys_sent.add(keys as u64);
    local.metrics.aae_bytes_sent.add(bytes as u64);
}

/// The next batch of local entries to push: at most `MAX_KEYS_PER_SYNC`
/// keys and about `MAX_SYNC_BYTES` bytes (at least one key if any remain).
fn next_push_batch(
    local: Replica<'_>,
    keys: &mut std::iter::Peekable<std::vec::IntoIter<Vec<u8>>>,
) -> Result<(Vec<proto::KeyEntry>, usize), AaeError> {
    let (mut entries, mut bytes) = (Vec::new(), 0usize);
    while entries.len() < MAX_KEYS_PER_SYNC && bytes < MAX_SYNC_BYTES {
        let Some(key) = keys.next() else { break };
        for entry in local.read_entries(std::slice::from_ref(&key))? {
            bytes += entry.encoded_len();
            entries.push(entry);
        }
    }
    Ok((entries, bytes))
}

/// An exchange partner reached over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcPeer {
    /// The peer's id (for errors).
    peer: NodeId,
    /// This node's id (sent as `from`).
    from: String,
    /// Leaves per tree (sent so a mismatched peer refuses).
    buckets: u32,
    /// Client over the cached channel.
    client: AntiEntropyClient<Channel>,
    /// Timeout of each RPC.
    timeout: Duration,
}

impl GrpcPeer {
    fn fail(&self, reason: impl Into<String>) -> AaeError {
        AaeError::Peer {
            peer: self.peer.clone(),
            reason: reason.into(),
        }
    }

    async fn call<T, Fut>(&self, rpc: Fut) -> Result<T, AaeError>
    where
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        match tokio::time::timeout(self.timeout, rpc).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) if status.code() == tonic::Code::FailedPrecondition => {
                Err(AaeError::Mismatch(status.message().to_string()))
            }
            Ok(Err(status)) if status.code() == tonic::Code::Aborted => {
                Err(AaeError::Busy(self.peer.clone()))
            }
            Ok(Err(status)) => Err(self.fail(format!("{:?}: {}", status.code(), status.message()))),
            Err(_) => Err(self.fail("timed out")),
        }
    }
}

impl AaePeer for GrpcPeer {
    async fn tree_nodes(&self, range: &str, nodes: Vec<u32>) -> Result<Vec<u64>, AaeError> {
        let request = proto::TreeNodesRequest {
            range: range.to_string(),
            buckets: self.buckets,
            nodes,
            from: self.from.clone(),
        };
        let mut client = self.client.clone();
        Ok(self.call(client.tree_nodes(request)).await?.hashes)
    }

    async fn bucket_digests(
        &self,
        range: &str,
        buckets: Vec<u32>,
    ) -> Result<Vec<(Vec<u8>, u64)>, AaeError> {
        let request = proto::BucketDigestsRequest {
            range: range.to_string(),
            buckets: self.buckets,
            bucket_ids: buckets,
            from: self.from.clone(),
        };
        let mut client = self.client.clone();
        let response = self.call(client.bucket_digests(request)).await?;
        Ok(response
            .digests
            .into_iter()
            .map(|d| (d.key, d.hash))
            .collect())
    }

    async fn sync_keys(
        &self,
        range: &str,
        push: Vec<proto::KeyEntry>,
        want: Vec<Vec<u8>>,
        offer: Vec<proto::KeyVersions>,
    ) -> Result<SyncReply, AaeError> {
        let request = proto::SyncKeysRequest {
            range: range.to_string(),
            push,
            want,
            from: self.from.clone(),
            offer,
        };
        let mut client = self.client.clone();
        let response = self.call(client.sync_keys(request)).await?;
        Ok(SyncReply {
            entries: response.entries,
            need: response.need,
        })
    }
}

/// The node's anti-entropy: index, schedule state and limits.
#[derive(Debug)]
pub struct AntiEntropy {
    /// The trees (also the replica's store observer).
    index: Arc<AaeIndex>,
    /// Bounds concurrent exchanges (`--aae-concurrency`).
    permits: Semaphore,
    /// Range name -> wall-clock ms of its last completed exchange.
    last_exchange_ms: Mutex<BTreeMap<String, u64>>,
    /// Ranges this node is initiating an exchange of right now.
    initiating: Mutex<BTreeSet<String>>,
}

impl AntiEntropy {
    /// Anti-entropy over `index` with at most `concurrency` exchanges at once.
    pub fn new(index: Arc<AaeIndex>, concurrency: usize) -> Self {
        assert!(concurrency >= 1, "aae concurrency must be at least 1");
        AntiEntropy {
            index,
            permits: Semaphore::new(concurrency),
            last_exchange_ms: Mutex::new(BTreeMap::new()),
            initiating: Mutex::new(BTreeSet::new()),
        }
    }

    /// True while this node runs its own exchange of `range`.
    pub fn is_initiating(&self, range: &str) -> bool {
        self.initiating
            .lock()
            .map(|r| r.contains(range))
            .unwrap_or(false)
    }

    /// Marks `range` as being exchanged by this node until the guard drops.
    fn initiate(&self, range: &str) -> InitiatingGuard<'_> {
        if let Ok(mut ranges) = self.initiating.lock() {
            ranges.insert(range.to_string());
        }
        InitiatingGuard {
            aae: self,
            range: range.to_string(),
        }
    }

    /// The index.
    pub fn index(&self) -> &Arc<AaeIndex> {
        &self.index
    }

    /// Range name -> wall-clock ms of its last completed exchange.
    pub fn last_exchange_ms(&self) -> BTreeMap<String, u64> {
        self.last_exchange_ms
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    fn peer(&self, node: &Node, peer: &NodeId) -> Result<GrpcPeer, AaeError> {
        let c = node.config();
        Ok(GrpcPeer {
            peer: peer.clone(),
            from: c.id.to_string(),
            buckets: self.index.buckets() as u32,
            // The node's one channel cache, addresses from membership.
            client: node.peers().anti_entropy(peer).map_err(|e| AaeError::Peer {
                peer: peer.clone(),
                reason: e.to_string(),
            })?,
            timeout: Duration::from_millis(
                c.request_timeout_ms
                    .saturating_mul(4)
                    .max(MIN_RPC_TIMEOUT_MS),
            ),
        })
    }
}

/// Clears a range's "initiating" mark when its exchange ends.
struct InitiatingGuard<'a> {
    /// Whose mark.
    aae: &'a AntiEntropy,
    /// Which range.
    range: String,
}

impl Drop for InitiatingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut ranges) = self.aae.initiating.lock() {
            ranges.remove(&self.range);
        }
    }
}

/// Runs anti-entropy rounds every `--aae-interval-ms` until the task is
/// aborted (the server aborts it on shutdown). The first round waits a
/// per-node offset within the interval so nodes do not all start at once.
pub async fn run(node: Arc<Node>) {
    let interval = Duration::from_millis(node.config().aae_interval_ms);
    let offset_ms =
        xxh3_64(node.config().id.to_string().as_bytes()) % node.config().aae_interval_ms.max(1);
    tokio::time::sleep(Duration::from_millis(offset_ms)).await;
    info!(
        interval_ms = node.config().aae_interval_ms,
        "anti-entropy running"
    );
    for round in 0u64.. {
        run_round(&node, round).await;
        tokio::time::sleep(interval).await;
    }
}

/// One exchange per range, with the next replica of that range in turn,
/// at most `--aae-concurrency` at a time; first follows a ring change.
pub async fn run_round(node: &Arc<Node>, round: u64) {
    follow_ring(node).await;
    let ranges = node.anti_entropy().index().peers_by_range();
    let exchanges = ranges
        .into_iter()
        .filter(|(_, peers)| !peers.is_empty())
        .map(|(range, peers)| {
            let turn = (round + xxh3_64(range.as_bytes())) % peers.len() as u64;
            let peer = peers[turn as usize].clone();
            exchange_with(Arc::clone(node), range, peer)
        });
    futures::future::join_all(exchanges).await;
}

/// Rebuilds the trees from storage when membership changed the ring (a
/// join or leave moves ranges): off the async threads for a disk engine,
/// inline for memory (`Node::storage_work`).
async fn follow_ring(node: &Arc<Node>) {
    let ring = node.ring();
    let sorted = |mut members: Vec<crate::placement::ring::RingMember>| {
        members.sort_by(|a, b| a.id.cmp(&b.id));
        members
    };
    if sorted(ring.members().to_vec()) == sorted(node.anti_entropy().index().ring_members()) {
        return;
    }
    info!(
        members = ring.members().len(),
        "ring changed; rebuilding merkle trees"
    );
    let worker = Arc::clone(node);
    let rebuild = node.storage_work(move || {
        let mode = worker.config().resolution;
        worker
            .anti_entropy()
            .index()
            .set_ring(Ring::clone(&ring), worker.storage(), mode)
            .map_err(|e| e.to_string())
    });
    if let Err(error) = rebuild.await {
        warn!(%error, "merkle rebuild failed");
    }
}

/// One exchange of `range` with `peer`, under a concurrency permit.
async fn exchange_with(node: Arc<Node>, range: String, peer: NodeId) {
    let aae = node.anti_entropy();
    let Ok(_permit) = aae.permits.acquire().await else {
        return;
    };
    let _initiating = aae.initiate(&range);
    let started = tokio::time::Instant::now();
    let result = match aae.peer(&node, &peer) {
        Ok(grpc) => exchange(node.aae_replica(), &grpc, &range).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(report) => {
            if report.buckets_differing > 0 {
                info!(%range, %peer, ?report, elapsed_ms = started.elapsed().as_millis() as u64, "anti-entropy exchange repaired");
            } else {
                debug!(%range, %peer, "anti-entropy exchange: in sync");
            }
            if let Ok(mut last) = aae.last_exchange_ms.lock() {
                last.insert(range, node.now_ms());
            }
        }
        Err(AaeError::Busy(_)) => {
            debug!(%range, %peer, "peer busy with this range; skipping a turn")
        }
        Err(error) => {
            node.metrics().aae_exchange_failures.inc();
            debug!(%range, %peer, %error, "anti-entropy exchange failed");
        }
    }
}

/// The `AntiEntropy` gRPC service: the responder side of exchanges.
#[derive(Debug)]
pub struct AntiEntropyService {
    /// The node whose trees and replica answer.
    node: Arc<Node>,
}

impl AntiEntropyService {
    /// The service for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        AntiEntropyService { node }
    }

    /// Refuses a request built for another tree shape.
    fn check_buckets(&self, buckets: u32) -> Result<(), Status> {
        let mine = self.node.anti_entropy().index().buckets();
        if buckets as usize != mine {
            return Err(Status::failed_precondition(format!(
                "peer has {buckets} merkle buckets, this node {mine}"
            )));
        }
        Ok(())
    }
}

fn status_of(error: AaeError) -> Status {
    match error {
        AaeError::Mismatch(range) => {
            Status::failed_precondition(format!("range {range} not replicated here"))
        }
        AaeError::Wire(e) => Status::invalid_argument(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// Rejects requests asking for more ids than one call may carry.
fn check_len(len: usize) -> Result<(), Status> {
    if len > MAX_IDS_PER_CALL {
        return Err(Status::invalid_argument(format!(
            "at most {MAX_IDS_PER_CALL} ids per call, got {len}"
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl AntiEntropyRpc for AntiEntropyService {
    async fn tree_nodes(
        &self,
        request: Request<proto::TreeNodesRequest>,
    ) -> Result<Response<proto::TreeNodesResponse>, Status> {
        let request = request.into_inner();
        self.check_buckets(request.buckets)?;
        check_len(request.nodes.len())?;
        let starting = request.nodes == [1];
        if starting && self.node.anti_entropy().is_initiating(&request.range) {
            return Err(Status::aborted(format!(
                "exchanging {} myself",
                request.range
            )));
        }
        let hashes = self
            .node
            .anti_entropy()
            .index()
            .tree_nodes(&request.range, &request.nodes)
            .map_err(status_of)?;
        self.node
            .metrics()
            .aae_tree_bytes_sent
            .add(8 * hashes.len() as u64);
        Ok(Response::new(proto::TreeNodesResponse { hashes }))
    }

    async fn bucket_digests(
        &self,
        request: Request<proto::BucketDigestsRequest>,
    ) -> Result<Response<proto::BucketDigestsResponse>, Status> {
        let request = request.into_inner();
        self.check_buckets(request.buckets)?;
        check_len(request.bucket_ids.len())?;
        let digests: Vec<proto::KeyDigest> = self
            .node
            .anti_entropy()
            .index()
            .bucket_digests(&request.range, &request.bucket_ids)
            .map_err(status_of)?
            .into_iter()
            .map(|(key, hash)| proto::KeyDigest { key, hash })
            .collect();
        let response = proto::BucketDigestsResponse { digests };
        self.node
            .metrics()
            .aae_tree_bytes_sent
            .add(response.encoded_len() as u64);
        Ok(Response::new(response))
    }

    async fn sync_keys(
        &self,
        request: Request<proto::SyncKeysRequest>,
    ) -> Result<Response<proto::SyncKeysResponse>, Status> {
        let request = request.into_inner();
        let sizes = [request.push.len(), request.want.len(), request.offer.len()];
        if sizes.iter().any(|len| *len > MAX_KEYS_PER_SYNC) {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_KEYS_PER_SYNC} keys per sync"
            )));
        }
        let node = Arc::clone(&self.node);
        let reply = self
            .node
            .storage_work(move || {
                Ok(node
                    .aae_replica()
                    .sync_keys(request.push, &request.want, request.offer))
            })
            .await
            .map_err(Status::internal)?
            .map_err(status_of)?;
        Ok(Response::new(proto::SyncKeysResponse {
            entries: reply.entries,
            need: reply.need,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::ring::RingMember;
    use crate::storage::MemoryStorage;
    use crate::versioning::vclock::{Sibling, VClock, Version};

    /// One in-memory replica: storage, store observed by its index, counters.
    struct Side {
        index: Arc<AaeIndex>,
        store: ReplicaStore,
        metrics: Metrics,
    }

    impl Side {
        fn new(me: &str, buckets: usize) -> Side {
            let ring = Ring::new(vec![member("a"), member("b")]).unwrap();
            let index = Arc::new(AaeIndex::new(NodeId::from(me), 2, buckets, ring));
            let observer: Arc<dyn StoreObserver> = index.clone();
            let store = ReplicaStore::new(Arc::new(MemoryStorage::new()), Resolution::Siblings)
                .observed_by(observer);
            Side {
                index,
                store,
                metrics: Metrics::default(),
            }
        }

        fn replica(&self) -> Replica<'_> {
            Replica {
                index: &self.index,
                store: &self.store,
                metrics: &self.metrics,
                mode: Resolution::Siblings,
            }
        }

        fn root(&self) -> String {
            self.index.roots()["a+b"].clone()
        }
    }

    /// The responder side called directly, no sockets.
    impl AaePeer for Side {
        async fn tree_nodes(&self, range: &str, nodes: Vec<u32>) -> Result<Vec<u64>, AaeError> {
            self.index.tree_nodes(range, &nodes)
        }
        async fn bucket_digests(
            &self,
            range: &str,
            buckets: Vec<u32>,
        ) -> Result<Vec<(Vec<u8>, u64)>, AaeError> {
            self.index.bucket_digests(range, &buckets)
        }
        async fn sync_keys(
            &self,
            _range: &str,
            push: Vec<proto::KeyEntry>,
            want: Vec<Vec<u8>>,
            offer: Vec<proto::KeyVersions>,
        ) -> Result<SyncReply, AaeError> {
            self.replica().sync_keys(push, &want, offer)
        }
    }

    fn member(id: &str) -> RingMember {
        RingMember {
            id: NodeId::from(id),
            vnodes: 8,
        }
    }

    fn set(value: &str, node: &str, counter: u64) -> SiblingSet {
        SiblingSet::from_siblings(
            vec![Sibling {
                value: Some(value.as_bytes().to_vec()),
                version: Version {
                    clock: VClock::from_entries([(NodeId::from(node), counter, 1)]),
                    ts_ms: 1,
                    dot: None,
                },
            }],
            Resolution::Siblings,
        )
    }

    fn key(i: usize) -> Vec<u8> {
        format!("k{i:05}").into_bytes()
    }

    #[tokio::test]
    async fn exchange_converges_both_ways_and_sends_only_differences() {
        let (a, b) = (Side::new("a", 256), Side::new("b", 256));
        for i in 0..2_000 {
            a.store.store(&key(i), set("v", "a", 1)).unwrap();
            b.store.store(&key(i), set("v", "a", 1)).unwrap();
        }
        assert_eq!(a.root(), b.root());
        // a alone has 5 new keys; b alone has 3; 2 keys diverged concurrently.
        for i in 2_000..2_005 {
            a.store.store(&key(i), set("a-only", "a", 1)).unwrap();
        }
        for i in 3_000..3_003 {
            b.store.store(&key(i), set("b-only", "b", 1)).unwrap();
        }
        for i in [7, 1_500] {
            a.store.store(&key(i), set("x", "a", 2)).unwrap();
            b.store.store(&key(i), set("y", "b", 2)).unwrap();
        }
        assert_ne!(a.root(), b.root());
        let report = exchange(a.replica(), &b, "a+b").await.unwrap();
        assert_eq!(a.root(), b.root(), "converged after one exchange");
        assert_eq!(report.keys_pushed, 5 + 2);
        assert_eq!(report.keys_pulled, 3 + 2);
        assert!(
            report.buckets_differing <= 10 && report.buckets_differing >= 1,
            "{report:?}"
        );
        assert_eq!(
            a.store.fetch(&key(7)).unwrap().len(),
            2,
            "concurrent versions both kept"
        );
        assert_eq!(
            a.store.fetch(&key(7)).unwrap(),
            b.store.fetch(&key(7)).unwrap()
        );
        assert_eq!(a.metrics.aae_keys_sent.get(), 7);
        assert_eq!(b.metrics.aae_keys_sent.get(), 5);
        // In sync now: the next exchange compares the roots only.
        let again = exchange(a.replica(), &b, "a+b").await.unwrap();
        assert_eq!(
            (again.nodes_compared, again.keys_pushed, again.keys_pulled),
            (1, 0, 0)
        );
    }

    fn version(entries: &[(&str, u64)], ts_ms: u64) -> Version {
        Version {
            clock: VClock::from_entries(entries.iter().map(|(n, c)| (NodeId::from(*n), *c, 1))),
            ts_ms,
            dot: None,
        }
    }

    #[test]
    fn directions_follow_the_versions() {
        let old = [version(&[("a", 1)], 5)];
        let new = [version(&[("a", 2)], 4)];
        let other = [version(&[("b", 1)], 6)];
        let s = Resolution::Siblings;
        assert_eq!(
            directions(&old, &new, s),
            (true, false),
            "responder is behind"
        );
        assert_eq!(
            directions(&new, &old, s),
            (false, true),
            "initiator is behind"
        );
        assert_eq!(
            directions(&new, &other, s),
            (true, true),
            "concurrent: both ways"
        );
        assert_eq!(directions(&[], &new, s), (true, false));
        let both = [new[0].clone(), other[0].clone()];
        assert_eq!(
            directions(&both, &new, s),
            (false, true),
            "siblings held count"
        );
        assert_eq!(
            directions(&new, &new, s),
            (true, true),
            "no evidence: both ways"
        );
        // lww: the greatest version by timestamp wins, whatever the clocks.
        let l = Resolution::Lww;
        assert_eq!(directions(&new, &other, l), (true, false));
        assert_eq!(directions(&old, &new, l), (false, true));
    }

    #[tokio::test]
    async fn a_key_newer_on_one_side_crosses_once() {
        let (a, b) = (Side::new("a", 64), Side::new("b", 64));
        for i in 0..100 {
            a.store.store(&key(i), set("v", "a", 1)).unwrap();
            b.store.store(&key(i), set("v", "a", 1)).unwrap();
        }
        for i in 0..10 {
            a.store.store(&key(i), set("newer", "a", 2)).unwrap();
        }
        for i in 10..15 {
            b.store.store(&key(i), set("newer", "a", 2)).unwrap();
        }
        let report = exchange(a.replica(), &b, "a+b").await.unwrap();
        assert_eq!(a.root(), b.root());
        assert_eq!((report.keys_pushed, report.keys_pulled), (10, 5));
        assert_eq!(
            a.metrics.aae_keys_sent.get() + b.metrics.aae_keys_sent.get(),
            15
        );
    }

    #[test]
    fn rebuild_from_storage_equals_incremental_index() {
        let side = Side::new("a", 64);
        for i in 0..500 {
            side.store
                .store(&key(i), set("v", "a", (i % 3 + 1) as u64))
                .unwrap();
        }
        let incremental = side.index.roots();
        side.index
            .rebuild(side.store.storage(), Resolution::Siblings)
            .unwrap();
        assert_eq!(side.index.roots(), incremental);
        assert_ne!(incremental["a+b"], format!("{:016x}", 0));
    }

    #[test]
    fn a_ring_change_regroups_the_keys() {
        let side = Side::new("a", 16);
        for i in 0..200 {
            side.store.store(&key(i), set("v", "a", 1)).unwrap();
        }
        assert_eq!(side.index.roots().len(), 1);
        let ring = Ring::new(vec![member("a"), member("b"), member("c")]).unwrap();
        side.index
            .set_ring(ring.clone(), side.store.storage(), Resolution::Siblings)
            .unwrap();
        let ranges: Vec<String> = side.index.roots().into_keys().collect();
        assert_eq!(
            ranges,
            vec!["a+b".to_string(), "a+c".to_string()],
            "the ranges that include a"
        );
        // A fresh index over the new ring, fed key by key, agrees.
        let fresh = AaeIndex::new(NodeId::from("a"), 2, 16, ring);
        for i in 0..200 {
            fresh.stored(&key(i), &set("v", "a", 1));
        }
        assert_eq!(fresh.roots(), side.index.roots());
    }

    #[test]
    fn keys_of_ranges_elsewhere_are_ignored() {
        let ring = Ring::new(vec![member("a"), member("b"), member("c")]).unwrap();
        let index = AaeIndex::new(NodeId::from("a"), 1, 16, ring.clone());
        let theirs = (0..100)
            .map(key)
            .find(|k| ring.preference_list(k, 1) != vec![NodeId::from("a")])
            .unwrap();
        index.stored(&theirs, &set("v", "b", 1));
        assert!(index.roots().values().all(|r| r == &format!("{:016x}", 0)));
        assert_eq!(
            index.roots().keys().cloned().collect::<Vec<_>>(),
            vec!["a".to_string()]
        );
    }
}
