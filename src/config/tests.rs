use super::*;
use clap::{Args, Parser};

fn serve_args(argv: &[&str]) -> ServeArgs {
    let mut full = vec!["realstat", "serve"];
    full.extend_from_slice(argv);
    match crate::cli::Cli::try_parse_from(full)
        .expect("parses")
        .command
    {
        Some(crate::cli::Command::Serve(a)) => a,
        other => panic!("not serve: {other:?}"),
    }
}

/// Dotted paths of the schema's leaves (a table of properties and a list count as one leaf).
fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) if prefix != "kafka.properties" => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, v, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_setting_has_a_flag_and_an_environment_variable_and_back() {
    // Fill the optional keys so that they show up.
    let mut s = Settings {
        workers: Some(1),
        tls: Some(TlsSettings {
            cert: "c".into(),
            key: "k".into(),
        }),
        ..Settings::default()
    };
    s.kafka.brokers = Some("b".into());
    s.kafka.dlq_topic = Some("d".into());
    s.auth.keys_file = Some("k".into());
    let mut keys = Vec::new();
    leaves(
        "",
        &serde_json::to_value(&s).expect("serializes"),
        &mut keys,
    );
    keys.sort();

    let cmd = ServeArgs::augment_args(clap::Command::new("serve"));
    let mut ids = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "config" {
            continue;
        }
        let long = arg.get_long().unwrap_or_else(|| panic!("{id} has no flag"));
        // Flags are kebab-case, as documented (README): `--admin-listen`, not `--admin_listen`.
        assert!(
            !long.contains('_') && long.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "{id}: flag --{long} is not kebab-case"
        );
        let env = arg.get_env().map(|e| e.to_string_lossy().to_string());
        assert!(
            env.as_deref().is_some_and(|e| e.starts_with("REALSTAT_")),
            "{id} has no REALSTAT_ environment variable"
        );
        ids.push(id.to_owned());
    }
    ids.sort();
    assert_eq!(keys, ids, "schema keys vs flag ids");
}

#[test]
fn defaults_need_no_source() {
    let s = Settings::load(&serve_args(&[])).expect("valid");
    // No Kafka: the demo, which listens on loopback only unless told otherwise.
    assert_eq!(
        (s.listen.as_str(), s.admin_listen.as_str()),
        (DEMO_LISTEN, DEMO_ADMIN_LISTEN)
    );
    let s = Settings::load(&serve_args(&["--admin-listen", "0.0.0.0:9999"])).expect("valid");
    assert_eq!(
        (s.listen.as_str(), s.admin_listen.as_str()),
        (DEMO_LISTEN, "0.0.0.0:9999")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys.toml");
    let k = keys.to_string_lossy().to_string();
    let s = Settings::load(&serve_args(&[
        "--kafka-brokers",
        "k:9092",
        "--keys-file",
        &k,
    ]))
    .expect("valid");
    assert_eq!(s.listen, "0.0.0.0:8080");
    assert_eq!(s.timezone.time_zone_name(), "Asia/Shanghai");
    assert_eq!(s.kafka.brokers.as_deref(), Some("k:9092"));
    assert_eq!(s.snapshot.interval, Duration::from_secs(30));
}

#[test]
fn file_then_flags_override() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("realstat.toml");
    std::fs::write(
        &path,
        r#"
listen = "127.0.0.1:1000"
timezone = "UTC"
retention_days = 3
[kafka]
brokers = "k:9092"
topic = "from-file"
properties = { "security.protocol" = "SSL", "client.rack" = "r1" }
[auth]
keys_file = "/etc/keys.toml"
allowed_skew = "5m"
trusted_proxies = ["10.0.0.1"]
[snapshot]
interval = "10s"
"#,
    )
    .expect("write");
    let p = path.to_string_lossy().to_string();
    let s = Settings::load(&serve_args(&[
        "--config",
        &p,
        "--topic",
        "from-flag",
        "--kafka-property",
        "security.protocol=SASL_SSL",
        "--trusted-proxy",
        "10.0.0.2",
        "--lockout-window",
        "2m",
    ]))
    .expect("valid");
    assert_eq!(s.listen, "127.0.0.1:1000");
    assert_eq!(s.admin_listen, "0.0.0.0:9090");
    assert_eq!(s.timezone.time_zone_name(), "UTC");
    assert_eq!(s.retention_days, 3);
    assert_eq!(s.kafka.brokers.as_deref(), Some("k:9092"));
    assert_eq!(s.kafka.topic, "from-flag");
    // Properties merge key by key: the flag replaces one, the file's other one stays.
    assert_eq!(
        s.kafka_properties(),
        vec![
            ("client.rack".to_owned(), "r1".to_owned()),
            ("security.protocol".to_owned(), "SASL_SSL".to_owned())
        ]
    );
    assert_eq!(
        s.auth.trusted_proxies,
        vec!["10.0.0.2".parse::<IpAddr>().expect("ip")]
    );
    assert_eq!(s.auth.allowed_skew, Duration::from_secs(300));
    assert_eq!(s.auth.lockout_window, Duration::from_secs(120));
    assert_eq!(s.snapshot.interval, Duration::from_secs(10));
}

