//! Durability off the writer thread: the syncer and the checkpointer.
//!
//! The writer commits with `synchronous=NORMAL`: a COMMIT writes the
//! group's frames to the log (`-wal`) and returns without an fsync. The
//! **syncer** then calls `fdatasync` on the log and only then answers the
//! group's requests, so a `201` still means the ticket is on disk. An
//! fsync issued after a COMMIT returned covers every frame written
//! before it, whatever group wrote it, so one fsync answers every group
//! that was handed over meanwhile. Frames that a checkpoint copied into
//! the database file and a restart of the log then overwrote are safe
//! too: a checkpoint syncs the log before copying and the database file
//! after (SQLite does, with `synchronous=NORMAL`). Readers may see a
//! group a moment before it is durable; nobody learns its ticket numbers
//! until it is, and anything derived from it (a reply, mail claimed by
//! the sender) is written by the writer and answered after an fsync that
//! covers both.
//!
//! **Checkpoints** (copying the log into the database file so that the
//! log can start over) are kept off the writer: the writer's own
//! automatic checkpoint, which ran inside a COMMIT every 1,000 pages, is
//! off (the writer's log hook replaces it and counts the log's pages).
//! When the log passes [`CHECKPOINT_PAGES`], the checkpointer thread
//! copies it on a connection of its own (`PASSIVE`: it never blocks the
//! writer), and then asks the writer to copy the few frames written
//! meanwhile between two groups ([`checkpoint_tail`]): only a log copied
//! to its end starts over at the next transaction, and under steady load
//! a background copy alone never reaches the end. Between checkpoints
//! the checkpointer also copies ahead ([`AHEAD_DIVISOR`]), so that the
//! database file's pages reach the disk a piece at a time: an fsync of
//! the log waits for the disk to take everything written before it.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::telemetry::{SyncedFile, sqlite_sync};

use super::writer::{Batch, Msg};
use super::{StoreError, configure, other};

/// The log is copied into the database once it holds this many pages
/// (4 KiB each by default: 16 MiB; SQLite's own default is 1,000). A
/// larger log copies each often-written page (index roots, counters)
/// once for more transactions.
pub(super) const CHECKPOINT_PAGES: u64 = 4096;

/// Between two checkpoints the log is copied ahead every
/// [`CHECKPOINT_PAGES`] / this many pages (4 MiB) at most: one
/// background round and a sync of the database file
/// ([`Checkpointer::copy_ahead`]); the log starts over only if a round
/// happens to reach its end. While those syncs are slow the pieces are
/// smaller, down to a sixteenth of a checkpoint ([`next_piece`]).
/// Measured at 1,000,000 tickets (README, Benchmark, sessions 19 and
/// 20), 16 agents replying: p99 ~40 ms with no copy ahead, ~27 with
/// quarters, ~20 with eighths on one VM; JSON intake on a new database
/// ~5% slower with quarters, ~15% with eighths (each round's two syncs),
/// where its pages, written again and again, sync in 1–2.5 ms: pieces
/// stay quarters there.
pub(super) const AHEAD_DIVISOR: u64 = 4;

/// The smallest piece copied ahead is the largest ([`AHEAD_DIVISOR`])
/// divided by this: a sixteenth of a checkpoint.
const SMALLEST_PIECE_DIVISOR: u64 = 4;

/// A sync of the database file after a round of copying ahead that
/// takes longer than this halves the next piece (down to
/// [`SMALLEST_PIECE_DIVISOR`]); one under a quarter of it doubles the
/// next piece (up to the largest). Every fsync of the log issued meanwhile waits for
/// it. Replies at 1,000,000 tickets scatter their pages over the file
/// and a quarter's sync takes 5–25 ms; intake's pages sync in 1–2.5 ms.
const SLOW_SYNC: Duration = Duration::from_millis(8);

