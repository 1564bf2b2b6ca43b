//! SQL that both backends run as it is: written once, with `$N`
//! placeholders. SQLite reads `$N` as a named parameter numbered by
//! first appearance, so each statement here names `$1`, `$2`, … in
//! that order and binds positionally alike on both (checked by a test).
//! Statements that differ by backend stay in their backend's module.

/// Whether a ticket number is taken.
pub(crate) const TICKET_EXISTS: &str = "SELECT id FROM tickets WHERE number = $1";

/// An entry's file (its blob is stored apart, once per SHA-256).
pub(crate) const INSERT_ATTACHMENT: &str =
    "INSERT INTO attachments (entry_id, position, sha256, name, content_type, inline, content_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

/// The first Message-ID of a ticket's mail of one kind (`$1` its index) of ticket `$2` before outbox row `$3`.
pub(crate) const FIRST_EARLIER_MAIL: &str =
    "SELECT o.message_id FROM thread_entries e JOIN outbox o ON o.id = e.id * 4 + $1
     WHERE e.ticket_id = $2 AND o.id < $3 ORDER BY e.id LIMIT 1";

/// The latest Message-ID of a ticket's mail of one kind (`$1` its index) of ticket `$2` before outbox row `$3`.
pub(crate) const LATEST_EARLIER_MAIL: &str =
    "SELECT o.message_id FROM thread_entries e JOIN outbox o ON o.id = e.id * 4 + $1
     WHERE e.ticket_id = $2 AND o.id < $3 ORDER BY e.id DESC LIMIT 1";

/// The ticket whose thread holds a Message-ID.
pub(crate) const THREAD_BY_MESSAGE_ID: &str =
    "SELECT t.id, t.number, t.dept_id FROM thread_entries e JOIN tickets t ON t.id = e.ticket_id
     WHERE e.message_id = $1";

/// The ticket an outgoing Message-ID of ours names (the id carries the ticket id; the row proves it is ours).
pub(crate) const THREAD_BY_OUR_MESSAGE_ID: &str = "SELECT t.id, t.number, t.dept_id FROM tickets t
     JOIN thread_entries e ON e.ticket_id = t.id
     JOIN outbox o ON o.id BETWEEN e.id * 4 AND e.id * 4 + 3
     WHERE t.id = $1 AND o.message_id = $2";

/// The ticket `[#number]` names, when the sender is its user (ASCII
/// case-insensitive on both backends).
pub(crate) const THREAD_BY_NUMBER_FROM_USER: &str =
    "SELECT t.id, t.number, t.dept_id FROM tickets t JOIN users u ON u.id = t.user_id
     WHERE t.number = $1 AND lower(u.email) = lower($2)";

/// A row when a Message-ID was filed already, with the ticket it went
/// to (none for a bounce that was only logged). A filed message's id is
/// unique in its entry (`thread_entries.message_id`); `processed_messages`
/// holds the claims: on SQLite only of messages filed without an entry
/// of that id (logged bounces) and of those filed before schema 19's
/// binary, on PostgreSQL of every message.
pub(crate) const MESSAGE_TICKET: &str =
    "SELECT t.number FROM thread_entries e JOIN tickets t ON t.id = e.ticket_id
     WHERE e.message_id = $1
     UNION ALL
     SELECT t.number FROM processed_messages p LEFT JOIN tickets t ON t.id = p.ticket_id
     WHERE p.message_id = $1
     LIMIT 1";

/// An email's raw message, compressed.
pub(crate) const INSERT_RAW_MESSAGE: &str =
    "INSERT INTO raw_messages (entry_id, compressed) VALUES ($1, $2)";

/// The parts an email's entry left out.
pub(crate) const SET_DROPPED_PARTS: &str = "UPDATE thread_entries SET dropped = $1 WHERE id = $2";

/// Where a claimed Message-ID went.
pub(crate) const SET_PROCESSED_MESSAGE_TICKET: &str =
    "UPDATE processed_messages SET ticket_id = $1 WHERE message_id = $2";

