//! The binary as a user runs it: the embedded demo answers `realstat query` with live numbers,
//! `realstat sign` produces a header the server accepts, logs are JSON lines without secrets,
//! and SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_realstat");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Kills the demo if the test fails half way, so no process outlives it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query(api: &str, sk: &str) -> (bool, serde_json::Value) {
    let out = Command::new(BIN)
        .args([
            "query",
            "--url",
            &format!("http://{api}"),
            "--ak",
            "demo-ak",
            "--sk",
            sk,
            "--cc-id",
            "1",
            "--vdn",
            "92",
            "--task-id",
            "1122104910",
        ])
        .output()
        .expect("query runs");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        serde_json::Value::String(format!(
            "stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    });
    (out.status.success(), v)
}

#[test]
fn the_demo_shows_live_numbers_through_realstat_query() {
    let api = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("stderr.log");
    let child = Command::new(BIN)
        .env("REALSTAT_LISTEN", &api)
        .env("REALSTAT_ADMIN_LISTEN", &admin)
        .env("REALSTAT_LOG_FORMAT", "json")
        // Request outcomes log at debug: turn them on, so the no-secret check covers them.
        .env("RUST_LOG", "info,realstat::api=debug")
        .env_remove("REALSTAT_KAFKA_BROKERS")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("demo starts");
    let mut child = KillOnDrop(child);

    // The banner names the demo secret and the exact query command.
    let stdout = child.0.stdout.take().expect("stdout");
    let mut sk = String::new();
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("banner line");
        banner.push_str(&line);
        banner.push('\n');
        if let Some(rest) = line.split("SK=").nth(1) {
            sk = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        if line.contains("realstat query") || line.contains("-- query") {
            break;
        }
    }
    assert_eq!(sk.len(), 32, "banner:\n{banner}");
    assert!(
        banner.contains(&format!("--url http://{api}")),
        "banner:\n{banner}"
    );
    assert!(
        banner.contains(&format!("http://{api}/wallboard?ccId=1&vdn=92&taskIds=")),
        "the banner shows the wallboard:\n{banner}"
    );

    // Live numbers: the simulator keeps calling, so the day's total grows.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        let (ok, v) = query(&api, &sk);
        let total: u64 = v["resultDesc"]["totalCount"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if ok && v["resultCode"] == "0100000" && total > 0 {
            break total;
        }
        assert!(
            Instant::now() < deadline,
            "no live numbers: {v}\nlogs:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = query(&api, &sk);
        let total: u64 = v["resultDesc"]["totalCount"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if total > first {
            break;
        }
        assert!(Instant::now() < deadline, "numbers do not move: {v}");
        std::thread::sleep(Duration::from_millis(250));
    }

    // A wrong secret: 401 and a failing exit status.
    let (ok, v) = query(&api, "not-the-secret");
    assert!(!ok);
    assert_eq!(v["resultCode"], "0100001");

    // `sign` prints a header the server accepts for the same body and Host.
    let out = Command::new(BIN)
        .args([
            "sign",
            "--host",
            &api,
            "--ak",
            "demo-ak",
            "--sk",
            &sk,
            "--vdn",
            "92",
            "--task-id",
            "1122104910",
        ])
        .output()
        .expect("sign runs");
    let header = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(header.starts_with("auth-v2/demo-ak/"), "{header}");
    let body = r#"{"vdn":92,"taskId":"1122104910"}"#;
    let r = realstat::dev::client::request(
        &api,
        "POST",
        realstat::api::PATH,
        &[
            ("Host", api.as_str()),
            ("Content-Type", "application/json"),
            ("Authorization", &header),
        ],
        body.as_bytes(),
        Duration::from_secs(5),
    )
    .expect("answered");
    assert_eq!(r.status, 200, "{}", r.text());

    // SIGTERM: a clean stop.
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");

    // Logs: one JSON object per line, never the secret nor a signature.
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    assert!(logs.lines().count() > 3, "{logs}");
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(!logs.contains(&sk), "the secret leaked into the logs");
    assert!(
        !logs.contains("auth-v2/"),
        "an Authorization value leaked into the logs"
    );
    assert!(logs.contains("request_id"), "request lines carry their id");
}
