//! Where the nodes run, chosen once from `--backend` for every subcommand.
//!
//! `--backend` is a closed set ([`BackendChoice`], so `--help` lists it and
//! a typo is refused by the parser). [`choose`] turns it into a [`Backend`]
//! before anything starts: `auto` asks whether a Docker engine answers;
//! `docker` also checks that the node image is present (nothing can be
//! pulled here), so a missing image is a clear error up front instead of a
//! failed first run; `local` finds the `dynamo-node` binary; `ssh` finds
//! it too (it is uploaded to the hosts) and checks `--hosts` and the key
//! ([`crate::ssh_args`]); `sim` needs nothing (the node's library is linked in). `campaign` and `bench-peers`
//! both choose and start clusters through this one module; where no engine
//! answers, `auto` falls back to the simulator for a campaign and to local
//! processes for `bench-peers` (its peers are real etcd and Redis).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use docker::{
    Capabilities, Cluster, ClusterSpec, DockerCluster, Fault, LocalCluster, SshCluster, SshConfig, StoreKind,
};
use nemesis::{Composition, NemesisKind};

/// The values of `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// Docker when an engine answers, else the simulator (local processes for `bench-peers`).
    Auto,
    /// Containers of the node image on a bridge network per run.
    Docker,
    /// Processes on loopback addresses (link faults through in-process link proxies).
    Local,
    /// Every node's library code in this process under a deterministic
    /// simulator: every fault, replayable by seed (our node only).
    Sim,
    /// Processes on the Linux hosts of --hosts, driven over SSH (our node only).
    Ssh,
}

/// Where the nodes run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Containers from this image tag.
    Docker {
        /// The node image.
        image: String,
    },
    /// Local processes of this binary.
    Local {
        /// The `dynamo-node` binary.
        binary: PathBuf,
    },
    /// The simulator (`dynamo-sim`): nothing to find, the node is linked in.
    Sim,
    /// Processes on SSH hosts.
    Ssh {
        /// The hosts, key and binary.
        config: SshConfig,
        /// The flags that run on the same hosts again, for replay commands.
        replay: Vec<String>,
    },
}

/// What [`choose`] needs besides the choice: the explicit image and binary, if given.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--image`: a node image tag instead of the one `make image` recorded.
    pub image: Option<String>,
    /// `--node-binary`: a `dynamo-node` binary instead of the built one.
    pub node_binary: Option<PathBuf>,
    /// The `--hosts` and `--ssh-*` flags (`--backend ssh`).
    pub ssh: crate::ssh_args::SshArgs,
}

/// The backend `choice` stands for on this machine, with its image or binary
/// checked; `auto` without a Docker engine becomes `fallback` (`Sim` or `Local`).
pub async fn choose(choice: BackendChoice, overrides: &Overrides, fallback: BackendChoice) -> Result<Backend> {
    assert!(matches!(fallback, BackendChoice::Sim | BackendChoice::Local), "auto falls back to sim or local");
    let docker_up = matches!(choice, BackendChoice::Docker | BackendChoice::Auto) && docker::docker_available().await;
    match (choice, docker_up) {
        (BackendChoice::Docker, false) => {
            bail!("--backend docker, but no Docker engine answers; is the daemon running?")
        }
        (BackendChoice::Docker | BackendChoice::Auto, true) => {
            let image = match &overrides.image {
                Some(image) => image.clone(),
                None => docker::built_image_tag().context(
                    "no node image recorded in target/dynamo-node.image: run `make image` first (or pass --image)",
                )?,
            };
            docker::check_image(&image).await.with_context(|| format!("--image {image}"))?;
            Ok(Backend::Docker { image })
        }
        (BackendChoice::Auto, false) if fallback == BackendChoice::Sim => {
            eprintln!("no Docker engine answers: running the nodes under the deterministic simulator (--backend sim)");
            Ok(Backend::Sim)
        }
        (BackendChoice::Sim, _) => Ok(Backend::Sim),
        (BackendChoice::Ssh, _) => {
            let binary = node_binary(overrides)?;
            Ok(Backend::Ssh { config: overrides.ssh.config(binary)?, replay: overrides.ssh.replay_flags()? })
        }
        (BackendChoice::Local | BackendChoice::Auto, _) => {
            if choice == BackendChoice::Auto {
                eprintln!("no Docker engine answers: falling back to local processes");
            }
            Ok(Backend::Local { binary: node_binary(overrides)? })
        }
    }
}

/// `--node-binary`, else the built `dynamo-node`.
fn node_binary(overrides: &Overrides) -> Result<PathBuf> {
    match &overrides.node_binary {
        Some(b) => Ok(b.clone()),
        None => docker::find_node_binary()
            .context("no dynamo-node binary found: run `cargo build --release -p dynamo-node` or pass --node-binary"),
    }
}

