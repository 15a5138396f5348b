//! Lockout of client addresses that fail authentication too often (api.md: 403, "IP address is
//! locked"). A locked address is refused before its signature is even computed, so a guessing
//! client costs almost nothing.
//!
//! Memory is bounded: at most `max_tracked` addresses are tracked; when full, entries that hold
//! no lock and no recent failure are dropped first, and if that is not enough, every unlocked
//! entry is (the locks, which matter, are kept).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures within `window` that lock an address; 0 disables lockout.
    pub threshold: u32,
    pub window: Duration,
    pub duration: Duration,
    pub max_tracked: usize,
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
    entries: Mutex<HashMap<IpAddr, Entry>>,
    /// No lock lasts beyond this point (nanoseconds after `base`, plus one; 0: none ever set).
    /// Every request asks `is_locked`; while no address is locked, which is nearly always, the
    /// answer comes from this one atomic read instead of a mutex that every worker thread would
    /// otherwise take, in turn, on every request.
    horizon: AtomicU64,
    base: Instant,
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Self {
        Lockout {
            policy,
            entries: Mutex::new(HashMap::new()),
            horizon: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    /// Whether `ip` is locked now.
    pub fn is_locked(&self, ip: IpAddr) -> bool {
        self.is_locked_at(ip, Instant::now())
    }

    pub fn is_locked_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.policy.threshold == 0 || self.nanos(now) >= self.horizon.load(Ordering::Acquire) {
            return false;
        }
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&ip)
            .and_then(|e| e.locked_until)
            .is_some_and(|until| now < until)
    }

    /// Records a failed authentication; returns true when this failure locks the address.
    pub fn record_failure(&self, ip: IpAddr) -> bool {
        self.record_failure_at(ip, Instant::now())
    }

    pub fn record_failure_at(&self, ip: IpAddr, now: Instant) -> bool {
        let p = self.policy;
        if p.threshold == 0 {
            return false;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !entries.contains_key(&ip) && entries.len() >= p.max_tracked {
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
        let e = entries.entry(ip).or_insert(Entry {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!l.record_failure_at(a, t0));
        assert!(!l.record_failure_at(a, t0 + Duration::from_secs(1)));
        assert!(!l.is_locked_at(a, t0 + Duration::from_secs(2)));
        assert!(l.record_failure_at(a, t0 + Duration::from_secs(2)));
        assert!(l.is_locked_at(a, t0 + Duration::from_secs(3)));
        assert!(!l.is_locked_at(ip("10.0.0.2"), t0), "per address");
        assert!(l.is_locked_at(a, t0 + Duration::from_secs(301)));
        assert!(
            !l.is_locked_at(a, t0 + Duration::from_secs(303)),
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
        assert!(!l.is_locked_at(a, t0), "nothing locked yet");
        for _ in 0..3 {
            l.record_failure_at(a, t0);
        }
        for _ in 0..3 {
            l.record_failure_at(b, t0 + s(100));
        }
        assert!(l.is_locked_at(a, t0 + s(299)));
        assert!(
            !l.is_locked_at(a, t0 + s(301)),
            "a's lock ran out while b's holds"
        );
        assert!(l.is_locked_at(b, t0 + s(399)));
        assert!(!l.is_locked_at(b, t0 + s(401)));
        assert!(!l.is_locked_at(a, t0 + s(401)));
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let l = Lockout::new(policy());
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        for i in 0..10 {
            assert!(!l.record_failure_at(a, t0 + Duration::from_secs(61 * i)));
        }
        assert!(!l.is_locked_at(a, t0 + Duration::from_secs(610)));
    }

    #[test]
    fn tracking_is_bounded_and_keeps_locks() {
        let l = Lockout::new(policy());
        let t0 = Instant::now();
        let locked = ip("192.0.2.1");
        for _ in 0..3 {
            l.record_failure_at(locked, t0);
        }
        for i in 0..100u8 {
            l.record_failure_at(IpAddr::from([198, 51, 100, i]), t0 + Duration::from_secs(1));
            assert!(l.tracked() <= 4);
        }
        assert!(l.is_locked_at(locked, t0 + Duration::from_secs(2)));
    }

    #[test]
    fn disabled_with_threshold_zero() {
        let l = Lockout::new(LockoutPolicy {
            threshold: 0,
            ..policy()
        });
        for _ in 0..10 {
            assert!(!l.record_failure(ip("10.0.0.1")));
        }
        assert!(!l.is_locked(ip("10.0.0.1")));
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
