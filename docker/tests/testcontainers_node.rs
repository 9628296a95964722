//! One node container through `testcontainers`, from the locally built image.
//!
//! testcontainers never pulls here: it only pulls when creating the container
//! answers 404 (image absent), and `make image` has put the image in place.
//!
//! The catch on this machine: testcontainers 0.28 talks to the engine with
//! bollard's fixed API version (1.53) and does not negotiate, while the engine
//! (20.10) speaks at most 1.41 and refuses newer clients outright ("client
//! version 1.53 is too new"). So the test points `DOCKER_HOST` at a tiny
//! loopback proxy that rewrites the version in each request path
//! (`/v1.53/` -> `/v1.41/`, same length, so nothing else changes) and pipes
//! everything else through. This file is its own test binary because it sets
//! `DOCKER_HOST` for the whole process.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::NetworkCreateRequest;
use docker::{admin_status, connect, docker_available, LABEL, NODE_PORT};
use testcontainers::core::ImageExt;
use testcontainers::runners::AsyncRunner;
use testcontainers::GenericImage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

/// The API version the proxy rewrites every request to.
const ENGINE_API: &[u8; 4] = b"1.41";

fn engine_socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => host.trim_start_matches("unix://").to_string(),
        _ => "/var/run/docker.sock".to_string(),
    }
}

/// Whether `window` (7 bytes) is `/v1.NN/`.
fn is_version_segment(window: &[u8]) -> bool {
    window.len() == 7
        && &window[..4] == b"/v1."
        && window[4].is_ascii_digit()
        && window[5].is_ascii_digit()
        && window[6] == b'/'
}

/// How many trailing bytes of `data` could start a `/v1.NN/` segment that the
/// next read completes; they are held back until then.
fn held_back(data: &[u8]) -> usize {
    const SHAPE: [fn(u8) -> bool; 6] =
        [|b| b == b'/', |b| b == b'v', |b| b == b'1', |b| b == b'.', |b| b.is_ascii_digit(), |b| b.is_ascii_digit()];
    (1..=6.min(data.len())).rev().find(|&n| data[data.len() - n..].iter().zip(SHAPE).all(|(b, ok)| ok(*b))).unwrap_or(0)
}

/// Copies client -> engine, rewriting every `/v1.NN/` to the engine's version.
async fn rewrite_copy(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::unix::OwnedWriteHalf) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        for i in 0..pending.len().saturating_sub(6) {
            if is_version_segment(&pending[i..i + 7]) {
                pending[i + 2..i + 6].copy_from_slice(ENGINE_API);
            }
        }
        let keep = held_back(&pending);
        let ready: Vec<u8> = pending.drain(..pending.len() - keep).collect();
        if to.write_all(&ready).await.is_err() {
            return;
        }
    }
    let _ = to.write_all(&pending).await;
    let _ = to.shutdown().await;
}

async fn proxy_connection(client: TcpStream, socket: String) {
    let Ok(engine) = UnixStream::connect(&socket).await else {
        return;
    };
    let (client_read, mut client_write) = client.into_split();
    let (mut engine_read, engine_write) = engine.into_split();
    let up = rewrite_copy(client_read, engine_write);
    let down = async move {
        let _ = tokio::io::copy(&mut engine_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Starts the version-rewriting proxy; returns its `tcp://` address.
async fn start_version_proxy() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    let socket = engine_socket();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(proxy_connection(client, socket.clone()));
        }
    });
    format!("tcp://{addr}")
}

#[test]
fn version_rewrite_is_length_preserving_and_split_safe() {
    assert!(is_version_segment(b"/v1.53/"));
    assert!(!is_version_segment(b"/v2.53/"));
    assert_eq!(held_back(b"GET /v1.5"), 5);
    assert_eq!(held_back(b"GET /v1.53"), 6);
    assert_eq!(held_back(b"{\"a\":1}"), 0);
}

#[tokio::test]
async fn one_node_via_testcontainers() {
    if !docker_available().await {
        eprintln!("SKIP: no Docker engine answers");
        return;
    }
    let Some(image) = docker::built_image_tag() else {
        eprintln!("SKIP: target/dynamo-node.image is missing; run `make image`");
        return;
    };
    let (name, tag) = image.split_once(':').expect("image is name:tag");

    // Our own labeled network, so the container talks on nothing else.
    let network = format!("dwb-tc-{}", std::process::id());
    let engine = connect().await.expect("engine");
    engine
        .create_network(NetworkCreateRequest {
            name: network.clone(),
            labels: Some(HashMap::from([(LABEL.to_string(), "1".to_string())])),
            ..Default::default()
        })
        .await
        .expect("create network");

    std::env::set_var("DOCKER_HOST", start_version_proxy().await);
    let result = run_one_node(name, tag, &network).await;
    let _ = engine.remove_network(&network).await;
    result.expect("the node container answers");
}

async fn run_one_node(name: &str, tag: &str, network: &str) -> Result<(), String> {
    let container = GenericImage::new(name, tag)
        .with_network(network)
        .with_label(LABEL, "1")
        .with_cmd([
            "--id".to_string(),
            "n1".to_string(),
            "--listen".to_string(),
            format!("0.0.0.0:{NODE_PORT}"),
            "--peers".to_string(),
            format!("n1=127.0.0.1:{NODE_PORT}"),
            "--data-dir".to_string(),
            "/data".to_string(),
            // One node: the quorum sizes must fit in a cluster of one.
            "--n".to_string(),
            "1".to_string(),
            "--w".to_string(),
            "1".to_string(),
            "--r".to_string(),
            "1".to_string(),
        ])
        .start()
        .await
        .map_err(|e| format!("testcontainers start: {e}"))?;
    let ip = container.get_bridge_ip_address().await.map_err(|e| format!("bridge ip: {e}"))?;
    let endpoint = format!("http://{ip}:{NODE_PORT}");
    let status = docker::wait_ready("n1", &endpoint, Duration::from_secs(30)).await.map_err(|e| e.to_string())?;
    let again = admin_status(&endpoint, Duration::from_secs(2)).await.map_err(|e| e.to_string())?;
    container.rm().await.map_err(|e| format!("remove container: {e}"))?;
    if status.node_id != "n1" || again.node_id != "n1" {
        return Err(format!("answered as {:?}", status.node_id));
    }
    Ok(())
}
