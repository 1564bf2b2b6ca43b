//! The full-text index on PostgreSQL (migration 10): a `tsvector` per
//! ticket in `ticket_search` with a GIN index, written in the ticket's
//! own statement (`tickets::insert_ticket_sql`'s `s` part) or
//! transaction ([`index_entry`]).
//!
//! Besides the words (through the `simple` parser), a row holds lexemes
//! of the index's own (migration 18, `domain::search::PG_OWN`), so that
//! a search is answered by the GIN index without reading `tsvector`s:
//! who may see the ticket (its scope terms), a marked copy of the
//! subject's and the names' words (ranking), and the range of ids the
//! ticket is in ([`ID_RANGE`]), with which the newest matches of a common
//! word are read a range at a time (`queue.rs`) instead of building the
//! word's whole posting list or testing the newest rows one by one.

use super::*;
use crate::domain::search::{Mark, pg_own_lexemes};
use crate::storage::search::SearchDoc;

/// The migrations after which every ticket is indexed anew, in their
/// transaction ([`rebuild_index`]): 10 made the index, 18 added the
/// lexemes of its own.
pub(super) const MIGRATIONS: &[i64] = &[10, 18];

/// Tickets per id range: a row holds `~b` and its id divided by this.
/// The statements below write it as a literal; a test checks they agree.
pub(crate) const ID_RANGE: i64 = 4096;

/// The lexeme of the id range `range` (of [`ID_RANGE`] ids).
pub(crate) fn range_lexeme(range: i64) -> String {
    format!("'{}b{range}'", crate::domain::search::PG_OWN)
}

/// A ticket's `tsvector` from its three parts (`$n` subject, body,
/// meta), the lexemes of its own (`own`, a `tsvector` literal of
/// [`own_lexemes`]) and its id (for its id range).
macro_rules! doc_sql {
    ($subject:literal, $body:literal, $meta:literal, $own:literal, $id:literal) => {
        concat!(
            "setweight(to_tsvector('simple', ",
            $subject,
            "), 'A') || setweight(to_tsvector('simple', ",
            $meta,
            "), 'B') || to_tsvector('simple', ",
            $body,
            ") || CAST(",
            $own,
            " AS tsvector) || array_to_tsvector(ARRAY['~b' || (",
            $id,
            " / 4096)])"
        )
    };
}

/// The lexemes of its own a document adds (a `tsvector` literal): its
/// scope terms and the marked copies of its subject's and names' words.
pub(super) fn own_lexemes(doc: &SearchDoc) -> String {
    [
        pg_own_lexemes(&doc.scope, ""),
        pg_own_lexemes(&doc.subject, Mark::Subject.prefix()),
        pg_own_lexemes(&doc.meta, Mark::Meta.prefix()),
    ]
    .join(" ")
}

/// The part of a new ticket's statement (`tickets::insert_ticket_sql`)
/// that indexes it: `$43` subject, `$44` body, `$45` meta words
/// ([`SearchDoc`]), `$46` its own lexemes ([`own_lexemes`]); `t` the
/// inserted ticket.
macro_rules! search_part {
    () => {
        concat!(
            "s AS (
                 INSERT INTO ticket_search (ticket_id, doc) SELECT t.id, ",
            doc_sql!("$43", "$44", "$45", "$46", "t.id"),
            " FROM t
             ), "
        )
    };
}

