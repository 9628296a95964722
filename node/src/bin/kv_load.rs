//! `dynamo-kv-load`: a fixed number of client operations against one node,
//! for counting the node's instructions per operation (`make
//! bench-instructions`, `scripts/bench-instructions.sh`).
//!
//! The script runs `dynamo-node` under callgrind and this program, outside
//! it, as the client: callgrind then counts only the node's instructions
//! (gRPC server, coordinator, replica, storage), and the client's speed
//! does not matter. Operations are a fixed count, not a duration, so that
//! two runs differing only in that count differ by exactly those
//! operations: their instruction counts' difference over the extra
//! operations is the cost of one, with start, preload and shutdown
//! cancelled out. Keys `b0..b{keys-1}` are taken in turn, so a preload of
//! `keys` puts makes every later get a hit; values are `value-bytes` long,
//! as in `workbench bench-peers`. Any failed operation fails the program:
//! a count of failed operations is no measurement.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use proto::kv_client::KvClient;
use tonic::transport::{Channel, Endpoint};

/// Which operation to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Op {
    /// Blind puts (no context), as bench-peers sends.
    Put,
    /// Gets with the node's default R.
    Get,
}

/// Flags.
#[derive(Debug, Parser)]
struct Args {
    /// The node's gRPC endpoint, e.g. http://127.0.0.1:7000.
    #[arg(long)]
    endpoint: String,
    /// Operation to send.
    #[arg(long, value_enum)]
    op: Op,
    /// How many operations in all.
    #[arg(long)]
    ops: u64,
    /// Keys cycled through.
    #[arg(long, default_value_t = 1_000)]
    keys: u64,
    /// Bytes in every put value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Clients, each with one request outstanding.
    #[arg(long, default_value_t = 8)]
    concurrency: u64,
    /// How long to wait for the node to answer at all (it may be starting
    /// under callgrind, tens of times slower than native).
    #[arg(long, default_value_t = 120)]
    ready_timeout_s: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    assert!(args.concurrency > 0 && args.keys > 0, "--concurrency and --keys must be positive");
    let channel = Endpoint::from_shared(args.endpoint.clone())?.timeout(Duration::from_secs(60)).connect_lazy();
    wait_ready(&channel, Duration::from_secs(args.ready_timeout_s)).await?;
    let next = Arc::new(AtomicU64::new(0));
    let args = Arc::new(args);
    let clients: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(one_client(KvClient::new(channel.clone()), Arc::clone(&args), Arc::clone(&next))))
        .collect();
    for client in clients {
        client.await.context("a client task panicked")??;
    }
    Ok(())
}

/// Sends operations until `ops` were taken from `next` by all clients.
async fn one_client(mut client: KvClient<Channel>, args: Arc<Args>, next: Arc<AtomicU64>) -> Result<()> {
    let value = vec![b'x'; args.value_bytes];
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= args.ops {
            return Ok(());
        }
        let key = format!("b{}", i % args.keys).into_bytes();
        match args.op {
            Op::Put => {
                let request =
                    proto::PutRequest { key, value: value.clone(), context: Vec::new(), w: None, w_quorum: None };
                client.put(request).await.with_context(|| format!("put {i}"))?;
            }
            Op::Get => {
                let reply = client
                    .get(proto::GetRequest { key, r: None, r_quorum: None })
                    .await
                    .with_context(|| format!("get {i}"))?;
                if reply.get_ref().siblings.is_empty() {
                    bail!("get {i} missed: preload the keys first (--op put --ops {})", args.keys);
                }
            }
        }
    }
}

/// Retries a get until the node answers (any answer, a miss included).
async fn wait_ready(channel: &Channel, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut client = KvClient::new(channel.clone());
    loop {
        let probe = proto::GetRequest { key: b"ready-probe".to_vec(), r: None, r_quorum: None };
        match client.get(probe).await {
            Ok(_) => return Ok(()),
            Err(status) if Instant::now() > deadline => {
                bail!("the node did not answer within {timeout:?}: {status}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
