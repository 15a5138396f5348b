//! Wiring: from [`Settings`] to a running replica, and back down in order.
//!
//! [`Application::build`] composes the parts and binds both sockets before returning, so a test
//! can ask for port 0 and read the ports back; [`Application::run_until_stopped`] serves until a
//! signal or [`Shutdown::trigger`], then stops the parts in the order that loses nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::AdminState;
use crate::api::stream::StreamLimits;
use crate::api::ApiState;
use crate::auth::{KeySet, Keys, Lockout, LockoutPolicy};
use crate::config::Settings;
use crate::fold::Store;
use crate::ingest::{Ingest, IngestConfig};
use crate::metrics::Metrics;
use crate::progress::{Changes, Positions, Readiness};
use crate::server::{Listeners, ServerError};
use crate::shutdown::Shutdown;
use crate::snapshot::{self, SnapshotDir, SnapshotError, Snapshotter};

#[cfg(feature = "dev")]
use crate::dev::demo::Demo;
/// This build has no demo (the `dev` feature is off): no value of this type can exist.
#[cfg(not(feature = "dev"))]
pub enum Demo {}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("keys file {path}: {source}")]
    Keys {
        path: PathBuf,
        #[source]
        source: crate::auth::KeysError,
    },
    #[error("a keys file is required with Kafka brokers")]
    NoKeysFile,
    #[error("no Kafka brokers configured, and this build has no embedded demo (feature `dev`)")]
    NoKafka,
    #[cfg(feature = "dev")]
    #[error(transparent)]
    Demo(#[from] crate::dev::embedded::EmbeddedError),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Callback(#[from] crate::callback::CallbackError),
    #[error("cannot start the snapshot thread: {0}")]
    SnapshotThread(#[source] std::io::Error),
    #[error(transparent)]
    Restore(SnapshotError),
    #[error(
        "the final snapshot was not written (the next start replays from the previous one): {0}"
    )]
    FinalSnapshot(#[source] SnapshotError),
    /// A part (a thread, a server, a task) ended while nobody asked it to: the process stopped
    /// so that the orchestrator restarts it.
    #[error("{} ended unexpectedly: {}", .0.part, .0.cause)]
    PartFailed(crate::shutdown::Failure),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

pub struct Application {
    listeners: Listeners,
    /// How the two listeners are stopped without dropping requests (`server::drain_and_stop`).
    ingest: Ingest,
    /// `None` in demo mode: the embedded broker starts empty every time, so offsets saved from
    /// a previous run would point into a log that no longer exists.
    snapshots: Option<(SnapshotDir, Snapshotter)>,
    demo: Option<Demo>,
    /// The keys file and how often to look at it.
    keys_file: Option<(PathBuf, Duration)>,
    topic: String,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    keys: Keys,
    shutdown: Shutdown,
    /// The iSales callback listener and its tokens, when `callback.listen` is set.
    callback: Option<Callback>,
}

struct Callback {
    listener: crate::callback::listener::CallbackListener,
    tokens: crate::callback::Tokens,
    /// The tokens file and how often to look at it; `None`: the demo's made-up token.
    tokens_file: Option<(PathBuf, Duration)>,
    /// The demo's token, for its banner (a build without the demo has none to show).
    #[cfg_attr(not(feature = "dev"), allow(dead_code))]
    demo_token: Option<String>,
}

/// Where events come from and which keys sign requests: the configured Kafka and keys file, or
/// the demo's embedded broker and key.
struct Source {
    brokers: String,
    keys: KeySet,
    demo: Option<Demo>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let shutdown = Shutdown::new();
        let metrics = Arc::new(Metrics::new());
        let readiness = Arc::new(Readiness::default());
        let changes = Arc::new(Changes::default());
        let store = Arc::new(Store::with_zones(
            settings.time_zones(),
            settings.fold_policy(),
        ));
        let source = open_source(&settings, &shutdown)?;
        let topic = settings.kafka.topic.clone();

        // Restore before consuming: the newest valid snapshot gives the state and where to go on.
        let snapshot_dir = source
            .demo
            .is_none()
            .then(|| SnapshotDir::new(&settings.snapshot.dir, settings.snapshot.keep));
        let start = match &snapshot_dir {
            Some(dir) => snapshot::restore_and_report(dir, &store, &topic, &metrics)
                .map_err(StartupError::Restore)?,
            None => Positions::new(),
        };
        let callback = open_callback(&settings, &source, &metrics)?;
        let keys = Keys::new(source.keys);
        metrics.keys_in_force(keys.len());
        let api_state = api_state(
            &settings,
            &store,
            &keys,
            &metrics,
            &readiness,
            changes.clone(),
            shutdown.clone(),
        )?;
        let ingest = Ingest::start(
            ingest_config(&settings, source.brokers),
            store.clone(),
            metrics.clone(),
            readiness.clone(),
            changes,
            start,
            &shutdown,
        )?;
        let snapshots = snapshot_dir
            .map(|dir| {
                start_snapshots(dir, &settings, &store, &topic, &metrics, &ingest, &shutdown)
            })
            .transpose()?;

        let admin_state = AdminState {
            store: store.clone(),
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        };
        let listeners = Listeners::bind(&settings, api_state, admin_state)?;

        Ok(Application {
            listeners,
            ingest,
            snapshots,
            demo: source.demo,
            keys_file: settings
                .auth
                .keys_file
                .clone()
                .map(|p| (p, settings.auth.keys_poll)),
            topic,
            store,
            metrics,
            readiness,
            keys,
            shutdown,
            callback,
        })
    }

    /// The callback listener's port, when it is on.
    pub fn callback_port(&self) -> Option<u16> {
        self.callback.as_ref().map(|c| c.listener.port)
    }

    pub fn api_port(&self) -> u16 {
        self.listeners.api_port
    }

    pub fn admin_port(&self) -> u16 {
        self.listeners.admin_port
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

    /// Stops the application as a signal would (for tests and embedders).
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// The demo's access key and secret, when running embedded.
    #[cfg(feature = "dev")]
    pub fn demo_credentials(&self) -> Option<(&'static str, &str)> {
        self.demo.as_ref().map(Demo::credentials)
    }

    /// What a person needs to query the embedded demo, printed at start.
    #[cfg(feature = "dev")]
    pub fn demo_banner(&self) -> Option<String> {
        let d = self.demo.as_ref()?;
        let mut banner = d.banner(self.listeners.api_port, self.listeners.admin_port);
        if let Some(c) = &self.callback {
            banner.push_str(&crate::dev::demo::callback_banner(
                c.listener.port,
                c.demo_token.as_deref(),
            ));
        }
        Some(banner)
    }

    /// Serves until SIGTERM/SIGINT, the shutdown signal, or a server failing. Then: stop taking
    /// connections, answer the requests clients already sent and tell them to close
    /// (`server::drain_and_stop`); stop the consumer; write the final
    /// snapshot at its final positions; stop the demo. An error means the final snapshot failed.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let shutdown = self.shutdown.clone();
        let reloader = self.keys_file.clone().map(|(path, poll)| {
            let metrics = self.metrics.clone();
            let task = crate::auth::spawn_reloader(
                self.keys.clone(),
                path,
                poll,
                shutdown.clone(),
                metrics,
            );
            shutdown.watch_task("keys reloader", task)
        });
        let callback = self.callback.map(|c| {
            let reload = c.tokens_file.map(|(path, poll)| {
                let metrics = self.metrics.clone();
                crate::callback::spawn_tokens_reloader(
                    c.tokens,
                    path,
                    poll,
                    shutdown.clone(),
                    metrics,
                )
            });
            (c.listener.spawn(shutdown.clone()), reload)
        });
        self.listeners.serve_until_stopped(&shutdown).await;
        if let Some((serving, reload)) = callback {
            let _ = serving.await;
            if let Some(r) = reload {
                let _ = r.await;
            }
        }

        // Joining threads and writing files block: keep them off the async workers.
        let (ingest, snapshots, store, metrics, topic) = (
            self.ingest,
            self.snapshots,
            self.store,
            self.metrics,
            self.topic,
        );
        let finished = tokio::task::spawn_blocking(move || {
            let positions = ingest.stop();
            tracing::info!(?positions, "consumer stopped");
            let Some((dir, writer)) = snapshots else {
                return Ok(());
            };
            writer.stop();
            snapshot::write_and_report(&dir, &store, &positions, &topic, &metrics).map(drop)
        })
        .await;
        if let Some(demo) = self.demo {
            // Dropping stops the simulator, then the broker; both block briefly.
            let _ = tokio::task::spawn_blocking(move || drop(demo)).await;
        }
        if let Some(r) = reloader {
            let _ = r.await;
        }
        if let Err(e) = &finished {
            shutdown.fail("final snapshot", e);
        }
        if let Some(failure) = shutdown.failure() {
            tracing::error!(part = failure.part, cause = %failure.cause, "stopped after a failure");
            return Err(StartupError::PartFailed(failure));
        }
        match finished {
            Ok(Err(e)) => {
                tracing::error!(error = %e, "stopped without a final snapshot");
                Err(StartupError::FinalSnapshot(e))
            }
            _ => {
                tracing::info!("stopped");
                Ok(())
            }
        }
    }
}

