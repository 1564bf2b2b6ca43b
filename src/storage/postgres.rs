//! The PostgreSQL backend, for several oxidesk instances sharing one
//! database. Every rule that must hold across instances is a database
//! constraint or lock here: ticket numbers are unique (random numbers
//! retried on conflict, sequential ones from a sequence), a Message-ID is
//! claimed with `INSERT … ON CONFLICT DO NOTHING`, outbox rows are claimed
//! with `FOR UPDATE SKIP LOCKED`, migrations run under an advisory lock.
//!
//! The rules themselves mirror `sqlite.rs` statement for statement.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{Executor, Postgres, Row, Transaction};

use super::common::{self, Rows};
use super::sql;
use super::{
    ApiKeyRecord, BoxFuture, Cap, CapScope, EmailOutcome, MailEvent, MailKind, NUMBER_ATTEMPTS,
    NewApiKey, NewEmail, NewEntry, NewTicket, NotificationView, NumberPolicy, OutboxJob,
    OutboxSummary, Party, QueuedMail, Store, StoreError, ThreadQuery, ThreadRef, TicketSummary,
    TicketView, dropped_column, outbox_id, outgoing_message_id, outgoing_message_id_tail,
};
use super::{ColType, DumpValue};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (2, include_str!("../../migrations/postgres/0002_email.sql")),
    (3, include_str!("../../migrations/postgres/0003_outbox.sql")),
    (
        4,
        include_str!("../../migrations/postgres/0004_outbox_ids.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_key_notify.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_waiting_mail.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_dropped_parts.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_mail_kinds.sql"),
    ),
];

/// Any advisory-lock key, fixed: "oxidesk migrations".
const MIGRATION_LOCK: i64 = 0x6f78_6964_6573_6b01;

/// Pool and timeout settings.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Most connections per instance.
    pub max_connections: u32,
    /// `statement_timeout` for every statement.
    pub statement_timeout_ms: u64,
    /// How long to keep retrying when the database is unreachable at start.
    pub connect_retry_secs: u64,
    /// Domain of outgoing Message-IDs.
    pub message_domain: String,
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

