//! The sign-in throttle (STAFF-API.md, Agents and sign-in): failed
//! sign-ins counted per account and per client address over a sliding
//! window; once either count reaches its limit, sign-in is refused (429)
//! until the oldest failure of the window has aged out.
//!
//! In memory, per instance: several instances behind one balancer each
//! count on their own, so an attacker spread over `n` instances gets `n`
//! times the attempts (README, Configuration). Pure data structure: the
//! caller passes the time, so tests drive it without sleeping.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most accounts or addresses tracked at once; past it the one whose
/// last failure is oldest is forgotten (a flood of made-up accounts must
/// not grow memory without bound).
pub const MAX_TRACKED: usize = 100_000;

/// The limits, from `[staff]` in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Length of the sliding window.
    pub window_secs: i64,
    /// Failures for one account within the window before it is locked.
    pub per_account: usize,
    /// Failures from one client address within the window before it is locked.
    pub per_address: usize,
}

/// Refused: try again after this many seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// Seconds until the next attempt may be made (`Retry-After`).
    pub retry_after_secs: u64,
}

/// Failure times per key, oldest first, at most `limit` kept.
#[derive(Debug)]
struct Failures<K> {
    by_key: HashMap<K, VecDeque<i64>>,
}

impl<K: Hash + Eq + Clone> Failures<K> {
    fn new() -> Self {
        Self {
            by_key: HashMap::new(),
        }
    }

    /// Drops failures older than the window; `Some` when the key is locked.
    fn locked(&mut self, key: &K, limit: usize, window: i64, now: i64) -> Option<Locked> {
        let times = self.by_key.get_mut(key)?;
        while times.front().is_some_and(|&t| t + window <= now) {
            times.pop_front();
        }
        if times.is_empty() {
            self.by_key.remove(key);
            return None;
        }
        if times.len() < limit {
            return None;
        }
        let oldest = times.front().copied().unwrap_or(now);
        let wait = (oldest + window - now).max(1);
        Some(Locked {
            retry_after_secs: u64::try_from(wait).unwrap_or(1),
        })
    }

    fn record(&mut self, key: K, limit: usize, window: i64, now: i64) {
        if !self.by_key.contains_key(&key) && self.by_key.len() >= MAX_TRACKED {
            self.by_key
                .retain(|_, times| times.back().is_some_and(|&t| t + window > now));
            if self.by_key.len() >= MAX_TRACKED
                && let Some(stalest) = self
                    .by_key
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied().unwrap_or(i64::MIN))
                    .map(|(k, _)| k.clone())
            {
                self.by_key.remove(&stalest);
            }
        }
        let times = self.by_key.entry(key).or_default();
        times.push_back(now);
        while times.len() > limit.max(1) {
            times.pop_front();
        }
    }

    fn clear(&mut self, key: &K) {
        self.by_key.remove(key);
    }
}

#[derive(Debug)]
struct State {
    accounts: Failures<String>,
    addresses: Failures<IpAddr>,
}

/// Failed sign-ins per account and per address.
#[derive(Debug)]
pub struct SignInThrottle {
    limits: ThrottleLimits,
    state: Mutex<State>,
}

/// The key of an account: its address as typed, trimmed, lower-case and
/// cut to 320 characters (the longest address RFC 5321 allows), so that
/// `Ann@x` and `ann@x` share a count and a huge value costs no memory.
pub fn account_key(email: &str) -> String {
    email
        .trim()
        .chars()
        .take(320)
        .collect::<String>()
        .to_lowercase()
}

/// The key of a client address: an IPv6 client is counted by its /64
/// (one subscriber's usual allocation: a host can pick any address in
/// it), an IPv4 client by its address.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match crate::domain::keys::canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

