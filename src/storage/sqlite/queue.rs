//! The queue and full-text search on SQLite: the shared statements of
//! `storage::queue_sql` on a pooled read connection (off the async
//! threads: a search may rank thousands of matches).
//!
//! Relevance is where the words are: a match in the subject weighs 5, in
//! the names and file names 2, in the bodies 1 (all the words of the
//! query's phrases in that column, side by side or not, as PostgreSQL
//! ranks them), then recency. Not FTS5's `bm25`: its IDF counts every
//! match of each phrase in the whole index on every query, a pass over a
//! common word's or a phrase's whole posting list (~5 ms for `printer`,
//! ~30 ms for `"out of toner"` at 400,000 tickets, growing with the
//! index) where the rest of a search reads only its most recent matches.
//! The column tests are two more index queries over those matches' rowid
//! range, for the marked copies of the subject's and the names' words
//! (migration 16, `domain::search::Mark`): their doclists hold those
//! columns' occurrences alone, where a column filter read every
//! occurrence in the range, bodies included (1.6 of 2.9 ms for
//! `printer`, 4 of 6.3 ms for `"out of toner"`, at 1,000,000 tickets).

use super::*;
use crate::domain::queue::{QueueCounts, QueuePage, QueueQuery};
use crate::domain::search::Mark;
use crate::domain::staff::Agent;
use crate::domain::views::TicketStatus;
use crate::storage::QueueStore;
use crate::storage::queue_sql::{
    self, Dialect, IndexCut, IndexSteps, MAX_RANKED, Param, ROW_COLUMNS, RecencyWalk, Rescore, Sql,
};

const DIALECT: Dialect = Dialect {
    numbered: false,
    dept_in_list: "t.dept_id IN (SELECT value FROM json_each(?))",
    number_in_list: "t.number IN (SELECT value FROM json_each(?))",
    text_matches: "SELECT ticket_search.rowid, -1.0, t.updated
                   FROM ticket_search CROSS JOIN tickets t ON t.id = ticket_search.rowid
                   WHERE ticket_search MATCH ?",
    search_join: "s CROSS JOIN tickets t ON t.id = s.id",
    text_id: "ticket_search.rowid",
    // Who may see a ticket is in the index (`scope`, migration 14): the
    // words are matched with it, so no match the viewer may not see is
    // read (the filters on `t` stay the rule).
    search_text: |s, viewer, q| {
        let scope = crate::domain::search::fts5_scope(viewer, q.department, q.assignee);
        s.to_fts5_scoped("subject body meta", scope.as_deref())
    },
    rescore: Some(Rescore {
        score: "c.score
            - 5.0 * (c.id IN (SELECT rowid FROM ticket_search
                              WHERE ticket_search MATCH ? AND rowid >= (SELECT min(id) FROM c)))
            - 2.0 * (c.id IN (SELECT rowid FROM ticket_search
                              WHERE ticket_search MATCH ? AND rowid >= (SELECT min(id) FROM c)))",
        steps: IndexSteps {
            cut: "SELECT rowid FROM ticket_search WHERE ticket_search MATCH ?
                  ORDER BY rowid DESC LIMIT ?",
            within: "SELECT rowid FROM ticket_search WHERE ticket_search MATCH ? AND rowid >= ?",
            updated: "SELECT id, updated FROM tickets WHERE id IN (SELECT value FROM json_each(?))",
            scored: "SELECT value ->> 0, value ->> 1 FROM json_each(?)",
        },
        texts: |s| {
            [
                s.to_fts5_marked(Mark::Subject).unwrap_or_default(),
                s.to_fts5_marked(Mark::Meta).unwrap_or_default(),
            ]
        },
    }),
};

fn bind(p: &Param) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match p {
        Param::Int(n) => Value::Integer(*n),
        Param::Text(t) => Value::Text(t.clone()),
        Param::Real(f) => Value::Real(*f),
        Param::Ints(list) => Value::Text(serde_json::Value::from(list.clone()).to_string()),
        Param::Texts(list) => Value::Text(serde_json::Value::from(list.clone()).to_string()),
    }
}

/// Runs `sql`, handing each row to `f`.
fn each_row(
    conn: &Connection,
    sql: &Sql,
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter().map(bind)))?;
    while let Some(r) = rows.next()? {
        f(r)?;
    }
    Ok(())
}

