//! Merkle trees over key ranges, kept up to date on every write.
//!
//! Anti-entropy needs to tell two replicas of a range apart cheaply and to
//! find *where* they differ without shipping the data. Each range a replica
//! holds gets a [`RangeIndex`]: a digest per key and a complete binary
//! [`MerkleTree`] over a fixed number of leaf buckets (`--merkle-buckets`,
//! a power of two). A key falls in bucket `xxh3(key, seed) % buckets`.
//!
//! * The digest of a key is a hash of the key and of its stored sibling set
//!   ([`set_hash`]): it is computed from the domain types with a fixed hasher
//!   (`BTreeMap`s iterate in order), never from the prost encoding, whose
//!   maps are `HashMap`s and encode in no fixed order.
//! * A leaf is the XOR of the digests of its keys. XOR makes a key update an
//!   O(1) delta on its leaf (`old ^ new`), and deltas commute, so the leaf
//!   never needs its other keys re-read.
//! * An interior node is `0` when both children are `0` (an empty subtree),
//!   else `xxh3(left || right)`: a real hash, so differences in two leaves
//!   cannot cancel out above them. A write recomputes the log2(buckets)
//!   nodes on its leaf's path to the root.
//!
//! Because every node is a pure function of the set of (key, digest) pairs,
//! a tree updated incrementally equals one rebuilt from scratch (a test
//! checks it), and two replicas holding the same data have the same root,
//! which is what the convergence check compares.
//!
//! Layout: the heap layout of a complete binary tree in one `Vec<u64>`,
//! index 1 the root, node `i`'s children `2i` and `2i+1`, leaves at
//! `buckets..2*buckets` (bucket `b` is node `buckets + b`).
//!
//! Everything here is pure: no locks, no I/O, no clock.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed, Xxh3Default};

use crate::versioning::vclock::SiblingSet;

/// Seed of the key -> bucket hash, distinct from the ring's key hash so
/// buckets do not follow ring arcs.
const BUCKET_SEED: u64 = 0x6d65_726b_6c65;

/// The most leaves a tree may have (2^20: 16 MiB of node hashes).
pub const MAX_BUCKETS: usize = 1 << 20;

/// The hash of a key's stored sibling set, equal on every replica holding
/// an equal set (siblings are kept in canonical order).
pub fn set_hash(set: &SiblingSet) -> u64 {
    let mut hasher = Xxh3Default::new();
    set.siblings().hash(&mut hasher);
    hasher.finish()
}

/// The digest of one key: a hash of the key and its set's hash. Never 0
/// for practical purposes; 0 would only make the key invisible to its leaf.
pub fn key_digest(key: &[u8], set_hash: u64) -> u64 {
    let mut bytes = Vec::with_capacity(key.len() + 8);
    bytes.extend_from_slice(&set_hash.to_le_bytes());
    bytes.extend_from_slice(key);
    xxh3_64(&bytes)
}

/// The leaf bucket of `key` in a tree of `buckets` leaves.
pub fn bucket_of(key: &[u8], buckets: usize) -> u32 {
    debug_assert!(buckets.is_power_of_two());
    let bucket = xxh3_64_with_seed(key, BUCKET_SEED) & (buckets as u64 - 1);
    u32::try_from(bucket).expect("bucket < MAX_BUCKETS fits u32")
}

/// Combines two child hashes into their parent's.
fn combine(left: u64, right: u64) -> u64 {
    if left == 0 && right == 0 {
        return 0;
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&left.to_le_bytes());
    bytes[8..].copy_from_slice(&right.to_le_bytes());
    xxh3_64(&bytes)
}

/// A complete binary hash tree over `buckets` leaves (heap layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// Number of leaves; a power of two in `1..=MAX_BUCKETS`.
    buckets: usize,
    /// Node hashes; index 0 unused, 1 the root, leaves from `buckets`.
    nodes: Vec<u64>,
}

