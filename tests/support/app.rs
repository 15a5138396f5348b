//! The one test boot: the real application on loopback port 0 (API and admin listeners, real
//! sockets), consuming topic `events` of a mock cluster of its own, with the test keys.
//!
//! `spawn_app().await` is the usual instance, ready to answer. Anything else is said through
//! [`TestApp::builder`]: more partitions, events on the topic before the start, a dead-letter
//! topic, HTTPS, any setting (a closure over [`Settings`]), or not waiting for readiness.

use std::sync::Arc;
use std::time::{Duration, Instant};

use realstat::config::Settings;
use realstat::dev::embedded::EmbeddedKafka;
use realstat::fold::Store;
use realstat::shutdown::Shutdown;
use realstat::startup::Application;

use realstat::auth::client::Request;

use super::{get, metric, produce, self_signed_tls, send_signed, AK, KEYS_TOML, SK};

/// The topic the application consumes.
pub const TOPIC: &str = "events";
/// The dead-letter topic [`AppBuilder::dead_letters`] creates and configures.
pub const DLQ_TOPIC: &str = "events.dlq";
/// How long an application may take to become ready, and a metric to reach its value.
const PATIENCE: Duration = Duration::from_secs(20);

/// A topic in the embedded mock cluster.
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

    /// Message values without keys.
    pub fn produce_values<V: AsRef<[u8]>>(&self, values: &[V]) {
        let msgs: Vec<(Option<&str>, &[u8])> = values.iter().map(|v| (None, v.as_ref())).collect();
        self.produce(&msgs);
    }
}

pub struct TestApp {
    pub api: String,
    pub admin: String,
    pub kafka: MockKafka,
    /// With [`AppBuilder::tls`]: the server's self-signed certificate (written to [`cert_path`]).
    ///
    /// [`cert_path`]: TestApp::cert_path
    pub certificate: Option<rcgen::CertifiedKey>,
    /// With [`AppBuilder::callback`]: the callback listener's address.
    pub callback: Option<String>,
    pub shutdown: Shutdown,
    pub store: Arc<Store>,
    pub run: tokio::task::JoinHandle<()>,
    /// Holds the keys file (`keys.toml`), the snapshots (`data/`) and the TLS files.
    pub dir: tempfile::TempDir,
}

/// The usual instance, ready.
pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

type Tune = Box<dyn FnOnce(&mut Settings)>;

/// How to boot a [`TestApp`]; see the module documentation.
pub struct AppBuilder {
    partitions: i32,
    events: Vec<(Option<String>, Vec<u8>)>,
    dead_letters: bool,
    tls_host: Option<String>,
    tune: Vec<Tune>,
    ready: bool,
    callback_tokens: Option<String>,
}

impl TestApp {
    pub fn builder() -> AppBuilder {
        AppBuilder {
            partitions: 1,
            events: Vec::new(),
            dead_letters: false,
            tls_host: None,
            tune: Vec::new(),
            ready: true,
            callback_tokens: None,
        }
    }
}

impl AppBuilder {
    /// Partitions of the topic (1 unless said).
    pub fn partitions(mut self, n: i32) -> Self {
        self.partitions = n;
        self
    }

    /// Message values, without keys, on the topic before the application starts.
    pub fn events<V: AsRef<[u8]>>(mut self, values: &[V]) -> Self {
        self.events
            .extend(values.iter().map(|v| (None, v.as_ref().to_vec())));
        self
    }

    /// Message values under one key, on the topic before the application starts.
    pub fn keyed_events<V: AsRef<[u8]>>(mut self, key: &str, values: &[V]) -> Self {
        self.events.extend(
            values
                .iter()
                .map(|v| (Some(key.to_owned()), v.as_ref().to_vec())),
        );
        self
    }

    /// Rejected events go to [`DLQ_TOPIC`], created in the cluster.
    pub fn dead_letters(mut self) -> Self {
        self.dead_letters = true;
        self
    }

    /// The API listener speaks HTTPS with a self-signed certificate for `host`.
    pub fn tls(mut self, host: &str) -> Self {
        self.tls_host = Some(host.to_owned());
        self
    }

    /// Changes the settings (after the test defaults, in the order given).
    pub fn settings(mut self, tune: impl FnOnce(&mut Settings) + 'static) -> Self {
        self.tune.push(Box::new(tune));
        self
    }

    /// The callback listener on loopback port 0, with this tokens file (`callback-tokens.toml`).
    pub fn callback(mut self, tokens_toml: &str) -> Self {
        self.callback_tokens = Some(tokens_toml.to_owned());
        self
    }

