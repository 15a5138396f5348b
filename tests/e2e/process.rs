//! `realstat serve` as a child process, and the broker it talks to.

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use crate::support::*;

/// The broker started by scripts/test. Missing: the test fails, it does not pass by skipping.
pub fn brokers() -> String {
    std::env::var("REALSTAT_E2E_BROKERS")
        .expect("REALSTAT_E2E_BROKERS must name a running broker (scripts/test starts tansu)")
}

pub fn unique_topic(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        now_ms() % 1_000_000_000
    )
}

fn admin(brokers: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client")
}

pub async fn create_topic(topic: &str, partitions: i32) {
    create_topic_on(&brokers(), topic, partitions).await;
}

pub async fn create_topic_on(brokers: &str, topic: &str, partitions: i32) {
    let admin = admin(brokers);
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create_topics answered");
    for r in results {
        r.expect("topic created");
    }
}

pub struct Replica {
    pub api: String,
    pub admin: String,
    pub child: KillOnDrop,
    _tmp: Option<tempfile::TempDir>,
    log: PathBuf,
}

impl Replica {
    pub async fn start(topic: &str) -> Replica {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_owned();
        let mut r = Replica::start_in(topic, &dir, &[]);
        r._tmp = Some(tmp);
        r
    }

    /// Starts a replica whose snapshot directory and keys file live in `dir` (kept across
    /// restarts by the caller).
    pub fn start_in(topic: &str, dir: &std::path::Path, extra_env: &[(&str, &str)]) -> Replica {
        let keys = dir.join("keys.toml");
        std::fs::write(&keys, KEYS_TOML).expect("keys file");
        let api = format!("127.0.0.1:{}", free_port());
        let admin = format!("127.0.0.1:{}", free_port());
        let log = dir.join(format!("replica-{}.log", now_ms()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_realstat"));
        cmd.arg("serve")
            .env("REALSTAT_KAFKA_BROKERS", brokers())
            .env("REALSTAT_TOPIC", topic)
            .env("REALSTAT_KEYS_FILE", &keys)
            .env("REALSTAT_LISTEN", &api)
            .env("REALSTAT_ADMIN_LISTEN", &admin)
            .env("REALSTAT_SNAPSHOT_DIR", dir.join("data"))
            .env("REALSTAT_TIMEZONE", "Asia/Shanghai")
            .env("REALSTAT_LOG_FORMAT", "json")
            .env("REALSTAT_WORKERS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = KillOnDrop(cmd.spawn().expect("realstat starts"));
        Replica {
            api,
            admin,
            child,
            _tmp: None,
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let admin = self.admin.clone();
            let ready = tokio::task::spawn_blocking(move || is_ready(&admin))
                .await
                .expect("join");
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica not ready after {timeout:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the replica has consumed `n` messages (by its own metrics).
    pub async fn wait_consumed(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let m = get(&self.admin, "/metrics").await.text();
            let consumed = metric(&m, "realstat_events_consumed_total").unwrap_or(0.0) as usize;
            if consumed >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "consumed {consumed} of {n} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then wait for the exit (killed after 30 s).
    pub fn terminate(mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.0.kill();
                return self.child.0.wait().expect("killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(self) {
        drop(self.child);
    }
}
