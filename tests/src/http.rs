//! A minimal HTTP/1.1 server loop: enough of the protocol to be a faithful Ollama stand-in
//! (keep-alive, Content-Length bodies, chunked streaming with exact control of chunk boundaries,
//! abrupt closes), and nothing more.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::routes::{Response, route};
use crate::state::Shared;
use crate::{Chunking, Fault, time};

/// A request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without query.
    pub path: String,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The body as JSON, when it parsed.
    pub json: Option<Value>,
}

impl RecordedRequest {
    /// The first header of that (lowercase) name.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `messages` of a chat request.
    #[must_use]
    pub fn messages(&self) -> Vec<(String, String)> {
        self.json
            .as_ref()
            .and_then(|j| j.get("messages"))
            .and_then(Value::as_array)
            .map(|messages| {
                messages
                    .iter()
                    .map(|m| {
                        let field = |k: &str| {
                            m.get(k)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        (field("role"), field("content"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn body_looks_truncated(&self) -> bool {
        serde_json::from_slice::<Value>(&self.body).is_err_and(|e| e.is_eof())
    }
}

/// A connection the stand-in can serve: plain TCP, or TLS over TCP.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// The TCP socket underneath (to notice a client that went away).
    fn tcp(&self) -> &TcpStream;
}

impl Transport for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let _ = connection(socket, shared).await;
                }
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(socket).await {
                        let _ = connection(stream, shared).await;
                    }
                }
            }
        });
    }
}

const MAX_HEAD: usize = 64 * 1024;
/// The first byte of a TLS handshake record; an HTTP request never starts with it.
const TLS_HANDSHAKE: u8 = 0x16;

