//! Which store a run tests: our `dynamo-node`, or a peer store people would
//! use instead (etcd, Redis), so one campaign puts them side by side in the
//! same tables, under the same workload, nemeses and checkers.
//!
//! A peer store has no N/W/R knobs, but the checkers decide validity from
//! `run.json`'s `n`, `w`, `r` (W + R > N: stale reads are bugs; otherwise
//! they are measurements). Each peer setting is therefore recorded with the
//! quorum shape that says what it promises, and `run.json` names the store
//! (`extra.store`) so nobody mistakes the figures for our knobs:
//! - `etcd-linearizable`: a Raft majority commits, reads go through the
//!   leader's read index: N=3 W=2 R=2 (strict: a stale read is a bug).
//! - `etcd-serializable`: reads from the member's local state: R=1 (weak).
//! - `redis-primary`: writes acked by the primary alone, reads from it too:
//!   recorded as R=N, since the primary has seen every acked write (strict).
//! - `redis-replica`: reads from asynchronous replicas: W=1 R=1 (weak).

use docker::StoreKind;
use workload::EtcdRead;

/// Where a Redis client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RedisRead {
    Primary,
    Replica,
}

/// The store (and its read setting) a run tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Store {
    Dynamo,
    Etcd(EtcdRead),
    Redis(RedisRead),
}

impl Store {
    /// The name on the command line, in run names and in `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Store::Dynamo => "dynamo",
            Store::Etcd(EtcdRead::Linearizable) => "etcd-linearizable",
            Store::Etcd(EtcdRead::Serializable) => "etcd-serializable",
            Store::Redis(RedisRead::Primary) => "redis-primary",
            Store::Redis(RedisRead::Replica) => "redis-replica",
        }
    }

    /// The server the cluster backend starts.
    pub fn kind(self) -> StoreKind {
        match self {
            Store::Dynamo => StoreKind::Dynamo,
            Store::Etcd(_) => StoreKind::Etcd,
            Store::Redis(_) => StoreKind::Redis,
        }
    }

    /// The (W, R) that states what a peer setting promises with N members
    /// (see the module docs); `None` for our node, whose W and R are knobs.
    pub fn promised_quorum(self, n: u32) -> Option<(u32, u32)> {
        let majority = n / 2 + 1;
        match self {
            Store::Dynamo => None,
            Store::Etcd(EtcdRead::Linearizable) => Some((majority, majority)),
            Store::Etcd(EtcdRead::Serializable) => Some((majority, 1)),
            Store::Redis(RedisRead::Primary) => Some((1, n)),
            Store::Redis(RedisRead::Replica) => Some((1, 1)),
        }
    }
}

/// Every store setting, in the order `--help` lists them.
const ALL_STORES: [Store; 5] = [
    Store::Dynamo,
    Store::Etcd(EtcdRead::Linearizable),
    Store::Etcd(EtcdRead::Serializable),
    Store::Redis(RedisRead::Primary),
    Store::Redis(RedisRead::Replica),
];

/// `--stores` values: the names above, `etcd` and `redis` as short aliases.
impl clap::ValueEnum for Store {
    fn value_variants<'a>() -> &'a [Self] {
        &ALL_STORES
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let value = clap::builder::PossibleValue::new(self.as_str());
        Some(match self {
            Store::Etcd(EtcdRead::Linearizable) => value.alias("etcd"),
            Store::Redis(RedisRead::Replica) => value.alias("redis"),
            _ => value,
        })
    }
}

impl std::str::FromStr for Store {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let names: Vec<&str> = ALL_STORES.iter().map(|s| s.as_str()).collect();
        clap::ValueEnum::from_str(s, false).map_err(|_| format!("unknown store {s:?} ({})", names.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_promises_match_the_docs() {
        for name in ["dynamo", "etcd-linearizable", "etcd-serializable", "redis-primary", "redis-replica"] {
            assert_eq!(name.parse::<Store>().unwrap().as_str(), name);
        }
        let strict = |s: &str| s.parse::<Store>().unwrap().promised_quorum(3).map(|(w, r)| w + r > 3);
        assert_eq!(strict("etcd-linearizable"), Some(true));
        assert_eq!(strict("etcd-serializable"), Some(false));
        assert_eq!(strict("redis-primary"), Some(true));
        assert_eq!(strict("redis-replica"), Some(false));
        assert_eq!(strict("dynamo"), None);
    }
}
