//! Wiring: builds the store, the consumer and both HTTP listeners from [`Settings`], and runs
//! them until a signal or a shutdown request, then stops them in order.
//!
//! `Application::build` binds its sockets before returning, so a test can ask for port 0 and
//! read the ports back; `run_until_stopped` drives the servers.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use tokio::sync::broadcast;

use crate::admin::{self, AdminState};
use crate::api::{self, ApiState};
use crate::auth::{KeySet, Keys, Lockout, LockoutPolicy};
use crate::config::Settings;
use crate::embedded::EmbeddedKafka;
use crate::fold::Store;
use crate::ingest::{Ingest, IngestConfig, Positions, Readiness};
use crate::metrics::Metrics;
use crate::simulate::{self, SimulateOptions};
use crate::snapshot::{self, SnapshotDir, Snapshotter};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("keys file {path}: {message}")]
    Keys { path: String, message: String },
    #[error(transparent)]
    Embedded(#[from] crate::embedded::EmbeddedError),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error("server error: {0}")]
    Server(#[source] std::io::Error),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// The access key of the embedded demo. Its secret is drawn at random on every start and printed.
pub const DEMO_AK: &str = "demo-ak";
/// Partitions of the embedded demo topic.
const DEMO_PARTITIONS: i32 = 4;
/// How long in-flight requests get to finish on shutdown.
const SHUTDOWN_GRACE_SECS: u64 = 10;

/// Started only without Kafka configured: the mock broker and the traffic simulator.
struct Demo {
    kafka: EmbeddedKafka,
    simulator: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    secret: String,
}

impl Drop for Demo {
    /// Stops the simulator before the embedded broker goes away (also when startup fails half
    /// way), so it does not keep producing into a closed socket.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.simulator.take() {
            let _ = t.join();
        }
    }
}

pub struct Application {
    settings: Settings,
    api_port: u16,
    admin_port: u16,
    api_server: Server,
    admin_server: Server,
    ingest: Option<Ingest>,
    /// `None` in demo mode: the embedded broker starts empty every time, so offsets saved from
    /// a previous run would point into a log that no longer exists.
    snapshots: Option<SnapshotDir>,
    snapshotter: Option<Snapshotter>,
    demo: Option<Demo>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    keys: Keys,
    shutdown: broadcast::Sender<()>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let metrics = Arc::new(Metrics::new());
        let readiness = Arc::new(Readiness::default());
        let store = Arc::new(Store::new(settings.calendar(), settings.fold));
        let (shutdown, _) = broadcast::channel(4);

        // Kafka: the configured brokers, or the embedded demo.
        let mut demo = None;
        let brokers = match &settings.kafka.brokers {
            Some(b) => b.clone(),
            None => {
                let kafka = EmbeddedKafka::start()?;
                kafka.create_topic(&settings.kafka.topic, DEMO_PARTITIONS)?;
                let brokers = kafka.bootstrap_servers().to_owned();
                demo = Some(Demo {
                    kafka,
                    simulator: None,
                    stop: Arc::new(AtomicBool::new(false)),
                    secret: random_secret(),
                });
                brokers
            }
        };

