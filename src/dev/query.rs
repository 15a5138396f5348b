//! `realstat query`: one signed realstatistic request over HTTP or HTTPS, its answer printed.
//!
//! The URL is the service's base: `http://host:port` or `https://host[:port]`, optionally with a
//! base path under which a gateway serves the API (`https://gw.example.com/cc`); the API path is
//! appended to it. The request signs exactly what is sent: that path and the URL's authority as
//! the `Host` header. The HTTP client is ureq on rustls (ring), verifying the server against
//! Mozilla's roots, the `--ca-cert` roots instead, or not at all with `--insecure`.

use std::process::ExitCode;
use std::time::Duration;

use crate::auth::client;
use crate::cli::QueryArgs;
use crate::result_code::ResultCode;
use crate::telemetry;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Where a request goes: `scheme://authority` + `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    /// `host[:port]` as written in the URL; also the `Host` header, which is signed.
    pub authority: String,
    /// The base path (without a trailing slash) followed by the API path.
    pub path: String,
}

impl Target {
    /// Parses the `--url` value: `http://` or `https://`, an authority, an optional base path;
    /// no user info, query or fragment.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!(
                "{url}: the URL must start with http:// or https://"
            ));
        };
        let (authority, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(format!("{url}: no host"));
        }
        if authority.contains('@') {
            return Err(format!("{url}: user info is not supported"));
        }
        if rest.contains(['?', '#']) {
            return Err(format!(
                "{url}: a query or fragment is not supported (the API path is appended)"
            ));
        }
        Ok(Target {
            https,
            authority: authority.to_owned(),
            path: format!("{}{}", base.trim_end_matches('/'), crate::api::PATH),
        })
    }

    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.path)
    }
}

/// Signs and sends one realstatistic request, prints the answer on stdout. Exit status 0 only
/// for HTTP 200 with resultCode `0100000`; any other answer is printed too, and its status and
/// code are named on stderr.
pub fn query(args: QueryArgs) -> Result<ExitCode, String> {
    let target = Target::parse(&args.url)?;
    let r = &args.request;
    let body = client::realstatistic_body(r.cc_id, r.vdn, &r.task_id);
    let request = client::Request::post_json(&target.authority, &target.path, body.as_bytes());
    let authorization =
        client::authorization(&r.ak, r.sk.as_bytes(), &client::timestamp_now(), &request);
    let url = target.url();
    let failed = |e: ureq::Error| format!("request to {url} failed: {e}");
    let mut response = agent(&args)?
        .post(&url)
        .header("Host", &target.authority)
        .header("Content-Type", client::JSON_CONTENT_TYPE)
        .header("Authorization", &authorization)
        .send(body.as_bytes())
        .map_err(failed)?;
    let status = response.status().as_u16();
    let bytes = response.body_mut().read_to_vec().map_err(failed)?;
    let (text, code) = describe(&bytes);
    telemetry::out(text);
    // The answer that counts as success: HTTP 200 with the success resultCode.
    if status == 200 && code.as_deref().and_then(ResultCode::parse) == Some(ResultCode::Success) {
        return Ok(ExitCode::SUCCESS);
    }
    let code = code.unwrap_or_else(|| "none".to_owned());
    telemetry::err(format_args!("HTTP {status}, resultCode {code}"));
    Ok(ExitCode::FAILURE)
}

/// The HTTP client: errors are answers (the status is judged here), no redirects (a signed
/// request is for one URL), TLS as asked.
fn agent(args: &QueryArgs) -> Result<ureq::Agent, String> {
    use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder().disable_verification(args.insecure);
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path).map_err(|e| format!("--ca-cert {}: {e}", path.display()))?;
        let mut roots = Vec::new();
        for item in parse_pem(&pem) {
            match item {
                Ok(PemItem::Certificate(c)) => roots.push(c),
                Ok(_) => {}
                Err(e) => return Err(format!("--ca-cert {}: {e}", path.display())),
            }
        }
        if roots.is_empty() {
            return Err(format!(
                "--ca-cert {}: no certificate in it",
                path.display()
            ));
        }
        tls = tls.root_certs(RootCerts::new_with_certs(&roots));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(TIMEOUT))
        .tls_config(tls.build())
        .build();
    Ok(config.into())
}

/// The body to print (pretty JSON when it is JSON) and its resultCode, if any.
fn describe(body: &[u8]) -> (String, Option<String>) {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            let code = v["resultCode"].as_str().map(str::to_owned);
            let text = serde_json::to_string_pretty(&v)
                .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
            (text, code)
        }
        Err(_) => (String::from_utf8_lossy(body).into_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PATH;

    #[test]
    fn urls_with_and_without_a_base_path() {
        let t = Target::parse("http://127.0.0.1:8080").expect("valid");
        assert_eq!(
            t,
            Target {
                https: false,
                authority: "127.0.0.1:8080".into(),
                path: PATH.into()
            }
        );
        assert_eq!(t.url(), format!("http://127.0.0.1:8080{PATH}"));
        let t = Target::parse("https://gw.example.com/cc/api/").expect("valid");
        assert!(t.https);
        assert_eq!(t.authority, "gw.example.com");
        assert_eq!(t.path, format!("/cc/api{PATH}"));
        assert_eq!(
            Target::parse("http://[::1]:9/").expect("valid").authority,
            "[::1]:9"
        );
        assert_eq!(Target::parse("https://h/").expect("valid").path, PATH);
    }

    #[test]
    fn urls_that_cannot_be_used() {
        for url in [
            "127.0.0.1:8080",
            "ftp://h",
            "http://",
            "https:///path",
            "http://user:pw@h",
            "http://h/p?x=1",
            "http://h#f",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn describe_finds_the_result_code() {
        let (text, code) = describe(br#"{"resultCode":"0100002","resultDesc":"x"}"#);
        assert_eq!(code.as_deref(), Some("0100002"));
        assert!(text.contains("\n"), "pretty-printed: {text}");
        assert_eq!(describe(b"not json"), ("not json".to_owned(), None));
        assert_eq!(describe(br#"{"a":1}"#).1, None);
    }
}