/// A ticket and its user, by number.
pub(crate) const TICKET_BY_NUMBER: &str =
    "SELECT t.id, t.number, t.subject, t.status, t.source, t.priority_id, t.priority_name,
     t.topic_id, t.topic_name, t.dept_id, t.dept_name, u.name, u.email, t.ip, t.created,
     t.assignee_id, a.name, t.updated, t.last_message_at, t.status_changed, t.version
     FROM tickets t JOIN users u ON u.id = t.user_id LEFT JOIN agents a ON a.id = t.assignee_id
     WHERE t.number = $1";

/// A ticket's stored change events, oldest first.
pub(crate) const TICKET_CHANGES: &str =
    "SELECT created, actor_kind, actor_id, actor_name, action, detail
     FROM ticket_events WHERE ticket_id = $1 ORDER BY id";

/// A ticket's form values.
pub(crate) const TICKET_FIELDS: &str =
    "SELECT name, value FROM field_values WHERE ticket_id = $1 ORDER BY form, name";

/// A ticket's thread, oldest first.
pub(crate) const TICKET_ENTRIES: &str = "SELECT id, kind, format, body, from_name, from_email, created, message_id, auto_reply, bounce, dropped,
     agent_id FROM thread_entries WHERE ticket_id = $1 ORDER BY id";

/// The files of a ticket's entries, by entry, in order (one statement
/// for the whole thread, not one per entry).
pub(crate) const TICKET_ATTACHMENTS: &str =
    "SELECT a.entry_id, a.name, a.content_type, b.size, a.sha256, a.inline, a.content_id, a.id
     FROM attachments a JOIN blobs b ON b.sha256 = a.sha256
     WHERE a.entry_id IN (SELECT e.id FROM thread_entries e WHERE e.ticket_id = $1)
     ORDER BY a.entry_id, a.position";

/// Newest tickets first.
pub(crate) const LIST_TICKETS: &str = "SELECT t.number, t.subject, t.status, u.email, t.created
     FROM tickets t JOIN users u ON u.id = t.user_id ORDER BY t.id DESC LIMIT $1";

/// A claimed outbox row with what rendering it needs.
pub(crate) const OUTBOX_JOB: &str =
    "SELECT o.id, o.kind, o.event, o.recipients, o.message_id, o.attempts, o.created_at,
     t.number, t.subject, u.name, u.email, t.topic_name, t.priority_name,
     t.dept_name, e.body, e.format, e.message_id, e.from_name, e.from_email,
     o.ticket_id, t.dept_id, o.entry_id
     FROM outbox o JOIN tickets t ON t.id = o.ticket_id
     JOIN users u ON u.id = t.user_id
     LEFT JOIN thread_entries e ON e.id = o.entry_id
     WHERE o.id = $1";

/// A mail the relay accepted: never sent again.
pub(crate) const MARK_OUTBOX_SENT: &str = "UPDATE outbox SET state = 'sent', sent_at = $1, lease_until = NULL, last_error = NULL WHERE id = $2";

/// A mail to try again at `$1`, with the reason.
pub(crate) const MARK_OUTBOX_RETRY: &str =
    "UPDATE outbox SET state = 'queued', next_attempt_at = $1, lease_until = NULL, last_error = $2
     WHERE id = $3 AND state = 'sending'";

/// A mail given up, with the reason.
pub(crate) const MARK_OUTBOX_FAILED: &str = "UPDATE outbox SET state = 'failed', lease_until = NULL, last_error = $1 WHERE id = $2 AND state = 'sending'";

/// An admin's retry: any state but sent, due now.
pub(crate) const RETRY_OUTBOX: &str =
    "UPDATE outbox SET state = 'queued', next_attempt_at = $1, lease_until = NULL
     WHERE id = $2 AND state <> 'sent'";

