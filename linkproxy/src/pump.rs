//! One direction of one proxied connection: read, decide each chunk's
//! fate, hold it until it is due, write it.
//!
//! A reader and a writer joined by a bounded queue of [`QUEUE_CHUNKS`]
//! chunks of at most [`CHUNK_BYTES`]. The reader draws the chunk's fate from
//! the link's fault as it is now (so a fault installed mid-connection bites
//! at once): dropped chunks are counted and forgotten, delivered ones get a
//! due time. Due times never go backwards (a TCP stream is delivered in
//! order, whatever the draw), and a bandwidth limit pushes each due time
//! past the previous chunk's transmission. When the queue is full the reader
//! stops reading, so the sender feels TCP back-pressure; the proxy never
//! buffers more than [`BUFFER_BOUND_PER_DIRECTION`] for one direction.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::fault::Fate;
use crate::shared::Shared;
use crate::Link;

/// The most bytes one read takes from a socket.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// How often a held link looks whether it was released.
const HOLD_POLL: Duration = Duration::from_millis(5);

/// The most chunks queued between reader and writer.
pub const QUEUE_CHUNKS: usize = 32;
/// The most bytes one direction of one connection holds: the queue, the
/// chunk the reader waits to enqueue and the one the writer is writing.
pub const BUFFER_BOUND_PER_DIRECTION: u64 = ((QUEUE_CHUNKS + 2) * CHUNK_BYTES) as u64;

/// A chunk waiting for its due time.
struct Chunk {
    /// When it may be written.
    due: Instant,
    /// The bytes.
    bytes: Vec<u8>,
}

/// Copies `from` to `to` as `link` dictates, until `from` ends or either
/// side fails; then shuts `to`'s write half (a half-close passes through).
pub(crate) async fn pump<R, W>(shared: Arc<Shared>, link: Link, from: R, to: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
    tokio::join!(read_side(&shared, &link, from, tx), write_side(&shared, &link, rx, to));
}

async fn read_side<R: AsyncRead + Unpin>(shared: &Shared, link: &Link, mut from: R, tx: mpsc::Sender<Chunk>) {
    let mut last_due = Instant::now();
    let mut link_free_at = Instant::now();
    loop {
        let mut bytes = vec![0u8; CHUNK_BYTES];
        let n = match from.read(&mut bytes).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        bytes.truncate(n);
        // A hold keeps this one chunk and reads no more: the sender stalls.
        while shared.held(link) {
            tokio::time::sleep(HOLD_POLL).await;
        }
        let (fate, bandwidth) = shared.fate(link);
        let Fate::Deliver { delay_ms } = fate else {
            shared.count(link, |c| c.bytes_dropped += n as u64);
            continue;
        };
        let now = Instant::now();
        let mut due = (now + Duration::from_millis(delay_ms)).max(last_due);
        if let Some(rate) = bandwidth {
            due = due.max(link_free_at);
            link_free_at = due + Duration::from_micros(n as u64 * 1_000_000 / rate);
        }
        last_due = due;
        if due > now {
            shared.count(link, |c| c.bytes_delayed += n as u64);
        }
        shared.buffered_bytes.fetch_add(n as u64, Ordering::SeqCst);
        if tx.send(Chunk { due, bytes }).await.is_err() {
            shared.buffered_bytes.fetch_sub(n as u64, Ordering::SeqCst);
            return; // the writer failed: the peer is gone
        }
    }
}

async fn write_side<W: AsyncWrite + Unpin>(shared: &Shared, link: &Link, mut rx: mpsc::Receiver<Chunk>, mut to: W) {
    while let Some(chunk) = rx.recv().await {
        tokio::time::sleep_until(chunk.due).await;
        let n = chunk.bytes.len() as u64;
        let written = to.write_all(&chunk.bytes).await;
        shared.buffered_bytes.fetch_sub(n, Ordering::SeqCst);
        if written.is_err() {
            rx.close();
            drain(shared, &mut rx);
            return;
        }
        shared.count(link, |c| c.bytes_passed += n);
    }
    let _ = to.shutdown().await;
}

/// Forgets what is still queued after the writer failed, so the buffered
/// count stays exact.
fn drain(shared: &Shared, rx: &mut mpsc::Receiver<Chunk>) {
    while let Ok(chunk) = rx.try_recv() {
        shared.buffered_bytes.fetch_sub(chunk.bytes.len() as u64, Ordering::SeqCst);
    }
}
