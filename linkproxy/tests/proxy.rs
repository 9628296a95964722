//! The proxy against real sockets on loopback: each fault bites, the
//! buffers stay bounded, sources are told apart, and the control socket
//! refuses bad input with a clear error.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use linkproxy::control::{self, Request};
use linkproxy::pump::BUFFER_BOUND_PER_DIRECTION;
use linkproxy::{ControlServer, Link, LinkFault, LossMode, Proxy, ProxyConfig, CLIENT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// An upstream that echoes every byte back.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn proxy_to(upstream: SocketAddr, sources: BTreeMap<IpAddr, String>) -> Arc<Proxy> {
    let config = ProxyConfig { node: "n1".into(), listen: "127.0.0.1:0".parse().unwrap(), upstream, sources, seed: 7 };
    Arc::new(Proxy::start(config).await.unwrap())
}

/// Milliseconds for one 1-byte round trip.
async fn round_trip_ms(stream: &mut TcpStream) -> f64 {
    let start = Instant::now();
    stream.write_all(b"x").await.unwrap();
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await.unwrap();
    start.elapsed().as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_on_the_client_link_moves_the_round_trip_by_its_mean() {
    let proxy = proxy_to(echo_server().await, BTreeMap::new()).await;
    let mut stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut before = Vec::new();
    for _ in 0..20 {
        before.push(round_trip_ms(&mut stream).await);
    }
    proxy.set(Link::new(CLIENT, "n1"), LinkFault::latency(50, 5)).unwrap();
    let mut after = Vec::new();
    for _ in 0..20 {
        after.push(round_trip_ms(&mut stream).await);
    }
    let shift = median(after) - median(before);
    assert!((45.0..60.0).contains(&shift), "shift {shift} ms");
    let status = proxy.status();
    let inward = status.links.iter().find(|l| l.from == CLIENT).unwrap();
    assert_eq!(inward.counters.bytes_delayed, 20, "every byte after the fault was delayed");
    assert_eq!(inward.counters.bytes_passed, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_drops_everything_keeps_the_connection_and_buffers_nothing() {
    let proxy = proxy_to(echo_server().await, BTreeMap::new()).await;
    proxy.set(Link::new(CLIENT, "n1"), LinkFault::blackhole()).unwrap();
    let stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let total: u64 = 64 * 1024 * 1024;
    let pushing = tokio::spawn(async move {
        let block = vec![7u8; 64 * 1024];
        for _ in 0..total / block.len() as u64 {
            write.write_all(&block).await.unwrap();
        }
        write
    });
    let mut peak = 0;
    while !pushing.is_finished() {
        peak = peak.max(proxy.buffered_bytes());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut write = pushing.await.unwrap();
    assert!(peak <= BUFFER_BOUND_PER_DIRECTION, "peak buffered {peak} over the bound {BUFFER_BOUND_PER_DIRECTION}");
    // Everything read was dropped, nothing reached the node, and the connection is still open.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let link = proxy.status().links.into_iter().find(|l| l.from == CLIENT).unwrap();
    assert_eq!((link.counters.bytes_dropped, link.counters.bytes_passed), (total, 0));
    assert_eq!(proxy.status().connections, 1);
    // Healed, the same connection carries bytes again.
    proxy.clear(None);
    write.write_all(b"y").await.unwrap();
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), read.read_exact(&mut byte)).await.unwrap().unwrap();
    assert_eq!(&byte, b"y");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_delivers_nothing_until_released_and_then_everything() {
    let proxy = proxy_to(echo_server().await, BTreeMap::new()).await;
    proxy.set(Link::new(CLIENT, "n1"), LinkFault::hold()).unwrap();
    let mut stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    stream.write_all(b"held").await.unwrap();
    let mut got = [0u8; 4];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut got)).await.is_err(),
        "nothing while held"
    );
    proxy.clear(None);
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut got)).await.unwrap().unwrap();
    assert_eq!(&got, b"held", "delivered whole at the release");
    let link = proxy.status().links.into_iter().find(|l| l.from == CLIENT).unwrap();
    assert_eq!((link.counters.bytes_passed, link.counters.bytes_dropped), (4, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bandwidth_limit_paces_the_link_and_back_pressures_instead_of_buffering() {
    let proxy = proxy_to(echo_server().await, BTreeMap::new()).await;
    let rate = 1024 * 1024; // 1 MiB/s
    let fault = LinkFault { bandwidth_bytes_per_s: Some(rate), ..LinkFault::default() };
    proxy.set(Link::new(CLIENT, "n1"), fault).unwrap();
    let stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let total = 3 * rate as usize;
    let start = Instant::now();
    let pushing = tokio::spawn(async move { write.write_all(&vec![1u8; total]).await.unwrap() });
    let draining = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while got < total {
            got += read.read(&mut buf).await.unwrap();
        }
    });
    let mut peak = 0;
    while !draining.is_finished() {
        peak = peak.max(proxy.buffered_bytes());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    pushing.await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!((2.5..4.0).contains(&secs), "3 MiB at 1 MiB/s took {secs} s");
    // Both directions of the one connection may hold their bound.
    assert!(peak <= 2 * BUFFER_BOUND_PER_DIRECTION, "peak buffered {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_in_drop_mode_loses_bytes_and_in_delay_mode_only_delays_them() {
    let proxy = proxy_to(echo_server().await, BTreeMap::new()).await;
    let mut stream = TcpStream::connect(proxy.local_addr()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let late = LinkFault { loss_pct: 100.0, loss_delay_ms: Some(80), ..LinkFault::default() };
    proxy.set(Link::new(CLIENT, "n1"), late).unwrap();
    let ms = round_trip_ms(&mut stream).await;
    assert!((80.0..200.0).contains(&ms), "a lost-then-retransmitted byte took {ms} ms");
    let lossy = LinkFault { loss_pct: 100.0, loss: LossMode::Drop, ..LinkFault::default() };
    proxy.set(Link::new(CLIENT, "n1"), lossy).unwrap();
    stream.write_all(b"z").await.unwrap();
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut byte)).await.is_err(),
        "the byte was lost"
    );
    let link = proxy.status().links.into_iter().find(|l| l.from == CLIENT).unwrap();
    assert_eq!((link.counters.bytes_dropped, link.counters.bytes_delayed), (1, 1));
}