/// An API key by the SHA-256 of its secret.
pub(crate) const FIND_API_KEY: &str =
    "SELECT id, hash, prefix, addresses, is_active, can_create, can_read, notes, created
     FROM api_keys WHERE hash = $1";

/// Every API key, oldest first.
pub(crate) const LIST_API_KEYS: &str =
    "SELECT id, hash, prefix, addresses, is_active, can_create, can_read, notes, created
     FROM api_keys ORDER BY id";

/// A ticket's status.
pub(crate) const TICKET_STATUS: &str = "SELECT status FROM tickets WHERE id = $1";

/// An entry joined the ticket: when, counters, version, the user's last
/// message (`$2`), a new status (`$3`, NULL for none).
pub(crate) const TOUCH_TICKET: &str = "UPDATE tickets SET updated = $1, entries = entries + 1,
     version = version + 1, last_message_at = CASE WHEN $2 THEN $1 ELSE last_message_at END,
     status = coalesce($3, status),
     status_changed = CASE WHEN $3 IS NULL THEN status_changed ELSE $1 END
     WHERE id = $4 RETURNING version";

/// A change's new fields, if the ticket is still at version `$15`. A
/// nullable id is a flag and a value (never a NULL parameter: PostgreSQL
/// keeps a prepared statement's parameter types from its first use, and
/// a NULL is bound as text).
pub(crate) const CHANGE_TICKET: &str = "UPDATE tickets SET status = $1,
     assignee_id = CASE WHEN $2 THEN CAST($3 AS BIGINT) END,
     dept_id = CASE WHEN $4 THEN CAST($5 AS BIGINT) END, dept_name = $6,
     priority_id = $7, priority_name = $8,
     topic_id = CASE WHEN $9 THEN CAST($10 AS BIGINT) END, topic_name = $11,
     status_changed = CASE WHEN $12 THEN $13 ELSE status_changed END, updated = $13,
     version = version + 1
     WHERE id = $14 AND version = $15 RETURNING id";

/// A change event (the actor's id a flag and a value, as above).
pub(crate) const INSERT_EVENT: &str = "INSERT INTO ticket_events (ticket_id, created, actor_kind,
     actor_id, actor_name, action, detail)
     VALUES ($1, $2, $3, CASE WHEN $4 THEN CAST($5 AS BIGINT) END, $6, $7, $8)";

/// An active agent's name.
pub(crate) const AGENT_NAME: &str = "SELECT name FROM agents WHERE id = $1 AND is_active";

/// An active agent by address.
pub(crate) const AGENT_BY_EMAIL: &str = "SELECT id, email, name, is_admin, is_active FROM agents
     WHERE lower(email) = lower($1) AND is_active";

/// An agent's departments.
pub(crate) const AGENT_DEPARTMENTS: &str =
    "SELECT dept_id FROM agent_departments WHERE agent_id = $1 ORDER BY dept_id";

/// An attachment's file and its ticket's department and assignee.
pub(crate) const ATTACHMENT_FILE: &str = "SELECT a.name, a.content_type, b.data, t.dept_id,
     t.assignee_id, e.kind
     FROM attachments a JOIN blobs b ON b.sha256 = a.sha256
     JOIN thread_entries e ON e.id = a.entry_id JOIN tickets t ON t.id = e.ticket_id
     WHERE a.id = $1";

/// An entry's files with their bytes, in order (a response's mail).
pub(crate) const ENTRY_FILES: &str = "SELECT a.name, a.content_type, b.data
     FROM attachments a JOIN blobs b ON b.sha256 = a.sha256
     WHERE a.entry_id = $1 ORDER BY a.position";

/// The user's messages of a ticket by email before an entry, oldest
/// first (a response's In-Reply-To and References).
pub(crate) const USER_MESSAGE_IDS: &str = "SELECT message_id FROM thread_entries
     WHERE ticket_id = $1 AND id < $2 AND kind = 'message' AND message_id IS NOT NULL
     ORDER BY id DESC LIMIT 20";

