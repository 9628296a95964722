//! The control socket: one JSON request per line, one JSON answer per line.
//!
//! Line-JSON over TCP because the workbench must reach a proxy inside a
//! container with nothing but a socket (or `docker exec` and a shell), and a
//! person can drive it with `nc`. Requests ([`Request`], tagged by `op`):
//!
//! ```text
//! {"op":"set","from":"n2","to":"n1","fault":{"latency_ms":50,"jitter_ms":5}}
//! {"op":"clear"}                          every link healthy
//! {"op":"clear","from":"n2","to":"n1"}    one link healthy
//! {"op":"reset","from":"n2","to":"n1"}    close the connections carrying it
//! {"op":"status"}                         faults and counters per link
//! {"op":"name","node":"n4","ip":"10.91.3.14"}  connections from that address are n4's
//! ```
//!
//! `name` exists for clusters that grow: a node that joins after a proxy
//! started is otherwise one more `client` to it.
//!
//! Answers are `{"ok":true,...}` or `{"ok":false,"error":"..."}`; a line that
//! is not a request, or a fault that means nothing, gets the error and
//! changes nothing. Lines are bounded ([`MAX_LINE_BYTES`]) so a stray
//! client cannot grow the proxy.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::{Link, LinkFault, Proxy, ProxyError};

/// The longest control line accepted.
pub const MAX_LINE_BYTES: u64 = 64 * 1024;

/// One control request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Install `fault` on `from` -> `to`.
    Set {
        /// Sending side.
        from: String,
        /// Receiving side.
        to: String,
        /// The fault (fields left out are healthy).
        fault: LinkFault,
    },
    /// Clear one link (both given) or every link (neither).
    Clear {
        /// Sending side.
        #[serde(default)]
        from: Option<String>,
        /// Receiving side.
        #[serde(default)]
        to: Option<String>,
    },
    /// Close the connections carrying `from` -> `to`.
    Reset {
        /// Sending side.
        from: String,
        /// Receiving side.
        to: String,
    },
    /// Faults and counters per link.
    Status,
    /// Name the peer that connects from `ip` (a node that joined later).
    Name {
        /// The peer's name (never `client`, which every unnamed source is).
        node: String,
        /// The address its connections come from.
        ip: std::net::IpAddr,
    },
}

/// A link from a request's names, refusing a link to itself.
fn link(from: &str, to: &str) -> Result<Link, ProxyError> {
    if from.is_empty() || to.is_empty() || from == to {
        return Err(ProxyError::BadRequest(format!("{from:?} -> {to:?} is not a link between two named sides")));
    }
    Ok(Link::new(from, to))
}

/// Parses one line and applies it to `proxy`; the answer's fields.
pub fn handle_line(proxy: &Proxy, line: &str) -> Result<Value, ProxyError> {
    let request: Request =
        serde_json::from_str(line.trim()).map_err(|e| ProxyError::BadRequest(format!("{e} in {:?}", line.trim())))?;
    apply(proxy, request)
}

/// Applies one request to `proxy`.
pub fn apply(proxy: &Proxy, request: Request) -> Result<Value, ProxyError> {
    match request {
        Request::Set { from, to, fault } => {
            let link = link(&from, &to)?;
            proxy.set(link.clone(), fault)?;
            Ok(json!({"link": link.to_string(), "fault": proxy.fault(&link)}))
        }
        Request::Clear { from: None, to: None } => {
            proxy.clear(None);
            Ok(json!({"cleared": "every link"}))
        }
        Request::Clear { from: Some(from), to: Some(to) } => {
            let link = link(&from, &to)?;
            proxy.clear(Some(&link));
            Ok(json!({"cleared": link.to_string()}))
        }
        Request::Clear { .. } => Err(ProxyError::BadRequest("clear takes both from and to, or neither".into())),
        Request::Reset { from, to } => {
            let link = link(&from, &to)?;
            Ok(json!({"link": link.to_string(), "connections_reset": proxy.reset(&link)}))
        }
        Request::Status => Ok(serde_json::to_value(proxy.status()).expect("a status serialises")),
        Request::Name { node, ip } => {
            if node.is_empty() || node == crate::CLIENT {
                return Err(ProxyError::BadRequest(format!("{node:?} cannot name a peer")));
            }
            proxy.name_source(ip, &node);
            Ok(json!({"named": node, "ip": ip}))
        }
    }
}

