#![allow(dead_code)] // each program that includes this uses its own subset
//! A minimal blocking client of the live stream over a real socket: sends the signed GET, reads
//! the head, then the chunked `text/event-stream` body event by event.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One event of the stream (comments are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: u64,
    pub data: String,
}

pub struct Sse {
    socket: TcpStream,
    /// Raw bytes read and not yet decoded.
    raw: Vec<u8>,
    /// Decoded body text not yet split into events.
    text: String,
    /// The last chunk (size 0) was read: the server ended the stream cleanly.
    pub ended: bool,
    pub head: String,
}

/// What the server answered instead of a stream.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Sse {
    /// Opens `path_and_query` with `authorization` (none: unsigned). `guard` bounds every read,
    /// so a test fails instead of hanging.
    pub fn open(
        addr: &str,
        path_and_query: &str,
        authorization: Option<&str>,
        guard: Duration,
    ) -> Result<Sse, Refused> {
        let mut socket = TcpStream::connect(addr).expect("connect");
        socket.set_read_timeout(Some(guard)).expect("timeout");
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{auth}\r\n"
        );
        socket.write_all(request.as_bytes()).expect("send");
        let mut sse = Sse {
            socket,
            raw: Vec::new(),
            text: String::new(),
            ended: false,
            head: String::new(),
        };
        let end = loop {
            if let Some(i) = find(&sse.raw, b"\r\n\r\n") {
                break i;
            }
            assert!(sse.fill(), "connection closed before the response head");
        };
        sse.head = String::from_utf8_lossy(&sse.raw[..end]).to_string();
        sse.raw.drain(..end + 4);
        let status: u16 = sse
            .head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        if status == 200 && sse.header("content-type") == Some("text/event-stream") {
            return Ok(sse);
        }
        let len: usize = sse
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while sse.raw.len() < len && sse.fill() {}
        Err(Refused {
            status,
            body: String::from_utf8_lossy(&sse.raw[..len.min(sse.raw.len())]).to_string(),
            head: sse.head,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The next event; `None` once the stream has ended (cleanly or not: see `ended`).
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            while let Some(i) = self.text.find("\n\n") {
                let block: String = self.text.drain(..i + 2).collect();
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
            if self.ended || !self.read_chunk() {
                return None;
            }
        }
    }

    /// Decodes one chunk of the chunked body into `text`; false when the connection closed.
    fn read_chunk(&mut self) -> bool {
        let line_end = loop {
            if let Some(i) = find(&self.raw, b"\r\n") {
                break i;
            }
            if !self.fill() {
                return false;
            }
        };
        let size_text = String::from_utf8_lossy(&self.raw[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        self.raw.drain(..line_end + 2);
        if size == 0 {
            self.ended = true;
            return true;
        }
        while self.raw.len() < size + 2 {
            if !self.fill() {
                return false;
            }
        }
        let chunk: Vec<u8> = self.raw.drain(..size + 2).take(size).collect();
        self.text
            .push_str(&String::from_utf8(chunk).expect("UTF-8 events"));
        true
    }

    /// Reads more bytes; false at the end of the connection.
    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 16 * 1024];
        match self.socket.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) => panic!("reading the stream: {e}"),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