/// API keys already looked up, so that a request costs one statement
/// (the ticket's) rather than two: the lookup was a quarter of the
/// PostgreSQL work per ticket. A trigger on `api_keys` (migration 5)
/// notifies every instance of any change, even one made by hand in SQL,
/// and the cache forgets everything on a notification, when its listening
/// connection is lost, and after [`KEY_CACHE_SECS`] in any case. It is
/// used only while the listener is known to be connected.
#[derive(Default)]
struct KeyCache {
    state: Mutex<KeyCacheState>,
    started: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct KeyCacheState {
    /// Whether the listener is connected and listening.
    live: bool,
    /// Bumped at every invalidation: a lookup that started before one
    /// must not fill the cache with what it read.
    generation: u64,
    keys: HashMap<[u8; 32], (ApiKeyRecord, Instant)>,
}

/// Longest a cached key is trusted without a new lookup.
const KEY_CACHE_SECS: u64 = 60;

/// Most keys cached (found keys only: unknown ones are not cached, so
/// guessing cannot grow the cache).
const KEY_CACHE_MAX: usize = 10_000;

/// The channel the `api_keys` trigger notifies.
const KEYS_CHANNEL: &str = "oxidesk_keys";

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, KeyCacheState> {
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
    fn get(&self, hash: &[u8; 32]) -> (Option<ApiKeyRecord>, Option<u64>) {
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

    fn fill(&self, generation: u64, record: &ApiKeyRecord) {
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

    fn invalidate(&self, live: bool) {
        let mut state = self.lock();
        state.keys.clear();
        state.generation += 1;
        state.live = live;
    }

    /// Listens for key changes until the pool closes.
    async fn listen(self: Arc<Self>, pool: PgPool) {
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
    async fn listen_once(&self, pool: &PgPool) -> sqlx::Error {
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

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Busy(e.to_string())
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("23505") => StoreError::Conflict(e.to_string()),
            // serialization failure, deadlock, query canceled (timeout)
            Some("40001" | "40P01" | "57014") => StoreError::Busy(e.to_string()),
            _ => StoreError::other(e),
        },
        _ => StoreError::other(e),
    }
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
            .acquire_timeout(Duration::from_secs(10))
            // No ping before every use: it was a round trip per request
            // (a fifth of oxidesk's work per ticket). A connection that
            // died fails its statement instead, which answers 503 (retry)
            // and is not returned to the pool.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    sqlx::query("SELECT set_config('statement_timeout', $1, false)")
                        .bind(timeout.to_string())
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        let started = std::time::Instant::now();
        let deadline = started + Duration::from_secs(settings.connect_retry_secs);
        // One attempt never outlasts the retry window (sqlx's acquire
        // itself retries a refused connection until its timeout).
        let pool_options = pool_options.acquire_timeout(Duration::from_secs(
            settings.connect_retry_secs.clamp(1, 10),
        ));
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
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Two instances starting at once: one migrates, the other waits.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
            .await?;
        let current: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await?;
        for (n, sql) in MIGRATIONS {
            if *n > current.unwrap_or(0) {
                tx.execute(*sql)
                    .await
                    .map_err(|e| other(format!("migration {n} failed: {e}")))?;
                sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
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

type Tx<'a> = Transaction<'a, Postgres>;

/// The statement of [`insert_ticket_one_statement`], in parts: the new
/// user's columns, the mail it queues, the attachment inserts. A part
/// left out leaves out its binds too.
macro_rules! insert_ticket_sql {
    ($new_user:expr, $mail:expr, $files:expr) => {
        concat!(
            "WITH u_ins AS (
                 INSERT INTO users ",
            $new_user,
            "
                 ON CONFLICT ((lower(email))) DO NOTHING RETURNING id
             ), u AS (
                 SELECT id FROM u_ins
                 UNION ALL
                 SELECT id FROM users WHERE lower(email) = lower($1)
                 LIMIT 1
             ), t AS (
                 INSERT INTO tickets (number, user_id, subject, status, source, priority_id, priority_name,
                     topic_id, topic_name, dept_id, dept_name, ip, created, alert, autorespond)
                 SELECT $4, u.id, $5, 'open', $6, $7, $8, $9, $10, $11, $12, $13, $3, $14, $15 FROM u
                 ON CONFLICT (number) DO NOTHING RETURNING id, user_id
             ), e AS (
                 INSERT INTO thread_entries (ticket_id, kind, format, body, from_name, from_email, created,
                     message_id, auto_reply, bounce)
                 SELECT t.id, $16, $17, $18, $19, $20, $3, $21, $22, $23 FROM t RETURNING id
             ), ",
            $mail,
            $files,
            "f AS (
                 INSERT INTO field_values (ticket_id, form, name, value)
                 SELECT t.id, x.form, x.name, x.value
                 FROM t, unnest($31::text[], $32::text[], $33::text[]) AS x(form, name, value)
             )
             SELECT t.id, e.id, t.user_id FROM t, e"
        )
    };
}

/// A new user, with no autoresponse to count.
macro_rules! new_user {
    () => {
        "(email, name, created) VALUES ($1, $2, $3)"
    };
}

/// A new user whose ticket may queue mail: its first autoresponse opens
/// its hourly window (a row inserted by this statement is not visible to
/// the `cap` update below).
macro_rules! new_user_counted {
    () => {
        "(email, name, created, autoresponse_window_start, autoresponses_in_window)
         VALUES ($1, $2, $3, $35, CASE WHEN $34 THEN 1 ELSE 0 END)"
    };
}

/// The outbox rows of a new ticket, in its statement: the mail the
/// domain decided (`$37` kind indexes, `$38` kinds, `$39` events, `$40`
/// recipients as JSON, `$41` Message-ID tails, `$42` whether the mail is
/// under the user's hourly cap), ids following the entry (`outbox_id`).
/// A user-capped mail is written when the user's counter (`cap`, one per
/// user, `$36` a limit, `$35` the unix time; `$34` whether any mail is
/// user-capped) allows it; a new user's first counts in its insert.
/// Ticket caps pass for a new ticket: it has queued nothing yet.
macro_rules! mail {
    () => {
        "cap AS (
             UPDATE users SET
                 autoresponses_in_window = CASE WHEN autoresponse_window_start > $35 - 3600
                     THEN autoresponses_in_window + 1 ELSE 1 END,
                 autoresponse_window_start = CASE WHEN autoresponse_window_start > $35 - 3600
                     THEN autoresponse_window_start ELSE $35 END
             WHERE $34 AND id = (SELECT user_id FROM t) AND NOT EXISTS (SELECT 1 FROM u_ins)
             RETURNING autoresponses_in_window <= $36 AS allowed
         ), o AS (
             INSERT INTO outbox (id, ticket_id, entry_id, kind, event, recipients, message_id,
                 state, next_attempt_at, created_at)
             SELECT e.id * 4 + x.idx, t.id, e.id, x.kind, x.event, x.rcpt,
                 'oxidesk.' || x.kind || '.' || t.id || '.' || x.tail, 'queued', $35, $35
             FROM t, e, unnest($37::bigint[], $38::text[], $39::text[], $40::text[], $41::text[],
                               $42::bool[]) AS x(idx, kind, event, rcpt, tail, capped)
             WHERE NOT x.capped
                OR EXISTS (SELECT 1 FROM cap WHERE allowed)
                OR (EXISTS (SELECT 1 FROM u_ins) AND $36 >= 1)
         ), "
    };
}

/// The attachments: blobs stored once by content, then the entry's list.
macro_rules! files {
    () => {
        "b AS (
         INSERT INTO blobs (sha256, size, data)
         SELECT x.sha, x.size, x.data
         FROM unnest($24::bytea[], $25::bigint[], $26::bytea[]) AS x(sha, size, data)
         WHERE EXISTS (SELECT 1 FROM t)
         ON CONFLICT (sha256) DO NOTHING
     ), a AS (
         INSERT INTO attachments (entry_id, position, sha256, name, content_type, inline, content_id)
         SELECT e.id, x.pos - 1, x.sha, x.name, x.ct, x.inl, x.cid
         FROM e, unnest($24::bytea[], $27::text[], $28::text[], $29::bool[], $30::text[])
             WITH ORDINALITY AS x(sha, name, ct, inl, cid, pos)
     ), "
    };
}

/// The four statements: `[with mail][with files]`.
const INSERT_TICKET: [[&str; 2]; 2] = [
    [
        insert_ticket_sql!(new_user!(), "", ""),
        insert_ticket_sql!(new_user!(), "", files!()),
    ],
    [
        insert_ticket_sql!(new_user_counted!(), mail!(), ""),
        insert_ticket_sql!(new_user_counted!(), mail!(), files!()),
    ],
];

/// The whole ticket (user, ticket, entry, files, form values) in one
/// statement: one round trip instead of a dozen, which is what bounds a
/// PostgreSQL helpdesk's rate. Returns (number, ticket id, entry id,
/// user id). A taken random number (or a user row another transaction
/// committed a moment ago) makes the statement insert nothing; it is
/// then run again with a fresh number and snapshot.
async fn insert_ticket_one_statement(
    conn: &mut sqlx::PgConnection,
    numbers: &NumberPolicy,
    message_domain: &str,
    t: &NewTicket,
) -> Result<(String, i64, i64, i64), StoreError> {
    let e = &t.entry;
    let shas: Vec<Vec<u8>> = e.attachments.iter().map(|a| a.sha256.to_vec()).collect();
    let sizes: Vec<i64> = e.attachments.iter().map(|a| a.data.len() as i64).collect();
    let datas: Vec<Vec<u8>> = e.attachments.iter().map(|a| a.data.clone()).collect();
    let names: Vec<String> = e.attachments.iter().map(|a| a.name.clone()).collect();
    let types: Vec<String> = e
        .attachments
        .iter()
        .map(|a| a.content_type.clone())
        .collect();
    let inlines: Vec<bool> = e.attachments.iter().map(|a| a.inline).collect();
    let cids: Vec<Option<String>> = e.attachments.iter().map(|a| a.content_id.clone()).collect();
    let forms: Vec<String> = t.fields.iter().map(|f| f.form.clone()).collect();
    let fnames: Vec<String> = t.fields.iter().map(|f| f.name.clone()).collect();
    let fvalues: Vec<String> = t.fields.iter().map(|f| f.value.to_string()).collect();
    let plan = MailArrays::new(&t.mail, message_domain)?;
    let mail = !t.mail.is_empty();
    for _ in 0..NUMBER_ATTEMPTS {
        let number = if numbers.sequential {
            let v: i64 = sqlx::query_scalar("SELECT nextval('ticket_number_seq')")
                .fetch_one(&mut *conn)
                .await?;
            numbers.sequential_number(v)
        } else {
            numbers.random_number()
        };
        // Most tickets carry no file: their statement leaves out the
        // file parts, which PostgreSQL would otherwise plan and start;
        // likewise the mail parts when no mail can be queued.
        let sql = INSERT_TICKET[usize::from(mail)][usize::from(!e.attachments.is_empty())];
        let row: Option<(i64, i64, i64)> = sqlx::query_as(sql)
            .bind(&t.user_email)
            .bind(&t.user_name)
            .bind(&t.created)
            .bind(&number)
            .bind(&t.subject)
            .bind(&t.source)
            .bind(t.priority.id)
            .bind(&t.priority.name)
            .bind(t.topic.as_ref().map(|n| n.id))
            .bind(t.topic.as_ref().map(|n| n.name.clone()))
            .bind(t.department.as_ref().map(|n| n.id))
            .bind(t.department.as_ref().map(|n| n.name.clone()))
            .bind(&t.ip)
            .bind(t.alert)
            .bind(t.autorespond)
            .bind(&e.kind)
            .bind(&e.format)
            .bind(&e.body)
            .bind(&e.from_name)
            .bind(&e.from_email)
            .bind(&e.message_id)
            .bind(e.auto_reply)
            .bind(e.bounce)
            .bind(&shas)
            .bind(&sizes)
            .bind(&datas)
            .bind(&names)
            .bind(&types)
            .bind(&inlines)
            .bind(&cids)
            .bind(&forms)
            .bind(&fnames)
            .bind(&fvalues)
            .bind(plan.user_capped)
            .bind(t.now.as_second())
            .bind(i64::from(plan.user_limit))
            .bind(&plan.indexes)
            .bind(&plan.kinds)
            .bind(&plan.events)
            .bind(&plan.recipients)
            .bind(&plan.tails)
            .bind(&plan.capped)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some((ticket_id, entry_id, user_id)) = row {
            return Ok((number, ticket_id, entry_id, user_id));
        }
    }
    Err(StoreError::Conflict(format!(
        "no free ticket number after {NUMBER_ATTEMPTS} attempts: widen tickets.number_format"
    )))
}

async fn insert_entry(
    tx: &mut Tx<'_>,
    ticket_id: i64,
    e: &NewEntry,
    created: &str,
) -> Result<i64, StoreError> {
    let entry_id: i64 = sqlx::query_scalar(
        "INSERT INTO thread_entries (ticket_id, kind, format, body, from_name, from_email, created,
             message_id, auto_reply, bounce)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(ticket_id)
    .bind(&e.kind)
    .bind(&e.format)
    .bind(&e.body)
    .bind(&e.from_name)
    .bind(&e.from_email)
    .bind(created)
    .bind(&e.message_id)
    .bind(e.auto_reply)
    .bind(e.bounce)
    .fetch_one(&mut **tx)
    .await?;
    for (position, a) in e.attachments.iter().enumerate() {
        sqlx::query("INSERT INTO blobs (sha256, size, data) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING")
            .bind(&a.sha256[..])
            .bind(a.data.len() as i64)
            .bind(&a.data)
            .execute(&mut **tx)
            .await?;
        sqlx::query(sql::INSERT_ATTACHMENT)
            .bind(entry_id)
            .bind(position as i64)
            .bind(&a.sha256[..])
            .bind(&a.name)
            .bind(&a.content_type)
            .bind(a.inline)
            .bind(&a.content_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(entry_id)
}

/// The staff alert a reply by email queues (when the department has
/// recipients), in the caller's transaction. A new ticket's mail is part
/// of its statement (`mail!`).
/// The mail of a new ticket as the arrays its statement unnests.
struct MailArrays {
    indexes: Vec<i64>,
    kinds: Vec<&'static str>,
    events: Vec<&'static str>,
    recipients: Vec<String>,
    tails: Vec<String>,
    capped: Vec<bool>,
    /// Some mail is under the user's hourly cap.
    user_capped: bool,
    /// Its limit (one counter per user).
    user_limit: u32,
}

impl MailArrays {
    fn new(mail: &[QueuedMail], message_domain: &str) -> Result<Self, StoreError> {
        let mut a = MailArrays {
            indexes: Vec::with_capacity(mail.len()),
            kinds: Vec::with_capacity(mail.len()),
            events: Vec::with_capacity(mail.len()),
            recipients: Vec::with_capacity(mail.len()),
            tails: Vec::with_capacity(mail.len()),
            capped: Vec::with_capacity(mail.len()),
            user_capped: false,
            user_limit: 0,
        };
        for m in mail {
            let user_cap = match m.cap {
                Some(Cap {
                    scope: CapScope::User,
                    limit,
                }) => {
                    a.user_limit = limit;
                    true
                }
                // A new ticket has queued nothing yet: only a limit of 0
                // refuses.
                Some(Cap {
                    scope: CapScope::Ticket,
                    limit: 0,
                }) => continue,
                Some(Cap {
                    scope: CapScope::Ticket,
                    ..
                })
                | None => false,
            };
            a.user_capped |= user_cap;
            a.indexes.push(m.kind.index());
            a.kinds.push(m.kind.as_str());
            a.events.push(m.event.as_str());
            a.recipients
                .push(serde_json::to_string(&m.recipients).map_err(other)?);
            a.tails.push(outgoing_message_id_tail(message_domain));
            a.capped.push(user_cap);
        }
        Ok(a)
    }
}

/// Writes the mail the domain decided for a reply's entry, each under
/// its cap (a user cap on the user's counter, a ticket cap by counting
/// the kind's rows of the ticket in the hour).
async fn insert_reply_mail(
    tx: &mut Tx<'_>,
    message_domain: &str,
    ticket_id: i64,
    entry_id: i64,
    mail: &[QueuedMail],
    now: i64,
) -> Result<(), StoreError> {
    for m in mail {
        let allowed = match m.cap {
            None => true,
            Some(Cap {
                scope: CapScope::User,
                limit,
            }) => {
                sqlx::query_scalar::<_, bool>(
                    "UPDATE users SET
                     autoresponses_in_window = CASE WHEN autoresponse_window_start > $2 - 3600
                         THEN autoresponses_in_window + 1 ELSE 1 END,
                     autoresponse_window_start = CASE WHEN autoresponse_window_start > $2 - 3600
                         THEN autoresponse_window_start ELSE $2 END
                 WHERE id = (SELECT user_id FROM tickets WHERE id = $1)
                 RETURNING autoresponses_in_window <= $3",
                )
                .bind(ticket_id)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_one(&mut **tx)
                .await?
            }
            Some(Cap {
                scope: CapScope::Ticket,
                limit,
            }) => {
                let recent: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM thread_entries e JOIN outbox o ON o.id = e.id * 4 + $2
                     WHERE e.ticket_id = $1 AND o.created_at >= $3",
                )
                .bind(ticket_id)
                .bind(m.kind.index())
                .bind(now - crate::domain::notify::CAP_WINDOW_SECS)
                .fetch_one(&mut **tx)
                .await?;
                recent < i64::from(limit)
            }
        };
        if !allowed {
            tracing::warn!(
                ticket.id = ticket_id,
                mail.kind = m.kind.as_str(),
                "mail cap reached: not queued (a mail loop?)"
            );
            continue;
        }
        sqlx::query(
            "INSERT INTO outbox (id, ticket_id, entry_id, kind, event, recipients, message_id,
                 state, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $8)",
        )
        .bind(outbox_id(entry_id, m.kind))
        .bind(ticket_id)
        .bind(entry_id)
        .bind(m.kind.as_str())
        .bind(m.event.as_str())
        .bind(serde_json::to_string(&m.recipients).map_err(other)?)
        .bind(outgoing_message_id(m.kind, ticket_id, message_domain))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn ingest_email(
    tx: &mut Tx<'_>,
    numbers: &NumberPolicy,
    message_domain: &str,
    email: &NewEmail,
) -> Result<EmailOutcome, StoreError> {
    let created = &email.ticket.created;
    if let Some(id) = &email.message_id {
        // The claim is a unique constraint: a concurrent claim of the same
        // id waits for this transaction and then finds the row.
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO processed_messages (message_id, ticket_id, created) VALUES ($1, NULL, $2)
             ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        )
        .bind(id)
        .bind(created)
        .fetch_optional(&mut **tx)
        .await?;
        if claimed.is_none() {
            let number: Option<String> = sqlx::query_scalar(sql::PROCESSED_MESSAGE_TICKET)
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
            return Ok(EmailOutcome::Duplicate(number));
        }
    }
    let (outcome, ticket_id, entry_id) = match &email.thread {
        Some(thread) => {
            let t = &email.ticket;
            let entry_id = insert_entry(tx, thread.ticket_id, &t.entry, created).await?;
            insert_reply_mail(
                tx,
                message_domain,
                thread.ticket_id,
                entry_id,
                &t.mail,
                t.now.as_second(),
            )
            .await?;
            (
                EmailOutcome::Appended(thread.number.clone()),
                thread.ticket_id,
                entry_id,
            )
        }
        None if email.is_bounce => return Ok(EmailOutcome::BounceLogged),
        None => {
            let (number, ticket_id, entry_id, _) =
                insert_ticket_one_statement(tx, numbers, message_domain, &email.ticket).await?;
            (EmailOutcome::Created(number), ticket_id, entry_id)
        }
    };
    sqlx::query(sql::INSERT_RAW_MESSAGE)
        .bind(entry_id)
        .bind(&email.raw_compressed)
        .execute(&mut **tx)
        .await?;
    // Rare (a part over a cap): a statement of its own rather than a
    // column in every ticket's one statement.
    if let Some(dropped) = dropped_column(&email.ticket.entry.dropped)? {
        sqlx::query(sql::SET_DROPPED_PARTS)
            .bind(dropped)
            .bind(entry_id)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(id) = &email.message_id {
        sqlx::query(sql::SET_PROCESSED_MESSAGE_TICKET)
            .bind(ticket_id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(outcome)
}

fn notification(r: &PgRow) -> Result<NotificationView, StoreError> {
    let recipients: String = r.try_get(2)?;
    Ok(NotificationView {
        kind: r.try_get(0)?,
        event: r.try_get(1)?,
        recipients: serde_json::from_str(&recipients).map_err(other)?,
        state: r.try_get(3)?,
        attempts: r.try_get(4)?,
        last_error: r.try_get(5)?,
        message_id: r.try_get(6)?,
    })
}

async fn load_ticket(pool: &PgPool, number: &str) -> Result<Option<TicketView>, StoreError> {
    let mut conn = pool.acquire().await?;
    let Some((ticket_id, mut view)) = common::load_ticket(&mut PgRows(&mut conn), number).await?
    else {
        return Ok(None);
    };
    let notes = sqlx::query(
        "SELECT o.kind, o.event, o.recipients, o.state, o.attempts, o.last_error, o.message_id
         FROM thread_entries e JOIN outbox o ON o.id BETWEEN e.id * 4 AND e.id * 4 + 3
         WHERE e.ticket_id = $1 ORDER BY o.id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    for n in &notes {
        view.notifications.push(notification(n)?);
    }
    Ok(Some(view))
}

impl Store for PgStore {
    fn create_ticket(&self, ticket: NewTicket) -> BoxFuture<'_, Result<String, StoreError>> {
        Box::pin(async move {
            // One statement (its mail included), committed on its own.
            let mut conn = self.pool.acquire().await?;
            let (number, ..) = insert_ticket_one_statement(
                &mut conn,
                &self.numbers,
                &self.message_domain,
                &ticket,
            )
            .await?;
            Ok(number)
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

    fn load_ticket(&self, number: String) -> BoxFuture<'_, Result<Option<TicketView>, StoreError>> {
        Box::pin(async move { load_ticket(&self.pool, &number).await })
    }

    fn list_tickets(&self, limit: u32) -> BoxFuture<'_, Result<Vec<TicketSummary>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::list_tickets(&mut PgRows(&mut conn), limit).await
        })
    }

    fn ticket_exists(&self, number: String) -> BoxFuture<'_, Result<bool, StoreError>> {
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

    fn add_api_key(&self, key: NewApiKey) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(async move {
            let addresses = serde_json::to_string(&key.addresses).map_err(other)?;
            Ok(sqlx::query_scalar(
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
            .await?)
        })
    }

    fn list_api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            common::list_api_keys(&mut PgRows(&mut conn)).await
        })
    }

    fn revoke_api_key(&self, id: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE api_keys SET is_active = false WHERE id = $1")
                .bind(id)
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
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            // SKIP LOCKED: instances sharing the database never claim the
            // same row.
            let mut ids: Vec<i64> = Vec::new();
            for sql in [
                "UPDATE outbox SET state = 'sending', lease_until = $2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= $1
                              ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id",
                "UPDATE outbox SET state = 'sending', lease_until = $2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM outbox WHERE state = 'sending' AND lease_until <= $1
                              LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id",
            ] {
                let room = i64::from(limit) - ids.len() as i64;
                if room <= 0 {
                    break;
                }
                let claimed: Vec<i64> = sqlx::query_scalar(sql)
                    .bind(now)
                    .bind(lease_until)
                    .bind(room)
                    .fetch_all(&mut *tx)
                    .await?;
                ids.extend(claimed);
            }
            let mut jobs = Vec::with_capacity(ids.len());
            for id in ids {
                let r = sqlx::query(sql::OUTBOX_JOB)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                let recipients: String = r.try_get(3)?;
                let ticket_id: i64 = r.try_get(19)?;
                let user_name: String = r.try_get(9)?;
                let user_email: String = r.try_get(10)?;
                let sender = Party {
                    name: r
                        .try_get::<Option<String>, _>(17)?
                        .unwrap_or_else(|| user_name.clone()),
                    email: r
                        .try_get::<Option<String>, _>(18)?
                        .unwrap_or_else(|| user_email.clone()),
                };
                let earlier_mail =
                    common::earlier_mail(&mut PgRows(&mut tx), ticket_id, id).await?;
                let kind: String = r.try_get(1)?;
                let event: String = r.try_get(2)?;
                jobs.push(OutboxJob {
                    id: r.try_get(0)?,
                    kind: MailKind::parse(&kind)
                        .ok_or_else(|| other(format!("outbox row {id}: unknown kind {kind:?}")))?,
                    event: MailEvent::parse(&event).ok_or_else(|| {
                        other(format!("outbox row {id}: unknown event {event:?}"))
                    })?,
                    recipients: serde_json::from_str(&recipients).map_err(other)?,
                    message_id: r.try_get(4)?,
                    attempts: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                    number: r.try_get(7)?,
                    subject: r.try_get(8)?,
                    user_name,
                    user_email,
                    topic: r.try_get(11)?,
                    priority: r.try_get(12)?,
                    department: r.try_get(13)?,
                    body: r.try_get::<Option<String>, _>(14)?.unwrap_or_default(),
                    format: r.try_get::<Option<String>, _>(15)?.unwrap_or_default(),
                    entry_message_id: r.try_get(16)?,
                    sender,
                    earlier_mail,
                });
            }
            tx.commit().await?;
            Ok(jobs)
        })
    }

