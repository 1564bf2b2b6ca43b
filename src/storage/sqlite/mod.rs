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
    ApiKeyId, ApiKeyRecord, BoxFuture, Cap, CapScope, EmailOutcome, MailEvent, MailKind,
    NUMBER_ATTEMPTS, NewApiKey, NewEmail, NewEntry, NewTicket, NumberPolicy, Party, QueuedMail,
    Store, StoreError, ThreadQuery, ThreadRef, TicketNumber, TicketSummary, TicketView,
    dropped_column, outbox_id, outgoing_message_id,
};
use super::{ColType, DumpValue, format_time};
use windows::Windows;

mod agents;
mod copy;
mod health;
mod keys;
mod mail;
mod migrate;
mod queue;
mod search;
mod sync;
#[cfg(test)]
mod tests;
mod tickets;
mod windows;
mod work;
mod writer;

use mail::*;
use migrate::*;
use tickets::*;
use writer::*;

/// SQLite store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    jobs: mpsc::Sender<Msg>,
    readers: Mutex<Vec<Connection>>,
    read_slots: Arc<tokio::sync::Semaphore>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    keys: keys::KeyCache,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.jobs.send(Msg::Stop);
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
        // Locked by another writer, or the file cannot be written or
        // read now (disk full, an I/O error, gone, read-only, no memory):
        // the store is unavailable, and a retry later may succeed. A
        // corrupt file or a bug stays a 500.
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed,
        ) => StoreError::Busy(e.to_string()),
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
    // Every statement of the store stays prepared: rusqlite keeps 16 by
    // default, fewer than one ticket and its mail use, so statements
    // were prepared again and again.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Plans never depend on bound values. Without this, a statement with
    // `LIMIT ?` is marked to be prepared again whenever that parameter is
    // bound anew, and the statement cache clears bindings when a
    // statement is returned: every queue page, search and thread read
    // parsed and planned its SQL again (~a third of the server's CPU on
    // the ticket page).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// How much of the database file a read connection maps into memory
/// (`PRAGMA mmap_size`; SQLite maps at most the file's size, up to the
/// `SQLITE_MAX_MMAP_SIZE` it was built with: `.cargo/config.toml`).
const READER_MMAP_BYTES: i64 = 1 << 40;

/// Most reads (`SqliteStore::read`) that run at once: twice the CPUs.
/// A read is CPU work on pages mostly in memory; with a thread for each
/// of 16 concurrent searches on 2 cores the scheduler sliced them all,
/// so every search took as long as the slowest share (p99 58–65 ms for a
/// common word at 1M tickets) and each thread's caches and heap grew
/// the server's RSS (320–420 MiB); with 4 slots, p99 40–41 ms and
/// 160–350 MiB, at 7–15% fewer requests a second for light reads
/// (README, Benchmark, session 14). Reads queue for a slot in order.
fn read_slots() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get) * 2
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

