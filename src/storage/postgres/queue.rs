//! The queue and full-text search on PostgreSQL: the shared statements
//! of `storage::queue_sql` on the pool. `ts_rank` (normalised by
//! document length) ranks, over the weights the index row carries
//! (subject A, names and file names B, bodies D); the score is its
//! negation so that lower is better on both backends.

use super::*;
use crate::domain::queue::{QueueCounts, QueuePage, QueueQuery};
use crate::domain::staff::Agent;
use crate::storage::QueueStore;
use crate::storage::queue_sql::{self, Dialect, Param, ROW_COLUMNS, Sql};

const DIALECT: Dialect = Dialect {
    numbered: true,
    dept_in_list: "t.dept_id = ANY(?)",
    number_in_list: "t.number = ANY(?)",
    // The ticket is looked up match by match (`OFFSET 0` keeps the
    // planner from turning this into a merge join that walks every
    // ticket by id to meet a few thousand matches).
    text_matches:
        "SELECT m.ticket_id, -ts_rank(m.doc, to_tsquery('simple', ?), 1)::float8, t.updated
                   FROM ticket_search m
                   CROSS JOIN LATERAL (SELECT * FROM tickets t WHERE t.id = m.ticket_id OFFSET 0) t
                   WHERE m.doc @@ to_tsquery('simple', ?)",
    search_join: "s JOIN tickets t ON t.id = s.id",
    text_id: "m.ticket_id",
    rank_text: Some(|s| s.to_tsquery_ranked()),
    search_text: |s, _, _| s.to_tsquery(),
    rescore: None,
};

fn query(sql: &Sql) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.text.as_str()));
    for p in &sql.params {
        q = match p {
            Param::Int(n) => q.bind(*n),
            Param::Text(t) => q.bind(t.as_str()),
            Param::Real(f) => q.bind(*f),
            Param::Ints(list) => q.bind(list.as_slice()),
            Param::Texts(list) => q.bind(list.as_slice()),
        };
    }
    q
}

impl QueueStore for PgStore {
    fn list_queue<'a>(
        &'a self,
        viewer: &'a Agent,
        q: &'a QueueQuery,
    ) -> BoxFuture<'a, Result<QueuePage, StoreError>> {
        Box::pin(async move {
            let sql = queue_sql::list_sql(&DIALECT, viewer, q);
            // A search's best plan depends on its words (a rare word:
            // the GIN index; a common one: the newest tickets first,
            // stopping at MAX_RANKED), which a cached generic plan cannot
            // see: searches are planned with their values each time.
            let found = query(&sql)
                .persistent(q.search.is_none())
                .fetch_all(&self.pool)
                .await?;
            let mut rows = Vec::with_capacity(found.len());
            for r in &found {
                let values = pg_values(r, ROW_COLUMNS.iter().copied())?;
                let score: f64 = r.try_get(ROW_COLUMNS.len())?;
                rows.push(queue_sql::queue_row(values, score, q.sort)?);
            }
            Ok(QueuePage::from_rows(q, rows))
        })
    }

    fn queue_counts<'a>(
        &'a self,
        viewer: &'a Agent,
        today_start: jiff::Timestamp,
    ) -> BoxFuture<'a, Result<QueueCounts, StoreError>> {
        Box::pin(async move {
            let sql = queue_sql::counts_sql(&DIALECT, viewer, today_start);
            let mut rows = Vec::new();
            for r in query(&sql).fetch_all(&self.pool).await? {
                rows.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
            }
            let out = queue_sql::counts_from_rows(rows);
            Ok(out)
        })
    }
}
