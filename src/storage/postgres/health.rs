//! [`Store::health`] on PostgreSQL: the schema version, the outbox rows
//! not sent yet and the pool's connections in use.

use super::*;
use crate::storage::StoreHealth;

impl PgStore {
    pub(super) fn read_health(&self) -> BoxFuture<'_, Result<StoreHealth, StoreError>> {
        Box::pin(async move {
            let schema_version: Option<i64> =
                sqlx::query_scalar("SELECT max(version) FROM schema_migrations")
                    .fetch_one(&self.pool)
                    .await?;
            let (queued, oldest_queued_at): (i64, Option<i64>) = sqlx::query_as(
                "SELECT count(*), min(created_at) FROM outbox
                 WHERE state = 'queued' OR state = 'sending'",
            )
            .fetch_one(&self.pool)
            .await?;
            let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
            Ok(StoreHealth {
                schema_version: schema_version.unwrap_or(0),
                latest_schema_version: migrate::MIGRATIONS.last().map_or(0, |(n, _)| *n),
                queued,
                oldest_queued_at,
                connections_in_use: Some(self.pool.size().saturating_sub(idle)),
                search_segments: None,
            })
        })
    }
}
