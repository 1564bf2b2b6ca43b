//! The full-text index on PostgreSQL (migration 10): a `tsvector` per
//! ticket in `ticket_search` with a GIN index, written in the ticket's
//! own statement (`tickets::insert_ticket_sql`'s `s` part) or
//! transaction ([`index_entry`]).

use super::*;
use crate::storage::search::SearchDoc;

/// The migration that creates the index; existing tickets are indexed
/// right after it runs, in its transaction ([`rebuild_index`]).
pub(super) const MIGRATION: i64 = 10;

/// A ticket's `tsvector` from its three parts (`$n` subject, body, meta).
macro_rules! doc_sql {
    ($subject:literal, $body:literal, $meta:literal) => {
        concat!(
            "setweight(to_tsvector('simple', ",
            $subject,
            "), 'A') || setweight(to_tsvector('simple', ",
            $meta,
            "), 'B') || to_tsvector('simple', ",
            $body,
            ")"
        )
    };
}

/// The part of a new ticket's statement (`tickets::insert_ticket_sql`)
/// that indexes it: `$43` subject, `$44` body, `$45` meta words
/// ([`SearchDoc`]); `t` the inserted ticket.
macro_rules! search_part {
    () => {
        concat!(
            "s AS (
                 INSERT INTO ticket_search (ticket_id, doc) SELECT t.id, ",
            doc_sql!("$43", "$44", "$45"),
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
    sqlx::query(
        "UPDATE ticket_search
         SET doc = doc || setweight(to_tsvector('simple', $3), 'B') || to_tsvector('simple', $2)
         WHERE ticket_id = $1
           AND octet_length(doc::text) + 3 * (octet_length($2) + octet_length($3)) < 1000000",
    )
    .bind(ticket_id)
    .bind(&doc.body)
    .bind(&doc.meta)
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

/// Indexes every ticket anew, a thousand at a time: after migration 10
/// (tickets stored before it) and after `migrate-data` imported tickets.
pub(super) async fn rebuild_index(conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM ticket_search")
        .execute(&mut *conn)
        .await?;
    let mut after = 0i64;
    loop {
        let tickets: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT t.id, t.subject, u.name, u.email FROM tickets t JOIN users u ON u.id = t.user_id
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
        let (mut subjects, mut bodies, mut metas) = (Vec::new(), Vec::new(), Vec::new());
        for (id, subject, name, email) in &tickets {
            let mut doc = SearchDoc::default();
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
            subjects.push(doc.subject);
            bodies.push(doc.body);
            metas.push(doc.meta);
        }
        sqlx::query(concat!(
            "INSERT INTO ticket_search (ticket_id, doc)
             SELECT x.id, ",
            doc_sql!("x.subject", "x.body", "x.meta"),
            " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS x(id, subject, body, meta)"
        ))
        .bind(&ids)
        .bind(&subjects)
        .bind(&bodies)
        .bind(&metas)
        .execute(&mut *conn)
        .await?;
    }
}
