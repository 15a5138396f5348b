//! The checks the fuzz targets run, one public function per target (docs/fuzzing.md).
//!
//! Each function takes the raw fuzzer input, drives realstat's code with it and panics when
//! realstat panics or when a property it promises does not hold. The fuzz targets in
//! `fuzz_targets/` are one-line wrappers; `tests/fuzz_regressions.rs` compiles this same file (it
//! needs nothing but realstat and its own dependencies serde, serde_json and std) to replay the
//! seed corpus and every past finding under plain `cargo test`.
//!
//! Input formats are plain text so that seeds are readable and easy to write by hand:
//! - `request_body`: the whole input is a request body; if it holds a newline, the bytes before
//!   the first one are also a Content-Type value and the bytes after it a body.
//! - `authorization`: an HTTP/1.1-like request: `METHOD PATH[?QUERY]`, header lines `name: value`,
//!   an empty line, the body. The whole input is also tried as an Authorization value.
//! - `events_fold`: Kafka message values, one per line.
//! - `callback_body`: the whole input is the body of an iSales call-result push.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use realstat::api::request::{check_content_type, parse_body, InvalidRequest};
use realstat::auth::c2::valid_ak;
use realstat::auth::client;
use realstat::auth::{
    authenticate, format_timestamp, parse_authorization, sign, verify, AuthError, ClientRequest,
    Clock, HeaderLookup, KeySet, Keys, SignedParts,
};
use realstat::events::ids::TaskKey;
use realstat::events::{
    encode_call_with_code, encode_task, CallKey, CallState, Decoder, Event, EventKind, FailCode,
};
use realstat::fold::{Applied, Calendar, Day, FoldPolicy, Store};

/// Runs the checks of one target on one input; panics on a failed check.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "request_body" => request_body(data),
        "authorization" => authorization(data),
        "events_fold" => events_fold(data),
        "callback_body" => callback_body(data),
        _ => panic!("unknown fuzz target {target}"),
    }
}

/// The configured default call center of the decoders and the body parser.
const DEFAULT_CC_ID: u16 = 1;

/// Largest task id: 30 decimal digits.
const TASK_ID_LIMIT: u128 = 1_000_000_000_000_000_000_000_000_000_000;

// ---- target 1: request body and Content-Type ---------------------------------------------------

/// `check_content_type` and `parse_body` on arbitrary bytes.
pub fn request_body(data: &[u8]) {
    check_body(data);
    if let Some(i) = data.iter().position(|&b| b == b'\n') {
        check_content_type_value(&data[..i]);
        check_body(&data[i + 1..]);
    }
}

fn check_content_type_value(value: &[u8]) {
    let verdict = check_content_type(Some(value));
    if let Err(e) = verdict {
        assert_eq!(e, InvalidRequest::ContentType, "wrong error kind");
    }
    // Case-insensitive, as documented: the ASCII upper- and lower-case forms get the same verdict.
    assert_eq!(
        check_content_type(Some(&value.to_ascii_uppercase())),
        verdict,
        "upper-casing changed the Content-Type verdict"
    );
    assert_eq!(
        check_content_type(Some(&value.to_ascii_lowercase())),
        verdict,
        "lower-casing changed the Content-Type verdict"
    );
    if verdict.is_ok() {
        let text = std::str::from_utf8(value).expect("an accepted Content-Type is UTF-8");
        let media = text.split(';').next().unwrap_or_default().trim();
        assert!(
            media.eq_ignore_ascii_case("application/json"),
            "accepted media type {media:?}"
        );
    }
    assert_eq!(check_content_type(None), Err(InvalidRequest::ContentType));
}