/// The next piece to copy ahead (pages), after a round of `piece` pages
/// whose sync of the database file took `synced`; `largest` is the
/// piece of [`AHEAD_DIVISOR`] (0: copying ahead is off).
pub(super) fn next_piece(piece: u64, synced: Duration, largest: u64) -> u64 {
    if synced > SLOW_SYNC {
        (piece / 2)
            .max(largest / SMALLEST_PIECE_DIVISOR)
            .max(1)
            .min(largest)
    } else if synced < SLOW_SYNC / 4 {
        (piece * 2).min(largest)
    } else {
        piece
    }
}

/// The background checkpoint copies the log again until a round copies
/// at most this many frames ([`copy_log`]).
const TAIL_FRAMES: i64 = 64;

/// At most this many copies in a row (a writer faster than the copy
/// leaves a longer tail rather than keep the checkpointer spinning).
const MAX_COPY_ROUNDS: usize = 8;

/// Makes the log durable and answers the groups handed over, in order.
pub(super) fn syncer_loop(
    db_path: PathBuf,
    rx: mpsc::Receiver<Batch>,
    writer: mpsc::Sender<Msg>,
    hooks: SyncHooks,
    failed: Arc<AtomicBool>,
) {
    let wal = wal_path(&db_path);
    let mut file: Option<File> = None;
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(more) = rx.try_recv() {
            batches.push(more);
        }
        let committed = batches.iter().flatten().any(|(_, outcome)| outcome.is_ok());
        let synced = if failed.load(Ordering::SeqCst) {
            Err(log_lost())
        } else if committed {
            (hooks.before_sync)().and_then(|()| sync_log(&wal, &mut file))
        } else {
            Ok(())
        };
        let synced = match synced {
            Ok(()) => Ok(()),
            Err(e) => {
                // Fail-stop: Linux reports a lost write once, so a later
                // fsync of this file may succeed although the log has a
                // hole that recovery stops at. Nothing more is answered
                // Ok until a restart (the writer refuses new writes).
                if !failed.swap(true, Ordering::SeqCst) {
                    tracing::error!(error = %e, "syncing the database log failed: every write is refused (503) until oxidesk is restarted");
                }
                Err(e)
            }
        };
        // The writer may commit its next group now.
        let _ = writer.send(Msg::Synced(batches.len()));
        for (job, outcome) in batches.into_iter().flatten() {
            let outcome = match (outcome, &synced) {
                (Ok(()), Err(e)) => Err(e.clone()),
                (outcome, _) => outcome,
            };
            job.finish(outcome);
        }
    }
}

/// How the syncer and checkpointer run: [`CHECKPOINT_PAGES`] and no
/// hook in production; tests watch and hold the fsync and make the log
/// smaller.
#[derive(Clone)]
pub(super) struct SyncHooks {
    /// Called before each fsync; an error stands for a failed fsync.
    pub(super) before_sync: std::sync::Arc<dyn Fn() -> Result<(), StoreError> + Send + Sync>,
    /// The log is copied once it holds this many pages.
    pub(super) checkpoint_pages: u64,
    /// Whether the log is copied ahead between checkpoints
    /// ([`AHEAD_DIVISOR`]).
    pub(super) copy_ahead: bool,
}

impl Default for SyncHooks {
    fn default() -> Self {
        Self {
            before_sync: std::sync::Arc::new(|| Ok(())),
            checkpoint_pages: CHECKPOINT_PAGES,
            copy_ahead: true,
        }
    }
}

/// The error of every write after a failed fsync of the log.
pub(super) fn log_lost() -> StoreError {
    StoreError::Busy(
        "the database log could not be synced to disk: writes are refused until oxidesk is restarted"
            .into(),
    )
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// `fdatasync` of the log. The file is opened once
/// and again only if the one at the path is another (SQLite deletes the
/// log only when the last connection closes, which the writer's never
/// does while this runs; checked anyway, it costs a `stat`).
fn sync_log(wal: &Path, file: &mut Option<File>) -> Result<(), StoreError> {
    let on_disk = std::fs::metadata(wal)
        .map_err(|e| StoreError::Busy(format!("database log {}: {e}", wal.display())))?;
    let same = match file {
        Some(f) => f
            .metadata()
            .is_ok_and(|m| m.ino() == on_disk.ino() && m.dev() == on_disk.dev()),
        None => false,
    };
    if !same {
        *file = Some(
            File::open(wal)
                .map_err(|e| StoreError::Busy(format!("database log {}: {e}", wal.display())))?,
        );
    }
    let f = file
        .as_ref()
        .ok_or_else(|| other("database log not open"))?;
    let started = Instant::now();
    let synced = f.sync_data();
    sqlite_sync(SyncedFile::Log, started.elapsed());
    synced.map_err(|e| StoreError::Busy(format!("fsync of {}: {e}", wal.display())))?;
    if !same {
        // A log new since the last sync (made at start) is also an entry
        // of its directory: sync that once, as SQLite does.
        if let Some(dir) = wal.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| StoreError::Busy(format!("fsync of {}: {e}", dir.display())))?;
        }
    }
    Ok(())
}

