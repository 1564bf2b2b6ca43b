//! The PostgreSQL backend, for several oxidesk instances sharing one
//! database. Every rule that must hold across instances is a database
//! constraint or lock here: ticket numbers are unique (random numbers
//! retried on conflict, sequential ones from a sequence), a Message-ID is
//! claimed with `INSERT … ON CONFLICT DO NOTHING`, outbox rows are claimed
//! with `FOR UPDATE SKIP LOCKED`, migrations run under an advisory lock.
//!
//! What both backends run alike is in `storage::sql` and
//! `storage::common`; this folder holds what PostgreSQL does its own way:
//! a ticket in one statement (`tickets`), the outbox claim (`mail`), the
//! API-key cache kept fresh by LISTEN/NOTIFY (`keys`), `migrate-data`
//! (`copy`) and migrations (`migrate`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{Executor, Postgres, Row, Transaction};

use super::common::{self, Rows};
use super::sql;
use super::{
    ApiKeyId, ApiKeyRecord, BoxFuture, Cap, CapScope, EmailOutcome, MailEvent, MailKind,
    NUMBER_ATTEMPTS, NewApiKey, NewEmail, NewEntry, NewTicket, NotificationView, NumberPolicy,
    OutboxJob, OutboxSummary, Party, QueuedMail, Store, StoreError, ThreadQuery, ThreadRef,
    TicketNumber, TicketSummary, TicketView, dropped_column, outbox_id, outgoing_message_id,
    outgoing_message_id_tail,
};
use super::{ColType, DumpValue, MailState, format_time};

mod agents;
mod copy;
mod health;
mod keys;
mod mail;
mod migrate;
mod queue;
// Before `tickets`: its statement includes `search_part!`.
#[macro_use]
mod search;
#[cfg(test)]
mod tests;
mod tickets;
mod work;

use keys::*;
use tickets::*;

/// Pool and timeout settings.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Most connections per instance.
    pub max_connections: u32,
    /// `statement_timeout` for every statement.
    pub statement_timeout_ms: u64,
    /// How long to keep retrying when the database is unreachable at start.
    pub connect_retry_secs: u64,
    /// Once open, the longest an operation waits for a connection (a
    /// free one, or a new one) before it fails as unavailable.
    pub acquire_timeout_ms: u64,
    /// Domain of outgoing Message-IDs.
    pub message_domain: String,
    /// Whether a database without oxidesk's tables may get them (`serve`,
    /// `migrate`, a `migrate-data` target); else opening it is an error.
    pub create_schema: bool,
}

/// PostgreSQL store; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    numbers: NumberPolicy,
    /// Domain of outgoing Message-IDs.
    message_domain: String,
    keys: Arc<KeyCache>,
    /// Dropped with the last clone of the store, which stops the key
    /// cache's listener.
    alive: Arc<tokio::sync::watch::Sender<()>>,
}

/// When (ms after [`clock_ms`]'s start) a connection was last found
/// lost; 0: never. Connections idle since then are checked before use
/// (see `PgStore::open`): a lost connection rarely dies alone.
static CONNECTION_LOST_MS: AtomicU64 = AtomicU64::new(0);

/// Milliseconds since the first call (at least 1), for
/// [`CONNECTION_LOST_MS`].
fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// Whether `e` says the connection itself is gone (not the statement).
fn is_connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            matches!(c.as_ref(), "57P01" | "57P02" | "57P05") || c.starts_with("08")
        }),
        _ => false,
    }
}

/// Whether a connection idle for `idle_for` went idle before the last
/// connection was found lost (and so may be lost too).
fn idle_since_a_loss(idle_for: Duration) -> bool {
    let lost = CONNECTION_LOST_MS.load(Ordering::Relaxed);
    let idle_ms = u64::try_from(idle_for.as_millis()).unwrap_or(u64::MAX);
    lost != 0 && clock_ms().saturating_sub(idle_ms) <= lost
}

fn map_err(e: sqlx::Error) -> StoreError {
    if is_connection_lost(&e) {
        CONNECTION_LOST_MS.store(clock_ms(), Ordering::Relaxed);
    }
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        // No connection could be had in time, or the one in hand broke:
        // the database is unreachable for now, which a retry may cure.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Busy(e.to_string()),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("23505") => StoreError::Conflict(e.to_string()),
            Some(code) if is_unavailable(code) => StoreError::Busy(e.to_string()),
            _ => StoreError::other(e),
        },
        _ => StoreError::other(e),
    }
}

