//! A real broker going away and coming back. tansu on SQLite keeps its log across `kill -9`, so
//! this is the outage an operator sees: the replica keeps answering from memory while the broker
//! is down, resumes where it stopped when it returns, and ends exact.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::oracle::Oracle;
use crate::process::{create_topic_on, unique_topic, Replica};
use crate::support::*;
use crate::{answers, expected, simulated_log};

/// A tansu broker of this test's own (the shared one of scripts/test cannot be restarted).
pub struct Broker {
    child: KillOnDrop,
}

impl Broker {
    /// Starts tansu on `port` with its SQLite log in `dir`, and waits until it accepts.
    pub fn start(dir: &Path, port: u16) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let log =
            std::fs::File::create(dir.join(format!("tansu-{}.log", now_ms()))).expect("broker log");
        let child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .arg("--storage-engine")
            .arg(format!("sqlite://{}/broker.db", dir.display()))
            // tansu resolves the SQLite path against its working directory.
            .current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("tansu on PATH (scripts/test installs it)");
        let child = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker { child }
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill(self) {
        drop(self.child);
    }
}

fn produce(brokers: &str, topic: &str, log: &[(String, Vec<u8>)]) {
    let msgs: Vec<(Option<&str>, Option<i32>, &[u8])> = log
        .iter()
        .map(|(k, v)| (Some(k.as_str()), None, v.as_slice()))
        .collect();
    realstat::dev::simulate::produce_raw(brokers, topic, &[], &msgs).expect("produced");
}

#[actix_web::test]
#[ignore = "needs tansu: run scripts/test"]
async fn a_broker_killed_and_restarted_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let broker = Broker::start(dir.path(), port);
    let topic = unique_topic("e2e-broker");
    create_topic_on(&brokers, &topic, 3).await;
    let first = simulated_log(21, 3);
    produce(&brokers, &topic, &first);
    let before = Oracle::fold(first.iter().map(|(_, v)| v.as_slice()));

    let env = [("REALSTAT_KAFKA_BROKERS", brokers.as_str())];
    let replica = Replica::start_in(&topic, dir.path(), &env);
    replica.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(answers(&replica).await, expected(&before));

    // The broker dies: the replica stays ready and keeps answering what it had.
    broker.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(get(&replica.admin, "/health/ready").await.status, 200);
    assert_eq!(answers(&replica).await, expected(&before));

    // It comes back with its log; new events follow; the replica resumes and is exact.
    let _broker = Broker::start(dir.path(), port);
    let second = simulated_log(22, 1);
    produce(&brokers, &topic, &second);
    let all = Oracle::fold(first.iter().chain(second.iter()).map(|(_, v)| v.as_slice()));
    replica
        .wait_consumed(first.len() + second.len(), Duration::from_secs(90))
        .await;
    assert_eq!(answers(&replica).await, expected(&all));
    let m = get(&replica.admin, "/metrics").await.text();
    assert_eq!(
        metric(&m, "realstat_events_consumed_total").map(|n| n as usize),
        Some(first.len() + second.len()),
        "nothing read twice after the restart"
    );
    assert!(replica.terminate().success(), "SIGTERM exits 0");
}
