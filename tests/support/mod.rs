//! Shared by the integration test crates: spawn the real application on loopback port 0 against
//! a Kafka (the embedded mock cluster or a real broker), sign requests, wait for readiness.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::PathBuf;
use std::time::{Duration, Instant};

use realstat::auth::c2;
use realstat::config::Settings;
pub mod http;

use http::Response;
use realstat::dev::embedded::EmbeddedKafka;
use realstat::shutdown::Shutdown;
use realstat::startup::Application;

pub mod sse;

pub const PATH: &str = realstat::api::PATH;
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

pub struct TestApp {
    pub api: String,
    pub admin: String,
    pub shutdown: Shutdown,
    pub store: std::sync::Arc<realstat::fold::Store>,
    pub run: tokio::task::JoinHandle<()>,
    pub dir: tempfile::TempDir,
}

/// A topic with events in the embedded mock cluster.
pub struct MockKafka {
    pub kafka: EmbeddedKafka,
    pub topic: String,
}

impl MockKafka {
    pub fn start(topic: &str, partitions: i32) -> MockKafka {
        let kafka = EmbeddedKafka::start().expect("mock cluster starts");
        kafka
            .create_topic(topic, partitions)
            .expect("topic created");
        MockKafka {
            kafka,
            topic: topic.to_owned(),
        }
    }

    pub fn brokers(&self) -> String {
        self.kafka.bootstrap_servers().to_owned()
    }

    pub fn produce(&self, messages: &[(Option<&str>, &[u8])]) {
        produce(&self.brokers(), &self.topic, messages);
    }
}

pub fn produce(brokers: &str, topic: &str, messages: &[(Option<&str>, &[u8])]) {
    let msgs: Vec<(Option<&str>, Option<i32>, &[u8])> =
        messages.iter().map(|(k, v)| (*k, None, *v)).collect();
    realstat::dev::simulate::produce_raw(brokers, topic, &[], &msgs).expect("produced");
}

/// Settings for a test instance: loopback, port 0, keys file in a temp dir.
pub fn test_settings(brokers: &str, topic: &str, dir: &tempfile::TempDir) -> Settings {
    let keys: PathBuf = dir.path().join("keys.toml");
    std::fs::write(&keys, KEYS_TOML).expect("keys file written");
    let mut s = Settings {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        workers: Some(2),
        ..Settings::default()
    };
    s.kafka.brokers = Some(brokers.to_owned());
    s.kafka.topic = topic.to_owned();
    s.kafka.metadata_refresh = Duration::from_secs(1);
    s.auth.keys_file = Some(keys);
    s.auth.keys_poll = Duration::from_millis(100);
    // Tests send many bad signatures from one address on purpose; the lockout test opts in.
    s.auth.lockout_threshold = 0;
    s.snapshot.dir = dir.path().join("data");
    s
}

pub async fn spawn_app(settings: Settings, dir: tempfile::TempDir) -> TestApp {
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let api = format!("127.0.0.1:{}", app.api_port());
    let admin = format!("127.0.0.1:{}", app.admin_port());
    let shutdown = app.shutdown_handle();
    let store = app.store();
    let run = tokio::spawn(async move {
        app.run_until_stopped().await.expect("clean stop");
    });
    TestApp {
        api,
        admin,
        shutdown,
        store,
        run,
        dir,
    }
}

impl TestApp {
    pub async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.run.await;
    }

    /// Polls /health/ready until 200 (panics after `timeout`).
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let r = get(&self.admin, "/health/ready").await;
            if r.status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "not ready after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A correctly signed realstatistic request by the all-VDN key.
    pub async fn query(&self, body: &str) -> Response {
        signed_post(&self.api, AK, SK, body).await
    }

    pub async fn metrics(&self) -> String {
        get(&self.admin, "/metrics").await.text()
    }
}

pub async fn get(addr: &str, path: &str) -> Response {
    let addr = addr.to_owned();
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        http::request(&addr, "GET", &path, &[], b"", Duration::from_secs(10))
    })
    .await
    .expect("join")
    .expect("GET answered")
}

pub fn now_timestamp() -> String {
    c2::format_timestamp(realstat::clock::now_ms() / 1000)
}

/// The Authorization value for a POST to PATH with the headers real clients sign.
pub fn authorization(
    ak: &str,
    sk: &str,
    host: &str,
    body: impl AsRef<[u8]>,
    timestamp: &str,
) -> String {
    let body = body.as_ref();
    let len = body.len().to_string();
    c2::sign(
        ak,
        sk.as_bytes(),
        timestamp,
        &c2::ClientRequest {
            method: "POST",
            path: PATH,
            raw_query: None,
            headers: &[
                ("content-length", len.as_bytes()),
                ("content-type", b"application/json;charset=UTF-8"),
                ("host", host.as_bytes()),
            ],
            body,
        },
    )
}

pub async fn signed_post(addr: &str, ak: &str, sk: &str, body: &str) -> Response {
    let auth = authorization(ak, sk, addr, body, &now_timestamp());
    post(
        addr,
        &[
            ("Host", addr),
            ("Content-Type", "application/json;charset=UTF-8"),
            ("Authorization", &auth),
        ],
        body,
    )
    .await
}

pub async fn post(addr: &str, headers: &[(&str, &str)], body: &str) -> Response {
    request_to(addr, "POST", PATH, headers, body).await
}

pub async fn raw(addr: &str, request: Vec<u8>) -> Response {
    let addr = addr.to_owned();
    tokio::task::spawn_blocking(move || http::send_raw(&addr, &request, Duration::from_secs(10)))
        .await
        .expect("join")
        .expect("raw request answered")
}

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

/// The value of one un-labelled or labelled sample in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub fn now_ms() -> i64 {
    realstat::clock::now_ms()
}

/// The Authorization value for `method` on `path_and_query` (the query, if any, is signed as
/// api.md says), over the same headers as [`authorization`].
pub fn authorization_for(
    method: &str,
    path_and_query: &str,
    ak: &str,
    sk: &str,
    host: &str,
    body: &[u8],
) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let len = body.len().to_string();
    let mut headers: Vec<(&str, &[u8])> = vec![("host", host.as_bytes())];
    if method == "POST" {
        headers.push(("content-length", len.as_bytes()));
        headers.push(("content-type", b"application/json;charset=UTF-8"));
    }
    c2::sign(
        ak,
        sk.as_bytes(),
        &now_timestamp(),
        &c2::ClientRequest {
            method,
            path,
            raw_query: query,
            headers: &headers,
            body,
        },
    )
}

/// A signed POST of a JSON body to another route of the API listener.
pub async fn signed_post_to(addr: &str, path: &str, ak: &str, sk: &str, body: &str) -> Response {
    let auth = authorization_for("POST", path, ak, sk, addr, body.as_bytes());
    request_to(
        addr,
        "POST",
        path,
        &[
            ("Host", addr),
            ("Content-Type", "application/json;charset=UTF-8"),
            ("Authorization", &auth),
        ],
        body,
    )
    .await
}

/// Any request to any path of a listener.
pub async fn request_to(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let (addr, method, path) = (addr.to_owned(), method.to_owned(), path.to_owned());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let body = body.as_bytes().to_vec();
    tokio::task::spawn_blocking(move || {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        http::request(&addr, &method, &path, &h, &body, Duration::from_secs(10))
    })
    .await
    .expect("join")
    .expect("request answered")
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
