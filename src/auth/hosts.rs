//! The names this service answers to (`auth.allowed_hosts`): a request whose `Host` is not one
//! of them is refused (401, category `wrong_host`), so a request signed for another host that
//! shares the key cannot be replayed here. The `Host` is part of the C2 signature, so the client
//! cannot change it without the secret; this check makes the signed name mean something.
//!
//! A name is a host name (compared without case, a trailing dot ignored) or an address (compared
//! as an address, so `[::1]` and `[0:0::1]` are one); the port is ignored on both sides. An
//! empty list allows every host (the default, for a start without configuration).

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a host name or address (with an optional port; IPv6 in brackets)")]
pub struct HostError(pub String);

/// One allowed name: a host name in lower case, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Name(String),
    Address(IpAddr),
}

/// The host of a request, borrowed from its header: read on every request, so no allocation.
#[derive(Debug, Clone, Copy)]
enum HostRef<'a> {
    Name(&'a str),
    Address(IpAddr),
}

impl Host {
    fn matches(&self, host: HostRef<'_>) -> bool {
        match (self, host) {
            (Host::Name(allowed), HostRef::Name(name)) => allowed.eq_ignore_ascii_case(name),
            (Host::Address(allowed), HostRef::Address(ip)) => *allowed == ip,
            _ => false,
        }
    }
}

/// The allowed hosts; empty: any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<Host>);

impl AllowedHosts {
    /// Reads the configured entries: each a host name or an address, a port allowed and ignored;
    /// an IPv6 address bare or in brackets.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowedHosts, HostError> {
        let hosts = entries
            .iter()
            .map(|entry| {
                let text = entry.as_ref().trim();
                // A bare IPv6 address is accepted in the configuration (not in a Host header).
                match text.parse::<IpAddr>() {
                    Ok(ip) => Some(Host::Address(ip)),
                    Err(_) => host_of(text.as_bytes()).map(|host| match host {
                        HostRef::Name(name) => Host::Name(name.to_ascii_lowercase()),
                        HostRef::Address(ip) => Host::Address(ip),
                    }),
                }
                .ok_or_else(|| HostError(text.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowedHosts(hosts))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request whose `Host` is `value` (as received; `None`: absent or repeated) is
    /// for this service.
    pub fn allows(&self, value: Option<&[u8]>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        value
            .and_then(host_of)
            .is_some_and(|host| self.0.iter().any(|allowed| allowed.matches(host)))
    }
}

/// The host of a `Host` value (RFC 9110, 7.2: `uri-host [ ":" port ]`): a name without its
/// trailing dot, or an address. `None`: not a host.
fn host_of(value: &[u8]) -> Option<HostRef<'_>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            let ip = inside.parse::<std::net::Ipv6Addr>().ok()?;
            return port_ok(after.strip_prefix(':'), after.is_empty())
                .then_some(HostRef::Address(IpAddr::V6(ip)));
        }
        None => match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    if !port_ok(port, port.is_none()) || host.is_empty() {
        return None;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(HostRef::Address(ip));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    valid.then_some(HostRef::Name(name))
}

/// A port is digits (possibly none, RFC 3986 allows `host:`); `absent` when there is none.
fn port_ok(port: Option<&str>, absent: bool) -> bool {
    absent || port.is_some_and(|p| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> AllowedHosts {
        AllowedHosts::parse(&["Realstat.Example.", "10.0.0.5:8080", "::1", "[fd00::7]"])
            .expect("valid")
    }

    #[test]
    fn names_and_addresses_match_whatever_the_port_and_case() {
        let a = allowed();
        for ok in [
            "realstat.example",
            "REALSTAT.example:8080",
            "realstat.example.",
            "10.0.0.5",
            "10.0.0.5:28080",
            "[::1]:8080",
            "[0:0::1]",
            "[fd00::7]:1",
        ] {
            assert!(a.allows(Some(ok.as_bytes())), "{ok}");
        }
        for refused in [
            "evil.example",
            "realstat.example.evil.example",
            "10.0.0.6",
            "::1",
            "[::2]",
            "realstat.example:80x",
            "realstat.example:8080:1",
            "",
            "[::1",
            "realstat.example/x",
        ] {
            assert!(!a.allows(Some(refused.as_bytes())), "{refused}");
        }
        assert!(!a.allows(None), "absent or repeated");
        assert!(!a.allows(Some(b"realstat.example\xff")));
    }

    #[test]
    fn an_empty_list_allows_every_host_and_bad_entries_are_refused() {
        let none = AllowedHosts::parse::<&str>(&[]).expect("empty");
        assert!(none.allows(Some(b"anything")) && none.allows(None));
        for bad in ["", "a b", "[::1", "host:port", "[10.0.0.1]"] {
            assert_eq!(
                AllowedHosts::parse(&[bad]),
                Err(HostError(bad.to_owned())),
                "{bad}"
            );
        }
    }
}
