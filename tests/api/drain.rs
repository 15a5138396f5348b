//! Shutdown drains the API listener: every request a keep-alive client sent before the server
//! closed its connection gets an answer, and clients are told to go (`Connection: close`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

const BODY: &str = r#"{"vdn":92,"taskId":"1"}"#;
const CONNECTIONS: usize = 8;

/// What one keep-alive connection saw.
#[derive(Debug, Default)]
struct Outcome {
    /// Requests whose bytes were fully written.
    sent: u64,
    /// Complete answers read.
    answered: u64,
    /// Requests sent after the server had begun stopping.
    sent_after_signal: u64,
    /// The server answered with `Connection: close` at least once.
    told_to_close: bool,
    /// How the connection ended, for the failure message.
    end: String,
}

/// Shared between the main task and the client threads.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    answered: AtomicU64,
    signalled: AtomicBool,
}

/// Reads one HTTP/1.1 response framed by Content-Length. `Ok(None)`: the connection ended
/// before a complete answer. Returns whether it carried `Connection: close`.
fn read_answer(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 "), "not an HTTP answer: {head}");
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let close = head
                .lines()
                .any(|l| l.starts_with("connection:") && l.contains("close"));
            let total = end + 4 + length;
            if buf.len() >= total {
                buf.drain(..total);
                return Ok(Some(close));
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e),
        }
    }
}

/// One client: sends `depth` requests at a time (1: one after the other; more: pipelined), reads
/// their answers, and goes on until the server tells it to close or closes. A well-behaved
/// client: after an answer with `Connection: close` it sends nothing more on the connection.
fn client(addr: String, request: Vec<u8>, depth: usize, counters: Arc<Counters>) -> Outcome {
    let mut out = Outcome::default();
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let batch: Vec<u8> = request.repeat(depth);
    let mut buf = Vec::new();
    loop {
        let signalled = counters.signalled.load(Ordering::SeqCst);
        if let Err(e) = stream.write_all(&batch) {
            out.end = format!("write refused: {e}");
            return out;
        }
        out.sent += depth as u64;
        counters.sent.fetch_add(depth as u64, Ordering::SeqCst);
        if signalled {
            out.sent_after_signal += depth as u64;
        }
        for _ in 0..depth {
            match read_answer(&mut stream, &mut buf) {
                Ok(Some(close)) => {
                    out.answered += 1;
                    counters.answered.fetch_add(1, Ordering::SeqCst);
                    out.told_to_close |= close;
                }
                Ok(None) => {
                    out.end = "closed by the server".into();
                    return out;
                }
                Err(e) => {
                    out.end = format!("read failed: {e}");
                    return out;
                }
            }
        }
        if out.told_to_close {
            // Read to the end: the server closes after its `Connection: close` answer.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
            out.end = "closed after Connection: close".into();
            return out;
        }
    }
}

/// An idle keep-alive connection: answered once, then silent.
fn idle_connection(addr: &str, request: &[u8]) -> TcpStream {
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.write_all(request).expect("idle request");
    let answer = read_answer(&mut idle, &mut Vec::new()).expect("idle answer");
    assert_eq!(answer, Some(false), "a keep-alive answer");
    idle
}

#[actix_web::test]
async fn shutdown_answers_every_request_already_sent_on_keep_alive_connections() {
    let app = spawn_app().await;

    let request = signed_raw_keep_alive(&app.api, BODY.as_bytes(), "");
    let counters = Arc::new(Counters::default());
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let (addr, request, counters) = (app.api.clone(), request.clone(), counters.clone());
            // Half send one request at a time, half pipeline two or three.
            let depth = [1, 2, 1, 3][i % 4];
            std::thread::spawn(move || client(addr, request, depth, counters))
        })
        .collect();

    // Every connection busy before the signal.
    let deadline = Instant::now() + Duration::from_secs(20);
    while counters.answered.load(Ordering::SeqCst) < 20 * CONNECTIONS as u64 {
        assert!(Instant::now() < deadline, "clients make no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut idle = idle_connection(&app.api, &request);

    // Signal while requests are on their way (they are, nearly always: clients only pause to
    // parse an answer).
    let (in_flight, answered_before) = loop {
        counters.signalled.store(true, Ordering::SeqCst);
        let answered = counters.answered.load(Ordering::SeqCst);
        let in_flight = counters.sent.load(Ordering::SeqCst) - answered;
        if in_flight > 0 {
            break (in_flight, answered);
        }
        counters.signalled.store(false, Ordering::SeqCst);
        std::thread::yield_now();
    };
    app.shutdown.trigger();
    app.run.await.expect("clean stop");
    // The idle connection was closed, not left to its keep-alive timeout.
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut rest = [0u8; 64];
    assert_eq!(idle.read(&mut rest).ok(), Some(0), "idle connection closed");

    let outcomes: Vec<Outcome> = tokio::task::spawn_blocking(move || {
        clients
            .into_iter()
            .map(|c| c.join().expect("client thread"))
            .collect()
    })
    .await
    .expect("join");
    let sent: u64 = outcomes.iter().map(|o| o.sent).sum();
    let answered: u64 = outcomes.iter().map(|o| o.answered).sum();
    let lost = sent - answered;
    eprintln!(
        "drain: {in_flight} requests in flight at the signal, {} answered after it, {lost} lost \
         ({sent} sent, {answered} answered in all)",
        answered - answered_before
    );
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(o.sent, o.answered, "connection {i} lost requests: {o:?}");
        assert!(
            o.told_to_close,
            "connection {i} was not told to close: {o:?}"
        );
    }
}

/// Reads answers until the server closes: whether each said `Connection: close`.
fn answers_until_closed(stream: &mut TcpStream) -> Vec<bool> {
    let mut buf = Vec::new();
    let mut closes = Vec::new();
    while let Ok(Some(close)) = read_answer(stream, &mut buf) {
        closes.push(close);
    }
    closes
}

/// Issue 18.4: requests a client pipelined on a kept-alive connection as the signal arrived
/// are all answered. Written one after the other without waiting for answers (as pipelining
/// clients do), they reach the server in several reads; an answer that said `close` before the
/// last of them was read would leave the rest unprocessed (RFC 9112, 9.6).
#[actix_web::test]
async fn requests_pipelined_at_the_signal_are_all_answered() {
    let app = spawn_app().await;
    let request = signed_raw_keep_alive(&app.api, BODY.as_bytes(), "");
    let mut conn = idle_connection(&app.api, &request);
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    conn.set_nodelay(true).expect("nodelay");
    app.shutdown.trigger();
    let closes = tokio::task::spawn_blocking(move || {
        for _ in 0..4 {
            if conn.write_all(&request).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        answers_until_closed(&mut conn)
    })
    .await
    .expect("join");
    app.run.await.expect("clean stop");
    assert_eq!(
        closes.len(),
        4,
        "every pipelined request answered: {closes:?}"
    );
}
