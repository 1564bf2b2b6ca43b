//! The embedded SQLite backend.
//!
//! Writes go through one writer thread that commits **groups** of requests
//! in one transaction (group commit), and every caller is answered only
//! after the COMMIT (with `synchronous=FULL`, an fsync of the WAL) has
//! returned. An fsync costs milliseconds; sharing it between the requests
//! that arrived meanwhile is what makes durable writes fast. When one
//! request of a group fails, the group is rolled back and the others run
//! again, each alone (see [`Job`]). Reads use a small pool of read-only
//! connections (WAL lets them run beside the writer).
//!
//! Notifications: a ticket or reply records the mail it queues on its
//! thread entry (`notify`, `mail_to`; migrations 6 and 8), in its own
//! transaction. The outbox sender takes waiting mail in entry order,
//! writing each mail's outbox row as it claims it; the writer keeps how
//! far it has read. Ids grow in commit order because this is the only
//! writer. A request thus writes no outbox page: those pages were most of
//! what notifications cost a commit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::oneshot;

use super::common::{self, Row, Rows, run_ready};
use super::sql;
use super::{
    ApiKeyRecord, BoxFuture, Cap, CapScope, EmailOutcome, MailEvent, MailKind, NUMBER_ATTEMPTS,
    NewApiKey, NewEmail, NewEntry, NewTicket, NumberPolicy, Party, QueuedMail, Store, StoreError,
    ThreadQuery, ThreadRef, TicketSummary, TicketView, dropped_column, outbox_id,
    outgoing_message_id,
    windows::{self, Windows},
};
use super::{ColType, DumpValue};

/// Schema migrations, applied in order; `PRAGMA user_version` records the
/// last one applied.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_email.sql")),
    (3, include_str!("../../migrations/sqlite/0003_outbox.sql")),
    (
        4,
        include_str!("../../migrations/sqlite/0004_outbox_ids.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_key_notify.sql"),
    ),
    (
        6,
        concat!(
            include_str!("../../migrations/sqlite/0006_waiting_mail.sql"),
            include_str!("../../migrations/sqlite/entry_mail_from_outbox.sql")
        ),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_dropped_parts.sql"),
    ),
    (
        8,
        include_str!("../../migrations/sqlite/0008_mail_kinds.sql"),
    ),
];

/// `thread_entries.notify` (migration 8): bit `1 << kind.index()` for
/// each kind of mail the entry queued.
fn kind_bit(kind: MailKind) -> i64 {
    1 << kind.index()
}
/// `thread_entries.notify`: the entry's mail counted against its user's
/// hourly cap (the windows are rebuilt from this bit at start).
const MAIL_USER_CAPPED: i64 = 64;
/// `thread_entries.notify`: the event was a reply, not a new ticket.
const MAIL_REPLY: i64 = 128;

/// Most requests committed in one transaction.
const MAX_GROUP: usize = 512;

/// One request's writes, run by the writer thread inside a group's
/// transaction. A job may run more than once: when another job of its
/// group fails, the group is rolled back and the others run again (no
/// per-job savepoints: their sub-journal copies and frees showed up as
/// the writer's largest cost after the commit itself).
trait Job: Send {
    /// Runs the writes; keeps the result; tells whether they succeeded.
    fn run(&mut self, conn: &Connection, w: &mut WriterState) -> bool;
    /// Answers the caller once the transaction's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

struct PendingJob<T, F> {
    work: F,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for PendingJob<T, F>
where
    T: Send,
    F: Fn(&Connection, &mut WriterState) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection, w: &mut WriterState) -> bool {
        let result = (self.work)(conn, w);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let outcome = match (self.result, commit) {
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Err(e)), _) | (Some(Ok(_)), Err(e)) => Err(e),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Err(StoreError::Busy("the request was not run".into())),
        };
        let _ = self.reply.send(outcome);
    }
}

type BoxJob = Box<dyn Job>;

/// What the writer thread keeps besides its connection.
struct WriterState {
    numbers: NumberPolicy,
    windows: Windows,
    taken: TakenUpTo,
    message_domain: String,
}

/// How far the sender has read the thread for waiting mail: no entry up
/// to this id has mail left to take. Moves with a commit only.
#[derive(Debug, Default)]
struct TakenUpTo {
    committed: i64,
    pending: Option<i64>,
}

impl TakenUpTo {
    fn get(&self) -> i64 {
        self.pending.unwrap_or(self.committed)
    }

    fn set(&mut self, entry_id: i64) {
        self.pending = Some(entry_id);
    }

    fn commit(&mut self) {
        if let Some(p) = self.pending.take() {
            self.committed = p;
        }
    }

    fn rollback(&mut self) {
        self.pending = None;
    }
}

/// Entries up to this id have had their mail taken: they are taken in
/// order, so every entry before the last outbox row's has been.
fn taken_up_to(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT coalesce(max(id), 0) / ?1 FROM outbox",
        [super::OUTBOX_IDS_PER_ENTRY],
        |r| r.get(0),
    )?)
}

/// SQLite store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::Sender<BoxJob>>>,
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut w) = self.writer.lock()
            && let Some(handle) = w.take()
        {
            let _ = handle.join();
        }
    }
}

/// The shared statements ([`common`]) on a SQLite connection: answers at
/// once, so [`run_ready`] serves it on the calling thread.
struct SqliteRows<'c>(&'c Connection);

impl Rows for SqliteRows<'_> {
    fn rows<'a>(
        &'a mut self,
        sql: &'static str,
        params: Vec<DumpValue>,
        cols: &'static [ColType],
    ) -> BoxFuture<'a, Result<Vec<Row>, StoreError>> {
        let result = sqlite_rows(self.0, sql, &params, cols);
        Box::pin(std::future::ready(result))
    }
}

/// A value as SQLite stores it.
fn sqlite_value(v: &DumpValue) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        DumpValue::Null => Value::Null,
        DumpValue::Int(n) => Value::Integer(*n),
        DumpValue::Text(t) => Value::Text(t.clone()),
        DumpValue::Blob(b) => Value::Blob(b.clone()),
        DumpValue::Bool(b) => Value::Integer(i64::from(*b)),
    }
}

/// A SQLite column as `ty` (0/1 as booleans).
fn dump_value(v: rusqlite::types::ValueRef<'_>, ty: ColType) -> DumpValue {
    use rusqlite::types::ValueRef;
    match (v, ty) {
        (ValueRef::Null, _) => DumpValue::Null,
        (ValueRef::Integer(n), ColType::Bool) => DumpValue::Bool(n != 0),
        (ValueRef::Integer(n), _) => DumpValue::Int(n),
        (ValueRef::Text(t), _) => DumpValue::Text(String::from_utf8_lossy(t).into_owned()),
        (ValueRef::Blob(b), _) => DumpValue::Blob(b.to_vec()),
        (ValueRef::Real(f), _) => DumpValue::Text(f.to_string()),
    }
}

