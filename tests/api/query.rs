//! `realstat query` (the binary) against the real application: HTTPS with a private CA, a URL
//! with a path, and the exit status of error answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_realstat");

/// Runs `realstat query` for task 1 of VDN 92 with `key` and `extra` arguments, off the async
/// runtime.
async fn query(url: &str, key: (&str, &str), extra: &[&str]) -> Output {
    let vdn = if extra.contains(&"--vdn") {
        &[][..]
    } else {
        &["--vdn", "92"][..]
    };
    let mut cmd = Command::new(BIN);
    cmd.args(["query", "--url", url, "--ak", key.0, "--task-id", "1"])
        .args(vdn)
        .args(extra)
        .env("REALSTAT_SK", key.1)
        .env_remove("REALSTAT_AK");
    tokio::task::spawn_blocking(move || cmd.output().expect("query runs"))
        .await
        .expect("join")
}

fn code_of(out: &Output) -> String {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["resultCode"].as_str().unwrap_or("<none>").to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[actix_web::test]
async fn query_speaks_https_with_a_private_ca_or_insecure() {
    let app = TestApp::builder().tls("127.0.0.1").spawn().await;
    let url = format!("https://{}", app.api);
    let ca = app.cert_path().display().to_string();

    let out = query(&url, (AK, SK), &["--ca-cert", &ca]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(code_of(&out), "0100000");

    // The certificate is nobody's: refused without the CA, accepted with --insecure.
    let out = query(&url, (AK, SK), &[]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&url), "{}", stderr(&out));
    let out = query(&url, (AK, SK), &["--insecure"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(code_of(&out), "0100000");
    app.stop().await;
}

#[actix_web::test]
async fn query_exits_non_zero_on_every_error_answer() {
    let app = spawn_app().await;
    let url = format!("http://{}", app.api);

    let out = query(&url, (AK, SK), &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(code_of(&out), "0100000");
    // A trailing slash is an empty base path.
    let out = query(&format!("{url}/"), (AK, SK), &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));

    // HTTP 200 with an error code: 0100002 (vdn out of range), 0101003 (not this key's VDN).
    let out = query(&url, (AK, SK), &["--vdn", "0"]).await;
    assert_eq!(code_of(&out), "0100002");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("0100002"), "{}", stderr(&out));
    let out = query(&url, (SCOPED_AK, SCOPED_SK), &["--vdn", "93"]).await;
    assert_eq!(code_of(&out), "0101003");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // HTTP 401.
    let out = query(&url, (AK, "wrong"), &[]).await;
    assert_eq!(code_of(&out), "0100001");
    assert_eq!(out.status.code(), Some(1));
    // A path the service does not serve: its 404, not a parse error of the URL.
    let out = query(&format!("{url}/gateway"), (AK, SK), &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));
    app.stop().await;
}

/// Behind a gateway that serves the API under a path: the request goes to the base path plus
/// the API path, and the signature covers exactly that path and the Host sent.
#[actix_web::test]
async fn query_appends_the_api_path_to_a_base_path_and_signs_it() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let gateway = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(sock.try_clone().expect("clone"));
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("head line");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let length: usize = head
            .iter()
            .find_map(|h| {
                h.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_owned())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).expect("body");
        let answer = r#"{"resultCode":"0100000","resultDesc":{}}"#;
        let _ = write!(
            sock,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        );
        (head, body)
    });
    let out = query(
        &format!("http://{addr}/cc/gw/"),
        (AK, SK),
        &["--cc-id", "89"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let (head, body) = gateway.join().expect("gateway");
    assert_eq!(head[0], format!("POST /cc/gw{PATH} HTTP/1.1"));
    assert_eq!(body, br#"{"ccId":89,"vdn":92,"taskId":"1"}"#);

    // The signature verifies for that path and the Host header as sent.
    let header = |name: &str| -> Vec<&str> {
        head.iter()
            .skip(1)
            .filter_map(|h| h.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    };
    assert_eq!(header("host"), vec![addr.as_str()]);
    let keys = realstat::auth::Keys::new(realstat::auth::KeySet::single(AK, SK));
    let lookup = |name: &str| match header(name).as_slice() {
        [] => realstat::auth::HeaderLookup::Missing,
        [one] => realstat::auth::HeaderLookup::One(one.as_bytes()),
        _ => realstat::auth::HeaderLookup::Many,
    };
    let path = format!("/cc/gw{PATH}");
    let authorization = header("authorization");
    let verified = realstat::auth::authenticate(
        &keys,
        authorization.first().copied(),
        &realstat::auth::SignedParts {
            method: "POST",
            path: &path,
            raw_query: None,
            header: &lookup,
            body: &body,
        },
        realstat::auth::Clock {
            now_unix: now_ms() / 1000,
            allowed_skew_secs: 900,
        },
    );
    assert!(verified.is_ok(), "{verified:?}");
}
