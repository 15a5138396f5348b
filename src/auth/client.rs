//! The client side of `auth-v2`: the Authorization value a CC-CMS client sends with a request to
//! one of the API's routes (realstatistic, batch, breakdown, stream).
//!
//! One place for what every client of this repository signs: `realstat query` and
//! `realstat sign`, the tests, the benchmarks and the load examples. [`c2::sign`] stays the
//! algorithm (any header set, checked against the published vectors); this module only decides
//! which headers a request carries and signs, so that no caller spells them out again.

use super::c2;

/// The Content-Type a CC-CMS client sends with a JSON body (and signs).
pub const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// Which headers the signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedHeaders {
    /// `host` alone: the request may then carry any Content-Type and Content-Length. What
    /// `realstat sign` prints for a hand-written curl command, and what a stream's GET signs.
    Host,
    /// `content-length;content-type;host`, the Content-Type being [`JSON_CONTENT_TYPE`]: what
    /// the vendor's clients sign on a POST.
    Json,
}

/// A request as a client will send it: the parts its signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The `Host` header value (`host[:port]`) the request carries.
    pub host: &'a str,
    pub path: &'a str,
    /// The raw query string, without `?`, exactly as sent.
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    pub signed: SignedHeaders,
}

impl<'a> Request<'a> {
    /// A POST of a JSON `body` to `path`, signed over `content-length;content-type;host`.
    pub fn post_json(host: &'a str, path: &'a str, body: &'a [u8]) -> Self {
        Request {
            method: "POST",
            host,
            path,
            query: None,
            body,
            signed: SignedHeaders::Json,
        }
    }

    /// A GET of `path` (with its raw `query`, if any), signed over `host`.
    pub fn get(host: &'a str, path: &'a str, query: Option<&'a str>) -> Self {
        Request {
            method: "GET",
            host,
            path,
            query,
            body: b"",
            signed: SignedHeaders::Host,
        }
    }

    /// `path_and_query` split at its first `?`: the method's usual form (a POST signs the JSON
    /// headers, any other method `host` alone).
    pub fn new(method: &'a str, host: &'a str, path_and_query: &'a str, body: &'a [u8]) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        let signed = if method.eq_ignore_ascii_case("POST") {
            SignedHeaders::Json
        } else {
            SignedHeaders::Host
        };
        Request {
            method,
            host,
            path,
            query,
            body,
            signed,
        }
    }

    /// The same request signed over `host` alone.
    pub fn host_only(self) -> Self {
        Request {
            signed: SignedHeaders::Host,
            ..self
        }
    }

    /// The Content-Type the request must carry for its signature to hold, if one is signed.
    pub fn content_type(&self) -> Option<&'static str> {
        match self.signed {
            SignedHeaders::Host => None,
            SignedHeaders::Json => Some(JSON_CONTENT_TYPE),
        }
    }
}

/// The Authorization value of `request`, signed with `ak`/`sk` at `timestamp`
/// (`yyyy-MM-ddTHH:mm:ssZ`, see [`c2::format_timestamp`] and [`timestamp_now`]).
pub fn authorization(ak: &str, sk: &[u8], timestamp: &str, request: &Request<'_>) -> String {
    let length = request.body.len().to_string();
    let host = ("host", request.host.as_bytes());
    let json = [
        ("content-length", length.as_bytes()),
        ("content-type", JSON_CONTENT_TYPE.as_bytes()),
        host,
    ];
    let headers: &[(&str, &[u8])] = match request.signed {
        SignedHeaders::Host => std::slice::from_ref(&host),
        SignedHeaders::Json => &json,
    };
    c2::sign(
        ak,
        sk,
        timestamp,
        &c2::ClientRequest {
            method: request.method,
            path: request.path,
            raw_query: request.query,
            headers,
            body: request.body,
        },
    )
}

/// Now, as a signature's timestamp.
pub fn timestamp_now() -> String {
    c2::format_timestamp(crate::clock::now_unix())
}

