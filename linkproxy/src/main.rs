//! `dynamo-linkproxy`: one [`linkproxy::Proxy`] in front of a node, with its
//! line-JSON control socket (see the crate docs for the protocol).
//!
//! In the node image the container's entrypoint starts it in the background
//! before it `exec`s the node, so the node stays PID 1:
//!
//! ```text
//! dynamo-linkproxy --node n1 --listen 0.0.0.0:7000 --upstream 127.0.0.1:7001 \
//!     --source n2=10.91.3.12 --source n3=10.91.3.13 --control 0.0.0.0:7100 --seed 42
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;
use linkproxy::{ControlServer, Proxy, ProxyConfig};

/// A TCP proxy that puts faults on the directed links into and out of one node.
#[derive(Debug, Parser)]
#[command(name = "dynamo-linkproxy", version)]
struct Args {
    /// The node behind the proxy (the `to` of its inbound links).
    #[arg(long)]
    node: String,
    /// Where the proxy listens: the node's public address.
    #[arg(long)]
    listen: SocketAddr,
    /// Where the node really listens.
    #[arg(long)]
    upstream: SocketAddr,
    /// A peer: `name=ip`; connections from that address are that peer's
    /// links. Other sources are `client`.
    #[arg(long = "source")]
    sources: Vec<String>,
    /// Where the control socket listens.
    #[arg(long)]
    control: SocketAddr,
    /// Seeds the latency and loss draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn parse_sources(entries: &[String]) -> Result<BTreeMap<IpAddr, String>> {
    let mut sources = BTreeMap::new();
    for entry in entries {
        let (name, ip) = entry.split_once('=').with_context(|| format!("--source {entry:?} is not name=ip"))?;
        let ip: IpAddr = ip.parse().with_context(|| format!("--source {entry:?}: {ip:?} is not an IP address"))?;
        if name.is_empty() || sources.insert(ip, name.to_string()).is_some() {
            bail!("--source {entry:?}: empty name, or {ip} given twice");
        }
    }
    Ok(sources)
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let config = ProxyConfig {
        node: args.node.clone(),
        listen: args.listen,
        upstream: args.upstream,
        sources: parse_sources(&args.sources)?,
        seed: args.seed,
    };
    let proxy = Arc::new(Proxy::start(config).await?);
    let control = ControlServer::start(args.control, Arc::clone(&proxy)).await?;
    tracing::info!(node = %args.node, listen = %proxy.local_addr(), control = %control.local_addr(), "linkproxy up");
    std::future::pending::<()>().await;
    Ok(())
}
