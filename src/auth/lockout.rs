//! Lockout of clients that fail authentication too often (api.md: 403, "IP address is locked").
//! A locked client is refused before its signature is even computed, so a guessing client costs
//! almost nothing.
//!
//! What is locked is a [`Subject`]: the client address *and* the access key the request names,
//! so that behind a balancer whose clients share one address (no trusted proxies configured), a
//! stranger's bad signatures lock that stranger's key at that address, not a supervisor who signs
//! with a good key of its own. A request that names no key (no or an unreadable `Authorization`)
//! counts against the address alone: the per-address limit of keyless clients, which can never
//! lock out a request that names a key. The key is taken as written, known or not, and the two are
//! treated alike: a lockout that told an unknown key from a known one (say, a per-address lock
//! for unknown keys only) would answer "which keys exist" in one request once tripped.
//!
//! Memory is bounded: at most `max_tracked` subjects are tracked; when full, entries that hold
//! no lock and no recent failure are dropped first, and if that is not enough, every unlocked
//! entry is (the locks, which matter, are kept).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures within `window` that lock a subject; 0 disables lockout.
    pub threshold: u32,
    pub window: Duration,
    pub duration: Duration,
    pub max_tracked: usize,
}

/// What failures count against: a client address and the access key its requests name (a keyed
/// hash of the text as sent: fixed size whatever the client writes, and no collision a client
/// could aim at another's key), or the address alone when they name none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Subject {
    ip: IpAddr,
    key: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

#[derive(Debug)]
pub struct Lockout {
    policy: LockoutPolicy,
    // A std Mutex: held for a hash lookup, never across an await.
    entries: Mutex<HashMap<Subject, Entry>>,
    /// No lock lasts beyond this point (nanoseconds after `base`, plus one; 0: none ever set).
    /// Every request asks `is_locked`; while nothing is locked, which is nearly always, the
    /// answer comes from this one atomic read instead of a mutex that every worker thread would
    /// otherwise take, in turn, on every request (and the key is not even looked for).
    horizon: AtomicU64,
    base: Instant,
    /// Seeds the hash of access keys, per process.
    hasher: RandomState,
    /// The shared-address warning was logged (once per listener).
    warned: AtomicBool,
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Self {
        Lockout {
            policy,
            entries: Mutex::new(HashMap::new()),
            horizon: AtomicU64::new(0),
            base: Instant::now(),
            hasher: RandomState::new(),
            warned: AtomicBool::new(false),
        }
    }

    fn subject(&self, ip: IpAddr, access_key: Option<&str>) -> Subject {
        Subject {
            ip,
            key: access_key.map(|ak| self.hasher.hash_one(ak)),
        }
    }

    /// Whether `ip` is locked now for the access key `access_key` names (called only when
    /// some lock is in force, so the common request does not look for its key).
    pub fn is_locked<'a>(&self, ip: IpAddr, access_key: impl FnOnce() -> Option<&'a str>) -> bool {
        self.is_locked_at(ip, access_key, Instant::now())
    }

    pub fn is_locked_at<'a>(
        &self,
        ip: IpAddr,
        access_key: impl FnOnce() -> Option<&'a str>,
        now: Instant,
    ) -> bool {
        if self.policy.threshold == 0 || self.nanos(now) >= self.horizon.load(Ordering::Acquire) {
            return false;
        }
        let subject = self.subject(ip, access_key());
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&subject)
            .and_then(|e| e.locked_until)
            .is_some_and(|until| now < until)
    }

    /// Records a failed authentication of a request from `ip` naming `access_key`; returns true
    /// when this failure locks it.
    pub fn record_failure(&self, ip: IpAddr, access_key: Option<&str>) -> bool {
        self.record_failure_at(ip, access_key, Instant::now())
    }

    pub fn record_failure_at(&self, ip: IpAddr, access_key: Option<&str>, now: Instant) -> bool {
        let p = self.policy;
        if p.threshold == 0 {
            return false;
        }
        let subject = self.subject(ip, access_key);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !entries.contains_key(&subject) && entries.len() >= p.max_tracked {
            entries.retain(|_, e| {
                e.locked_until.is_some_and(|u| now < u)
                    || now.duration_since(e.window_start) < p.window
            });
            if entries.len() >= p.max_tracked {
                entries.retain(|_, e| e.locked_until.is_some_and(|u| now < u));
            }
            if entries.len() >= p.max_tracked {
                return false;
            }
        }
        let e = entries.entry(subject).or_insert(Entry {
            window_start: now,
            failures: 0,
            locked_until: None,
        });
        if e.locked_until.is_some_and(|u| now >= u) {
            // The lock ran out: start afresh.
            *e = Entry {
                window_start: now,
                failures: 0,
                locked_until: None,
            };
        }
        if now.duration_since(e.window_start) >= p.window {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures += 1;
        if e.failures >= p.threshold && e.locked_until.is_none() {
            let until = now + p.duration;
            e.locked_until = Some(until);
            self.horizon
                .fetch_max(self.nanos(until).saturating_add(1), Ordering::AcqRel);
            return true;
        }
        false
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn tracked(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// For a listener with no trusted proxies: true the first time a request comes from a
    /// private address (the caller logs it), since that is what a balancer or an ingress looks
    /// like, and then every client behind it is one address to the lockout. One atomic read per
    /// request after that.
    pub fn first_private_peer(&self, peer: IpAddr) -> bool {
        !self.warned.load(Ordering::Relaxed)
            && is_private(peer)
            && !self.warned.swap(true, Ordering::Relaxed)
    }
}

/// RFC 1918, shared address space (RFC 6598: carrier-grade NAT, some clusters) and IPv6 unique
/// local addresses: where balancers and pods live. Not loopback: a client on the same host is
/// rarely a balancer, and every local test would warn.
fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// The access key an `Authorization` value names (`auth-v2/{ak}/...`), whether or not the rest
/// of it is well formed: what the lockout counts a failure against. `None`: no key named.
pub fn access_key_named(authorization: &str) -> Option<&str> {
    let rest = authorization
        .strip_prefix(super::c2::SCHEME)?
        .strip_prefix('/')?;
    let ak = rest.split('/').next().unwrap_or("");
    (!ak.is_empty()).then_some(ak)
}

/// The client's address: the socket peer, or, when the peer is a trusted proxy (the NSLB), the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
///
/// `forwarded_for` holds every `X-Forwarded-For` line of the request, in the order received
/// (an unreadable one as `""`). Together they are one comma-separated list (RFC 9110, 5.3), and
/// only its right end, written by the trusted hops, can be believed: the walk goes right to left
/// over trusted hops and stops at the first other address. Reading only the first line would
/// let a client put its own line first and choose the address it is locked out by.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: &[&str],
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let mut chosen = peer;
    let entries = forwarded_for.iter().rev().flat_map(|line| line.rsplit(','));
    for part in entries {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => chosen = ip,
            Ok(ip) => return Some(ip),
            // Garbage in the header: stop at what we can trust.
            Err(_) => return Some(chosen),
        }
    }
    Some(chosen)
}

