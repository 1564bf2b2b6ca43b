//! Tickets, entries and email on PostgreSQL: a new ticket in one
//! statement (its mail included), replies and their mail, reads.

use super::*;

pub(super) type Tx<'a> = Transaction<'a, Postgres>;

/// The statement of [`insert_ticket_one_statement`], in parts: the new
/// user's columns, the mail it queues, the attachment inserts. A part
/// left out leaves out its binds too.
macro_rules! insert_ticket_sql {
    ($new_user:expr, $mail:expr, $files:expr) => {
        concat!(
            "WITH u_ins AS (
                 INSERT INTO users ",
            $new_user,
            "
                 ON CONFLICT ((lower(email))) DO NOTHING RETURNING id
             ), u AS (
                 SELECT id FROM u_ins
                 UNION ALL
                 SELECT id FROM users WHERE lower(email) = lower($1)
                 LIMIT 1
             ), t AS (
                 INSERT INTO tickets (number, user_id, subject, status, source, priority_id, priority_name,
                     topic_id, topic_name, dept_id, dept_name, ip, created, alert, autorespond, updated,
                     last_message_at)
                 SELECT $4, u.id, $5, 'open', $6, $7, $8, $9, $10, $11, $12, $13, $3, $14, $15, $3, $3
                 FROM u
                 ON CONFLICT (number) DO NOTHING RETURNING id, user_id
             ), e AS (
                 INSERT INTO thread_entries (ticket_id, kind, format, body, from_name, from_email, created,
                     message_id, auto_reply, bounce)
                 SELECT t.id, $16, $17, $18, $19, $20, $3, $21, $22, $23 FROM t RETURNING id
             ), ",
            $mail,
            $files,
            search_part!(),
            "f AS (
                 INSERT INTO field_values (ticket_id, form, name, value)
                 SELECT t.id, x.form, x.name, x.value
                 FROM t, unnest($31::text[], $32::text[], $33::text[]) AS x(form, name, value)
             )
             SELECT t.id, e.id, t.user_id FROM t, e"
        )
    };
}

/// A new user, with no autoresponse to count.
macro_rules! new_user {
    () => {
        "(email, name, created) VALUES ($1, $2, $3)"
    };
}

/// A new user whose ticket may queue mail: its first autoresponse opens
/// its hourly window (a row inserted by this statement is not visible to
/// the `cap` update below).
macro_rules! new_user_counted {
    () => {
        "(email, name, created, autoresponse_window_start, autoresponses_in_window)
         VALUES ($1, $2, $3, $35, CASE WHEN $34 THEN 1 ELSE 0 END)"
    };
}

/// The outbox rows of a new ticket, in its statement: the mail the
/// domain decided (`$37` kind indexes, `$38` kinds, `$39` events, `$40`
/// recipients as JSON, `$41` Message-ID tails, `$42` whether the mail is
/// under the user's hourly cap), ids following the entry (`outbox_id`).
/// A user-capped mail is written when the user's counter (`cap`, one per
/// user, `$36` a limit, `$35` the unix time; `$34` whether any mail is
/// user-capped) allows it; a new user's first counts in its insert.
/// Ticket caps pass for a new ticket: it has queued nothing yet.
macro_rules! mail {
    () => {
        "cap AS (
             UPDATE users SET
                 autoresponses_in_window = CASE WHEN autoresponse_window_start > $35 - 3600
                     THEN autoresponses_in_window + 1 ELSE 1 END,
                 autoresponse_window_start = CASE WHEN autoresponse_window_start > $35 - 3600
                     THEN autoresponse_window_start ELSE $35 END
             WHERE $34 AND id = (SELECT user_id FROM t) AND NOT EXISTS (SELECT 1 FROM u_ins)
             RETURNING autoresponses_in_window <= $36 AS allowed
         ), o AS (
             INSERT INTO outbox (id, ticket_id, entry_id, kind, event, recipients, message_id,
                 state, next_attempt_at, created_at)
             SELECT e.id * 4 + x.idx, t.id, e.id, x.kind, x.event, x.rcpt,
                 'oxidesk.' || x.kind || '.' || t.id || '.' || x.tail, 'queued', $35, $35
             FROM t, e, unnest($37::bigint[], $38::text[], $39::text[], $40::text[], $41::text[],
                               $42::bool[]) AS x(idx, kind, event, rcpt, tail, capped)
             WHERE NOT x.capped
                OR EXISTS (SELECT 1 FROM cap WHERE allowed)
                OR (EXISTS (SELECT 1 FROM u_ins) AND $36 >= 1)
         ), "
    };
}