fn sqlite_rows(
    conn: &Connection,
    sql: &str,
    params: &[DumpValue],
    cols: &[ColType],
) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(sqlite_value)))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(cols.len());
        for (i, ty) in cols.iter().enumerate() {
            values.push(dump_value(row.get_ref(i)?, *ty));
        }
        out.push(Row(values));
    }
    Ok(out)
}

/// A text column parsed by `parse`; a value it refuses is a conversion
/// error naming the column.
fn parse_column<T>(
    r: &rusqlite::Row<'_>,
    i: usize,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unexpected value {text:?}").into(),
        )
    })
}

fn other(e: impl std::fmt::Display) -> StoreError {
    StoreError::other(e.to_string())
}

fn map_sqlite(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    if matches!(e, rusqlite::Error::QueryReturnedNoRows) {
        return StoreError::NotFound;
    }
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Busy(e.to_string())
        }
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
        _ => StoreError::other(e),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        map_sqlite(e)
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `path`, applies the
    /// migrations and starts the writer thread.
    /// `message_domain` is the domain of the Message-IDs of outgoing
    /// mail (made when the sender takes a mail).
    pub fn open(
        path: &Path,
        numbers: NumberPolicy,
        message_domain: &str,
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                other(format!(
                    "cannot create database directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let conn = Connection::open(path)
            .map_err(|e| other(format!("cannot open database {}: {e}", path.display())))?;
        configure(&conn)?;
        // A file this user may read but not write opens read-only without
        // a word, and every ticket would then fail: say so now.
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(other(format!(
                "database {} is read-only to this user (it needs write access to the file and its directory)",
                path.display()
            )));
        }
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(other(format!(
                "cannot switch {} to WAL (got {mode})",
                path.display()
            )));
        }
        // A 201 means durable: the WAL is synced at every commit.
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&conn)?;
        let state = WriterState {
            numbers,
            windows: load_windows(&conn, unix_now())?,
            taken: TakenUpTo {
                committed: taken_up_to(&conn)?,
                pending: None,
            },
            message_domain: message_domain.to_string(),
        };
        let (tx, rx) = mpsc::channel::<BoxJob>();
        let writer = std::thread::Builder::new()
            .name("oxidesk-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, state))
            .map_err(other)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                jobs: Mutex::new(Some(tx)),
                readers: Mutex::new(Vec::new()),
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// Runs `f` in the writer's next group; resolves after the commit.
    /// `f` may be called more than once (see [`Job`]); only the last
    /// call's writes are committed.
    fn write<T, F>(&self, f: F) -> BoxFuture<'_, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: Fn(&Connection, &mut WriterState) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
        let job: BoxJob = Box::new(PendingJob {
            work: f,
            result: None,
            reply: tx,
        });
        let sent = match self.inner.jobs.lock() {
            Ok(jobs) => jobs.as_ref().is_some_and(|s| s.send(job).is_ok()),
            Err(_) => false,
        };
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Busy("the database writer has stopped".into()));
            }
            rx.await
                .map_err(|_| StoreError::Busy("the database writer has stopped".into()))?
        })
    }

    /// Runs `f` on a pooled read connection, off the async threads.
    fn read<T, F>(&self, f: F) -> BoxFuture<'_, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || with_reader(&inner, f))
                .await
                .map_err(other)?
        })
    }

    /// Runs a point lookup on a pooled read connection on the calling
    /// thread. Only for indexed single-row reads of hot pages (a few
    /// microseconds, less than the hand-off to the blocking pool costs);
    /// anything that may scan goes through [`Self::read`].
    fn read_point<T, F>(&self, f: F) -> BoxFuture<'_, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let result = with_reader(&self.inner, f);
        Box::pin(std::future::ready(result))
    }
}

fn with_reader<T>(
    inner: &Inner,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let pooled = inner.readers.lock().map_err(other)?.pop();
    let conn = match pooled {
        Some(c) => c,
        None => {
            let c = Connection::open_with_flags(
                &inner.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&c)?;
            c
        }
    };
    let result = f(&conn);
    if let Ok(mut pool) = inner.readers.lock()
        && pool.len() < 16
    {
        pool.push(conn);
    }
    result
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    // Up to date (the common case, e.g. every `oxidesk pipe` run): no
    // write lock needed.
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if MIGRATIONS.last().is_some_and(|(n, _)| *n <= current) {
        return Ok(());
    }
    // IMMEDIATE: two processes starting at once apply each migration once.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<(), StoreError> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (n, sql) in MIGRATIONS {
            if *n > version {
                conn.execute_batch(sql)
                    .map_err(|e| other(format!("migration {n} failed: {e}")))?;
                conn.pragma_update(None, "user_version", n)?;
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(Into::into),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<BoxJob>, mut state: WriterState) {
    let mut group: Vec<BoxJob> = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = rx.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        run_group(&conn, &mut state, &mut group);
    }
}

/// One transaction for the whole group. When a job fails, the group is
/// rolled back, the failed job answered with its error, and the others
/// run again, each in a transaction of its own (a rare path: requests
/// are validated before they reach the writer).
fn run_group(conn: &Connection, state: &mut WriterState, group: &mut Vec<BoxJob>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = map_sqlite(e);
        for job in group.drain(..) {
            job.finish(Err(e.clone()));
        }
        return;
    }
    let mut failed = Vec::new();
    for (i, job) in group.iter_mut().enumerate() {
        if !job.run(conn, state) {
            failed.push(i);
        }
    }
    if failed.is_empty() {
        let outcome = commit(conn, state);
        for job in group.drain(..) {
            job.finish(outcome.clone());
        }
        return;
    }
    rollback(conn, state);
    for i in failed.into_iter().rev() {
        // Its result is its error; nothing of it is kept.
        group.remove(i).finish(Ok(()));
    }
    for mut job in group.drain(..) {
        let outcome = match conn.execute_batch("BEGIN IMMEDIATE") {
            Err(e) => Err(map_sqlite(e)),
            Ok(()) if job.run(conn, state) => commit(conn, state),
            Ok(()) => {
                rollback(conn, state);
                Ok(())
            }
        };
        job.finish(outcome);
    }
}

fn commit(conn: &Connection, state: &mut WriterState) -> Result<(), StoreError> {
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            state.windows.commit(unix_now());
            state.taken.commit();
            Ok(())
        }
        Err(e) => {
            rollback(conn, state);
            tracing::error!(error = %e, "group commit failed");
            Err(map_sqlite(e))
        }
    }
}