/// The callback listener, when configured (`callTimeStr` is read in each tenant's zone, the same
/// `timezone`/`timezones` table the fold's days follow). The demo without a tokens file gets one
/// token, `demo-` and its random secret, for its call center.
fn open_callback(
    settings: &Settings,
    source: &Source,
    metrics: &Arc<Metrics>,
) -> Result<Option<Callback>, StartupError> {
    let demo_token = demo_secret(source).map(|secret| format!("demo-{secret}"));
    let fallback = demo_token
        .as_deref()
        .map(|t| crate::callback::TokenSet::single(t, settings.default_cc_id));
    let opened = crate::callback::open(settings, &source.brokers, metrics, fallback)?;
    let Some((listener, tokens)) = opened else {
        return Ok(None);
    };
    let tokens_file = settings
        .callback
        .tokens_file
        .clone()
        .map(|p| (p, settings.auth.keys_poll));
    Ok(Some(Callback {
        listener,
        tokens,
        demo_token: demo_token.filter(|_| tokens_file.is_none()),
        tokens_file,
    }))
}

#[cfg(feature = "dev")]
fn demo_secret(source: &Source) -> Option<String> {
    source.demo.as_ref().map(|d| d.credentials().1.to_owned())
}

#[cfg(not(feature = "dev"))]
fn demo_secret(_: &Source) -> Option<String> {
    None
}

