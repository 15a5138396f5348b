//! Shared by the integration test crates: the application booted on loopback port 0 against
//! librdkafka's mock cluster ([`spawn_app`]), requests signed by the one client signer
//! (`realstat::auth::client`) and sent with a real HTTP client (ureq), Prometheus and answer
//! helpers. Requests a real client cannot send go through the raw client, [`http`].
#![allow(dead_code)] // each test crate uses its own subset

use std::time::Duration;

use realstat::auth::client::{self, Request};

mod app;
pub mod http;
pub mod sse;

#[allow(unused_imports)] // each test crate uses its own subset
pub use app::{spawn_app, AppBuilder, MockKafka, TestApp, DLQ_TOPIC, TOPIC};
pub use http::Response;

pub const PATH: &str = realstat::api::PATH;
pub const JSON: &str = client::JSON_CONTENT_TYPE;
/// Reads every VDN.
pub const AK: &str = "globalaktest";
pub const SK: &str = "testSecretKey123";
/// Reads VDN 92 only.
pub const SCOPED_AK: &str = "vdn92only";
pub const SCOPED_SK: &str = "scopedSecret-92";

pub const KEYS_TOML: &str = r#"
[[key]]
ak = "globalaktest"
sk = "testSecretKey123"
vdns = "*"

[[key]]
ak = "vdn92only"
sk = "scopedSecret-92"
vdns = [92]
"#;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

pub fn produce(brokers: &str, topic: &str, messages: &[(Option<&str>, &[u8])]) {
    let msgs: Vec<(Option<&str>, Option<i32>, &[u8])> =
        messages.iter().map(|(k, v)| (*k, None, *v)).collect();
    realstat::dev::simulate::produce_raw(brokers, topic, &[], &msgs).expect("produced");
}

/// A port free at the moment, for a process that cannot be told to bind port 0.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed and reaped when dropped, so that none outlives a failed test.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn now_ms() -> i64 {
    realstat::clock::now_ms()
}

pub fn now_timestamp() -> String {
    client::timestamp_now()
}

// ---- signing: the one client signer ------------------------------------------------------------

/// The Authorization value of a JSON POST of `body` to [`PATH`] on `host`, signed at `timestamp`.
pub fn authorization(
    ak: &str,
    sk: &str,
    host: &str,
    body: impl AsRef<[u8]>,
    timestamp: &str,
) -> String {
    let request = Request::post_json(host, PATH, body.as_ref());
    client::authorization(ak, sk.as_bytes(), timestamp, &request)
}

/// The Authorization value of `request`, signed now.
pub fn sign(ak: &str, sk: &str, request: &Request<'_>) -> String {
    client::authorization(ak, sk.as_bytes(), &now_timestamp(), request)
}

// ---- requests through a real client --------------------------------------------------------------

/// One request through ureq, blocking: any method, exactly these headers besides what the client
/// adds itself (`Host` from the address unless given, `Content-Length` (also `0` for an empty
/// POST, PUT or PATCH), `User-Agent`, `Accept`).
/// An HTTP error status is an answer; only a failed exchange is an error. No connection is
/// pooled: every request has a connection of its own, as a test wants.
pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    // ureq leaves an empty body without a length; a POST signed over `content-length` needs it.
    let has_length = names(headers, "content-length");
    if body.is_empty() && !has_length && ["POST", "PUT", "PATCH"].contains(&method) {
        request = request.header("Content-Length", "0");
    }
    let request = request
        .body(body.to_vec())
        .map_err(|e| format!("request: {e}"))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_idle_connections(0)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let mut response = agent
        .run(request)
        .map_err(|e| format!("{method} {addr}{path}: {e}"))?;
    let headers = sse::header_list(response.headers());
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| format!("{method} {addr}{path}: body: {e}"))?;
    Ok(Response {
        status: response.status().as_u16(),
        headers,
        body,
    })
}

