//! `run.json`: the whole configuration of one run, enough to repeat it.

use serde::{Deserialize, Serialize};

/// How the store resolves concurrent writes; decides what "covers" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Keep concurrent versions as siblings (vector clocks).
    #[default]
    Siblings,
    /// Last write wins by coordinator timestamp; concurrent writes are lost.
    Lww,
}

impl Resolution {
    /// Every resolution, in the order `--help` lists them.
    pub const ALL: [Resolution; 2] = [Resolution::Siblings, Resolution::Lww];

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Siblings => "siblings",
            Resolution::Lww => "lww",
        }
    }
}

impl std::str::FromStr for Resolution {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "siblings" => Ok(Resolution::Siblings),
            "lww" => Ok(Resolution::Lww),
            other => Err(format!("unknown resolution {other:?} (expected siblings or lww)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub nodes: Vec<String>,
    pub n: u32,
    pub w: u32,
    pub r: u32,
    #[serde(default)]
    pub sloppy_quorum: bool,
    #[serde(default)]
    pub resolution: Resolution,
    #[serde(default)]
    pub hinted_handoff: bool,
    #[serde(default)]
    pub read_repair: bool,
    #[serde(default)]
    pub anti_entropy: bool,
    pub workload: String,
    #[serde(default)]
    pub nemesis: Vec<String>,
    pub seed: u64,
    pub time_limit_s: u64,
    pub concurrency: u32,
    /// Target ops/s across all clients; 0 means closed loop, as fast as possible.
    pub rate: f64,
    pub backend: String,
    #[serde(default)]
    pub node_image: String,
    pub started_at: String,
    /// Fields this version does not know, kept so a rewrite loses nothing.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl RunConfig {
    /// Overlapping read and write quorums: W + R > N.
    pub fn is_strict_quorum(&self) -> bool {
        self.w + self.r > self.n && !self.sloppy_quorum
    }
}
