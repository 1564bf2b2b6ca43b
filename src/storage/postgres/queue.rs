//! The queue and full-text search on PostgreSQL: the shared statements
//! of `storage::queue_sql` on the pool.
//!
//! Relevance is where the words are, as on SQLite (`sqlite/queue.rs`):
//! a match whose words are all in the subject weighs 5, in the names and
//! file names 2, in the bodies 1, then recency; the most recent
//! [`MAX_RANKED`] matches are ranked. A first page is read from the GIN
//! index alone ([`ranked_page`]): the matches that the viewer may see
//! (the scope lexemes of `search.rs`) a range of ids at a time, newest
//! first, so that a common word's newest matches cost a few ranges'
//! posting lists, not the word's whole list (279,000 entries for
//! `printer` at 1,000,000 tickets) nor a test of the newest rows'
//! `tsvector`s one by one (28,700 of them for a department's agent);
//! then the marked copies of the subject's and the names' words among
//! them. `ts_rank` is not used: it reads every match's `tsvector`.

use super::*;
use crate::domain::queue::{QueueCounts, QueuePage, QueueQuery};
use crate::domain::search::Mark;
use crate::domain::staff::Agent;
use crate::storage::QueueStore;
use crate::storage::queue_sql::{
    self, Dialect, IndexCut, IndexSteps, MAX_RANKED, Param, ROW_COLUMNS, Rescore, Sql,
};

use super::search::{ID_RANGE, range_lexeme};

const DIALECT: Dialect = Dialect {
    numbered: true,
    dept_in_list: "t.dept_id = ANY(?)",
    number_in_list: "t.number = ANY(?)",
    // The ticket is looked up match by match (`OFFSET 0` keeps the
    // planner from turning this into a merge join that walks every
    // ticket by id to meet a few thousand matches).
    text_matches: "SELECT m.ticket_id, CAST(-1 AS DOUBLE PRECISION), t.updated
                   FROM ticket_search m
                   CROSS JOIN LATERAL (SELECT * FROM tickets t WHERE t.id = m.ticket_id OFFSET 0) t
                   WHERE m.doc @@ to_tsquery('simple', ?)",
    search_join: "s JOIN tickets t ON t.id = s.id",
    text_id: "m.ticket_id",
    search_text: |s, _, _| s.to_tsquery(),
    rescore: Some(Rescore {
        score: "c.score
            - 5.0 * CAST(c.id IN (SELECT ticket_id FROM ticket_search
                                  WHERE doc @@ CAST(? AS tsquery)
                                    AND ticket_id >= (SELECT min(id) FROM c)) AS INTEGER)
            - 2.0 * CAST(c.id IN (SELECT ticket_id FROM ticket_search
                                  WHERE doc @@ CAST(? AS tsquery)
                                    AND ticket_id >= (SELECT min(id) FROM c)) AS INTEGER)",
        steps: IndexSteps {
            // `ranked_page` assembles its reads of the index from these
            // (`$1` the words, `$2` lexemes of the index's own).
            // (Two conditions, not one `&&`: a query whose words the
            // parser drops matches nothing, where `&&` would keep the
            // other side alone.)
            cut: "SELECT ticket_id FROM ticket_search
                  WHERE doc @@ to_tsquery('simple', $1) AND doc @@ CAST($2 AS tsquery)",
            within: "SELECT ticket_id FROM ticket_search
                     WHERE doc @@ CAST($1 AS tsquery) AND doc @@ CAST($2 AS tsquery)",
            updated: "SELECT id, updated FROM tickets WHERE id = ANY($1)",
            scored: "SELECT CAST(value ->> 0 AS BIGINT), CAST(value ->> 1 AS DOUBLE PRECISION)
                     FROM jsonb_array_elements(CAST(? AS jsonb))",
        },
        texts: |s| {
            [
                s.to_tsquery_marked(Mark::Subject).unwrap_or_default(),
                s.to_tsquery_marked(Mark::Meta).unwrap_or_default(),
            ]
        },
    }),
};

/// The ids among `ids` whose rows match the words query `text` (its
/// phrases tested), each row found by its id.
async fn exact_matches(
    conn: &mut sqlx::PgConnection,
    text: &str,
    ids: &[i64],
) -> Result<Vec<i64>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = sqlx::query_scalar(
        "SELECT ticket_id FROM ticket_search
         WHERE ticket_id = ANY($2) AND (doc @@ to_tsquery('simple', $1)) IS TRUE",
    )
    .bind(text)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(found)
}

