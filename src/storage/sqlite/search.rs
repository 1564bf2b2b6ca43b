//! The full-text index on SQLite (migration 10): an FTS5 table, one
//! contentless row per ticket (rowid = ticket id), written in the
//! ticket's own transaction.
//!
//! Contentless keeps no copy of the text, so a row cannot be extended:
//! when an entry is appended, the ticket's row is rebuilt from the
//! stored ticket ([`index_entry`]; a thread's words are bounded by
//! `SearchDoc`'s caps, so this stays cheap). Per-entry rows were the
//! alternative; they would make `printer toner` miss a ticket whose
//! subject says one and a reply the other.

use super::*;
use crate::domain::search::{Mark, marked_copy};
use crate::storage::BodyFormat;
use crate::storage::search::SearchDoc;

/// The migrations that make the index (anew); existing tickets are
/// indexed after them ([`rebuild_index`]).
pub(super) const MIGRATIONS: &[i64] = &[10, 14, 16, 17];

/// Indexes a ticket not yet in the index (the subject and names with
/// their marked copies, for ranking: migration 16): at once, or kept in `pending`
/// and written with the rest of its group just before the COMMIT
/// ([`flush_pending`]). FTS5 writes what it holds to disk at every
/// statement that opens a statement transaction (a ticket's insert, with
/// its trigger, does), so a row written per ticket cost a segment per
/// ticket, and merging them; written last, a group's rows make one.
pub(super) fn index_new_ticket(
    conn: &Connection,
    ticket_id: i64,
    doc: &SearchDoc,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO ticket_search (rowid, subject, body, meta, scope)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        ticket_id,
        marked_copy(&doc.subject, Mark::Subject),
        doc.body,
        marked_copy(&doc.meta, Mark::Meta),
        doc.scope
    ])?;
    Ok(())
}

/// Index writes kept for the group, made just before its COMMIT
/// ([`flush_pending`]): rows of new tickets, and tickets to re-index.
#[derive(Default)]
pub(super) struct PendingIndex {
    new: Vec<(i64, SearchDoc)>,
    reindex: Vec<i64>,
}

impl PendingIndex {
    /// Keeps a new ticket's row for [`flush_pending`].
    pub(super) fn push(&mut self, ticket_id: i64, doc: SearchDoc) {
        self.new.push((ticket_id, doc));
    }

    /// Forgets them (the transaction was rolled back).
    pub(super) fn clear(&mut self) {
        self.new.clear();
        self.reindex.clear();
    }
}

/// Writes what was kept for the group, before the COMMIT: the new
/// tickets' rows, then each re-indexed ticket once (read back from the
/// tables, so it holds every entry of the group). Made last, after the
/// group's other statements, the index writes of a whole group become
/// one FTS5 segment: written as each request ran, every later statement
/// of the group that opened a statement transaction flushed them as a
/// segment of their own, and merging those segments was most of a
/// reply's cost in the writer.
pub(super) fn flush_pending(
    conn: &Connection,
    pending: &mut PendingIndex,
) -> Result<(), StoreError> {
    let mut indexed = 0usize;
    for (ticket_id, doc) in pending.new.drain(..) {
        indexed += indexed_len(&doc);
        index_new_ticket(conn, ticket_id, &doc)?;
    }
    pending.reindex.sort_unstable();
    pending.reindex.dedup();
    for ticket_id in pending.reindex.drain(..) {
        let doc = load_doc(conn, ticket_id)?;
        indexed += indexed_len(&doc);
        conn.prepare_cached("DELETE FROM ticket_search WHERE rowid = ?1")?
            .execute([ticket_id])?;
        index_new_ticket(conn, ticket_id, &doc)?;
    }
    if indexed > 0 {
        conn.prepare_cached(
            "INSERT INTO ticket_search (ticket_search, rank) VALUES ('merge', ?1)",
        )?
        .execute([merge_pages(indexed)])?;
    }
    Ok(())
}

/// More segments than this in the index are worth a warning (a few
/// dozen is usual; FTS5 refuses to write at 2,000, `FTS5_MAX_SEGMENT`).
pub(super) const SEGMENTS_WARNING: u64 = 200;

/// How many segments the index has: the count at the head of FTS5's
/// structure record (row 10 of `ticket_search_data`: a 4-byte cookie, in
/// a version 2 record 4 more bytes `ff 00 00 01`, then the levels and
/// the segments as varints; `fts5StructureDecode` in SQLite's
/// fts5_index.c). 0 before anything was indexed.
pub(super) fn index_segments(conn: &Connection) -> Result<u64, StoreError> {
    let record: Option<Vec<u8>> = conn
        .prepare_cached("SELECT block FROM ticket_search_data WHERE id = 10")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let Some(b) = record else { return Ok(0) };
    let mut i = if b.get(4..8) == Some(&[0xff, 0, 0, 1][..]) {
        8
    } else {
        4
    };
    let bad = || other("the search index's structure record is not one FTS5 writes");
    let _levels = varint(&b, &mut i).ok_or_else(bad)?;
    varint(&b, &mut i).ok_or_else(bad)
}