impl SignInThrottle {
    /// A throttle with no failures yet.
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State {
                accounts: Failures::new(),
                addresses: Failures::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic mid-update leaves counts at worst a little off: keep them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a sign-in for `account` from `client` may be tried now;
    /// the longer wait when both are locked.
    pub fn check(&self, account: &str, client: IpAddr, now: i64) -> Result<(), Locked> {
        let l = self.limits;
        let mut state = self.lock();
        let by_account =
            state
                .accounts
                .locked(&account_key(account), l.per_account, l.window_secs, now);
        let by_address =
            state
                .addresses
                .locked(&address_key(client), l.per_address, l.window_secs, now);
        match (by_account, by_address) {
            (None, None) => Ok(()),
            (Some(a), None) | (None, Some(a)) => Err(a),
            (Some(a), Some(b)) => Err(a.max_by(b)),
        }
    }

    /// Counts a failed sign-in against the account and the address.
    pub fn failed(&self, account: &str, client: IpAddr, now: i64) {
        let l = self.limits;
        let mut state = self.lock();
        state
            .accounts
            .record(account_key(account), l.per_account, l.window_secs, now);
        state
            .addresses
            .record(address_key(client), l.per_address, l.window_secs, now);
    }

    /// A successful sign-in forgets the account's failures; the
    /// address's stay (others behind the same address may be guessing).
    pub fn succeeded(&self, account: &str) {
        self.lock().accounts.clear(&account_key(account));
    }
}

impl Locked {
    fn max_by(self, other: Locked) -> Locked {
        if other.retry_after_secs > self.retry_after_secs {
            other
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> SignInThrottle {
        SignInThrottle::new(ThrottleLimits {
            window_secs: 900,
            per_account: 3,
            per_address: 5,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_account_is_locked_after_its_limit_until_the_oldest_failure_ages_out() {
        let t = throttle();
        let a = ip("192.0.2.1");
        for now in [100, 200, 300] {
            assert_eq!(t.check("ann@x", a, now), Ok(()));
            t.failed("ann@x", a, now);
        }
        assert_eq!(
            t.check("ANN@x ", ip("192.0.2.99"), 400),
            Err(Locked {
                retry_after_secs: 600
            })
        );
        assert_eq!(t.check("bob@x", ip("192.0.2.99"), 400), Ok(()));
        assert_eq!(
            t.check("ann@x", a, 999),
            Err(Locked {
                retry_after_secs: 1
            })
        );
        // The first failure (at 100) has aged out: one more try.
        assert_eq!(t.check("ann@x", a, 1000), Ok(()));
        t.failed("ann@x", a, 1000);
        assert_eq!(
            t.check("ann@x", a, 1000),
            Err(Locked {
                retry_after_secs: 100
            })
        );
    }

    #[test]
    fn an_address_is_locked_across_accounts_and_success_does_not_reset_it() {
        let t = throttle();
        let a = ip("192.0.2.1");
        for (i, now) in (0..5).zip(10..) {
            assert_eq!(t.check(&format!("u{i}@x"), a, now), Ok(()));
            t.failed(&format!("u{i}@x"), a, now);
        }
        t.succeeded("u0@x");
        let locked = t.check("someone@x", a, 20).unwrap_err();
        assert_eq!(locked.retry_after_secs, 890);
        assert_eq!(t.check("someone@x", ip("192.0.2.2"), 20), Ok(()));
    }

    #[test]
    fn success_forgets_the_account_s_failures() {
        let t = throttle();
        let a = ip("192.0.2.1");
        t.failed("ann@x", a, 1);
        t.failed("ann@x", a, 2);
        t.succeeded("ann@x");
        t.failed("ann@x", a, 3);
        t.failed("ann@x", a, 4);
        assert_eq!(t.check("ann@x", ip("192.0.2.7"), 5), Ok(()));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let t = throttle();
        for i in 0..5 {
            t.failed(&format!("u{i}@x"), ip(&format!("2001:db8:1:2::{i}")), 1);
        }
        assert!(t.check("v@x", ip("2001:db8:1:2:ffff::1"), 2).is_err());
        assert_eq!(t.check("v@x", ip("2001:db8:1:3::1"), 2), Ok(()));
        assert_eq!(
            address_key(ip("::ffff:192.0.2.1")),
            ip("192.0.2.1"),
            "mapped IPv4 counts as IPv4"
        );
    }

    #[test]
    fn tracking_is_bounded() {
        // A window no failure ages out of: only eviction keeps it bounded.
        let window = 1_000_000_000;
        let mut f = Failures::new();
        for i in 0..(MAX_TRACKED + 10) {
            f.record(i, 3, window, 1 + i as i64);
        }
        assert_eq!(f.by_key.len(), MAX_TRACKED);
        assert!(!f.by_key.contains_key(&0), "the stalest is forgotten");
        assert!(f.by_key.contains_key(&(MAX_TRACKED + 9)));
        // Failures that aged out are dropped first.
        let mut f = Failures::new();
        for i in 0..MAX_TRACKED {
            f.record(i, 3, 900, 1);
        }
        f.record(MAX_TRACKED, 3, 900, 5000);
        assert_eq!(f.by_key.len(), 1);
    }
}