async fn connection(mut socket: impl Transport, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        // Read the head.
        let head_end = loop {
            if let Some(pos) = find(&buf, b"\r\n\r\n") {
                break pos;
            }
            if buf.len() > MAX_HEAD {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.first() == Some(&TLS_HANDSHAKE) {
                // A TLS ClientHello on the plain-HTTP port (an `https://` address for an
                // `http://` server): answer as Go's net/http (and so Ollama) does, then close.
                socket
                    .write_all(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                          Connection: close\r\n\r\n400 Bad Request",
                    )
                    .await?;
                let _ = socket.shutdown().await;
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or("/");
        let path = target.split('?').next().unwrap_or("/").to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        buf.drain(..head_end + 4);
        while buf.len() < length {
            let mut chunk = vec![0u8; (length - buf.len()).min(64 * 1024)];
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let request = RecordedRequest {
            json: serde_json::from_slice(&body).ok(),
            method,
            path,
            headers,
            body,
        };
        // Ollama's DNS-rebinding guard: a Host it does not consider local gets 403, empty body.
        if !host_allowed(request.header("host")) {
            shared.state().requests.push(request);
            write_head(
                &mut socket,
                403,
                "text/plain; charset=utf-8",
                Some(0),
                &[],
                close,
            )
            .await?;
            continue;
        }
        let (response, delay) = route(&shared, &request);
        if !delay.is_zero() && !wait_or_client_gone(&mut socket, delay).await {
            count_abort(&shared);
            return Ok(());
        }
        match response {
            Response::Silent { head } => {
                if let Some(length) = head {
                    write_head(
                        &mut socket,
                        200,
                        "application/json; charset=utf-8",
                        Some(length),
                        &[],
                        close,
                    )
                    .await?;
                    socket.flush().await?;
                }
                // Hold the connection until the client gives up.
                while wait_or_client_gone(&mut socket, Duration::from_secs(3600)).await {}
                count_abort(&shared);
                return Ok(());
            }
            Response::Full {
                status,
                content_type,
                body,
                extra_headers,
            } => {
                write_head(
                    &mut socket,
                    status,
                    content_type,
                    Some(body.len()),
                    &extra_headers,
                    close,
                )
                .await?;
                if request.method != "HEAD" {
                    socket.write_all(&body).await?;
                }
            }
            Response::Stream {
                lines,
                reply,
                fault,
            } => {
                write_head(&mut socket, 200, "application/x-ndjson", None, &[], close).await?;
                match stream(&mut socket, &lines, &reply, fault).await {
                    Ok(StreamEnd::Complete) => {}
                    Ok(StreamEnd::Dropped) => return Ok(()),
                    Err(_) | Ok(StreamEnd::ClientGone) => {
                        count_abort(&shared);
                        return Ok(());
                    }
                }
            }
        }
        socket.flush().await?;
        if close {
            return Ok(());
        }
    }
}

fn count_abort(shared: &Shared) {
    shared.aborted.fetch_add(1, Ordering::SeqCst);
    shared.abort_notify.notify_waiters();
}

enum StreamEnd {
    Complete,
    /// The stand-in dropped the connection on purpose.
    Dropped,
    /// The client closed the connection first.
    ClientGone,
}

async fn stream(
    socket: &mut impl Transport,
    lines: &[Vec<u8>],
    reply: &crate::Reply,
    fault: Option<(usize, Fault)>,
) -> std::io::Result<StreamEnd> {
    // The body as it will be sent, cut where the fault strikes.
    let mut body: Vec<u8> = Vec::new();
    let mut line_ends = Vec::new();
    let mut stall: Option<(usize, Duration)> = None;
    let mut drop_at_end = false;
    for (i, line) in lines.iter().enumerate() {
        if let Some((after, f)) = &fault
            && i == *after
        {
            match f {
                Fault::ErrorLine { message, .. } => {
                    body.extend_from_slice(
                        serde_json::json!({ "error": message })
                            .to_string()
                            .as_bytes(),
                    );
                    body.push(b'\n');
                    line_ends.push(body.len());
                    break;
                }
                Fault::Drop { .. } => {
                    drop_at_end = true;
                    break;
                }
                Fault::Malformed { line, .. } => {
                    body.extend_from_slice(line.as_bytes());
                    body.push(b'\n');
                    line_ends.push(body.len());
                }
                Fault::Stall { stall: d, .. } => stall = Some((body.len(), *d)),
                Fault::Status { .. } | Fault::NoResponse | Fault::NoBody | Fault::EmptyBody => {}
            }
        }
        body.extend_from_slice(line);
        line_ends.push(body.len());
    }
    // Cut into chunks.
    let mut cuts: Vec<usize> = match reply.chunking {
        Chunking::PerLine => line_ends.clone(),
        Chunking::Packed(n) => line_ends
            .iter()
            .enumerate()
            .filter(|(i, _)| (i + 1) % n.max(1) == 0)
            .map(|(_, e)| *e)
            .collect(),
        Chunking::SplitEvery(n) => (1..=body.len().div_ceil(n.max(1)))
            .map(|k| (k * n.max(1)).min(body.len()))
            .collect(),
        Chunking::Whole => vec![body.len()],
    };
    if let Some((at, _)) = stall {
        cuts.push(at);
    }
    cuts.push(body.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut start = 0;
    for cut in cuts {
        if cut <= start {
            continue;
        }
        if let Some((at, d)) = stall
            && at == start
            && !wait_or_client_gone(socket, d).await
        {
            return Ok(StreamEnd::ClientGone);
        }
        if !reply.chunk_delay.is_zero() && !wait_or_client_gone(socket, reply.chunk_delay).await {
            return Ok(StreamEnd::ClientGone);
        }
        let chunk = &body[start..cut];
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if socket.write_all(&framed).await.is_err() {
            return Ok(StreamEnd::ClientGone);
        }
        socket.flush().await?;
        start = cut;
    }
    if drop_at_end {
        // Close abruptly: no final line, no terminating chunk.
        let _ = socket.shutdown().await;
        return Ok(StreamEnd::Dropped);
    }
    socket.write_all(b"0\r\n\r\n").await?;
    Ok(StreamEnd::Complete)
}

/// Sleeps for `delay` unless the client closes the connection first (false then).
async fn wait_or_client_gone(socket: &mut impl Transport, delay: Duration) -> bool {
    let mut probe = [0u8; 1];
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        read = socket.tcp().peek(&mut probe) => !matches!(read, Ok(0) | Err(_)) && {
            // Data from the client mid-response (pipelining) is not a close; finish the wait.
            tokio::time::sleep(delay).await;
            true
        },
    }
}

async fn write_head(
    socket: &mut impl Transport,
    status: u16,
    content_type: &str,
    length: Option<usize>,
    extra: &[(&'static str, String)],
    close: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Date: {}\r\n", time::http_date(SystemTime::now())));
    if close {
        head.push_str("Connection: close\r\n");
    }
    match length {
        Some(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await
}

/// Ollama allows loopback names and addresses (and no Host at all) and refuses the rest.
fn host_allowed(host: Option<&str>) -> bool {
    let Some(host) = host else { return true };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.ends_with(".local")
        || name.parse::<std::net::IpAddr>().is_ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