fn rollback(conn: &Connection, state: &mut WriterState) {
    let _ = conn.execute_batch("ROLLBACK");
    state.windows.rollback();
    state.taken.rollback();
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Unix seconds of a stored RFC 3339 time.
fn unix_time(rfc3339: &str) -> Option<i64> {
    rfc3339
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Rebuilds the autoresponse windows from the thread: the autoresponses
/// its entries queued in the last hour, replayed in order. Entries are
/// read newest first and the scan stops a little over an hour back, so
/// it reads only that hour.
fn load_windows(conn: &Connection, now: i64) -> Result<Windows, StoreError> {
    let mut recent: Vec<(i64, i64)> = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT t.user_id, e.created, e.notify FROM thread_entries e
         JOIN tickets t ON t.id = e.ticket_id ORDER BY e.id DESC",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let created = unix_time(&row.get::<_, String>(1)?).unwrap_or(now);
        // Ids follow creation times but for clock steps: read five
        // minutes past the hour before stopping.
        if created <= now - windows::WINDOW_SECS - 300 {
            break;
        }
        if row.get::<_, i64>(2)? & MAIL_USER_CAPPED != 0 {
            recent.push((row.get(0)?, created));
        }
    }
    let mut windows = Windows::default();
    for (user, created) in recent.into_iter().rev() {
        windows.record(user, created);
    }
    windows.commit(now);
    Ok(windows)
}

/// Draws the next ticket number (inside the write transaction, so the
/// uniqueness check cannot race: this connection is the only writer).
fn next_number(conn: &Connection, policy: &NumberPolicy) -> Result<String, StoreError> {
    if policy.sequential {
        let value: i64 = conn
            .prepare_cached(
                "INSERT INTO counters (name, value) VALUES ('ticket_number', 1)
                 ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
            )?
            .query_row([], |r| r.get(0))?;
        return Ok(policy.sequential_number(value));
    }
    for _ in 0..NUMBER_ATTEMPTS {
        let number = policy.random_number();
        let taken = conn
            .prepare_cached(sql::TICKET_EXISTS)?
            .query_row([&number], |_| Ok(()))
            .optional()?
            .is_some();
        if !taken {
            return Ok(number);
        }
    }
    Err(StoreError::Conflict(format!(
        "no free ticket number after {NUMBER_ATTEMPTS} attempts: widen tickets.number_format"
    )))
}

fn insert_ticket(
    conn: &Connection,
    w: &mut WriterState,
    t: &NewTicket,
) -> Result<(String, i64, i64), StoreError> {
    // A returning address keeps its user (and stored name): one lookup;
    // a new one, one insert.
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM users WHERE email = ?1")?
        .query_row([&t.user_email], |r| r.get(0))
        .optional()?;
    let user_id = match existing {
        Some(id) => id,
        None => {
            conn.prepare_cached("INSERT INTO users (email, name, created) VALUES (?1, ?2, ?3)")?
                .execute(params![t.user_email, t.user_name, t.created])?;
            conn.last_insert_rowid()
        }
    };
    let number = next_number(conn, &w.numbers)?;
    conn.prepare_cached(
        "INSERT INTO tickets (number, user_id, subject, status, source, priority_id, priority_name,
             topic_id, topic_name, dept_id, dept_name, ip, created, alert, autorespond)
         VALUES (?1, ?2, ?3, 'open', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        number,
        user_id,
        t.subject,
        t.source,
        t.priority.id,
        t.priority.name,
        t.topic.as_ref().map(|n| n.id),
        t.topic.as_ref().map(|n| n.name.as_str()),
        t.department.as_ref().map(|n| n.id),
        t.department.as_ref().map(|n| n.name.as_str()),
        t.ip,
        t.created,
        t.alert,
        t.autorespond,
    ])?;
    let ticket_id = conn.last_insert_rowid();
    let mail = record_mail(conn, w, ticket_id, user_id, &t.user_email, &t.mail, t.now)?;
    let entry_id = insert_entry(conn, ticket_id, &t.entry, &t.created, mail)?;
    for f in &t.fields {
        conn.prepare_cached(
            "INSERT INTO field_values (ticket_id, form, name, value) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![ticket_id, f.form, f.name, f.value.to_string()])?;
    }
    Ok((number, ticket_id, entry_id))
}

/// Inserts a thread entry with the mail it queues (`notify` bits and
/// `mail_to`, from [`record_mail`]).
fn insert_entry(
    conn: &Connection,
    ticket_id: i64,
    e: &NewEntry,
    created: &str,
    (notify, mail_to): (i64, Option<String>),
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO thread_entries (ticket_id, kind, format, body, from_name, from_email, created,
             message_id, auto_reply, bounce, notify, mail_to)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        ticket_id,
        e.kind,
        e.format,
        e.body,
        e.from_name,
        e.from_email,
        created,
        e.message_id,
        e.auto_reply,
        e.bounce,
        notify,
        mail_to
    ])?;
    let entry_id = conn.last_insert_rowid();
    for (position, a) in e.attachments.iter().enumerate() {
        conn.prepare_cached(
            "INSERT INTO blobs (sha256, size, data) VALUES (?1, ?2, ?3) ON CONFLICT(sha256) DO NOTHING",
        )?
        .execute(params![&a.sha256[..], a.data.len() as i64, a.data])?;
        conn.prepare_cached(sql::INSERT_ATTACHMENT)?
            .execute(params![
                entry_id,
                position as i64,
                &a.sha256[..],
                a.name,
                a.content_type,
                a.inline,
                a.content_id
            ])?;
    }
    Ok(entry_id)
}

