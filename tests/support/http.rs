//! A minimal blocking HTTP/1.1 client for the tests.
//!
//! For tests that must put exact bytes on a real socket (odd, duplicated or huge headers,
//! malformed requests), so nothing is normalized: [`send_raw`] writes the bytes it is
//! given, and [`request`] adds only what it documents. Responses are parsed leniently (status line,
//! headers as received, body framed by `Transfer-Encoding: chunked`, `Content-Length`, or the end
//! of the connection).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest accepted response head (status line and headers).
const MAX_HEAD: usize = 1024 * 1024;
/// Largest accepted response body.
const MAX_BODY: usize = 256 * 1024 * 1024;

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
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
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

/// Builds an HTTP/1.1 request from `method`, `path` and exactly the given headers (in order, not
/// validated), adding `Host: {addr}` (first) if no `Host` is given, `Connection: close` if no
/// `Connection` is given, and `Content-Length` if neither `Content-Length` nor
/// `Transfer-Encoding` is given and there is a body or the method is POST, PUT or PATCH; then
/// sends it with [`send_raw`].
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, ClientError> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut req = Vec::with_capacity(256 + body.len());
    req.extend_from_slice(format!("{method} {path} HTTP/1.1\r\n").as_bytes());
    if !has("host") {
        req.extend_from_slice(format!("Host: {addr}\r\n").as_bytes());
    }
    for (name, value) in headers {
        req.extend_from_slice(name.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(value.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    if !has("connection") {
        req.extend_from_slice(b"Connection: close\r\n");
    }
    let body_expected = !body.is_empty()
        || ["POST", "PUT", "PATCH"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method));
    if body_expected && !has("content-length") && !has("transfer-encoding") {
        req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    send_raw(addr, &req, timeout)
}

/// Whether the admin listener at `admin` answers `/health/ready` with 200 (any error: no).
pub fn is_ready(admin: &str) -> bool {
    request(
        admin,
        "GET",
        "/health/ready",
        &[],
        b"",
        Duration::from_secs(2),
    )
    .is_ok_and(|r| r.status == 200)
}

/// Connects to `addr` (`host:port`), writes `request` as given, then reads and parses the
/// response. `timeout` bounds the whole exchange (connect, write, read). If the server closes
/// the connection while the request is still being written (e.g. it rejects a huge header early),
/// the response it sent, if any, is still returned. A `HEAD` request (by its first bytes) is
/// expected to get a response without body; interim `1xx` responses are skipped.
pub fn send_raw(addr: &str, request: &[u8], timeout: Duration) -> Result<Response, ClientError> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(addr, timeout, deadline)?;
    stream.set_nodelay(true)?;

    // The peer may have answered and closed before reading everything: still read its answer.
    let write_err = match write_all(&mut stream, request, timeout, deadline) {
        Ok(()) => None,
        Err(ClientError::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
            ) =>
        {
            Some(ClientError::Io(e))
        }
        Err(e) => return Err(e),
    };

    let head_request = request
        .get(..5)
        .is_some_and(|m| m.eq_ignore_ascii_case(b"HEAD "));
    let mut reader = Reader {
        stream: &mut stream,
        buf: Vec::with_capacity(8192),
        pos: 0,
        eof: false,
        timeout,
        deadline,
    };
    let response = read_response(&mut reader, head_request);
    let _ = stream.shutdown(Shutdown::Both);
    match (response, write_err) {
        (Ok(r), _) => Ok(r),
        // Nothing readable after a failed write: report the write error.
        (Err(_), Some(write_err)) => Err(write_err),
        (Err(e), None) => Err(e),
    }
}

fn connect(addr: &str, timeout: Duration, deadline: Instant) -> Result<TcpStream, ClientError> {
    let connect_err = |source: io::Error| ClientError::Connect {
        addr: addr.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(connect_err)?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing");
    for sa in addrs {
        let remaining = remaining(deadline).ok_or(ClientError::Timeout(timeout))?;
        match TcpStream::connect_timeout(&sa, remaining) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => last = e,
            Err(e) => last = e,
        }
    }
    if last.kind() == io::ErrorKind::TimedOut {
        return Err(ClientError::Timeout(timeout));
    }
    Err(connect_err(last))
}

fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn write_all(
    stream: &mut TcpStream,
    mut data: &[u8],
    timeout: Duration,
    deadline: Instant,
) -> Result<(), ClientError> {
    while !data.is_empty() {
        let left = remaining(deadline).ok_or(ClientError::Timeout(timeout))?;
        stream.set_write_timeout(Some(left))?;
        match stream.write(data) {
            Ok(0) => {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "connection closed").into())
            }
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(ClientError::Timeout(timeout)),
            Err(e) => return Err(e.into()),
        }
    }
    stream.flush()?;
    Ok(())
}

struct Reader<'a> {
    stream: &'a mut TcpStream,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    timeout: Duration,
    deadline: Instant,
}

