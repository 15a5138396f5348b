//! C2 AK/SK request authentication (`auth-v2`) and the keys it is checked against.
//!
//! A client signs `auth-v2/{AK}/{timestamp}/{signedHeaders}` with its secret key, then signs a
//! canonical form of the request (method, path, query, the signed headers, the percent-encoded
//! body) with the hex text of that first HMAC, and sends
//! `Authorization: auth-v2/{AK}/{timestamp}/{signedHeaders}/{signature}`. The full definition is
//! in `spec/api.md`; [`c2`] implements it as pure functions and [`keys`] holds the secrets.
//!
//! Why it is built this way:
//! - The algorithm is the vendor's, quirks and all (the second HMAC is keyed with hex *text*, the
//!   body is percent-encoded rather than hashed): existing CC-CMS clients must work unchanged,
//!   and the published vectors are the arbiter.
//! - The server reuses the client's `signedHeaders` text verbatim instead of re-sorting it:
//!   the vendor's clients sort before lower-casing, so only the client knows its order.
//! - [`authenticate`] checks everything that needs no key (format, clock, signed headers)
//!   *before* looking the AK up, and for an unknown AK still computes an HMAC with a throwaway
//!   key. A client therefore cannot tell from the answer, nor from its timing, whether an AK
//!   exists; `UnknownKey` and `Mismatch` also share their client-facing text. The metrics label
//!   ([`AuthError::category`]) still tells operators which one it was.
//! - Signatures are compared in constant time; secrets are zeroized on drop and never printed.
//! - Keys are swapped whole behind an `RwLock<Arc<_>>` so a reload (file change or SIGHUP)
//!   never needs a restart and never exposes a half-read file; a broken file keeps the old keys.
//! - Nothing here knows about actix: the HTTP layer hands over a header-lookup closure, so the
//!   whole scheme is tested against the vectors without a server. (On HTTP/2 the adapter should
//!   answer `host` from the `:authority` pseudo-header.)

pub mod c2;
pub mod client;
pub mod hosts;
pub mod keys;
pub mod lockout;
pub mod signing_cache;

use std::sync::Arc;

pub use c2::{
    format_timestamp, parse_authorization, sign, verify, AuthError, Authorization, ClientRequest,
    Clock, HeaderLookup, SignedParts,
};
pub use hosts::{AllowedHosts, HostError};
pub use keys::{
    spawn_reloader, KeyEntry, KeyProblem, KeySet, Keys, KeysError, Scope, Secret, MAX_VDN,
};
pub use lockout::{client_ip, client_ip_of, Lockout, LockoutPolicy};

/// The whole server-side check, from the raw Authorization header to the key that signed it.
///
/// `authorization` is the header value, `None` when absent (the caller answers `Malformed` itself
/// for a repeated or non-UTF-8 one). On success the caller still has to check
/// [`KeyEntry::may_read`] for the requested call center and VDN.
pub fn authenticate(
    keys: &Keys,
    authorization: Option<&str>,
    request: &SignedParts<'_, '_>,
    clock: Clock,
) -> Result<Arc<KeyEntry>, AuthError> {
    let auth = parse_authorization(authorization.ok_or(AuthError::Missing)?)?;
    let canonical = c2::prepare(&auth, request, clock)?;
    match keys.lookup(auth.ak) {
        Some(entry) => {
            signing_cache::check_signature_cached(
                &auth,
                entry.secret.expose(),
                &canonical,
                &entry.signing_keys,
            )?;
            Ok(entry)
        }
        None => {
            // Same work as for a known key, so response time does not reveal whether the AK
            // exists. The result is irrelevant: the secret is not anyone's.
            let _ = c2::check_signature(&auth, b"realstat-unknown-access-key", &canonical);
            Err(AuthError::UnknownKey)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SK: &str = "testSecretKey123";
    const TS: &str = "2024-01-01T00:00:00Z";
    const BODY: &[u8] = br#"{"ccId":89,"vdn":92,"taskId":"1122104910"}"#;
    const HOST: &[u8] = b"10.22.26.181:28080";

    fn host_only(name: &str) -> HeaderLookup<'static> {
        if name == "host" {
            HeaderLookup::One(HOST)
        } else {
            HeaderLookup::Missing
        }
    }

    fn run(keys: &Keys, authorization: Option<&str>, now: i64) -> Result<Arc<KeyEntry>, AuthError> {
        authenticate(
            keys,
            authorization,
            &SignedParts {
                method: "POST",
                path: "/p",
                raw_query: None,
                header: &host_only,
                body: BODY,
            },
            Clock {
                now_unix: now,
                allowed_skew_secs: 900,
            },
        )
    }

    fn signed(ak: &str, ts: &str) -> String {
        sign(
            ak,
            SK.as_bytes(),
            ts,
            &ClientRequest {
                method: "POST",
                path: "/p",
                raw_query: None,
                headers: &[("host", HOST)],
                body: BODY,
            },
        )
    }

    #[test]
    fn authenticate_outcomes() {
        let keys = Keys::new(KeySet::single("known", SK));
        let now = c2::parse_timestamp(TS).expect("valid");

        let entry = run(&keys, Some(&signed("known", TS)), now).expect("authenticates");
        assert_eq!(entry.ak, "known");

        assert_eq!(run(&keys, None, now).err(), Some(AuthError::Missing));
        assert_eq!(
            run(&keys, Some("Bearer x"), now).err(),
            Some(AuthError::Malformed)
        );
        assert_eq!(
            run(&keys, Some(&signed("unknown", TS)), now).err(),
            Some(AuthError::UnknownKey)
        );
        let other = Keys::new(KeySet::single("known", "anotherSecret"));
        assert_eq!(
            run(&other, Some(&signed("known", TS)), now).err(),
            Some(AuthError::Mismatch)
        );
    }

    #[test]
    fn key_independent_checks_come_first() {
        // Whether or not the AK exists, a stale or incomplete request gets the same answer, so
        // those answers cannot be used to probe for valid access keys.
        let keys = Keys::new(KeySet::single("known", SK));
        let now = c2::parse_timestamp(TS).expect("valid");
        for ak in ["known", "unknown"] {
            assert_eq!(
                run(&keys, Some(&signed(ak, TS)), now + 3600).err(),
                Some(AuthError::Expired),
                "{ak}"
            );
            let with_extra = sign(
                ak,
                SK.as_bytes(),
                TS,
                &ClientRequest {
                    method: "POST",
                    path: "/p",
                    raw_query: None,
                    headers: &[("host", HOST), ("x-signed", b"v")],
                    body: BODY,
                },
            );
            assert_eq!(
                run(&keys, Some(&with_extra), now).err(),
                Some(AuthError::Malformed),
                "{ak}"
            );
        }
    }
}
