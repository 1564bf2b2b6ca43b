//! `migrate-data` on PostgreSQL: rows out and in, as they are.

use super::*;

/// `ORDER BY` with byte-wise text order, as SQLite sorts, so that both
/// sides of a copy stream rows in the same order.
pub(super) fn pg_order(table: &crate::storage::TableSpec) -> String {
    table
        .order_by
        .split(',')
        .map(|c| {
            let c = c.trim();
            let is_text = table
                .columns
                .iter()
                .any(|(name, ty)| *name == c && *ty == crate::storage::ColType::Text);
            if is_text {
                format!("{c} COLLATE \"C\"")
            } else {
                c.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl crate::storage::DataCopy for PgStore {
    fn export_rows(
        &self,
        table: &'static crate::storage::TableSpec,
        offset: i64,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Vec<crate::storage::DumpValue>>, StoreError>> {
        Box::pin(async move {
            // Table and column names are constants of TABLES, never input.
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {} LIMIT $1 OFFSET $2",
                table.column_list(),
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
        table: &'static crate::storage::TableSpec,
        rows: Vec<Vec<crate::storage::DumpValue>>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            use crate::storage::{ColType, DumpValue};
            let placeholders: Vec<String> =
                (1..=table.columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name,
                table.column_list(),
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
        table: &'static crate::storage::TableSpec,
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
            for table in crate::storage::TABLES.iter().filter(|t| t.has_serial_id) {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), GREATEST((SELECT max(id) FROM {0}), 1))",
                    table.name
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&self.pool)
                    .await?;
            }
            // The index is derived data: made from the imported tickets.
            let mut tx = self.pool.begin().await?;
            super::search::rebuild_index(&mut tx).await?;
            tx.commit().await?;
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