        let keys = match (&settings.auth.keys_file, &demo) {
            (Some(path), _) => {
                let set = KeySet::load(path).map_err(|e| StartupError::Keys {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                Keys::new(set)
            }
            (None, Some(d)) => Keys::new(KeySet::single(DEMO_AK, d.secret.as_bytes())),
            (None, None) => {
                return Err(StartupError::Keys {
                    path: "(none)".into(),
                    message: "a keys file is required".into(),
                })
            }
        };

        // Restore before consuming: the newest valid snapshot gives the state and where to go on.
        let snapshots = demo
            .is_none()
            .then(|| SnapshotDir::new(&settings.snapshot.dir, settings.snapshot.keep));
        let mut start = Positions::new();
        if let Some(dir) = &snapshots {
            match dir.restore(&store, &settings.kafka.topic)? {
                Some(r) => {
                    tracing::info!(
                        path = %r.path.display(),
                        bytes = r.bytes,
                        ms = r.duration.as_millis() as u64,
                        tasks = store.tasks_tracked(),
                        calls = store.calls_tracked(),
                        positions = ?r.header.positions,
                        "restored snapshot; resuming from its offsets"
                    );
                    metrics
                        .snapshot_last_ms
                        .store(r.header.created_ms, Ordering::Relaxed);
                    start = r.header.positions;
                }
                None => tracing::info!(
                    dir = %dir.path().display(),
                    "no usable snapshot; reading the log from the beginning"
                ),
            }
        }

        let ingest = Ingest::start(
            IngestConfig {
                brokers: brokers.clone(),
                topic: settings.kafka.topic.clone(),
                properties: settings.kafka.properties.clone(),
                metadata_refresh: settings.kafka.metadata_refresh,
                default_cc_id: settings.default_cc_id,
                dlq_topic: settings.kafka.dlq_topic.clone(),
            },
            store.clone(),
            metrics.clone(),
            readiness.clone(),
            start,
        )?;

        let snapshotter = match &snapshots {
            Some(dir) => Some(
                Snapshotter::start(
                    dir.clone(),
                    settings.snapshot.interval,
                    store.clone(),
                    settings.kafka.topic.clone(),
                    metrics.clone(),
                    ingest.position_reader(),
                )
                .map_err(StartupError::Server)?,
            ),
            None => None,
        };

        if let Some(d) = demo.as_mut() {
            let stop = d.stop.clone();
            let brokers = brokers.clone();
            let topic = settings.kafka.topic.clone();
            let opts = SimulateOptions {
                cc_id: settings.default_cc_id,
                ..SimulateOptions::default()
            };
            d.simulator = Some(std::thread::spawn(move || {
                if let Err(e) = simulate::produce(&brokers, &topic, &[], opts, &stop) {
                    tracing::error!(error = %e, "demo simulator stopped");
                }
            }));
        }

        let api_state = web::Data::new(ApiState {
            store: store.clone(),
            keys: keys.clone(),
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            default_cc_id: settings.default_cc_id,
            allowed_skew_secs: settings.auth.allowed_skew.as_secs() as i64,
            lockout: Arc::new(Lockout::new(LockoutPolicy {
                threshold: settings.auth.lockout_threshold,
                window: settings.auth.lockout_window,
                duration: settings.auth.lockout_duration,
                max_tracked: 100_000,
            })),
            trusted_proxies: settings.auth.trusted_proxies.clone().into(),
            limits: settings.limits,
        });
        let admin_state = web::Data::new(AdminState {
            store: store.clone(),
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        });

        let api_listener = bind("API listener", &settings.listen)?;
        let admin_listener = bind("admin listener", &settings.admin_listen)?;
        let api_port = local_port(&api_listener);
        let admin_port = local_port(&admin_listener);

        let mut api = HttpServer::new(move || {
            App::new()
                .app_data(api_state.clone())
                .configure(api::configure)
        })
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE_SECS)
        .client_request_timeout(settings.limits.request_head_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(settings.limits.keep_alive)
        .max_connections(settings.limits.max_connections);
        if let Some(w) = settings.workers {
            api = api.workers(w);
        }
        let api = match &settings.tls {
            Some(tls) => {
                let config = crate::tls::server_config(&tls.cert, &tls.key)?;
                api.listen_rustls_0_23(api_listener, config)
            }
            None => api.listen(api_listener),
        };
        let api_server = api.map_err(StartupError::Server)?.run();

        let admin_server = HttpServer::new(move || {
            App::new()
                .app_data(admin_state.clone())
                .configure(admin::configure)
        })
        .disable_signals()
        .shutdown_timeout(2)
        .workers(1)
        .listen(admin_listener)
        .map_err(StartupError::Server)?
        .run();

        Ok(Application {
            settings,
            api_port,
            admin_port,
            api_server,
            admin_server,
            ingest: Some(ingest),
            snapshots,
            snapshotter,
            demo,
            store,
            metrics,
            readiness,
            keys,
            shutdown,
        })
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub fn readiness(&self) -> Arc<Readiness> {
        self.readiness.clone()
    }

    pub fn keys(&self) -> Keys {
        self.keys.clone()
    }

    /// A handle that stops the application as a signal would (for tests and embedders).
    pub fn shutdown_handle(&self) -> broadcast::Sender<()> {
        self.shutdown.clone()
    }

    /// The demo's access key and secret, when running embedded.
    pub fn demo_credentials(&self) -> Option<(&'static str, &str)> {
        self.demo.as_ref().map(|d| (DEMO_AK, d.secret.as_str()))
    }

    /// What an operator needs to query the embedded demo, printed at start.
    pub fn demo_banner(&self) -> Option<String> {
        let d = self.demo.as_ref()?;
        let opts = SimulateOptions::default();
        let exe = "realstat";
        Some(format!(
            "\n  realstat demo: embedded Kafka at {brokers}, simulator producing to {topic:?}\n  \
             API      http://127.0.0.1:{api}{path}\n  \
             admin    http://127.0.0.1:{admin}/metrics  /health/ready\n  \
             demo key AK={ak}  SK={sk}\n\n  \
             Query a demo task (in another terminal, from the checkout):\n    \
             cargo run --release -- query --url http://127.0.0.1:{api} --ak {ak} --sk {sk} --cc-id {cc} --vdn {vdn} --task-id {task}\n  \
             or, with the binary: {exe} query ... (same flags)\n",
            brokers = d.kafka.bootstrap_servers(),
            topic = self.settings.kafka.topic,
            api = self.api_port,
            admin = self.admin_port,
            path = api::PATH,
            ak = DEMO_AK,
            sk = d.secret,
            cc = self.settings.default_cc_id,
            vdn = opts.vdn,
            task = opts.tasks.first().map(String::as_str).unwrap_or("1122104910"),
        ))
    }

    /// Serves until SIGTERM/SIGINT, a shutdown request, or a server failing; then stops taking
    /// connections, lets in-flight requests finish, stops the consumer and the demo.
    pub async fn run_until_stopped(mut self) -> Result<(), StartupError> {
        let api_handle = self.api_server.handle();
        let admin_handle = self.admin_server.handle();
        let mut api_task = tokio::spawn(self.api_server);
        let mut admin_task = tokio::spawn(self.admin_server);
        let mut shutdown = self.shutdown.subscribe();
        let keys_reloader = self.settings.auth.keys_file.clone().map(|path| {
            crate::auth::spawn_reloader(
                self.keys.clone(),
                path,
                self.settings.auth.keys_poll,
                self.shutdown.subscribe(),
            )
        });

        let reason = tokio::select! {
            r = terminate_signal() => r,
            _ = shutdown.recv() => "shutdown requested",
            _ = &mut api_task => "API server ended",
            _ = &mut admin_task => "admin server ended",
        };
        tracing::info!(reason, "stopping");
        let _ = self.shutdown.send(());
        stop_server(api_handle).await;
        stop_server(admin_handle).await;
        let _ = api_task.await;
        let _ = admin_task.await;

        // Stop the consumer, then write the final snapshot at its final positions. Joining
        // threads and writing files block: keep them off the async workers.
        let snapshotter = self.snapshotter.take();
        let ingest = self.ingest.take();
        let snapshots = self.snapshots.take();
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let topic = self.settings.kafka.topic.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(s) = snapshotter {
                s.stop();
            }
            if let Some(ingest) = ingest {
                let positions = ingest.stop();
                tracing::info!(?positions, "consumer stopped");
                if let Some(dir) = snapshots {
                    snapshot::write_and_report(&dir, &store, &positions, &topic, &metrics);
                }
            }
        })
        .await;
        if let Some(demo) = self.demo.take() {
            // Dropping stops the simulator, then the broker; both block briefly.
            let _ = tokio::task::spawn_blocking(move || drop(demo)).await;
        }
        if let Some(r) = keys_reloader {
            let _ = r.await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn stop_server(handle: ServerHandle) {
    handle.stop(true).await;
}

async fn terminate_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

fn bind(what: &'static str, addr: &str) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        what,
        addr: addr.to_owned(),
        source,
    })
}

fn local_port(listener: &TcpListener) -> u16 {
    listener.local_addr().map(|a| a.port()).unwrap_or(0)
}

/// 32 random alphanumeric characters from the OS generator.
fn random_secret() -> String {
    use rand::{Rng, SeedableRng};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::StdRng::from_os_rng();
    (0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}