/// Records the mail the domain decided for a new ticket's or a reply's
/// entry, each under its cap: a user cap counts in the writer's windows
/// (exact: one writer), a ticket cap counts the kind's earlier entries of
/// the ticket in the hour. Returns the entry's `notify` bits and
/// `mail_to` (recipients by kind, for kinds not sent to the user alone).
fn record_mail(
    conn: &Connection,
    w: &mut WriterState,
    ticket_id: i64,
    user_id: i64,
    user_email: &str,
    mail: &[QueuedMail],
    now: jiff::Timestamp,
) -> Result<(i64, Option<String>), StoreError> {
    let now = now.as_second();
    let mut bits = 0;
    let mut mail_to = serde_json::Map::new();
    for m in mail {
        let allowed = match m.cap {
            None => true,
            Some(Cap {
                scope: CapScope::User,
                limit,
            }) => {
                let allowed = w.windows.record(user_id, now) <= i64::from(limit);
                if allowed {
                    bits |= MAIL_USER_CAPPED;
                }
                allowed
            }
            Some(Cap {
                scope: CapScope::Ticket,
                limit,
            }) => {
                kind_count_since(
                    conn,
                    ticket_id,
                    m.kind,
                    now - crate::domain::notify::CAP_WINDOW_SECS,
                )? < i64::from(limit)
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
        bits |= kind_bit(m.kind);
        if m.event == MailEvent::Reply {
            bits |= MAIL_REPLY;
        }
        if m.recipients != [user_email] {
            mail_to.insert(m.kind.as_str().into(), m.recipients.clone().into());
        }
    }
    if bits & !MAIL_REPLY == 0 {
        return Ok((0, None));
    }
    let mail_to = if mail_to.is_empty() {
        None
    } else {
        Some(serde_json::Value::Object(mail_to).to_string())
    };
    Ok((bits, mail_to))
}

/// How many entries of `ticket_id` queued mail of `kind` since `since`
/// (unix seconds).
fn kind_count_since(
    conn: &Connection,
    ticket_id: i64,
    kind: MailKind,
    since: i64,
) -> Result<i64, StoreError> {
    let since = jiff::Timestamp::from_second(since)
        .map_err(other)?
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM thread_entries
             WHERE ticket_id = ?1 AND notify & ?2 <> 0 AND created >= ?3",
        )?
        .query_row(params![ticket_id, kind_bit(kind), since], |r| r.get(0))?)
}

