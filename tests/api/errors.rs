//! Every row of the error table in api.md, over a real socket, with exact status and resultCode.

use std::time::Duration;

use realstat::auth::client::Request;

use crate::support::*;

#[actix_web::test]
async fn invalid_parameters_are_0100002() {
    let app = spawn_app().await;
    for body in [
        "",
        "not json",
        "[89, 92, \"1\"]",
        "{\"vdn\":92,",
        r#"{"taskId":"1"}"#,
        r#"{"vdn":null,"taskId":"1"}"#,
        r#"{"vdn":92}"#,
        r#"{"vdn":0,"taskId":"1"}"#,
        r#"{"vdn":5001,"taskId":"1"}"#,
        r#"{"vdn":92.5,"taskId":"1"}"#,
        r#"{"vdn":"-92","taskId":"1"}"#,
        r#"{"vdn":" 92","taskId":"1"}"#,
        r#"{"vdn":92,"taskId":""}"#,
        r#"{"vdn":92,"taskId":"1234567890123456789012345678901"}"#,
        r#"{"vdn":92,"taskId":1.0}"#,
        r#"{"ccId":0,"vdn":92,"taskId":"1"}"#,
        r#"{"ccId":65536,"vdn":92,"taskId":"1"}"#,
        r#"{"ccId":"+1","vdn":92,"taskId":"1"}"#,
        r#"{"vdn":92,"vdn":93,"taskId":"1"}"#,
    ] {
        let r = app.query(body).await;
        let desc = assert_code(&r, 200, "0100002");
        assert!(!desc.is_empty(), "a reason for {body}");
    }
    app.stop().await;
}

/// Signed over `host` only, so the Content-Type is free to be anything.
async fn post_signed_over_host_only(app: &TestApp, content_type: &str, body: &str) -> Response {
    let request = Request::post_json(&app.api, PATH, body.as_bytes()).host_only();
    let auth = sign(AK, SK, &request);
    post_with(
        &app.api,
        PATH,
        &auth,
        &[("Content-Type", content_type)],
        body,
    )
    .await
}

#[actix_web::test]
async fn wrong_content_type_is_0100002() {
    let app = spawn_app().await;
    let body = r#"{"vdn":92,"taskId":"1"}"#;
    for ct in [
        "text/plain",
        "application/json; charset=GBK",
        "application/xml",
    ] {
        let r = post_signed_over_host_only(&app, ct, body).await;
        let desc = assert_code(&r, 200, "0100002");
        assert!(desc.contains("Content-Type"), "{desc}");
    }
    // Tolerated forms.
    for ct in ["application/json", "APPLICATION/JSON ; CHARSET=utf-8"] {
        let r = post_signed_over_host_only(&app, ct, body).await;
        assert_code(&r, 200, "0100000");
    }
    app.stop().await;
}

#[actix_web::test]
async fn body_over_4_kib_is_413_0100002() {
    let app = spawn_app().await;
    let body = format!(r#"{{"vdn":92,"taskId":"1","pad":"{}"}}"#, "x".repeat(4100));
    let r = app.query(&body).await;
    assert_code(&r, 413, "0100002");
    // Exactly 4 KiB is fine.
    let head = r#"{"vdn":92,"taskId":"1","pad":""}"#;
    let body = format!(
        r#"{{"vdn":92,"taskId":"1","pad":"{}"}}"#,
        "x".repeat(4096 - head.len())
    );
    assert_eq!(body.len(), 4096);
    assert_code(&app.query(&body).await, 200, "0100000");
    // Chunked, without a Content-Length: the limit holds while reading.
    let chunk = "y".repeat(5000);
    let auth = authorization(AK, SK, &app.api, &chunk, &now_timestamp());
    let req = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        host = app.api,
        len = chunk.len()
    );
    assert_code(&raw(&app.api, req.into_bytes()).await, 413, "0100002");
    app.stop().await;
}