/// Whether `headers` name `name` (case-insensitive).
fn names(headers: &[(&str, &str)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// [`try_request`] off the async runtime; a failed exchange fails the test.
pub async fn request_to(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl AsRef<[u8]>,
) -> Response {
    let (addr, method, path) = (addr.to_owned(), method.to_owned(), path.to_owned());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let body = body.as_ref().to_vec();
    tokio::task::spawn_blocking(move || {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        try_request(&addr, &method, &path, &h, &body)
    })
    .await
    .expect("join")
    .unwrap_or_else(|e| panic!("no answer: {e}"))
}

pub async fn get(addr: &str, path: &str) -> Response {
    request_to(addr, "GET", path, &[], "").await
}

/// Whether the admin listener at `admin` answers `/health/ready` with 200 (any error: no).
pub fn is_ready(admin: &str) -> bool {
    try_request(admin, "GET", "/health/ready", &[], b"").is_ok_and(|r| r.status == 200)
}

/// A POST of `body` to `path` carrying this Authorization value (whatever it signs) and `extra`
/// headers; its Content-Type is [`JSON`] unless `extra` names one.
pub async fn post_with(
    addr: &str,
    path: &str,
    authorization: &str,
    extra: &[(&str, &str)],
    body: impl AsRef<[u8]>,
) -> Response {
    let mut headers = vec![("Authorization", authorization)];
    if !names(extra, "content-type") {
        headers.push(("Content-Type", JSON));
    }
    headers.extend_from_slice(extra);
    request_to(addr, "POST", path, &headers, body).await
}

/// `request` sent to `addr` with the headers its signature covers, signed now by `ak`/`sk`.
pub async fn send_signed(addr: &str, ak: &str, sk: &str, request: &Request<'_>) -> Response {
    let auth = sign(ak, sk, request);
    let mut headers = vec![("Host", request.host), ("Authorization", auth.as_str())];
    headers.extend(request.content_type().map(|c| ("Content-Type", c)));
    let path = match request.query {
        Some(q) => format!("{}?{q}", request.path),
        None => request.path.to_owned(),
    };
    request_to(addr, request.method, &path, &headers, request.body).await
}

/// A signed JSON POST of `body` to the realstatistic path.
pub async fn signed_post(addr: &str, ak: &str, sk: &str, body: &str) -> Response {
    signed_post_to(addr, PATH, ak, sk, body).await
}

/// A signed JSON POST of `body` to another route of the API listener.
pub async fn signed_post_to(addr: &str, path: &str, ak: &str, sk: &str, body: &str) -> Response {
    send_signed(
        addr,
        ak,
        sk,
        &Request::post_json(addr, path, body.as_bytes()),
    )
    .await
}

/// Raw bytes to `addr` through [`http::send_raw`], off the async runtime.
pub async fn raw(addr: &str, request: Vec<u8>) -> Response {
    try_raw(addr, request)
        .await
        .unwrap_or_else(|e| panic!("raw request not answered: {e}"))
}

pub async fn try_raw(addr: &str, request: Vec<u8>) -> Result<Response, http::ClientError> {
    let addr = addr.to_owned();
    tokio::task::spawn_blocking(move || http::send_raw(&addr, &request, TIMEOUT))
        .await
        .expect("join")
}

/// The bytes of a signed JSON POST of `body` (any bytes) to [`PATH`], `extra_headers` (whole
/// lines, `\r\n` included) after the signed ones, `Connection: close` last: for what a real
/// client will not send.
pub fn signed_raw(host: &str, body: &[u8], extra_headers: &str) -> Vec<u8> {
    signed_raw_keep_alive(host, body, &format!("{extra_headers}Connection: close\r\n"))
}

/// [`signed_raw`] without `Connection: close`: a request to send again and again on one
/// connection.
pub fn signed_raw_keep_alive(host: &str, body: &[u8], extra_headers: &str) -> Vec<u8> {
    let auth = sign(AK, SK, &Request::post_json(host, PATH, body));
    let mut req = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {JSON}\r\nAuthorization: {auth}\r\n\
         Content-Length: {len}\r\n{extra_headers}\r\n",
        len = body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// The checks a signed POST route shares with the single query: `other_method` is 405 naming
/// POST; unsigned, 401; a signature of the same body for the single query's path, 401; the key
/// scoped to VDN 92 gets 0101003 for VDN 93 and 0100000 for VDN 92 (`body` of a VDN).
pub async fn assert_post_route_checks(
    app: &TestApp,
    other_method: &str,
    path: &str,
    body: impl Fn(u16) -> String,
) {
    let r = request_to(&app.api, other_method, path, &[], "").await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")), "{path}");
    let ours = body(92);
    let unsigned = request_to(
        &app.api,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        &ours,
    )
    .await;
    assert_eq!(unsigned.status, 401, "{path}: {}", unsigned.text());
    // A signature for the single-query path does not open another path.
    let auth = authorization(AK, SK, &app.api, &ours, &now_timestamp());
    let replayed = post_with(&app.api, path, &auth, &[], &ours).await;
    assert_eq!(replayed.status, 401, "{path}: {}", replayed.text());
    for (vdn, code) in [(93, "0101003"), (92, "0100000")] {
        let r = signed_post_to(&app.api, path, SCOPED_AK, SCOPED_SK, &body(vdn)).await;
        assert_eq!(result(&r).0, code, "{path}, VDN {vdn}: {}", r.text());
    }
}

/// Each `(body, reason)`: a signed POST of `body` to `path` is refused as a bad parameter
/// (200 / 0100002) with a resultDesc naming `reason`.
pub async fn assert_parameter_errors(app: &TestApp, path: &str, cases: &[(&str, &str)]) {
    for (body, reason) in cases {
        let r = signed_post_to(&app.api, path, AK, SK, body).await;
        let desc = assert_code(&r, 200, "0100002");
        assert!(desc.contains(reason), "{path} {body}: {desc}");
    }
}

// ---- answers -----------------------------------------------------------------------------------------

/// `(resultCode, resultDesc)` of a response body.
pub fn result(r: &Response) -> (String, serde_json::Value) {
    let v = r
        .json()
        .unwrap_or_else(|e| panic!("JSON body expected ({e}): {}", r.text()));
    (
        v["resultCode"].as_str().unwrap_or("<none>").to_owned(),
        v["resultDesc"].clone(),
    )
}

/// Asserts the HTTP status and the resultCode; returns the resultDesc text ("" if not text).
pub fn assert_code(r: &Response, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "body: {}", r.text());
    let (got, desc) = result(r);
    assert_eq!(got, code, "body: {}", r.text());
    desc.as_str().map(str::to_owned).unwrap_or_default()
}

/// The value of one un-labelled or labelled sample in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Asserts each `(series, value)` sample of Prometheus text.
pub fn assert_metrics(text: &str, expected: &[(&str, f64)]) {
    for (series, value) in expected {
        assert_eq!(metric(text, series), Some(*value), "{series} in:\n{text}");
    }
}

/// Task `task_id` of VDN 92 in the default call center (1).
pub fn task(task_id: u128) -> realstat::events::ids::TaskKey {
    realstat::events::ids::TaskKey {
        cc_id: 1,
        vdn: 92,
        task_id,
    }
}

/// A self-signed certificate for `host`, written as PEM files into `dir`, and the API's TLS
/// settings naming them.
pub fn self_signed_tls(
    dir: &std::path::Path,
    host: &str,
) -> (rcgen::CertifiedKey, realstat::config::TlsSettings) {
    let generated = rcgen::generate_simple_self_signed(vec![host.to_owned()]).expect("certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).expect("cert");
    std::fs::write(&key, generated.key_pair.serialize_pem()).expect("key");
    (generated, realstat::config::TlsSettings { cert, key })
}
