//! The facts the workbench's `history` crate copies by hand from the node
//! (`dynamo-node`), held together by test rather than by comments.
//!
//! - The LWW order: `history::Version::lww_cmp` and the node's
//!   `versioning::vclock::Version::lww_cmp` must give the same `Ordering` on
//!   every pair of versions, or the checkers judge the node by an order it
//!   does not resolve with. A proptest converts each generated version into
//!   both types and compares every pair; it also checks that each order is
//!   total (antisymmetric, transitive, `Equal` exactly on equal versions).
//! - The flag vocabularies: `history::Resolution`, `StorageEngine`, `Fsync`
//!   and the `Switches` flags are what the workbench passes to the node. Each
//!   value's name must be accepted by the node's own flag parser
//!   (`dynamo_node::config::Args`) and yield the paired node value, and the
//!   two sets of values must be equal. The pairs are exhaustive `match`es in
//!   both directions, so a variant added on either side does not compile
//!   until it is paired here; a renamed value fails the test.
//!
//! The node's `--compression` has no copy in `history` (the workbench never
//! passes it), so there is nothing to hold. This file lives in `sim`, the
//! one crate that depends on both.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use clap::{Parser, ValueEnum};
use dynamo_node::config::{Args, StorageKind};
use dynamo_node::storage::lsm::FsyncPolicy;
use dynamo_node::versioning::vclock as node;
use dynamo_node::NodeId;
use history::{Fsync, Resolution, StorageEngine, Switches};
use proptest::prelude::*;

// ---------------------------------------------------------------- lww_cmp

/// Node ids of the generated clocks: `n10` sorts before `n2` as a string,
/// which is the order both clocks are keyed by.
const NODES: [&str; 4] = ["n1", "n2", "n10", "m"];

/// One generated version, before it is built as either type: clock entries
/// (node index -> counter, never 0: the node's clocks hold no zero entry),
/// the coordinator's timestamp, and an optional dot `(node index, counter)`
/// that lies outside its own context, as every minted dot does.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    clock: BTreeMap<usize, u64>,
    ts: u64,
    dot: Option<(usize, u64)>,
}

/// A version: up to three entries with small counters and a timestamp out
/// of three, so equal timestamps, equal counter sums and equal clocks (the
/// order's tie-breaks) all come up often.
fn spec() -> impl Strategy<Value = Spec> {
    let clock = prop::collection::btree_map(0..NODES.len(), 1..=3u64, 0..=3);
    (clock, 0..3u64, prop::option::of((0..NODES.len(), 1..=2u64))).prop_map(|(clock, ts, dot)| {
        // A dot lies above its own context's entry (the node asserts it).
        let dot = dot.map(|(n, above)| (n, clock.get(&n).copied().unwrap_or(0) + above));
        Spec { clock, ts, dot }
    })
}

/// Versions to compare pairwise. A dot names one write, so versions that
/// drew the same dot are made that one version; the first is repeated at
/// the end, so every case compares a version with an equal copy too.
fn specs() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec(spec(), 1..8).prop_map(|mut specs| {
        let mut by_dot: BTreeMap<(usize, u64), Spec> = BTreeMap::new();
        for s in &mut specs {
            if let Some(dot) = s.dot {
                *s = by_dot.entry(dot).or_insert_with(|| s.clone()).clone();
            }
        }
        specs.push(specs[0].clone());
        specs
    })
}

/// The version as the workbench's history records it.
fn history_version(s: &Spec) -> history::Version {
    history::Version {
        clock: s.clock.iter().map(|(n, c)| (NODES[*n].to_string(), *c)).collect(),
        ts: s.ts,
        dot: s.dot.map(|(n, counter)| history::Dot { node: NODES[n].to_string(), counter }),
    }
}