    /// Returns as soon as the listeners are bound, without waiting for readiness.
    pub fn unready(mut self) -> Self {
        self.ready = false;
        self
    }

    pub async fn spawn(self) -> TestApp {
        let kafka = MockKafka::start(TOPIC, self.partitions);
        if !self.events.is_empty() {
            let msgs: Vec<(Option<&str>, &[u8])> = self
                .events
                .iter()
                .map(|(k, v)| (k.as_deref(), v.as_slice()))
                .collect();
            kafka.produce(&msgs);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = test_settings(&kafka.brokers(), &dir);
        if self.dead_letters {
            kafka
                .kafka
                .create_topic(DLQ_TOPIC, 1)
                .expect("dead-letter topic");
            settings.kafka.dlq_topic = Some(DLQ_TOPIC.into());
        }
        let certificate = self.tls_host.map(|host| {
            let (certificate, tls) = self_signed_tls(dir.path(), &host);
            settings.tls = Some(tls);
            certificate
        });
        if let Some(tokens) = &self.callback_tokens {
            let path = dir.path().join("callback-tokens.toml");
            std::fs::write(&path, tokens).expect("tokens file written");
            settings.callback.listen = Some("127.0.0.1:0".into());
            settings.callback.tokens_file = Some(path);
        }
        for tune in self.tune {
            tune(&mut settings);
        }

        let app = Application::build(settings)
            .await
            .expect("application builds");
        let api = format!("127.0.0.1:{}", app.api_port());
        let admin = format!("127.0.0.1:{}", app.admin_port());
        let callback = app.callback_port().map(|p| format!("127.0.0.1:{p}"));
        let shutdown = app.shutdown_handle();
        let store = app.store();
        let run = tokio::spawn(async move {
            app.run_until_stopped().await.expect("clean stop");
        });
        let app = TestApp {
            api,
            admin,
            kafka,
            certificate,
            callback,
            shutdown,
            store,
            run,
            dir,
        };
        if self.ready {
            app.wait_ready().await;
        }
        app
    }
}

/// Settings for a test instance: loopback, port 0, keys file in `dir`, snapshots below it.
fn test_settings(brokers: &str, dir: &tempfile::TempDir) -> Settings {
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, KEYS_TOML).expect("keys file written");
    let mut s = Settings {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        workers: Some(2),
        ..Settings::default()
    };
    s.kafka.brokers = Some(brokers.to_owned());
    s.kafka.topic = TOPIC.to_owned();
    s.kafka.metadata_refresh = Duration::from_secs(1);
    s.auth.keys_file = Some(keys);
    s.auth.keys_poll = Duration::from_millis(100);
    // Tests send many bad signatures from one address on purpose; the lockout tests opt in.
    s.auth.lockout_threshold = 0;
    s.snapshot.dir = dir.path().join("data");
    s
}

impl TestApp {
    pub async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.run.await;
    }

    /// Polls /health/ready until 200 (fails the test after 20 s).
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + PATIENCE;
        while get(&self.admin, "/health/ready").await.status != 200 {
            assert!(Instant::now() < deadline, "not ready after {PATIENCE:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A correctly signed realstatistic request by the all-VDN key (the body: any bytes).
    pub async fn query(&self, body: impl AsRef<[u8]>) -> super::Response {
        let request = Request::post_json(&self.api, super::PATH, body.as_ref());
        send_signed(&self.api, AK, SK, &request).await
    }

    pub async fn metrics(&self) -> String {
        get(&self.admin, "/metrics").await.text()
    }

    /// Polls the metrics until `series` has a value `reached` accepts (fails the test after
    /// 20 s); returns the metrics text of that moment.
    pub async fn wait_metric(&self, series: &str, reached: impl Fn(f64) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let m = self.metrics().await;
            if metric(&m, series).is_some_and(&reached) {
                return m;
            }
            assert!(Instant::now() < deadline, "{series} never got there:\n{m}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The certificate file of an HTTPS instance.
    pub fn cert_path(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Rewrites the callback tokens file (the application polls it).
    pub fn write_tokens(&self, toml: &str) {
        std::fs::write(self.dir.path().join("callback-tokens.toml"), toml)
            .expect("tokens file rewritten");
    }

    /// Rewrites the keys file (the application polls it).
    pub fn write_keys(&self, toml: &str) {
        std::fs::write(self.dir.path().join("keys.toml"), toml).expect("keys file rewritten");
    }
}