/// `updated` of the tickets `ids`.
async fn updated_of(
    conn: &mut sqlx::PgConnection,
    steps: &IndexSteps,
    ids: &[i64],
) -> Result<HashMap<i64, String>, StoreError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(steps.updated))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Most id ranges one read of the index names (a `tsquery` of that many
/// alternatives).
const MAX_RANGES: i64 = 64;

/// The matches of the words `words` and the condition `own` (a
/// `tsquery` literal of the index's own lexemes, or none) with an id
/// below `below` (none: any), newest first, at most `limit` of them.
async fn matches_below(
    conn: &mut sqlx::PgConnection,
    words: &str,
    own: Option<&str>,
    below: i64,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    // `ticket_id + 0`: sorted after the GIN index found the matches,
    // never by walking the primary key backwards testing each row.
    let ids = match own {
        Some(own) => {
            sqlx::query_scalar(
                "SELECT ticket_id FROM ticket_search
                 WHERE doc @@ to_tsquery('simple', $1) AND doc @@ CAST($2 AS tsquery)
                   AND ticket_id < $3
                 ORDER BY ticket_id + 0 DESC LIMIT $4",
            )
            .bind(words)
            .bind(own)
            .bind(below)
            .bind(limit)
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query_scalar(
                "SELECT ticket_id FROM ticket_search
                 WHERE doc @@ to_tsquery('simple', $1) AND ticket_id < $2
                 ORDER BY ticket_id + 0 DESC LIMIT $3",
            )
            .bind(words)
            .bind(below)
            .bind(limit)
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    Ok(ids)
}

/// `a & b` of two `tsquery` literals, either possibly absent.
fn and(a: Option<&str>, b: &str) -> String {
    match a {
        Some(a) => format!("({a}) & ({b})"),
        None => b.to_string(),
    }
}

/// The id ranges `lo..=hi` as a `tsquery` literal of alternatives.
fn ranges(lo: i64, hi: i64) -> String {
    let any: Vec<String> = (lo..=hi).map(range_lexeme).collect();
    format!("({})", any.join(" | "))
}

/// The most recent [`MAX_RANKED`] matches of `text` (the words) that
/// `scope` keeps, newest first: a range of ids at a time from the
/// newest, as many ranges next as the matches so far say are needed (at
/// least twice as many each time, at most [`MAX_RANGES`]); when the
/// rest holds fewer matches than are needed at that rate, the rest by
/// id at once (a rare word: its own posting list is short). With `exact` (a
/// query with phrases, `text` being its words alone), the matches of
/// `text` read are then tested against `exact` row by row, and only
/// those that match it count: the cut is of the exact matches, as on
/// every other page, while the index, not a test per row, finds the
/// candidates.
async fn newest_matches(
    conn: &mut sqlx::PgConnection,
    steps: &IndexSteps,
    text: &str,
    exact: Option<&str>,
    scope: Option<&str>,
) -> Result<Vec<i64>, StoreError> {
    let top: Option<i64> = sqlx::query_scalar("SELECT max(ticket_id) FROM ticket_search")
        .fetch_one(&mut *conn)
        .await?;
    let Some(top) = top else {
        return Ok(Vec::new());
    };
    let mut ids: Vec<i64> = Vec::new();
    // The highest range not read yet, how many ranges to read next.
    let (mut next, mut width, mut few_left) = (top.div_euclid(ID_RANGE), 1i64, false);
    while next >= 0 && (ids.len() as i64) < MAX_RANKED {
        if few_left || width > next {
            let mut below = (next + 1).saturating_mul(ID_RANGE);
            loop {
                let need = MAX_RANKED - ids.len() as i64;
                // Four times as many candidates as are needed when
                // they are to be tested.
                let ask = if exact.is_some() { need * 4 } else { need };
                let found = matches_below(conn, text, scope, below, ask).await?;
                let (Some(&lowest), done) = (found.last(), (found.len() as i64) < ask) else {
                    break;
                };
                below = lowest;
                let still = (MAX_RANKED as usize).saturating_sub(ids.len());
                ids.extend(only_exact(conn, exact, found, still).await?);
                if done || ids.len() as i64 >= MAX_RANKED {
                    break;
                }
            }
            break;
        }
        let lo = next - width + 1;
        let own = and(scope, &ranges(lo, next));
        let mut found: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(steps.cut))
            .bind(text)
            .bind(&own)
            .fetch_all(&mut *conn)
            .await?;
        found.sort_unstable_by(|a, b| b.cmp(a));
        let still = (MAX_RANKED as usize).saturating_sub(ids.len());
        ids.extend(only_exact(conn, exact, found, still).await?);
        next = lo - 1;
        // When the rest holds fewer matches than are still needed at
        // that rate (a word not seen in a whole range is rarer than one
        // in 4,096), the rest at once: its own posting list is short.
        // Else enough ranges for the matches still needed at the rate
        // seen so far over the ids read (the newest range is partly
        // filled), a fifth more, and at least twice as many as last
        // time (a burst of matches among the newest tickets must not
        // make a read per range).
        let seen = ids.len() as i64;
        let read = top + 1 - lo * ID_RANGE;
        let left = (MAX_RANKED - seen).max(0);
        let rest = lo * ID_RANGE;
        few_left = seen.saturating_mul(rest) <= left.saturating_mul(read) && read >= ID_RANGE;
        // At most MAX_RANGES at a time: the rest at once reads the
        // whole posting list of the words below, once per batch.
        width = if seen == 0 {
            width * 4
        } else {
            let ids_needed = (left * read * 6) / (seen * 5) + 1;
            ((ids_needed + ID_RANGE - 1) / ID_RANGE).max(width * 2)
        }
        .min(MAX_RANGES);
    }
    ids.truncate(MAX_RANKED as usize);
    Ok(ids)
}

/// Candidates tested against a phrase at a time ([`only_exact`]).
const EXACT_CHUNK: usize = 512;

/// The newest of `ids` (newest first) that match `exact`, in their
/// order: tested [`EXACT_CHUNK`] at a time from the newest, until
/// `need` matched (the rest are older than every match a cut keeps);
/// all of them without `exact`. A row's test reads its `tsvector`
/// (~11 µs at 1,000,000 tickets), and a phrase's candidates are read
/// four times as many as needed.
async fn only_exact(
    conn: &mut sqlx::PgConnection,
    exact: Option<&str>,
    ids: Vec<i64>,
    need: usize,
) -> Result<Vec<i64>, StoreError> {
    let Some(exact) = exact else {
        return Ok(ids);
    };
    let mut kept = Vec::new();
    for chunk in ids.chunks(EXACT_CHUNK) {
        if kept.len() >= need {
            break;
        }
        let found: std::collections::HashSet<i64> = exact_matches(conn, exact, chunk)
            .await?
            .into_iter()
            .collect();
        kept.extend(chunk.iter().copied().filter(|id| found.contains(id)));
    }
    Ok(kept)
}

/// The ids among `ids` (a cut, newest first) that match the marked
/// `tsquery` literal `marked` (others may come with them: the caller
/// keeps the cut's).
async fn marked_within(
    conn: &mut sqlx::PgConnection,
    steps: &IndexSteps,
    marked: &str,
    scope: Option<&str>,
    ids: &[i64],
) -> Result<Vec<i64>, StoreError> {
    let (Some(&newest), Some(&lowest)) = (ids.first(), ids.last()) else {
        return Ok(Vec::new());
    };
    if marked.is_empty() {
        return Ok(Vec::new());
    }
    let (lo, hi) = (lowest.div_euclid(ID_RANGE), newest.div_euclid(ID_RANGE));
    // A full cut over many ranges (a common word): by its ranges, at
    // most MAX_RANGES at a time; a cut that is not full (the word's
    // matches are few): by id at once.
    let found = if hi - lo < MAX_RANGES || ids.len() as i64 >= MAX_RANKED {
        let mut found = Vec::new();
        let mut top = hi;
        while top >= lo {
            let bottom = (top - MAX_RANGES + 1).max(lo);
            let part: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(steps.within))
                .bind(marked)
                .bind(and(scope, &ranges(bottom, top)))
                .fetch_all(&mut *conn)
                .await?;
            found.extend(part);
            top = bottom - 1;
        }
        found
    } else {
        sqlx::query_scalar(
            "SELECT ticket_id FROM ticket_search WHERE doc @@ CAST($1 AS tsquery) AND ticket_id >= $2",
        )
        .bind(marked)
        .bind(lowest)
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?
    };
    Ok(found)
}

/// The page of an [`IndexCut`]: the newest matches, those with the
/// words in the subject and in the names, scored ([`queue_sql::rank_cut`]),
/// the ones that can reach the page looked up for `updated`, ordered.
async fn ranked_page(
    conn: &mut sqlx::PgConnection,
    viewer: &Agent,
    query: &QueueQuery,
    cut: &IndexCut,
) -> Result<Vec<(i64, f64)>, StoreError> {
    let steps = &cut.steps;
    let scope = crate::domain::search::tsquery_scope(viewer, query.department, query.assignee);
    // A phrase is tested by reading the row's `tsvector` (~15 µs each at
    // 1,000,000 tickets): its candidates are found by its words.
    let words = query
        .search
        .as_ref()
        .filter(|s| s.has_phrases())
        .and_then(|s| s.to_tsquery_words());
    let (text, exact) = match &words {
        Some(words) => (words.as_str(), Some(cut.text.as_str())),
        None => (cut.text.as_str(), None),
    };
    let ids = newest_matches(conn, steps, text, exact, scope.as_deref()).await?;
    let [subject, meta] = &cut.marked;
    let in_subject = marked_within(conn, steps, subject, scope.as_deref(), &ids).await?;
    let in_meta = marked_within(conn, steps, meta, scope.as_deref(), &ids).await?;
    // A later page: every match at or below the cursor's score, each
    // looked up (the page is those after the cursor in the order).
    let scored = match &query.after {
        None => queue_sql::rank_cut(&ids, &in_subject, &in_meta, query.limit),
        Some(after) => {
            let floor = match &after.key {
                crate::domain::queue::SortKey::Score(s, _) => *s,
                _ => f64::INFINITY,
            };
            queue_sql::rank_cut(&ids, &in_subject, &in_meta, u32::MAX - 1)
                .into_iter()
                .filter(|(_, score)| *score >= floor)
                .collect()
        }
    };
    let list: Vec<i64> = scored.iter().map(|(id, _)| *id).collect();
    let mut updated = updated_of(conn, steps, &list).await?;
    // Read in one snapshot with the index: every match has its ticket;
    // one without would be left out.
    let rows = scored
        .into_iter()
        .filter_map(|(id, score)| updated.remove(&id).map(|u| (id, score, u)))
        .filter(|(id, score, u)| queue_sql::after_cursor(query.after.as_ref(), *score, u, *id))
        .collect();
    Ok(queue_sql::order_page(rows, query.limit))
}

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

/// The page of the rows a list statement found.
fn page_of(q: &QueueQuery, found: &[PgRow]) -> Result<QueuePage, StoreError> {
    let mut rows = Vec::with_capacity(found.len());
    for r in found {
        let values = pg_values(r, ROW_COLUMNS.iter().copied())?;
        let score: f64 = r.try_get(ROW_COLUMNS.len())?;
        rows.push(queue_sql::queue_row(values, score, q.sort)?);
    }
    Ok(QueuePage::from_rows(q, rows))
}

impl QueueStore for PgStore {
    fn list_queue<'a>(
        &'a self,
        viewer: &'a Agent,
        q: &'a QueueQuery,
    ) -> BoxFuture<'a, Result<QueuePage, StoreError>> {
        Box::pin(async move {
            if let Some(cut) = queue_sql::index_cut_paged(&DIALECT, viewer, q) {
                // The steps of a cut read one snapshot.
                let mut tx = self.pool.begin().await?;
                tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .await?;
                let page = ranked_page(&mut tx, viewer, q, &cut).await?;
                let sql = queue_sql::scored_page_sql(&DIALECT, &cut, viewer, q, &page);
                let found = query(&sql).fetch_all(&mut *tx).await?;
                tx.rollback().await?;
                return page_of(q, &found);
            }
            let sql = queue_sql::list_sql(&DIALECT, viewer, q);
            // A search's best plan depends on its words (a rare word:
            // the GIN index; a common one: the newest tickets first,
            // stopping at MAX_RANKED), which a cached generic plan cannot
            // see: searches are planned with their values each time.
            let found = query(&sql)
                .persistent(q.search.is_none())
                .fetch_all(&self.pool)
                .await?;
            page_of(q, &found)
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