/// The attachments: blobs stored once by content, then the entry's list.
macro_rules! files {
    () => {
        "b AS (
         INSERT INTO blobs (sha256, size, data)
         SELECT x.sha, x.size, x.data
         FROM unnest($24::bytea[], $25::bigint[], $26::bytea[]) AS x(sha, size, data)
         WHERE EXISTS (SELECT 1 FROM t)
         ON CONFLICT (sha256) DO NOTHING
     ), a AS (
         INSERT INTO attachments (entry_id, position, sha256, name, content_type, inline, content_id)
         SELECT e.id, x.pos - 1, x.sha, x.name, x.ct, x.inl, x.cid
         FROM e, unnest($24::bytea[], $27::text[], $28::text[], $29::bool[], $30::text[])
             WITH ORDINALITY AS x(sha, name, ct, inl, cid, pos)
     ), "
    };
}

/// The four statements: `[with mail][with files]`.
pub(super) const INSERT_TICKET: [[&str; 2]; 2] = [
    [
        insert_ticket_sql!(new_user!(), "", ""),
        insert_ticket_sql!(new_user!(), "", files!()),
    ],
    [
        insert_ticket_sql!(new_user_counted!(), mail!(), ""),
        insert_ticket_sql!(new_user_counted!(), mail!(), files!()),
    ],
];

/// The whole ticket (user, ticket, entry, files, form values) in one
/// statement: one round trip instead of a dozen, which is what bounds a
/// PostgreSQL helpdesk's rate. Returns (number, ticket id, entry id,
/// user id). A taken random number (or a user row another transaction
/// committed a moment ago) makes the statement insert nothing; it is
/// then run again with a fresh number and snapshot.
pub(super) async fn insert_ticket_one_statement(
    conn: &mut sqlx::PgConnection,
    numbers: &NumberPolicy,
    message_domain: &str,
    t: &NewTicket,
) -> Result<(String, i64, i64, i64), StoreError> {
    let e = &t.entry;
    let shas: Vec<Vec<u8>> = e.attachments.iter().map(|a| a.sha256.to_vec()).collect();
    let sizes: Vec<i64> = e.attachments.iter().map(|a| a.data.len() as i64).collect();
    // Borrowed: a copy of every file here was one more copy of the
    // largest part of a ticket held per request (issue 16 point 3).
    let datas: Vec<&[u8]> = e.attachments.iter().map(|a| a.data.as_slice()).collect();
    let names: Vec<String> = e.attachments.iter().map(|a| a.name.clone()).collect();
    let types: Vec<String> = e
        .attachments
        .iter()
        .map(|a| a.content_type.clone())
        .collect();
    let inlines: Vec<bool> = e.attachments.iter().map(|a| a.inline).collect();
    let cids: Vec<Option<String>> = e.attachments.iter().map(|a| a.content_id.clone()).collect();
    let forms: Vec<String> = t.fields.iter().map(|f| f.form.clone()).collect();
    let fnames: Vec<String> = t.fields.iter().map(|f| f.name.clone()).collect();
    let fvalues: Vec<String> = t.fields.iter().map(|f| f.value.to_string()).collect();
    let plan = MailArrays::new(&t.mail, message_domain)?;
    // Full-text index words (search.rs), written by the statement's `s` part.
    let doc = crate::storage::search::SearchDoc::of_ticket(t);
    let own = super::search::own_lexemes(&doc);
    let mail = !t.mail.is_empty();
    for _ in 0..NUMBER_ATTEMPTS {
        let number = if numbers.sequential {
            let v: i64 = sqlx::query_scalar("SELECT nextval('ticket_number_seq')")
                .fetch_one(&mut *conn)
                .await?;
            numbers.sequential_number(v)
        } else {
            numbers.random_number()
        };
        // Most tickets carry no file: their statement leaves out the
        // file parts, which PostgreSQL would otherwise plan and start;
        // likewise the mail parts when no mail can be queued.
        let sql = INSERT_TICKET[usize::from(mail)][usize::from(!e.attachments.is_empty())];
        let row: Option<(i64, i64, i64)> = sqlx::query_as(sql)
            .bind(t.user_email.as_str())
            .bind(&t.user_name)
            .bind(format_time(t.now))
            .bind(&number)
            .bind(&t.subject)
            .bind(t.source.as_str())
            .bind(t.priority.id)
            .bind(&t.priority.name)
            .bind(t.topic.as_ref().map(|n| n.id))
            .bind(t.topic.as_ref().map(|n| n.name.clone()))
            .bind(t.department.as_ref().map(|n| n.id))
            .bind(t.department.as_ref().map(|n| n.name.clone()))
            .bind(&t.ip)
            .bind(t.alert)
            .bind(t.autorespond)
            .bind(e.kind.as_str())
            .bind(e.format.as_str())
            .bind(&e.body)
            .bind(&e.from_name)
            .bind(e.from_email.as_str())
            .bind(&e.message_id)
            .bind(e.auto_reply)
            .bind(e.bounce)
            .bind(&shas)
            .bind(&sizes)
            .bind(&datas)
            .bind(&names)
            .bind(&types)
            .bind(&inlines)
            .bind(&cids)
            .bind(&forms)
            .bind(&fnames)
            .bind(&fvalues)
            .bind(plan.user_capped)
            .bind(t.now.as_second())
            .bind(i64::from(plan.user_limit))
            .bind(&plan.indexes)
            .bind(&plan.kinds)
            .bind(&plan.events)
            .bind(&plan.recipients)
            .bind(&plan.tails)
            .bind(&plan.capped)
            .bind(&doc.subject)
            .bind(&doc.body)
            .bind(&doc.meta)
            .bind(&own)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some((ticket_id, entry_id, user_id)) = row {
            return Ok((number, ticket_id, entry_id, user_id));
        }
        if !numbers.sequential {
            // Perhaps a taken number: learn how crowded the pattern is
            // (the highest id bounds the tickets) and widen if need be.
            let max_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM tickets")
                .fetch_one(&mut *conn)
                .await?;
            numbers.note_tickets(max_id);
        }
    }
    Err(StoreError::Conflict(format!(
        "no free ticket number after {NUMBER_ATTEMPTS} attempts: widen tickets.number_format"
    )))
}

