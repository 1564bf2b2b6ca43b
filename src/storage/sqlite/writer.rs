//! The writer thread: one connection that commits groups of requests in
//! one transaction (group commit), answering each after the COMMIT.

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

pub(super) fn writer_loop(conn: Connection, rx: mpsc::Receiver<BoxJob>, mut state: WriterState) {
    let mut group: Vec<BoxJob> = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = rx.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (size, start) = (group.len(), std::time::Instant::now());
        run_group(&conn, &mut state, &mut group);
        crate::telemetry::sqlite_group(size, start.elapsed());
    }
}

/// One transaction for the whole group. When a job fails, the group is
/// rolled back, the others run again, each in a transaction of its own
/// (a rare path: requests are validated before they reach the writer),
/// and then the failed job is answered with its error.
pub(super) fn run_group(conn: &Connection, state: &mut WriterState, group: &mut Vec<BoxJob>) {
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
    let failed: Vec<BoxJob> = failed.into_iter().rev().map(|i| group.remove(i)).collect();
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
    // Answered last: a job that failed on what another of its group
    // wrote (an Idempotency-Key claimed twice) reads that write once
    // answered, so it must be committed by then.
    for job in failed {
        // Its result is its error; nothing of it is kept.
        job.finish(Ok(()));
    }
}

pub(super) fn commit(conn: &Connection, state: &mut WriterState) -> Result<(), StoreError> {
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

pub(super) fn rollback(conn: &Connection, state: &mut WriterState) {
    let _ = conn.execute_batch("ROLLBACK");
    state.windows.rollback();
    state.taken.rollback();
}