#[actix_web::test]
async fn authentication_failures_are_401_0100001() {
    let app = spawn_app().await;
    let body = r#"{"vdn":92,"taskId":"1"}"#;
    let ts = now_timestamp();
    let good = authorization(AK, SK, &app.api, body, &ts);
    let with = |auth: String| {
        let api = app.api.clone();
        async move { post_with(&api, PATH, &auth, &[], body).await }
    };

    // Missing.
    let r = request_to(
        &app.api,
        "POST",
        PATH,
        &[("Content-Type", "application/json")],
        body,
    )
    .await;
    let missing = assert_code(&r, 401, "0100001");
    assert!(missing.contains("missing"), "{missing}");

    // Malformed.
    for bad in [
        "Bearer abc".to_owned(),
        good.replacen("auth-v2", "auth-v1", 1),
        good[..good.len() - 1].to_owned(),
        good.replace(
            "/content-length;content-type;host/",
            "/content-length;content-type/",
        ),
    ] {
        assert_code(&with(bad).await, 401, "0100001");
    }

    // Expired: signed 20 minutes ago (default skew 15 min).
    let old = realstat::auth::c2::format_timestamp(now_ms() / 1000 - 20 * 60);
    let expired = assert_code(
        &with(authorization(AK, SK, &app.api, body, &old)).await,
        401,
        "0100001",
    );
    assert!(expired.contains("skew"), "{expired}");

    // Unknown AK and wrong signature: one and the same answer.
    let unknown = assert_code(
        &with(authorization("nobody", SK, &app.api, body, &ts)).await,
        401,
        "0100001",
    );
    let mismatch = assert_code(
        &with(authorization(AK, "wrong-secret", &app.api, body, &ts)).await,
        401,
        "0100001",
    );
    assert_eq!(unknown, mismatch);
    // Tampered body: the signature covers it.
    let tampered = post_with(&app.api, PATH, &good, &[], r#"{"vdn":93,"taskId":"1"}"#).await;
    assert_code(&tampered, 401, "0100001");
    // Signed for another Host.
    let other_host = authorization(AK, SK, "10.0.0.1:8080", body, &ts);
    assert_code(&with(other_host).await, 401, "0100001");

    // Duplicate Authorization headers.
    let dup = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json;charset=UTF-8\r\nAuthorization: {good}\r\nAuthorization: {good}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        host = app.api,
        len = body.len()
    );
    assert_code(&raw(&app.api, dup.into_bytes()).await, 401, "0100001");

    // The good one passes, and nothing secret is echoed in any answer above.
    assert_code(&with(good.clone()).await, 200, "0100000");
    for text in [&missing, &expired, &unknown, &mismatch] {
        assert!(!text.contains(SK) && !text.contains(&good[good.len() - 64..]));
    }
    let m = app.metrics().await;
    assert_metrics(
        &m,
        &[
            (r#"realstat_auth_failures_total{category="missing"}"#, 1.0),
            (r#"realstat_auth_failures_total{category="expired"}"#, 1.0),
            (
                r#"realstat_auth_failures_total{category="unknown_key"}"#,
                1.0,
            ),
        ],
    );
    assert!(!m.contains(SK) && !m.contains(AK), "no keys in metrics");
    app.stop().await;
}

#[actix_web::test]
async fn a_key_scoped_to_vdn_92_cannot_read_vdn_93() {
    let app = spawn_app().await;
    let r = signed_post(&app.api, SCOPED_AK, SCOPED_SK, r#"{"vdn":92,"taskId":"1"}"#).await;
    assert_code(&r, 200, "0100000");
    let r = signed_post(&app.api, SCOPED_AK, SCOPED_SK, r#"{"vdn":93,"taskId":"1"}"#).await;
    let desc = assert_code(&r, 200, "0101003");
    assert_eq!(desc, "Insufficient permission");
    app.stop().await;
}

#[actix_web::test]
async fn methods_other_than_post_are_405_with_allow() {
    let app = spawn_app().await;
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let r = request_to(&app.api, method, PATH, &[], "").await;
        assert_code(&r, 405, "0100001");
        assert_eq!(r.header("allow"), Some("POST"), "{method}");
    }
    app.stop().await;
}

/// Locks an address out after 3 failures, for `duration`. The test client comes through "the
/// NSLB" (loopback), which names the real client in `X-Forwarded-For`.
async fn app_with_lockout(duration: Duration) -> TestApp {
    TestApp::builder()
        .settings(move |s| {
            s.auth.lockout_threshold = 3;
            s.auth.lockout_duration = duration;
            s.auth.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
        })
        .spawn()
        .await
}

/// A request signed now with `sk`, its `X-Forwarded-For` lines as they arrive (the client's own,
/// which it may forge, first).
async fn post_forwarded_for(app: &TestApp, lines: &[&str], sk: &str) -> Response {
    let body = r#"{"vdn":92,"taskId":"1"}"#;
    let auth = authorization(AK, sk, &app.api, body, &now_timestamp());
    let headers: Vec<(&str, &str)> = lines.iter().map(|l| ("X-Forwarded-For", *l)).collect();
    post_with(&app.api, PATH, &auth, &headers, body).await
}

#[actix_web::test]
async fn repeated_failures_lock_the_address_then_the_lock_expires() {
    let app = app_with_lockout(Duration::from_secs(2)).await;
    for _ in 0..3 {
        assert_code(
            &post_forwarded_for(&app, &["198.51.100.1"], "wrong").await,
            401,
            "0100001",
        );
    }
    // Locked: even a correct signature is refused, without being checked.
    let locked = post_forwarded_for(&app, &["198.51.100.1"], SK).await;
    let desc = assert_code(&locked, 403, "0100001");
    assert_eq!(desc, "IP address is locked");
    // Another client behind the same balancer is not affected.
    assert_code(
        &post_forwarded_for(&app, &["198.51.100.2"], SK).await,
        200,
        "0100000",
    );
    // The lock expires.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_code(
        &post_forwarded_for(&app, &["198.51.100.1"], SK).await,
        200,
        "0100000",
    );
    assert_metrics(
        &app.metrics().await,
        &[(r#"realstat_auth_failures_total{category="locked"}"#, 1.0)],
    );
    app.stop().await;
}

/// A balancer that adds its own `X-Forwarded-For` line below the client's: every line counts,
/// read as one list from the right, so a forged first line neither hides the client from the
/// lockout nor locks out someone else.
#[actix_web::test]
async fn a_forged_forwarded_for_line_neither_evades_nor_causes_a_lockout() {
    let app = app_with_lockout(Duration::from_secs(300)).await;

    // Evasion: a new forged address on every attempt; the balancer's line names the client.
    for i in 1..=3 {
        let forged = format!("203.0.113.{i}");
        let r = post_forwarded_for(&app, &[&forged, "198.51.100.9"], "wrong").await;
        assert_code(&r, 401, "0100001");
    }
    let r = post_forwarded_for(&app, &["203.0.113.4", "198.51.100.9"], SK).await;
    assert_code(&r, 403, "0100001");

    // Framing: another client forges the victim's address in its first line.
    for _ in 0..3 {
        let r = post_forwarded_for(&app, &["198.51.100.50", "198.51.100.10"], "wrong").await;
        assert_code(&r, 401, "0100001");
    }
    let victim = post_forwarded_for(&app, &["198.51.100.50"], SK).await;
    assert_code(&victim, 200, "0100000");
    let attacker = post_forwarded_for(&app, &["198.51.100.10"], SK).await;
    assert_code(&attacker, 403, "0100001");
    app.stop().await;
}