pub(super) async fn insert_entry(
    tx: &mut Tx<'_>,
    ticket_id: i64,
    e: &NewEntry,
    created: &str,
) -> Result<(i64, Vec<i64>), StoreError> {
    let entry_id: i64 = sqlx::query_scalar(
        "INSERT INTO thread_entries (ticket_id, kind, format, body, from_name, from_email, created,
             message_id, auto_reply, bounce, agent_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(ticket_id)
    .bind(e.kind.as_str())
    .bind(e.format.as_str())
    .bind(&e.body)
    .bind(&e.from_name)
    .bind(e.from_email.as_str())
    .bind(created)
    .bind(&e.message_id)
    .bind(e.auto_reply)
    .bind(e.bounce)
    .bind(e.agent.map(|a| a.0))
    .fetch_one(&mut **tx)
    .await?;
    let mut files = Vec::with_capacity(e.attachments.len());
    for (position, a) in e.attachments.iter().enumerate() {
        sqlx::query("INSERT INTO blobs (sha256, size, data) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING")
            .bind(&a.sha256[..])
            .bind(a.data.len() as i64)
            .bind(&a.data)
            .execute(&mut **tx)
            .await?;
        files.push(
            sqlx::query_scalar::<_, i64>(sql::INSERT_ATTACHMENT)
                .bind(entry_id)
                .bind(position as i64)
                .bind(&a.sha256[..])
                .bind(&a.name)
                .bind(&a.content_type)
                .bind(a.inline)
                .bind(&a.content_id)
                .fetch_one(&mut **tx)
                .await?,
        );
    }
    Ok((entry_id, files))
}

/// The staff alert a reply by email queues (when the department has
/// recipients), in the caller's transaction. A new ticket's mail is part
/// of its statement (`mail!`).
/// The mail of a new ticket as the arrays its statement unnests.
pub(super) struct MailArrays {
    indexes: Vec<i64>,
    kinds: Vec<&'static str>,
    events: Vec<&'static str>,
    recipients: Vec<String>,
    tails: Vec<String>,
    capped: Vec<bool>,
    /// Some mail is under the user's hourly cap.
    user_capped: bool,
    /// Its limit (one counter per user).
    user_limit: u32,
}

impl MailArrays {
    fn new(mail: &[QueuedMail], message_domain: &str) -> Result<Self, StoreError> {
        let mut a = MailArrays {
            indexes: Vec::with_capacity(mail.len()),
            kinds: Vec::with_capacity(mail.len()),
            events: Vec::with_capacity(mail.len()),
            recipients: Vec::with_capacity(mail.len()),
            tails: Vec::with_capacity(mail.len()),
            capped: Vec::with_capacity(mail.len()),
            user_capped: false,
            user_limit: 0,
        };
        for m in mail {
            let user_cap = match m.cap {
                Some(Cap {
                    scope: CapScope::User,
                    limit,
                }) => {
                    a.user_limit = limit;
                    true
                }
                // A new ticket has queued nothing yet: only a limit of 0
                // refuses.
                Some(Cap {
                    scope: CapScope::Ticket,
                    limit: 0,
                }) => continue,
                Some(Cap {
                    scope: CapScope::Ticket,
                    ..
                })
                | None => false,
            };
            a.user_capped |= user_cap;
            a.indexes.push(m.kind.index());
            a.kinds.push(m.kind.as_str());
            a.events.push(m.event.as_str());
            a.recipients
                .push(serde_json::to_string(&m.recipients).map_err(other)?);
            a.tails.push(outgoing_message_id_tail(message_domain));
            a.capped.push(user_cap);
        }
        Ok(a)
    }
}

/// Writes the mail the domain decided for a reply's entry, each under
/// its cap (a user cap on the user's counter, a ticket cap by counting
/// the kind's rows of the ticket in the hour).
pub(super) async fn insert_reply_mail(
    tx: &mut Tx<'_>,
    message_domain: &str,
    ticket_id: i64,
    entry_id: i64,
    mail: &[QueuedMail],
    now: i64,
) -> Result<(), StoreError> {
    for m in mail {
        let allowed = match m.cap {
            None => true,
            Some(Cap {
                scope: CapScope::User,
                limit,
            }) => {
                sqlx::query_scalar::<_, bool>(
                    "UPDATE users SET
                     autoresponses_in_window = CASE WHEN autoresponse_window_start > $2 - 3600
                         THEN autoresponses_in_window + 1 ELSE 1 END,
                     autoresponse_window_start = CASE WHEN autoresponse_window_start > $2 - 3600
                         THEN autoresponse_window_start ELSE $2 END
                 WHERE id = (SELECT user_id FROM tickets WHERE id = $1)
                 RETURNING autoresponses_in_window <= $3",
                )
                .bind(ticket_id)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_one(&mut **tx)
                .await?
            }
            Some(Cap {
                scope: CapScope::Ticket,
                limit,
            }) => {
                // Replies to one ticket count one after another (several
                // instances, parallel deliveries): the ticket's row lock.
                sqlx::query("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE")
                    .bind(ticket_id)
                    .execute(&mut **tx)
                    .await?;
                let recent: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM thread_entries e JOIN outbox o ON o.id = e.id * 4 + $2
                     WHERE e.ticket_id = $1 AND o.created_at >= $3",
                )
                .bind(ticket_id)
                .bind(m.kind.index())
                .bind(now - crate::domain::notify::CAP_WINDOW_SECS)
                .fetch_one(&mut **tx)
                .await?;
                recent < i64::from(limit)
            }
        };
        if !allowed {
            crate::storage::log_capped(ticket_id, m.kind);
            continue;
        }
        sqlx::query(
            "INSERT INTO outbox (id, ticket_id, entry_id, kind, event, recipients, message_id,
                 state, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $8)",
        )
        .bind(outbox_id(entry_id, m.kind))
        .bind(ticket_id)
        .bind(entry_id)
        .bind(m.kind.as_str())
        .bind(m.event.as_str())
        .bind(serde_json::to_string(&m.recipients).map_err(other)?)
        .bind(outgoing_message_id(m.kind, ticket_id, message_domain))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn ingest_email(
    tx: &mut Tx<'_>,
    numbers: &NumberPolicy,
    message_domain: &str,
    email: &NewEmail,
) -> Result<EmailOutcome, StoreError> {
    let created = &format_time(email.ticket.now);
    if let Some(id) = &email.message_id {
        // The claim is a unique constraint: a concurrent claim of the same
        // id waits for this transaction and then finds the row. An entry
        // holding the id is a claim too (data copied from SQLite, which
        // records a filed message's claim in its entry alone).
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO processed_messages (message_id, ticket_id, created)
             SELECT $1, NULL, $2
             WHERE NOT EXISTS (SELECT 1 FROM thread_entries WHERE message_id = $1)
             ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        )
        .bind(id)
        .bind(created)
        .fetch_optional(&mut **tx)
        .await?;
        if claimed.is_none() {
            let number: Option<String> = sqlx::query_scalar(sql::MESSAGE_TICKET)
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
            return Ok(EmailOutcome::Duplicate(
                number.map(TicketNumber::from_stored),
            ));
        }
    }
    let (outcome, ticket_id, entry_id) = match &email.thread {
        Some(thread) => {
            let t = &email.ticket;
            let (entry_id, _) = insert_entry(tx, thread.ticket_id, &t.entry, created).await?;
            common::entry_added(
                &mut PgRows(&mut *tx),
                thread.ticket_id,
                &t.entry,
                None,
                t.now,
            )
            .await?;
            super::search::index_new_entry(tx, thread.ticket_id, &t.entry).await?;
            insert_reply_mail(
                tx,
                message_domain,
                thread.ticket_id,
                entry_id,
                &t.mail,
                t.now.as_second(),
            )
            .await?;
            (
                EmailOutcome::Appended(thread.number.clone()),
                thread.ticket_id,
                entry_id,
            )
        }
        // The thread was looked up before this transaction: a message of
        // it may have been committed since.
        None if common::find_thread(&mut PgRows(&mut *tx), &email.query)
            .await?
            .is_some() =>
        {
            return Err(StoreError::Stale);
        }
        None if email.is_bounce => return Ok(EmailOutcome::BounceLogged),
        None => {
            let (number, ticket_id, entry_id, _) =
                insert_ticket_one_statement(tx, numbers, message_domain, &email.ticket).await?;
            (
                EmailOutcome::Created(TicketNumber::from_stored(number)),
                ticket_id,
                entry_id,
            )
        }
    };
    sqlx::query(sql::INSERT_RAW_MESSAGE)
        .bind(entry_id)
        .bind(&email.raw_compressed)
        .execute(&mut **tx)
        .await?;
    // Rare (a part over a cap): a statement of its own rather than a
    // column in every ticket's one statement.
    if let Some(dropped) = dropped_column(&email.ticket.entry.dropped)? {
        sqlx::query(sql::SET_DROPPED_PARTS)
            .bind(dropped)
            .bind(entry_id)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(id) = &email.message_id {
        sqlx::query(sql::SET_PROCESSED_MESSAGE_TICKET)
            .bind(ticket_id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(claim) = &email.ticket.idempotency {
        common::claim_idempotency(&mut PgRows(&mut *tx), claim, outcome.answer()).await?;
    }
    Ok(outcome)
}

pub(super) fn notification(r: &PgRow) -> Result<NotificationView, StoreError> {
    let recipients: String = r.try_get(2)?;
    let named = |i: usize| -> Result<String, StoreError> { Ok(r.try_get(i)?) };
    let unexpected = |i: usize, v: String| other(format!("outbox column {i}: unexpected {v:?}"));
    let (kind, event, state) = (named(0)?, named(1)?, named(3)?);
    Ok(NotificationView {
        kind: MailKind::parse(&kind).ok_or_else(|| unexpected(0, kind.clone()))?,
        event: MailEvent::parse(&event).ok_or_else(|| unexpected(1, event.clone()))?,
        recipients: serde_json::from_str(&recipients).map_err(other)?,
        state: MailState::parse(&state).ok_or_else(|| unexpected(3, state.clone()))?,
        attempts: r.try_get(4)?,
        last_error: r.try_get(5)?,
        message_id: r.try_get(6)?,
        sent_at: None,
        created_at: None,
    })
}

pub(super) async fn load_ticket(
    pool: &PgPool,
    number: &TicketNumber,
) -> Result<Option<TicketView>, StoreError> {
    let mut conn = pool.acquire().await?;
    let Some((ticket_id, mut view)) = common::load_ticket(&mut PgRows(&mut conn), number).await?
    else {
        return Ok(None);
    };
    let notes = sqlx::query(
        "SELECT o.kind, o.event, o.recipients, o.state, o.attempts, o.last_error, o.message_id,
                o.sent_at, o.created_at
         FROM thread_entries e JOIN outbox o ON o.id BETWEEN e.id * 4 AND e.id * 4 + 3
         WHERE e.ticket_id = $1 ORDER BY o.id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    for n in &notes {
        let mut view_of = notification(n)?;
        view_of.sent_at = n.try_get(7)?;
        view_of.created_at = n.try_get(8)?;
        view.notifications.push(view_of);
    }
    Ok(Some(view))
}
