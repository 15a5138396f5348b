//! The `auth-v2` request signature: pure functions, no I/O, no HTTP types.
//!
//! The HTTP layer adapts its header map to a [`HeaderLookup`] closure so that this module stays
//! testable against the published vectors without a server.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::metrics::AuthRefusal;

type HmacSha256 = Hmac<Sha256>;

/// The fixed first segment of every Authorization value.
pub const SCHEME: &str = "auth-v2";

/// Longest access key accepted. Keys are identifiers, not secrets; the bound keeps an attacker
/// from making us hash or log arbitrarily long garbage.
pub const MAX_AK_LEN: usize = 128;

/// Why a request failed authentication.
///
/// The Display texts go to the client verbatim, so they name a category and nothing else: never
/// the header, the access key or the signature. `UnknownKey` and `Mismatch` share one text so a
/// client cannot probe which access keys exist; the metrics label ([`AuthError::category`]) keeps
/// them apart for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No Authorization header.
    #[error("Authentication failed: missing Authorization header")]
    Missing,
    /// The Authorization value, or a signed header it refers to, is not well formed.
    #[error("Authentication failed: malformed Authorization header")]
    Malformed,
    /// The signing timestamp is outside the allowed clock skew.
    #[error("Authentication failed: request timestamp outside the allowed clock skew")]
    Expired,
    /// The access key is not known.
    #[error("Authentication failed: signature mismatch or unknown access key")]
    UnknownKey,
    /// The signature does not match.
    #[error("Authentication failed: signature mismatch or unknown access key")]
    Mismatch,
    /// The `Host` is not one of `auth.allowed_hosts`: signed for another service, or sent to
    /// this one under a name it does not answer to.
    #[error("Authentication failed: request not addressed to this service")]
    WrongHost,
}

impl AuthError {
    /// The `category` it is counted under in the metrics (one label per variant, so operators
    /// can tell apart what the client is told alike).
    pub fn category(self) -> AuthRefusal {
        match self {
            AuthError::Missing => AuthRefusal::Missing,
            AuthError::Malformed => AuthRefusal::Malformed,
            AuthError::Expired => AuthRefusal::Expired,
            AuthError::UnknownKey => AuthRefusal::UnknownKey,
            AuthError::Mismatch => AuthRefusal::Mismatch,
            AuthError::WrongHost => AuthRefusal::WrongHost,
        }
    }
}

/// A parsed Authorization value. Borrows from the header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub ak: &'a str,
    /// The timestamp text exactly as sent (it is part of the signed prefix).
    pub timestamp: &'a str,
    pub unix_seconds: i64,
    /// The signed header names exactly as sent: the client chose the order and the server must
    /// reuse it verbatim.
    pub signed_headers: &'a str,
    /// 64 lower-case hex characters.
    pub signature: &'a str,
}

impl Authorization<'_> {
    /// `auth-v2/{ak}/{timestamp}/{signedHeaders}`: the message of the first HMAC.
    pub fn prefix(&self) -> String {
        auth_string_prefix(self.ak, self.timestamp, self.signed_headers)
    }

    /// The signed header names, in the client's order.
    pub fn header_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.signed_headers.split(';')
    }
}

/// What a request carries under one (lower-case) header name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderLookup<'h> {
    Missing,
    One(&'h [u8]),
    /// Present more than once: the signed value would be ambiguous.
    Many,
}

/// Percent-encodes every byte except the RFC 3986 unreserved set, upper-case hex, appending to
/// `out`.
pub fn normalize(bytes: &[u8], out: &mut String) {
    normalize_bytes(bytes.iter().copied(), out);
}

/// [`normalize`] over any bytes, so a header name can be lower-cased on the way in without a
/// copy of its own.
fn normalize_bytes(bytes: impl ExactSizeIterator<Item = u8>, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(bytes.len());
    for b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

fn normalized(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    normalize(bytes, &mut s);
    s
}

/// Parses `auth-v2/{ak}/{yyyy-MM-ddTHH:mm:ssZ}/{signedHeaders}/{signature}`.
///
/// Strict on purpose: anything a conforming client would not produce is `Malformed`, so that
/// odd inputs never reach the key lookup or the HMAC.
pub fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
    let mut parts = value.split('/');
    let (Some(scheme), Some(ak), Some(timestamp), Some(signed_headers), Some(signature), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(AuthError::Malformed);
    };
    if scheme != SCHEME || !valid_ak(ak) {
        return Err(AuthError::Malformed);
    }
    let unix_seconds = parse_timestamp(timestamp).ok_or(AuthError::Malformed)?;
    if !valid_signed_headers(signed_headers) {
        return Err(AuthError::Malformed);
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(AuthError::Malformed);
    }
    Ok(Authorization {
        ak,
        timestamp,
        unix_seconds,
        signed_headers,
        signature,
    })
}