/// The ids a query of the index yields, given its text and a number
/// (the most to read, or the lowest rowid).
fn index_ids(conn: &Connection, sql: &str, text: &str, bound: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let ids = stmt
        .query_map(params![text, bound], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}

/// The page of an [`IndexCut`]: its steps one by one.
fn ranked_page(
    conn: &Connection,
    query: &QueueQuery,
    cut: &IndexCut,
) -> Result<Vec<(i64, f64)>, StoreError> {
    let steps = &cut.steps;
    let ids = index_ids(conn, steps.cut, &cut.text, MAX_RANKED)?;
    let Some(lowest) = ids.last().copied() else {
        return Ok(Vec::new());
    };
    let [subject, meta] = &cut.marked;
    let in_subject = index_ids(conn, steps.within, subject, lowest)?;
    let in_meta = index_ids(conn, steps.within, meta, lowest)?;
    let candidates = queue_sql::rank_cut(&ids, &in_subject, &in_meta, query.limit);
    let mut walk = RecencyWalk::new(&candidates, query.limit);
    if let Some(bound) = walk.walk_bound() {
        walk_recent(conn, &mut walk, bound)?;
    }
    // Read in one snapshot with the index: every match has its ticket;
    // one without is forgotten (as if it had not matched) and the
    // matches after it in its tier are read in its place.
    while !walk.decided() {
        let missing = walk.missing();
        if missing.is_empty() {
            break;
        }
        read_updated(conn, steps.updated, &mut walk, &missing)?;
        walk.forget_unmet(&missing);
    }
    Ok(walk.page())
}

/// The tickets, most recently updated first (then the highest id), on
/// the queue's index (`tickets_queue`: status, then `updated`): one range
/// per status (`?` each), merged by SQLite as they are read. Every
/// ticket has one of [`TicketStatus::ALL`] (the only values the product
/// writes, and what a queue row must parse as): one with another status
/// would never be met, and a page could be decided without it.
static RECENT_TICKETS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let one = "SELECT updated, id FROM tickets WHERE status = ?";
    let all: Vec<&str> = TicketStatus::ALL.iter().map(|_| one).collect();
    format!("{} ORDER BY 1 DESC, 2 DESC", all.join(" UNION ALL "))
});

/// Meets tickets most recently updated first, at most `bound` of them,
/// until `walk`'s page is decided.
fn walk_recent(conn: &Connection, walk: &mut RecencyWalk, bound: usize) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(&RECENT_TICKETS)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(
        TicketStatus::ALL.iter().map(|s| s.as_str()),
    ))?;
    let mut steps = 0usize;
    while let Some(r) = rows.next()? {
        walk.meet(r.get(1)?, text_at(r, 0)?);
        steps += 1;
        if steps >= bound || walk.decided() {
            break;
        }
    }
    Ok(())
}

/// Column `i` of `r`, text (not copied).
fn text_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str, StoreError> {
    r.get_ref(i)?
        .as_str()
        .map_err(|_| other("a ticket's `updated` is not UTF-8 text"))
}

/// Reads by id the `updated` of matches `ids` for `walk`.
fn read_updated(
    conn: &Connection,
    sql: &str,
    walk: &mut RecencyWalk,
    ids: &[i64],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([bind(&Param::Ints(ids.to_vec()))])?;
    while let Some(r) = rows.next()? {
        walk.meet(r.get(0)?, text_at(r, 1)?);
    }
    Ok(())
}

fn list(conn: &Connection, viewer: &Agent, query: &QueueQuery) -> Result<QueuePage, StoreError> {
    let cut = queue_sql::index_cut(&DIALECT, viewer, query);
    // The steps of a cut read one snapshot (a read transaction, rolled
    // back when dropped: it wrote nothing).
    let _snapshot = match cut {
        Some(_) => Some(conn.unchecked_transaction()?),
        None => None,
    };
    let sql = match cut {
        Some(cut) => {
            let page = ranked_page(conn, query, &cut)?;
            queue_sql::scored_page_sql(&DIALECT, &cut, viewer, query, &page)
        }
        None => queue_sql::list_sql(&DIALECT, viewer, query),
    };
    let mut rows = Vec::with_capacity(query.limit as usize + 1);
    each_row(conn, &sql, |r| {
        let mut values = Vec::with_capacity(ROW_COLUMNS.len());
        for (i, ty) in ROW_COLUMNS.iter().enumerate() {
            values.push(dump_value(r.get_ref(i)?, *ty));
        }
        let score: f64 = r.get(ROW_COLUMNS.len())?;
        rows.push(queue_sql::queue_row(values, score, query.sort)?);
        Ok(())
    })?;
    Ok(QueuePage::from_rows(query, rows))
}