/// SQLSTATEs saying the server cannot do this now, not that the
/// statement is wrong: a retry later may succeed (PostgreSQL manual,
/// Appendix A).
fn is_unavailable(code: &str) -> bool {
    matches!(
        code,
        // serialization failure, deadlock, lock not available
        "40001" | "40P01" | "55P03"
        // query canceled (statement_timeout), admin or crash shutdown,
        // cannot connect now (starting or stopping), idle session timeout
        | "57014" | "57P01" | "57P02" | "57P03" | "57P05"
        // read-only transaction: a standby, or a failover under way
        | "25006"
        // system error, I/O error
        | "58000" | "58030"
    )
        // connection exception; insufficient resources (disk full, out
        // of memory, too many connections)
        || code.starts_with("08")
        || code.starts_with("53")
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        map_err(e)
    }
}

/// `url` without its password (in the user part or a `password=`
/// parameter), for messages and logs.
pub fn redacted_url(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((base, q)) if q.contains("password") => (base, ""),
        Some((base, q)) => (base, q),
        None => (url, ""),
    };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("{url}{query}");
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return format!("{scheme}://{rest}{query}");
    };
    let user = userinfo.split(':').next().unwrap_or_default();
    let password = if userinfo.contains(':') { ":***" } else { "" };
    format!("{scheme}://{user}{password}@{host}{path}{query}")
}

/// The shared statements ([`common`]) on a PostgreSQL connection.
struct PgRows<'c>(&'c mut sqlx::PgConnection);

impl Rows for PgRows<'_> {
    fn rows<'a>(
        &'a mut self,
        sql: &'static str,
        params: Vec<DumpValue>,
        cols: &'static [ColType],
    ) -> BoxFuture<'a, Result<Vec<common::Row>, StoreError>> {
        Box::pin(async move {
            let mut query = sqlx::query(sql);
            for p in params {
                query = match p {
                    DumpValue::Null => query.bind(None::<String>),
                    DumpValue::Int(n) => query.bind(n),
                    DumpValue::Text(t) => query.bind(t),
                    DumpValue::Blob(b) => query.bind(b),
                    DumpValue::Bool(b) => query.bind(b),
                };
            }
            let rows = query.fetch_all(&mut *self.0).await?;
            rows.iter()
                .map(|r| Ok(common::Row(pg_values(r, cols.iter().copied())?)))
                .collect()
        })
    }
}

/// A PostgreSQL row's columns as `cols` say (NULL as [`DumpValue::Null`]).
fn pg_values(r: &PgRow, cols: impl Iterator<Item = ColType>) -> Result<Vec<DumpValue>, StoreError> {
    let mut values = Vec::new();
    for (i, ty) in cols.enumerate() {
        let v = match ty {
            ColType::Int => r.try_get::<Option<i64>, _>(i)?.map(DumpValue::Int),
            ColType::Text => r.try_get::<Option<String>, _>(i)?.map(DumpValue::Text),
            ColType::Blob => r.try_get::<Option<Vec<u8>>, _>(i)?.map(DumpValue::Blob),
            ColType::Bool => r.try_get::<Option<bool>, _>(i)?.map(DumpValue::Bool),
        };
        values.push(v.unwrap_or(DumpValue::Null));
    }
    Ok(values)
}

fn other(e: impl std::fmt::Display) -> StoreError {
    StoreError::other(e.to_string())
}

