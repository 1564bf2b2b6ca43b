//! The writer thread: one connection that commits groups of requests in
//! one transaction (group commit); each is answered by the syncer
//! ([`super::sync`]) once the group's log frames are on disk.

use super::*;

/// Most requests committed in one transaction.
pub(super) const MAX_GROUP: usize = 512;

/// One request's writes, run by the writer thread inside a group's
/// transaction. A job may run more than once: when another job of its
/// group fails, the group is rolled back and the others run again (no
/// per-job savepoints: their sub-journal copies and frees showed up as
/// the writer's largest cost after the commit itself).
pub(super) trait Job: Send {
    /// Runs the writes; keeps the result; tells whether they succeeded.
    fn run(&mut self, conn: &Connection, w: &mut WriterState) -> bool;
    /// Answers the caller once the transaction's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

pub(super) struct PendingJob<T, F> {
    pub(super) work: F,
    pub(super) result: Option<Result<T, StoreError>>,
    pub(super) reply: oneshot::Sender<Result<T, StoreError>>,
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

pub(super) type BoxJob = Box<dyn Job>;

/// What the writer thread keeps besides its connection.
pub(super) struct WriterState {
    pub(super) numbers: NumberPolicy,
    pub(super) windows: Windows,
    pub(super) taken: TakenUpTo,
    pub(super) message_domain: String,
    /// New tickets' index rows, written just before the COMMIT.
    pub(super) search: super::search::PendingIndex,
    /// The page cache set on the connection, KiB (`size_cache`).
    pub(super) cache_kib: i64,
    /// `PRAGMA data_version` when `windows` were last read: it moves when
    /// another connection commits ([`follow_other_writers`]).
    pub(super) data_version: i64,
}

/// The connection's `PRAGMA data_version`: it moves when another
/// connection (an `oxidesk pipe` process, a CLI command) commits, not
/// when this one does.
pub(super) fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?)
}

/// At the start of a group (the write lock held): when another process
/// wrote since the last group, the hourly autoresponse windows are read
/// again, so that mail queued by `oxidesk pipe` counts against a cap
/// that `serve` keeps in memory. (Only commits of other connections
/// move the version: not this one's, not readers', not the `PASSIVE`
/// checkpoints of `sync.rs`; a test in `tests.rs` holds SQLite to it.)
fn follow_other_writers(conn: &Connection, state: &mut WriterState) -> Result<(), StoreError> {
    let now = data_version(conn)?;
    if now != state.data_version {
        state.windows = super::mail::load_windows(conn, unix_now())?;
        state.data_version = now;
    }
    Ok(())
}

/// Opens a transaction for a group (or a rerun): `BEGIN IMMEDIATE`, then
/// [`follow_other_writers`]; rolled back if that fails.
fn begin(conn: &Connection, state: &mut WriterState) -> Result<(), StoreError> {
    exec_cached(conn, "BEGIN IMMEDIATE").map_err(map_sqlite)?;
    if let Err(e) = follow_other_writers(conn, state) {
        rollback(conn, state);
        tracing::error!(error = %e, "reading what other processes wrote failed");
        return Err(e);
    }
    Ok(())
}

/// SQLite's lock page starts here (`PENDING_BYTE`): no page of a file
/// below this size is numbered past it.
const LOCK_BYTE: i64 = 1 << 30;

/// The writer's page cache, KiB, for a database file of `bytes`.
///
/// Past 1 GiB, 64 MiB: the writer keeps its pages between
/// transactions (readers lose theirs whenever another connection
/// commits), and at 1M tickets SQLite's default of 2 MiB held too few of
/// the search index's segments and the tables' inner pages: a fifth of
/// a reply's time in the writer went to reading pages back from the OS.
///
/// Up to 1 GiB, 2 MiB (about SQLite's default, 2,000 KiB). B-tree balancing parks a page for a
/// moment at the lock page's number (`balance_nonroot`), which SQLite's
/// page cache then takes as its highest page; at COMMIT it drops the
/// pages numbered past the file's end, and when that span is wider than
/// its hash table it walks the whole table (`pcache1TruncateUnsafe`).
/// Below the lock page the span always is: with 64 MiB cached, that walk
/// took 9% of the server's CPU under JSON intake on a fresh database
/// (perf, README Benchmark, session 17). Past it, nothing lies beyond
/// the end and the walk never runs.
pub(super) fn writer_cache_kib(bytes: i64) -> i64 {
    // Past the lock page itself: a file of exactly 1 GiB ends at it.
    if bytes > LOCK_BYTE {
        64 * 1024
    } else {
        2 * 1024
    }
}

/// Sets the writer's page cache for the file's current size when it
/// differs from `current` (KiB); returns the size set.
pub(super) fn size_cache(conn: &Connection, current: i64) -> rusqlite::Result<i64> {
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let kib = writer_cache_kib(pages.saturating_mul(page_size));
    if kib != current {
        conn.pragma_update(None, "cache_size", -kib)?;
    }
    Ok(kib)
}

