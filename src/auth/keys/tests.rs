use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<KeySet, KeysError> {
    KeySet::parse(text, &no_env)
}

fn problem(text: &str) -> (KeyRef, KeyProblem) {
    match parse(text) {
        Err(KeysError::Key { key, problem }) => (key, problem),
        other => panic!("expected a key problem, got {other:?}"),
    }
}

const VALID: &str = r#"
    [[key]]
    ak = "globalaktest"
    sk = "testSecretKey123"
    vdns = [92, 93]

    [[key]]
    ak = "ops"
    sk = "opsSecret"
    vdns = "*"
    cc_ids = [89, 1, 89]

    [[key]]
    ak = "everything"
    sk = "allSecret"
    vdns = "*"
    cc_ids = "*"
"#;

#[test]
fn parses_a_valid_file() {
    let set = parse(VALID).expect("valid");
    assert_eq!(set.len(), 3);
    let g = set.get("globalaktest").expect("present");
    assert_eq!(g.secret.expose(), b"testSecretKey123");
    assert_eq!(g.vdns, Scope::Only(vec![92, 93]));
    assert_eq!(g.cc_ids, Scope::All);
    let ops = set.get("ops").expect("present");
    assert_eq!(ops.vdns, Scope::All);
    assert_eq!(ops.cc_ids, Scope::Only(vec![1, 89]));
    assert!(set.get("nobody").is_none());
    let mut aks: Vec<&str> = set.aks().collect();
    aks.sort_unstable();
    assert_eq!(aks, ["everything", "globalaktest", "ops"]);
}

#[test]
fn may_read() {
    let set = parse(VALID).expect("valid");
    let g = set.get("globalaktest").expect("present");
    assert!(g.may_read(89, 92));
    assert!(g.may_read(65535, 93));
    assert!(!g.may_read(89, 94));
    let ops = set.get("ops").expect("present");
    assert!(ops.may_read(89, 5000));
    assert!(ops.may_read(1, 1));
    assert!(!ops.may_read(2, 1));
    let all = set.get("everything").expect("present");
    assert!(all.may_read(u16::MAX, u16::MAX));
    let single = KeySet::single("demo", "demoSecret");
    let d = single.get("demo").expect("present");
    assert!(d.may_read(7, 4999));
    assert_eq!(d.secret.expose(), b"demoSecret");
}

#[test]
fn sk_env() {
    let text = r#"
        [[key]]
        ak = "fromenv"
        sk_env = "REALSTAT_TEST_SK"
        vdns = [1]
    "#;
    let env = |name: &str| (name == "REALSTAT_TEST_SK").then(|| "envSecret".to_owned());
    let set = KeySet::parse(text, &env).expect("valid");
    assert_eq!(
        set.get("fromenv").expect("present").secret.expose(),
        b"envSecret"
    );

    let (key, p) = problem(text);
    assert_eq!(key.index, 1);
    assert_eq!(key.ak.as_deref(), Some("fromenv"));
    assert_eq!(p, KeyProblem::SkEnvUnset("REALSTAT_TEST_SK".into()));

    let empty = |_: &str| Some(String::new());
    match KeySet::parse(text, &empty) {
        Err(KeysError::Key { problem, .. }) => {
            assert_eq!(problem, KeyProblem::SkEnvEmpty("REALSTAT_TEST_SK".into()))
        }
        other => panic!("{other:?}"),
    }
}

fn one_key(body: &str) -> String {
    format!("[[key]]\nak = \"k1\"\n{body}\n")
}