impl PgStore {
    /// A setting as oxidesk's own sessions see it (`current_setting`),
    /// for diagnostics and tests.
    pub async fn session_setting(&self, name: &str) -> Result<String, StoreError> {
        Ok(sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(&self.pool)
            .await?)
    }
    /// Connects (retrying for `connect_retry_secs`), applies migrations.
    pub async fn open(
        url: &str,
        numbers: NumberPolicy,
        settings: &PgSettings,
    ) -> Result<Self, StoreError> {
        let mut options: PgConnectOptions = url
            .parse()
            .map_err(|e| other(format!("invalid database URL: {e}")))?;
        if tls_pointless(url, &options, std::env::var_os("PGSSLMODE").is_some()) {
            options = options.ssl_mode(PgSslMode::Disable);
        }
        let timeout = settings.statement_timeout_ms;
        let pool_options = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            // Short: with the database down, sqlx retries a refused
            // connection until this passes, and every request waits as
            // long before its 503. A pool busy for this long is
            // overloaded, and a 503 with Retry-After is the answer too.
            .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms.max(1)))
            // No ping before every use: it was a round trip per request
            // (a fifth of oxidesk's work per ticket). A connection that
            // died fails its statement instead, which answers 503 (retry)
            // and is not returned to the pool.
            .test_before_acquire(false)
            // Except after a connection was found lost (the server
            // restarted, the network dropped): those idle since then are
            // pinged, and dropped if dead, instead of each failing one
            // more request with a 503 after the database is back.
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if idle_since_a_loss(meta.idle_for) {
                        return Ok(sqlx::Connection::ping(conn).await.is_ok());
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // No parallel workers: oxidesk runs many short
                    // statements at once, and a parallel plan (chosen
                    // when an estimate runs high, as for a search word
                    // PostgreSQL knows no statistics of) starts worker
                    // processes per statement and takes the cores the
                    // other requests wait for: at 1M tickets and 16
                    // agents, rare-word searches went from p99 153 ms
                    // to 33 ms without them.
                    sqlx::query(
                        "SELECT set_config('statement_timeout', $1, false),
                                set_config('max_parallel_workers_per_gather', '0', false)",
                    )
                    .bind(timeout.to_string())
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            });
        let started = std::time::Instant::now();
        let deadline = started + Duration::from_secs(settings.connect_retry_secs);
        // An attempt lasts the acquire timeout (sqlx's acquire itself
        // retries a refused connection until then); this loop retries
        // for the rest of the window.
        let mut pause = Duration::from_millis(250);
        let mut attempt = 1u32;
        let pool = loop {
            match pool_options.clone().connect_with(options.clone()).await {
                Ok(pool) => break pool,
                Err(e) if std::time::Instant::now() + pause < deadline => {
                    // One line per attempt, and attempts back off: a
                    // flood of lines helps nobody and an MTA reading the
                    // pipe's standard error stops reading it.
                    tracing::warn!(error = %e, attempt, retry_in_ms = pause.as_millis() as u64, "database {} unreachable, retrying", redacted_url(url));
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                Err(e) => {
                    return Err(other(format!(
                        "cannot connect to the database (tried {attempt} times in {} s): {e}",
                        started.elapsed().as_secs()
                    )));
                }
            }
        };
        let store = Self {
            pool,
            numbers,
            message_domain: settings.message_domain.clone(),
            keys: Arc::default(),
            alive: Arc::new(tokio::sync::watch::channel(()).0),
        };
        store.migrate(settings.create_schema).await?;
        Ok(store)
    }
}

