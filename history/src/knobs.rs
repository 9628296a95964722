//! The run knobs as one typed value: what the campaign's flags set, the
//! matrix hands every run, the workload runs with, and `run.json` records.
//!
//! Why here: `run.json` is read back by the workbench's tables and
//! expectations and by the checkers (which depend on this crate alone), so
//! the typed form has to live where all of them can see it. The enums a
//! knob takes ([`Arrival`], [`NodeChoice`], [`KeyShape`]) are pure data
//! too; the workload crate re-exports them and gives them behaviour.
//!
//! `run.json` is a public contract: [`Knobs`] and [`RunLabels`] are
//! flattened into [`crate::RunConfig`] under the exact field names earlier
//! versions wrote (`keys`, `key_distribution`, `node_choice`, ...), so old
//! run directories read back into the same types, and a field this version
//! added is `#[serde(default)]` for runs written before it.

use serde::{Deserialize, Serialize};

/// How operations are offered to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Each process issues its next op when the last one completed
    /// (optionally paced by `rate`).
    #[default]
    Closed,
    /// Ops arrive at `rate` ops/s on a Poisson schedule from the seed.
    Open,
}

impl Arrival {
    /// Every mode, in the order `--help` lists them.
    pub const ALL: [Arrival; 2] = [Arrival::Closed, Arrival::Open];

    /// The name in flags and `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arrival::Closed => "closed",
            Arrival::Open => "open",
        }
    }
}

impl std::str::FromStr for Arrival {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arrival::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| format!("unknown arrival mode {s:?} (expected closed or open)"))
    }
}

/// How a worker picks the node it sends an op to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeChoice {
    /// Worker i always talks to node i mod nodes (sticky client).
    Fixed,
    /// A node drawn from the seed for every op.
    #[default]
    Random,
}

impl NodeChoice {
    /// Every choice, in the order `--help` lists them.
    pub const ALL: [NodeChoice; 2] = [NodeChoice::Fixed, NodeChoice::Random];

    /// The name in flags and `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeChoice::Fixed => "fixed",
            NodeChoice::Random => "random",
        }
    }
}

impl std::str::FromStr for NodeChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeChoice::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown node choice {s:?} (expected fixed or random)"))
    }
}

/// A storage engine of the node (`--storage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageEngine {
    /// In memory; lost on restart.
    Memory,
    /// The LSM engine under the data directory (commit log, SSTables).
    Lsm,
}

impl StorageEngine {
    /// Every engine, in the order `--help` lists them.
    pub const ALL: [StorageEngine; 2] = [StorageEngine::Memory, StorageEngine::Lsm];

    /// The name in the node's `--storage` flag, its `Admin.Status` and `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageEngine::Memory => "memory",
            StorageEngine::Lsm => "lsm",
        }
    }
}

/// The shape of the key distribution, without its size (`keys`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KeyShape {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// Key of rank i with weight `1 / (i + 1)^exponent`.
    Zipfian {
        /// The skew, finite and not negative; 1.0 is classic Zipf.
        exponent: f64,
    },
}

impl KeyShape {
    /// Its name in flags and `run.json`: `uniform`, `zipfian:1`.
    pub fn label(self) -> String {
        match self {
            KeyShape::Uniform => "uniform".into(),
            KeyShape::Zipfian { exponent } => format!("zipfian:{exponent}"),
        }
    }
}

impl std::str::FromStr for KeyShape {
    type Err = String;
    /// `uniform`, `zipfian` (exponent 1) or `zipfian:<exponent>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("unknown key distribution {s:?} (uniform, zipfian, zipfian:<exponent >= 0>)");
        match s.split_once(':') {
            None if s == "uniform" => Ok(KeyShape::Uniform),
            None if s == "zipfian" => Ok(KeyShape::Zipfian { exponent: 1.0 }),
            Some(("zipfian", e)) => match e.parse::<f64>() {
                Ok(exponent) if exponent.is_finite() && exponent >= 0.0 => Ok(KeyShape::Zipfian { exponent }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for KeyShape {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<KeyShape> for String {
    fn from(shape: KeyShape) -> String {
        shape.label()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for shape in ["uniform", "zipfian:1", "zipfian:0.5"] {
            assert_eq!(shape.parse::<KeyShape>().unwrap().label(), shape);
        }
        assert_eq!("zipfian".parse::<KeyShape>(), Ok(KeyShape::Zipfian { exponent: 1.0 }));
        assert!("zipfian:-1".parse::<KeyShape>().is_err() && "pareto".parse::<KeyShape>().is_err());
        assert_eq!(serde_json::to_string(&KeyShape::Zipfian { exponent: 1.5 }).unwrap(), "\"zipfian:1.5\"");
        assert_eq!(serde_json::to_string(&NodeChoice::Fixed).unwrap(), "\"fixed\"");
        assert_eq!(serde_json::to_string(&Arrival::Open).unwrap(), "\"open\"");
        for a in Arrival::ALL {
            assert_eq!(a.as_str().parse::<Arrival>(), Ok(a));
        }
        for c in NodeChoice::ALL {
            assert_eq!(c.as_str().parse::<NodeChoice>(), Ok(c));
        }
    }
}