/// Whether `ak` could appear in an Authorization value. Shared with the keys file validation so
/// that a configured key can always be presented.
pub fn valid_ak(ak: &str) -> bool {
    let n = ak.chars().count();
    (1..=MAX_AK_LEN).contains(&n) && !ak.contains('/')
}

/// RFC 9110 token characters, minus upper case: the client lower-cases before signing, so an
/// upper-case name can only come from a broken client.
fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase()
        || b.is_ascii_digit()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

fn valid_signed_headers(signed_headers: &str) -> bool {
    let mut has_host = false;
    for (i, name) in signed_headers.split(';').enumerate() {
        if name.is_empty() || !name.bytes().all(is_header_name_byte) {
            return false;
        }
        // A repeated name would put the same header twice into the canonical request; no
        // conforming client does that, and rejecting it keeps the lookup unambiguous.
        if signed_headers
            .split(';')
            .take(i)
            .any(|earlier| earlier == name)
        {
            return false;
        }
        has_host |= name == "host";
    }
    has_host
}

/// Parses exactly `yyyy-MM-ddTHH:mm:ssZ` (UTC, real calendar date, no leap second) into unix
/// seconds. Hand-written because the format is fixed and tiny, and a general date parser would
/// accept variants (offsets, fractions, lower-case `t`) that would change the signed prefix.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let year = num(0, 4)?;
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let hour = num(11, 13)?;
    let minute = num(14, 16)?;
    let second = num(17, 19)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, 1970-01-01 = day 0).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats unix seconds as `yyyy-MM-ddTHH:mm:ssZ`, the form clients sign. Meant for current