/// How far the sender has read the thread for waiting mail: no entry up
/// to this id has mail left to take. Moves with a commit only.
#[derive(Debug, Default)]
pub(super) struct TakenUpTo {
    pub(super) committed: i64,
    pub(super) pending: Option<i64>,
}

impl TakenUpTo {
    pub(super) fn get(&self) -> i64 {
        self.pending.unwrap_or(self.committed)
    }

    pub(super) fn set(&mut self, entry_id: i64) {
        self.pending = Some(entry_id);
    }

    pub(super) fn commit(&mut self) {
        if let Some(p) = self.pending.take() {
            self.committed = p;
        }
    }

    pub(super) fn rollback(&mut self) {
        self.pending = None;
    }
}

/// Entries up to this id have had their mail taken: they are taken in
/// order, so every entry before the last outbox row's has been.
pub(super) fn taken_up_to(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT coalesce(max(id), 0) / ?1 FROM outbox",
        [crate::storage::OUTBOX_IDS_PER_ENTRY],
        |r| r.get(0),
    )?)
}

/// What the writer thread is told.
pub(super) enum Msg {
    /// A request's writes.
    Job(BoxJob),
    /// The syncer made this many handed-over groups durable.
    Synced(usize),
    /// The background checkpoint copied most of the log: finish it here,
    /// between groups (see [`super::sync`]).
    CheckpointTail,
    /// A round of copying ahead is done; its sync of the database file
    /// took this long (none: the round failed before it synced).
    CopiedAhead(Option<std::time::Duration>),
    /// The store is closing: commit what has run, then stop.
    Stop,
}

/// A committed group on its way to the syncer: each job with the outcome
/// of its transaction, answered in this order once the log is on disk.
pub(super) type Batch = Vec<(BoxJob, Result<(), StoreError>)>;

/// The writer: runs each request as it arrives inside the open
/// transaction, and commits when the syncer is free. While the syncer
/// makes one group durable (an fsync of the log, milliseconds), the next
/// group fills and runs, so a group holds what arrived during one fsync
/// and the CPU work overlaps the disk's. The COMMIT itself only writes
/// the log (`synchronous=NORMAL`); nobody is answered before the syncer's
/// fsync, so a `201` still means the ticket is on disk.
pub(super) fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Msg>,
    mut state: WriterState,
    syncer: mpsc::Sender<Batch>,
    log: LogWatch,
) {
    // Whether a checkpoint (or a round of copying ahead) was asked for
    // and not yet finished.
    let mut checkpointing = false;
    let mut group: Vec<BoxJob> = Vec::with_capacity(MAX_GROUP);
    let mut open = false;
    let mut started = std::time::Instant::now();
    // Groups handed to the syncer and not yet durable.
    let mut unsynced = 0usize;
    let mut tail_wanted = false;
    let mut stopping = false;
    // The log's size (pages) after the last commit, and when the last
    // copy ahead or checkpoint was asked for; both fall back to 0 when
    // the log starts over (it is smaller than after the commit before).
    let mut last_pages = 0u64;
    let mut copied_at = 0u64;
    // The piece copied ahead: the largest while the database file's
    // syncs are quick, smaller while they are slow (`sync::next_piece`).
    let mut piece = log.ahead_pages;
    loop {
        if open && (unsynced == 0 || group.len() >= MAX_GROUP || stopping) {
            let size = group.len();
            let outcome = commit(&conn, &mut state);
            crate::telemetry::sqlite_group(size, started.elapsed());
            open = false;
            let batch: Batch = group.drain(..).map(|j| (j, outcome.clone())).collect();
            hand_over(&syncer, batch, &mut unsynced);
            let pages = log.pages();
            if pages < last_pages {
                copied_at = 0;
            }
            last_pages = pages;
            if tail_wanted {
                tail_wanted = false;
                checkpointing = false;
                super::sync::checkpoint_tail(&conn);
            } else if checkpointing {
                // One at a time: the next is asked for once it is done.
            } else if pages >= log.threshold {
                copied_at = pages;
                size_cache_for_file(&conn, &mut state);
                if log.checkpointer.wake() {
                    checkpointing = true;
                } else {
                    // No checkpoint thread: copy the log here rather
                    // than let it grow.
                    super::sync::checkpoint_tail(&conn);
                }
            } else if piece > 0 && pages >= copied_at + piece && log.checkpointer.copy_ahead() {
                // A round of copying may reach the log's end, and the log
                // then starts over short of the threshold: the cache is
                // sized here too.
                copied_at = pages;
                checkpointing = true;
                size_cache_for_file(&conn, &mut state);
            }
            continue;
        }
        if stopping {
            break;
        }
        let msg = match rx.recv() {
            Ok(m) => m,
            Err(_) => Msg::Stop,
        };
        match msg {
            Msg::Job(mut job) => {
                if log.sync_failed.load(std::sync::atomic::Ordering::SeqCst) {
                    job.finish(Err(super::sync::log_lost()));
                    continue;
                }
                if !open {
                    started = std::time::Instant::now();
                    if let Err(e) = begin(&conn, &mut state) {
                        job.finish(Err(e));
                        continue;
                    }
                    open = true;
                }
                if job.run(&conn, &mut state) {
                    group.push(job);
                } else {
                    open = false;
                    let batch = rerun_without(&conn, &mut state, &mut group, job);
                    hand_over(&syncer, batch, &mut unsynced);
                }
            }
            Msg::Synced(n) => unsynced = unsynced.saturating_sub(n),
            Msg::CheckpointTail => {
                if open {
                    tail_wanted = true;
                } else {
                    checkpointing = false;
                    super::sync::checkpoint_tail(&conn);
                }
            }
            Msg::CopiedAhead(synced) => {
                checkpointing = false;
                if let Some(synced) = synced {
                    piece = super::sync::next_piece(piece, synced, log.ahead_pages);
                }
            }
            Msg::Stop => stopping = true,
        }
    }
}

