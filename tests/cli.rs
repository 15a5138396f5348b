//! The binary as a user runs it: the embedded demo answers `realstat query` with live numbers,
//! `realstat sign` produces a header the server accepts, logs are JSON lines without secrets,
//! and SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use support::{free_port, is_ready, try_request, KillOnDrop, MockKafka};

const BIN: &str = env!("CARGO_BIN_EXE_realstat");

fn query(api: &str, sk: &str) -> (bool, serde_json::Value) {
    query_task(api, sk, "1122104910")
}

/// `realstat query` for one task of the demo's call center and VDN.
fn query_task(api: &str, sk: &str, task: &str) -> (bool, serde_json::Value) {
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
            task,
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
    // The secret travels in the environment, not on a command line others can see in `ps`.
    assert!(
        banner.contains(&format!("REALSTAT_SK={sk} ")) && !banner.contains("--sk"),
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
    let r = try_request(
        &api,
        "POST",
        realstat::api::PATH,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &header),
        ],
        body.as_bytes(),
    )
    .expect("answered");
    assert_eq!(r.status, 200, "{}", r.text());

    // SIGTERM: a clean stop.
    let status = stop(&mut child.0, "TERM");
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

/// Waits up to `timeout` for the child to exit.
fn wait_exit(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} failed");
}

/// Sends SIG`name` and waits up to 30 s for the exit.
fn stop(child: &mut std::process::Child, name: &str) -> std::process::ExitStatus {
    signal(child, name);
    wait_exit(child, Duration::from_secs(30)).unwrap_or_else(|| panic!("did not stop on SIG{name}"))
}

/// Asserts that the child is still running `after` from now (`what` died otherwise).
fn assert_keeps_running(child: &mut std::process::Child, after: Duration, what: &str) {
    assert!(
        wait_exit(child, after).is_none(),
        "{what} died: {:?}",
        child.try_wait()
    );
}

/// `realstat ... 2>&1 | head -1`: the reader of the log pipe leaves, and the service must go on
/// serving and stop cleanly on SIGTERM (it used to panic on the first log line after that, "failed
/// printing to stderr", exit 101).
#[test]
fn a_closed_log_pipe_does_not_stop_the_service() {
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env_remove("REALSTAT_KAFKA_BROKERS")
        .env_remove("REALSTAT_LOG_FORMAT")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demo starts");
    let mut child = KillOnDrop(child);
    // stdout (the banner) closed at once; the log read for one line, then closed.
    drop(child.0.stdout.take());
    let stderr = child.0.stderr.take().expect("stderr");
    let mut first = String::new();
    BufReader::new(stderr)
        .read_line(&mut first)
        .expect("one log line");
    assert!(!first.is_empty(), "the service logged nothing");
    // The reader has left; the service keeps logging into the closed pipe while it runs.
    let secs3 = Duration::from_secs(3);
    assert_keeps_running(&mut child.0, secs3, "the service, with its log pipe,");
    let status = stop(&mut child.0, "TERM");
    assert_eq!(status.code(), Some(0), "{status}");
}

/// `realstat simulate 2>/dev/full`-like: a log nobody reads must not abort the simulator.
#[test]
fn a_closed_log_pipe_does_not_stop_the_simulator() {
    let kafka = MockKafka::start("events", 1).kafka;
    let child = Command::new(BIN)
        .args([
            "simulate",
            "--kafka-brokers",
            kafka.bootstrap_servers(),
            "--topic",
            "events",
            "--rate",
            "200",
        ])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("simulator starts");
    let mut child = KillOnDrop(child);
    drop(child.0.stderr.take());
    let secs3 = Duration::from_secs(3);
    assert_keeps_running(&mut child.0, secs3, "the simulator, with its log pipe,");
    let status = stop(&mut child.0, "INT");
    assert_eq!(status.code(), Some(0), "{status}");
}