/// Whether to connect without TLS although the URL does not say so: it
/// names no `sslmode` (nor does `PGSSLMODE`), and the server is on this
/// machine (a Unix socket, a loopback address, `localhost`). TLS there
/// protects nothing and costs about a sixth of the ticket rate (sqlx
/// otherwise defaults to `prefer`, which encrypts when the server can).
fn tls_pointless(url: &str, options: &PgConnectOptions, env_sslmode: bool) -> bool {
    let url_sets = url
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("sslmode=")));
    if url_sets || env_sslmode {
        return false;
    }
    if options.get_socket().is_some() {
        return true;
    }
    let host = options.get_host();
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Store for PgStore {
    fn create_ticket(&self, ticket: NewTicket) -> BoxFuture<'_, Result<TicketNumber, StoreError>> {
        Box::pin(async move {
            let Some(claim) = &ticket.idempotency else {
                // One statement (its mail included), committed on its own.
                let mut conn = self.pool.acquire().await?;
                let (number, ..) = insert_ticket_one_statement(
                    &mut conn,
                    &self.numbers,
                    &self.message_domain,
                    &ticket,
                )
                .await?;
                return Ok(TicketNumber::from_stored(number));
            };
            // With an Idempotency-Key: the key's row in the same
            // transaction. A concurrent request with the same key waits
            // at its claim for this one and then finds the key taken.
            let mut tx = self.pool.begin().await?;
            let (number, ..) =
                insert_ticket_one_statement(&mut tx, &self.numbers, &self.message_domain, &ticket)
                    .await?;
            common::claim_idempotency(&mut PgRows(&mut tx), claim, &number).await?;
            tx.commit().await?;
            Ok(TicketNumber::from_stored(number))
        })
    }

    fn find_thread(
        &self,
        query: ThreadQuery,
    ) -> BoxFuture<'_, Result<Option<ThreadRef>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::find_thread(&mut PgRows(&mut conn), &query).await
        })
    }

    fn ingest_email(&self, email: NewEmail) -> BoxFuture<'_, Result<EmailOutcome, StoreError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let outcome =
                ingest_email(&mut tx, &self.numbers, &self.message_domain, &email).await?;
            tx.commit().await?;
            Ok(outcome)
        })
    }

    fn idempotency_claim(
        &self,
        scope: [u8; 32],
        expired_before: i64,
    ) -> BoxFuture<'_, Result<Option<crate::domain::idempotency::StoredClaim>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::idempotency_claim(&mut PgRows(&mut conn), scope, expired_before).await
        })
    }

    fn load_ticket(
        &self,
        number: TicketNumber,
    ) -> BoxFuture<'_, Result<Option<TicketView>, StoreError>> {
        Box::pin(async move { load_ticket(&self.pool, &number).await })
    }

    fn list_tickets(&self, limit: u32) -> BoxFuture<'_, Result<Vec<TicketSummary>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::list_tickets(&mut PgRows(&mut conn), limit).await
        })
    }

    fn ticket_exists(&self, number: TicketNumber) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::ticket_exists(&mut PgRows(&mut conn), &number).await
        })
    }

    fn find_api_key(
        &self,
        hash: [u8; 32],
    ) -> BoxFuture<'_, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            // Only a serving process looks keys up: listen from the first.
            if !self
                .keys
                .started
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                let keys = self.keys.clone();
                let pool = self.pool.clone();
                let mut alive = self.alive.subscribe();
                tokio::spawn(async move {
                    tokio::select! {
                        () = keys.listen(pool) => {}
                        // Every clone of the store is gone.
                        _ = alive.changed() => {}
                    }
                });
            }
            let (hit, generation) = self.keys.get(&hash);
            if hit.is_some() {
                return Ok(hit);
            }
            let mut conn = self.pool.acquire().await?;
            let record = common::find_api_key(&mut PgRows(&mut conn), &hash).await?;
            if let (Some(generation), Some(r)) = (generation, &record) {
                self.keys.fill(generation, r);
            }
            Ok(record)
        })
    }

    fn add_api_key(&self, key: NewApiKey) -> BoxFuture<'_, Result<ApiKeyId, StoreError>> {
        Box::pin(async move {
            let addresses = serde_json::to_string(&key.addresses).map_err(other)?;
            Ok(ApiKeyId(sqlx::query_scalar(
                "INSERT INTO api_keys (hash, prefix, addresses, is_active, can_create, can_read, notes, created)
                 VALUES ($1, $2, $3, true, $4, $5, $6, $7) RETURNING id",
            )
            .bind(&key.hash[..])
            .bind(&key.prefix)
            .bind(addresses)
            .bind(key.can_create)
            .bind(key.can_read)
            .bind(&key.notes)
            .bind(&key.created)
            .fetch_one(&self.pool)
            .await?))
        })
    }

    fn list_api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::list_api_keys(&mut PgRows(&mut conn)).await
        })
    }

    fn revoke_api_key(&self, id: ApiKeyId) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE api_keys SET is_active = false WHERE id = $1")
                .bind(id.0)
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    fn claim_outbox(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<OutboxJob>, StoreError>> {
        self.claim(now, lease_until, limit)
    }

    fn mark_outbox_sent(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.mark_sent(id, now)
    }

    fn mark_outbox_retry(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.mark_retry(id, next_attempt_at, error)
    }

    fn mark_outbox_retry_many(
        &self,
        tried: Vec<i64>,
        untried: Vec<i64>,
        next_attempt_at: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.mark_retry_many(tried, untried, next_attempt_at, error)
    }

    fn mark_outbox_failed(&self, id: i64, error: String) -> BoxFuture<'_, Result<(), StoreError>> {
        self.mark_failed(id, error)
    }

    fn list_outbox(
        &self,
        state: Option<String>,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<OutboxSummary>, StoreError>> {
        self.list_mail(state, limit)
    }

    fn retry_outbox(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.retry_mail(id, now)
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<(String, i64)>, StoreError>> {
        Box::pin(super::table_counts(self))
    }

    fn health(&self) -> BoxFuture<'_, Result<super::StoreHealth, StoreError>> {
        self.read_health()
    }

    fn upkeep(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            // The pending list's pages moved into the index. Another
            // instance cleaning it at the same time makes this return 0
            // at once (PostgreSQL lets one clean at a time), and inserts
            // go on appending meanwhile.
            let pages: i64 =
                sqlx::query_scalar("SELECT gin_clean_pending_list('ticket_search_doc'::regclass)")
                    .fetch_one(&self.pool)
                    .await?;
            Ok(u64::try_from(pages).unwrap_or(0))
        })
    }
}
