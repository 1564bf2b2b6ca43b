//! The API-key cache on SQLite: keys already looked up, trusted while the
//! key table's version number (`api_keys_version`, moved by triggers on
//! every change to `api_keys`, by oxidesk, another process or by hand;
//! migration 13) stays the same.
//!
//! A lookup read the key's row at every request, and every commit of the
//! writer (one per group of tickets) emptied the reading connection's
//! page cache, so each request paid for re-reading the pages. Now the
//! version is read at most every [`KEY_CHECK`]: a change made elsewhere
//! (`oxidesk key revoke` in another process) is seen within that time, a
//! change made through this process at once ([`KeyCache::forget`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::*;

/// Longest the cached keys are trusted without reading the version.
pub(super) const KEY_CHECK: Duration = Duration::from_millis(250);

/// Most keys cached (found keys only: unknown ones are not cached, so
/// guessing cannot grow the cache).
const KEY_CACHE_MAX: usize = 10_000;

#[derive(Default)]
pub(super) struct KeyCache {
    state: Mutex<KeyCacheState>,
}

#[derive(Default)]
struct KeyCacheState {
    /// The version the cached keys were read at.
    version: Option<i64>,
    /// When that version was last read.
    checked: Option<Instant>,
    /// Bumped by [`KeyCache::forget`]: a lookup that started before must
    /// not fill the cache with what it read.
    generation: u64,
    keys: HashMap<[u8; 32], ApiKeyRecord>,
}

/// What the cache knows of a key: the record (`Hit`), or that a lookup is
/// needed, started at `generation`.
pub(super) enum Cached {
    Hit(ApiKeyRecord),
    Miss { generation: u64 },
}

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, KeyCacheState> {
        // A poisoned lock only means a panic elsewhere mid-update; the
        // state is a cache, so start it over.
        self.state.lock().unwrap_or_else(|poisoned| {
            let mut guard = poisoned.into_inner();
            guard.keys.clear();
            guard.version = None;
            guard.checked = None;
            guard.generation += 1;
            guard
        })
    }

    pub(super) fn get(&self, hash: &[u8; 32], now: Instant) -> Cached {
        let state = self.lock();
        let fresh = state
            .checked
            .is_some_and(|at| now.saturating_duration_since(at) < KEY_CHECK);
        match state.keys.get(hash) {
            Some(record) if fresh => Cached::Hit(record.clone()),
            _ => Cached::Miss {
                generation: state.generation,
            },
        }
    }

    /// Keeps what a lookup read: the version (read first) and the key's
    /// record (read after it, so never older than the version).
    pub(super) fn fill(
        &self,
        generation: u64,
        version: i64,
        hash: &[u8; 32],
        record: Option<&ApiKeyRecord>,
        now: Instant,
    ) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.version != Some(version) {
            state.keys.clear();
            state.version = Some(version);
        }
        state.checked = Some(now);
        if let Some(r) = record {
            if state.keys.len() >= KEY_CACHE_MAX {
                state.keys.clear();
            }
            state.keys.insert(*hash, r.clone());
        } else {
            state.keys.remove(hash);
        }
    }

    /// Forgets every key (after a change made through this process).
    pub(super) fn forget(&self) {
        let mut state = self.lock();
        state.keys.clear();
        state.version = None;
        state.checked = None;
        state.generation += 1;
    }
}

/// The key table's version (migration 13).
pub(super) fn keys_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT n FROM api_keys_version WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn record(id: i64) -> ApiKeyRecord {
        ApiKeyRecord {
            id: ApiKeyId(id),
            hash: [id as u8; 32],
            prefix: "p".into(),
            addresses: Vec::new(),
            is_active: true,
            can_create: true,
            can_read: false,
            notes: String::new(),
            created: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn miss_generation(c: &KeyCache, hash: &[u8; 32], now: Instant) -> u64 {
        match c.get(hash, now) {
            Cached::Hit(_) => panic!("expected a miss"),
            Cached::Miss { generation } => generation,
        }
    }

    #[test]
    fn hits_only_while_checked_recently() {
        let c = KeyCache::default();
        let t0 = Instant::now();
        let h = [1u8; 32];
        let g = miss_generation(&c, &h, t0);
        c.fill(g, 7, &h, Some(&record(1)), t0);
        assert!(matches!(c.get(&h, t0 + KEY_CHECK / 2), Cached::Hit(r) if r.id == ApiKeyId(1)));
        // Past KEY_CHECK the version must be read again.
        let g = miss_generation(&c, &h, t0 + KEY_CHECK);
        // Same version: the key stays.
        c.fill(g, 7, &[2u8; 32], None, t0 + KEY_CHECK);
        assert!(matches!(c.get(&h, t0 + KEY_CHECK), Cached::Hit(_)));
    }

    #[test]
    fn a_new_version_forgets_every_key() {
        let c = KeyCache::default();
        let t0 = Instant::now();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let g = miss_generation(&c, &a, t0);
        c.fill(g, 1, &a, Some(&record(1)), t0);
        let g = miss_generation(&c, &b, t0);
        c.fill(g, 2, &b, Some(&record(2)), t0);
        assert!(matches!(c.get(&b, t0), Cached::Hit(_)));
        miss_generation(&c, &a, t0);
    }

    #[test]
    fn a_lookup_older_than_forget_fills_nothing() {
        let c = KeyCache::default();
        let t0 = Instant::now();
        let h = [1u8; 32];
        let g = miss_generation(&c, &h, t0);
        c.forget();
        c.fill(g, 1, &h, Some(&record(1)), t0);
        miss_generation(&c, &h, t0);
    }
}
