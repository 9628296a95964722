//! Where a run's replicas live and what its quorums are called: the part
//! of `run.json` a multi-datacenter run adds.
//!
//! A run of one datacenter with numeric quorums writes none of these
//! fields, so its `run.json` reads exactly as before they existed. A run
//! across datacenters records which DC each node is in (`datacenters`),
//! how many replicas each DC holds of a key (`replicas_per_dc`), and the
//! quorum words the nodes were given (`w_quorum`, `r_quorum`: `local`,
//! `each`, `one`, `all` or a number). `run.json`'s `w` and `r` stay
//! numbers: what the words come to in a client's own DC, so that every
//! reader that compares `W + R` with `N` keeps working. A client talks
//! only to the nodes of its own DC, so an op's DC is its `node`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The datacenters and quorum words of a run (all absent for one DC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Topology {
    /// The write quorum as given to the nodes, when it is a word.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w_quorum: Option<String>,
    /// The read quorum as given to the nodes, when it is a word.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r_quorum: Option<String>,
    /// Each node's datacenter, by node id; absent for one DC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenters: Option<BTreeMap<String, String>>,
    /// Replicas of every key in each datacenter; absent for one DC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_per_dc: Option<BTreeMap<String, u32>>,
}

impl Topology {
    /// The datacenter of `node`, when the run has several.
    pub fn dc_of(&self, node: &str) -> Option<&str> {
        self.datacenters.as_ref()?.get(node).map(String::as_str)
    }

    /// Whether the run spans several datacenters.
    pub fn is_multi_dc(&self) -> bool {
        self.datacenters.as_ref().is_some_and(|dcs| dcs.values().collect::<std::collections::BTreeSet<_>>().len() > 1)
    }

    /// `W`'s name in tables: the word, or the number.
    pub fn w_label(&self, w: u32) -> String {
        self.w_quorum.clone().unwrap_or_else(|| w.to_string())
    }

    /// `R`'s name in tables: the word, or the number.
    pub fn r_label(&self, r: u32) -> String {
        self.r_quorum.clone().unwrap_or_else(|| r.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_dc_writes_nothing_and_reads_back_empty() {
        assert_eq!(serde_json::to_string(&Topology::default()).unwrap(), "{}");
        let back: Topology = serde_json::from_str("{}").unwrap();
        assert_eq!(back, Topology::default());
        assert!(!back.is_multi_dc());
        assert_eq!((back.w_label(2), back.dc_of("n1")), ("2".to_string(), None));
    }

    #[test]
    fn several_dcs_name_each_node() {
        let t = Topology {
            w_quorum: Some("local".into()),
            r_quorum: None,
            datacenters: Some([("n1".into(), "dc1".into()), ("n2".into(), "dc2".into())].into()),
            replicas_per_dc: Some([("dc1".into(), 1), ("dc2".into(), 1)].into()),
        };
        let back: Topology = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert!(back.is_multi_dc());
        assert_eq!((back.dc_of("n2"), back.w_label(1).as_str(), back.r_label(1).as_str()), (Some("dc2"), "local", "1"));
    }
}
