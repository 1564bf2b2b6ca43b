//! Schema migrations, applied in order; `PRAGMA user_version` records the
//! last one applied.

use super::*;

/// Schema migrations, applied in order; `PRAGMA user_version` records the
/// last one applied.
pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../../migrations/sqlite/0002_email.sql")),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_outbox.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/sqlite/0004_outbox_ids.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/sqlite/0005_key_notify.sql"),
    ),
    (
        6,
        concat!(
            include_str!("../../../migrations/sqlite/0006_waiting_mail.sql"),
            include_str!("../../../migrations/sqlite/entry_mail_from_outbox.sql")
        ),
    ),
    (
        7,
        include_str!("../../../migrations/sqlite/0007_dropped_parts.sql"),
    ),
    (
        8,
        include_str!("../../../migrations/sqlite/0008_mail_kinds.sql"),
    ),
    (9, include_str!("../../../migrations/sqlite/0009_staff.sql")),
    (
        10,
        include_str!("../../../migrations/sqlite/0010_search.sql"),
    ),
    (
        11,
        include_str!("../../../migrations/sqlite/0011_open_counts.sql"),
    ),
    (
        12,
        include_str!("../../../migrations/sqlite/0012_idempotency.sql"),
    ),
    (
        13,
        include_str!("../../../migrations/sqlite/0013_lean_intake.sql"),
    ),
    (
        14,
        include_str!("../../../migrations/sqlite/0014_search_scope.sql"),
    ),
    (
        15,
        include_str!("../../../migrations/sqlite/0015_search_merge.sql"),
    ),
    (
        16,
        include_str!("../../../migrations/sqlite/0016_search_marks.sql"),
    ),
    (
        17,
        include_str!("../../../migrations/sqlite/0017_search_deletemerge.sql"),
    ),
    (
        18,
        include_str!("../../../migrations/sqlite/0018_search_own_lexemes.sql"),
    ),
    (
        19,
        include_str!("../../../migrations/sqlite/0019_claims_by_entry.sql"),
    ),
    (
        20,
        include_str!("../../../migrations/sqlite/0020_open_counts_order.sql"),
    ),
];

/// Applies the migrations this file lacks; refuses a schema newer than
/// this binary knows (see [`crate::storage::check_schema_version`]).
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    // Up to date (the common case, e.g. every `oxidesk pipe` run): no
    // write lock needed.
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let newest = MIGRATIONS.last().map_or(0, |(n, _)| *n);
    // The file's existence is the CLI's creation rule; an empty file here
    // was just made by `serve` (or is one it may fill).
    crate::storage::check_schema_version(current, newest, true)?;
    if newest == current {
        return Ok(());
    }
    // IMMEDIATE: two processes starting at once apply each migration once.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<(), StoreError> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        crate::storage::check_schema_version(version, newest, true)?;
        // A migration that makes the search index anew is followed by
        // indexing every ticket, once, after the last migration (the
        // index's rows are made by today's code from today's tables).
        let mut reindex = false;
        for (n, sql) in MIGRATIONS {
            if *n > version {
                conn.execute_batch(sql)
                    .map_err(|e| other(format!("migration {n} failed: {e}")))?;
                reindex |= super::search::MIGRATIONS.contains(n);
                conn.pragma_update(None, "user_version", n)?;
            }
        }
        if reindex {
            super::search::rebuild_index(conn)?;
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