/// Takes up to `room` waiting mails (a little more when the last entry
/// has two), in entry order: writes their outbox rows, claimed until
/// `lease_until` when given, else queued. Returns the new rows' ids.
fn take_waiting(
    conn: &Connection,
    w: &mut WriterState,
    now: i64,
    lease_until: Option<i64>,
    room: usize,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::new();
    if room == 0 {
        return Ok(ids);
    }
    let mut last = w.taken.get();
    let waiting: Vec<(i64, i64, i64, Option<String>, String, String)> = conn
        .prepare_cached(
            "SELECT e.id, e.ticket_id, e.notify, e.mail_to, e.created, u.email
             FROM thread_entries e JOIN tickets t ON t.id = e.ticket_id
             JOIN users u ON u.id = t.user_id
             WHERE e.id > ?1 AND e.notify <> 0 ORDER BY e.id LIMIT ?2",
        )?
        .query_map(params![last, room as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    // Fewer than asked for: every entry to the end has been read.
    let mut read_all = waiting.len() < room;
    for (entry_id, ticket_id, notify, mail_to, created, user_email) in waiting {
        if ids.len() >= room {
            read_all = false;
            break;
        }
        let created_at = unix_time(&created).unwrap_or(now);
        for (id, kind, mail) in waiting_views(entry_id, notify, mail_to.as_deref(), &user_email)? {
            let recipients = serde_json::to_string(&mail.recipients).map_err(other)?;
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO outbox (id, ticket_id, entry_id, kind, event, recipients, message_id,
                         state, attempts, next_attempt_at, lease_until, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                         CASE WHEN ?9 IS NULL THEN 'queued' ELSE 'sending' END,
                         CASE WHEN ?9 IS NULL THEN 0 ELSE 1 END, ?8, ?9, ?10)
                     ON CONFLICT(id) DO NOTHING",
                )?
                .execute(params![
                    id,
                    ticket_id,
                    entry_id,
                    mail.kind,
                    mail.event,
                    recipients,
                    outgoing_message_id(kind, ticket_id, &w.message_domain),
                    now,
                    lease_until,
                    created_at,
                ])?;
            // A row that exists already was taken before (only possible
            // after a hand-made change): it is the sender's as it is.
            if inserted == 1 {
                ids.push(id);
            }
        }
        last = entry_id;
    }
    if read_all {
        last = last.max(
            conn.prepare_cached("SELECT coalesce(max(id), 0) FROM thread_entries")?
                .query_row([], |r| r.get(0))?,
        );
    }
    w.taken.set(last);
    Ok(ids)
}

/// The mail an entry queued, as the read API shows it before the sender
/// takes it (outbox id, kind and view, in id order); taking it writes
/// these.
fn waiting_views(
    entry_id: i64,
    notify: i64,
    mail_to: Option<&str>,
    user_email: &str,
) -> Result<Vec<(i64, MailKind, super::NotificationView)>, StoreError> {
    let event = if notify & MAIL_REPLY != 0 {
        MailEvent::Reply
    } else {
        MailEvent::New
    };
    let mail_to: serde_json::Map<String, serde_json::Value> = match mail_to {
        Some(text) => serde_json::from_str(text).map_err(other)?,
        None => serde_json::Map::new(),
    };
    let mut out = Vec::new();
    for kind in MailKind::ALL {
        if notify & kind_bit(kind) == 0 {
            continue;
        }
        let recipients = match mail_to.get(kind.as_str()) {
            Some(list) => serde_json::from_value(list.clone()).map_err(other)?,
            None => vec![user_email.to_string()],
        };
        out.push((
            outbox_id(entry_id, kind),
            kind,
            super::NotificationView {
                kind: kind.as_str().into(),
                event: event.as_str().into(),
                recipients,
                state: "queued".into(),
                attempts: 0,
                last_error: None,
                message_id: None,
            },
        ));
    }
    Ok(out)
}

fn ingest_email(
    conn: &Connection,
    w: &mut WriterState,
    email: &NewEmail,
) -> Result<EmailOutcome, StoreError> {
    let created = &email.ticket.created;
    if let Some(id) = &email.message_id {
        // The claim is a constraint, not a check-then-insert.
        let claimed = conn
            .prepare_cached(
                "INSERT INTO processed_messages (message_id, ticket_id, created) VALUES (?1, NULL, ?2)
                 ON CONFLICT(message_id) DO NOTHING",
            )?
            .execute(params![id, created])?;
        if claimed == 0 {
            let number: Option<String> = conn
                .prepare_cached(sql::PROCESSED_MESSAGE_TICKET)?
                .query_row([id], |r| r.get(0))?;
            return Ok(EmailOutcome::Duplicate(number));
        }
    }
    let (outcome, ticket_id, entry_id) = match &email.thread {
        Some(thread) => {
            let user_id: i64 = conn
                .prepare_cached("SELECT user_id FROM tickets WHERE id = ?1")?
                .query_row([thread.ticket_id], |r| r.get(0))?;
            let t = &email.ticket;
            let mail = record_mail(
                conn,
                w,
                thread.ticket_id,
                user_id,
                &t.user_email,
                &t.mail,
                t.now,
            )?;
            let entry_id = insert_entry(conn, thread.ticket_id, &t.entry, created, mail)?;
            (
                EmailOutcome::Appended(thread.number.clone()),
                thread.ticket_id,
                entry_id,
            )
        }
        None if email.is_bounce => return Ok(EmailOutcome::BounceLogged),
        None => {
            let (number, ticket_id, entry_id) = insert_ticket(conn, w, &email.ticket)?;
            (EmailOutcome::Created(number), ticket_id, entry_id)
        }
    };
    conn.prepare_cached(sql::INSERT_RAW_MESSAGE)?
        .execute(params![entry_id, email.raw_compressed])?;
    // Rare (a part over a cap): a statement of its own rather than a
    // column in every entry's insert.
    if let Some(dropped) = dropped_column(&email.ticket.entry.dropped)? {
        conn.prepare_cached(sql::SET_DROPPED_PARTS)?
            .execute(params![dropped, entry_id])?;
    }
    if let Some(id) = &email.message_id {
        conn.prepare_cached(sql::SET_PROCESSED_MESSAGE_TICKET)?
            .execute(params![ticket_id, id])?;
    }
    Ok(outcome)
}

fn load_ticket(conn: &Connection, number: &str) -> Result<Option<TicketView>, StoreError> {
    let Some((ticket_id, mut view)) =
        run_ready(common::load_ticket(&mut SqliteRows(conn), number))?
    else {
        return Ok(None);
    };
    // Each entry's mail: its outbox rows once taken, else what it queued.
    let mut notes = conn.prepare_cached(
        "SELECT o.kind, o.event, o.recipients, o.state, o.attempts, o.last_error, o.message_id,
                o.id, e.id, e.notify, e.mail_to
         FROM thread_entries e LEFT JOIN outbox o ON o.id BETWEEN e.id * 4 AND e.id * 4 + 3
         WHERE e.ticket_id = ?1 AND (e.notify <> 0 OR o.id IS NOT NULL) ORDER BY e.id, o.id",
    )?;
    let mut rows = notes.query([ticket_id])?;
    while let Some(r) = rows.next()? {
        if r.get::<_, Option<i64>>(7)?.is_some() {
            view.notifications
                .push(notification_from_row(r)?.map_err(other)?);
        } else {
            let mail_to: Option<String> = r.get(10)?;
            let waiting =
                waiting_views(r.get(8)?, r.get(9)?, mail_to.as_deref(), &view.user.email)?;
            view.notifications
                .extend(waiting.into_iter().map(|(_, _, n)| n));
        }
    }
    Ok(Some(view))
}

fn notification_from_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<super::NotificationView, serde_json::Error>> {
    let recipients: String = r.get(2)?;
    Ok(
        serde_json::from_str(&recipients).map(|recipients| super::NotificationView {
            kind: r.get(0).unwrap_or_default(),
            event: r.get(1).unwrap_or_default(),
            recipients,
            state: r.get(3).unwrap_or_default(),
            attempts: r.get(4).unwrap_or_default(),
            last_error: r.get(5).unwrap_or_default(),
            message_id: r.get(6).unwrap_or_default(),
        }),
    )
}

impl Store for SqliteStore {
    fn create_ticket(&self, ticket: NewTicket) -> BoxFuture<'_, Result<String, StoreError>> {
        self.write(move |conn, w| insert_ticket(conn, w, &ticket).map(|(n, _, _)| n))
    }

    fn find_thread(
        &self,
        query: ThreadQuery,
    ) -> BoxFuture<'_, Result<Option<ThreadRef>, StoreError>> {
        // Index lookups only (Message-IDs, our outbox ids, a number):
        // on the calling thread, like the other point reads.
        self.read_point(move |conn| run_ready(common::find_thread(&mut SqliteRows(conn), &query)))
    }

    fn ingest_email(&self, email: NewEmail) -> BoxFuture<'_, Result<EmailOutcome, StoreError>> {
        self.write(move |conn, w| ingest_email(conn, w, &email))
    }

    fn load_ticket(&self, number: String) -> BoxFuture<'_, Result<Option<TicketView>, StoreError>> {
        self.read(move |conn| load_ticket(conn, &number))
    }

    fn list_tickets(&self, limit: u32) -> BoxFuture<'_, Result<Vec<TicketSummary>, StoreError>> {
        self.read(move |conn| run_ready(common::list_tickets(&mut SqliteRows(conn), limit)))
    }

    fn ticket_exists(&self, number: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.read(move |conn| run_ready(common::ticket_exists(&mut SqliteRows(conn), &number)))
    }

    fn find_api_key(
        &self,
        hash: [u8; 32],
    ) -> BoxFuture<'_, Result<Option<ApiKeyRecord>, StoreError>> {
        self.read_point(move |conn| run_ready(common::find_api_key(&mut SqliteRows(conn), &hash)))
    }

    fn add_api_key(&self, key: NewApiKey) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.write(move |conn, _| {
            let addresses = serde_json::to_string(&key.addresses).map_err(other)?;
            conn.prepare_cached(
                "INSERT INTO api_keys (hash, prefix, addresses, is_active, can_create, can_read, notes, created)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                &key.hash[..],
                key.prefix,
                addresses,
                key.can_create,
                key.can_read,
                key.notes,
                key.created
            ])?;
            Ok(conn.last_insert_rowid())
        })
    }

    fn list_api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        self.read(move |conn| run_ready(common::list_api_keys(&mut SqliteRows(conn))))
    }

    fn revoke_api_key(&self, id: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            let n = conn
                .prepare_cached("UPDATE api_keys SET is_active = 0 WHERE id = ?1")?
                .execute([id])?;
            if n == 0 {
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
    ) -> BoxFuture<'_, Result<Vec<super::OutboxJob>, StoreError>> {
        self.write(move |conn, w| {
            // Two index walks (the partial indexes outbox_queued, outbox_leased):
            // due queued rows (retries), and rows whose sender's lease ran out;
            // then mail waiting on the thread, taken in entry order.
            let mut ids: Vec<i64> = Vec::new();
            for sql in [
                "SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at LIMIT ?2",
                "SELECT id FROM outbox WHERE state = 'sending' AND lease_until <= ?1 LIMIT ?2",
            ] {
                let mut stmt = conn.prepare_cached(sql)?;
                let rows = stmt.query_map(params![now, limit], |r| r.get::<_, i64>(0))?;
                for row in rows {
                    let id = row?;
                    if ids.len() < limit as usize && !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
            for id in &ids {
                conn.prepare_cached(
                    "UPDATE outbox SET state = 'sending', lease_until = ?2, attempts = attempts + 1
                     WHERE id = ?1",
                )?
                .execute(params![id, lease_until])?;
            }
            let room = (limit as usize).saturating_sub(ids.len());
            ids.extend(take_waiting(conn, w, now, Some(lease_until), room)?);
            let mut jobs = Vec::with_capacity(ids.len());
            for id in ids {
                let job = conn.prepare_cached(sql::OUTBOX_JOB)?.query_row([id], |r| {
                    let user = Party {
                        name: r.get(9)?,
                        email: r.get(10)?,
                    };
                    Ok((
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(19)?,
                        super::OutboxJob {
                            id: r.get(0)?,
                            kind: parse_column(r, 1, MailKind::parse)?,
                            event: parse_column(r, 2, MailEvent::parse)?,
                            recipients: Vec::new(),
                            message_id: r.get(4)?,
                            attempts: r.get(5)?,
                            created_at: r.get(6)?,
                            number: r.get(7)?,
                            subject: r.get(8)?,
                            user_name: r.get(9)?,
                            user_email: r.get(10)?,
                            topic: r.get(11)?,
                            priority: r.get(12)?,
                            department: r.get(13)?,
                            body: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
                            format: r.get::<_, Option<String>>(15)?.unwrap_or_default(),
                            entry_message_id: r.get(16)?,
                            sender: Party {
                                name: r.get::<_, Option<String>>(17)?.unwrap_or(user.name),
                                email: r.get::<_, Option<String>>(18)?.unwrap_or(user.email),
                            },
                            earlier_mail: Vec::new(),
                        },
                    ))
                })?;
                let (recipients, ticket_id, mut job) = job;
                job.recipients = serde_json::from_str(&recipients).map_err(other)?;
                job.earlier_mail = run_ready(common::earlier_mail(
                    &mut SqliteRows(conn),
                    ticket_id,
                    job.id,
                ))?;
                jobs.push(job);
            }
            Ok(jobs)
        })
    }

    fn mark_outbox_sent(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            conn.prepare_cached(sql::MARK_OUTBOX_SENT)?
                .execute(params![now, id])?;
            Ok(())
        })
    }

    fn mark_outbox_retry(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            conn.prepare_cached(sql::MARK_OUTBOX_RETRY)?
                .execute(params![next_attempt_at, error, id])?;
            Ok(())
        })
    }

    fn mark_outbox_failed(&self, id: i64, error: String) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            conn.prepare_cached(sql::MARK_OUTBOX_FAILED)?
                .execute(params![error, id])?;
            Ok(())
        })
    }

    fn list_outbox(
        &self,
        state: Option<String>,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<super::OutboxSummary>, StoreError>> {
        self.read(move |conn| {
            let mut out = Vec::new();
            // Mail not taken yet is the newest: the entries past the last
            // taken one.
            if state.as_deref().is_none_or(|s| s == "queued") {
                let mut stmt = conn.prepare_cached(
                    "SELECT e.id, e.notify, e.mail_to, u.email, t.number
                     FROM thread_entries e JOIN tickets t ON t.id = e.ticket_id
                     JOIN users u ON u.id = t.user_id
                     WHERE e.id > ?1 AND e.notify <> 0
                     ORDER BY e.id DESC LIMIT ?2",
                )?;
                let mut rows = stmt.query(params![taken_up_to(conn)?, limit])?;
                while let Some(r) = rows.next()? {
                    let mail_to: Option<String> = r.get(2)?;
                    let email: String = r.get(3)?;
                    let number: String = r.get(4)?;
                    let waiting = waiting_views(r.get(0)?, r.get(1)?, mail_to.as_deref(), &email)?;
                    for (id, _, notification) in waiting.into_iter().rev() {
                        out.push(super::OutboxSummary {
                            id,
                            number: number.clone(),
                            notification,
                        });
                    }
                }
                out.truncate(limit as usize);
            }
            let rest = limit.saturating_sub(out.len() as u32);
            let mut stmt = conn.prepare_cached(
                "SELECT o.kind, o.event, o.recipients, o.state, o.attempts, o.last_error, o.message_id,
                        o.id, t.number
                 FROM outbox o JOIN tickets t ON t.id = o.ticket_id
                 WHERE ?1 IS NULL OR o.state = ?1 ORDER BY o.id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![state, rest], |r| {
                Ok((notification_from_row(r)?, r.get::<_, i64>(7)?, r.get::<_, String>(8)?))
            })?;
            for row in rows {
                let (n, id, number) = row?;
                out.push(super::OutboxSummary {
                    id,
                    number,
                    notification: n.map_err(other)?,
                });
            }
            Ok(out)
        })
    }

    fn retry_outbox(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            let n = conn
                .prepare_cached(sql::RETRY_OUTBOX)?
                .execute(params![now, id])?;
            if n > 0 {
                return Ok(());
            }
            // Mail not taken yet is queued already.
            let per_entry = super::OUTBOX_IDS_PER_ENTRY;
            let entry_id = id.div_euclid(per_entry);
            let bit = MailKind::from_index(id.rem_euclid(per_entry)).map_or(0, kind_bit);
            let waiting = entry_id > taken_up_to(conn)?
                && conn
                    .prepare_cached(
                        "SELECT 1 FROM thread_entries WHERE id = ?1 AND notify & ?2 <> 0",
                    )?
                    .query_row(params![entry_id, bit], |_| Ok(()))
                    .optional()?
                    .is_some();
            if bit != 0 && waiting {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            }
        })
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<(String, i64)>, StoreError>> {
        Box::pin(super::table_counts(self))
    }
}