fn open_source(settings: &Settings, shutdown: &Shutdown) -> Result<Source, StartupError> {
    let keys = match &settings.auth.keys_file {
        Some(path) => Some(KeySet::load(path).map_err(|source| StartupError::Keys {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    match (&settings.kafka.brokers, keys) {
        (Some(brokers), Some(keys)) => Ok(Source {
            brokers: brokers.clone(),
            keys,
            demo: None,
        }),
        // `Settings::validate` refuses brokers without a keys file.
        (Some(_), None) => Err(StartupError::NoKeysFile),
        (None, keys) => open_demo(settings, keys, shutdown),
    }
}

#[cfg(feature = "dev")]
fn open_demo(
    settings: &Settings,
    keys: Option<KeySet>,
    shutdown: &Shutdown,
) -> Result<Source, StartupError> {
    let demo = Demo::start(&settings.kafka.topic, settings.default_cc_id, shutdown)?;
    Ok(Source {
        brokers: demo.brokers().to_owned(),
        keys: keys.unwrap_or_else(|| demo.keys()),
        demo: Some(demo),
    })
}

#[cfg(not(feature = "dev"))]
fn open_demo(_: &Settings, _: Option<KeySet>, _: &Shutdown) -> Result<Source, StartupError> {
    Err(StartupError::NoKafka)
}

/// The periodic snapshot writer on `dir`, reading the consumer's published positions.
fn start_snapshots(
    dir: SnapshotDir,
    settings: &Settings,
    store: &Arc<Store>,
    topic: &str,
    metrics: &Arc<Metrics>,
    ingest: &Ingest,
    shutdown: &Shutdown,
) -> Result<(SnapshotDir, Snapshotter), StartupError> {
    let writer = Snapshotter::start(
        dir.clone(),
        settings.snapshot.interval,
        store.clone(),
        topic.to_owned(),
        metrics.clone(),
        ingest.position_reader(),
        shutdown,
    )
    .map_err(StartupError::SnapshotThread)?;
    Ok((dir, writer))
}

fn ingest_config(settings: &Settings, brokers: String) -> IngestConfig {
    IngestConfig {
        brokers,
        topic: settings.kafka.topic.clone(),
        properties: settings.kafka_properties(),
        metadata_refresh: settings.kafka.metadata_refresh,
        default_cc_id: settings.default_cc_id,
        dlq_topic: settings.kafka.dlq_topic.clone(),
        tenants: settings.tenant_filter(),
    }
}

fn api_state(
    settings: &Settings,
    store: &Arc<Store>,
    keys: &Keys,
    metrics: &Arc<Metrics>,
    readiness: &Arc<Readiness>,
    changes: Arc<Changes>,
    shutdown: Shutdown,
) -> Result<ApiState, StartupError> {
    let auth = &settings.auth;
    Ok(ApiState {
        store: store.clone(),
        keys: keys.clone(),
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        default_cc_id: settings.default_cc_id,
        allowed_skew_secs: i64::try_from(auth.allowed_skew.as_secs()).unwrap_or(i64::MAX),
        lockout: Arc::new(Lockout::new(LockoutPolicy {
            threshold: auth.lockout_threshold,
            window: auth.lockout_window,
            duration: auth.lockout_duration,
            max_tracked: 100_000,
        })),
        trusted_proxies: auth.trusted_proxies.clone().into(),
        // Refused here too, not only by `Settings::validate`: an empty list allows every host,
        // so an entry that does not parse must never quietly become one.
        allowed_hosts: Arc::new(settings.allowed_hosts()?),
        limits: settings.http_limits(),
        tenants: settings.tenant_filter(),
        changes,
        shutdown,
        streams: Arc::new(StreamLimits::new(
            settings.streams.max_open,
            settings.streams.max_per_key,
            metrics.clone(),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `auth.allowed_hosts` is checked by `Settings::validate`, but a build from settings that
    /// skipped it must not turn an entry it cannot read into "every host".
    #[test]
    fn an_unreadable_allowed_host_stops_the_build_rather_than_allowing_all() {
        let mut settings = Settings::default();
        let store = Arc::new(Store::new(settings.calendar(), settings.fold_policy()));
        let metrics = Arc::new(Metrics::new());
        let build = |settings: &Settings| {
            api_state(
                settings,
                &store,
                &Keys::new(KeySet::default()),
                &metrics,
                &Arc::new(Readiness::default()),
                Arc::new(Changes::default()),
                Shutdown::new(),
            )
        };
        settings.auth.allowed_hosts = vec!["http://realstat.example".into()];
        let err = build(&settings).err().expect("refused").to_string();
        assert!(err.contains("auth.allowed_hosts"), "{err}");

        settings.auth.allowed_hosts = vec!["realstat.example:8080".into()];
        let built = build(&settings).expect("a readable list builds");
        assert!(!built.allowed_hosts.allows(Some(b"evil.example")));
    }
}