fn check_body(body: &[u8]) {
    let with_one = parse_body(body, 1);
    let with_two = parse_body(body, 2);
    match (with_one, with_two) {
        (Ok(a), Ok(b)) => {
            assert_eq!((a.vdn, a.task_id), (b.vdn, b.task_id));
            assert!(
                a.cc_id == b.cc_id || (a.cc_id, b.cc_id) == (1, 2),
                "the default ccId leaked into an explicit one: {a:?} {b:?}"
            );
            check_task_key(&a);
            // The contract is a JSON object: whatever parse_body accepts, a JSON parser reads
            // as one.
            assert!(
                is_json_object(body),
                "accepted a body that is not a JSON object"
            );
            // The canonical body of the same task parses back to it.
            let canonical = format!(
                r#"{{"ccId":{},"vdn":{},"taskId":"{}"}}"#,
                a.cc_id, a.vdn, a.task_id
            );
            assert_eq!(parse_body(canonical.as_bytes(), 7), Ok(a), "{canonical}");
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "the default ccId changed the error"),
        (a, b) => panic!("the default ccId changed the verdict: {a:?} vs {b:?}"),
    }
}

/// Whether the input is one JSON object (RFC 8259, so UTF-8 throughout), as an independent
/// parser reads it.
fn is_json_object(bytes: &[u8]) -> bool {
    // The grammar allows any `\uXXXX`, unpaired surrogates included (RFC 8259, 8.2), which
    // serde_json's Value refuses: every such escape is replaced by a plain one first.
    match serde_json::from_slice::<serde_json::Value>(&plain_unicode_escapes(bytes)) {
        Ok(value) => value.is_object(),
        // Valid JSON whose number does not fit an f64: RFC 8259 lets parsers limit the range,
        // and serde_json's Value does, so this parser cannot judge it.
        Err(e) => e.to_string().starts_with("number out of range"),
    }
}

/// The input with every `\u` escape of four hex digits replaced by `\u0041`.
fn plain_unicode_escapes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'u')
            && bytes.len() >= i + 6
            && bytes[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit)
        {
            out.extend_from_slice(b"\\u0041");
            i += 6;
        } else {
            // Any other escape (or a stray backslash) is kept with the byte after it.
            out.extend_from_slice(&bytes[i..(i + 2).min(bytes.len())]);
            i += 2;
        }
    }
    out
}

/// The text fields of a CALL event, read by serde's derive rather than realstat's decoder.
#[derive(serde::Deserialize)]
struct CallText {
    #[serde(rename = "callId")]
    call_id: Option<String>,
    state: Option<String>,
}

fn check_task_key(key: &TaskKey) {
    assert!(key.cc_id >= 1, "ccId 0 accepted");
    assert!((1..=5000).contains(&key.vdn), "vdn {} accepted", key.vdn);
    assert!(key.task_id < TASK_ID_LIMIT, "taskId of more than 30 digits");
}

// ---- target 2: Authorization header, verify and authenticate ------------------------------------

/// The keys the server knows: the AKs of the published C2 vectors.
const KEYS: &[(&str, &str)] = &[
    ("globalaktest", "testSecretKey123"),
    ("ak-Ops_01", "s3cr3t/+=Key"),
];
/// The server clock when none is derived from the request: 2024-01-01T00:05:00Z, five minutes
/// after the vectors were signed.
const SERVER_NOW: i64 = 1_704_067_500;
/// The service's default allowed clock skew (15 minutes).
const SKEW_SECS: i64 = 900;

fn keys() -> &'static Keys {
    static KEYS_SET: OnceLock<Keys> = OnceLock::new();
    KEYS_SET.get_or_init(|| {
        let text: String = KEYS
            .iter()
            .map(|(ak, sk)| format!("[[key]]\nak = {ak:?}\nsk = {sk:?}\nvdns = \"*\"\n"))
            .collect();
        Keys::new(KeySet::parse(&text, &|_| None).expect("the fuzz keys file is valid"))
    })
}

fn secret_of(ak: &str) -> Option<&'static [u8]> {
    KEYS.iter()
        .find(|(a, _)| *a == ak)
        .map(|(_, sk)| sk.as_bytes())
}

/// A request as the HTTP layer would hand it over.
struct Request<'a> {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, &'a [u8])>,
    body: &'a [u8],
}