/// The same version as the node holds it (each entry stamped with the
/// version's timestamp; only pruning reads those stamps).
fn node_version(s: &Spec) -> node::Version {
    node::Version {
        clock: node::VClock::from_entries(s.clock.iter().map(|(n, c)| (NodeId::new(NODES[*n]), *c, s.ts))),
        ts_ms: s.ts,
        dot: s.dot.map(|(n, counter)| node::Dot { node: NodeId::new(NODES[n]), counter }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Both copies of `lww_cmp` order every pair alike, and each is a total
    /// order whose `Equal` is equality of versions.
    #[test]
    fn lww_cmp_is_one_total_order_in_history_and_in_the_node(specs in specs()) {
        let h: Vec<history::Version> = specs.iter().map(history_version).collect();
        let n: Vec<node::Version> = specs.iter().map(node_version).collect();
        for i in 0..specs.len() {
            for j in 0..specs.len() {
                let (hc, nc) = (h[i].lww_cmp(&h[j]), n[i].lww_cmp(&n[j]));
                prop_assert_eq!(
                    hc, nc,
                    "history::Version::lww_cmp and dynamo_node Version::lww_cmp drifted: {:?} vs {:?}",
                    &specs[i], &specs[j]
                );
                prop_assert_eq!(
                    hc, h[j].lww_cmp(&h[i]).reverse(),
                    "history::Version::lww_cmp is not antisymmetric on {:?} vs {:?}", &specs[i], &specs[j]
                );
                prop_assert_eq!(
                    nc, n[j].lww_cmp(&n[i]).reverse(),
                    "dynamo_node Version::lww_cmp is not antisymmetric on {:?} vs {:?}", &specs[i], &specs[j]
                );
                prop_assert_eq!(
                    hc == Ordering::Equal, h[i] == h[j],
                    "history::Version::lww_cmp's Equal is not equality on {:?} vs {:?}", &specs[i], &specs[j]
                );
                prop_assert_eq!(
                    nc == Ordering::Equal, n[i] == n[j],
                    "dynamo_node Version::lww_cmp's Equal is not equality on {:?} vs {:?}", &specs[i], &specs[j]
                );
                for k in 0..specs.len() {
                    if hc != Ordering::Greater && h[j].lww_cmp(&h[k]) != Ordering::Greater {
                        prop_assert_ne!(
                            h[i].lww_cmp(&h[k]), Ordering::Greater,
                            "history::Version::lww_cmp is not transitive on {:?} <= {:?} <= {:?}",
                            &specs[i], &specs[j], &specs[k]
                        );
                    }
                    if nc != Ordering::Greater && n[j].lww_cmp(&n[k]) != Ordering::Greater {
                        prop_assert_ne!(
                            n[i].lww_cmp(&n[k]), Ordering::Greater,
                            "dynamo_node Version::lww_cmp is not transitive on {:?} <= {:?} <= {:?}",
                            &specs[i], &specs[j], &specs[k]
                        );
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------ vocabularies

/// The node's flags parsed from the minimal required ones plus `extra`
/// (nothing is started, nothing dials).
fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
    let mut argv = vec!["dynamo-node", "--id", "n1", "--peers", "n1=127.0.0.1:7000"];
    argv.extend_from_slice(extra);
    Args::try_parse_from(argv)
}

/// The name clap accepts for a node value.
fn clap_name(value: &impl ValueEnum) -> String {
    value.to_possible_value().expect("no node value is hidden from the parser").get_name().to_string()
}

/// `history::Resolution` -> the node's, one arm per variant.
fn node_resolution(r: Resolution) -> node::Resolution {
    match r {
        Resolution::Siblings => node::Resolution::Siblings,
        Resolution::Lww => node::Resolution::Lww,
    }
}

/// The node's resolution -> history's, one arm per variant.
fn history_resolution(r: node::Resolution) -> Resolution {
    match r {
        node::Resolution::Siblings => Resolution::Siblings,
        node::Resolution::Lww => Resolution::Lww,
    }
}

/// Every node resolution (it derives no `ValueEnum` to list them): a new one
/// fails to compile in [`history_resolution`] first, next to this list.
const NODE_RESOLUTIONS: [node::Resolution; 2] = [node::Resolution::Siblings, node::Resolution::Lww];

/// `history::StorageEngine` -> the node's `StorageKind`, one arm per variant.
fn node_storage(s: StorageEngine) -> StorageKind {
    match s {
        StorageEngine::Memory => StorageKind::Memory,
        StorageEngine::Lsm => StorageKind::Lsm,
    }
}

/// The node's `StorageKind` -> history's `StorageEngine`, one arm per variant.
fn history_storage(s: StorageKind) -> StorageEngine {
    match s {
        StorageKind::Memory => StorageEngine::Memory,
        StorageKind::Lsm => StorageEngine::Lsm,
    }
}

/// `history::Fsync` -> the node's `FsyncPolicy`, one arm per variant.
fn node_fsync(f: Fsync) -> FsyncPolicy {
    match f {
        Fsync::Always => FsyncPolicy::Always,
        Fsync::Batch => FsyncPolicy::Batch,
        Fsync::Never => FsyncPolicy::Never,
    }
}

/// The node's `FsyncPolicy` -> history's `Fsync`, one arm per variant.
fn history_fsync(f: FsyncPolicy) -> Fsync {
    match f {
        FsyncPolicy::Always => Fsync::Always,
        FsyncPolicy::Batch => Fsync::Batch,
        FsyncPolicy::Never => Fsync::Never,
    }
}

/// Asserts that history's names and the node's are one set, naming the pair.
fn same_names(what: &str, history: impl IntoIterator<Item = String>, node: impl IntoIterator<Item = String>) {
    let (history, node): (BTreeSet<String>, BTreeSet<String>) =
        (history.into_iter().collect(), node.into_iter().collect());
    assert_eq!(history, node, "{what}: history's values (left) and the node's (right) drifted apart");
}

#[test]
fn every_resolution_is_the_nodes_by_name_and_flag() {
    for h in Resolution::ALL {
        let args = parse(&["--resolution", h.as_str()]).unwrap_or_else(|e| {
            panic!("history::Resolution::{h:?} ({:?}) is refused by the node's --resolution: {e}", h.as_str())
        });
        assert_eq!(
            args.resolution,
            node_resolution(h),
            "history::Resolution::{h:?} ({:?}) parses as the node's {:?} under --resolution",
            h.as_str(),
            args.resolution
        );
    }
    for n in NODE_RESOLUTIONS {
        let h = history_resolution(n);
        assert!(Resolution::ALL.contains(&h), "history::Resolution::ALL lacks {h:?}, the node's {n:?}");
        assert_eq!(
            h.as_str(),
            n.as_str(),
            "history::Resolution::{h:?} and the node's Resolution::{n:?} are named apart"
        );
        assert_eq!(node_resolution(h), n, "the Resolution pairs of this test disagree for {n:?}");
    }
    same_names(
        "Resolution (history::Resolution vs dynamo_node Resolution)",
        Resolution::ALL.map(|h| h.as_str().to_string()),
        NODE_RESOLUTIONS.map(|n| n.as_str().to_string()),
    );
}

#[test]
fn every_storage_engine_is_the_nodes_by_name_and_flag() {
    for h in StorageEngine::ALL {
        let args = parse(&["--storage", h.as_str()]).unwrap_or_else(|e| {
            panic!("history::StorageEngine::{h:?} ({:?}) is refused by the node's --storage: {e}", h.as_str())
        });
        assert_eq!(
            args.storage,
            node_storage(h),
            "history::StorageEngine::{h:?} ({:?}) parses as the node's StorageKind::{:?} under --storage",
            h.as_str(),
            args.storage
        );
    }
    for n in StorageKind::value_variants().iter().copied() {
        let h = history_storage(n);
        assert!(
            StorageEngine::ALL.contains(&h),
            "history::StorageEngine::ALL lacks {h:?}, the node's StorageKind::{n:?}"
        );
        assert_eq!(
            h.as_str(),
            clap_name(&n),
            "history::StorageEngine::{h:?} and the node's --storage value are named apart"
        );
        assert_eq!(
            h.as_str(),
            n.as_str(),
            "history::StorageEngine::{h:?} and the node's Admin.Status name of {n:?} differ"
        );
        assert_eq!(node_storage(h), n, "the storage pairs of this test disagree for {n:?}");
    }
    same_names(
        "StorageEngine (history) vs StorageKind (node --storage)",
        StorageEngine::ALL.map(|h| h.as_str().to_string()),
        StorageKind::value_variants().iter().map(clap_name),
    );
}

#[test]
fn every_fsync_policy_is_the_nodes_by_name_and_flag() {
    for h in Fsync::ALL {
        let args = parse(&["--fsync", h.as_str()]).unwrap_or_else(|e| {
            panic!("history::Fsync::{h:?} ({:?}) is refused by the node's --fsync: {e}", h.as_str())
        });
        assert_eq!(
            args.fsync,
            node_fsync(h),
            "history::Fsync::{h:?} ({:?}) parses as the node's FsyncPolicy::{:?} under --fsync",
            h.as_str(),
            args.fsync
        );
    }
    for n in FsyncPolicy::value_variants().iter().copied() {
        let h = history_fsync(n);
        assert!(Fsync::ALL.contains(&h), "history::Fsync::ALL lacks {h:?}, the node's FsyncPolicy::{n:?}");
        assert_eq!(h.as_str(), clap_name(&n), "history::Fsync::{h:?} and the node's --fsync value are named apart");
        assert_eq!(node_fsync(h), n, "the fsync pairs of this test disagree for {n:?}");
    }
    same_names(
        "Fsync (history) vs FsyncPolicy (node --fsync)",
        Fsync::ALL.map(|h| h.as_str().to_string()),
        FsyncPolicy::value_variants().iter().map(clap_name),
    );
}

/// `history::Switches` names the node's boolean flags: each one it passes,
/// with either value, is the node's and sets the matching field.
#[test]
fn every_switch_is_a_node_flag_with_both_values() {
    for value in [true, false] {
        // Every field, spelled out: a switch added to history fails to compile here.
        let all = Switches {
            sloppy_quorum: Some(value),
            hinted_handoff: Some(value),
            read_repair: Some(value),
            anti_entropy: Some(value),
        };
        let passed = all.passed();
        assert_eq!(passed.len(), 4, "history::Switches::passed() leaves out a switch that is set: {passed:?}");
        for (flag, v) in passed {
            let text = v.to_string();
            let args = parse(&[flag, &text])
                .unwrap_or_else(|e| panic!("history::Switches passes {flag} {text}, which the node refuses: {e}"));
            let parsed = match flag {
                "--sloppy-quorum" => args.sloppy_quorum,
                "--hinted-handoff" => args.hinted_handoff,
                "--read-repair" => args.read_repair,
                "--anti-entropy" => args.anti_entropy,
                other => panic!("history::Switches passes {other}, which this test pairs with no node flag"),
            };
            assert_eq!(parsed, v, "history::Switches' {flag} {text} sets the node's field to {parsed}");
        }
    }
}