#[test]
fn validation_errors() {
    let cases: &[(&str, KeyProblem)] = &[
        ("vdns = [1]", KeyProblem::NoSk),
        (
            "sk = \"s\"\nsk_env = \"X\"\nvdns = [1]",
            KeyProblem::SkAndSkEnv,
        ),
        ("sk = \"\"\nvdns = [1]", KeyProblem::EmptySk),
        ("sk = 1234567\nvdns = [1]", KeyProblem::SkNotString),
        (
            "sk = \"s\"\nvdns = [0]",
            KeyProblem::OutOfRange {
                field: "vdns",
                value: 0,
                min: 1,
                max: 5000,
            },
        ),
        (
            "sk = \"s\"\nvdns = [5001]",
            KeyProblem::OutOfRange {
                field: "vdns",
                value: 5001,
                min: 1,
                max: 5000,
            },
        ),
        (
            "sk = \"s\"\nvdns = [1]\ncc_ids = [65536]",
            KeyProblem::OutOfRange {
                field: "cc_ids",
                value: 65536,
                min: 1,
                max: 65535,
            },
        ),
        (
            "sk = \"s\"\nvdns = [1]\ncc_ids = [0]",
            KeyProblem::OutOfRange {
                field: "cc_ids",
                value: 0,
                min: 1,
                max: 65535,
            },
        ),
        (
            "sk = \"s\"\nvdns = \"all\"",
            KeyProblem::BadScope { field: "vdns" },
        ),
        (
            "sk = \"s\"\nvdns = []",
            KeyProblem::BadScope { field: "vdns" },
        ),
        (
            "sk = \"s\"\nvdns = [1.5]",
            KeyProblem::BadScope { field: "vdns" },
        ),
        (
            "sk = \"s\"\nvdns = 7",
            KeyProblem::BadScope { field: "vdns" },
        ),
        (
            "sk = \"s\"\nvdns = [1]\ncc_ids = [\"89\"]",
            KeyProblem::BadScope { field: "cc_ids" },
        ),
    ];
    for (body, expected) in cases {
        let (key, p) = problem(&one_key(body));
        assert_eq!(&p, expected, "{body}");
        assert_eq!(
            key,
            KeyRef {
                index: 1,
                ak: Some("k1".into())
            }
        );
    }

    // Deserializer-level problems: unknown field, missing field, wrong type.
    for body in [
        "sk = \"s\"\nvdns = [1]\nvdn = [2]",
        "sk = \"s\"",
        "sk_env = 5\nvdns = [1]",
    ] {
        let (_, p) = problem(&one_key(body));
        assert!(matches!(p, KeyProblem::Field(_)), "{body}: {p:?}");
    }

    // Which key: the second one, by index and AK.
    let text = "[[key]]\nak = \"a\"\nsk = \"s\"\nvdns = [1]\n\
                [[key]]\nak = \"a\"\nsk = \"t\"\nvdns = [1]\n";
    let (key, p) = problem(text);
    assert_eq!(
        key,
        KeyRef {
            index: 2,
            ak: Some("a".into())
        }
    );
    assert_eq!(p, KeyProblem::DuplicateAk { first: 1 });
    let shown = parse(text).expect_err("dup").to_string();
    assert!(shown.contains("#2") && shown.contains("\"a\""), "{shown}");

    let bad_ak = "[[key]]\nak = \"a/b\"\nsk = \"s\"\nvdns = [1]\n";
    assert_eq!(problem(bad_ak).1, KeyProblem::BadAk);
    let empty_ak = "[[key]]\nak = \"\"\nsk = \"s\"\nvdns = [1]\n";
    assert_eq!(problem(empty_ak).1, KeyProblem::BadAk);
}

#[test]
fn file_level_errors() {
    assert!(matches!(parse(""), Err(KeysError::NoKeys)));
    assert!(matches!(parse("key = []"), Err(KeysError::NoKeys)));
    assert!(matches!(parse("key = 3"), Err(KeysError::Structure(_))));
    assert!(matches!(
        parse("[other]\nx = 1\n"),
        Err(KeysError::Structure(_))
    ));
    assert!(matches!(
        parse("[[key]]\nak = \"x\"\nsk = \"unterminated\n"),
        Err(KeysError::Syntax { line: 3, .. })
    ));
    let missing = KeySet::load(Path::new("/nonexistent/realstat-keys.toml"));
    assert!(matches!(missing, Err(KeysError::Io { .. })));
}

#[test]
fn errors_never_show_the_secret() {
    let secret = "Sup3rS3cretValue";
    let texts = [
        format!("[[key]]\nak = \"k\"\nsk = \"{secret}\"\nvdns = [0]\n"),
        format!("[[key]]\nak = \"k\"\nsk = \"{secret}\"\nsk_env = \"E\"\nvdns = [1]\n"),
        format!("[[key]]\nak = \"k\"\nsk = \"{secret}\"\nvdns = [1]\nextra = 1\n"),
        format!("[[key]]\nak = \"k\"\nsk = \"{secret}\nvdns = [1]\n"),
        format!("[[key]]\nak = \"k\"\nsk = \"{secret}\" junk\nvdns = [1]\n"),
        "[[key]]\nak = \"k\"\nsk = 98765432123\nvdns = [1]\n".to_owned(),
        format!("[[key]]\nak = \"k\"\nsk = [\"{secret}\"]\nvdns = [1]\n"),
    ];
    for text in &texts {
        let e = parse(text).expect_err("invalid");
        let shown = format!("{e} / {e:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains("98765432123"), "{shown}");
    }
}

#[test]
fn debug_never_shows_the_secret() {
    let set = KeySet::single("demo", "VerySecretKey");
    let entry = set.get("demo").expect("present");
    for shown in [
        format!("{entry:?}"),
        format!("{:?}", entry.secret),
        format!("{}", entry.secret),
        format!("{set:?}"),
        format!("{:?}", Keys::new(KeySet::single("x", "VerySecretKey"))),
    ] {
        assert!(!shown.contains("VerySecretKey"), "{shown}");
    }
    assert!(format!("{entry:?}").contains("[redacted]"));
    assert_eq!(entry.secret.to_string(), "[redacted]");
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write keys file");
}

#[test]
fn reload_keeps_old_keys_on_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.toml");
    write(&path, VALID);
    let keys = Keys::new(KeySet::load(&path).expect("valid"));
    assert_eq!(keys.len(), 3);
    assert!(!keys.is_empty());

    write(&path, "[[key]]\nak = \"new\"\nvdns = [1]\n");
    assert!(keys.reload_from(&path).is_err());
    assert_eq!(keys.len(), 3);
    assert!(keys.lookup("globalaktest").is_some());
    assert!(keys.lookup("new").is_none());

    write(&path, "[[key]]\nak = \"new\"\nsk = \"n\"\nvdns = [1]\n");
    assert_eq!(keys.reload_from(&path).expect("valid"), 1);
    assert!(keys.lookup("globalaktest").is_none());
    assert!(keys.lookup("new").is_some());

    // Clones share the live set.
    let clone = keys.clone();
    clone.replace(KeySet::single("other", "o"));
    assert!(keys.lookup("other").is_some());
    assert_eq!(keys.current().len(), 1);
}