impl<'a> Request<'a> {
    /// `METHOD PATH[?QUERY]`, header lines up to the first empty line, then the body. Lines end
    /// in `\n`, optionally preceded by `\r`. Never fails: every byte string is some request.
    fn parse(data: &'a [u8]) -> Self {
        let mut rest = data;
        let mut next_line = || -> Option<&'a [u8]> {
            if rest.is_empty() {
                return None;
            }
            let (line, after) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = after;
            Some(line.strip_suffix(b"\r").unwrap_or(line))
        };
        let request_line = next_line().unwrap_or_default();
        let (method, target) = match request_line.iter().position(|&b| b == b' ') {
            Some(i) => (&request_line[..i], &request_line[i + 1..]),
            None => (request_line, &b"/"[..]),
        };
        let (path, query) = match target.iter().position(|&b| b == b'?') {
            Some(i) => (&target[..i], Some(&target[i + 1..])),
            None => (target, None),
        };
        let mut headers = Vec::new();
        while let Some(line) = next_line() {
            if line.is_empty() {
                break;
            }
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(i) => (&line[..i], &line[i + 1..]),
                None => (line, &line[line.len()..]),
            };
            headers.push((lossy(name), value.trim_ascii()));
        }
        Request {
            method: lossy(method),
            path: lossy(path),
            query: query.map(lossy),
            headers,
            body: rest,
        }
    }

    /// How the HTTP layer answers the verifier's header questions: case-insensitive names, a
    /// repeated header is ambiguous.
    fn lookup(&self, name: &str) -> HeaderLookup<'a> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        match (found.next(), found.next()) {
            (None, _) => HeaderLookup::Missing,
            (Some((_, v)), None) => HeaderLookup::One(v),
            (Some(_), Some(_)) => HeaderLookup::Many,
        }
    }

    /// The Authorization value, when there is exactly one (the HTTP layer refuses a repeated one
    /// before authenticating).
    fn authorization(&self) -> Option<String> {
        match self.lookup("authorization") {
            HeaderLookup::One(v) => Some(lossy(v)),
            _ => None,
        }
    }

    fn authenticate_at(&self, value: &str, now: i64) -> Result<String, AuthError> {
        authenticate(
            keys(),
            Some(value),
            &SignedParts {
                method: &self.method,
                path: &self.path,
                raw_query: self.query.as_deref(),
                header: &|name| self.lookup(name),
                body: self.body,
            },
            Clock {
                now_unix: now,
                allowed_skew_secs: SKEW_SECS,
            },
        )
        .map(|entry| entry.ak.clone())
    }

    fn verify_at(
        &self,
        value: &str,
        sk: &[u8],
        body: &[u8],
        now: i64,
        skew: i64,
    ) -> Result<(), AuthError> {
        let auth = parse_authorization(value)?;
        verify(
            &auth,
            sk,
            &SignedParts {
                method: &self.method,
                path: &self.path,
                raw_query: self.query.as_deref(),
                header: &|name| self.lookup(name),
                body,
            },
            Clock {
                now_unix: now,
                allowed_skew_secs: skew,
            },
        )
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `parse_authorization` on arbitrary strings, `authenticate`/`verify` on an arbitrary request
/// against the fixed keys, and a sign-then-verify round trip over the same request.
pub fn authorization(data: &[u8]) {
    check_authorization_value(&lossy(data));
    let request = Request::parse(data);
    if let Some(value) = request.authorization() {
        check_authorization_value(&value);
        check_authenticate(&request, &value);
    }
    check_sign_round_trip(&request);
    check_client_round_trip(&request);
}

/// The AK that authenticates a request in the `authorization` input format, if any: lets the
/// regression test make sure the seed corpus reaches the success path of the verifier.
pub fn authenticated_ak(data: &[u8]) -> Option<String> {
    let request = Request::parse(data);
    let value = request.authorization()?;
    let auth = parse_authorization(&value).ok()?;
    request.authenticate_at(&value, auth.unix_seconds).ok()
}

fn check_authorization_value(value: &str) {
    let auth = match parse_authorization(value) {
        Ok(auth) => auth,
        Err(e) => {
            assert_eq!(e, AuthError::Malformed, "parse error other than Malformed");
            return;
        }
    };
    assert!(valid_ak(auth.ak), "accepted AK {:?}", auth.ak);
    assert!(
        auth.signature.len() == 64
            && auth
                .signature
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "accepted signature {:?}",
        auth.signature
    );
    assert_eq!(
        format_timestamp(auth.unix_seconds),
        auth.timestamp,
        "the timestamp does not round-trip"
    );
    assert_eq!(
        format!("{}/{}", auth.prefix(), auth.signature),
        value,
        "the parts do not rebuild the header"
    );
    let names: Vec<&str> = auth.header_names().collect();
    assert!(names.contains(&"host"), "signed headers without host");
    for (i, name) in names.iter().enumerate() {
        assert!(
            !name.is_empty() && name.bytes().all(is_header_name_byte),
            "signed header name {name:?}"
        );
        assert!(
            !names[..i].contains(name),
            "repeated signed header {name:?}"
        );
    }
}

/// RFC 9110 token characters without upper case: what the server accepts as a signed header name.
fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_authenticate(request: &Request<'_>, value: &str) {
    let parsed = parse_authorization(value).ok();
    let mut clocks = vec![SERVER_NOW];
    if let Some(auth) = &parsed {
        clocks.push(auth.unix_seconds);
    }
    for now in clocks {
        let got = request.authenticate_at(value, now);
        // authenticate is parse + verify with the AK's secret; for an unknown AK the key-free
        // checks still answer first, and everything else is UnknownKey.
        let expected = match &parsed {
            None => Err(AuthError::Malformed),
            Some(auth) => match secret_of(auth.ak) {
                Some(sk) => request
                    .verify_at(value, sk, request.body, now, SKEW_SECS)
                    .map(|()| auth.ak.to_owned()),
                None => {
                    match request.verify_at(value, b"not-a-key", request.body, now, SKEW_SECS) {
                        Err(e @ (AuthError::Malformed | AuthError::Expired)) => Err(e),
                        _ => Err(AuthError::UnknownKey),
                    }
                }
            },
        };
        assert_eq!(got, expected, "authenticate disagrees with verify");
        if let (Ok(ak), Some(auth)) = (&got, &parsed) {
            let sk = secret_of(ak).expect("authenticated with a known key");
            let mut body = request.body.to_vec();
            body.push(b' ');
            assert_eq!(
                request.verify_at(value, sk, &body, now, SKEW_SECS),
                Err(AuthError::Mismatch),
                "a changed body still verifies"
            );
            assert_eq!(
                request.verify_at(value, sk, request.body, auth.unix_seconds + 61, 60),
                Err(AuthError::Expired),
                "a request outside the skew still verifies"
            );
        }
    }
}

/// Signs the request as a client would (every header that occurs once, AK and timestamp of its
/// Authorization when that parses) and checks that the server side accepts exactly that.
fn check_sign_round_trip(request: &Request<'_>) {
    let parsed = request.authorization().and_then(|v| {
        parse_authorization(&v)
            .ok()
            .map(|a| (a.ak.to_owned(), a.timestamp.to_owned()))
    });
    let (ak, timestamp) =
        parsed.unwrap_or_else(|| ("globalaktest".to_owned(), "2024-01-01T00:00:00Z".to_owned()));
    let sk = secret_of(&ak).unwrap_or(b"testSecretKey123");
    let signed: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .filter(|(name, _)| matches!(request.lookup(name), HeaderLookup::One(_)))
        .map(|(name, value)| (name.as_str(), *value))
        .collect();
    let authorization = sign(
        &ak,
        sk,
        &timestamp,
        &ClientRequest {
            method: &request.method,
            path: &request.path,
            raw_query: request.query.as_deref(),
            headers: &signed,
            body: request.body,
        },
    );
    let lower: Vec<String> = signed.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    let well_formed = lower.iter().any(|n| n == "host")
        && lower
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(is_header_name_byte));
    let parsed = parse_authorization(&authorization);
    if !well_formed {
        // Names no HTTP client can send (sign() does not check them; a `;` even splits one name
        // into two): nothing is promised beyond not panicking.
        if parsed.is_ok() {
            let _ = request.verify_at(&authorization, sk, request.body, SERVER_NOW, SKEW_SECS);
        }
        return;
    }
    let auth = parsed.unwrap_or_else(|e| {
        panic!("sign() produced an unparsable header {authorization:?}: {e:?}")
    });
    let now = auth.unix_seconds;
    assert_eq!(
        request.verify_at(&authorization, sk, request.body, now, 0),
        Ok(()),
        "the server refuses what the client signed: {authorization:?}"
    );
    if secret_of(&ak).is_some() {
        assert_eq!(request.authenticate_at(&authorization, now), Ok(ak));
    }
}

