#![allow(dead_code)] // each program that includes this uses its own subset
//! A blocking client of the live stream on ureq: sends the signed GET, then reads the
//! `text/event-stream` body event by event. Whether the stream ended cleanly (with the last
//! chunk) or was cut is told apart: ureq reads a chunked body to its end only after the last
//! chunk, and reports a connection closed before it as an error.

use std::io::Read;
use std::time::Duration;

/// One event of the stream (comments are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: u64,
    pub data: String,
}

pub struct Sse {
    /// The body; dropping it closes the connection (nothing is pooled).
    body: ureq::BodyReader<'static>,
    /// Body bytes read and not yet split into events.
    text: Vec<u8>,
    /// The body ended with its last chunk: the server ended the stream cleanly.
    pub ended: bool,
    headers: Vec<(String, String)>,
}

/// What the server answered instead of a stream.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Refused {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// The headers of a ureq response as `(name, value)` pairs, in order (values as text, invalid
/// UTF-8 replaced).
pub fn header_list(headers: &ureq::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect()
}

fn find_header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Sse {
    /// Opens `path_and_query` on `addr` with `authorization` (none: unsigned). `guard` bounds
    /// the connection and every read, so a test fails instead of hanging.
    pub fn open(
        addr: &str,
        path_and_query: &str,
        authorization: Option<&str>,
        guard: Duration,
    ) -> Result<Sse, Refused> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_idle_connections(0)
            .timeout_connect(Some(guard))
            .timeout_per_read(Some(guard))
            .build()
            .into();
        let mut request = agent
            .get(format!("http://{addr}{path_and_query}"))
            .header("Accept", "text/event-stream");
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        let response = request
            .call()
            .unwrap_or_else(|e| panic!("opening {path_and_query}: {e}"));
        let status = response.status().as_u16();
        let headers = header_list(response.headers());
        let mut body = response.into_body().into_reader();
        if status == 200 && find_header(&headers, "content-type") == Some("text/event-stream") {
            return Ok(Sse {
                body,
                text: Vec::new(),
                ended: false,
                headers,
            });
        }
        let mut text = Vec::new();
        body.read_to_end(&mut text)
            .unwrap_or_else(|e| panic!("reading the refusal: {e}"));
        Err(Refused {
            status,
            headers,
            body: String::from_utf8_lossy(&text).into_owned(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The next event; `None` once the stream has ended (cleanly or not: see `ended`).
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            while let Some(i) = self.text.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.text.drain(..i + 2).collect();
                let block = String::from_utf8(block).expect("UTF-8 events");
                let mut id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(v.to_owned());
                    }
                }
                if let (Some(id), Some(data)) = (id, data) {
                    return Some(Event { id, data });
                }
            }
            if self.ended || !self.fill() {
                return None;
            }
        }
    }

    /// Reads more of the body; false at its end (`ended` says whether that end was clean).
    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        match self.body.read(&mut buf) {
            Ok(0) => {
                self.ended = true;
                false
            }
            Ok(n) => {
                self.text.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                panic!("reading the stream: {e}")
            }
            // Cut before the last chunk.
            Err(_) => false,
        }
    }
}