/// An SQLite varint (big-endian groups of 7 bits, the ninth byte whole)
/// at `b[*i..]`, moving `i` past it; `None` past the end of `b`.
pub(super) fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for _ in 0..8 {
        let c = *b.get(*i)?;
        *i += 1;
        v = (v << 7) | u64::from(c & 0x7f);
        if c & 0x80 == 0 {
            return Some(v);
        }
    }
    let c = *b.get(*i)?;
    *i += 1;
    Some((v << 8) | u64::from(c))
}

/// Bytes of text a document puts in the index: its text, and about as
/// much again as its subject and names for their marked copies
/// ([`index_new_ticket`]).
fn indexed_len(doc: &SearchDoc) -> usize {
    doc.text_len() + doc.subject.len() + doc.meta.len()
}

/// The merge asked for with a group that indexed `bytes` of text: FTS5
/// pages (~4 KB) to write while merging segments (migration 15 turned
/// FTS5's own bursts off). The index takes ~a quarter of its text's
/// size, and each page written is merged again about once per level
/// (~10 at 1,000,000 tickets): a page of merge per KiB indexed keeps up
/// with that, with room to spare. Only levels of 4 segments or more
/// (`usermerge`) are merged, so an index that has caught up costs
/// nothing here; at least a few pages, so that small groups add up.
/// Deleted rows (a re-indexed ticket's old row) are dropped by these
/// merges alone: FTS5's own merging for them stalled (migration 17).
pub(super) fn merge_pages(bytes: usize) -> i64 {
    i64::try_from(bytes / 1024).unwrap_or(i64::MAX).max(8)
}

/// Re-indexes ticket `ticket_id` after an entry was appended to it (a
/// message, a staff response or note), or after it moved to another
/// department or assignee (its scope), in the same transaction: kept for
/// [`flush_pending`], which reads the ticket's subject, user, every entry
/// body and attachment name back from the tables, so it needs nothing
/// else.
pub(crate) fn index_entry(
    _conn: &Connection,
    pending: &mut PendingIndex,
    ticket_id: i64,
) -> Result<(), StoreError> {
    pending.reindex.push(ticket_id);
    Ok(())
}

/// The index writes of a filed email: a new ticket is indexed from what
/// was filed (with its group; `doc` when the caller made it already),
/// an appended entry re-indexes its ticket.
pub(super) fn index_email(
    conn: &Connection,
    pending: &mut PendingIndex,
    ticket_id: i64,
    email: &NewEmail,
    created: bool,
    doc: Option<&SearchDoc>,
) -> Result<(), StoreError> {
    if created {
        let doc = doc
            .cloned()
            .unwrap_or_else(|| SearchDoc::of_ticket(&email.ticket));
        pending.push(ticket_id, doc);
        Ok(())
    } else {
        index_entry(conn, pending, ticket_id)
    }
}

/// A stored ticket's document.
fn load_doc(conn: &Connection, ticket_id: i64) -> Result<SearchDoc, StoreError> {
    let (subject, name, email, dept, assignee): (String, String, String, Option<i64>, Option<i64>) =
        conn.prepare_cached(
            "SELECT t.subject, u.name, u.email, t.dept_id, t.assignee_id
             FROM tickets t JOIN users u ON u.id = t.user_id WHERE t.id = ?1",
        )?
        .query_row([ticket_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    let mut doc = SearchDoc {
        scope: crate::domain::search::scope_words(
            dept,
            assignee.map(crate::domain::staff::AgentId),
        ),
        ..SearchDoc::default()
    };
    crate::domain::search::push_index_text(&mut doc.subject, &subject);
    crate::domain::search::push_index_text(&mut doc.meta, &name);
    crate::domain::search::push_index_text(&mut doc.meta, &email);
    let mut names: Vec<(i64, String)> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT a.entry_id, a.name FROM attachments a JOIN thread_entries e ON e.id = a.entry_id
             WHERE e.ticket_id = ?1 ORDER BY a.entry_id, a.position",
        )?;
        let mut rows = stmt.query([ticket_id])?;
        while let Some(r) = rows.next()? {
            names.push((r.get(0)?, r.get(1)?));
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id, body, format FROM thread_entries WHERE ticket_id = ?1 ORDER BY id",
    )?;
    let mut rows = stmt.query([ticket_id])?;
    while let Some(r) = rows.next()? {
        let entry_id: i64 = r.get(0)?;
        let body: String = r.get(1)?;
        let format = parse_column(r, 2, BodyFormat::parse)?;
        let files: Vec<&str> = names
            .iter()
            .filter(|(e, _)| *e == entry_id)
            .map(|(_, n)| n.as_str())
            .collect();
        doc.push_entry(&body, format, &files);
    }
    Ok(doc)
}

/// Indexes every ticket anew: after migration 10 (tickets stored
/// before it) and after `migrate-data` imported tickets.
pub(super) fn rebuild_index(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("INSERT INTO ticket_search (ticket_search) VALUES ('delete-all')")?;
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM tickets ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in ids {
        index_new_ticket(conn, id, &load_doc(conn, id)?)?;
    }
    // Without FTS5's own merging (migration 15) the rows above end as
    // many segments: made one, as searches read them best.
    conn.execute_batch("INSERT INTO ticket_search (ticket_search) VALUES ('optimize')")?;
    Ok(())
}