/// The client signer every tool of the repository uses (`realstat query`, `realstat sign`, the
/// tests and benchmarks) on the same request: for each form whose headers the request carries
/// (exactly one `host`; for the JSON form also the JSON Content-Type and the body's length), the
/// server accepts what it signed.
fn check_client_round_trip(request: &Request<'_>) {
    let HeaderLookup::One(host) = request.lookup("host") else {
        return;
    };
    let Ok(host) = std::str::from_utf8(host) else {
        return;
    };
    let carries = |name: &str, value: &[u8]| matches!(request.lookup(name), HeaderLookup::One(v) if v == value);
    let json = carries("content-type", client::JSON_CONTENT_TYPE.as_bytes())
        && carries("content-length", request.body.len().to_string().as_bytes());
    let (ak, sk) = ("globalaktest", b"testSecretKey123");
    for signed in [client::SignedHeaders::Host, client::SignedHeaders::Json] {
        if signed == client::SignedHeaders::Json && !json {
            continue;
        }
        let signing = client::Request {
            method: &request.method,
            host,
            path: &request.path,
            query: request.query.as_deref(),
            body: request.body,
            signed,
        };
        let value = client::authorization(ak, sk, &format_timestamp(SERVER_NOW), &signing);
        assert_eq!(
            request.verify_at(&value, sk, request.body, SERVER_NOW, 0),
            Ok(()),
            "the server refuses what the client signer signed: {value:?}"
        );
    }
}