impl MerkleTree {
    /// An empty tree (every node 0) with `buckets` leaves.
    pub fn new(buckets: usize) -> Self {
        assert!(
            buckets.is_power_of_two() && buckets <= MAX_BUCKETS,
            "merkle buckets must be a power of two <= {MAX_BUCKETS}, got {buckets}"
        );
        MerkleTree { buckets, nodes: vec![0; 2 * buckets] }
    }

    /// Number of leaves.
    pub fn buckets(&self) -> usize {
        self.buckets
    }

    /// The root hash (0 for an empty range).
    pub fn root(&self) -> u64 {
        self.nodes[1]
    }

    /// The hash of node `index` (heap numbering), if it exists.
    pub fn node(&self, index: u32) -> Option<u64> {
        let i = index as usize;
        (1..self.nodes.len()).contains(&i).then(|| self.nodes[i])
    }

    /// True when node `index` is a leaf.
    pub fn is_leaf(&self, index: u32) -> bool {
        index as usize >= self.buckets
    }

    /// The bucket a leaf node stands for.
    pub fn bucket_of_leaf(&self, index: u32) -> u32 {
        assert!(self.is_leaf(index), "node {index} is not a leaf");
        index - self.buckets as u32
    }

    /// XORs `delta` into a bucket's leaf and recomputes its path to the root.
    pub fn apply_delta(&mut self, bucket: u32, delta: u64) {
        if delta == 0 {
            return;
        }
        let mut i = self.buckets + bucket as usize;
        assert!(i < self.nodes.len(), "bucket {bucket} out of range");
        self.nodes[i] ^= delta;
        while i > 1 {
            i /= 2;
            self.nodes[i] = combine(self.nodes[2 * i], self.nodes[2 * i + 1]);
        }
    }

    /// A tree with the given leaf values, every interior node computed once.
    pub fn from_leaves(leaves: &[u64]) -> Self {
        let mut tree = MerkleTree::new(leaves.len());
        tree.nodes[tree.buckets..].copy_from_slice(leaves);
        for i in (1..tree.buckets).rev() {
            tree.nodes[i] = combine(tree.nodes[2 * i], tree.nodes[2 * i + 1]);
        }
        tree
    }

    /// Of the nodes `asked` (heap indices), those whose hash here differs
    /// from `theirs` (same order as `asked`). Indices not in this tree count
    /// as differing.
    pub fn differing(&self, asked: &[u32], theirs: &[u64]) -> Vec<u32> {
        assert_eq!(asked.len(), theirs.len(), "one hash per asked node");
        asked
            .iter()
            .zip(theirs)
            .filter(|(index, hash)| self.node(**index) != Some(**hash))
            .map(|(index, _)| *index)
            .collect()
    }
}

/// The children of the given interior nodes, in order.
pub fn children_of(nodes: &[u32]) -> Vec<u32> {
    nodes.iter().flat_map(|i| [2 * i, 2 * i + 1]).collect()
}

/// One range's key digests and the tree over them.
#[derive(Debug, Clone)]
pub struct RangeIndex {
    /// (bucket, key) -> digest: every key of the range this replica holds,
    /// grouped by bucket so a bucket's keys are one ordered scan.
    digests: BTreeMap<(u32, Vec<u8>), u64>,
    /// The tree over the buckets; leaf = XOR of its keys' digests.
    tree: MerkleTree,
}

impl RangeIndex {
    /// An empty range with `buckets` leaves.
    pub fn new(buckets: usize) -> Self {
        RangeIndex { digests: BTreeMap::new(), tree: MerkleTree::new(buckets) }
    }

    /// Records that `key` now holds a set hashing to `set_hash`: O(log
    /// buckets), whatever the number of keys.
    pub fn upsert(&mut self, key: &[u8], set_hash: u64) {
        let bucket = bucket_of(key, self.tree.buckets());
        let digest = key_digest(key, set_hash);
        let old = self.digests.insert((bucket, key.to_vec()), digest).unwrap_or(0);
        self.tree.apply_delta(bucket, old ^ digest);
    }