    fn mark_outbox_sent(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(sql::MARK_OUTBOX_SENT)
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn mark_outbox_retry(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(sql::MARK_OUTBOX_RETRY)
                .bind(next_attempt_at)
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn mark_outbox_failed(&self, id: i64, error: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(sql::MARK_OUTBOX_FAILED)
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn list_outbox(
        &self,
        state: Option<String>,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<OutboxSummary>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT o.kind, o.event, o.recipients, o.state, o.attempts, o.last_error, o.message_id,
                        o.id, t.number
                 FROM outbox o JOIN tickets t ON t.id = o.ticket_id
                 WHERE $1::text IS NULL OR o.state = $1 ORDER BY o.id DESC LIMIT $2",
            )
            .bind(state)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(OutboxSummary {
                        id: r.try_get(7)?,
                        number: r.try_get(8)?,
                        notification: notification(r)?,
                    })
                })
                .collect()
        })
    }

    fn retry_outbox(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let done = sqlx::query(sql::RETRY_OUTBOX)
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<(String, i64)>, StoreError>> {
        Box::pin(super::table_counts(self))
    }
}

/// `ORDER BY` with byte-wise text order, as SQLite sorts, so that both
/// sides of a copy stream rows in the same order.
fn pg_order(table: &super::TableSpec) -> String {
    table
        .order_by
        .split(',')
        .map(|c| {
            let c = c.trim();
            let is_text = table
                .columns
                .iter()
                .any(|(name, ty)| *name == c && *ty == super::ColType::Text);
            if is_text {
                format!("{c} COLLATE \"C\"")
            } else {
                c.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn pg_columns(table: &super::TableSpec) -> String {
    table
        .columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

impl super::DataCopy for PgStore {
    fn export_rows(
        &self,
        table: &'static super::TableSpec,
        offset: i64,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Vec<super::DumpValue>>, StoreError>> {
        Box::pin(async move {
            // Table and column names are constants of TABLES, never input.
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {} LIMIT $1 OFFSET $2",
                pg_columns(table),
                table.name,
                pg_order(table)
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(pg_values(r, table.columns.iter().map(|(_, ty)| *ty))?);
            }
            Ok(out)
        })
    }

    fn import_rows(
        &self,
        table: &'static super::TableSpec,
        rows: Vec<Vec<super::DumpValue>>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            use super::{ColType, DumpValue};
            let placeholders: Vec<String> =
                (1..=table.columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name,
                pg_columns(table),
                placeholders.join(", ")
            );
            let mut tx = self.pool.begin().await?;
            for row in rows {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                for (v, (_, ty)) in row.into_iter().zip(table.columns.iter()) {
                    q = match (v, ty) {
                        (DumpValue::Int(n), _) => q.bind(n),
                        (DumpValue::Text(t), _) => q.bind(t),
                        (DumpValue::Blob(b), _) => q.bind(b),
                        (DumpValue::Bool(b), _) => q.bind(b),
                        (DumpValue::Null, ColType::Int) => q.bind(None::<i64>),
                        (DumpValue::Null, ColType::Text) => q.bind(None::<String>),
                        (DumpValue::Null, ColType::Blob) => q.bind(None::<Vec<u8>>),
                        (DumpValue::Null, ColType::Bool) => q.bind(None::<bool>),
                    };
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn prepare_export(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        // Every queued mail is an outbox row here already.
        Box::pin(async { Ok(()) })
    }

    fn row_count(
        &self,
        table: &'static super::TableSpec,
    ) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(async move {
            let sql = format!("SELECT count(*) FROM {}", table.name);
            Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&self.pool)
                .await?)
        })
    }

    fn ticket_counter(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(async move {
            let (last, called): (i64, bool) =
                sqlx::query_as("SELECT last_value, is_called FROM ticket_number_seq")
                    .fetch_one(&self.pool)
                    .await?;
            Ok(if called { last } else { 0 })
        })
    }

    fn finish_import(&self, ticket_counter: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            for table in super::TABLES.iter().filter(|t| t.has_serial_id) {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), GREATEST((SELECT max(id) FROM {0}), 1))",
                    table.name
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&self.pool)
                    .await?;
            }
            if ticket_counter > 0 {
                sqlx::query("SELECT setval('ticket_number_seq', $1)")
                    .bind(ticket_counter)
                    .execute(&self.pool)
                    .await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_in_messages() {
        assert_eq!(
            redacted_url("postgres://u:secret@db:5432/x?sslmode=require"),
            "postgres://u:***@db:5432/x?sslmode=require"
        );
        assert_eq!(redacted_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(
            redacted_url("postgres://db/x?password=s"),
            "postgres://db/x"
        );
        assert_eq!(
            redacted_url("postgres://u@db/x?password=s"),
            "postgres://u@db/x"
        );
        assert_eq!(
            redacted_url("postgres://a:b@c@db/x"),
            "postgres://a:***@db/x"
        );
    }

    #[test]
    fn tls_is_dropped_only_for_this_machine_and_only_when_unasked() {
        let cases = [
            ("postgres://u@127.0.0.1:5432/db", false, true),
            ("postgres://u@127.0.0.2/db", false, true),
            ("postgres://u@[::1]/db", false, true),
            ("postgres://u@localhost/db", false, true),
            (
                "postgres://u@localhost/db?host=/var/run/postgresql",
                false,
                true,
            ),
            ("postgres://u@127.0.0.1/db?sslmode=require", false, false),
            (
                "postgres://u@127.0.0.1/db?application_name=x&sslmode=prefer",
                false,
                false,
            ),
            ("postgres://u@127.0.0.1/db", true, false),
            ("postgres://u@db.example.com/db", false, false),
            ("postgres://u@10.0.0.5/db", false, false),
        ];
        for (url, env, expected) in cases {
            let options: PgConnectOptions = url.parse().unwrap();
            assert_eq!(tls_pointless(url, &options, env), expected, "{url}");
        }
    }
}
