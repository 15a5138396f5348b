//! The configuration's layers as an operator meets them: through the command line, the
//! environment and the config file, and the schema this binary prints.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches};

use super::*;
use crate::config::{TlsSettings, DEMO_ADMIN_LISTEN, DEMO_LISTEN};

/// `realstat serve ARGV...` as `main` reads it; the error as the operator would read it, from
/// the parser or from the configuration.
fn load(argv: &[&str]) -> Result<Settings, String> {
    let mut full = vec!["realstat", "serve"];
    full.extend_from_slice(argv);
    let matches = Cli::command()
        .try_get_matches_from(full)
        .map_err(|e| e.to_string())?;
    let sub = matches.subcommand_matches("serve").expect("serve");
    let args = ServeArgs::from_arg_matches(sub).expect("serve args");
    Settings::load(args.config.as_deref(), &args.overrides(sub)).map_err(|e| e.to_string())
}

/// Dotted paths of the schema's leaves (a table of properties and a list count as one leaf).
fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) if prefix != "kafka.properties" && prefix != "timezones" => {
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
    s.callback.listen = Some("l".into());
    s.callback.tokens_file = Some("t".into());
    let mut keys = Vec::new();
    leaves(
        "",
        &serde_json::to_value(&s).expect("serializes"),
        &mut keys,
    );
    keys.sort();

    // The file's keys (serde) and the flags' ids (clap) name the same settings: an id that
    // differs from its field's path would make that flag or variable silently ignored.
    let cmd = Settings::augment_args(clap::Command::new("serve"));
    let mut ids = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
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
    let s = load(&[]).expect("valid");
    // No Kafka: the demo, which listens on loopback only unless told otherwise.
    assert_eq!(
        (s.listen.as_str(), s.admin_listen.as_str()),
        (DEMO_LISTEN, DEMO_ADMIN_LISTEN)
    );
    let s = load(&["--admin-listen", "0.0.0.0:9999"]).expect("valid");
    assert_eq!(
        (s.listen.as_str(), s.admin_listen.as_str()),
        (DEMO_LISTEN, "0.0.0.0:9999")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys.toml");
    let k = keys.to_string_lossy().to_string();
    let s = load(&["--kafka-brokers", "k:9092", "--keys-file", &k]).expect("valid");
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
    let s = load(&[
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
    ])
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
    let from_env = load(&["--config", &p]).expect("valid");
    let from_flag = load(&["--config", &p, "--snapshot-keep", "9"]).expect("valid");
    std::env::remove_var("REALSTAT_SNAPSHOT_KEEP");
    let from_file = load(&["--config", &p]).expect("valid");
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
fn tenant_time_zones_merge_tenant_by_tenant_across_file_environment_and_flags() {
    // The only test that sets this variable (the environment is shared by the test threads).
    std::env::set_var("REALSTAT_TIMEZONES", "7:92=Europe/Berlin,8=UTC");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("realstat.toml");
    std::fs::write(
        &path,
        "[timezones]\n\"89\" = \"America/New_York\"\n\"8\" = \"Asia/Tokyo\"\n",
    )
    .expect("write");
    let p = path.to_string_lossy().to_string();
    let from_env = load(&["--config", &p]);
    let from_flag = load(&["--config", &p, "--timezone-for", "89=Europe/London"]);
    std::env::remove_var("REALSTAT_TIMEZONES");
    let zones = from_env.expect("valid").time_zones();
    let name = |cc, vdn| zones.of(cc, vdn).time_zone_name().to_owned();
    assert_eq!(name(89, 1), "America/New_York", "the file's tenant stays");
    assert_eq!(name(8, 1), "UTC", "the environment beats the file");
    assert_eq!(name(7, 92), "Europe/Berlin");
    assert_eq!(name(7, 93), "Asia/Shanghai", "the default zone");
    // A flag replaces the environment's list (as for every list setting) and merges with the
    // file tenant by tenant.
    let zones = from_flag.expect("valid").time_zones();
    let name = |cc, vdn| zones.of(cc, vdn).time_zone_name().to_owned();
    assert_eq!(name(89, 1), "Europe/London", "the flag beats the file");
    assert_eq!(name(8, 1), "Asia/Tokyo");
    let err = |argv: &[&str]| load(argv).expect_err("invalid");
    assert!(err(&["--timezone-for", "89=Mars/Base"]).contains("--timezone-for"));
    assert!(err(&["--timezone-for", "0=UTC"]).contains("--timezone-for"));
    assert!(err(&["--timezone-for", "UTC"]).contains("--timezone-for"));
    std::fs::write(&path, "[timezones]\n\"89:0\" = \"UTC\"\n").expect("write");
    assert!(err(&["--config", &p]).contains("timezones"));
    let s = load(&["--history-days", "40"]).expect("valid");
    assert_eq!((s.history_days, s.fold_policy().history_days), (40, 40));
}

#[test]
fn the_shipped_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/realstat.toml");
    let s = load(&["--config", path]).expect("valid example");
    assert_eq!(s.limits.max_header_bytes, 16384);
    assert_eq!(s.snapshot.dir, PathBuf::from("/var/lib/realstat"));
}

#[test]
fn bad_settings_are_refused_with_their_name() {
    let err = |argv: &[&str]| load(argv).expect_err("invalid");
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
    assert!(err(&["--snapshot-interval", "soon"]).contains("--snapshot-interval"));
    // In the file, a zone is read when the settings are.
    std::fs::write(&path, "timezone = \"Mars/Base\"").expect("write");
    assert!(err(&["--config", &p]).contains("timezone"));
}

/// Where the README's generated settings table starts and ends.
const TABLE_START: &str =
    "<!-- settings: generated by `realstat config schema --format markdown` -->\n";
const TABLE_END: &str = "<!-- end of settings -->";

#[test]
fn the_readme_table_is_the_schema() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = readme
        .split_once(TABLE_START)
        .and_then(|(_, rest)| rest.split_once(TABLE_END))
        .map(|(table, _)| table)
        .expect("README.md has the settings table between its markers");
    assert_eq!(
        table,
        schema::markdown(),
        "README.md's settings table differs from the schema: paste `realstat config schema --format markdown`"
    );
}