// ---- target 3: event decoding and the fold -------------------------------------------------------

const HOUR: i64 = 3_600_000;
/// The wall clock of the fold: 2024-11-25T14:00:00+08:00, a day and a half after the example
/// event of events.md, so seeds spread over the two retained days are all accepted.
const NOW_MS: i64 = 1_732_514_400_000;

/// The shipped defaults, read once: `Settings::default()` runs clap over an empty command line,
/// which dwarfed the fold itself when done per input (33 times fewer runs per second).
fn policy() -> FoldPolicy {
    static POLICY: std::sync::OnceLock<FoldPolicy> = std::sync::OnceLock::new();
    *POLICY.get_or_init(|| FoldPolicy {
        stale_after_ms: 20 * HOUR,
        ..realstat::config::Settings::default().fold_policy()
    })
}

/// Splits the input into messages (lines), decodes each, folds the valid ones in two time zones
/// and checks the fold's invariants along the way.
pub fn events_fold(data: &[u8]) {
    let decoder = Decoder::new(DEFAULT_CC_ID);
    let _ = decoder.decode(data);
    let events: Vec<Event> = data
        .split(|&b| b == b'\n')
        .filter_map(|message| check_decode(&decoder, message))
        .collect();
    for zone in ["Asia/Shanghai", "America/New_York"] {
        let calendar = Calendar::named(zone).expect("a known zone");
        check_fold(&events, calendar);
    }
}

