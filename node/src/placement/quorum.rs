//! Quorums as words: how many answers a request waits for, and from where.
//!
//! A single-datacenter Dynamo counts answers over all N replicas: W acks,
//! R replies. Across datacenters that one number stops saying what people
//! mean. Cassandra's consistency levels (seed 004, DDIA chapter 5) are the
//! vocabulary this node takes:
//!
//! | word | waits for |
//! | --- | --- |
//! | a number `k` | any `k` of the key's replicas, wherever they are |
//! | `one` | any one replica |
//! | `all` | every replica |
//! | `local` | a majority of the replicas in the coordinator's DC (LOCAL_QUORUM) |
//! | `each` | a majority of the replicas in every DC (EACH_QUORUM) |
//!
//! A write is always sent to every replica in every DC: the word only
//! decides when the coordinator answers, so cross-DC replication under
//! `local` is asynchronous and a read in another DC can miss an
//! acknowledged write. That trade of latency and availability for
//! staleness is what the workbench measures.
//!
//! A [`Requirement`] is a quorum made concrete for one request: groups of
//! target nodes, each with the answers it needs. A round is done when
//! every group is satisfied and has failed when any group can no longer be
//! (`coordinate/rounds.rs`). Datacenter names come from `--dc`, default
//! [`DEFAULT_DC`], and travel in gossip.

use std::collections::BTreeMap;
use std::fmt;

use crate::node_id::NodeId;

/// The datacenter of a node that names none (single-DC clusters, older nodes).
pub const DEFAULT_DC: &str = "dc1";

/// How many answers a request waits for, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quorum {
    /// Any `k` replicas (the classic W or R).
    Count(usize),
    /// Any one replica.
    One,
    /// Every replica.
    All,
    /// A majority of the coordinator's own DC's replicas (LOCAL_QUORUM).
    Local,
    /// A majority of the replicas in every DC (EACH_QUORUM).
    Each,
}

/// A quorum word that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quorum {0:?} is neither a number of replicas nor one of one, all, local, each")]
pub struct BadQuorumWord(pub String);

impl std::str::FromStr for Quorum {
    type Err = BadQuorumWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "one" => Ok(Quorum::One),
            "all" => Ok(Quorum::All),
            "local" => Ok(Quorum::Local),
            "each" => Ok(Quorum::Each),
            word => {
                word.parse::<usize>().ok().filter(|k| *k >= 1).map(Quorum::Count).ok_or_else(|| BadQuorumWord(s.into()))
            }
        }
    }
}

impl fmt::Display for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quorum::Count(k) => write!(f, "{k}"),
            Quorum::One => f.write_str("one"),
            Quorum::All => f.write_str("all"),
            Quorum::Local => f.write_str("local"),
            Quorum::Each => f.write_str("each"),
        }
    }
}

impl Quorum {
    /// The number, for a quorum given as one (`None` for a word).
    pub fn count(self) -> Option<usize> {
        match self {
            Quorum::Count(k) => Some(k),
            _ => None,
        }
    }

    /// The answers this quorum needs of `n` replicas spread as `per_dc`
    /// (the replica count of every DC, summing to `n`), for a coordinator
    /// in `home_dc`: what `Admin.Status` reports as the plain W or R.
    pub fn answers_of(self, n: usize, per_dc: &BTreeMap<String, usize>, home_dc: &str) -> usize {
        match self {
            Quorum::Count(k) => k.min(n),
            Quorum::One => 1,
            Quorum::All => n,
            Quorum::Local => majority(per_dc.get(home_dc).copied().unwrap_or(0)),
            Quorum::Each => per_dc.values().map(|k| majority(*k)).sum(),
        }
    }
}

/// A bare majority of `k` replicas; 1 for none, so that a DC without
/// replicas of a key can never satisfy a quorum asked of it.
pub fn majority(k: usize) -> usize {
    k / 2 + 1
}

