//! Schema migrations, applied once under an advisory lock.

use super::*;

pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/0002_email.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/0003_outbox.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/postgres/0004_outbox_ids.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/postgres/0005_key_notify.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/postgres/0006_waiting_mail.sql"),
    ),
    (
        7,
        include_str!("../../../migrations/postgres/0007_dropped_parts.sql"),
    ),
    (
        8,
        include_str!("../../../migrations/postgres/0008_mail_kinds.sql"),
    ),
    (
        9,
        include_str!("../../../migrations/postgres/0009_staff.sql"),
    ),
    (
        10,
        include_str!("../../../migrations/postgres/0010_search.sql"),
    ),
    (
        11,
        include_str!("../../../migrations/postgres/0011_open_counts.sql"),
    ),
    (
        12,
        include_str!("../../../migrations/postgres/0012_idempotency.sql"),
    ),
    (
        13,
        include_str!("../../../migrations/postgres/0013_lean_intake.sql"),
    ),
    (
        14,
        include_str!("../../../migrations/postgres/0014_search_scope.sql"),
    ),
    (
        15,
        include_str!("../../../migrations/postgres/0015_search_merge.sql"),
    ),
    (
        16,
        include_str!("../../../migrations/postgres/0016_search_marks.sql"),
    ),
    (
        17,
        include_str!("../../../migrations/postgres/0017_search_deletemerge.sql"),
    ),
    (
        18,
        include_str!("../../../migrations/postgres/0018_search_own_lexemes.sql"),
    ),
    (
        19,
        include_str!("../../../migrations/postgres/0019_claims_by_entry.sql"),
    ),
    (
        20,
        include_str!("../../../migrations/postgres/0020_open_counts_order.sql"),
    ),
];

/// Any advisory-lock key, fixed: "oxidesk migrations".
pub(super) const MIGRATION_LOCK: i64 = 0x6f78_6964_6573_6b01;

impl PgStore {
    /// Applies the migrations this database lacks. Refuses a schema
    /// newer than this binary knows (an older binary after an upgrade:
    /// its writes would miss the newer columns' rules), and, unless
    /// `create_schema`, a database without oxidesk's tables.
    pub(super) async fn migrate(&self, create_schema: bool) -> Result<(), StoreError> {
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
        let newest = MIGRATIONS.last().map_or(0, |(n, _)| *n);
        crate::storage::check_schema_version(current.unwrap_or(0), newest, create_schema)?;
        for (n, sql) in MIGRATIONS {
            if *n > current.unwrap_or(0) {
                tx.execute(*sql)
                    .await
                    .map_err(|e| other(format!("migration {n} failed: {e}")))?;
                if super::search::MIGRATIONS.contains(n) {
                    super::search::rebuild_index(&mut tx).await?;
                }
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
