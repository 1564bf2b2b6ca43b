//! `migrate-data` on SQLite: rows out and in, as they are.

use super::*;

/// A copied value as SQLite stores it.
fn sqlite_value(v: &crate::storage::DumpValue) -> rusqlite::types::Value {
    use crate::storage::DumpValue;
    use rusqlite::types::Value;
    match v {
        DumpValue::Null => Value::Null,
        DumpValue::Int(n) => Value::Integer(*n),
        DumpValue::Bool(b) => Value::Integer(i64::from(*b)),
        DumpValue::Text(t) => Value::Text(t.clone()),
        DumpValue::Blob(b) => Value::Blob(b.clone()),
    }
}

/// Entries whose mail `finish_import` records per statement.
const RECORD_ENTRIES: i64 = 1_000;

impl crate::storage::DataCopy for SqliteStore {
    fn export_rows(
        &self,
        table: &'static crate::storage::TableSpec,
        after: Option<Vec<crate::storage::DumpValue>>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Vec<crate::storage::DumpValue>>, StoreError>> {
        self.read(move |conn| {
            let sql = table.page_sql(after.is_some(), |i| format!("?{i}"));
            let mut stmt = conn.prepare(&sql)?;
            let mut values: Vec<rusqlite::types::Value> =
                after.iter().flatten().map(sqlite_value).collect();
            values.push(rusqlite::types::Value::Integer(limit));
            let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut values = Vec::with_capacity(table.columns.len());
                for (i, (_, ty)) in table.columns.iter().enumerate() {
                    let v = dump_value(row.get_ref(i)?, *ty);
                    values.push(v);
                }
                out.push(values);
            }
            Ok(out)
        })
    }

    fn import_rows(
        &self,
        table: &'static crate::storage::TableSpec,
        rows: Vec<Vec<crate::storage::DumpValue>>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            use rusqlite::types::Value;
            let placeholders: Vec<String> =
                (1..=table.columns.len()).map(|i| format!("?{i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name,
                table.column_list(),
                placeholders.join(", ")
            );
            let mut stmt = conn.prepare(&sql)?;
            for row in &rows {
                let values: Vec<Value> = row.iter().map(sqlite_value).collect();
                stmt.execute(rusqlite::params_from_iter(values))?;
            }
            Ok(())
        })
    }

    fn prepare_export(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, w| {
            let now = unix_now();
            loop {
                let before = w.taken.get();
                take_waiting(conn, w, now, None, 10_000)?;
                if w.taken.get() == before {
                    return Ok(());
                }
            }
        })
    }

    fn row_count(
        &self,
        table: &'static crate::storage::TableSpec,
    ) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.read(move |conn| {
            Ok(
                conn.query_row(&format!("SELECT count(*) FROM {}", table.name), [], |r| {
                    r.get(0)
                })?,
            )
        })
    }

    fn ticket_counter(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT value FROM counters WHERE name = 'ticket_number'",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0))
        })
    }

    fn finish_import(&self, ticket_counter: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, w| {
            // A range of entries per statement: what one statement
            // changes is kept in memory until it ends (mod.rs,
            // `temp_store`), so the whole table in one would hold all of
            // it.
            let last: i64 =
                conn.query_row("SELECT COALESCE(MAX(entry_id), 0) FROM outbox", [], |r| {
                    r.get(0)
                })?;
            let mut record = conn.prepare(include_str!(
                "../../../migrations/sqlite/record_outbox_on_entries.sql"
            ))?;
            let mut from = 0i64;
            while from <= last {
                let to = from.saturating_add(RECORD_ENTRIES - 1);
                record.execute([from, to])?;
                from = to.saturating_add(1);
            }
            drop(record);
            w.taken.set(taken_up_to(conn)?);
            // The index is derived data: made from the imported tickets
            // (and any ticket of this group, whose own row is then not
            // written a second time).
            w.search.clear();
            search::rebuild_index(conn)?;
            if ticket_counter > 0 {
                conn.execute(
                    "INSERT INTO counters (name, value) VALUES ('ticket_number', ?1)
                     ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    [ticket_counter],
                )?;
            }
            Ok(())
        })
    }
}
