//! Hostile requests over real sockets: each gets its exact status and resultCode, and the
//! service keeps serving afterwards.

use std::time::Duration;

use crate::support::*;

async fn ready_app() -> (TestApp, MockKafka) {
    let kafka = MockKafka::start("events", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(test_settings(&kafka.brokers(), "events", &dir), dir).await;
    app.wait_ready(Duration::from_secs(20)).await;
    (app, kafka)
}

/// A correctly signed POST whose body is arbitrary bytes.
fn signed_raw(host: &str, body: &[u8], extra_headers: &str) -> Vec<u8> {
    let len = body.len();
    let auth = authorization(AK, SK, host, body, &now_timestamp());
    let mut req = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json;charset=UTF-8\r\nAuthorization: {auth}\r\nContent-Length: {len}\r\n{extra_headers}Connection: close\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn code(r: &crate::support::http::Response) -> String {
    result(r).0
}

#[actix_web::test]
async fn hostile_bodies_get_0100002() {
    let (app, _kafka) = ready_app().await;
    // Not UTF-8.
    let r = raw(
        &app.api,
        signed_raw(&app.api, b"{\"vdn\":92,\"taskId\":\"\xff\xfe\"}", ""),
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (200, "0100002"));
    // Deeply nested JSON, within 4 KiB: in a known field it is a wrong type; in an unknown field
    // it is skipped like any unknown field. Neither crashes anything.
    let deep = |field: &str| {
        format!(
            r#"{{"vdn":92,"taskId":"1","{field}":{}{}}}"#,
            "[".repeat(1900),
            "]".repeat(1900)
        )
    };
    let body = deep("taskId").replacen(r#""taskId":"1","#, "", 1);
    let r = raw(&app.api, signed_raw(&app.api, body.as_bytes(), "")).await;
    assert_eq!((r.status, code(&r).as_str()), (200, "0100002"));
    let r = raw(&app.api, signed_raw(&app.api, deep("x").as_bytes(), "")).await;
    assert_eq!((r.status, code(&r).as_str()), (200, "0100000"));
    // NUL bytes and control characters.
    let r = raw(
        &app.api,
        signed_raw(&app.api, b"{\"vdn\":92,\"taskId\":\"1\0\"}", ""),
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (200, "0100002"));
    // Still serving.
    assert_eq!(
        code(&app.query(r#"{"vdn":92,"taskId":"1"}"#).await),
        "0100000"
    );
    app.stop().await;
}

#[actix_web::test]
async fn header_tricks_are_401() {
    let (app, _kafka) = ready_app().await;
    let body = br#"{"vdn":92,"taskId":"1"}"#;
    // A second Host header next to the signed one: ambiguous, refused.
    let r = raw(
        &app.api,
        signed_raw(&app.api, body, "Host: evil.example\r\n"),
    )
    .await;
    assert!(
        (r.status == 401 && code(&r) == "0100001") || r.status == 400,
        "{} {}",
        r.status,
        r.text()
    );
    // Signed header list with an injected name: malformed.
    let ts = now_timestamp();
    let good = authorization(
        AK,
        SK,
        &app.api,
        std::str::from_utf8(body).unwrap_or(""),
        &ts,
    );
    let injected = good.replace(
        "content-length;content-type;host",
        "content-length;content-type;host;x:1",
    );
    let r = post(
        &app.api,
        &[
            ("Host", &app.api),
            ("Content-Type", "application/json;charset=UTF-8"),
            ("Authorization", &injected),
        ],
        std::str::from_utf8(body).unwrap_or(""),
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (401, "0100001"));
    // A signed header that the request does not carry.
    let extra = good.replace(
        "content-length;content-type;host",
        "content-length;content-type;host;x-custom",
    );
    let r = post(
        &app.api,
        &[
            ("Host", &app.api),
            ("Content-Type", "application/json;charset=UTF-8"),
            ("Authorization", &extra),
        ],
        std::str::from_utf8(body).unwrap_or(""),
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (401, "0100001"));
    // Non-UTF-8 bytes in the Authorization header.
    let mut req = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nAuthorization: auth-v2/",
        app.api,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(b"\xc3\xff\r\n\r\n");
    req.extend_from_slice(body);
    let r = raw(&app.api, req).await;
    assert_eq!((r.status, code(&r).as_str()), (401, "0100001"));
    app.stop().await;
}

#[actix_web::test]
async fn huge_and_malformed_headers_are_refused_and_the_service_goes_on() {
    let (app, _kafka) = ready_app().await;
    // Over the configured limit (16 KiB): 431 with the vendor's error shape.
    let big = format!("X-Pad: {}\r\n", "a".repeat(20_000));
    let r = raw(
        &app.api,
        signed_raw(&app.api, br#"{"vdn":92,"taskId":"1"}"#, &big),
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (431, "0100002"));
    // Over the HTTP parser's own hard limit (128 KiB): the connection is refused outright.
    let huge = format!("X-Pad: {}\r\n", "a".repeat(200_000));
    let r = tokio::task::spawn_blocking({
        let api = app.api.clone();
        let req = signed_raw(&api, br#"{"vdn":92,"taskId":"1"}"#, &huge);
        move || crate::support::http::send_raw(&api, &req, Duration::from_secs(5))
    })
    .await
    .expect("join");
    assert!(r.map(|r| r.status).unwrap_or(431) >= 400);
    let garbage =
        b"POST /rest/cmsapp/v1/openapi/fromisales/realstatistic HTTP/1.1\r\nHost\r\n\r\n".to_vec();
    let r = raw(&app.api, garbage).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        code(&app.query(r#"{"vdn":92,"taskId":"1"}"#).await),
        "0100000"
    );
    app.stop().await;
}

#[actix_web::test]
async fn slow_clients_are_cut_off() {
    use std::io::{Read, Write};
    let kafka = MockKafka::start("events", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&kafka.brokers(), "events", &dir);
    settings.limits.body_timeout = Duration::from_millis(800);
    settings.limits.request_head_timeout = Duration::from_millis(800);
    let app = spawn_app(settings, dir).await;
    app.wait_ready(Duration::from_secs(20)).await;

    let api = app.api.clone();
    let (slow_body, slow_head) = tokio::task::spawn_blocking(move || {
        let body = br#"{"vdn":92,"taskId":"1"}"#;
        let full = signed_raw(&api, body, "");
        // The head and half the body, then nothing.
        let cut = full.len() - body.len() / 2;
        let mut s = std::net::TcpStream::connect(&api).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(&full[..cut]).expect("write");
        let mut slow_body = Vec::new();
        let _ = s.read_to_end(&mut slow_body);
        // Half a request line, then nothing.
        let mut s = std::net::TcpStream::connect(&api).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(b"POST /rest/cmsapp/v1/open").expect("write");
        let mut slow_head = Vec::new();
        let _ = s.read_to_end(&mut slow_head);
        (
            String::from_utf8_lossy(&slow_body).into_owned(),
            String::from_utf8_lossy(&slow_head).into_owned(),
        )
    })
    .await
    .expect("join");
    assert!(slow_body.starts_with("HTTP/1.1 408"), "{slow_body}");
    assert!(slow_body.contains("0100002"), "{slow_body}");
    assert!(
        slow_head.is_empty() || slow_head.starts_with("HTTP/1.1 408"),
        "{slow_head}"
    );
    assert_eq!(
        code(&app.query(r#"{"vdn":92,"taskId":"1"}"#).await),
        "0100000"
    );
    app.stop().await;
}