impl SqliteStore {
    /// Copies the database at `path` to the new file `to` while other
    /// processes keep writing: `VACUUM INTO` reads one snapshot (a read
    /// transaction, which WAL lets writers work beside) and writes a
    /// compact, self-contained file (no `-wal` beside it). SQLite itself
    /// refuses a `to` that exists and is not empty.
    pub fn backup(path: &Path, to: &Path) -> Result<(), StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| other(format!("cannot open database {}: {e}", path.display())))?;
        configure(&conn)?;
        let target = to
            .to_str()
            .ok_or_else(|| other(format!("{} is not a UTF-8 path", to.display())))?;
        conn.execute("VACUUM INTO ?1", [target])
            .map_err(|e| other(format!("VACUUM INTO {}: {e}", to.display())))?;
        Ok(())
    }

    /// Opens (creating when missing) the database at `path`, applies the
    /// migrations and starts the writer thread.
    /// `message_domain` is the domain of the Message-IDs of outgoing
    /// mail (made when the sender takes a mail).
    pub fn open(
        path: &Path,
        numbers: NumberPolicy,
        message_domain: &str,
    ) -> Result<Self, StoreError> {
        Self::open_with(path, numbers, message_domain, sync::SyncHooks::default())
    }

    fn open_with(
        path: &Path,
        numbers: NumberPolicy,
        message_domain: &str,
        hooks: sync::SyncHooks,
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
        let mut conn = Connection::open(path)
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
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&conn)?;
        // A 201 means durable: the writer's COMMIT writes the log and the
        // syncer fsyncs it before anyone is answered (sync.rs).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The writer's page cache follows the file's size (writer.rs,
        // `writer_cache_kib`), set here and again at each checkpoint.
        let cache_kib = writer::size_cache(&conn, 0)?;
        // Statement journals in memory: a group's statements that may
        // abort halfway (the ticket's insert, with its conflict clause
        // and foreign keys) each open one. On disk-backed temp storage
        // SQLite buffers it in one 64 KiB block, and freeing that block
        // made glibc hand the top of the writer's heap back to the kernel
        // (`madvise`, a TLB flush on every core) about once per ticket:
        // 9% of the writer's time under email intake (perf, README
        // Benchmark, session 17). In memory it takes 1 KiB chunks, but
        // it never spills: it holds every existing page one statement
        // changes until that statement ends (in WAL mode too). The
        // writer's statements change a ticket's few rows, or a bounded
        // batch (outbox claims); the migrations ran above, before this,
        // and `finish_import` records mail a range of entries at a time.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // The log hook counts the log's pages after each commit; setting
        // it also turns SQLite's automatic checkpoint (inside COMMIT) off.
        let pages = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = pages.clone();
        conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
                counted.store(
                    u64::try_from(n).unwrap_or(0),
                    std::sync::atomic::Ordering::Relaxed,
                );
                Ok(())
            },
        ))?;
        // Read before the windows: a write in between reads them again.
        let data_version = writer::data_version(&conn)?;
        let state = WriterState {
            numbers,
            windows: load_windows(&conn, unix_now())?,
            taken: TakenUpTo {
                committed: taken_up_to(&conn)?,
                pending: None,
            },
            message_domain: message_domain.to_string(),
            search: search::PendingIndex::default(),
            cache_kib,
            data_version,
        };
        let (tx, rx) = mpsc::channel::<Msg>();
        let (sync_tx, sync_rx) = mpsc::channel::<Batch>();
        let sync_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let log = LogWatch {
            pages,
            checkpointer: sync::Checkpointer::start(path.to_path_buf(), tx.clone()),
            threshold: hooks.checkpoint_pages,
            ahead_pages: if hooks.copy_ahead {
                (hooks.checkpoint_pages / sync::AHEAD_DIVISOR).max(1)
            } else {
                0
            },
            sync_failed: sync_failed.clone(),
        };
        let syncer = {
            let (db, writer) = (path.to_path_buf(), tx.clone());
            std::thread::Builder::new()
                .name("sqlite-sync".into())
                .spawn(move || sync::syncer_loop(db, sync_rx, writer, hooks, sync_failed))
                .map_err(other)?
        };
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                writer_loop(conn, rx, state, sync_tx, log);
                // The writer dropped its end: the syncer answers what it
                // was handed and stops.
                let _ = syncer.join();
            })
            .map_err(other)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                jobs: tx,
                readers: Mutex::new(Vec::new()),
                read_slots: Arc::new(tokio::sync::Semaphore::new(read_slots())),
                writer: Mutex::new(Some(writer)),
                keys: keys::KeyCache::default(),
            }),
        })
    }

    /// Runs `f` in the writer's next group; resolves once the group is
    /// committed and on disk.
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
        let sent = self.inner.jobs.send(Msg::Job(job)).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Busy("the database writer has stopped".into()));
            }
            rx.await
                .map_err(|_| StoreError::Busy("the database writer has stopped".into()))?
        })
    }

    /// `change` (a change to `api_keys`), then forgets the cached keys.
    fn forgetting_keys<'a, T: 'a>(
        &'a self,
        change: BoxFuture<'a, Result<T, StoreError>>,
    ) -> BoxFuture<'a, Result<T, StoreError>> {
        Box::pin(async move {
            let result = change.await;
            self.inner.keys.forget();
            result
        })
    }

    /// Runs `f` on a pooled read connection, off the async threads, once
    /// one of [`read_slots`] is free.
    fn read<T, F>(&self, f: F) -> BoxFuture<'_, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        Box::pin(async move {
            let permit = inner
                .read_slots
                .clone()
                .acquire_owned()
                .await
                .map_err(other)?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                with_reader(&inner, f)
            })
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
            c.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
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