/// times; years outside 0000..=9999 would not parse back.
pub fn format_timestamp(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// `auth-v2/{ak}/{timestamp}/{signedHeaders}`.
pub fn auth_string_prefix(ak: &str, timestamp: &str, signed_headers: &str) -> String {
    format!("{SCHEME}/{ak}/{timestamp}/{signed_headers}")
}

fn hmac_hex(key: &[u8], msg: &[u8]) -> [u8; 64] {
    hex_mac(HmacSha256::new_from_slice(key), msg)
}

/// What [`hmac_hex`] gives when HMAC cannot be keyed: not hex, so it never equals a presented
/// signature (`parse` accepts lower-case hex only) and verification fails closed. HMAC takes
/// keys of any length, so this is never expected; 64 `'0'`s here would have been a valid
/// signature anyone could send.
const FAILED_MAC: [u8; 64] = [b'!'; 64];

fn hex_mac(mac: Result<HmacSha256, hmac::digest::InvalidLength>, msg: &[u8]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let Ok(mut mac) = mac else {
        tracing::error!("HMAC-SHA256 refused its key; failing the signature check closed");
        return FAILED_MAC;
    };
    mac.update(msg);
    let digest = mac.finalize().into_bytes();
    let mut out = [0u8; 64];
    for (i, byte) in digest.iter().enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    out
}

/// `hex(HMAC-SHA256(SK, authStringPrefix))`, as the 64 ASCII bytes of its lower-case hex text.
pub fn signing_key(sk: &[u8], auth_string_prefix: &str) -> [u8; 64] {
    hmac_hex(sk, auth_string_prefix.as_bytes())
}

/// `hex(HMAC-SHA256(key = hex text of signingKey, canonicalRequest))`, as 64 ASCII bytes.
///
/// The vendor's demo keys the second HMAC with the hex *text* of the first one, not its raw 32
/// bytes; we must do the same to interoperate.
pub fn signature(signing_key: &[u8; 64], canonical_request: &str) -> [u8; 64] {
    if *signing_key == FAILED_MAC {
        return FAILED_MAC;
    }
    hmac_hex(signing_key, canonical_request.as_bytes())
}

/// Decodes one `application/x-www-form-urlencoded` component: `%XX` becomes the byte and `+`
/// becomes a space.
///
/// Why `+` is a space: the canonical query is built from the *decoded* parameters, and the
/// clients of this API (Java's `URLEncoder`, Apache `URIBuilder`, Python `urlencode`, browsers'
/// `URLSearchParams`) all send a space as `+`; others send `%20`, which decodes the same. A
/// literal plus must then travel as `%2B`, which every one of those encoders does. A malformed
/// escape is kept literally: the signature will then simply not match.
pub fn form_decode(s: &str) -> Vec<u8> {
    fn hex_val(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

/// `normalize(key) "=" normalize(value)` for each parameter of a raw query string, sorted,
/// joined by `&`; `None` when there are no parameters (the line is then left out entirely).
///
/// Both sides go through this from the raw query string as it appears on the wire, so client
/// and server agree whichever way the client escaped it.
pub fn canonical_query(raw_query: Option<&str>) -> Option<String> {
    let raw = raw_query?;
    let mut params: Vec<String> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let mut s = normalized(&form_decode(k));
            s.push('=');
            normalize(&form_decode(v), &mut s);
            s
        })
        .collect();
    if params.is_empty() {
        return None;
    }
    params.sort_unstable();
    Some(params.join("&"))
}

/// The canonical request, exactly as api.md defines it.
///
/// `signed_headers` is used verbatim (the client's order); `header_values` holds the name and
/// value of every signed header, in any order, since the canonical header lines are sorted.
pub fn canonical_request(
    method: &str,
    path: &str,
    raw_query: Option<&str>,
    signed_headers: &str,
    header_values: &[(&str, &[u8])],
    body: &[u8],
) -> String {
    // The header lines, `name:value` normalized, are sorted as whole lines. They are written
    // into one scratch buffer and sorted as ranges of it: this runs on every request, and a
    // String per line, a lower-cased copy per name and a join cost an allocation each.
    let size: usize = header_values
        .iter()
        .map(|(n, v)| n.len() + 1 + v.len())
        .sum();
    let mut scratch = String::with_capacity(size + size / 2);
    let mut lines: Vec<std::ops::Range<usize>> = Vec::with_capacity(header_values.len());
    for (name, value) in header_values {
        let start = scratch.len();
        normalize_bytes(name.bytes().map(|b| b.to_ascii_lowercase()), &mut scratch);
        scratch.push(':');
        normalize(value, &mut scratch);
        lines.push(start..scratch.len());
    }
    lines.sort_unstable_by(|a, b| scratch[a.clone()].cmp(&scratch[b.clone()]));

    let mut out = String::with_capacity(
        method.len()
            + path.len()
            + signed_headers.len()
            + scratch.len()
            + 64
            + body.len().saturating_mul(3),
    );
    out.push_str(method);
    out.push('\n');
    out.push_str(path);
    out.push('\n');
    if let Some(query) = canonical_query(raw_query) {
        out.push_str(&query);
        out.push('\n');
    }
    out.push_str(signed_headers);
    out.push('\n');
    for (i, line) in lines.into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&scratch[line]);
    }
    out.push('\n');
    if !body.is_empty() {
        normalize(body, &mut out);
    }
    out
}

/// A request as a client will send it: what its signature covers.
pub struct ClientRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub raw_query: Option<&'a str>,
    /// The headers to sign (names in any case; `host` should be among them).
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

/// Client side: signs `request` with the key `ak`/`sk` at `timestamp` and returns the full
/// Authorization value. The signed header list is lower-cased and sorted, the form
/// `docs/api.md` documents.
pub fn sign(ak: &str, sk: &[u8], timestamp: &str, request: &ClientRequest<'_>) -> String {
    let mut names: Vec<String> = request
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort_unstable();
    let signed_headers = names.join(";");
    let prefix = auth_string_prefix(ak, timestamp, &signed_headers);
    let key = signing_key(sk, &prefix);
    let canonical = canonical_request(
        request.method,
        request.path,
        request.raw_query,
        &signed_headers,
        request.headers,
        request.body,
    );
    let sig = signature(&key, &canonical);
    let mut out = prefix;
    out.push('/');
    // The signature is ASCII hex by construction.
    out.extend(sig.iter().map(|&b| char::from(b)));
    out
}

/// The parts of a request that the signature covers, as the server received them.
pub struct SignedParts<'r, 'h> {
    pub method: &'r str,
    /// The path as received, not re-encoded.
    pub path: &'r str,
    pub raw_query: Option<&'r str>,
    /// The value of a request header by lower-case name.
    pub header: &'r dyn Fn(&str) -> HeaderLookup<'h>,
    pub body: &'r [u8],
}

/// When a request is checked, and the clock skew allowed between client and server.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now_unix: i64,
    pub allowed_skew_secs: i64,
}