fn check_decode(decoder: &Decoder, message: &[u8]) -> Option<Event> {
    let event = decoder.decode(message).ok()?;
    check_task_key(&event.task);
    assert!(event.ts > 0, "ts {} accepted", event.ts);
    assert!(
        is_json_object(message),
        "decoded an event that is not a JSON object"
    );
    // Encoding what was decoded and decoding again gives the same event.
    let encoded = match event.kind {
        EventKind::Task { planned } => {
            assert!(i64::try_from(planned).is_ok(), "plannedCount {planned}");
            encode_task(&event.task, planned, event.ts)
        }
        EventKind::Call {
            call,
            state,
            fail_code,
        } => {
            let text: CallText =
                serde_json::from_str(&String::from_utf8_lossy(message)).expect("a decoded event");
            let call_id = text
                .call_id
                .expect("a decoded CALL event has a string callId");
            assert_eq!(
                call,
                CallKey::of(&call_id),
                "the call key is not the hash of callId"
            );
            assert_eq!(
                text.state.as_deref().and_then(CallState::parse),
                Some(state)
            );
            encode_call_with_code(
                &event.task,
                &call_id,
                state,
                event.ts,
                fail_code.as_ref().map(FailCode::as_str),
            )
        }
    };
    assert_eq!(
        decoder.decode(encoded.as_bytes()),
        Ok(event),
        "re-encoded: {encoded}"
    );
    Some(event)
}

/// What the statistics of a store are made of: per task its waiting and executing calls and, per
/// day, the calls by state and the plan. Buckets and tasks that read as all zeros are left out,
/// since `Store::stats` cannot tell them from absent ones.
type Summary = BTreeMap<TaskKey, (u32, u32, BTreeMap<Day, ([u32; 5], u64)>)>;

fn summary(store: &Store) -> Summary {
    let mut out = Summary::new();
    for key in store.task_keys() {
        let task = store.task(&key).expect("a listed task exists");
        let days: BTreeMap<Day, ([u32; 5], u64)> = task
            .days
            .iter()
            .map(|d| (d.day, (d.by_state, d.plan.map_or(0, |p| p.planned))))
            .filter(|(_, (by_state, planned))| *planned != 0 || by_state.iter().any(|&n| n != 0))
            .collect();
        if task.waiting != 0 || task.executing != 0 || !days.is_empty() {
            out.insert(key, (task.waiting, task.executing, days));
        }
    }
    out
}

fn check_fold(events: &[Event], calendar: Calendar) {
    let fresh_calendar = calendar.clone();
    let store = Store::new(calendar, policy());
    for (i, event) in events.iter().enumerate() {
        // The store's calendar caches an hour's offset: it must agree with an uncached one.
        assert_eq!(
            store.calendar().day_of(event.ts),
            fresh_calendar.clone().day_of(event.ts),
            "cached day_of disagrees at ts {}",
            event.ts
        );
        store.apply(event, NOW_MS);
        // Applying the same event again right away changes nothing.
        let before = summary(&store);
        let again = store.apply(event, NOW_MS);
        assert_ne!(
            again,
            Applied::Changed,
            "a duplicate changed the store: {event:?}"
        );
        assert_eq!(
            summary(&store),
            before,
            "a duplicate changed the counters: {event:?}"
        );
        if i % 4 == 3 {
            store.maintain();
            check_invariants(&store);
        }
    }
    store.maintain();
    check_invariants(&store);

    // Which events the store accepts, and the retention window of the final watermark.
    let accepted: Vec<&Event> = events
        .iter()
        .filter(|e| e.ts <= NOW_MS + policy().max_future_ms)
        .collect();
    let watermark = accepted.iter().map(|e| e.ts).max().unwrap_or(0);
    let min_day = store
        .calendar()
        .day_of(watermark)
        .saturating_sub(i32::from(policy().retention_days) - 1);
    let in_window = |e: &Event| store.calendar().day_of(e.ts) >= min_day;
    // The one documented limit of bounded memory (docs/design.md): a call whose events span the
    // start of the window is dropped with its old day and may come back, on redelivery, as a new
    // call on a later event's day. Redelivery is checked on every other log.
    let spans_window_start = accepted.iter().any(|a| {
        !in_window(a)
            && accepted.iter().any(|b| {
                in_window(b) && a.task == b.task && call_of(a).is_some() && call_of(a) == call_of(b)
            })
    });

    // Redelivery of the whole log, after maintenance, changes no number.
    let settled = summary(&store);
    for event in events {
        store.apply(event, NOW_MS);
    }
    store.maintain();
    check_invariants(&store);
    if !spans_window_start {
        assert_eq!(
            summary(&store),
            settled,
            "redelivering the log changed the counters"
        );
    }

    // Order does not matter: the reversed log, maintained after every event, folds to the same
    // numbers, as long as no event falls out of the retention window (then the order decides what
    // is dropped, by design).
    if accepted.iter().all(|e| in_window(e)) {
        let reversed = Store::new(store.calendar().clone(), policy());
        for event in events.iter().rev() {
            reversed.apply(event, NOW_MS);
            reversed.maintain();
        }
        check_invariants(&reversed);
        assert_eq!(
            summary(&reversed),
            settled,
            "the reversed log folds differently"
        );
    }
}