/// A connection from `ip` (a loopback address) to `addr`.
async fn connect_from(ip: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_told_apart_and_a_reset_closes_only_the_links_connections() {
    let sources = BTreeMap::from([("127.0.0.2".parse().unwrap(), "n2".to_string())]);
    let proxy = proxy_to(echo_server().await, sources).await;
    let mut from_n2 = connect_from("127.0.0.2", proxy.local_addr()).await;
    let mut from_client = TcpStream::connect(proxy.local_addr()).await.unwrap();
    round_trip_ms(&mut from_n2).await;
    round_trip_ms(&mut from_client).await;
    let links: Vec<String> = proxy.status().links.iter().map(|l| format!("{}->{}", l.from, l.to)).collect();
    assert_eq!(links, ["client->n1", "n1->client", "n1->n2", "n2->n1"]);
    // Resetting the reply link n1->n2 closes n2's connection, not the client's.
    assert_eq!(proxy.reset(&Link::new("n1", "n2")), 1);
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), from_n2.read(&mut buf)).await.unwrap();
    assert!(matches!(closed, Ok(0) | Err(_)), "n2's connection was closed: {closed:?}");
    round_trip_ms(&mut from_client).await;
    assert_eq!(proxy.reset(&Link::new("n3", "n2")), 0, "a link this proxy carries no part of");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_sets_reports_and_refuses_bad_input() {
    let proxy = proxy_to(echo_server().await, BTreeMap::new()).await;
    let server = ControlServer::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&proxy)).await.unwrap();
    let addr = server.local_addr();
    let set = Request::Set { from: "n2".into(), to: "n1".into(), fault: LinkFault::latency(50, 5) };
    control::request(addr, &set).await.unwrap();
    assert_eq!(proxy.fault(&Link::new("n2", "n1")), LinkFault::latency(50, 5));
    let status = control::request(addr, &Request::Status).await.unwrap();
    assert_eq!(status["links"][0]["fault"]["latency_ms"], 50);
    assert_eq!(status["node"], "n1");

    // Raw lines, as a person with nc would send them.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    let mut answers = Vec::new();
    for line in [
        "not json",
        r#"{"op":"explode"}"#,
        r#"{"op":"set","from":"n2","to":"n1","fault":{"loss_pct":150}}"#,
        r#"{"op":"set","from":"n2","to":"n1","fault":{"latency":5}}"#,
        r#"{"op":"set","from":"n1","to":"n1","fault":{}}"#,
        r#"{"op":"clear","from":"n2"}"#,
    ] {
        raw.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while byte != *b"\n" {
            raw.read_exact(&mut byte).await.unwrap();
            reply.push(byte[0]);
        }
        answers.push(control::parse_answer(std::str::from_utf8(&reply).unwrap()));
    }
    let errors: Vec<String> =
        answers.iter().map(|a| a.as_ref().err().map(|e| e.to_string()).unwrap_or_default()).collect();
    assert!(
        errors[0].starts_with("linkproxy refused the request: bad control request")
            && errors[0].contains("\"not json\""),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("unknown variant `explode`"), "{}", errors[1]);
    assert!(errors[2].contains("loss_pct 150 is not a percentage"), "{}", errors[2]);
    assert!(errors[3].contains("unknown field `latency`"), "{}", errors[3]);
    assert!(errors[4].contains("not a link between two named sides"), "{}", errors[4]);
    assert!(errors[5].contains("both from and to, or neither"), "{}", errors[5]);
    assert_eq!(proxy.fault(&Link::new("n2", "n1")), LinkFault::latency(50, 5), "refused requests changed nothing");
    control::request(addr, &Request::Clear { from: None, to: None }).await.unwrap();
    assert!(proxy.fault(&Link::new("n2", "n1")).is_healthy(), "clear cleared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_on_one_connection_names_a_late_peer_and_answers_each_request() {
    let proxy = proxy_to(echo_server().await, BTreeMap::new()).await;
    let server = ControlServer::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&proxy)).await.unwrap();
    let batch = [
        Request::Name { node: "n4".into(), ip: "127.0.0.4".parse().unwrap() },
        Request::Name { node: "client".into(), ip: "127.0.0.5".parse().unwrap() },
        Request::Set { from: "n4".into(), to: "n1".into(), fault: LinkFault::latency(30, 0) },
    ];
    let answers = control::requests(server.local_addr(), &batch).await.unwrap();
    assert_eq!(answers.len(), 3);
    assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
    assert!(answers[1].as_ref().unwrap_err().to_string().contains("cannot name a peer"), "{answers:?}");
    // The late peer's connections are its own link now, and slowed.
    let mut from_n4 = connect_from("127.0.0.4", proxy.local_addr()).await;
    assert!(round_trip_ms(&mut from_n4).await >= 30.0);
    let links: Vec<String> = proxy.status().links.iter().map(|l| format!("{}->{}", l.from, l.to)).collect();
    assert!(links.contains(&"n4->n1".to_string()), "{links:?}");
}