/// The background checkpoint thread.
pub(super) struct Checkpointer {
    wake: Option<mpsc::SyncSender<Wake>>,
}

/// What the checkpointer is woken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// Copy the log, then ask the writer for the tail (the log starts over).
    Checkpoint,
    /// One round of copying only: the database file's writes reach the
    /// disk in pieces of a quarter of a checkpoint or less. An fsync of
    /// the log waits for the disk to take whatever was written before it;
    /// behind
    /// a whole checkpoint's pages (16 MiB synced at once) that took up
    /// to 53 ms, and every request waiting on that fsync waited as long.
    Ahead,
}

impl Checkpointer {
    pub(super) fn start(db_path: PathBuf, writer: mpsc::Sender<Msg>) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Wake>(1);
        let started = std::thread::Builder::new()
            .name("sqlite-ckpt".into())
            .spawn(move || checkpoint_loop(&db_path, &rx, &writer));
        match started {
            Ok(_) => Self { wake: Some(tx) },
            Err(e) => {
                tracing::error!(error = %e, "cannot start the checkpoint thread: the writer copies the log itself");
                Self { wake: None }
            }
        }
    }

    /// Asks for a checkpoint (a no-op while one is asked for); false when
    /// there is no checkpoint thread to ask, and the caller must copy the
    /// log itself.
    pub(super) fn wake(&self) -> bool {
        self.send(Wake::Checkpoint)
    }

    /// Asks for one round of copying ahead of the next checkpoint; the
    /// checkpointer answers [`Msg::CopiedAhead`]. False when there is no
    /// checkpoint thread (nothing is copied ahead then).
    pub(super) fn copy_ahead(&self) -> bool {
        self.send(Wake::Ahead)
    }

    fn send(&self, wake: Wake) -> bool {
        match &self.wake {
            Some(tx) => !matches!(tx.try_send(wake), Err(mpsc::TrySendError::Disconnected(_))),
            None => false,
        }
    }
}

/// The background part of a checkpoint: copies the log into the
/// database file and syncs that file, again and again while the writer
/// keeps adding frames, so that the writer's tail ([`checkpoint_tail`])
/// has few pages to copy and sync. A checkpoint that does not reach the
/// log's end does not sync the database file itself: before, the tail's
/// sync flushed every page copied here (42 ms under replies, with every
/// request waiting). The syncs here are extra; durability does not rest
/// on them. `rounds`: [`MAX_COPY_ROUNDS`] for a checkpoint, one for a
/// copy ahead. Returns how long the longest sync of the database file
/// took, none when a round failed before its sync.
fn copy_log(c: &Connection, db_path: &Path, rounds: usize) -> Option<Duration> {
    let mut longest: Option<Duration> = None;
    let db = match File::open(db_path) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint: cannot open the database file");
            return None;
        }
    };
    let mut before: Option<i64> = None;
    for _ in 0..rounds {
        // `PASSIVE` leaves the log's header alone; a `RESTART` or
        // `TRUNCATE` here would move the writer's `data_version` and
        // make its next group read the autoresponse windows again
        // (`writer::follow_other_writers`).
        let copied = match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        }) {
            Ok((log, copied)) => {
                tracing::debug!(log.frames = log, copied.frames = copied, "checkpoint");
                copied
            }
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint failed");
                return None;
            }
        };
        let started = Instant::now();
        let synced = db.sync_data();
        let took = started.elapsed();
        sqlite_sync(SyncedFile::Database, took);
        longest = longest.max(Some(took));
        if let Err(e) = synced {
            tracing::warn!(error = %e, "checkpoint: syncing the database file failed");
            return longest;
        }
        match before {
            // Fewer than `before`: the log started over since.
            Some(b) if (if copied >= b { copied - b } else { copied }) <= TAIL_FRAMES => {
                return longest;
            }
            _ => before = Some(copied),
        }
    }
    longest
}

