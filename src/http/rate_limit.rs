//! Rate limits (`[limits]`): requests per API key and per client address,
//! and failed API-key checks per client address. GCRA (governor) keyed
//! limiters in memory, per instance: several instances behind one
//! balancer each count on their own (README, Operations).
//!
//! A decision is a [`RateState`], which the request layer writes as the
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers
//! (and `Retry-After` on a 429). This module holds no HTTP types.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::config::Limits;
use crate::domain::ids::ApiKeyId;

/// Drop idle limiter state every this many decisions.
const RETAIN_EVERY: u64 = 4096;

/// What a limiter said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    /// Requests allowed in a full window (the burst).
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the allowance is whole again.
    pub reset_secs: u64,
    /// Refused: seconds to wait (`Retry-After`, at least 1).
    pub retry_after_secs: Option<u64>,
}

impl RateState {
    /// The tighter of two decisions (a refusal, else fewer remaining).
    pub fn tighter(self, other: Option<RateState>) -> RateState {
        match other {
            None => self,
            Some(o) if o.retry_after_secs.is_some() && self.retry_after_secs.is_none() => o,
            Some(o) if self.retry_after_secs.is_none() && o.remaining < self.remaining => o,
            Some(_) => self,
        }
    }
}

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// One keyed limiter: `per_minute` requests a minute, as a burst.
struct Limiter<K: Hash + Eq + Clone> {
    inner: Keyed<K>,
    limit: u32,
    decisions: AtomicU64,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(per_minute: u32) -> Option<Self> {
        let n = NonZeroU32::new(per_minute)?;
        Some(Self {
            inner: RateLimiter::dashmap(Quota::per_minute(n))
                .with_middleware::<StateInformationMiddleware>(),
            limit: per_minute,
            decisions: AtomicU64::new(0),
        })
    }

    /// Spends one request of `key`'s allowance.
    fn check(&self, key: &K) -> RateState {
        if self.decisions.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.inner.retain_recent();
        }
        match self.inner.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let per_cell = snapshot.quota().replenish_interval();
                RateState {
                    limit: self.limit,
                    remaining,
                    reset_secs: ceil_secs(per_cell * (self.limit - remaining.min(self.limit))),
                    retry_after_secs: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.inner.clock().now());
                let retry = ceil_secs(wait).max(1);
                RateState {
                    limit: self.limit,
                    remaining: 0,
                    reset_secs: retry,
                    retry_after_secs: Some(retry),
                }
            }
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The configured limiters; `None` ones are off.
pub struct RateLimits {
    per_key: Option<Limiter<ApiKeyId>>,
    per_address: Option<Limiter<IpAddr>>,
    key_failures: Option<Limiter<IpAddr>>,
    /// Addresses whose failed key checks ran out, until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Whether `blocked` may hold anything: the common case reads one
    /// atomic instead of taking the lock.
    any_blocked: AtomicBool,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("per_key", &self.per_key.as_ref().map(|l| l.limit))
            .field("per_address", &self.per_address.as_ref().map(|l| l.limit))
            .field("key_failures", &self.key_failures.as_ref().map(|l| l.limit))
            .finish()
    }
}

impl RateLimits {
    /// The limiters `[limits]` asks for.
    pub fn new(limits: &Limits) -> Self {
        Self {
            per_key: Limiter::new(limits.requests_per_minute_per_key),
            per_address: Limiter::new(limits.requests_per_minute_per_address),
            key_failures: Limiter::new(limits.key_failures_per_minute_per_address),
            blocked: Mutex::new(HashMap::new()),
            any_blocked: AtomicBool::new(false),
        }
    }

    /// Whether any per-address limit is on.
    pub fn limits_addresses(&self) -> bool {
        self.per_address.is_some()
    }

    /// Spends one request of the client address's allowance.
    pub fn check_address(&self, client: IpAddr) -> Option<RateState> {
        self.per_address.as_ref().map(|l| l.check(&client))
    }

    /// Spends one request of the key's allowance.
    pub fn check_key(&self, key: ApiKeyId) -> Option<RateState> {
        self.per_key.as_ref().map(|l| l.check(&key))
    }

    /// `Some(seconds)` while `client` may not have a key checked: its
    /// failed checks ran out.
    pub fn key_checks_blocked(&self, client: IpAddr) -> Option<u64> {
        if !self.any_blocked.load(Ordering::Relaxed) {
            return None;
        }
        let mut blocked = self.blocked.lock().ok()?;
        let now = Instant::now();
        blocked.retain(|_, until| *until > now);
        if blocked.is_empty() {
            self.any_blocked.store(false, Ordering::Relaxed);
        }
        blocked
            .get(&client)
            .map(|until| ceil_secs(until.duration_since(now)).max(1))
    }

    /// Counts a failed key check from `client`; `Some(seconds)` when it
    /// used up the address's allowance (the address is blocked as long).
    pub fn key_check_failed(&self, client: IpAddr) -> Option<u64> {
        let retry = self
            .key_failures
            .as_ref()?
            .check(&client)
            .retry_after_secs?;
        if let Ok(mut blocked) = self.blocked.lock() {
            blocked.insert(client, Instant::now() + Duration::from_secs(retry));
            self.any_blocked.store(true, Ordering::Relaxed);
        }
        Some(retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(key: u32, address: u32, failures: u32) -> Limits {
        Limits {
            requests_per_minute_per_key: key,
            requests_per_minute_per_address: address,
            key_failures_per_minute_per_address: failures,
            ..Limits::default()
        }
    }

    #[test]
    fn a_burst_counts_down_then_refuses() {
        let limits = RateLimits::new(&limits(3, 0, 0));
        let key = ApiKeyId(7);
        let states: Vec<RateState> = (0..4).filter_map(|_| limits.check_key(key)).collect();
        assert_eq!(
            states.iter().map(|s| s.remaining).collect::<Vec<_>>(),
            [2, 1, 0, 0]
        );
        assert!(states[..3].iter().all(|s| s.retry_after_secs.is_none()));
        let refused = states[3];
        assert_eq!(refused.limit, 3);
        // One request comes back every 20 s.
        assert!(
            (1..=20).contains(&refused.retry_after_secs.unwrap()),
            "{refused:?}"
        );
        // Another key has its own allowance; addresses are not limited.
        assert_eq!(limits.check_key(ApiKeyId(8)).unwrap().remaining, 2);
        assert_eq!(limits.check_address("127.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn failed_key_checks_block_the_address() {
        let limits = RateLimits::new(&limits(0, 0, 2));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(limits.key_checks_blocked(ip), None);
        assert_eq!(limits.key_check_failed(ip), None);
        assert_eq!(limits.key_check_failed(ip), None);
        let retry = limits.key_check_failed(ip).expect("third failure blocks");
        assert!(retry >= 1);
        assert!(limits.key_checks_blocked(ip).is_some());
        assert_eq!(limits.key_checks_blocked(other), None);
        assert_eq!(limits.check_key(ApiKeyId(1)), None);
    }

    #[test]
    fn tighter_prefers_a_refusal_then_fewer_remaining() {
        let a = RateState {
            limit: 10,
            remaining: 5,
            reset_secs: 30,
            retry_after_secs: None,
        };
        let b = RateState { remaining: 2, ..a };
        let refused = RateState {
            remaining: 0,
            retry_after_secs: Some(3),
            ..a
        };
        assert_eq!(a.tighter(Some(b)), b);
        assert_eq!(b.tighter(Some(a)), b);
        assert_eq!(a.tighter(Some(refused)), refused);
        assert_eq!(refused.tighter(Some(a)), refused);
        assert_eq!(a.tighter(None), a);
    }
}
