//! [`Store::health`] on SQLite: the schema version and the mail not sent
//! yet (mail still waiting on its entry, then outbox rows not sent).

use super::*;
use crate::storage::StoreHealth;

impl SqliteStore {
    pub(super) fn read_health(&self) -> BoxFuture<'_, Result<StoreHealth, StoreError>> {
        self.read(|conn| {
            let schema_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let taken = taken_up_to(conn)?;
            // Waiting mail: one per kind bit (bits 0..6) of each entry
            // past the last taken one; the first is the oldest.
            let (waiting, first): (i64, Option<String>) = conn
                .prepare_cached(
                    "SELECT coalesce(sum((notify & 1 <> 0) + (notify & 2 <> 0) + (notify & 4 <> 0)
                                         + (notify & 8 <> 0) + (notify & 16 <> 0) + (notify & 32 <> 0)), 0),
                            (SELECT created FROM thread_entries
                             WHERE id > ?1 AND notify <> 0 ORDER BY id LIMIT 1)
                     FROM thread_entries WHERE id > ?1 AND notify <> 0",
                )?
                .query_row([taken], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let (rows, oldest_row): (i64, Option<i64>) = conn
                .prepare_cached(
                    "SELECT count(*), min(created_at) FROM outbox
                     WHERE state IN ('queued', 'sending')",
                )?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let oldest_waiting = first.as_deref().and_then(unix_time);
            let oldest_queued_at = match (oldest_waiting, oldest_row) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // A diagnostic: what it cannot read leaves the rest of the
            // health (and readiness) as it is.
            let search_segments = match super::search::index_segments(conn) {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the search index's segment count");
                    None
                }
            };
            if let Some(n) = search_segments.filter(|n| *n > super::search::SEGMENTS_WARNING) {
                tracing::warn!(
                    search.segments = n,
                    "the search index has {n} segments: FTS5 refuses to write at 2,000 (README, Operations)"
                );
            }
            Ok(StoreHealth {
                schema_version,
                latest_schema_version: MIGRATIONS.last().map_or(0, |(n, _)| *n),
                queued: waiting + rows,
                oldest_queued_at,
                connections_in_use: None,
                search_segments,
            })
        })
    }
}
