//! Issue 18 over real sockets: a request for another host is refused; one client's bad
//! signatures cannot lock out another behind the same address; a live stream closed by its
//! client gives its place back at once; a keys file that disappears is a counted rejection.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use realstat::api::stream::PATH as STREAM;
use realstat::auth::client::Request;

use crate::support::*;

const BODY: &str = r#"{"vdn":92,"taskId":"1"}"#;

/// A query signed by `ak`/`sk` for `host`, sent with that `Host` (through ureq).
async fn query_for_host(app: &TestApp, host: &str, ak: &str, sk: &str) -> Response {
    let (api, host, ak, sk) = (
        app.api.clone(),
        host.to_owned(),
        ak.to_owned(),
        sk.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let auth = sign(&ak, &sk, &Request::post_json(&host, PATH, BODY.as_bytes()));
        let headers = [
            ("Host", host.as_str()),
            ("Content-Type", JSON),
            ("Authorization", auth.as_str()),
        ];
        try_request(&api, "POST", PATH, &headers, BODY.as_bytes()).expect("an answer")
    })
    .await
    .expect("join")
}

#[actix_web::test]
async fn a_request_for_another_host_is_refused_and_counted_apart() {
    let app = TestApp::builder()
        .settings(|s| {
            s.auth.allowed_hosts = vec!["Realstat.Example".into(), "127.0.0.1".into()];
            s.auth.lockout_threshold = 3;
        })
        .spawn()
        .await;
    // Signed, and correctly, but for another service: refused, and more than the lockout's
    // threshold of them locks nothing (they guess no secret).
    for _ in 0..4 {
        let r = query_for_host(&app, "evil.example", AK, SK).await;
        let desc = assert_code(&r, 401, "0100001");
        assert_eq!(
            desc,
            "Authentication failed: request not addressed to this service"
        );
    }
    let r = query_for_host(&app, "[::1]:8080", AK, SK).await;
    assert_code(&r, 401, "0100001");
    // The allowed names, whatever the port and case.
    for host in [
        "realstat.example",
        "REALSTAT.example:8443",
        app.api.as_str(),
    ] {
        let r = query_for_host(&app, host, AK, SK).await;
        assert_code(&r, 200, "0100000");
    }
    let m = app.metrics().await;
    assert_metrics(
        &m,
        &[(
            r#"realstat_auth_failures_total{category="wrong_host"}"#,
            5.0,
        )],
    );
    let locked = metric(&m, r#"realstat_auth_failures_total{category="locked"}"#);
    assert_eq!(locked.unwrap_or(0.0), 0.0, "{m}");
    app.stop().await;
}

/// Behind a balancer with no trusted proxies, every client is one address (here: loopback).
#[actix_web::test]
async fn a_strangers_bad_signatures_do_not_lock_out_a_supervisor_at_the_same_address() {
    let app = TestApp::builder()
        .settings(|s| s.auth.lockout_threshold = 3)
        .spawn()
        .await;
    let host = app.api.clone();
    // A stranger with a key of its own invention, and one with none at all.
    for _ in 0..3 {
        let r = query_for_host(&app, &host, "stranger", "guess").await;
        assert_code(&r, 401, "0100001");
        let r = post_with(&app.api, PATH, "", &[], BODY).await;
        assert_code(&r, 401, "0100001");
    }
    let r = query_for_host(&app, &host, "stranger", "guess").await;
    assert_eq!(assert_code(&r, 403, "0100001"), "IP address is locked");
    let r = post_with(&app.api, PATH, "", &[], BODY).await;
    assert_code(&r, 403, "0100001");
    // The supervisor, at the same address, with a good key: served.
    assert_code(&app.query(BODY).await, 200, "0100000");
    // Its own bad signatures lock its own key there.
    for _ in 0..3 {
        let r = query_for_host(&app, &host, SCOPED_AK, "wrong").await;
        assert_code(&r, 401, "0100001");
    }
    let r = query_for_host(&app, &host, SCOPED_AK, SCOPED_SK).await;
    assert_code(&r, 403, "0100001");
    assert_code(&app.query(BODY).await, 200, "0100000");
    assert_metrics(
        &app.metrics().await,
        &[(r#"realstat_auth_failures_total{category="locked"}"#, 3.0)],
    );
    app.stop().await;
}

/// Opens a live stream on a socket of its own and reads up to its first event.
fn open_stream(api: &str) -> TcpStream {
    let query = "vdn=92&taskId=1";
    let auth = sign(AK, SK, &Request::get(api, STREAM, Some(query)));
    let mut s = TcpStream::connect(api).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {STREAM}?{query} HTTP/1.1\r\nHost: {api}\r\nAuthorization: {auth}\r\n\r\n"
    )
    .expect("request");
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("data: ") {
        let n = s.read(&mut chunk).expect("the stream's first event");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"));
    s
}

/// api.md: a stream whose client closed ends within 15 s. Nothing is written to it after the
/// close (no change, the heartbeat 15 s away), so only the close itself can end it.
#[actix_web::test]
async fn a_stream_closed_by_its_client_gives_its_place_back_within_15_s() {
    let app = spawn_app().await;
    let api = app.api.clone();
    let stream = tokio::task::spawn_blocking(move || open_stream(&api))
        .await
        .expect("join");
    app.wait_metric("realstat_streams_open", |n| n == 1.0).await;
    // An orderly close (FIN, not a reset): nothing left unread first.
    tokio::task::spawn_blocking(move || {
        let mut stream = stream;
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut rest = [0u8; 4096];
        loop {
            match stream.read(&mut rest) {
                Ok(n) if n > 0 => continue,
                Err(e) if e.kind() != ErrorKind::WouldBlock && e.kind() != ErrorKind::TimedOut => {
                    panic!("{e}")
                }
                _ => break,
            }
        }
    })
    .await
    .expect("join");
    let closed = Instant::now();
    let deadline = closed + Duration::from_secs(15);
    loop {
        let m = app.metrics().await;
        if metric(&m, "realstat_streams_open") == Some(0.0) {
            assert_eq!(
                metric(&m, r#"realstat_streams_ended_total{reason="client"}"#),
                Some(1.0),
                "{m}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream still holds its place"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("place given back {:?} after the close", closed.elapsed());
    app.stop().await;
}

#[actix_web::test]
async fn a_keys_file_deleted_or_replaced_by_a_directory_is_a_rejected_reload() {
    const REJECTED: &str = r#"realstat_keys_reloads_total{result="rejected"}"#;
    let app = spawn_app().await;
    let keys = app.dir.path().join("keys.toml");
    std::fs::remove_file(&keys).expect("deleted");
    app.wait_metric(REJECTED, |n| n == 1.0).await;
    std::fs::create_dir(&keys).expect("a directory in its place");
    // Still unreadable: the same state, not counted again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(metric(&app.metrics().await, REJECTED), Some(1.0));
    // Back, then replaced by a directory: counted again.
    std::fs::remove_dir(&keys).expect("directory removed");
    app.write_keys(KEYS_TOML);
    app.wait_metric(r#"realstat_keys_reloads_total{result="ok"}"#, |n| n == 1.0)
        .await;
    std::fs::remove_file(&keys).expect("deleted");
    std::fs::create_dir(&keys).expect("a directory in its place");
    app.wait_metric(REJECTED, |n| n == 2.0).await;
    // The keys in force stay.
    assert_code(&app.query(BODY).await, 200, "0100000");
    app.stop().await;
}