fn counts(
    conn: &Connection,
    viewer: &Agent,
    today_start: jiff::Timestamp,
) -> Result<QueueCounts, StoreError> {
    let sql = queue_sql::counts_sql(&DIALECT, viewer, today_start);
    let mut rows = Vec::new();
    each_row(conn, &sql, |r| {
        rows.push((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
        Ok(())
    })?;
    let out = queue_sql::counts_from_rows(rows);
    Ok(out)
}

impl QueueStore for SqliteStore {
    fn list_queue<'a>(
        &'a self,
        viewer: &'a Agent,
        query: &'a QueueQuery,
    ) -> BoxFuture<'a, Result<QueuePage, StoreError>> {
        let (viewer, query) = (viewer.clone(), query.clone());
        self.read(move |conn| list(conn, &viewer, &query))
    }

    fn queue_counts<'a>(
        &'a self,
        viewer: &'a Agent,
        today_start: jiff::Timestamp,
    ) -> BoxFuture<'a, Result<QueueCounts, StoreError>> {
        let viewer = viewer.clone();
        self.read(move |conn| counts(conn, &viewer, today_start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::queue_sql::tests::{query, viewer};

    fn sql_for(pairs: &[(&str, &str)]) -> Sql {
        queue_sql::list_sql(&DIALECT, &viewer(), &query(pairs))
    }

    #[test]
    fn the_later_pages_score_with_the_weights_the_first_page_ranks_with() {
        // A first page is ranked in Rust (`queue_sql::rank_cut`), the
        // pages after it in SQL: its cursor's score must be theirs.
        let Some(r) = DIALECT.rescore else {
            panic!("SQLite re-scores")
        };
        let score = r.score.split_whitespace().collect::<Vec<_>>().join(" ");
        let subject = format!("- {:.1} * (c.id IN", queue_sql::SUBJECT_WEIGHT);
        let meta = format!("- {:.1} * (c.id IN", queue_sql::META_WEIGHT);
        assert_eq!(score.matches(&subject).count(), 1, "{score}");
        assert_eq!(score.matches(&meta).count(), 1, "{score}");
        assert!(score.starts_with("c.score "), "{score}");
        let subject_at = score.find(&subject).unwrap_or(usize::MAX);
        let meta_at = score.find(&meta).unwrap_or(0);
        // The first placeholder is the subject's text, the second the names'.
        assert!(subject_at < meta_at, "{score}");
    }

    #[test]
    fn only_a_first_page_filtered_by_what_the_index_holds_is_cut_from_the_index_alone() {
        // Its steps, and the page they choose, are tested on a real
        // database (`tests/api`, search); here, which queries take them.
        for (pairs, from_index) in [
            (&[("q", "printer"), ("status", "any")][..], true),
            (
                &[("q", "printer"), ("status", "any"), ("department", "2")],
                true,
            ),
            (
                &[("q", "printer"), ("status", "any"), ("assignee", "me")],
                true,
            ),
            (&[("q", "printer"), ("status", "open")], false),
            (
                &[("q", "printer"), ("status", "any"), ("priority", "2")],
                false,
            ),
            (
                &[("q", "printer"), ("status", "any"), ("topic", "1")],
                false,
            ),
            (&[("q", "printer 482913"), ("status", "any")], false),
            (
                &[("q", "printer"), ("status", "any"), ("sort", "-updated")],
                false,
            ),
        ] {
            let cut = queue_sql::index_cut(&DIALECT, &viewer(), &query(pairs));
            assert_eq!(cut.is_some(), from_index, "{pairs:?}");
            let sql = sql_for(pairs);
            // Every placeholder has its value, in order of appearance.
            assert_eq!(
                sql.text.matches('?').count(),
                sql.params.len(),
                "{pairs:?}: {}",
                sql.text
            );
        }
    }
}
