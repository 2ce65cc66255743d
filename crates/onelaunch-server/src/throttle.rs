//! Failed authentication attempts, counted per client address: an API token
//! the server does not know (API `401`, `POST /uaa/oauth/token`, the UI login).
//!
//! After `max_failures` failures within `window` from one address, every
//! authenticated request from it answers `429` with `Retry-After` until the
//! window that began with its first failure is over; the token is not even
//! looked at meanwhile (so the answer tells a guesser nothing). Requests that
//! succeed are neither counted nor slowed down before that point.
//!
//! The address is the TCP peer; IPv6 clients count per /64 (one host usually
//! holds a whole /64). Behind a reverse proxy every client has the proxy's
//! address, so all of them share one budget: run with `--trust-forwarded-for`
//! to use the last address of `X-Forwarded-For` (the one the proxy appended)
//! instead, and only when a proxy that sets it is the sole way in.
//!
//! Memory is bounded: at most [`MAX_CLIENTS`] addresses are remembered; when
//! full, expired entries go first, then the oldest.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};

use crate::error::ServerError;

/// Addresses remembered at most.
pub const MAX_CLIENTS: usize = 10_000;

/// Default: failures allowed per window…
pub const DEFAULT_MAX_FAILURES: u32 = 10;
/// …and the window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// Settings of [`AuthThrottle`].
#[derive(Clone, Copy, Debug)]
pub struct ThrottleConfig {
    /// Failures allowed per window; 0 turns the throttle off.
    pub max_failures: u32,
    pub window: Duration,
    /// Take the client address from `X-Forwarded-For` (last entry).
    pub trust_forwarded_for: bool,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures: DEFAULT_MAX_FAILURES,
            window: DEFAULT_WINDOW,
            trust_forwarded_for: false,
        }
    }
}

struct Entry {
    failures: u32,
    since: Instant,
}

pub(crate) struct AuthThrottle {
    config: ThrottleConfig,
    clients: Mutex<HashMap<IpAddr, Entry>>,
}

impl std::fmt::Debug for AuthThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthThrottle")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The key of an address: IPv4 (also when IPv4-mapped) as is, IPv6 per /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl AuthThrottle {
    pub(crate) fn new(config: ThrottleConfig) -> AuthThrottle {
        AuthThrottle {
            config,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client of a request: the TCP peer (set by the accept loop), or
    /// the last `X-Forwarded-For` address when trusted. `None` when unknown
    /// (requests that did not come through a socket, as in-process tests).
    pub(crate) fn client(&self, headers: &HeaderMap, ext: &Extensions) -> Option<IpAddr> {
        if self.config.trust_forwarded_for {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|a| a.trim().parse::<IpAddr>().ok());
            if forwarded.is_some() {
                return forwarded.map(key);
            }
        }
        ext.get::<ConnectInfo<SocketAddr>>().map(|c| key(c.0.ip()))
    }

    /// `Err(429)` while `client` is over its budget.
    pub(crate) fn check(&self, client: Option<IpAddr>) -> Result<(), ServerError> {
        let Some(ip) = client.filter(|_| self.config.max_failures > 0) else {
            return Ok(());
        };
        let mut clients = self.clients.lock().unwrap();
        let Some(e) = clients.get(&ip) else {
            return Ok(());
        };
        let age = e.since.elapsed();
        if age >= self.config.window {
            clients.remove(&ip);
            return Ok(());
        }
        if e.failures >= self.config.max_failures {
            let left = self.config.window - age;
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Err(ServerError::TooManyRequests(secs.max(1)));
        }
        Ok(())
    }

    /// Counts a failed attempt of `client`.
    pub(crate) fn failed(&self, client: Option<IpAddr>) {
        let Some(ip) = client.filter(|_| self.config.max_failures > 0) else {
            return;
        };
        let window = self.config.window;
        let mut clients = self.clients.lock().unwrap();
        if !clients.contains_key(&ip) && clients.len() >= MAX_CLIENTS {
            clients.retain(|_, e| e.since.elapsed() < window);
            if clients.len() >= MAX_CLIENTS {
                let oldest = clients.iter().min_by_key(|(_, e)| e.since).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    clients.remove(&k);
                }
            }
        }
        let e = clients.entry(ip).or_insert(Entry {
            failures: 0,
            since: Instant::now(),
        });
        if e.since.elapsed() >= window {
            *e = Entry {
                failures: 0,
                since: Instant::now(),
            };
        }
        e.failures += 1;
        if e.failures == self.config.max_failures {
            tracing::warn!(client = %ip, "too many failed authentication attempts; throttled");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max: u32, window_ms: u64) -> AuthThrottle {
        AuthThrottle::new(ThrottleConfig {
            max_failures: max,
            window: Duration::from_millis(window_ms),
            trust_forwarded_for: false,
        })
    }

    #[test]
    fn blocks_after_the_budget_and_forgets_after_the_window() {
        let t = throttle(3, 200);
        let a = Some("10.0.0.1".parse().unwrap());
        let b = Some("10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(t.check(a).is_ok());
            t.failed(a);
        }
        assert!(matches!(t.check(a), Err(ServerError::TooManyRequests(1))));
        assert!(t.check(b).is_ok(), "another address is not affected");
        assert!(t.check(None).is_ok(), "unknown clients are not throttled");
        std::thread::sleep(Duration::from_millis(250));
        assert!(t.check(a).is_ok());
    }

    #[test]
    fn memory_is_bounded_and_ipv6_counts_per_64() {
        let t = throttle(1, 60_000);
        for i in 0..(MAX_CLIENTS as u32 + 50) {
            t.failed(Some(IpAddr::V4(i.into())));
        }
        assert_eq!(t.clients.lock().unwrap().len(), MAX_CLIENTS);
        assert_eq!(
            key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            key("2001:db8:1:2:ffff::1".parse().unwrap())
        );
        assert_eq!(
            key("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
        let plain = throttle(1, 1000);
        assert_eq!(plain.client(&h, &ext), Some("127.0.0.1".parse().unwrap()));
        let trusting = AuthThrottle::new(ThrottleConfig {
            trust_forwarded_for: true,
            ..ThrottleConfig::default()
        });
        assert_eq!(
            trusting.client(&h, &ext),
            Some("198.51.100.7".parse().unwrap())
        );
    }
}