async fn wait_for(keys: &Keys, ak: &str, present: bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if keys.lookup(ak).is_some() == present {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn reloader_picks_up_a_rewritten_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.toml");
    write(&path, "[[key]]\nak = \"first\"\nsk = \"one\"\nvdns = [1]\n");
    let keys = Keys::new(KeySet::load(&path).expect("valid"));
    let (shutdown, _metrics, task) = start_reloader(&keys, &path);

    // Different lengths each time, so the change shows even where mtime is coarse.
    write(
        &path,
        "[[key]]\nak = \"second\"\nsk = \"two-two\"\nvdns = \"*\"\n",
    );
    assert!(wait_for(&keys, "second", true).await, "new key picked up");
    assert!(keys.lookup("first").is_none());

    // A broken rewrite is logged and ignored.
    write(&path, "[[key]]\nak = \"third\"\n");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(keys.lookup("second").is_some());
    assert!(keys.lookup("third").is_none());

    // A deleted file keeps the keys too; its return is picked up.
    std::fs::remove_file(&path).expect("remove");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(keys.lookup("second").is_some());
    write(
        &path,
        "[[key]]\nak = \"fourth\"\nsk = \"four\"\nvdns = [4]\n",
    );
    assert!(
        wait_for(&keys, "fourth", true).await,
        "recreated file picked up"
    );

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("reloader stops on shutdown")
        .expect("reloader did not panic");
}

/// Kubernetes-style rewrite: same length, same modification time (secret volumes keep the
/// mtime, and a rotated secret of the same length is the common case). Only the bytes differ.
#[tokio::test]
async fn reloader_picks_up_a_rewrite_of_same_size_and_mtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys.toml");
    let old = "[[key]]\nak = \"rotate\"\nsk = \"secret-AAAA\"\nvdns = [1]\n";
    let new = "[[key]]\nak = \"rotate\"\nsk = \"secret-BBBB\"\nvdns = [1]\n";
    assert_eq!(old.len(), new.len());
    write(&path, old);
    let mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let keys = Keys::new(KeySet::load(&path).expect("valid"));
    let (shutdown, metrics, task) = start_reloader(&keys, &path);
    // Let the reloader take its first look, then rewrite in place and put the time back.
    tokio::time::sleep(Duration::from_millis(100)).await;
    write(&path, new);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(mtime))
        .expect("mtime restored");
    let meta = std::fs::metadata(&path).expect("metadata");
    assert_eq!(
        (meta.len(), meta.modified().ok()),
        (old.len() as u64, Some(mtime))
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let secret = |k: &Keys| k.lookup("rotate").map(|e| e.secret.expose().to_vec());
    // The reload is counted just after the swap: wait for both.
    let counted = |m: &Metrics| {
        m.render()
            .contains("realstat_keys_reloads_total{result=\"ok\"} 1")
    };
    while secret(&keys).as_deref() != Some(b"secret-BBBB".as_slice()) || !counted(&metrics) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rewritten key was not picked up: {}",
            metrics.render()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(metrics.render().contains("realstat_keys_loaded 1"));
    shutdown.trigger();
    task.await.expect("reloader did not panic");
}

/// A reloader of `keys` from `path` polling every 20 ms, with its stop signal and metrics.
fn start_reloader(
    keys: &Keys,
    path: &Path,
) -> (Shutdown, Arc<Metrics>, tokio::task::JoinHandle<()>) {
    let shutdown = Shutdown::new();
    let metrics = Arc::new(Metrics::new());
    let task = spawn_reloader(
        keys.clone(),
        path.to_owned(),
        Duration::from_millis(20),
        shutdown.clone(),
        metrics.clone(),
    );
    (shutdown, metrics, task)
}
