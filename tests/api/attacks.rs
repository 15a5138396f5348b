//! Hostile requests over real sockets: each gets its exact status and resultCode, and the
//! service keeps serving afterwards.

use std::time::Duration;

use crate::support::*;

fn code(r: &Response) -> String {
    result(r).0
}

/// After the hostile traffic, a good request is still answered.
async fn still_serving_then_stop(app: TestApp) {
    let r = app.query(r#"{"vdn":92,"taskId":"1"}"#).await;
    assert_eq!((r.status, code(&r).as_str()), (200, "0100000"));
    app.stop().await;
}

#[actix_web::test]
async fn hostile_bodies_get_0100002() {
    let app = spawn_app().await;
    // Not UTF-8.
    let r = app.query(b"{\"vdn\":92,\"taskId\":\"\xff\xfe\"}").await;
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
    let r = app.query(&body).await;
    assert_eq!((r.status, code(&r).as_str()), (200, "0100002"));
    let r = app.query(deep("x")).await;
    assert_eq!((r.status, code(&r).as_str()), (200, "0100000"));
    // NUL bytes and control characters.
    let r = app.query(b"{\"vdn\":92,\"taskId\":\"1\0\"}").await;
    assert_eq!((r.status, code(&r).as_str()), (200, "0100002"));
    still_serving_then_stop(app).await;
}

#[actix_web::test]
async fn header_tricks_are_401() {
    let app = spawn_app().await;
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
    // Signed header list with an injected name, or naming a header the request does not carry:
    // malformed.
    let good = authorization(AK, SK, &app.api, body, &now_timestamp());
    for signed in [
        "content-length;content-type;host;x:1",
        "content-length;content-type;host;x-custom",
    ] {
        let forged = good.replace("content-length;content-type;host", signed);
        let r = post_with(&app.api, PATH, &forged, &[], body).await;
        assert_eq!((r.status, code(&r).as_str()), (401, "0100001"), "{signed}");
    }
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
    let app = spawn_app().await;
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
    let req = signed_raw(&app.api, br#"{"vdn":92,"taskId":"1"}"#, &huge);
    let r = try_raw(&app.api, req).await;
    assert!(r.map(|r| r.status).unwrap_or(431) >= 400);
    let garbage =
        b"POST /rest/cmsapp/v1/openapi/fromisales/realstatistic HTTP/1.1\r\nHost\r\n\r\n".to_vec();
    let r = raw(&app.api, garbage).await;
    assert_eq!(r.status, 400);
    still_serving_then_stop(app).await;
}

#[actix_web::test]
async fn slow_clients_are_cut_off() {
    use std::io::{Read, Write};
    let app = TestApp::builder()
        .settings(|s| {
            s.limits.body_timeout = Duration::from_millis(800);
            s.limits.request_head_timeout = Duration::from_millis(800);
        })
        .spawn()
        .await;

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
    still_serving_then_stop(app).await;
}
