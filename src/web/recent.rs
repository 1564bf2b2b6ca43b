//! What the pages read on every request and may show a moment old:
//! the side bar's queue counts (a third of what a page cost PostgreSQL
//! at 1M tickets, planned anew each time as "today" moves) and the
//! agents of the assignee control. Kept for `[web] counts_max_age_ms`,
//! and never reused once a state-changing request of this process was
//! answered after it was read ([`Ops::changes`]): an agent's own change,
//! or a ticket this server took in, shows on the next page; changes
//! made elsewhere (another instance, `oxidesk pipe`, the CLI) within
//! the age.
//!
//! [`Ops::changes`]: crate::http::ops::Ops::changes

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::response::Response;

use crate::app::AppState;

/// Values by key, each good for a while (see the module documentation).
#[derive(Debug)]
pub struct Recent<K, V> {
    max_age: Duration,
    kept: Mutex<HashMap<K, Kept<V>>>,
}

#[derive(Debug)]
struct Kept<V> {
    at: Instant,
    changes: u64,
    value: V,
}

/// More keys than this and the kept values are dropped, not grown.
const MAX_KEPT: usize = 4096;

impl<K: Hash + Eq, V: Clone> Recent<K, V> {
    /// Values kept for `max_age_ms` (0: never kept).
    pub fn new(max_age_ms: u64) -> Self {
        Self {
            max_age: Duration::from_millis(max_age_ms),
            kept: Mutex::default(),
        }
    }

    /// The value of `key` if it was read less than the age before `now`
    /// and no change was answered since (`changes` is the count now).
    fn get(&self, key: &K, changes: u64, now: Instant) -> Option<V> {
        if self.max_age.is_zero() {
            return None;
        }
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(key)
            .filter(|k| k.changes == changes && now.saturating_duration_since(k.at) < self.max_age)
            .map(|k| k.value.clone())
    }

    /// Keeps `value`, whose read began at `at` with `changes` answered.
    fn put(&self, key: K, changes: u64, at: Instant, value: &V) {
        if self.max_age.is_zero() {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.get(&key).is_some_and(|k| k.changes > changes) {
            // A later read (after a change) is kept already.
            return;
        }
        if kept.len() >= MAX_KEPT && !kept.contains_key(&key) {
            kept.clear();
        }
        kept.insert(
            key,
            Kept {
                at,
                changes,
                value: value.clone(),
            },
        );
    }

    /// The kept value of `key`, else `read`'s (kept for the next page).
    pub async fn get_or_read<F, E>(&self, state: &AppState, key: K, read: F) -> Result<V, Response>
    where
        F: Future<Output = Result<V, E>>,
        E: Into<Response>,
    {
        // Taken before the store is read: a change answered while it
        // reads moves the count past what is kept with the value.
        let changes = state.ops.changes.load(Ordering::Acquire);
        let now = Instant::now();
        if let Some(value) = self.get(&key, changes, now) {
            return Ok(value);
        }
        let value = read.await.map_err(Into::into)?;
        self.put(key, changes, now, &value);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_reused_until_it_is_too_old_or_a_change_was_answered() {
        let recent: Recent<u8, &str> = Recent::new(1000);
        let t0 = Instant::now();
        assert_eq!(recent.get(&1, 0, t0), None);
        recent.put(1, 0, t0, &"a");
        assert_eq!(
            recent.get(&1, 0, t0 + Duration::from_millis(999)),
            Some("a")
        );
        assert_eq!(recent.get(&2, 0, t0), None, "another key");
        assert_eq!(recent.get(&1, 1, t0), None, "a change was answered since");
        assert_eq!(
            recent.get(&1, 0, t0 + Duration::from_millis(1000)),
            None,
            "too old"
        );
        let never: Recent<u8, &str> = Recent::new(0);
        never.put(1, 0, t0, &"a");
        assert_eq!(never.get(&1, 0, t0), None, "0 keeps nothing");
    }

    #[test]
    fn the_kept_values_stay_bounded() {
        let recent: Recent<usize, usize> = Recent::new(1000);
        let t0 = Instant::now();
        for k in 0..MAX_KEPT * 2 + 1 {
            recent.put(k, 0, t0, &k);
            assert!(recent.kept.lock().unwrap().len() <= MAX_KEPT);
        }
        assert_eq!(recent.get(&(MAX_KEPT * 2), 0, t0), Some(MAX_KEPT * 2));
    }
}