fn call_of(event: &Event) -> Option<CallKey> {
    match event.kind {
        EventKind::Call { call, .. } => Some(call),
        EventKind::Task { .. } => None,
    }
}

/// The invariants of events.md and of the store, after a maintenance pass.
fn check_invariants(store: &Store) {
    let watermark = store.watermark();
    let calendar = store.calendar();
    let policy = store.policy();
    let min_day = calendar
        .day_of(watermark)
        .saturating_sub(i32::from(policy.retention_days.max(1)) - 1);
    let mut calls = 0u64;
    for key in store.task_keys() {
        let task = store.task(&key).expect("a listed task exists");
        calls += task.calls.len() as u64;
        let (mut waiting, mut executing) = (0u32, 0u32);
        for call in task.calls.values() {
            assert!(call.first_ts <= call.last_ts, "{call:?}");
            assert_eq!(
                call.day,
                calendar.day_of(call.first_ts),
                "call day {call:?}"
            );
            if watermark > 0 {
                assert!(
                    call.day >= min_day,
                    "a call older than the window: {call:?}"
                );
            }
            if call.expired {
                continue;
            }
            match call.state {
                CallState::Queued => waiting += 1,
                CallState::Dialing | CallState::Connected => executing += 1,
                CallState::Failed | CallState::Finished => continue,
            }
            assert!(
                watermark.saturating_sub(call.last_ts) <= policy.stale_after_ms,
                "a stale call still counts as waiting/executing after maintenance: {call:?}"
            );
        }
        assert_eq!(task.waiting, waiting, "waitCount of {key}");
        assert_eq!(task.executing, executing, "execCount of {key}");
        assert!(
            task.days.windows(2).all(|w| w[0].day < w[1].day),
            "day buckets not strictly ascending"
        );
        for bucket in &task.days {
            if watermark > 0 {
                assert!(bucket.day >= min_day, "a day older than the window");
            }
            let mut by_state = [0u32; 5];
            for call in task.calls.values().filter(|c| c.day == bucket.day) {
                by_state[call.state.index()] += 1;
            }
            assert_eq!(bucket.by_state, by_state, "day {} of {key}", bucket.day);
            let st = store.stats(&key, bucket.day);
            let count = |states: &[CallState]| -> u64 {
                states.iter().map(|s| u64::from(by_state[s.index()])).sum()
            };
            use CallState::*;
            assert_eq!(
                st.total,
                count(&CallState::ALL),
                "totalCount = sum of the states"
            );
            assert_eq!(st.total, st.succ + st.fail + count(&[Queued, Dialing]));
            assert_eq!(st.comp, st.fail + count(&[Finished]));
            assert_eq!(st.succ, count(&[Connected, Finished]));
            assert_eq!(
                (st.wait, st.exec),
                (u64::from(waiting), u64::from(executing))
            );
            assert_eq!(st.planned, bucket.plan.map_or(0, |p| p.planned));
            for rate in [st.succ_rate(), st.comp_rate()] {
                let text = rate.to_string();
                let number: f64 = text
                    .strip_suffix('%')
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("rate {text:?}"));
                assert!((0.0..=100.0).contains(&number), "rate {text}");
            }
        }
    }
    assert_eq!(store.calls_tracked(), calls, "calls_tracked");
}

