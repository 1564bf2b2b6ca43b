//! The API-key cache: keys already looked up, forgotten at once when
//! any instance changes `api_keys` (LISTEN/NOTIFY), and after a while anyway.

use super::*;

/// API keys already looked up, so that a request costs one statement
/// (the ticket's) rather than two: the lookup was a quarter of the
/// PostgreSQL work per ticket. A trigger on `api_keys` (migration 5)
/// notifies every instance of any change, even one made by hand in SQL,
/// and the cache forgets everything on a notification, when its listening
/// connection is lost, and after [`KEY_CACHE_SECS`] in any case. It is
/// used only while the listener is known to be connected.
#[derive(Default)]
pub(super) struct KeyCache {
    pub(super) state: Mutex<KeyCacheState>,
    pub(super) started: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
pub(super) struct KeyCacheState {
    /// Whether the listener is connected and listening.
    live: bool,
    /// Bumped at every invalidation: a lookup that started before one
    /// must not fill the cache with what it read.
    pub(super) generation: u64,
    keys: HashMap<[u8; 32], (ApiKeyRecord, Instant)>,
}

/// Longest a cached key is trusted without a new lookup.
pub(super) const KEY_CACHE_SECS: u64 = 60;

/// Most keys cached (found keys only: unknown ones are not cached, so
/// guessing cannot grow the cache).
pub(super) const KEY_CACHE_MAX: usize = 10_000;

/// The channel the `api_keys` trigger notifies.
pub(super) const KEYS_CHANNEL: &str = "oxidesk_keys";

impl KeyCache {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, KeyCacheState> {
        // A poisoned lock only means a panic elsewhere mid-update; the
        // state is a cache, so start it over.
        self.state.lock().unwrap_or_else(|poisoned| {
            let mut guard = poisoned.into_inner();
            guard.keys.clear();
            guard.generation += 1;
            guard
        })
    }

    /// The cached record, and the generation to hand to [`Self::fill`].
    pub(super) fn get(&self, hash: &[u8; 32]) -> (Option<ApiKeyRecord>, Option<u64>) {
        let state = self.lock();
        if !state.live {
            return (None, None);
        }
        let hit = state
            .keys
            .get(hash)
            .filter(|(_, at)| at.elapsed() < Duration::from_secs(KEY_CACHE_SECS))
            .map(|(k, _)| k.clone());
        (hit, Some(state.generation))
    }

    pub(super) fn fill(&self, generation: u64, record: &ApiKeyRecord) {
        let mut state = self.lock();
        if state.live && state.generation == generation {
            if state.keys.len() >= KEY_CACHE_MAX {
                state.keys.clear();
            }
            state
                .keys
                .insert(record.hash, (record.clone(), Instant::now()));
        }
    }

    pub(super) fn invalidate(&self, live: bool) {
        let mut state = self.lock();
        state.keys.clear();
        state.generation += 1;
        state.live = live;
    }

    /// Listens for key changes until the pool closes.
    pub(super) async fn listen(self: Arc<Self>, pool: PgPool) {
        loop {
            let error = self.listen_once(&pool).await;
            self.invalidate(false);
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %error, "API key cache: not listening, keys are looked up at every request until it is back");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// One listening connection, until it fails.
    pub(super) async fn listen_once(&self, pool: &PgPool) -> sqlx::Error {
        let mut listener = match PgListener::connect_with(pool).await {
            Ok(l) => l,
            Err(e) => return e,
        };
        if let Err(e) = listener.listen(KEYS_CHANNEL).await {
            return e;
        }
        self.invalidate(true);
        loop {
            match listener.try_recv().await {
                // A key changed somewhere; or the connection was lost (and
                // is re-established by the next call), so notifications
                // may have been missed.
                Ok(_) => self.invalidate(true),
                Err(e) => return e,
            }
        }
    }
}