fn checkpoint_loop(db_path: &Path, rx: &mpsc::Receiver<Wake>, writer: &mpsc::Sender<Msg>) {
    let mut conn: Option<Connection> = None;
    while let Ok(wake) = rx.recv() {
        if conn.is_none() {
            match Connection::open(db_path)
                .map_err(StoreError::from)
                .and_then(|c| {
                    configure(&c)?;
                    Ok(c)
                }) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    // The writer's tail copies the whole log then.
                    tracing::warn!(error = %e, "checkpoint: cannot open the database");
                }
            }
        }
        let rounds = match wake {
            Wake::Checkpoint => MAX_COPY_ROUNDS,
            Wake::Ahead => 1,
        };
        let synced = conn.as_ref().and_then(|c| copy_log(c, db_path, rounds));
        let done = match wake {
            Wake::Checkpoint => Msg::CheckpointTail,
            Wake::Ahead => Msg::CopiedAhead(synced),
        };
        if writer.send(done).is_err() {
            return;
        }
    }
}

/// Copies what the background checkpoint left (the frames written while
/// it ran), on the writer's connection between two groups, so that the
/// next transaction starts the log over. Errors are logged: the log is
/// copied at the next attempt.
pub(super) fn checkpoint_tail(conn: &Connection) {
    let started = Instant::now();
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "checkpoint (tail) failed");
    }
    crate::telemetry::sqlite_checkpoint_tail(started.elapsed());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_syncs_of_the_database_shrink_the_piece_and_quick_ones_grow_it_back() {
        let largest = CHECKPOINT_PAGES / AHEAD_DIVISOR;
        let slow = SLOW_SYNC + Duration::from_millis(1);
        let quick = SLOW_SYNC / 8;
        let middling = SLOW_SYNC / 2;
        // Halved while slow, down to a quarter of the largest.
        let mut piece = largest;
        let mut seen = vec![piece];
        for _ in 0..4 {
            piece = next_piece(piece, slow, largest);
            seen.push(piece);
        }
        assert_eq!(
            seen,
            [largest, largest / 2, largest / 4, largest / 4, largest / 4]
        );
        // Kept while neither; doubled back while quick, up to the largest.
        assert_eq!(next_piece(piece, middling, largest), piece);
        piece = next_piece(piece, quick, largest);
        assert_eq!(piece, largest / 2);
        piece = next_piece(piece, quick, largest);
        piece = next_piece(piece, quick, largest);
        assert_eq!(piece, largest);
        // The thresholds themselves: over SLOW_SYNC halves, under a
        // quarter of it doubles, both ends kept.
        let p = largest / 2;
        assert_eq!(next_piece(p, SLOW_SYNC, largest), p);
        assert_eq!(
            next_piece(p, SLOW_SYNC + Duration::from_nanos(1), largest),
            p / 2
        );
        assert_eq!(next_piece(p, SLOW_SYNC / 4, largest), p);
        assert_eq!(
            next_piece(p, SLOW_SYNC / 4 - Duration::from_nanos(1), largest),
            2 * p
        );
        // Off stays off; a tiny test threshold keeps at least a page
        // (a piece of 0 would never grow back).
        assert_eq!(next_piece(0, slow, 0), 0);
        assert_eq!(next_piece(0, quick, 0), 0);
        assert_eq!(next_piece(2, slow, 2), 1);
        assert_eq!(next_piece(1, slow, 1), 1);
        assert_eq!(next_piece(1, slow, 3), 1);
    }
}
