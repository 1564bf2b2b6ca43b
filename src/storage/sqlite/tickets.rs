//! Tickets and entries on SQLite: numbers, users, the first entry and
//! its files, email filing (Message-ID claim, append or open), reads.

use super::*;

/// Draws a ticket number: the counter's next value, or a random one.
fn draw_number(conn: &Connection, policy: &NumberPolicy) -> Result<String, StoreError> {
    if policy.sequential {
        let value: i64 = conn
            .prepare_cached(
                "INSERT INTO counters (name, value) VALUES ('ticket_number', 1)
                 ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
            )?
            .query_row([], |r| r.get(0))?;
        return Ok(policy.sequential_number(value));
    }
    Ok(policy.random_number())
}

pub(super) fn insert_ticket(
    conn: &Connection,
    w: &mut WriterState,
    t: &NewTicket,
) -> Result<(String, i64, i64), StoreError> {
    // A returning address keeps its user (and stored name): one lookup;
    // a new one, one insert. (An upsert would be one statement for a new
    // address but two for a returning one, the common case; and `DO
    // UPDATE` would rewrite the user's row at every ticket.)
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM users WHERE email = ?1")?
        .query_row([t.user_email.as_str()], |r| r.get(0))
        .optional()?;
    let created = format_time(t.now);
    let user_id = match existing {
        Some(id) => id,
        None => {
            conn.prepare_cached("INSERT INTO users (email, name, created) VALUES (?1, ?2, ?3)")?
                .execute(params![t.user_email.as_str(), t.user_name, created])?;
            conn.last_insert_rowid()
        }
    };
    // The number's unique index decides (no lookup first): a taken
    // number inserts nothing, and another is drawn. This connection is
    // the only writer, so nothing races between the attempts.
    let mut inserted = None;
    for _ in 0..NUMBER_ATTEMPTS {
        let number = draw_number(conn, &w.numbers)?;
        let id: Option<i64> = conn
            .prepare_cached(
                "INSERT INTO tickets (number, user_id, subject, status, source, priority_id,
                     priority_name, topic_id, topic_name, dept_id, dept_name, ip, created, alert,
                     autorespond, updated, last_message_at)
                 VALUES (?1, ?2, ?3, 'open', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?12, ?12)
                 ON CONFLICT (number) DO NOTHING RETURNING id",
            )?
            .query_row(
                params![
                    number,
                    user_id,
                    t.subject,
                    t.source.as_str(),
                    t.priority.id,
                    t.priority.name,
                    t.topic.as_ref().map(|n| n.id),
                    t.topic.as_ref().map(|n| n.name.as_str()),
                    t.department.as_ref().map(|n| n.id),
                    t.department.as_ref().map(|n| n.name.as_str()),
                    t.ip,
                    created,
                    t.alert,
                    t.autorespond,
                ],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = id {
            inserted = Some((number, id));
            break;
        }
        if !w.numbers.sequential {
            // A taken number: learn how crowded the pattern is (the
            // highest id bounds the tickets; one index lookup) and widen
            // if need be.
            let max_id: i64 = conn
                .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM tickets")?
                .query_row([], |r| r.get(0))?;
            w.numbers.note_tickets(max_id);
        }
    }
    let Some((number, ticket_id)) = inserted else {
        return Err(StoreError::Conflict(format!(
            "no free ticket number after {NUMBER_ATTEMPTS} attempts: widen tickets.number_format"
        )));
    };
    let mail = record_mail(
        conn,
        w,
        ticket_id,
        user_id,
        t.user_email.as_str(),
        &t.mail,
        t.now,
    )?;
    let (entry_id, _) = insert_entry(conn, ticket_id, &t.entry, &created, mail)?;
    for f in &t.fields {
        conn.prepare_cached(
            "INSERT INTO field_values (ticket_id, form, name, value) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![ticket_id, f.form, f.name, f.value.to_string()])?;
    }
    Ok((number, ticket_id, entry_id))
}

/// Inserts a thread entry with the mail it queues (`notify` bits and
/// `mail_to`, from [`record_mail`]).
pub(super) fn insert_entry(
    conn: &Connection,
    ticket_id: i64,
    e: &NewEntry,
    created: &str,
    (notify, mail_to): (i64, Option<String>),
) -> Result<(i64, Vec<i64>), StoreError> {
    conn.prepare_cached(
        "INSERT INTO thread_entries (ticket_id, kind, format, body, from_name, from_email, created,
             message_id, auto_reply, bounce, notify, mail_to, agent_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        ticket_id,
        e.kind.as_str(),
        e.format.as_str(),
        e.body,
        e.from_name,
        e.from_email.as_str(),
        created,
        e.message_id,
        e.auto_reply,
        e.bounce,
        notify,
        mail_to,
        e.agent.map(|a| a.0)
    ])?;
    let entry_id = conn.last_insert_rowid();
    let mut files = Vec::with_capacity(e.attachments.len());
    for (position, a) in e.attachments.iter().enumerate() {
        conn.prepare_cached(
            "INSERT INTO blobs (sha256, size, data) VALUES (?1, ?2, ?3) ON CONFLICT(sha256) DO NOTHING",
        )?
        .execute(params![&a.sha256[..], a.data.len() as i64, a.data])?;
        files.push(conn.prepare_cached(sql::INSERT_ATTACHMENT)?.query_row(
            params![
                entry_id,
                position as i64,
                &a.sha256[..],
                a.name,
                a.content_type,
                a.inline,
                a.content_id
            ],
            |r| r.get(0),
        )?);
    }
    Ok((entry_id, files))
}