/// The answer line for a result.
fn answer(result: Result<Value, ProxyError>) -> String {
    let value = match result {
        Ok(Value::Object(mut fields)) => {
            fields.insert("ok".into(), json!(true));
            Value::Object(fields)
        }
        Ok(other) => json!({"ok": true, "value": other}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    let mut line = value.to_string();
    line.push('\n');
    line
}

/// Serves the control protocol for `proxy` on `listen` until dropped.
pub struct ControlServer {
    /// Where it listens (port 0 resolved).
    local_addr: SocketAddr,
    /// The accept loop.
    task: JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ControlServer {
    /// Binds `listen` and serves requests for `proxy`.
    pub async fn start(listen: SocketAddr, proxy: Arc<Proxy>) -> Result<ControlServer, ProxyError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ProxyError::Io { context: format!("control listen on {listen}"), source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ProxyError::Io { context: "read the bound address".into(), source })?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&proxy)));
            }
        });
        Ok(ControlServer { local_addr, task })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// One control connection: a line in, a line out, until it closes.
async fn serve(stream: TcpStream, proxy: Arc<Proxy>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    loop {
        let mut line = String::new();
        let n = match (&mut lines).take(MAX_LINE_BYTES).read_line(&mut line).await {
            Ok(n) => n,
            Err(e) => {
                let _ = write.write_all(answer(Err(ProxyError::BadRequest(e.to_string()))).as_bytes()).await;
                return;
            }
        };
        if n == 0 {
            return;
        }
        if !line.ends_with('\n') && n as u64 >= MAX_LINE_BYTES {
            let too_long = ProxyError::BadRequest(format!("a control line is at most {MAX_LINE_BYTES} bytes"));
            let _ = write.write_all(answer(Err(too_long)).as_bytes()).await;
            return;
        }
        let reply = answer(handle_line(&proxy, &line));
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Sends one request to the control socket at `addr`; its answer's fields,
/// or the proxy's refusal as an error.
pub async fn request(addr: SocketAddr, request: &Request) -> Result<Value, ProxyError> {
    let mut answers = requests(addr, std::slice::from_ref(request)).await?;
    answers.pop().expect("one answer per request")
}

/// Sends `requests` in order on one connection to the control socket at
/// `addr`; one answer per request (a refusal stops nothing after it), or an
/// error if the socket could not be used at all.
pub async fn requests(addr: SocketAddr, requests: &[Request]) -> Result<Vec<Result<Value, ProxyError>>, ProxyError> {
    let io = |context: &str| {
        let context = format!("{context} linkproxy control {addr}");
        move |source| ProxyError::Io { context, source }
    };
    let stream = TcpStream::connect(addr).await.map_err(io("connect to"))?;
    let (read, mut write) = stream.into_split();
    let mut lines = String::new();
    for request in requests {
        lines.push_str(&serde_json::to_string(request).expect("a request serialises"));
        lines.push('\n');
    }
    write.write_all(lines.as_bytes()).await.map_err(io("write to"))?;
    let mut read = BufReader::new(read);
    let mut answers = Vec::with_capacity(requests.len());
    for _ in requests {
        let mut reply = String::new();
        (&mut read).take(MAX_LINE_BYTES * 16).read_line(&mut reply).await.map_err(io("read from"))?;
        if reply.is_empty() {
            return Err(ProxyError::BadRequest(format!(
                "linkproxy control {addr} closed after {} answers",
                answers.len()
            )));
        }
        answers.push(parse_answer(&reply));
    }
    Ok(answers)
}

/// An answer line as a result.
pub fn parse_answer(line: &str) -> Result<Value, ProxyError> {
    let value: Value =
        serde_json::from_str(line.trim()).map_err(|e| ProxyError::BadRequest(format!("bad answer {line:?}: {e}")))?;
    if value["ok"] == json!(true) {
        return Ok(value);
    }
    Err(ProxyError::Refused(value["error"].as_str().unwrap_or("no reason given").to_string()))
}