/// [`client_ip`] over the `X-Forwarded-For` lines as the HTTP layer yields them (an unreadable
/// line as `""`). Almost always there is none, or one: no list is built then.
pub fn client_ip_of<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let mut lines = forwarded_for.into_iter();
    match (lines.next(), lines.next()) {
        (None, _) => client_ip(peer, &[], trusted),
        (Some(one), None) => client_ip(peer, &[one], trusted),
        (Some(first), Some(second)) => {
            let all: Vec<&str> = [first, second].into_iter().chain(lines).collect();
            client_ip(peer, &all, trusted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The access key of the requests of most tests.
    const K: Option<&str> = Some("supervisor-ak");

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            threshold: 3,
            window: Duration::from_secs(60),
            duration: Duration::from_secs(300),
            max_tracked: 4,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn locks_after_threshold_within_window_and_expires() {
        let l = Lockout::new(policy());
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        assert!(!l.record_failure_at(a, K, t0));
        assert!(!l.record_failure_at(a, K, t0 + Duration::from_secs(1)));
        assert!(!l.is_locked_at(a, || K, t0 + Duration::from_secs(2)));
        assert!(l.record_failure_at(a, K, t0 + Duration::from_secs(2)));
        assert!(l.is_locked_at(a, || K, t0 + Duration::from_secs(3)));
        assert!(!l.is_locked_at(ip("10.0.0.2"), || K, t0), "per address");
        assert!(l.is_locked_at(a, || K, t0 + Duration::from_secs(301)));
        assert!(
            !l.is_locked_at(a, || K, t0 + Duration::from_secs(303)),
            "the lock expires"
        );
    }

    /// The atomic shortcut answers "not locked" only when every lock has run out.
    #[test]
    fn the_shortcut_never_hides_a_lock() {
        let l = Lockout::new(policy());
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        assert!(!l.is_locked_at(a, || K, t0), "nothing locked yet");
        for _ in 0..3 {
            l.record_failure_at(a, K, t0);
        }
        for _ in 0..3 {
            l.record_failure_at(b, K, t0 + s(100));
        }
        assert!(l.is_locked_at(a, || K, t0 + s(299)));
        assert!(
            !l.is_locked_at(a, || K, t0 + s(301)),
            "a's lock ran out while b's holds"
        );
        assert!(l.is_locked_at(b, || K, t0 + s(399)));
        assert!(!l.is_locked_at(b, || K, t0 + s(401)));
        assert!(!l.is_locked_at(a, || K, t0 + s(401)));
    }

    /// Issue 18.3: behind one address, a stranger's failures lock the stranger's key (or, with
    /// no key, the keyless requests of that address), never another key's requests.
    #[test]
    fn failures_lock_the_key_they_name_at_that_address_only() {
        let l = Lockout::new(policy());
        let t0 = Instant::now();
        let shared = ip("10.0.0.1");
        for _ in 0..3 {
            l.record_failure_at(shared, Some("stranger"), t0);
            l.record_failure_at(shared, None, t0);
        }
        let at = t0 + Duration::from_secs(1);
        assert!(l.is_locked_at(shared, || Some("stranger"), at));
        assert!(l.is_locked_at(shared, || None, at), "keyless requests");
        assert!(!l.is_locked_at(shared, || K, at), "the supervisor's key");
        assert!(!l.is_locked_at(ip("10.0.0.2"), || Some("stranger"), at));
        // A known and an unknown key are alike: the text is what counts.
        assert!(!l.is_locked_at(shared, || Some("stranger2"), at));
    }

    #[test]
    fn the_key_is_read_from_any_auth_v2_value() {
        assert_eq!(access_key_named("auth-v2/ak/ts/host/sig"), Some("ak"));
        assert_eq!(access_key_named("auth-v2/ak"), Some("ak"));
        assert_eq!(access_key_named("auth-v2//x"), None);
        assert_eq!(access_key_named("Bearer x"), None);
        assert_eq!(access_key_named(""), None);
    }

    #[test]
    fn private_peers_warn_once() {
        let l = Lockout::new(policy());
        for public in [
            "127.0.0.1",
            "203.0.113.9",
            "::1",
            "100.128.0.1",
            "2001:db8::1",
        ] {
            assert!(!l.first_private_peer(ip(public)), "{public}");
        }
        assert!(l.first_private_peer(ip("10.42.0.7")));
        for private in ["10.42.0.8", "172.16.0.1", "192.168.1.1", "fd00::1"] {
            assert!(!l.first_private_peer(ip(private)), "once only: {private}");
        }
        for private in [
            "172.31.255.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip(private)), "{private}");
        }
        assert!(!is_private(ip("172.32.0.1")));
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let l = Lockout::new(policy());
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        for i in 0..10 {
            assert!(!l.record_failure_at(a, K, t0 + Duration::from_secs(61 * i)));
        }
        assert!(!l.is_locked_at(a, || K, t0 + Duration::from_secs(610)));
    }

    #[test]
    fn tracking_is_bounded_and_keeps_locks() {
        let l = Lockout::new(policy());
        let t0 = Instant::now();
        let locked = ip("192.0.2.1");
        for _ in 0..3 {
            l.record_failure_at(locked, K, t0);
        }
        for i in 0..100u8 {
            l.record_failure_at(
                IpAddr::from([198, 51, 100, i]),
                K,
                t0 + Duration::from_secs(1),
            );
            assert!(l.tracked() <= 4);
        }
        assert!(l.is_locked_at(locked, || K, t0 + Duration::from_secs(2)));
    }

    #[test]
    fn disabled_with_threshold_zero() {
        let l = Lockout::new(LockoutPolicy {
            threshold: 0,
            ..policy()
        });
        for _ in 0..10 {
            assert!(!l.record_failure(ip("10.0.0.1"), K));
        }
        assert!(!l.is_locked(ip("10.0.0.1"), || K));
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let nslb = ip("10.1.1.1");
        let trusted = [nslb, ip("10.1.1.2")];
        // Untrusted peer: its own address, whatever it claims.
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), &["1.2.3.4"], &trusted),
            Some(ip("203.0.113.9"))
        );
        // Through the NSLB: the address it saw.
        assert_eq!(
            client_ip(Some(nslb), &["1.2.3.4, 198.51.100.7"], &trusted),
            Some(ip("198.51.100.7"))
        );
        // Through two trusted hops.
        assert_eq!(
            client_ip(Some(nslb), &["198.51.100.7, 10.1.1.2"], &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(client_ip(Some(nslb), &[], &trusted), Some(nslb));
        assert_eq!(client_ip(Some(nslb), &["junk"], &trusted), Some(nslb));
        assert_eq!(client_ip(None, &["1.2.3.4"], &trusted), None);
    }

    #[test]
    fn every_forwarded_for_line_counts_as_one_list() {
        let nslb = ip("10.1.1.1");
        let trusted = [nslb, ip("10.1.1.2")];
        // The client's own (forged) line first, the balancer's line after it: the balancer's
        // entry is the client, whatever the first line says.
        assert_eq!(
            client_ip(Some(nslb), &["203.0.113.66", "198.51.100.7"], &trusted),
            Some(ip("198.51.100.7"))
        );
        // A trusted hop's line last: skipped, the entry before it (in the earlier line) counts.
        assert_eq!(
            client_ip(Some(nslb), &["198.51.100.7", "10.1.1.2"], &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_ip(
                Some(nslb),
                &["203.0.113.66, 198.51.100.7", "10.1.1.2, 10.1.1.1"],
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        // Garbage (or an unreadable line) stops the walk at the last trusted hop.
        assert_eq!(
            client_ip(Some(nslb), &["junk", "10.1.1.2"], &trusted),
            Some(ip("10.1.1.2"))
        );
        assert_eq!(
            client_ip(Some(nslb), &["", "10.1.1.2"], &trusted),
            Some(ip("10.1.1.2"))
        );
        // Only trusted hops: the farthest of them.
        assert_eq!(
            client_ip(Some(nslb), &["10.1.1.2", "10.1.1.1"], &trusted),
            Some(ip("10.1.1.2"))
        );
    }
}