impl Reader<'_> {
    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more bytes into the buffer; `Ok(false)` at the end of the stream. A connection
    /// reset counts as the end of the stream (what was received is still parsed).
    fn fill(&mut self) -> Result<bool, ClientError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = remaining(self.deadline).ok_or(ClientError::Timeout(self.timeout))?;
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(ClientError::Timeout(self.timeout)),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    self.eof = true;
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Takes one line (without its `\n` or `\r\n`), or `None` at the end of the stream.
    fn line(&mut self, limit: usize) -> Result<Option<Vec<u8>>, ClientError> {
        let mut searched = 0;
        loop {
            if let Some(i) = self.available()[searched..]
                .iter()
                .position(|&b| b == b'\n')
            {
                let end = self.pos + searched + i;
                let mut line = self.buf[self.pos..end].to_vec();
                self.pos = end + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            searched = self.available().len();
            if searched > limit {
                return Err(bad("line too long"));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn take(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), ClientError> {
        while self.available().len() < n {
            if !self.fill()? {
                return Err(bad(format!(
                    "body truncated: {} of {n} bytes",
                    self.available().len()
                )));
            }
        }
        out.extend_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(())
    }

    fn rest(&mut self, out: &mut Vec<u8>) -> Result<(), ClientError> {
        loop {
            out.extend_from_slice(self.available());
            self.pos = self.buf.len();
            if out.len() > MAX_BODY {
                return Err(bad("body too large"));
            }
            if !self.fill()? {
                return Ok(());
            }
        }
    }
}

fn bad(msg: impl Into<String>) -> ClientError {
    ClientError::BadResponse(msg.into())
}

fn read_response(r: &mut Reader<'_>, head_request: bool) -> Result<Response, ClientError> {
    loop {
        let (status, headers) = read_head(r)?;
        // Interim responses (100 Continue, 103 Early Hints): the real one follows.
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || status == 101 || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header_values("transfer-encoding")
            .last()
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        if chunked {
            read_chunked(r, &mut response.body)?;
        } else if let Some(len) = content_length(&response)? {
            if len > MAX_BODY as u64 {
                return Err(bad(format!("Content-Length {len} too large")));
            }
            r.take(len as usize, &mut response.body)?;
        } else {
            r.rest(&mut response.body)?;
        }
        return Ok(response);
    }
}

fn read_head(r: &mut Reader<'_>) -> Result<(u16, Vec<(String, String)>), ClientError> {
    let mut status_line = r.line(MAX_HEAD)?;
    // Tolerate empty lines before the status line.
    while status_line.as_deref().is_some_and(<[u8]>::is_empty) {
        status_line = r.line(MAX_HEAD)?;
    }
    let status_line = status_line.ok_or_else(|| bad("connection closed before a response"))?;
    let text = String::from_utf8_lossy(&status_line);
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(bad(format!("status line {text:?}")));
    }
    let status = match code.parse::<u16>() {
        Ok(s) if code.len() == 3 && (100..=999).contains(&s) => s,
        _ => return Err(bad(format!("status line {text:?}"))),
    };

    let mut headers: Vec<(String, String)> = Vec::new();
    let mut head_size = status_line.len();
    loop {
        let line = r
            .line(MAX_HEAD)?
            .ok_or_else(|| bad("connection closed inside the headers"))?;
        if line.is_empty() {
            break;
        }
        head_size += line.len() + 2;
        if head_size > MAX_HEAD {
            return Err(bad("response head too large"));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Obsolete line folding: continues the previous header's value.
            let (_, value) = headers
                .last_mut()
                .ok_or_else(|| bad("continuation line before any header"))?;
            let more = String::from_utf8_lossy(&line);
            value.push(' ');
            value.push_str(more.trim());
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad(format!("header line {:?}", String::from_utf8_lossy(&line))))?;
        let name = String::from_utf8_lossy(&line[..colon]).into_owned();
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim_matches([' ', '\t'])
            .to_owned();
        headers.push((name, value));
    }
    Ok((status, headers))
}

fn content_length(response: &Response) -> Result<Option<u64>, ClientError> {
    let mut found: Option<u64> = None;
    for value in response.header_values("content-length") {
        for part in value.split(',') {
            let part = part.trim();
            let n = part
                .parse::<u64>()
                .ok()
                .filter(|_| part.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| bad(format!("Content-Length {value:?}")))?;
            if found.is_some_and(|f| f != n) {
                return Err(bad("conflicting Content-Length headers"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn read_chunked(r: &mut Reader<'_>, body: &mut Vec<u8>) -> Result<(), ClientError> {
    loop {
        let line = r
            .line(4096)?
            .ok_or_else(|| bad("connection closed before the last chunk"))?;
        let text = String::from_utf8_lossy(&line);
        let size_text = text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .ok()
            .filter(|_| !size_text.is_empty() && !size_text.starts_with('+'))
            .ok_or_else(|| bad(format!("chunk size {text:?}")))?;
        if size == 0 {
            break;
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(bad("body too large"));
        }
        r.take(size, body)?;
        match r.line(16)? {
            Some(l) if l.is_empty() => {}
            _ => return Err(bad("chunk not followed by CRLF")),
        }
    }
    // Trailers, up to the empty line (a close right after the last chunk is tolerated).
    while let Some(line) = r.line(MAX_HEAD)? {
        if line.is_empty() {
            break;
        }
    }
    Ok(())
}