impl Backend {
    /// `docker`, `local`, `ssh` or `sim`, as `run.json` records it.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Docker { .. } => "docker",
            Backend::Local { .. } => "local",
            Backend::Sim => dynamo_sim::BACKEND,
            Backend::Ssh { .. } => "ssh",
        }
    }

    /// The SSH hosts (`user@address:port`), for `run.json`; none elsewhere.
    pub fn hosts(&self) -> Option<Vec<String>> {
        match self {
            Backend::Ssh { config, .. } => Some(SshCluster::host_labels(config)),
            _ => None,
        }
    }

    /// The flags after `--backend` a replay needs to run where this one ran
    /// (an SSH run's hosts and SSH flags); none for the other backends.
    pub fn replay_flags(&self) -> Vec<String> {
        match self {
            Backend::Ssh { replay, .. } => replay.clone(),
            _ => Vec::new(),
        }
    }

    /// The node image tag or binary path.
    pub fn image(&self) -> String {
        match self {
            Backend::Docker { image } => image.clone(),
            Backend::Local { binary } => binary.display().to_string(),
            Backend::Sim => crate::sim_run::image(),
            Backend::Ssh { config, .. } => config.node_binary.display().to_string(),
        }
    }

    /// Starts a cluster of `kind` described by `spec` on this backend.
    pub async fn start(&self, spec: &ClusterSpec, kind: StoreKind) -> Result<Arc<dyn Cluster>> {
        let cluster: Arc<dyn Cluster> = match self {
            Backend::Docker { image } => Arc::new(DockerCluster::start_store(spec, image, kind).await?),
            Backend::Local { binary } if kind == StoreKind::Dynamo => {
                Arc::new(LocalCluster::start(spec, binary.clone()).await?)
            }
            Backend::Local { .. } => Arc::new(LocalCluster::start_store(spec, kind).await?),
            Backend::Sim => bail!("a simulated cluster lives inside its simulation (sim_run::drive), not started here"),
            Backend::Ssh { config, .. } if kind == StoreKind::Dynamo => {
                Arc::new(SshCluster::start(spec, config).await?)
            }
            Backend::Ssh { .. } => bail!("the ssh backend runs dynamo-node only, not {}", kind.name()),
        };
        Ok(cluster)
    }

    /// What this backend can perform: the backend type's one table.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            Backend::Docker { .. } => DockerCluster::capabilities(),
            Backend::Local { .. } => LocalCluster::capabilities(),
            Backend::Sim => dynamo_sim::SimCluster::capabilities(),
            Backend::Ssh { .. } => SshCluster::capabilities(),
        }
    }

    /// Why this backend cannot run `matrix` at all, before anything starts:
    /// the simulator hosts only our node, not the peer stores.
    pub fn refuses(&self, matrix: &crate::matrix::Matrix) -> Option<String> {
        if let Backend::Ssh { config, .. } = self {
            let joins = matrix.nemeses.iter().any(|c| c.kinds.iter().any(|k| k.fault() == Some(Fault::Membership)));
            let needed = matrix.node_count + usize::from(joins);
            if needed > config.hosts.len() {
                let spare = if joins { " and one spare host for the joining nodes of membership" } else { "" };
                return Some(format!(
                    "--nodes {} needs {needed} hosts{spare}, but --hosts names {}",
                    matrix.node_count,
                    config.hosts.len()
                ));
            }
        }
        let peer = matrix.stores.iter().find(|s| s.kind() != StoreKind::Dynamo)?;
        matches!(self, Backend::Sim | Backend::Ssh { .. }).then(|| {
            format!(
                "--stores {}: the {} backend hosts only our node (dynamo); peer stores need --backend docker or local",
                peer.as_str(),
                self.name()
            )
        })
    }

    /// Removes what a start cut short (by Ctrl-C) left of cluster `name`:
    /// without a cluster handle, by what the backend labels. Docker: the
    /// run's containers and network; SSH: every host's processes, run
    /// directories and iptables chain (kept data spared); local processes
    /// die with their handles, and the simulator leaves nothing.
    pub async fn clean_interrupted_start(&self, name: &str) -> Result<()> {
        match self {
            Backend::Docker { .. } => {
                docker::remove_run(name).await?;
            }
            Backend::Ssh { config, .. } => {
                let spare_kept = SshConfig { keep_data: true, ..config.clone() };
                SshCluster::clean(&spare_kept).await?;
            }
            Backend::Local { .. } | Backend::Sim => {}
        }
        Ok(())
    }

    /// Whether a cluster of `store` that must perform `nemesis` is started
    /// with link proxies in front of its nodes (see
    /// [`ClusterSpec::link_proxy`]): on local processes, for partitions and
    /// latency; on Docker, for latency where the kernel has no `sch_netem`.
    /// Never otherwise, so nothing else pays for a proxy.
    pub fn needs_link_proxy(&self, nemesis: &Composition, store: StoreKind) -> bool {
        let needs = |fault| match self {
            Backend::Local { .. } => LocalCluster::needs_link_proxy(fault, store),
            Backend::Docker { .. } => DockerCluster::needs_link_proxy(fault, store),
            Backend::Ssh { .. } => SshCluster::needs_link_proxy(fault, store),
            Backend::Sim => false,
        };
        // Only links can tell the WAN from a DC's own network: tc netem
        // on an interface slows every peer alike.
        let wan = nemesis.has(NemesisKind::WanLatency) && store == StoreKind::Dynamo && !matches!(self, Backend::Sim);
        wan || nemesis.kinds.iter().filter_map(|k| k.fault()).any(needs)
    }

    /// Why this backend cannot perform `nemesis` on `store`, asked before
    /// anything starts; None when it can.
    pub fn cannot(&self, nemesis: &Composition, store: StoreKind) -> Option<String> {
        let caps = self.capabilities();
        nemesis.kinds.iter().filter_map(|k| k.fault()).find_map(|fault| {
            let why = caps.why_not(fault, store)?;
            Some(format!("the {} backend cannot do {fault:?} faults on {}: {why}", caps.backend, store.name()))
        })
    }
}