pub(super) fn ingest_email(
    conn: &Connection,
    w: &mut WriterState,
    email: &NewEmail,
    doc: Option<&crate::storage::search::SearchDoc>,
) -> Result<EmailOutcome, StoreError> {
    let created = &format_time(email.ticket.now);
    if let Some(id) = &email.message_id {
        // A lookup is as good as a claim here: this transaction began
        // IMMEDIATE, holding the database's write lock against every
        // other writer (`oxidesk pipe` processes too) with the newest
        // snapshot, and the entry's unique id (written below) stops
        // anything that slipped by. The entry's id holds a filed
        // message's claim, `processed_messages` only those filed
        // without such an entry (one index entry per message instead
        // of two: issue 17).
        let filed: Option<Option<String>> = conn
            .prepare_cached(sql::MESSAGE_TICKET)?
            .query_row([id], |r| r.get(0))
            .optional()?;
        if let Some(number) = filed {
            return Ok(EmailOutcome::Duplicate(
                number.map(TicketNumber::from_stored),
            ));
        }
    }
    let (outcome, ticket_id, entry_id) = match &email.thread {
        Some(thread) => {
            let user_id: i64 = conn
                .prepare_cached("SELECT user_id FROM tickets WHERE id = ?1")?
                .query_row([thread.ticket_id], |r| r.get(0))?;
            let t = &email.ticket;
            let mail = record_mail(
                conn,
                w,
                thread.ticket_id,
                user_id,
                t.user_email.as_str(),
                &t.mail,
                t.now,
            )?;
            let (entry_id, _) = insert_entry(conn, thread.ticket_id, &t.entry, created, mail)?;
            run_ready(common::entry_added(
                &mut SqliteRows(conn),
                thread.ticket_id,
                &t.entry,
                None,
                t.now,
            ))?;
            (
                EmailOutcome::Appended(thread.number.clone()),
                thread.ticket_id,
                entry_id,
            )
        }
        // The thread was looked up before this transaction: a message of
        // it may have been committed since (or earlier in this group).
        None if run_ready(common::find_thread(&mut SqliteRows(conn), &email.query))?.is_some() => {
            return Err(StoreError::Stale);
        }
        None if email.is_bounce => {
            claim_without_entry(conn, email, None, created)?;
            return Ok(EmailOutcome::BounceLogged);
        }
        None => {
            let (number, ticket_id, entry_id) = insert_ticket(conn, w, &email.ticket)?;
            (
                EmailOutcome::Created(TicketNumber::from_stored(number)),
                ticket_id,
                entry_id,
            )
        }
    };
    // Full-text index (search.rs), in this transaction.
    let opened = matches!(outcome, EmailOutcome::Created(_));
    super::search::index_email(conn, &mut w.search, ticket_id, email, opened, doc)?;
    conn.prepare_cached(sql::INSERT_RAW_MESSAGE)?
        .execute(params![entry_id, email.raw_compressed])?;
    // Rare (a part over a cap): a statement of its own rather than a
    // column in every entry's insert.
    if let Some(dropped) = dropped_column(&email.ticket.entry.dropped)? {
        conn.prepare_cached(sql::SET_DROPPED_PARTS)?
            .execute(params![dropped, entry_id])?;
    }
    if email.ticket.entry.message_id != email.message_id {
        claim_without_entry(conn, email, Some(ticket_id), created)?;
    }
    if let Some(claim) = &email.ticket.idempotency {
        run_ready(common::claim_idempotency(
            &mut SqliteRows(conn),
            claim,
            outcome.answer(),
        ))?;
    }
    Ok(outcome)
}

/// Records the claim of a message whose Message-ID no entry holds (a
/// logged bounce; an entry stored under another id).
fn claim_without_entry(
    conn: &Connection,
    email: &NewEmail,
    ticket_id: Option<i64>,
    created: &str,
) -> Result<(), StoreError> {
    if let Some(id) = &email.message_id {
        conn.prepare_cached(
            "INSERT INTO processed_messages (message_id, ticket_id, created) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![id, ticket_id, created])?;
    }
    Ok(())
}

pub(super) fn load_ticket(
    conn: &Connection,
    number: &TicketNumber,
) -> Result<Option<TicketView>, StoreError> {
    let Some((ticket_id, mut view)) =
        run_ready(common::load_ticket(&mut SqliteRows(conn), number))?
    else {
        return Ok(None);
    };
    // Each entry's mail: its outbox rows once taken, else what it queued.
    let mut notes = conn.prepare_cached(
        "SELECT o.kind, o.event, o.recipients, o.state, o.attempts, o.last_error, o.message_id,
                o.id, e.id, e.notify, e.mail_to, o.sent_at, o.created_at
         FROM thread_entries e LEFT JOIN outbox o ON o.id BETWEEN e.id * 4 AND e.id * 4 + 3
         WHERE e.ticket_id = ?1 AND (e.notify <> 0 OR o.id IS NOT NULL) ORDER BY e.id, o.id",
    )?;
    let mut rows = notes.query([ticket_id])?;
    while let Some(r) = rows.next()? {
        if r.get::<_, Option<i64>>(7)?.is_some() {
            let mut n = notification_from_row(r)?;
            n.sent_at = r.get(11)?;
            n.created_at = r.get(12)?;
            view.notifications.push(n);
        } else {
            let mail_to: Option<String> = r.get(10)?;
            let waiting =
                waiting_views(r.get(8)?, r.get(9)?, mail_to.as_deref(), &view.user.email)?;
            view.notifications
                .extend(waiting.into_iter().map(|(_, _, n)| n));
        }
    }
    Ok(Some(view))
}