impl Store for SqliteStore {
    fn create_ticket(&self, ticket: NewTicket) -> BoxFuture<'_, Result<TicketNumber, StoreError>> {
        // The words are made here, not on the single writer thread.
        let doc = super::search::SearchDoc::of_ticket(&ticket);
        self.write(move |conn, w| {
            let (number, ticket_id, _) = insert_ticket(conn, w, &ticket)?;
            // Written with the group, before its COMMIT (search.rs).
            w.search.push(ticket_id, doc.clone());
            if let Some(claim) = &ticket.idempotency {
                run_ready(common::claim_idempotency(
                    &mut SqliteRows(conn),
                    claim,
                    &number,
                ))?;
            }
            Ok(TicketNumber::from_stored(number))
        })
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
        // A new ticket's words are made here, not on the single writer
        // thread (a message that joins a thread re-indexes its ticket
        // from the tables instead).
        let doc = email
            .thread
            .is_none()
            .then(|| crate::storage::search::SearchDoc::of_ticket(&email.ticket));
        self.write(move |conn, w| ingest_email(conn, w, &email, doc.as_ref()))
    }

    fn idempotency_claim(
        &self,
        scope: [u8; 32],
        expired_before: i64,
    ) -> BoxFuture<'_, Result<Option<crate::domain::idempotency::StoredClaim>, StoreError>> {
        let found = with_reader(&self.inner, |conn| {
            run_ready(common::idempotency_claim(
                &mut SqliteRows(conn),
                scope,
                expired_before,
            ))
        });
        Box::pin(async move {
            let found = found?;
            if found.is_some() {
                // Readers may see a group a moment before the syncer has
                // made it durable: replay an answer only once it is (the
                // next group's fsync covers it).
                self.write(|_, _| Ok(())).await?;
            }
            Ok(found)
        })
    }

    fn load_ticket(
        &self,
        number: TicketNumber,
    ) -> BoxFuture<'_, Result<Option<TicketView>, StoreError>> {
        self.read(move |conn| load_ticket(conn, &number))
    }

    fn list_tickets(&self, limit: u32) -> BoxFuture<'_, Result<Vec<TicketSummary>, StoreError>> {
        self.read(move |conn| run_ready(common::list_tickets(&mut SqliteRows(conn), limit)))
    }

    fn ticket_exists(&self, number: TicketNumber) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.read(move |conn| run_ready(common::ticket_exists(&mut SqliteRows(conn), &number)))
    }

    fn find_api_key(
        &self,
        hash: [u8; 32],
    ) -> BoxFuture<'_, Result<Option<ApiKeyRecord>, StoreError>> {
        let now = std::time::Instant::now();
        let generation = match self.inner.keys.get(&hash, now) {
            keys::Cached::Hit(record) => return Box::pin(std::future::ready(Ok(Some(record)))),
            keys::Cached::Miss { generation } => generation,
        };
        let inner = self.inner.clone();
        self.read_point(move |conn| {
            // The version first: the record read after it is never older.
            let version = keys::keys_version(conn)?;
            let record = run_ready(common::find_api_key(&mut SqliteRows(conn), &hash))?;
            inner
                .keys
                .fill(generation, version, &hash, record.as_ref(), now);
            Ok(record)
        })
    }

    fn add_api_key(&self, key: NewApiKey) -> BoxFuture<'_, Result<ApiKeyId, StoreError>> {
        let added = self.write(move |conn, _| {
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
            Ok(ApiKeyId(conn.last_insert_rowid()))
        });
        self.forgetting_keys(added)
    }

    fn list_api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        self.read(move |conn| run_ready(common::list_api_keys(&mut SqliteRows(conn))))
    }

    fn revoke_api_key(&self, id: ApiKeyId) -> BoxFuture<'_, Result<(), StoreError>> {
        let revoked = self.write(move |conn, _| {
            let n = conn
                .prepare_cached("UPDATE api_keys SET is_active = 0 WHERE id = ?1")?
                .execute([id.0])?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        });
        self.forgetting_keys(revoked)
    }

    fn claim_outbox(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<super::OutboxJob>, StoreError>> {
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
    ) -> BoxFuture<'_, Result<Vec<super::OutboxSummary>, StoreError>> {
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
}