/// Every few thousand pages of log, the writer's page cache follows the
/// file's size ([`size_cache`]).
fn size_cache_for_file(conn: &Connection, state: &mut WriterState) {
    match size_cache(conn, state.cache_kib) {
        Ok(kib) => state.cache_kib = kib,
        Err(e) => tracing::warn!(error = %e, "sizing the writer's page cache failed"),
    }
}

/// How big the log is (pages, as the writer's log hook last counted) and
/// who copies it.
pub(super) struct LogWatch {
    pub(super) pages: Arc<std::sync::atomic::AtomicU64>,
    pub(super) checkpointer: super::sync::Checkpointer,
    /// A checkpoint is asked for at this many pages.
    pub(super) threshold: u64,
    /// The largest piece copied ahead between checkpoints, in pages (0:
    /// never; `sync::AHEAD_DIVISOR`); the piece asked for shrinks from it
    /// while the database file's syncs are slow (`sync::next_piece`).
    pub(super) ahead_pages: u64,
    /// Set by the syncer when an fsync of the log failed (fail-stop).
    pub(super) sync_failed: Arc<std::sync::atomic::AtomicBool>,
}

impl LogWatch {
    fn pages(&self) -> u64 {
        self.pages.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A statement without parameters or rows, prepared once (BEGIN, COMMIT
/// and ROLLBACK run for every group).
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn hand_over(syncer: &mpsc::Sender<Batch>, batch: Batch, unsynced: &mut usize) {
    if batch.is_empty() {
        return;
    }
    match syncer.send(batch) {
        Ok(()) => *unsynced += 1,
        // The syncer is gone (it only stops with the writer, or died):
        // answer here rather than never, and wait for it no more.
        Err(mpsc::SendError(batch)) => {
            *unsynced = 0;
            for (job, _) in batch {
                job.finish(Err(StoreError::Busy(
                    "the database syncer has stopped".into(),
                )));
            }
        }
    }
}

/// `failed` failed inside the open transaction: the group is rolled back,
/// the others run again, each in a transaction of its own (a rare path:
/// requests are validated before they reach the writer), and the failed
/// job is answered last with its error: a job that failed on what another
/// of its group wrote (an Idempotency-Key claimed twice) reads that write
/// once answered, so it must be committed (and durable) by then.
fn rerun_without(
    conn: &Connection,
    state: &mut WriterState,
    group: &mut Vec<BoxJob>,
    failed: BoxJob,
) -> Batch {
    rollback(conn, state);
    let mut batch: Batch = Vec::with_capacity(group.len() + 1);
    for mut job in group.drain(..) {
        let outcome = match begin(conn, state) {
            Err(e) => Err(e),
            Ok(()) if job.run(conn, state) => commit(conn, state),
            Ok(()) => {
                rollback(conn, state);
                Ok(())
            }
        };
        batch.push((job, outcome));
    }
    // Its result is its error; nothing of it is kept.
    batch.push((failed, Ok(())));
    batch
}

pub(super) fn commit(conn: &Connection, state: &mut WriterState) -> Result<(), StoreError> {
    if let Err(e) = super::search::flush_pending(conn, &mut state.search) {
        rollback(conn, state);
        tracing::error!(error = %e, "writing the search index failed: the group is rolled back");
        return Err(e);
    }
    match exec_cached(conn, "COMMIT") {
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

pub(super) fn rollback(conn: &Connection, state: &mut WriterState) {
    let _ = exec_cached(conn, "ROLLBACK");
    state.search.clear();
    state.windows.rollback();
    state.taken.rollback();
}