fn column_list(table: &super::TableSpec) -> String {
    table
        .columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

impl super::DataCopy for SqliteStore {
    fn export_rows(
        &self,
        table: &'static super::TableSpec,
        offset: i64,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Vec<super::DumpValue>>, StoreError>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {} LIMIT ?1 OFFSET ?2",
                column_list(table),
                table.name,
                table.order_by
            );
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(params![limit, offset])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut values = Vec::with_capacity(table.columns.len());
                for (i, (_, ty)) in table.columns.iter().enumerate() {
                    let v = dump_value(row.get_ref(i)?, *ty);
                    values.push(v);
                }
                out.push(values);
            }
            Ok(out)
        })
    }

    fn import_rows(
        &self,
        table: &'static super::TableSpec,
        rows: Vec<Vec<super::DumpValue>>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            use super::DumpValue;
            use rusqlite::types::Value;
            let placeholders: Vec<String> =
                (1..=table.columns.len()).map(|i| format!("?{i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name,
                column_list(table),
                placeholders.join(", ")
            );
            let mut stmt = conn.prepare(&sql)?;
            for row in &rows {
                let values: Vec<Value> = row
                    .iter()
                    .map(|v| match v {
                        DumpValue::Null => Value::Null,
                        DumpValue::Int(n) => Value::Integer(*n),
                        DumpValue::Bool(b) => Value::Integer(i64::from(*b)),
                        DumpValue::Text(t) => Value::Text(t.clone()),
                        DumpValue::Blob(b) => Value::Blob(b.clone()),
                    })
                    .collect();
                stmt.execute(rusqlite::params_from_iter(values))?;
            }
            Ok(())
        })
    }

    fn prepare_export(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, w| {
            let now = unix_now();
            loop {
                let before = w.taken.get();
                take_waiting(conn, w, now, None, 10_000)?;
                if w.taken.get() == before {
                    return Ok(());
                }
            }
        })
    }

    fn row_count(
        &self,
        table: &'static super::TableSpec,
    ) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.read(move |conn| {
            Ok(
                conn.query_row(&format!("SELECT count(*) FROM {}", table.name), [], |r| {
                    r.get(0)
                })?,
            )
        })
    }

    fn ticket_counter(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT value FROM counters WHERE name = 'ticket_number'",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0))
        })
    }

    fn finish_import(&self, ticket_counter: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, w| {
            conn.execute_batch(include_str!(
                "../../migrations/sqlite/record_outbox_on_entries.sql"
            ))?;
            w.taken.set(taken_up_to(conn)?);
            if ticket_counter > 0 {
                conn.execute(
                    "INSERT INTO counters (name, value) VALUES ('ticket_number', ?1)
                     ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    [ticket_counter],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Named;

    fn counter(conn: &Connection, name: &str) -> Option<i64> {
        conn.query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()
        .expect("read counter")
    }

    fn insert_counter(
        name: &'static str,
    ) -> impl Fn(&Connection, &mut WriterState) -> Result<(), StoreError> {
        move |conn, _| {
            conn.execute("INSERT INTO counters (name, value) VALUES (?1, 1)", [name])?;
            Ok(())
        }
    }

    #[tokio::test]
    async fn migration_4_gives_old_outbox_rows_entry_ids_and_keeps_them_visible() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            for (_, sql) in &MIGRATIONS[..3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute_batch(
                "INSERT INTO users (id, email, name, created) VALUES (1, 'u@x.org', 'U', 't');
                 INSERT INTO tickets (id, number, user_id, subject, status, source, priority_id,
                     priority_name, ip, created, alert, autorespond)
                 VALUES (1, '100001', 1, 'S', 'open', 'API', 2, 'Normal', '127.0.0.1', 't', 1, 1);
                 INSERT INTO thread_entries (id, ticket_id, kind, format, body, from_name, from_email, created)
                 VALUES (5, 1, 'message', 'text', 'b', 'U', 'u@x.org', 't'),
                        (9, 1, 'message', 'text', 'reply', 'U', 'u@x.org', 't');
                 INSERT INTO outbox (id, ticket_id, entry_id, kind, event, recipients, message_id,
                     state, next_attempt_at, created_at)
                 VALUES (1, 1, 5, 'autoresponse', 'new', '[\"u@x.org\"]', 'a@x', 'sent', 0, 0),
                        (2, 1, 5, 'alert', 'new', '[\"s@x.org\"]', 'b@x', 'queued', 0, 0),
                        (3, 1, 9, 'alert', 'reply', '[\"s@x.org\"]', 'c@x', 'queued', 0, 0);",
            )
            .unwrap();
        }
        let store = open_store(&path);
        let view = store.load_ticket("100001".into()).await.unwrap().unwrap();
        let ids: Vec<&str> = view
            .notifications
            .iter()
            .map(|n| n.message_id.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(ids, ["a@x", "b@x", "c@x"]);
        let conn = Connection::open(&path).unwrap();
        let rows: Vec<(i64, String)> = conn
            .prepare("SELECT id, message_id FROM outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [(20, "a@x".into()), (21, "b@x".into()), (37, "c@x".into())]
        );
        // Migration 6 records that mail on its entries, migration 8
        // re-encodes it by kind, and the sender takes the two queued rows
        // as they are: nothing is made twice.
        let marks: Vec<(i64, Option<String>)> = conn
            .prepare("SELECT notify, mail_to FROM thread_entries ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mail_to = Some("{\"alert\":[\"s@x.org\"]}".to_string());
        let (autoresponse, alert) = (kind_bit(MailKind::Autoresponse), kind_bit(MailKind::Alert));
        assert_eq!(
            marks,
            [
                (autoresponse | alert | MAIL_USER_CAPPED, mail_to.clone()),
                (alert | MAIL_REPLY, mail_to)
            ]
        );
        let jobs = store.claim_outbox(1, 100, 64).await.unwrap();
        let claimed: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        assert_eq!(claimed, [21, 37]);
        let count: i64 = conn
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 3);
    }

    fn new_ticket(email: &str, autorespond: bool, alert: bool) -> NewTicket {
        NewTicket {
            user_email: email.into(),
            user_name: "U".into(),
            subject: format!("about {email}"),
            source: "API".into(),
            priority: Named {
                id: 2,
                name: "Normal".into(),
            },
            topic: None,
            department: Some(Named {
                id: 1,
                name: "Support".into(),
            }),
            ip: "127.0.0.1".into(),
            created: "2026-11-28T10:00:00Z".into(),
            alert,
            autorespond,
            fields: Vec::new(),
            entry: NewEntry {
                kind: "message".into(),
                format: "text".into(),
                body: "hello".into(),
                from_name: "U".into(),
                from_email: email.into(),
                message_id: None,
                auto_reply: false,
                bounce: false,
                attachments: Vec::new(),
                dropped: Vec::new(),
            },
            mail: crate::domain::notify::MailRules {
                autoresponse_limit_per_hour: 100,
                alert_limit_per_ticket_per_hour: 100,
                alert_recipients: Arc::new([(1, vec!["staff@x.org".to_string()])].into()),
            }
            .plan(&crate::domain::notify::MailFacts {
                event: MailEvent::New,
                automatic: false,
                autorespond,
                alert,
                department: Some(1),
                user_email: email,
            }),
            now: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        }
    }

    fn open_store(path: &Path) -> SqliteStore {
        SqliteStore::open(
            path,
            NumberPolicy {
                format: "######".into(),
                sequential: false,
            },
            "x.org",
        )
        .unwrap()
    }

    /// (kind, state, recipients, has a Message-ID) of a ticket's mail.
    async fn mail_of(
        store: &SqliteStore,
        number: &str,
    ) -> Vec<(String, String, Vec<String>, bool)> {
        let view = store.load_ticket(number.into()).await.unwrap().unwrap();
        view.notifications
            .into_iter()
            .map(|n| (n.kind, n.state, n.recipients, n.message_id.is_some()))
            .collect()
    }

    #[tokio::test]
    async fn waiting_mail_is_taken_in_entry_order_once_even_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = open_store(&path);
        let mut numbers = Vec::new();
        for i in 0..5 {
            // Tickets without mail in between are read past.
            store
                .create_ticket(new_ticket(&format!("quiet{i}@x.org"), false, false))
                .await
                .unwrap();
            let email = format!("u{i}@x.org");
            numbers.push(
                store
                    .create_ticket(new_ticket(&email, true, true))
                    .await
                    .unwrap(),
            );
        }
        let both = |state: &str, sent_id: bool, user: &str| {
            vec![
                (
                    "autoresponse".to_string(),
                    state.to_string(),
                    vec![user.to_string()],
                    sent_id,
                ),
                (
                    "alert".to_string(),
                    state.to_string(),
                    vec!["staff@x.org".to_string()],
                    sent_id,
                ),
            ]
        };
        // Queued with the ticket, though no outbox row exists yet.
        assert_eq!(
            mail_of(&store, &numbers[0]).await,
            both("queued", false, "u0@x.org")
        );
        let rows = |path: &Path| -> i64 {
            Connection::open(path)
                .unwrap()
                .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(rows(&path), 0);
        let listed = store.list_outbox(Some("queued".into()), 100).await.unwrap();
        assert_eq!(listed.len(), 10);
        assert!(listed.windows(2).all(|w| w[0].id > w[1].id), "newest first");

        let first = store.claim_outbox(1, 100, 3).await.unwrap();
        // Two tickets' mail (an entry's mails are taken together), in order.
        let kinds: Vec<(&str, &str)> = first
            .iter()
            .map(|j| (j.number.as_str(), j.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (numbers[0].as_str(), "autoresponse"),
                (numbers[0].as_str(), "alert"),
                (numbers[1].as_str(), "autoresponse"),
                (numbers[1].as_str(), "alert"),
            ]
        );
        assert!(
            first
                .iter()
                .all(|j| j.attempts == 1 && j.message_id.ends_with("@x.org"))
        );
        assert_eq!(first[0].recipients, ["u0@x.org"]);
        assert_eq!(
            mail_of(&store, &numbers[0]).await,
            both("sending", true, "u0@x.org")
        );
        assert_eq!(
            mail_of(&store, &numbers[2]).await,
            both("queued", false, "u2@x.org")
        );
        // Taken mail can be retried; waiting mail is queued already.
        let waiting_id = outbox_id(
            first[3].id / super::super::OUTBOX_IDS_PER_ENTRY + 2,
            MailKind::Alert,
        );
        store.retry_outbox(waiting_id, 1).await.unwrap();
        assert!(matches!(
            store.retry_outbox(waiting_id + 1, 1).await,
            Err(StoreError::NotFound)
        ));

        drop(store);
        let store = open_store(&path);
        let rest = store.claim_outbox(1, 100, 64).await.unwrap();
        let mut seen: Vec<i64> = first.iter().chain(&rest).map(|j| j.id).collect();
        assert_eq!(rest.len(), 6);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 10);
        assert!(store.claim_outbox(1, 100, 64).await.unwrap().is_empty());
        assert_eq!(rows(&path), 10);
        for (i, n) in numbers.iter().enumerate() {
            assert_eq!(
                mail_of(&store, n).await,
                both("sending", true, &format!("u{i}@x.org"))
            );
        }
    }

    #[tokio::test]
    async fn a_rolled_back_claim_takes_its_mail_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir.path().join("t.db"));
        store
            .create_ticket(new_ticket("a@x.org", true, false))
            .await
            .unwrap();
        // In one group: a claim, then a failing job. The group is rolled
        // back and the claim runs again alone; the mail it took in the
        // rolled-back attempt must not count as taken.
        // (Jobs are queued when called; the first holds the writer.)
        let hold = store.write(|_, _| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        });
        let claim = store.claim_outbox(1, 100, 64);
        let fail = store.write(|_, _| -> Result<(), StoreError> { Err(other("boom")) });
        hold.await.unwrap();
        assert!(fail.await.is_err());
        let jobs = claim.await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].recipients, ["a@x.org"]);
    }

    #[tokio::test]
    async fn export_hands_waiting_mail_to_the_outbox_queued() {
        use super::super::DataCopy;
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir.path().join("t.db"));
        let number = store
            .create_ticket(new_ticket("a@x.org", true, true))
            .await
            .unwrap();
        store
            .create_ticket(new_ticket("b@x.org", false, false))
            .await
            .unwrap();
        let before = store.list_outbox(None, 10).await.unwrap();
        store.prepare_export().await.unwrap();
        let after = store.list_outbox(None, 10).await.unwrap();
        let strip = |v: Vec<super::super::OutboxSummary>| {
            v.into_iter()
                .map(|mut s| {
                    s.notification.message_id = None;
                    s
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(before.len(), 2);
        assert_eq!(strip(before), strip(after.clone()));
        assert!(after.iter().all(|s| s.notification.message_id.is_some()));
        assert_eq!(mail_of(&store, &number).await.len(), 2);
        // Queued rows are the sender's as before.
        let now = unix_now();
        assert_eq!(
            store.claim_outbox(now, now + 100, 64).await.unwrap().len(),
            2
        );
    }

    #[tokio::test]
    async fn a_failing_job_leaves_no_trace_and_its_group_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir.path().join("t.db"));
        // The first job holds the writer so that the next ones queue up
        // and run as one group.
        let hold = store.write(|_, _| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        });
        let a = store.write(insert_counter("a"));
        let bad = store.write(|conn, _| -> Result<(), StoreError> {
            conn.execute(
                "INSERT INTO counters (name, value) VALUES ('partial', 1)",
                [],
            )?;
            Err(StoreError::Conflict("refused".into()))
        });
        let dup = store.write(insert_counter("a"));
        let b = store.write(insert_counter("b"));
        hold.await.unwrap();
        a.await.unwrap();
        assert!(matches!(bad.await, Err(StoreError::Conflict(_))));
        // The second "a" fails on the first one's row, in the same group.
        assert!(matches!(dup.await, Err(StoreError::Conflict(_))));
        b.await.unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        assert_eq!(counter(&conn, "a"), Some(1));
        assert_eq!(counter(&conn, "b"), Some(1));
        assert_eq!(counter(&conn, "partial"), None);
    }
}