/// The server-side steps that need no key: the clock check and the canonical request.
///
/// Split from the comparison so that [`super::authenticate`] can run them *before* looking the
/// access key up: a client then learns "expired" or "malformed" whether or not its AK exists.
pub fn prepare(
    auth: &Authorization<'_>,
    request: &SignedParts<'_, '_>,
    clock: Clock,
) -> Result<String, AuthError> {
    let skew = u64::try_from(clock.allowed_skew_secs.max(0)).unwrap_or(0);
    if clock.now_unix.abs_diff(auth.unix_seconds) > skew {
        return Err(AuthError::Expired);
    }
    let mut values: Vec<(&str, &[u8])> = Vec::new();
    for name in auth.header_names() {
        match (request.header)(name) {
            HeaderLookup::One(value) => values.push((name, value)),
            HeaderLookup::Missing | HeaderLookup::Many => return Err(AuthError::Malformed),
        }
    }
    Ok(canonical_request(
        request.method,
        request.path,
        request.raw_query,
        auth.signed_headers,
        &values,
        request.body,
    ))
}

/// Computes the expected signature over a prepared canonical request and compares it with the
/// presented one in constant time.
pub fn check_signature(
    auth: &Authorization<'_>,
    sk: &[u8],
    canonical_request: &str,
) -> Result<(), AuthError> {
    let key = signing_key(sk, &auth.prefix());
    let expected = signature(&key, canonical_request);
    if bool::from(expected.ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(AuthError::Mismatch)
    }
}

