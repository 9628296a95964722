//! How a campaign lays its nodes out over datacenters (`--dcs`,
//! `--replicas-per-dc`), and what that means for the nodes' flags, the
//! clients and `run.json`.
//!
//! `--dcs D` splits `--nodes` evenly into D blocks, in order: with 6 nodes
//! and 2 DCs, n1-n3 are dc1 and n4-n6 dc2. Every node is told every
//! member's DC (`--peer-dc`) and the replicas each DC keeps of a key
//! (`--replicas-per-dc dc1=k,dc2=k`, the same k in every DC here), so N is
//! `k * D`. Clients are spread round-robin over the DCs and each talks to
//! its own DC's nodes only (`workload::WorkloadConfig::pick_target`), so
//! "read in dc2 of a write acknowledged in dc1" is a question the history
//! answers from each op's `node`.
//!
//! One DC (the default) adds no flag and no field: every run reads as it
//! did before datacenters existed.

use std::collections::BTreeMap;

use dynamo_node::placement::quorum::Quorum;
use history::Topology;

/// The datacenters of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// How many datacenters (1: a single one, nothing added).
    pub dcs: usize,
    /// Replicas of every key in each DC (with `dcs > 1`).
    pub replicas_per_dc: u32,
}

impl Default for Layout {
    fn default() -> Self {
        Layout { dcs: 1, replicas_per_dc: 0 }
    }
}

impl Layout {
    /// Whether the nodes span several datacenters.
    pub fn is_multi_dc(&self) -> bool {
        self.dcs > 1
    }

    /// The datacenter of the node at `index` (0-based) of `node_count`.
    pub fn dc_of_index(&self, index: usize, node_count: usize) -> String {
        assert!(index < node_count && node_count.is_multiple_of(self.dcs.max(1)), "nodes split evenly");
        let per_dc = node_count / self.dcs.max(1);
        format!("dc{}", index / per_dc + 1)
    }

    /// Each node's DC, by id.
    pub fn dc_map(&self, nodes: &[String]) -> BTreeMap<String, String> {
        nodes.iter().enumerate().map(|(i, n)| (n.clone(), self.dc_of_index(i, nodes.len()))).collect()
    }

    /// The node indexes of each DC, in DC order (for the workload).
    pub fn groups(&self, node_count: usize) -> Vec<Vec<usize>> {
        if !self.is_multi_dc() {
            return Vec::new();
        }
        let per_dc = node_count / self.dcs;
        (0..self.dcs).map(|dc| (dc * per_dc..(dc + 1) * per_dc).collect()).collect()
    }

    /// The node ids of each DC, in DC order (for the DC nemeses).
    pub fn members(&self, nodes: &[String]) -> Vec<Vec<String>> {
        self.groups(nodes.len()).into_iter().map(|g| g.into_iter().map(|i| nodes[i].clone()).collect()).collect()
    }

    /// Replicas per DC, by DC name.
    pub fn per_dc(&self) -> BTreeMap<String, u32> {
        (1..=self.dcs).map(|dc| (format!("dc{dc}"), self.replicas_per_dc)).collect()
    }

    /// The node flags that place replicas per DC (none for one DC).
    pub fn node_args(&self, nodes: &[String]) -> Vec<String> {
        if !self.is_multi_dc() {
            return Vec::new();
        }
        let peers: Vec<String> = self.dc_map(nodes).iter().map(|(n, dc)| format!("{n}={dc}")).collect();
        let counts: Vec<String> = self.per_dc().iter().map(|(dc, k)| format!("{dc}={k}")).collect();
        vec!["--peer-dc".into(), peers.join(","), "--replicas-per-dc".into(), counts.join(",")]
    }

    /// What quorum `q` comes to in one DC's clients' eyes, over `n`
    /// replicas: the number `run.json` records as W or R.
    pub fn answers(&self, q: Quorum, n: u32) -> u32 {
        let per_dc: BTreeMap<String, usize> = if self.is_multi_dc() {
            self.per_dc().into_iter().map(|(dc, k)| (dc, k as usize)).collect()
        } else {
            [("dc1".to_string(), n as usize)].into()
        };
        u32::try_from(q.answers_of(n as usize, &per_dc, "dc1")).unwrap_or(u32::MAX)
    }

    /// `run.json`'s record of the layout and the quorum words.
    pub fn topology(&self, nodes: &[String], w: Quorum, r: Quorum) -> Topology {
        let word = |q: Quorum| q.count().is_none().then(|| q.to_string());
        Topology {
            w_quorum: word(w),
            r_quorum: word(r),
            datacenters: self.is_multi_dc().then(|| self.dc_map(nodes)),
            replicas_per_dc: self.is_multi_dc().then(|| self.per_dc()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(count: usize) -> Vec<String> {
        (1..=count).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn six_nodes_in_two_dcs() {
        let layout = Layout { dcs: 2, replicas_per_dc: 2 };
        let six = nodes(6);
        assert_eq!(layout.members(&six), vec![vec!["n1", "n2", "n3"], vec!["n4", "n5", "n6"]]);
        assert_eq!(layout.groups(6), vec![vec![0, 1, 2], vec![3, 4, 5]]);
        let args = layout.node_args(&six);
        assert_eq!(args[1], "n1=dc1,n2=dc1,n3=dc1,n4=dc2,n5=dc2,n6=dc2");
        assert_eq!(args[3], "dc1=2,dc2=2");
        assert_eq!((layout.answers(Quorum::Local, 4), layout.answers(Quorum::Each, 4)), (2, 4));
        assert_eq!(layout.answers(Quorum::Count(3), 4), 3);
        let topology = layout.topology(&six, Quorum::Local, Quorum::Count(2));
        assert_eq!((topology.w_quorum.as_deref(), topology.r_quorum.as_deref()), (Some("local"), None));
        assert_eq!(topology.dc_of("n5"), Some("dc2"));
    }

    #[test]
    fn one_dc_adds_nothing() {
        let layout = Layout::default();
        assert!(layout.node_args(&nodes(3)).is_empty() && layout.groups(3).is_empty());
        assert_eq!(layout.topology(&nodes(3), Quorum::Count(2), Quorum::Count(2)), Topology::default());
        assert_eq!(layout.answers(Quorum::Local, 3), 2, "local over one DC: a majority of N");
    }
}