    /// The tree.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Number of keys indexed.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// True when no key is indexed.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// The (key, digest) pairs of one bucket, in key order.
    pub fn bucket_digests(&self, bucket: u32) -> Vec<(Vec<u8>, u64)> {
        let from = (bucket, Vec::new());
        self.digests
            .range(from..)
            .take_while(|((b, _), _)| *b == bucket)
            .map(|((_, key), digest)| (key.clone(), *digest))
            .collect()
    }

    /// The tree rebuilt from the digests alone (tests and assertions).
    pub fn rebuilt_tree(&self) -> MerkleTree {
        let mut leaves = vec![0u64; self.tree.buckets()];
        for ((bucket, _), digest) in &self.digests {
            leaves[*bucket as usize] ^= digest;
        }
        MerkleTree::from_leaves(&leaves)
    }
}

/// Which keys of the differing buckets each side must send, from both
/// sides' (key, digest) lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyDiff {
    /// Keys only the local side holds: push them.
    pub push: Vec<Vec<u8>>,
    /// Keys only the remote side holds: pull them.
    pub pull: Vec<Vec<u8>>,
    /// Keys both hold, differently: which way they go is decided from their
    /// versions (see `anti_entropy::lacks`).
    pub differ: Vec<Vec<u8>>,
}

impl KeyDiff {
    /// Appends another diff.
    pub fn extend(&mut self, other: KeyDiff) {
        self.push.extend(other.push);
        self.pull.extend(other.pull);
        self.differ.extend(other.differ);
    }
}

/// Compares two digest lists (any order).
pub fn diff_keys(local: &[(Vec<u8>, u64)], remote: &[(Vec<u8>, u64)]) -> KeyDiff {
    let mine: BTreeMap<&[u8], u64> = local.iter().map(|(k, d)| (k.as_slice(), *d)).collect();
    let theirs: BTreeMap<&[u8], u64> = remote.iter().map(|(k, d)| (k.as_slice(), *d)).collect();
    let mut diff = KeyDiff::default();
    for (key, digest) in &mine {
        match theirs.get(key) {
            Some(other) if other == digest => {}
            Some(_) => diff.differ.push(key.to_vec()),
            None => diff.push.push(key.to_vec()),
        }
    }
    for key in theirs.keys().filter(|k| !mine.contains_key(*k)) {
        diff.pull.push(key.to_vec());
    }
    diff
}