// ---- target 4: the iSales call-result push body and its records -----------------------------------

/// `callback::body::parse` and `callback::mapping::map_record` on arbitrary bytes.
pub fn callback_body(data: &[u8]) {
    use realstat::callback::body::{parse, BodyError};
    use realstat::callback::mapping::map_record;
    use realstat::callback::tokens::TokenGrant;
    use realstat::fold::{Calendar, TimeZones};

    // The bound only cuts: under a small one the verdict is the larger one's, or too many.
    let small = parse(data, 3);
    let large = parse(data, 100_000);
    match (&small, &large) {
        (Ok(a), Ok(b)) => assert_eq!(
            a.iter().map(|r| r.get()).collect::<Vec<_>>(),
            b.iter().map(|r| r.get()).collect::<Vec<_>>()
        ),
        (Err(BodyError::TooManyRecords { max: 3 }), Ok(b)) => assert!(b.len() > 3),
        (Err(a), Err(b)) => assert_eq!(a, b),
        other => panic!("bounds disagree: {other:?}"),
    }
    let Ok(records) = large else { return };
    let grant = TokenGrant {
        index: 1,
        cc_id: 89,
        vdns: realstat::auth::Scope::only([92, 93, 5000]),
    };
    let zone = TimeZones::single(Calendar::named("Asia/Shanghai").expect("zone"));
    let decoder = Decoder::new(DEFAULT_CC_ID);
    for &raw in &records {
        let mapped = map_record(raw, &grant, &zone);
        assert_eq!(mapped, map_record(raw, &grant, &zone), "deterministic");
        // The personal fields change nothing: they cannot reach the event or the copy. The other
        // fields keep their raw text (a copy holds them as sent; a float re-printed by serde_json
        // need not read back the same).
        let fields: Option<std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>> =
            serde_json::from_str(raw.get()).ok();
        // The campaign id the key must carry: a string's text, or a number's digits.
        let campaign = fields.as_ref().and_then(|f| f.get("campaignId")).map(|v| {
            serde_json::from_str::<String>(v.get()).unwrap_or_else(|_| v.get().to_owned())
        });
        let scrubbed = match fields {
            Some(mut fields) => {
                for private in ["called", "recordPath", "customField"] {
                    let pii = serde_json::value::to_raw_value("PII\u{1}").expect("JSON");
                    fields.insert(private.to_owned(), pii);
                }
                serde_json::value::to_raw_value(&fields).expect("JSON")
            }
            None => serde_json::value::RawValue::from_string(raw.get().to_owned()).expect("JSON"),
        };
        assert_eq!(
            mapped,
            map_record(&scrubbed, &grant, &zone),
            "independent of personal fields"
        );
        match mapped {
            Ok(message) => {
                let event = decoder
                    .decode(&message.payload)
                    .expect("a written event is valid");
                assert_eq!(event.task.cc_id, 89);
                assert!(grant.vdns.contains(event.task.vdn));
                // Keyed by the task as the fold knows it: the campaign id's value.
                assert_eq!(message.key, Some(event.task.to_string()));
                let campaign = campaign.expect("a mapped record has a campaign id");
                assert_eq!(campaign.parse::<u128>().ok(), Some(event.task.task_id));
            }
            Err(refused) => {
                let copy: serde_json::Value =
                    serde_json::from_slice(&refused.copy.payload).expect("the copy is JSON");
                let names: Vec<&str> = copy
                    .as_object()
                    .expect("an object")
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert!(
                    names
                        .iter()
                        .all(|n| realstat::callback::mapping::DEAD_LETTER_FIELDS.contains(n)),
                    "{names:?}"
                );
            }
        }
    }
}