/// `docker stop` sends SIGTERM: the simulator flushes and exits 0 rather than being killed.
#[test]
fn the_simulator_stops_cleanly_on_sigterm() {
    let kafka = MockKafka::start("events", 1).kafka;
    let child = Command::new(BIN)
        .args(["simulate", "--kafka-brokers", kafka.bootstrap_servers()])
        .args(["--topic", "events"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("simulator starts");
    let mut child = KillOnDrop(child);
    assert_keeps_running(&mut child.0, Duration::from_secs(1), "the simulator");
    let status = stop(&mut child.0, "TERM");
    assert_eq!(status.code(), Some(0), "{status}");
}

/// Text logs written to a file (or a pipe) carry no ANSI colour codes.
#[test]
fn text_logs_off_a_terminal_have_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("stderr.log");
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--log-format", "text"])
        .env_remove("REALSTAT_KAFKA_BROKERS")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("demo starts");
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .contains("listening")
    {
        assert!(Instant::now() < deadline, "no \"listening\" log line");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = stop(&mut child.0, "TERM");
    assert_eq!(status.code(), Some(0), "{status}");
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    assert!(logs.contains(" INFO "), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in a log file:\n{logs}"
    );
}

/// SIGTERM when the final snapshot cannot be written: exit status 1 and the reason on stderr, so
/// an orchestrator (and the person reading its events) knows the next start replays more.
#[test]
fn sigterm_exits_1_when_the_final_snapshot_fails() {
    let kafka = MockKafka::start("events", 1).kafka;
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        "[[key]]\nak = \"globalaktest\"\nsk = \"testSecretKey123\"\nvdns = \"*\"\n",
    )
    .expect("keys file");
    let snapshots = dir.path().join("data");
    let log_path = dir.path().join("stderr.log");
    let admin = format!("127.0.0.1:{}", free_port());
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", &admin])
        .args([
            "--kafka-brokers",
            kafka.bootstrap_servers(),
            "--topic",
            "events",
        ])
        .arg("--keys-file")
        .arg(&keys)
        .arg("--snapshot-dir")
        .arg(&snapshots)
        .args(["--snapshot-interval", "1h"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("service starts");
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if is_ready(&admin) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The snapshot directory becomes a regular file: no snapshot can be written there.
    let _ = std::fs::remove_dir_all(&snapshots);
    std::fs::write(&snapshots, b"not a directory").expect("file in its place");
    let status = stop(&mut child.0, "TERM");
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    assert_eq!(status.code(), Some(1), "{status}\n{logs}");
    let last = logs.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("realstat: the final snapshot was not written"),
        "last stderr line: {last}\n{logs}"
    );
    assert!(last.contains(&snapshots.display().to_string()), "{last}");
}

/// The demo's iSales callback: the banner prints its URL with a token, and `realstat simulate
/// --callback` (vendor-format pushes, duplicates among them) makes exact numbers appear.
#[test]
fn the_demo_takes_call_results_through_its_callback() {
    let api = format!("127.0.0.1:{}", free_port());
    let child = Command::new(BIN)
        .env("REALSTAT_LISTEN", &api)
        .env(
            "REALSTAT_ADMIN_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env_remove("REALSTAT_KAFKA_BROKERS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let (mut sk, mut url) = (String::new(), String::new());
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("banner line");
        // The first line with the secret is the demo key's.
        if let (Some(rest), true) = (line.split("SK=").nth(1), sk.is_empty()) {
            sk = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        if let Some(rest) = line.trim().strip_prefix("callback") {
            url = rest.trim().to_owned();
            break;
        }
    }
    assert!(url.contains("/isales/callresult/demo-"), "{url}");
    let fed = Command::new(BIN)
        .args(["simulate", "--callback", &url, "--tasks", "1122104920"])
        .args(["--rate", "50", "--duplicates", "0.3", "--max-calls", "30"])
        .output()
        .expect("simulate runs");
    let report = String::from_utf8_lossy(&fed.stderr);
    assert!(
        fed.status.success() && report.contains("records: 30"),
        "{report}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = query_task(&api, &sk, "1122104920");
        if v["resultDesc"]["totalCount"] == "30" {
            break;
        }
        assert!(Instant::now() < deadline, "not exact: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