/// Server side: verifies a parsed Authorization against one secret key.
///
/// A signed header that is missing from the request or repeated is `Malformed`. The clock is
/// checked first (`Expired`), then the signature (`Mismatch`).
pub fn verify(
    auth: &Authorization<'_>,
    sk: &[u8],
    request: &SignedParts<'_, '_>,
    clock: Clock,
) -> Result<(), AuthError> {
    let canonical = prepare(auth, request, clock)?;
    check_signature(auth, sk, &canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's vectors, beside the checkout (as CI lays it out), with the repository's copy
    /// as the fallback for a checkout without `../shared`. When both exist they must agree.
    const SHARED_VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/spec/vectors/c2-auth.json"
    );
    const REPO_VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/c2-auth.json");

    #[test]
    fn an_hmac_that_cannot_be_keyed_fails_every_signature_check() {
        let failed = hex_mac(Err(hmac::digest::InvalidLength), b"anything");
        // No presented signature can equal it: `parse` accepts lower-case hex only.
        assert!(failed.iter().all(|b| !b.is_ascii_hexdigit()));
        let zeros = "0".repeat(64);
        assert!(!bool::from(failed.ct_eq(zeros.as_bytes())));
        // A failed signing key never turns into a valid-looking signature either.
        assert_eq!(signature(&failed, "GET\n/\n\n"), FAILED_MAC);
    }

    struct Vector {
        name: String,
        ak: String,
        sk: String,
        timestamp: String,
        method: String,
        uri: String,
        /// The raw query string a client would send, built from the vector's parameters.
        raw_query: Option<String>,
        headers: Vec<(String, String)>,
        body: String,
        authorization: String,
    }

    fn str_field(v: &serde_json::Value, key: &str) -> String {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("vector field {key} missing or not a string"))
            .to_owned()
    }

    fn vectors() -> Vec<Vector> {
        // Deliberately fails (does not skip) when no vector file can be read.
        let repo = std::fs::read_to_string(REPO_VECTORS)
            .unwrap_or_else(|e| panic!("cannot read test vectors {REPO_VECTORS}: {e}"));
        let text = match std::fs::read_to_string(SHARED_VECTORS) {
            Ok(shared) => {
                assert_eq!(
                    shared, repo,
                    "tests/vectors/c2-auth.json is stale: copy it from ../shared/spec/vectors/"
                );
                shared
            }
            Err(_) => repo,
        };
        let doc: serde_json::Value = serde_json::from_str(&text).expect("vectors are JSON");
        let list = doc["vectors"].as_array().expect("vectors array");
        assert!(!list.is_empty(), "no vectors");
        list.iter()
            .map(|v| {
                let query = v["query"].as_object().expect("query object");
                // Encode the way a client's URL builder would (RFC 3986 percent-encoding).
                let raw_query = (!query.is_empty()).then(|| {
                    query
                        .iter()
                        .map(|(k, val)| {
                            let mut s = normalized(k.as_bytes());
                            s.push('=');
                            normalize(val.as_str().expect("query value").as_bytes(), &mut s);
                            s
                        })
                        .collect::<Vec<_>>()
                        .join("&")
                });
                let headers = v["signedHeaders"]
                    .as_object()
                    .expect("signedHeaders object")
                    .iter()
                    .map(|(k, val)| (k.clone(), val.as_str().expect("header value").to_owned()))
                    .collect();
                Vector {
                    name: str_field(v, "name"),
                    ak: str_field(v, "ak"),
                    sk: str_field(v, "sk"),
                    timestamp: str_field(v, "timestamp"),
                    method: str_field(v, "method"),
                    uri: str_field(v, "uri"),
                    raw_query,
                    headers,
                    body: str_field(v, "body"),
                    authorization: str_field(v, "authorization"),
                }
            })
            .collect()
    }

    /// A request's headers, as the HTTP layer would expose them.
    /// Verifies `auth` against the request of vector `v` (with `raw_query`) at `now`.
    fn verify_vector(
        v: &Vector,
        auth: &Authorization<'_>,
        raw_query: Option<&str>,
        now: i64,
    ) -> Result<(), AuthError> {
        let headers = request_headers(v);
        let lookup = lookup_in(&headers);
        let parts = SignedParts {
            method: &v.method,
            path: &v.uri,
            raw_query,
            header: &lookup,
            body: v.body.as_bytes(),
        };
        let clock = Clock {
            now_unix: now,
            allowed_skew_secs: 900,
        };
        verify(auth, v.sk.as_bytes(), &parts, clock)
    }

    /// The headers a vector's request carries, as a server receives them.
    fn request_headers(v: &Vector) -> Vec<(String, Vec<u8>)> {
        v.headers
            .iter()
            .map(|(n, val)| (n.clone(), val.as_bytes().to_vec()))
            .collect()
    }

    fn lookup_in<'h>(headers: &'h [(String, Vec<u8>)]) -> impl Fn(&str) -> HeaderLookup<'h> + 'h {
        move |name: &str| {
            let mut found = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
            match (found.next(), found.next()) {
                (None, _) => HeaderLookup::Missing,
                (Some((_, v)), None) => HeaderLookup::One(v),
                (Some(_), Some(_)) => HeaderLookup::Many,
            }
        }
    }

    fn header_refs(headers: &[(String, String)]) -> Vec<(&str, &[u8])> {
        headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect()
    }

    fn owned(headers: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn sign_reproduces_every_vector() {
        for v in vectors() {
            let got = sign(
                &v.ak,
                v.sk.as_bytes(),
                &v.timestamp,
                &ClientRequest {
                    method: &v.method,
                    path: &v.uri,
                    raw_query: v.raw_query.as_deref(),
                    headers: &header_refs(&v.headers),
                    body: v.body.as_bytes(),
                },
            );
            assert_eq!(got, v.authorization, "vector {:?}", v.name);
        }
    }

    #[test]
    fn verify_accepts_every_vector() {
        for v in vectors() {
            let auth = parse_authorization(&v.authorization)
                .unwrap_or_else(|e| panic!("vector {:?}: {e:?}", v.name));
            assert_eq!(auth.ak, v.ak);
            assert_eq!(auth.timestamp, v.timestamp);
            let now = parse_timestamp(&v.timestamp).expect("vector timestamp");
            let result = verify_vector(&v, &auth, v.raw_query.as_deref(), now);
            assert_eq!(result, Ok(()), "vector {:?}", v.name);
        }
    }

    #[test]
    fn the_signing_key_cache_is_filled_only_by_a_valid_signature() {
        use crate::auth::signing_cache::{check_signature_cached, SigningKeyCache};
        let v = vectors().into_iter().next().expect("a vector");
        let good = parse_authorization(&v.authorization).expect("parses");
        let forged_text = format!("{}/{}", good.prefix(), "0".repeat(64));
        let forged = parse_authorization(&forged_text).expect("parses");
        let request_headers = request_headers(&v);
        let lookup = lookup_in(&request_headers);
        let parts = SignedParts {
            method: &v.method,
            path: &v.uri,
            raw_query: v.raw_query.as_deref(),
            header: &lookup,
            body: v.body.as_bytes(),
        };
        let clock = Clock {
            now_unix: good.unix_seconds,
            allowed_skew_secs: 900,
        };
        let canonical = prepare(&good, &parts, clock).expect("prepared");
        let cache = SigningKeyCache::default();
        let sk = v.sk.as_bytes();
        let check = |a: &Authorization<'_>| check_signature_cached(a, sk, &canonical, &cache);

        assert_eq!(check(&forged), Err(AuthError::Mismatch));
        assert_eq!(
            cache.get(&good.prefix()),
            None,
            "a refusal does not fill the cache"
        );
        assert_eq!(check(&good), Ok(()));
        assert_eq!(
            cache.get(&good.prefix()),
            Some(signing_key(sk, &good.prefix()))
        );
        assert_eq!(check(&good), Ok(()), "from the cache");
        assert_eq!(
            check(&forged),
            Err(AuthError::Mismatch),
            "a cached key checks too"
        );
        // Another key's secret never matches a cached entry of this one.
        let other = SigningKeyCache::default();
        assert_eq!(
            check_signature_cached(&good, b"not-the-secret", &canonical, &other),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn query_vector_accepted_with_form_encoding_and_any_order() {
        let v = vectors()
            .into_iter()
            .find(|v| v.raw_query.is_some())
            .expect("a vector with query parameters");
        let auth = parse_authorization(&v.authorization).expect("parses");
        let now = auth.unix_seconds;
        for raw in ["b=x%20y&a=1", "a=1&b=x+y", "a=%31&b=x%20y&"] {
            let result = verify_vector(&v, &auth, Some(raw), now);
            assert_eq!(result, Ok(()), "raw query {raw:?}");
        }
        // Without the query the signature cannot match.
        let result = verify_vector(&v, &auth, None, now);
        assert_eq!(result, Err(AuthError::Mismatch));
    }

    #[test]
    fn empty_query_is_no_query() {
        assert_eq!(canonical_query(None), None);
        assert_eq!(canonical_query(Some("")), None);
        assert_eq!(canonical_query(Some("&&")), None);
        assert_eq!(
            canonical_query(Some("b=x+y&a=1&c")),
            Some("a=1&b=x%20y&c=".to_owned())
        );
        assert_eq!(
            canonical_query(Some("k=%2B%zz")),
            Some("k=%2B%25zz".to_owned())
        );
    }

    #[test]
    fn canonical_request_layout() {
        let with_body = canonical_request(
            "POST",
            "/p",
            None,
            "host;content-type",
            &[("host", b"h:1"), ("content-type", b"a/b")],
            b"{x}",
        );
        assert_eq!(
            with_body,
            "POST\n/p\nhost;content-type\ncontent-type:a%2Fb\nhost:h%3A1\n%7Bx%7D"
        );
        let without_body =
            canonical_request("GET", "/p", Some("a=1"), "host", &[("Host", b"h")], b"");
        assert_eq!(without_body, "GET\n/p\na=1\nhost\nhost:h\n");
    }

    #[test]
    fn normalize_encodes_all_but_unreserved() {
        let mut s = String::new();
        normalize("é ü".as_bytes(), &mut s);
        assert_eq!(s, "%C3%A9%20%C3%BC");
        let unreserved = "ABCXYZabcxyz0189-._~";
        let mut s = String::new();
        normalize(unreserved.as_bytes(), &mut s);
        assert_eq!(s, unreserved);
        let mut s = String::from("keep:");
        normalize(b"/+=%\n\xff", &mut s);
        assert_eq!(s, "keep:%2F%2B%3D%25%0A%FF");
    }

    // A request signed over the first vector's shape, with knobs for the rejection tests.
    const SK: &[u8] = b"testSecretKey123";
    const TS: &str = "2024-01-01T00:00:00Z";
    const PATH: &str = "/rest/cmsapp/v1/openapi/fromisales/realstatistic";
    const BODY: &[u8] = br#"{"ccId":89,"vdn":92,"taskId":"1122104910"}"#;
    const HEADERS: &[(&str, &str)] = &[
        ("host", "10.22.26.181:28080"),
        ("content-type", "application/json;charset=UTF-8"),
    ];

    fn signed(timestamp: &str) -> String {
        let refs: Vec<(&str, &[u8])> = HEADERS.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        sign(
            "globalaktest",
            SK,
            timestamp,
            &ClientRequest {
                method: "POST",
                path: PATH,
                raw_query: None,
                headers: &refs,
                body: BODY,
            },
        )
    }

    fn check(
        authorization: &str,
        sk: &[u8],
        request_headers: &[(String, Vec<u8>)],
        body: &[u8],
        now: i64,
    ) -> Result<(), AuthError> {
        let auth = parse_authorization(authorization)?;
        verify(
            &auth,
            sk,
            &SignedParts {
                method: "POST",
                path: PATH,
                raw_query: None,
                header: &lookup_in(request_headers),
                body,
            },
            Clock {
                now_unix: now,
                allowed_skew_secs: 15 * 60,
            },
        )
    }

    fn ts_now() -> i64 {
        parse_timestamp(TS).expect("valid")
    }

    #[test]
    fn baseline_request_verifies() {
        assert_eq!(
            check(&signed(TS), SK, &owned(HEADERS), BODY, ts_now()),
            Ok(())
        );
    }

    #[test]
    fn rejects_changed_body() {
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(
            check(&signed(TS), SK, &owned(HEADERS), &body, ts_now()),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            check(&signed(TS), SK, &owned(HEADERS), b"", ts_now()),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn rejects_wrong_sk() {
        assert_eq!(
            check(
                &signed(TS),
                b"testSecretKey124",
                &owned(HEADERS),
                BODY,
                ts_now()
            ),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn rejects_changed_signed_header_value() {
        let headers = owned(&[
            ("host", "10.22.26.181:28081"),
            ("content-type", "application/json;charset=UTF-8"),
        ]);
        assert_eq!(
            check(&signed(TS), SK, &headers, BODY, ts_now()),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn clock_skew() {
        let t = ts_now();
        for (offset_min, expected) in [
            (16, Err(AuthError::Expired)),
            (-16, Err(AuthError::Expired)),
            (14, Ok(())),
            (-14, Ok(())),
            (15, Ok(())),
        ] {
            let ts = format_timestamp(t + offset_min * 60);
            assert_eq!(
                check(&signed(&ts), SK, &owned(HEADERS), BODY, t),
                expected,
                "{offset_min} min"
            );
        }
        // The clock is checked before the signature: a stale request with a bad signature is
        // reported as expired.
        let ts = format_timestamp(t - 16 * 60);
        assert_eq!(
            check(&signed(&ts), b"wrong", &owned(HEADERS), BODY, t),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn rejects_missing_or_repeated_signed_header() {
        let missing = owned(&[("host", "10.22.26.181:28080")]);
        assert_eq!(
            check(&signed(TS), SK, &missing, BODY, ts_now()),
            Err(AuthError::Malformed)
        );
        let repeated = owned(&[
            ("host", "10.22.26.181:28080"),
            ("content-type", "application/json;charset=UTF-8"),
            ("Content-Type", "application/json;charset=UTF-8"),
        ]);
        assert_eq!(
            check(&signed(TS), SK, &repeated, BODY, ts_now()),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn unsigned_extra_headers_are_ignored() {
        let mut headers = owned(HEADERS);
        headers.push(("x-extra".into(), b"anything".to_vec()));
        headers.push(("x-extra".into(), b"twice".to_vec()));
        assert_eq!(check(&signed(TS), SK, &headers, BODY, ts_now()), Ok(()));
    }

    #[test]
    fn server_uses_signed_headers_verbatim() {
        // A client that lists its headers unsorted; the prefix and the canonical request carry
        // that order, only the header lines are sorted.
        let order = "host;content-type";
        let prefix = auth_string_prefix("globalaktest", TS, order);
        let key = signing_key(SK, &prefix);
        let refs: Vec<(&str, &[u8])> = HEADERS.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        let canonical = canonical_request("POST", PATH, None, order, &refs, BODY);
        let sig = signature(&key, &canonical);
        let authorization = format!(
            "{prefix}/{}",
            std::str::from_utf8(&sig).expect("hex is ASCII")
        );
        assert_eq!(
            check(&authorization, SK, &owned(HEADERS), BODY, ts_now()),
            Ok(())
        );
        // The sorted form is a different prefix, so that signature does not carry over.
        let resorted = authorization.replace(order, "content-type;host");
        assert_eq!(
            check(&resorted, SK, &owned(HEADERS), BODY, ts_now()),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn parse_rejects_malformed_values() {
        let good = signed(TS);
        assert!(parse_authorization(&good).is_ok());
        let sig = good.rsplit('/').next().expect("has signature").to_owned();
        let prefix = "auth-v2/globalaktest/2024-01-01T00:00:00Z";
        let bad = [
            String::new(),
            format!("{prefix}/content-type/{sig}"), // no host
            format!("{prefix}/content-type;Host/{sig}"),
            format!("{prefix}/host;;content-type/{sig}"),
            format!("{prefix}/host;host/{sig}"),
            format!("{prefix}//{sig}"),
            format!("{prefix}/host/{}", &sig[..63]),
            format!("{prefix}/host/{sig}0"),
            format!("{prefix}/host/{}", sig.to_ascii_uppercase()),
            format!("{prefix}/host/{}g", &sig[..63]),
            format!("{prefix}/host/{sig}/"),
            format!("{prefix}/host"),
            format!("auth-v1/globalaktest/2024-01-01T00:00:00Z/host/{sig}"),
            format!("AUTH-V2/globalaktest/2024-01-01T00:00:00Z/host/{sig}"),
            format!("auth-v2//2024-01-01T00:00:00Z/host/{sig}"),
            format!(
                "auth-v2/{}/2024-01-01T00:00:00Z/host/{sig}",
                "a".repeat(129)
            ),
            format!("auth-v2/globalaktest/2024-02-30T00:00:00Z/host/{sig}"),
            format!("auth-v2/globalaktest/2023-02-29T00:00:00Z/host/{sig}"),
            format!("auth-v2/globalaktest/2024-01-01 00:00:00Z/host/{sig}"),
            format!("auth-v2/globalaktest/2024-01-01T00:00:00/host/{sig}"),
            format!("auth-v2/globalaktest/2024-01-01T00:00:00+08:00/host/{sig}"),
            format!("auth-v2/globalaktest/2024-01-01T24:00:00Z/host/{sig}"),
            format!("auth-v2/globalaktest/2024-01-01T00:00:60Z/host/{sig}"),
            format!("auth-v2/globalaktest/2024-13-01T00:00:00Z/host/{sig}"),
            format!("auth-v2/globalaktest/2024-1-01T00:00:00Z/host/{sig}"),
            format!("auth-v2/globalaktest/+024-01-01T00:00:00Z/host/{sig}"),
            format!(" {good}"),
        ];
        for value in &bad {
            assert_eq!(
                parse_authorization(value),
                Err(AuthError::Malformed),
                "{value:?}"
            );
        }
        let max_ak = format!(
            "auth-v2/{}/2024-01-01T00:00:00Z/host/{sig}",
            "a".repeat(128)
        );
        assert!(parse_authorization(&max_ak).is_ok());
        assert!(
            parse_authorization(&format!("{prefix}/content-length;host;x-a_b.c/{sig}")).is_ok()
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp("2024-01-01T00:00:00Z"), Some(1_704_067_200));
        assert_eq!(parse_timestamp("2024-02-29T23:59:59Z"), Some(1_709_251_199));
        assert_eq!(parse_timestamp("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_timestamp("1900-02-29T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2024-02-30T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2024-04-31T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2024-00-10T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2024-01-00T00:00:00Z"), None);
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn error_texts_are_safe() {
        assert_eq!(
            AuthError::UnknownKey.to_string(),
            AuthError::Mismatch.to_string()
        );
        let all = [
            AuthError::Missing,
            AuthError::Malformed,
            AuthError::Expired,
            AuthError::UnknownKey,
            AuthError::Mismatch,
        ];
        let labels: Vec<&str> = all.iter().map(|e| e.category().label()).collect();
        assert_eq!(
            labels,
            ["missing", "malformed", "expired", "unknown_key", "mismatch"]
        );
        for e in all {
            assert!(e.to_string().starts_with("Authentication failed"));
        }
    }

    proptest::proptest! {
        #[test]
        fn timestamp_round_trip(secs in -62_135_596_800i64..253_402_300_799) {
            let text = format_timestamp(secs);
            proptest::prop_assert_eq!(parse_timestamp(&text), Some(secs));
        }

        #[test]
        fn sign_then_verify(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            host in "[ -~]{1,40}",
            sk in proptest::collection::vec(proptest::num::u8::ANY, 1..64),
            query in proptest::option::of("[a-z]{1,5}=[ -~&&[^&+%#]]{0,10}"),
        ) {
            let headers = [("Host", host.as_bytes())];
            let authorization =
                sign("ak", &sk, TS, &ClientRequest { method: "POST", path: PATH, raw_query: query.as_deref(), headers: &headers, body: &body });
            let auth = parse_authorization(&authorization).expect("own output parses");
            let request = vec![("host".to_owned(), host.into_bytes())];
            let result = verify(&auth, &sk, &SignedParts { method: "POST", path: PATH, raw_query: query.as_deref(), header: &lookup_in(&request), body: &body }, Clock { now_unix: ts_now(), allowed_skew_secs: 0 });
            proptest::prop_assert_eq!(result, Ok(()));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            let _ = parse_authorization(&s);
        }
    }
}