/// The realstatistic request body, fields in the vendor's order: `ccId` (only when given),
/// `vdn`, `taskId` (as a string: it may exceed 64 bits).
pub fn realstatistic_body(cc_id: Option<u16>, vdn: u16, task_id: &str) -> String {
    let task = serde_json::Value::String(task_id.to_owned());
    match cc_id {
        Some(cc) => format!(r#"{{"ccId":{cc},"vdn":{vdn},"taskId":{task}}}"#),
        None => format!(r#"{{"vdn":{vdn},"taskId":{task}}}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{
        authenticate, ClientRequest, Clock, HeaderLookup, KeySet, Keys, SignedParts,
    };

    const TS: &str = "2024-11-25T02:00:00Z";
    const HOST: &str = "10.22.26.181:28080";
    /// The realstatistic path, spelled out: `auth` sits below `api`.
    const PATH: &str = "/rest/cmsapp/v1/openapi/fromisales/realstatistic";

    /// The server accepts exactly what the signer produced, over the headers it says it signs.
    fn verifies(request: &Request<'_>, sent: &[(&str, &[u8])]) -> bool {
        let keys = Keys::new(KeySet::single("ak", "sk"));
        let auth = authorization("ak", b"sk", TS, request);
        let lookup = |name: &str| match sent.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, v)) => HeaderLookup::One(v),
            None => HeaderLookup::Missing,
        };
        authenticate(
            &keys,
            Some(&auth),
            &SignedParts {
                method: request.method,
                path: request.path,
                raw_query: request.query,
                header: &lookup,
                body: request.body,
            },
            Clock {
                now_unix: crate::auth::c2::parse_timestamp(TS).expect("timestamp"),
                allowed_skew_secs: 0,
            },
        )
        .is_ok()
    }

    #[test]
    fn json_posts_sign_length_type_and_host() {
        let body = br#"{"vdn":92,"taskId":"1"}"#;
        let r = Request::post_json(HOST, PATH, body);
        let auth = authorization("ak", b"sk", TS, &r);
        assert!(auth.starts_with(&format!(
            "auth-v2/ak/{TS}/content-length;content-type;host/"
        )));
        let length = body.len().to_string();
        // The same as c2::sign over those headers spelled out.
        let by_hand = c2::sign(
            "ak",
            b"sk",
            TS,
            &ClientRequest {
                method: "POST",
                path: PATH,
                raw_query: None,
                headers: &[
                    ("host", HOST.as_bytes()),
                    ("content-type", JSON_CONTENT_TYPE.as_bytes()),
                    ("content-length", length.as_bytes()),
                ],
                body,
            },
        );
        assert_eq!(auth, by_hand);
        let sent: &[(&str, &[u8])] = &[
            ("Host", HOST.as_bytes()),
            ("Content-Type", JSON_CONTENT_TYPE.as_bytes()),
            ("Content-Length", length.as_bytes()),
        ];
        assert!(verifies(&r, sent));
        assert_eq!(r.content_type(), Some(JSON_CONTENT_TYPE));
        // Another Content-Type breaks it; signed over host alone, it does not.
        let plain: &[(&str, &[u8])] = &[
            ("Host", HOST.as_bytes()),
            ("Content-Type", b"application/json"),
            ("Content-Length", length.as_bytes()),
        ];
        assert!(!verifies(&r, plain));
        assert!(verifies(&r.host_only(), plain));
        assert_eq!(r.host_only().content_type(), None);
    }

    #[test]
    fn gets_sign_host_and_the_query() {
        let path = "/s?vdn=92&taskId=1";
        let r = Request::new("GET", HOST, path, b"");
        assert_eq!(r, Request::get(HOST, "/s", Some("vdn=92&taskId=1")));
        let auth = authorization("ak", b"sk", TS, &r);
        assert!(
            auth.starts_with(&format!("auth-v2/ak/{TS}/host/")),
            "{auth}"
        );
        assert!(verifies(&r, &[("host", HOST.as_bytes())]));
        let other = Request {
            query: Some("vdn=92&taskId=2"),
            ..r
        };
        let lookup = authorization("ak", b"sk", TS, &other);
        assert_ne!(auth, lookup, "the query is signed");
        assert_eq!(
            Request::new("POST", HOST, "/p", b"{}").signed,
            SignedHeaders::Json
        );
    }

    #[test]
    fn realstatistic_bodies() {
        assert_eq!(
            realstatistic_body(Some(89), 92, "1122104910"),
            r#"{"ccId":89,"vdn":92,"taskId":"1122104910"}"#
        );
        assert_eq!(
            realstatistic_body(None, 92, "a\"b"),
            r#"{"vdn":92,"taskId":"a\"b"}"#
        );
    }
}
