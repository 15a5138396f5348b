//! HTTPS round trip with a certificate generated in the test, over TLS 1.3 and TLS 1.2.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

use crate::support::*;

fn https_post(
    addr: &str,
    roots: &rustls::RootCertStore,
    version: &'static rustls::SupportedProtocolVersion,
    request: &[u8],
) -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .expect("versions")
    .with_root_certificates(roots.clone())
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let sock = std::net::TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(request).expect("write");
    let mut out = Vec::new();
    // The server closes after the answer (Connection: close); a TLS close_notify or EOF ends it.
    let _ = tls.read_to_end(&mut out);
    out
}

#[actix_web::test]
async fn https_round_trip() {
    let app = TestApp::builder().tls("localhost").spawn().await;
    let generated = app.certificate.as_ref().expect("a certificate");

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(generated.cert.der().to_vec()))
        .expect("root");
    let body = r#"{"vdn":92,"taskId":"1"}"#;
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let request = signed_raw(&app.api, body.as_bytes(), "");
        let api = app.api.clone();
        let roots = roots.clone();
        let raw = tokio::task::spawn_blocking(move || https_post(&api, &roots, version, &request))
            .await
            .expect("join");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{version:?}: {text}");
        assert!(text.contains(r#""resultCode":"0100000""#), "{text}");
    }

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let api = app.api.clone();
    let plain = tokio::task::spawn_blocking(move || try_request(&api, "POST", PATH, &[], b"{}"))
        .await
        .expect("join");
    assert!(plain.map(|r| r.status).unwrap_or(0) != 200);
    app.stop().await;
}