/// Remembers an `Idempotency-Key` (migration 12): a new row, or one
/// replacing a forgotten claim of the same key; no row back: the key is
/// taken (and, on PostgreSQL, by a transaction that committed first).
pub(crate) const CLAIM_IDEMPOTENCY: &str =
    "INSERT INTO idempotency_keys (scope, fingerprint, answer, created) VALUES ($1, $2, $3, $4)
     ON CONFLICT (scope) DO UPDATE
         SET fingerprint = excluded.fingerprint, answer = excluded.answer, created = excluded.created
         WHERE idempotency_keys.created < $5
     RETURNING created";

/// A remembered `Idempotency-Key` claim not yet forgotten.
pub(crate) const IDEMPOTENCY_CLAIM: &str =
    "SELECT fingerprint, answer FROM idempotency_keys WHERE scope = $1 AND created >= $2";

/// Deletes a few forgotten claims (each new claim does: the table holds
/// about a day of claims).
pub(crate) const FORGET_IDEMPOTENCY: &str = "DELETE FROM idempotency_keys WHERE scope IN
     (SELECT scope FROM idempotency_keys WHERE created < $1 ORDER BY created LIMIT 4)";

#[cfg(test)]
mod tests {
    /// Every statement, for the checks below.
    const ALL: &[&str] = &[
        super::TICKET_EXISTS,
        super::INSERT_ATTACHMENT,
        super::FIRST_EARLIER_MAIL,
        super::LATEST_EARLIER_MAIL,
        super::THREAD_BY_MESSAGE_ID,
        super::THREAD_BY_OUR_MESSAGE_ID,
        super::THREAD_BY_NUMBER_FROM_USER,
        super::MESSAGE_TICKET,
        super::INSERT_RAW_MESSAGE,
        super::SET_DROPPED_PARTS,
        super::SET_PROCESSED_MESSAGE_TICKET,
        super::CLAIM_IDEMPOTENCY,
        super::IDEMPOTENCY_CLAIM,
        super::FORGET_IDEMPOTENCY,
        super::TICKET_BY_NUMBER,
        super::TICKET_FIELDS,
        super::TICKET_CHANGES,
        super::TICKET_ENTRIES,
        super::TICKET_ATTACHMENTS,
        super::LIST_TICKETS,
        super::OUTBOX_JOB,
        super::MARK_OUTBOX_SENT,
        super::MARK_OUTBOX_RETRY,
        super::MARK_OUTBOX_FAILED,
        super::RETRY_OUTBOX,
        super::FIND_API_KEY,
        super::LIST_API_KEYS,
        super::TICKET_STATUS,
        super::TOUCH_TICKET,
        super::CHANGE_TICKET,
        super::INSERT_EVENT,
        super::AGENT_NAME,
        super::AGENT_BY_EMAIL,
        super::AGENT_DEPARTMENTS,
        super::ATTACHMENT_FILE,
        super::USER_MESSAGE_IDS,
        super::ENTRY_FILES,
    ];

    #[test]
    fn placeholders_first_appear_in_order_so_both_backends_bind_alike() {
        for sql in ALL {
            let mut next = 1;
            let mut rest = *sql;
            while let Some(i) = rest.find('$') {
                rest = &rest[i + 1..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let n: usize = digits.parse().expect("a number after $");
                assert!(n <= next, "${n} before ${next} in {sql}");
                if n == next {
                    next += 1;
                }
            }
        }
    }

    #[test]
    fn every_statement_prepares_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(
            crate::storage::sqlite::SqliteStore::open(
                &path,
                crate::storage::NumberPolicy {
                    format: "######".into(),
                    sequential: false,
                    widen_at: 0.5,
                    widened: Default::default(),
                },
                "x.org",
            )
            .unwrap(),
        );
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in ALL {
            conn.prepare(sql).unwrap_or_else(|e| panic!("{e}: {sql}"));
        }
    }
}