/// Adds an entry appended to ticket `ticket_id` (a message, a staff
/// response or note) to its index row: call it on the transaction that
/// inserts the entry. `attachment_names` are the entry's files. A row
/// near PostgreSQL's 1 MB `tsvector` limit is left as it is (the thread
/// stays findable by its beginning) rather than failing the write.
pub(crate) async fn index_entry(
    conn: &mut sqlx::PgConnection,
    ticket_id: i64,
    body: &str,
    format: crate::storage::BodyFormat,
    attachment_names: &[&str],
) -> Result<(), StoreError> {
    let mut doc = SearchDoc::default();
    doc.push_entry(body, format, attachment_names);
    let marked = pg_own_lexemes(&doc.meta, Mark::Meta.prefix());
    sqlx::query(
        "UPDATE ticket_search
         SET doc = doc || setweight(to_tsvector('simple', $3), 'B') || to_tsvector('simple', $2)
                   || CAST($4 AS tsvector)
         WHERE ticket_id = $1
           AND octet_length(doc::text) + 3 * (octet_length($2) + octet_length($3)) < 1000000",
    )
    .bind(ticket_id)
    .bind(&doc.body)
    .bind(&doc.meta)
    .bind(&marked)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes who may see ticket `ticket_id` (its department and assignee
/// changed) into its index row: its scope lexemes replaced.
pub(super) async fn index_scope(
    conn: &mut sqlx::PgConnection,
    ticket_id: i64,
    department: Option<i64>,
    assignee: Option<crate::domain::staff::AgentId>,
) -> Result<(), StoreError> {
    let scope = pg_own_lexemes(
        &crate::domain::search::scope_words(department, assignee),
        "",
    );
    sqlx::query(
        "UPDATE ticket_search
         SET doc = ts_delete(doc, ARRAY(SELECT u.lexeme FROM unnest(doc) u
                                        WHERE u.lexeme LIKE '~d%' OR u.lexeme LIKE '~a%'))
                   || CAST($2 AS tsvector)
         WHERE ticket_id = $1",
    )
    .bind(ticket_id)
    .bind(&scope)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// [`index_entry`] for an entry as intake files it.
pub(super) async fn index_new_entry(
    conn: &mut sqlx::PgConnection,
    ticket_id: i64,
    e: &NewEntry,
) -> Result<(), StoreError> {
    let names: Vec<&str> = e.attachments.iter().map(|a| a.name.as_str()).collect();
    index_entry(conn, ticket_id, &e.body, e.format, &names).await
}

/// A ticket's id, subject, user's name and address, department and
/// assignee, as [`rebuild_index`] reads them.
type TicketToIndex = (i64, String, String, String, Option<i64>, Option<i64>);

/// Indexes every ticket anew, a thousand at a time: after migrations 10
/// and 18 ([`MIGRATIONS`]) and after `migrate-data` imported tickets.
pub(super) async fn rebuild_index(conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM ticket_search")
        .execute(&mut *conn)
        .await?;
    let mut after = 0i64;
    loop {
        let tickets: Vec<TicketToIndex> = sqlx::query_as(
            "SELECT t.id, t.subject, u.name, u.email, t.dept_id, t.assignee_id
             FROM tickets t JOIN users u ON u.id = t.user_id
             WHERE t.id > $1 ORDER BY t.id LIMIT 1000",
        )
        .bind(after)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = tickets.last() else {
            return Ok(());
        };
        after = last.0;
        let ids: Vec<i64> = tickets.iter().map(|t| t.0).collect();
        let entries: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT ticket_id, id, body, format FROM thread_entries
             WHERE ticket_id = ANY($1) ORDER BY ticket_id, id",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let files: Vec<(i64, String)> = sqlx::query_as(
            "SELECT a.entry_id, a.name FROM attachments a JOIN thread_entries e ON e.id = a.entry_id
             WHERE e.ticket_id = ANY($1) ORDER BY a.entry_id, a.position",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let (mut subjects, mut bodies, mut metas, mut owns) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, subject, name, email, dept, assignee) in &tickets {
            let mut doc = SearchDoc {
                scope: crate::domain::search::scope_words(
                    *dept,
                    assignee.map(crate::domain::staff::AgentId),
                ),
                ..SearchDoc::default()
            };
            crate::domain::search::push_index_text(&mut doc.subject, subject);
            crate::domain::search::push_index_text(&mut doc.meta, name);
            crate::domain::search::push_index_text(&mut doc.meta, email);
            for (_, entry_id, body, format) in entries.iter().filter(|e| e.0 == *id) {
                let names: Vec<&str> = files
                    .iter()
                    .filter(|f| f.0 == *entry_id)
                    .map(|f| f.1.as_str())
                    .collect();
                let format = crate::storage::BodyFormat::parse(format).ok_or_else(|| {
                    other(format!("entry {entry_id}: unexpected format {format:?}"))
                })?;
                doc.push_entry(body, format, &names);
            }
            owns.push(own_lexemes(&doc));
            subjects.push(doc.subject);
            bodies.push(doc.body);
            metas.push(doc.meta);
        }
        sqlx::query(concat!(
            "INSERT INTO ticket_search (ticket_id, doc)
             SELECT x.id, ",
            doc_sql!("x.subject", "x.body", "x.meta", "x.own", "x.id"),
            " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
                 AS x(id, subject, body, meta, own)"
        ))
        .bind(&ids)
        .bind(&subjects)
        .bind(&bodies)
        .bind(&metas)
        .bind(&owns)
        .execute(&mut *conn)
        .await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statements_write_the_id_range_the_searches_read() {
        let range = format!(" / {ID_RANGE})])");
        assert!(doc_sql!("a", "b", "c", "d", "e").ends_with(&range));
        assert!(search_part!().contains(&range));
        assert_eq!(range_lexeme(244), "'~b244'");
        assert!(doc_sql!("a", "b", "c", "d", "e").contains("ARRAY['~b' || ("));
    }
}