#[test]
fn the_schema_describes_every_setting() {
    let settings = schema::settings();
    for s in &settings {
        assert!(!s.description.is_empty(), "{} has no description", s.key);
        assert!(
            ["address", "duration", "integer", "path", "zone", "ip", "string", "format", "table"]
                .contains(&s.kind.as_str()),
            "{}: unknown type {}",
            s.key,
            s.kind
        );
    }
    let by_key = |k: &str| settings.iter().find(|s| s.key == k).expect(k).clone();
    let keep = by_key("snapshot.keep");
    assert_eq!(
        (keep.env.as_str(), keep.flag.as_str(), keep.kind.as_str()),
        ("REALSTAT_SNAPSHOT_KEEP", "--snapshot-keep", "integer")
    );
    assert_eq!(keep.default.as_deref(), Some("3"));
    assert_eq!(by_key("snapshot.interval").default.as_deref(), Some("30s"));
    assert_eq!(by_key("kafka.brokers").default, None);
    assert!(by_key("auth.trusted_proxies").list);
    assert_eq!(by_key("kafka.properties").kind, "table");
    // The schema's defaults are the defaults the service runs with.
    let defaults = Settings::default();
    assert_eq!(defaults.snapshot.keep, 3);
    assert_eq!(defaults.snapshot.interval, Duration::from_secs(30));

    let full = schema::schema();
    assert_eq!(
        full.keys_file.fields,
        ["ak", "sk", "sk_env", "vdns", "cc_ids"]
    );
    let serve = &full.commands["serve"];
    assert!(serve.flags.iter().any(|f| f == "--snapshot-keep"));
    assert!(serve.env.iter().any(|e| e == "REALSTAT_CONFIG"));
    assert!(full.commands.contains_key("config schema"));
}

#[test]
fn defaults_ignore_the_environment() {
    // A variable no other test sets: the defaults must not read it.
    std::env::set_var("REALSTAT_MAX_STREAMS_PER_KEY", "42");
    let defaults = Settings::default();
    std::env::remove_var("REALSTAT_MAX_STREAMS_PER_KEY");
    assert_eq!(defaults.streams.max_per_key, 100);
}

#[test]
fn metrics_list_names_the_admin_routes_and_every_metric() {
    let admin = schema::admin();
    for route in ["/metrics", "/health/live", "/health/ready"] {
        assert!(admin.routes.contains(&route), "{route}");
    }
    let names: Vec<&str> = admin.metrics.iter().map(|m| m.name).collect();
    for name in [
        "realstat_events_consumed_total",
        "realstat_requests_total",
        "realstat_ready",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}
