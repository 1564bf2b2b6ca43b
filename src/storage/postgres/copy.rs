//! `migrate-data` on PostgreSQL: rows out and in, as they are.

use super::*;

/// Most bytes of bound values in one multi-row INSERT.
const MAX_STATEMENT_BYTES: usize = 64 << 20;

/// A copied row's bound bytes (texts and blobs; numbers are noise).
fn row_bytes(row: &[crate::storage::DumpValue]) -> usize {
    use crate::storage::DumpValue;
    row.iter()
        .map(|v| match v {
            DumpValue::Text(t) => t.len(),
            DumpValue::Blob(b) => b.len(),
            _ => 8,
        })
        .sum()
}

/// The next rows of one INSERT: at most `per_statement`, and no more
/// than `max_bytes` of values unless a single row is larger (it goes
/// alone).
fn next_chunk<I: Iterator<Item = Vec<crate::storage::DumpValue>>>(
    rows: &mut std::iter::Peekable<I>,
    per_statement: usize,
    max_bytes: usize,
) -> Vec<Vec<crate::storage::DumpValue>> {
    let mut chunk = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next_if(|row| {
        chunk.is_empty() || (chunk.len() < per_statement && bytes + row_bytes(row) <= max_bytes)
    }) {
        bytes += row_bytes(&row);
        chunk.push(row);
    }
    chunk
}

/// Binds a copied value, typed by its column (a NULL needs one too).
fn bind_value<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    v: crate::storage::DumpValue,
    ty: crate::storage::ColType,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    use crate::storage::{ColType, DumpValue};
    match (v, ty) {
        (DumpValue::Int(n), _) => q.bind(n),
        (DumpValue::Text(t), _) => q.bind(t),
        (DumpValue::Blob(b), _) => q.bind(b),
        (DumpValue::Bool(b), _) => q.bind(b),
        (DumpValue::Null, ColType::Int) => q.bind(None::<i64>),
        (DumpValue::Null, ColType::Text) => q.bind(None::<String>),
        (DumpValue::Null, ColType::Blob) => q.bind(None::<Vec<u8>>),
        (DumpValue::Null, ColType::Bool) => q.bind(None::<bool>),
    }
}

impl crate::storage::DataCopy for PgStore {
    fn export_rows(
        &self,
        table: &'static crate::storage::TableSpec,
        after: Option<Vec<crate::storage::DumpValue>>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Vec<crate::storage::DumpValue>>, StoreError>> {
        Box::pin(async move {
            // Table and column names are constants of TABLES, never input.
            // Text keys compare in the database's collation, as its
            // indexes do: the seek stays an index seek.
            let sql = table.page_sql(after.is_some(), |i| format!("${i}"));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            let positions = table.key_positions();
            for (v, p) in after.into_iter().flatten().zip(positions) {
                q = bind_value(q, v, table.columns[p].1);
            }
            let rows = q.bind(limit).fetch_all(&self.pool).await?;
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
            // Many rows per statement (a round trip per row was most of a
            // copy's time), within PostgreSQL's 65,535 parameters and,
            // for rows of files and raw mail, a bounded message (its
            // limit is 1 GB; one row always goes, whatever its size).
            let width = table.columns.len();
            let per_statement = (65_535 / width).clamp(1, 1_000);
            let mut tx = self.pool.begin().await?;
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let chunk = next_chunk(&mut rows, per_statement, MAX_STATEMENT_BYTES);
                let tuples: Vec<String> = (0..chunk.len())
                    .map(|r| {
                        let marks: Vec<String> =
                            (1..=width).map(|c| format!("${}", r * width + c)).collect();
                        format!("({})", marks.join(", "))
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES {}",
                    table.name,
                    table.column_list(),
                    tuples.join(", ")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for row in chunk {
                    for (v, (_, ty)) in row.into_iter().zip(table.columns.iter()) {
                        q = bind_value(q, v, *ty);
                    }
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
            // Statistics first: a server with autovacuum off (or not yet
            // round) has none for the rows just copied, and without them
            // the index rebuild's lookups by ticket were sequential scans
            // of the whole entry table (7 s a batch at a million tickets).
            sqlx::query("ANALYZE").execute(&self.pool).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::DumpValue;

    fn blob(n: usize) -> Vec<DumpValue> {
        vec![DumpValue::Int(1), DumpValue::Blob(vec![0; n])]
    }

    #[test]
    fn an_insert_takes_rows_up_to_its_count_and_its_bytes_and_a_big_row_alone() {
        let sizes = |rows: Vec<Vec<DumpValue>>, per: usize, max: usize| {
            let mut rows = rows.into_iter().peekable();
            let mut out = Vec::new();
            while rows.peek().is_some() {
                out.push(next_chunk(&mut rows, per, max).len());
            }
            out
        };
        // By count.
        assert_eq!(sizes((0..7).map(|_| blob(1)).collect(), 3, 1000), [3, 3, 1]);
        // By bytes: 9 bytes a row (8 of the integer, 1 of the blob).
        assert_eq!(
            sizes((0..7).map(|_| blob(1)).collect(), 100, 20),
            [2, 2, 2, 1]
        );
        // A row over the limit goes alone, and the rows around it group.
        let rows = vec![blob(1), blob(500), blob(1), blob(1)];
        assert_eq!(sizes(rows, 100, 100), [1, 1, 2]);
    }
}
