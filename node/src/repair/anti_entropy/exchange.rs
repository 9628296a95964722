//! Anti-entropy's exchange: how two replicas of a range converge.
//!
//! An exchange ([`exchange`]), initiated every `--aae-interval-ms` by each
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
//! Every batch is bounded in count and bytes, so one exchange cannot grow
//! without bound.

use std::collections::BTreeMap;
use std::future::Future;

use prost::Message;

use super::{AaeError, AaeIndex, MAX_IDS_PER_CALL, MAX_KEYS_PER_SYNC, MAX_SYNC_BYTES};
use crate::metrics::Metrics;
use crate::repair::merkle::{bucket_of, children_of, diff_keys, KeyDiff};
use crate::replica::ReplicaStore;
use crate::versioning::vclock::{Resolution, SiblingSet, Version};
use crate::wire;

/// True when a replica holding `mine` lacks something of `theirs`, i.e.
/// merging `theirs` in would change it. Under `siblings`: some version of
/// theirs is included by none of mine (`Version::includes`, the merge's own
/// rule; an equal history counts as held).
/// Under `lww`: their greatest version beats our greatest.
pub fn lacks(mine: &[Version], theirs: &[Version], mode: Resolution) -> bool {
    match mode {
        Resolution::Siblings => theirs.iter().any(|t| !mine.iter().any(|m| m.includes(t))),
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
    fn tree_nodes(&self, range: &str, nodes: Vec<u32>) -> impl Future<Output = Result<Vec<u64>, AaeError>> + Send;
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

impl<'a> Replica<'a> {
    /// The replica whose trees `aae` keeps over `store`.
    pub fn of(aae: &'a super::AntiEntropy, store: &'a ReplicaStore, metrics: &'a Metrics, mode: Resolution) -> Self {
        Replica { index: aae.index(), store, metrics, mode }
    }

    /// Serves `SyncKeys`: reads `want` and settles `offer`, then merges
    /// `push`; counts the entries it returns as sent.
    pub fn sync_keys(
        &self,
        push: Vec<proto::KeyEntry>,
        want: &[Vec<u8>],
        offer: Vec<proto::KeyVersions>,
    ) -> Result<SyncReply, AaeError> {
        let mut reply = SyncReply { entries: self.read_entries(want)?, need: Vec::new() };
        for offered in offer {
            let theirs: Vec<Version> =
                offered.versions.iter().map(wire::version_from_proto).collect::<Result<_, _>>()?;
            let mine = self.store.fetch(&offered.key)?;
            let (i_lack, they_lack) = directions(&versions_of(&mine), &theirs, self.mode);
            if they_lack && !mine.is_empty() {
                reply.entries.push(proto::KeyEntry { key: offered.key.clone(), siblings: wire::set_to_proto(&mine) });
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
                versions: set.siblings().iter().map(|s| wire::version_to_proto(&s.version)).collect(),
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
                entries.push(proto::KeyEntry { key: key.clone(), siblings: wire::set_to_proto(&set) });
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
pub async fn exchange<P: AaePeer>(local: Replica<'_>, peer: &P, range: &str) -> Result<ExchangeReport, AaeError> {
    let mut report = ExchangeReport::default();
    let leaves = differing_leaves(local, peer, range, &mut report).await?;
    report.buckets_differing = leaves.len();
    local.metrics.aae_buckets_compared.add(report.buckets_compared as u64);
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
            local.metrics.aae_tree_bytes_sent.add(4 * chunk.len() as u64);
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
    unreachable!("a tree of {buckets} leaves has {} levels", buckets.trailing_zeros() + 1)
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
        local.metrics.aae_tree_bytes_sent.add(4 * chunk.len() as u64);
        for (key, digest) in peer.bucket_digests(range, chunk.to_vec()).await? {
            theirs.entry(bucket_of(&key, buckets)).or_default().push((key, digest));
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
        local.metrics.aae_tree_bytes_sent.add(offer.iter().map(Message::encoded_len).sum::<usize>() as u64);
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
        peer.sync_keys(range, entries, Vec::new(), Vec::new()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::node_id::NodeId;
    use crate::placement::ring::Ring;
    use crate::placement::ring::RingMember;
    use crate::replica::StoreObserver;
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
            let store = ReplicaStore::new(Arc::new(MemoryStorage::new()), Resolution::Siblings).observed_by(observer);
            Side { index, store, metrics: Metrics::default() }
        }

        fn replica(&self) -> Replica<'_> {
            Replica { index: &self.index, store: &self.store, metrics: &self.metrics, mode: Resolution::Siblings }
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
        async fn bucket_digests(&self, range: &str, buckets: Vec<u32>) -> Result<Vec<(Vec<u8>, u64)>, AaeError> {
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
        RingMember::new(NodeId::from(id), 8)
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
        assert!(report.buckets_differing <= 10 && report.buckets_differing >= 1, "{report:?}");
        assert_eq!(a.store.fetch(&key(7)).unwrap().len(), 2, "concurrent versions both kept");
        assert_eq!(a.store.fetch(&key(7)).unwrap(), b.store.fetch(&key(7)).unwrap());
        assert_eq!(a.metrics.aae_keys_sent.get(), 7);
        assert_eq!(b.metrics.aae_keys_sent.get(), 5);
        // In sync now: the next exchange compares the roots only.
        let again = exchange(a.replica(), &b, "a+b").await.unwrap();
        assert_eq!((again.nodes_compared, again.keys_pushed, again.keys_pulled), (1, 0, 0));
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
        assert_eq!(directions(&old, &new, s), (true, false), "responder is behind");
        assert_eq!(directions(&new, &old, s), (false, true), "initiator is behind");
        assert_eq!(directions(&new, &other, s), (true, true), "concurrent: both ways");
        assert_eq!(directions(&[], &new, s), (true, false));
        let both = [new[0].clone(), other[0].clone()];
        assert_eq!(directions(&both, &new, s), (false, true), "siblings held count");
        assert_eq!(directions(&new, &new, s), (true, true), "no evidence: both ways");
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
        assert_eq!(a.metrics.aae_keys_sent.get() + b.metrics.aae_keys_sent.get(), 15);
    }

    #[test]
    fn rebuild_from_storage_equals_incremental_index() {
        let side = Side::new("a", 64);
        for i in 0..500 {
            side.store.store(&key(i), set("v", "a", (i % 3 + 1) as u64)).unwrap();
        }
        let incremental = side.index.roots();
        side.index.rebuild(side.store.storage(), Resolution::Siblings).unwrap();
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
        side.index.set_ring(ring.clone(), side.store.storage(), Resolution::Siblings).unwrap();
        let ranges: Vec<String> = side.index.roots().into_keys().collect();
        assert_eq!(ranges, vec!["a+b".to_string(), "a+c".to_string()], "the ranges that include a");
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
        let theirs = (0..100).map(key).find(|k| ring.preference_list(k, 1) != vec![NodeId::from("a")]).unwrap();
        index.stored(&theirs, &set("v", "b", 1));
        assert!(index.roots().values().all(|r| r == &format!("{:016x}", 0)));
        assert_eq!(index.roots().keys().cloned().collect::<Vec<_>>(), vec!["a".to_string()]);
    }
}
