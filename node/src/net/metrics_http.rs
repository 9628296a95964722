//! The Prometheus endpoint: `GET /metrics` over plain HTTP/1.1.
//!
//! A scraper needs one request and one text response, so this is a small
//! hand-written HTTP/1.1 responder on a tokio listener rather than a second
//! web framework next to tonic: read the request head (at most
//! [`MAX_REQUEST_BYTES`], within [`READ_TIMEOUT`]), answer
//! `200 text/plain; version=0.0.4` with [`render_prometheus`] for
//! `GET /metrics` (and `/`), `404` otherwise, and close the connection.
//! Connections are served one task each, at most [`MAX_CONNECTIONS`] at
//! once, so a misbehaving client cannot exhaust the node.
//!
//! The endpoint is optional (`--metrics-listen ""` disables it) and a bind
//! failure only logs a warning: several nodes sharing one host (the local
//! backend, in-process tests) must not fail because the default port is
//! taken.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn, Instrument};

use crate::metrics::{render_prometheus, RequestMetrics};
use crate::net::counters::Counters;

/// Largest request head read.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// What the endpoint shows of a node.
#[derive(Debug, Clone)]
pub struct Exported {
    /// Client request counts and latencies, by op and outcome.
    pub requests: Arc<RequestMetrics>,
    /// Every named counter.
    pub counters: Counters,
}

/// Binds `addr` and serves metrics until the task is aborted; logs and
/// returns if the address cannot be bound.
pub async fn run(exported: Exported, addr: SocketAddr) {
    match TcpListener::bind(addr).await {
        Ok(listener) => serve(exported, listener).await,
        Err(error) => warn!(%addr, %error, "cannot serve Prometheus metrics"),
    }
}

/// Serves metrics on a bound listener until the task is aborted.
pub async fn serve(exported: Exported, listener: TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving Prometheus metrics");
    }
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(%error, "metrics accept failed");
                continue;
            }
        };
        let exported = exported.clone();
        let task = async move {
            if let Err(error) = respond(&exported, stream).await {
                debug!(%peer, %error, "metrics request failed");
            }
            drop(permit);
        };
        tokio::spawn(task.in_current_span());
    }
}

/// Reads one request head and writes the response.
async fn respond(exported: &Exported, mut stream: TcpStream) -> std::io::Result<()> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head timed out"))??;
    let response = match request_path(&head) {
        Some("/metrics") | Some("/") => {
            let body = render_prometheus(&exported.requests, &exported.counters.snapshot());
            http_response("200 OK", "text/plain; version=0.0.4; charset=utf-8", &body)
        }
        _ => http_response("404 Not Found", "text/plain", "not found\n"),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads until the blank line ending the head, or the size limit.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while head.len() < MAX_REQUEST_BYTES && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The path of a `GET` request line, without its query.
fn request_path(head: &str) -> Option<&str> {
    let mut parts = head.lines().next()?.split_whitespace();
    if parts.next()? != "GET" {
        return None;
    }
    parts.next()?.split('?').next()
}

/// A complete response that closes the connection.
fn http_response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_request_line() {
        assert_eq!(request_path("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Some("/metrics"));
        assert_eq!(request_path("GET /metrics?x=1 HTTP/1.1\r\n\r\n"), Some("/metrics"));
        assert_eq!(request_path("POST /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_path(""), None);
    }

    #[test]
    fn responses_carry_their_length() {
        let r = http_response("200 OK", "text/plain", "abc");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Length: 3\r\n"));
        assert!(r.ends_with("\r\n\r\nabc"));
    }
}
