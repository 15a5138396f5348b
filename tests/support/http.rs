//! The raw HTTP/1.1 client of the tests, for what a real client will not send: malformed
//! requests, duplicated or huge headers, bytes that are not UTF-8, framing of the test's own
//! choosing. [`send_raw`] writes exactly the bytes it is given on a new connection and parses the
//! one response leniently: the status line, the headers as received, the body framed by
//! `Transfer-Encoding: chunked`, `Content-Length` or the end of the connection. Everything else
//! goes through ureq (`support::try_request`); pipelined and slow traffic is written by the tests
//! that need it on a `TcpStream` of their own.
//!
//! [`Response`] is the answer type of both clients.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest accepted response (head and body).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("bad response: {0}")]
    BadResponse(String),
    #[error("response body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A parsed response. Headers are kept in order, as received (names not case-folded, values
/// trimmed of surrounding blanks); the body is de-chunked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }

    /// Every header with this name (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body, parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, ClientError> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects to `addr` (`host:port`), writes `request` as given, then reads and parses the
/// response. `timeout` bounds the whole exchange. If the server closes the connection while the
/// request is still being written (it rejects a huge header early), the response it sent, if
/// any, is still returned.
pub fn send_raw(addr: &str, request: &[u8], timeout: Duration) -> Result<Response, ClientError> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(addr, timeout)?;
    stream.set_nodelay(true)?;
    let left = |deadline: Instant| {
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero())
            .then_some(left)
            .ok_or(ClientError::Timeout(timeout))
    };

    stream.set_write_timeout(Some(left(deadline)?))?;
    let write_err = match stream.write_all(request).and_then(|()| stream.flush()) {
        Ok(()) => None,
        Err(e) if is_timeout(&e) => return Err(ClientError::Timeout(timeout)),
        Err(e) if is_reset(&e) || e.kind() == io::ErrorKind::BrokenPipe => Some(e),
        Err(e) => return Err(e.into()),
    };

    let mut received = Vec::with_capacity(8192);
    let mut chunk = [0u8; 16 * 1024];
    let response = loop {
        let eof = match left(deadline).and_then(|l| Ok(stream.set_read_timeout(Some(l))?)) {
            Err(e) => break Err(e),
            Ok(()) => match stream.read(&mut chunk) {
                Ok(0) => true,
                Ok(n) => {
                    received.extend_from_slice(&chunk[..n]);
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => break Err(ClientError::Timeout(timeout)),
                // A reset ends the stream: what was received is still parsed.
                Err(e) if is_reset(&e) => true,
                Err(e) => break Err(e.into()),
            },
        };
        if received.len() > MAX_RESPONSE {
            break Err(bad("response too large"));
        }
        match parse(&received, eof) {
            Ok(None) => {}
            done => break done.map(|r| r.expect("a complete response")),
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    match (response, write_err) {
        (Ok(r), _) => Ok(r),
        // Nothing readable after a failed write: report the write error.
        (Err(_), Some(write_err)) => Err(write_err.into()),
        (Err(e), None) => Err(e),
    }
}

fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, ClientError> {
    let connect_err = |source: io::Error| ClientError::Connect {
        addr: addr.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(connect_err)?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing");
    for sa in addrs {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    if last.kind() == io::ErrorKind::TimedOut {
        return Err(ClientError::Timeout(timeout));
    }
    Err(connect_err(last))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

fn bad(msg: impl Into<String>) -> ClientError {
    ClientError::BadResponse(msg.into())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The response in `buf`: `Ok(None)` while it is incomplete and more may come (`eof` false).
fn parse(buf: &[u8], eof: bool) -> Result<Option<Response>, ClientError> {
    let incomplete = |what: &str| {
        if eof {
            Err(bad(format!("connection closed {what}")))
        } else {
            Ok(None)
        }
    };
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return incomplete("before the end of the response head");
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let status = match code.parse::<u16>() {
        Ok(s) if version.starts_with("HTTP/") && code.len() == 3 && s >= 100 => s,
        _ => return Err(bad(format!("status line {status_line:?}"))),
    };
    let mut response = Response {
        status,
        ..Response::default()
    };
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("header line {line:?}")))?;
        response
            .headers
            .push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }

    let body = &buf[end + 4..];
    let chunked = response
        .header_values("transfer-encoding")
        .last()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
    if chunked {
        return match dechunk(body, eof)? {
            Some(body) => Ok(Some(Response { body, ..response })),
            None => incomplete("before the last chunk"),
        };
    }
    let lengths: Vec<&str> = response.header_values("content-length");
    match lengths.as_slice() {
        [] if eof => Ok(Some(Response {
            body: body.to_vec(),
            ..response
        })),
        [] => Ok(None),
        [one] => {
            let n: usize = one
                .parse()
                .map_err(|_| bad(format!("Content-Length {one:?}")))?;
            if body.len() >= n {
                let body = body[..n].to_vec();
                Ok(Some(Response { body, ..response }))
            } else {
                incomplete(&format!("after {} of {n} body bytes", body.len()))
            }
        }
        _ => Err(bad("more than one Content-Length")),
    }
}

/// The de-chunked body, or `None` while the last chunk and the trailers have not arrived (and
/// more may come: `eof` false). Trailers are skipped.
fn dechunk(mut rest: &[u8], eof: bool) -> Result<Option<Vec<u8>>, ClientError> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .ok()
            .filter(|_| !size_text.starts_with('+'))
            .ok_or_else(|| bad(format!("chunk size {line:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailers up to the empty line (a close right after the last chunk is tolerated).
            let trailers_done = rest.starts_with(b"\r\n") || find(rest, b"\r\n\r\n").is_some();
            return Ok((trailers_done || eof).then_some(body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err(bad("chunk not followed by CRLF"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
