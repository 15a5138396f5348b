//! The derived signing key of a busy client, kept between its requests.

use subtle::ConstantTimeEq;

use super::c2::{signature, signing_key, AuthError, Authorization};

/// The signing key of the last prefix a key verified. A client signs every request of one second
/// with the same prefix (`auth-v2/AK/timestamp/signedHeaders`), so a busy client's requests skip
/// the first HMAC. One slot per key: bounded by the number of keys, and cheap to check.
///
/// Only a *successful* verification fills it, so a client without the secret cannot warm it,
/// and the time of a refusal never depends on it: an unknown key and a wrong signature still
/// cost the same.
#[derive(Default)]
pub struct SigningKeyCache {
    slot: std::sync::Mutex<Option<CachedKey>>,
}

/// A prefix and the signing key derived for it.
type CachedKey = (Box<str>, zeroize::Zeroizing<[u8; 64]>);

impl SigningKeyCache {
    pub(crate) fn get(&self, prefix: &str) -> Option<[u8; 64]> {
        let slot = self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.as_ref()
            .filter(|(p, _)| &**p == prefix)
            .map(|(_, k)| **k)
    }

    fn put(&self, prefix: &str, key: [u8; 64]) {
        let mut slot = self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some((prefix.into(), zeroize::Zeroizing::new(key)));
    }
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeyCache(..)")
    }
}

/// [`check_signature`] through a key's [`SigningKeyCache`].
pub fn check_signature_cached(
    auth: &Authorization<'_>,
    sk: &[u8],
    canonical_request: &str,
    cache: &SigningKeyCache,
) -> Result<(), AuthError> {
    let prefix = auth.prefix();
    let (key, cached) = match cache.get(&prefix) {
        Some(k) => (k, true),
        None => (signing_key(sk, &prefix), false),
    };
    let key = zeroize::Zeroizing::new(key);
    let expected = signature(&key, canonical_request);
    if !bool::from(expected.ct_eq(auth.signature.as_bytes())) {
        return Err(AuthError::Mismatch);
    }
    if !cached {
        cache.put(&prefix, *key);
    }
    Ok(())
}