/// One group of a [`Requirement`]: of these targets, this many must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The target nodes that count towards the group.
    pub members: Vec<NodeId>,
    /// Successful answers needed from `members` (may exceed their number:
    /// the group, and so the request, cannot succeed).
    pub required: usize,
}

/// A quorum made concrete for one request: every group must be met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The groups; never empty.
    pub groups: Vec<Group>,
}

impl Requirement {
    /// `required` answers of any of `targets`: the classic single count.
    pub fn count(targets: Vec<NodeId>, required: usize) -> Requirement {
        Requirement { groups: vec![Group { members: targets, required }] }
    }

    /// The answers needed in all: what errors and counters report as W or R.
    pub fn total(&self) -> usize {
        self.groups.iter().map(|g| g.required).sum()
    }

    /// Whether every group can be met by its own members.
    pub fn satisfiable(&self) -> bool {
        self.groups.iter().all(|g| g.required <= g.members.len())
    }
}

/// Parses `dc1=2,dc2=1` (`--replicas-per-dc`): a replica count per DC.
pub fn parse_per_dc(items: &[String]) -> Result<BTreeMap<String, usize>, String> {
    let mut counts = BTreeMap::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (dc, count) = item.split_once('=').ok_or_else(|| format!("{item:?} is not dc=count"))?;
        let count: usize = count.trim().parse().map_err(|_| format!("{item:?}: {count:?} is not a count"))?;
        check_dc_name(dc.trim())?;
        if counts.insert(dc.trim().to_string(), count).is_some() {
            return Err(format!("datacenter {dc:?} is given twice"));
        }
    }
    if counts.values().sum::<usize>() == 0 {
        return Err("replicas per datacenter must place at least one replica".into());
    }
    Ok(counts)
}

/// A DC name is a short word: letters, digits, `-` and `_`.
pub fn check_dc_name(dc: &str) -> Result<(), String> {
    let ok = !dc.is_empty() && dc.len() <= 64 && dc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("datacenter name {dc:?} must be 1 to 64 letters, digits, '-' or '_'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_numbers_parse_and_print_back() {
        for word in ["1", "3", "one", "all", "local", "each"] {
            let q: Quorum = word.parse().unwrap();
            assert_eq!(q.to_string(), word);
        }
        assert_eq!("2".parse::<Quorum>().unwrap(), Quorum::Count(2));
        for bad in ["0", "", "quorum", "-1", "local_quorum"] {
            assert!(bad.parse::<Quorum>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn answers_follow_the_datacenters() {
        let per_dc: BTreeMap<String, usize> = [("dc1".to_string(), 3), ("dc2".to_string(), 2)].into();
        assert_eq!(Quorum::Local.answers_of(5, &per_dc, "dc1"), 2);
        assert_eq!(Quorum::Local.answers_of(5, &per_dc, "dc2"), 2);
        assert_eq!(Quorum::Each.answers_of(5, &per_dc, "dc1"), 4);
        assert_eq!(Quorum::All.answers_of(5, &per_dc, "dc1"), 5);
        assert_eq!(Quorum::Count(9).answers_of(5, &per_dc, "dc1"), 5);
    }

    #[test]
    fn per_dc_counts_parse_and_refuse_nonsense() {
        let counts = parse_per_dc(&["dc1=2".into(), "dc2=1".into()]).unwrap();
        assert_eq!(counts, [("dc1".to_string(), 2), ("dc2".to_string(), 1)].into());
        for bad in [vec!["dc1"], vec!["dc1=x"], vec!["dc1=1", "dc1=2"], vec!["dc 1=1"], vec!["dc1=0"]] {
            let items: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(parse_per_dc(&items).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn a_requirement_is_met_group_by_group() {
        let ids: Vec<NodeId> = ["a", "b", "c"].iter().map(|s| NodeId::from(*s)).collect();
        let r = Requirement::count(ids.clone(), 2);
        assert_eq!((r.total(), r.satisfiable()), (2, true));
        let r = Requirement { groups: vec![Group { members: vec![], required: 1 }] };
        assert!(!r.satisfiable(), "a DC without replicas cannot answer");
    }
}
