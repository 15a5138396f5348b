//! The raw HTTP client of the tests (`tests/support/http.rs`) against local sockets that
//! answer in odd ways: it must read what the service sends back to malformed requests.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::http::*;

const T: Duration = Duration::from_secs(5);

/// A server thread that accepts one connection, reads the request head (and as much body as
/// its Content-Length says), answers with `response` in pieces of `piece` bytes, then closes.
/// Joining it yields the raw request received.
fn serve(response: Vec<u8>, piece: usize) -> (String, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(T)).expect("timeout");
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if req.len() >= end + 4 + len {
                    break;
                }
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        for part in response.chunks(piece.max(1)) {
            s.write_all(part).expect("write");
            s.flush().expect("flush");
            if piece < response.len() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        req
    });
    (addr, handle)
}

const GET: &[u8] = b"GET /x?y=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

#[test]
fn content_length_response() {
    let (addr, h) = serve(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nX-Dup: a\r\nx-dup: b\r\n\r\n{\"a\":[1,2]}"
            .to_vec(),
        usize::MAX,
    );
    let r = send_raw(&addr, GET, T).expect("send_raw");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("X-DUP"), Some("a"));
    assert_eq!(r.header_values("x-dup"), ["a", "b"]);
    assert_eq!(r.headers[2], ("X-Dup".to_owned(), "a".to_owned()));
    assert_eq!(r.json().expect("json"), serde_json::json!({"a": [1, 2]}));
    assert_eq!(h.join().expect("server"), GET);
}

#[test]
fn chunked_response_in_small_pieces() {
    let resp = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
    let (addr, h) = serve(resp.to_vec(), 3);
    let post = b"POST /p HTTP/1.1\r\nhost: example\r\nContent-Length: 3\r\n\r\nabc";
    let r = send_raw(&addr, post, T).expect("send_raw");
    assert_eq!(r.status, 201);
    assert_eq!(r.body, b"hello, world0123456789");
    assert_eq!(r.text(), "hello, world0123456789");
    assert!(r.header("x-trailer").is_none());
    assert_eq!(h.join().expect("server"), post);
}

#[test]
fn close_delimited_response() {
    let (addr, h) = serve(
        b"HTTP/1.0 404 Not Found\r\nServer: t\r\n\r\nnot here, and more".to_vec(),
        4,
    );
    let r = send_raw(&addr, b"GET / HTTP/1.0\r\n\r\n", T).expect("send_raw");
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"not here, and more");
    assert_eq!(h.join().expect("server"), b"GET / HTTP/1.0\r\n\r\n");
}

#[test]
fn send_raw_sends_bytes_verbatim() {
    let raw = b"GET /a HTTP/1.1\r\nhOsT: x\r\nX-A: 1\r\nX-A: 2\r\nWeird:no-space  \r\nConnection: close\r\n\r\n";
    let (addr, h) = serve(
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".to_vec(),
        usize::MAX,
    );
    let r = send_raw(&addr, raw, T).expect("send_raw");
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(h.join().expect("server"), raw);
}

#[test]
fn truncated_and_malformed_responses_are_errors() {
    for resp in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n",
        b"",
    ] {
        let (addr, _h) = serve(resp.to_vec(), usize::MAX);
        let err = send_raw(&addr, GET, T).expect_err("must fail");
        assert!(
            matches!(err, ClientError::BadResponse(_)),
            "{:?}: {err}",
            String::from_utf8_lossy(resp)
        );
    }
}

#[test]
fn json_error_on_non_json_body() {
    let (addr, _h) = serve(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
        usize::MAX,
    );
    let r = send_raw(&addr, GET, T).expect("send_raw");
    assert!(matches!(r.json(), Err(ClientError::Json(_))));
}

#[test]
fn times_out_on_a_silent_server() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let started = Instant::now();
    let err = send_raw(&addr, GET, Duration::from_millis(300)).expect_err("must time out");
    assert!(matches!(err, ClientError::Timeout(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(listener);
}

#[test]
fn connect_errors() {
    // Bind then drop, so that the port is (very likely) closed.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let err = send_raw(&addr, GET, T).expect_err("closed port");
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    let err = send_raw("no-port", GET, T).expect_err("bad address");
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
}

#[test]
fn response_survives_early_close_on_huge_request() {
    // The server answers 431 after the first bytes and closes without reading the rest.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let h = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let _ = s.flush();
        let _ = s.shutdown(Shutdown::Write);
        // Keep the socket open briefly without reading, then drop it.
        std::thread::sleep(Duration::from_millis(200));
    });
    let huge = format!(
        "GET / HTTP/1.1\r\nX-Huge: {}\r\nConnection: close\r\n\r\n",
        "x".repeat(8 * 1024 * 1024)
    );
    let result = send_raw(&addr, huge.as_bytes(), T);
    h.join().expect("server");
    match result {
        Ok(r) => assert_eq!(r.status, 431),
        // The kernel may discard the answer when the peer resets: an I/O error is acceptable.
        Err(ClientError::Io(_)) => {}
        Err(e) => panic!("unexpected error {e}"),
    }
}