#[test]
fn environment_sits_between_file_and_flags() {
    // The only test that sets this variable (the environment is shared by the test threads).
    std::env::set_var("REALSTAT_SNAPSHOT_KEEP", "7");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("realstat.toml");
    std::fs::write(&path, "[snapshot]\nkeep = 5\n").expect("write");
    let p = path.to_string_lossy().to_string();
    let from_env = Settings::load(&serve_args(&["--config", &p])).expect("valid");
    let from_flag =
        Settings::load(&serve_args(&["--config", &p, "--snapshot-keep", "9"])).expect("valid");
    std::env::remove_var("REALSTAT_SNAPSHOT_KEEP");
    let from_file = Settings::load(&serve_args(&["--config", &p])).expect("valid");
    assert_eq!(
        (
            from_file.snapshot.keep,
            from_env.snapshot.keep,
            from_flag.snapshot.keep
        ),
        (5, 7, 9)
    );
}

#[test]
fn the_shipped_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/realstat.toml");
    let s = Settings::load(&serve_args(&["--config", path])).expect("valid example");
    assert_eq!(s.limits.max_header_bytes, 16384);
    assert_eq!(s.snapshot.dir, PathBuf::from("/var/lib/realstat"));
}

#[test]
fn bad_settings_are_refused_with_their_name() {
    let err = |argv: &[&str]| {
        Settings::load(&serve_args(argv))
            .expect_err("invalid")
            .to_string()
    };
    assert!(err(&["--timezone", "Mars/Base"]).contains("timezone"));
    assert!(err(&["--listen", "nowhere"]).contains("listen"));
    assert!(err(&["--kafka-brokers", "k:9092"]).contains("keys_file"));
    assert!(err(&["--max-streams", "0"]).contains("streams.max_open"));
    assert!(err(&["--max-streams-per-key", "0"]).contains("streams.max_per_key"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "lisen = \"typo\"").expect("write");
    let p = path.to_string_lossy().to_string();
    assert!(err(&["--config", &p]).contains("unknown field"));
    std::fs::write(&path, "[snapshot]\ninterval = \"soon\"").expect("write");
    assert!(err(&["--config", &p]).contains("interval"));
    assert!(err(&["--config", "/nonexistent/realstat.toml"]).contains("/nonexistent/realstat.toml"));
    // Bad flag values are refused by the parser, naming the flag.
    let bad = crate::cli::Cli::try_parse_from(["realstat", "serve", "--snapshot-interval", "soon"]);
    assert!(bad
        .expect_err("refused")
        .to_string()
        .contains("--snapshot-interval"));
}

#[test]
fn the_readme_lists_every_setting() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let cmd = ServeArgs::augment_args(clap::Command::new("serve"));
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "config" {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().to_string())
            .unwrap_or_default();
        let long = format!("`--{}", arg.get_long().unwrap_or_default());
        for needle in [format!("`{id}`"), format!("`{env}`"), long] {
            assert!(
                readme.contains(&needle),
                "README.md does not list {needle} ({id})"
            );
        }
    }
}