/// Descends two trees top-down as the exchange does, both held locally:
/// the leaf buckets whose hashes differ (tests and the benchmark's ideal).
pub fn differing_buckets(local: &MerkleTree, remote: &MerkleTree) -> Vec<u32> {
    assert_eq!(local.buckets(), remote.buckets(), "trees of equal shape");
    let mut level = local.differing(&[1], &[remote.root()]);
    while level.first().is_some_and(|i| !local.is_leaf(*i)) {
        let asked = children_of(&level);
        let theirs: Vec<u64> = asked.iter().map(|i| remote.node(*i).unwrap_or(0)).collect();
        level = local.differing(&asked, &theirs);
    }
    level.iter().map(|i| local.bucket_of_leaf(*i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_id::NodeId;
    use crate::versioning::vclock::{Resolution, Sibling, VClock, Version};

    fn set(value: &str, counter: u64) -> SiblingSet {
        let clock = VClock::from_entries([(NodeId::from("n1"), counter, 7)]);
        SiblingSet::from_siblings(
            vec![Sibling { value: Some(value.as_bytes().to_vec()), version: Version { clock, ts_ms: 9, dot: None } }],
            Resolution::Siblings,
        )
    }

    fn key(i: usize) -> Vec<u8> {
        format!("key-{i}").into_bytes()
    }

    /// A small deterministic generator (xorshift) for shuffles.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn set_hash_is_canonical() {
        assert_eq!(set_hash(&set("a", 1)), set_hash(&set("a", 1)));
        assert_ne!(set_hash(&set("a", 1)), set_hash(&set("a", 2)));
        assert_ne!(set_hash(&set("a", 1)), set_hash(&set("b", 1)));
        let mut ab = set("a", 1);
        ab.merge(
            SiblingSet::from_siblings(
                vec![Sibling {
                    value: Some(b"b".to_vec()),
                    version: Version { clock: VClock::from_entries([(NodeId::from("n2"), 1, 7)]), ts_ms: 9, dot: None },
                }],
                Resolution::Siblings,
            ),
            Resolution::Siblings,
        );
        let mut ba = SiblingSet::from_siblings(ab.siblings()[1..].to_vec(), Resolution::Siblings);
        ba.merge(set("a", 1), Resolution::Siblings);
        assert_eq!(set_hash(&ab), set_hash(&ba), "merge order does not matter");
    }

    #[test]
    fn incremental_updates_equal_a_rebuild() {
        let mut index = RangeIndex::new(64);
        let mut rng = 0x1234_5678_9abc_def0u64;
        for round in 0..2_000u64 {
            let k = (xorshift(&mut rng) % 300) as usize;
            index.upsert(&key(k), set_hash(&set("v", round + 1)));
        }
        assert_eq!(index.len(), 300);
        assert_eq!(index.tree(), &index.rebuilt_tree());
        // Insertion order does not matter either: replay the final state
        // in another order into a fresh index.
        let mut fresh = RangeIndex::new(64);
        let mut entries: Vec<_> = (0..64u32).flat_map(|b| index.bucket_digests(b)).collect();
        entries.reverse();
        for (k, digest) in &entries {
            let bucket = bucket_of(k, 64);
            fresh.digests.insert((bucket, k.clone()), *digest);
            fresh.tree.apply_delta(bucket, *digest);
        }
        assert_eq!(fresh.tree().root(), index.tree().root());
        assert_ne!(index.tree().root(), 0);
    }

    #[test]
    fn diff_finds_exactly_the_planted_buckets() {
        let buckets = 1024;
        let (mut a, mut b) = (RangeIndex::new(buckets), RangeIndex::new(buckets));
        for i in 0..5_000 {
            let h = set_hash(&set("same", 1));
            a.upsert(&key(i), h);
            b.upsert(&key(i), h);
        }
        assert_eq!(a.tree().root(), b.tree().root());
        assert!(differing_buckets(a.tree(), b.tree()).is_empty());
        // Plant differences: changed values on b, and keys only a has.
        let changed = [3usize, 77, 1_234, 4_999];
        for i in changed {
            b.upsert(&key(i), set_hash(&set("other", 2)));
        }
        let extra = [10_000usize, 10_001];
        for i in extra {
            a.upsert(&key(i), set_hash(&set("new", 1)));
        }
        let mut planted: Vec<u32> = changed.iter().chain(&extra).map(|i| bucket_of(&key(*i), buckets)).collect();
        planted.sort_unstable();
        planted.dedup();
        let mut found = differing_buckets(a.tree(), b.tree());
        found.sort_unstable();
        assert_eq!(found, planted);
        // Inside those buckets, exactly the planted keys differ.
        let mut diff = KeyDiff::default();
        for bucket in found {
            diff.extend(diff_keys(&a.bucket_digests(bucket), &b.bucket_digests(bucket)));
        }
        diff.push.sort();
        diff.differ.sort();
        let want_push: Vec<Vec<u8>> = extra.iter().map(|i| key(*i)).collect();
        let mut want_differ: Vec<Vec<u8>> = changed.iter().map(|i| key(*i)).collect();
        want_differ.sort();
        assert_eq!(diff.push, want_push);
        assert!(diff.pull.is_empty());
        assert_eq!(diff.differ, want_differ);
    }

    #[test]
    fn empty_subtrees_hash_to_zero() {
        let mut tree = MerkleTree::new(8);
        assert_eq!(tree.root(), 0);
        tree.apply_delta(5, 42);
        assert_ne!(tree.root(), 0);
        tree.apply_delta(5, 42);
        assert_eq!(tree, MerkleTree::new(8), "a delta undone restores the tree");
        assert_eq!(tree.node(0), None);
        assert_eq!(tree.node(16), None);
        assert!(tree.is_leaf(8) && !tree.is_leaf(7));
        assert_eq!(tree.bucket_of_leaf(13), 5);
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn bucket_count_must_be_a_power_of_two() {
        MerkleTree::new(1000);
    }
}
