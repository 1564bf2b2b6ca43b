//! Mail on SQLite: what an entry queued is recorded on the entry itself
//! (`notify` bits by kind, `mail_to`), caps are counted in the writer's
//! windows or on the ticket's entries, and the sender's claim writes each
//! mail's outbox row as it takes it. Also the outbox's other operations.

use super::*;

/// `thread_entries.notify` (migration 8): bit `1 << kind.index()` for
/// each kind of mail the entry queued.
pub(super) fn kind_bit(kind: MailKind) -> i64 {
    1 << kind.index()
}
/// `thread_entries.notify`: the entry's mail counted against its user's
/// hourly cap (the windows are rebuilt from this bit at start and after
/// another process wrote: `writer::follow_other_writers`).
pub(super) const MAIL_USER_CAPPED: i64 = 64;
/// `thread_entries.notify`: the event was a reply, not a new ticket.
pub(super) const MAIL_REPLY: i64 = 128;

/// Rebuilds the autoresponse windows from the thread: the autoresponses
/// its entries queued in the last hour, replayed in order (at start, and
/// when another process wrote: `writer::follow_other_writers`). Entries
/// are read newest first and the scan stops a little over an hour back,
/// so it reads only that hour.
pub(super) fn load_windows(conn: &Connection, now: i64) -> Result<Windows, StoreError> {
    let mut recent: Vec<(i64, i64)> = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT t.user_id, e.created, e.notify FROM thread_entries e
         JOIN tickets t ON t.id = e.ticket_id ORDER BY e.id DESC",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let created = unix_time(&row.get::<_, String>(1)?).unwrap_or(now);
        // Ids follow creation times but for clock steps: read five
        // minutes past the hour before stopping.
        if created <= now - windows::WINDOW_SECS - 300 {
            break;
        }
        if row.get::<_, i64>(2)? & MAIL_USER_CAPPED != 0 {
            recent.push((row.get(0)?, created));
        }
    }
    let mut windows = Windows::default();
    for (user, created) in recent.into_iter().rev() {
        windows.record(user, created);
    }
    windows.commit(now);
    Ok(windows)
}

/// Records the mail the domain decided for a new ticket's or a reply's
/// entry, each under its cap: a user cap counts in the writer's windows
/// (exact: one writer), a ticket cap counts the kind's earlier entries of
/// the ticket in the hour. Returns the entry's `notify` bits and
/// `mail_to` (recipients by kind, for kinds not sent to the user alone).
pub(super) fn record_mail(
    conn: &Connection,
    w: &mut WriterState,
    ticket_id: i64,
    user_id: i64,
    user_email: &str,
    mail: &[QueuedMail],
    now: jiff::Timestamp,
) -> Result<(i64, Option<String>), StoreError> {
    let now = now.as_second();
    let mut bits = 0;
    let mut mail_to = serde_json::Map::new();
    for m in mail {
        let allowed = match m.cap {
            None => true,
            Some(Cap {
                scope: CapScope::User,
                limit,
            }) => {
                let allowed = w.windows.record(user_id, now) <= i64::from(limit);
                if allowed {
                    bits |= MAIL_USER_CAPPED;
                }
                allowed
            }
            Some(Cap {
                scope: CapScope::Ticket,
                limit,
            }) => {
                kind_count_since(
                    conn,
                    ticket_id,
                    m.kind,
                    now - crate::domain::notify::CAP_WINDOW_SECS,
                )? < i64::from(limit)
            }
        };
        if !allowed {
            crate::storage::log_capped(ticket_id, m.kind);
            continue;
        }
        bits |= kind_bit(m.kind);
        if m.event == MailEvent::Reply {
            bits |= MAIL_REPLY;
        }
        // Only an autoresponse goes to the ticket's user by definition;
        // every other kind keeps its recipients (a reply's sender may be
        // someone else than the ticket's user, even one of its recipients).
        if m.kind != MailKind::Autoresponse || m.recipients != [user_email] {
            mail_to.insert(m.kind.as_str().into(), m.recipients.clone().into());
        }
    }
    if bits & !MAIL_REPLY == 0 {
        return Ok((0, None));
    }
    let mail_to = if mail_to.is_empty() {
        None
    } else {
        Some(serde_json::Value::Object(mail_to).to_string())
    };
    Ok((bits, mail_to))
}

/// How many entries of `ticket_id` queued mail of `kind` since `since`
/// (unix seconds).
pub(super) fn kind_count_since(
    conn: &Connection,
    ticket_id: i64,
    kind: MailKind,
    since: i64,
) -> Result<i64, StoreError> {
    let since = format_time(jiff::Timestamp::from_second(since).map_err(other)?);
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM thread_entries
             WHERE ticket_id = ?1 AND notify & ?2 <> 0 AND created >= ?3",
        )?
        .query_row(params![ticket_id, kind_bit(kind), since], |r| r.get(0))?)
}

/// Takes up to `room` waiting mails (a little more when the last entry
/// has two), in entry order: writes their outbox rows, claimed until
/// `lease_until` when given, else queued. Returns the new rows' ids.
pub(super) fn take_waiting(
    conn: &Connection,
    w: &mut WriterState,
    now: i64,
    lease_until: Option<i64>,
    room: usize,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::new();
    if room == 0 {
        return Ok(ids);
    }
    let mut last = w.taken.get();
    let waiting: Vec<(i64, i64, i64, Option<String>, String, String)> = conn
        .prepare_cached(
            "SELECT e.id, e.ticket_id, e.notify, e.mail_to, e.created, u.email
             FROM thread_entries e JOIN tickets t ON t.id = e.ticket_id
             JOIN users u ON u.id = t.user_id
             WHERE e.id > ?1 AND e.notify <> 0 ORDER BY e.id LIMIT ?2",
        )?
        .query_map(params![last, room as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    // Fewer than asked for: every entry to the end has been read.
    let mut read_all = waiting.len() < room;
    for (entry_id, ticket_id, notify, mail_to, created, user_email) in waiting {
        if ids.len() >= room {
            read_all = false;
            break;
        }
        let created_at = unix_time(&created).unwrap_or(now);
        for (id, kind, mail) in waiting_views(entry_id, notify, mail_to.as_deref(), &user_email)? {
            let recipients = serde_json::to_string(&mail.recipients).map_err(other)?;
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO outbox (id, ticket_id, entry_id, kind, event, recipients, message_id,
                         state, attempts, next_attempt_at, lease_until, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                         CASE WHEN ?9 IS NULL THEN 'queued' ELSE 'sending' END,
                         CASE WHEN ?9 IS NULL THEN 0 ELSE 1 END, ?8, ?9, ?10)
                     ON CONFLICT(id) DO NOTHING",
                )?
                .execute(params![
                    id,
                    ticket_id,
                    entry_id,
                    kind.as_str(),
                    mail.event.as_str(),
                    recipients,
                    outgoing_message_id(kind, ticket_id, &w.message_domain),
                    now,
                    lease_until,
                    created_at,
                ])?;
            // A row that exists already was taken before (only possible
            // after a hand-made change): it is the sender's as it is.
            if inserted == 1 {
                ids.push(id);
            }
        }
        last = entry_id;
    }
    if read_all {
        last = last.max(
            conn.prepare_cached("SELECT coalesce(max(id), 0) FROM thread_entries")?
                .query_row([], |r| r.get(0))?,
        );
    }
    w.taken.set(last);
    Ok(ids)
}

/// The mail an entry queued, as the read API shows it before the sender
/// takes it (outbox id, kind and view, in id order); taking it writes
/// these.
pub(super) fn waiting_views(
    entry_id: i64,
    notify: i64,
    mail_to: Option<&str>,
    user_email: &str,
) -> Result<Vec<(i64, MailKind, crate::storage::NotificationView)>, StoreError> {
    let event = if notify & MAIL_REPLY != 0 {
        MailEvent::Reply
    } else {
        MailEvent::New
    };
    let mail_to: serde_json::Map<String, serde_json::Value> = match mail_to {
        Some(text) => serde_json::from_str(text).map_err(other)?,
        None => serde_json::Map::new(),
    };
    let mut out = Vec::new();
    for kind in MailKind::ALL {
        if notify & kind_bit(kind) == 0 {
            continue;
        }
        let recipients = match mail_to.get(kind.as_str()) {
            Some(list) => serde_json::from_value(list.clone()).map_err(other)?,
            None => vec![user_email.to_string()],
        };
        out.push((
            outbox_id(entry_id, kind),
            kind,
            crate::storage::NotificationView {
                kind,
                event,
                recipients,
                state: crate::storage::MailState::Queued,
                attempts: 0,
                last_error: None,
                message_id: None,
                sent_at: None,
                created_at: None,
            },
        ));
    }
    Ok(out)
}

pub(super) fn notification_from_row(
    r: &rusqlite::Row<'_>,
) -> Result<crate::storage::NotificationView, StoreError> {
    let recipients: String = r.get(2)?;
    Ok(crate::storage::NotificationView {
        kind: parse_column(r, 0, MailKind::parse)?,
        event: parse_column(r, 1, MailEvent::parse)?,
        recipients: serde_json::from_str(&recipients).map_err(other)?,
        state: parse_column(r, 3, crate::storage::MailState::parse)?,
        attempts: r.get(4)?,
        last_error: r.get(5)?,
        message_id: r.get(6)?,
        sent_at: None,
        created_at: None,
    })
}

/// Claimed outbox row `id` as the sender's job; `None` when the row is
/// gone.
fn outbox_job(conn: &Connection, id: i64) -> Result<Option<crate::storage::OutboxJob>, StoreError> {
    let Some((recipients, ticket_id, mut job, entry_id)) = conn
        .prepare_cached(sql::OUTBOX_JOB)?
        .query_row([id], |r| {
            let user = Party {
                name: r.get(9)?,
                email: r.get(10)?,
            };
            Ok((
                r.get::<_, String>(3)?,
                r.get::<_, i64>(19)?,
                crate::storage::OutboxJob {
                    id: r.get(0)?,
                    kind: parse_column(r, 1, MailKind::parse)?,
                    event: parse_column(r, 2, MailEvent::parse)?,
                    recipients: Vec::new(),
                    message_id: r.get(4)?,
                    attempts: r.get(5)?,
                    created_at: r.get(6)?,
                    number: TicketNumber::from_stored(r.get(7)?),
                    subject: r.get(8)?,
                    user_name: r.get(9)?,
                    user_email: r.get(10)?,
                    topic: r.get(11)?,
                    priority: r.get(12)?,
                    department: r.get(13)?,
                    body: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
                    format: r.get::<_, Option<String>>(15)?.unwrap_or_default(),
                    entry_message_id: r.get(16)?,
                    sender: Party {
                        name: r.get::<_, Option<String>>(17)?.unwrap_or(user.name),
                        email: r.get::<_, Option<String>>(18)?.unwrap_or(user.email),
                    },
                    earlier_mail: Vec::new(),
                    department_id: r.get(20)?,
                    attachments: Vec::new(),
                },
                r.get::<_, Option<i64>>(21)?,
            ))
        })
        .optional()?
    else {
        return Ok(None);
    };
    job.recipients = serde_json::from_str(&recipients).map_err(other)?;
    // A new ticket's mail is its first of its kind: nothing to thread
    // on (and two lookups fewer per ticket).
    if let Some(entry_id) = entry_id
        && job.kind == MailKind::Response
    {
        run_ready(common::response_parts(
            &mut SqliteRows(conn),
            &mut job,
            ticket_id,
            entry_id,
        ))?;
    } else if job.event == MailEvent::Reply {
        job.earlier_mail = run_ready(common::earlier_mail(
            &mut SqliteRows(conn),
            ticket_id,
            job.id,
        ))?;
    }
    Ok(Some(job))
}

impl SqliteStore {
    pub(super) fn claim(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<crate::storage::OutboxJob>, StoreError>> {
        let claimed = self.write(move |conn, w| {
            // Two index walks (the partial indexes outbox_queued, outbox_leased):
            // due queued rows (retries), and rows whose sender's lease ran out;
            // then mail waiting on the thread, taken in entry order.
            let mut ids: Vec<i64> = Vec::new();
            for sql in [
                "SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at LIMIT ?2",
                "SELECT id FROM outbox WHERE state = 'sending' AND lease_until <= ?1 LIMIT ?2",
            ] {
                let mut stmt = conn.prepare_cached(sql)?;
                let rows = stmt.query_map(params![now, limit], |r| r.get::<_, i64>(0))?;
                for row in rows {
                    let id = row?;
                    if ids.len() < limit as usize && !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
            for id in &ids {
                conn.prepare_cached(
                    "UPDATE outbox SET state = 'sending', lease_until = ?2, attempts = attempts + 1
                     WHERE id = ?1",
                )?
                .execute(params![id, lease_until])?;
            }
            let room = (limit as usize).saturating_sub(ids.len());
            ids.extend(take_waiting(conn, w, now, Some(lease_until), room)?);
            Ok(ids)
        });
        Box::pin(async move {
            let ids = claimed.await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            // What each mail says is read once the claim has committed, on
            // a reader, in one read transaction: a claimed row's entry and
            // earlier mail no longer change (its ticket's department or
            // priority may, as they could after the claim before), and
            // reading them (the thread's Message-IDs, the reply's files)
            // was a third of the writer's time under 16 agents replying
            // at 1,000,000 tickets.
            let claimed_ids = ids.clone();
            let read = self
                .read(move |conn| {
                    let tx = conn.unchecked_transaction()?;
                    let mut jobs = Vec::with_capacity(ids.len());
                    let mut unreadable = Vec::new();
                    for id in ids {
                        match outbox_job(&tx, id) {
                            Ok(Some(job)) => jobs.push(job),
                            Ok(None) => {
                                tracing::warn!(outbox_id = id, "a claimed mail's row is gone")
                            }
                            Err(e) => unreadable.push((id, e.to_string())),
                        }
                    }
                    tx.commit()?;
                    Ok((jobs, unreadable))
                })
                .await;
            match read {
                Ok((jobs, unreadable)) => {
                    // A row that cannot be read will not read better later.
                    for (id, error) in unreadable {
                        tracing::warn!(outbox_id = id, %error, "a claimed mail cannot be read");
                        self.mark_failed(id, format!("cannot be read: {error}"))
                            .await?;
                    }
                    Ok(jobs)
                }
                Err(e) => {
                    // Handed back untried, for the next pass.
                    self.mark_retry_many(Vec::new(), claimed_ids, now, String::new())
                        .await?;
                    Err(e)
                }
            }
        })
    }

    pub(super) fn mark_sent(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            conn.prepare_cached(sql::MARK_OUTBOX_SENT)?
                .execute(params![now, id])?;
            Ok(())
        })
    }

    pub(super) fn mark_retry(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            conn.prepare_cached(sql::MARK_OUTBOX_RETRY)?
                .execute(params![next_attempt_at, error, id])?;
            Ok(())
        })
    }

    pub(super) fn mark_retry_many(
        &self,
        tried: Vec<i64>,
        untried: Vec<i64>,
        next_attempt_at: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            if tried.is_empty() && untried.is_empty() {
                return Ok(());
            }
            let tried = serde_json::to_string(&tried).map_err(other)?;
            let untried = serde_json::to_string(&untried).map_err(other)?;
            // One statement for the lot; each list is looked up by the
            // primary key (json_each as in the queue's filters).
            conn.prepare_cached(
                "UPDATE outbox SET state = 'queued', next_attempt_at = ?1, lease_until = NULL,
                     last_error = CASE WHEN id IN (SELECT value FROM json_each(?2))
                                       THEN ?3 ELSE last_error END,
                     attempts = CASE WHEN id IN (SELECT value FROM json_each(?2))
                                     THEN attempts ELSE max(attempts - 1, 0) END
                 WHERE id IN (SELECT value FROM json_each(?2)
                              UNION ALL SELECT value FROM json_each(?4))
                   AND state = 'sending'",
            )?
            .execute(params![next_attempt_at, tried, error, untried])?;
            Ok(())
        })
    }

    pub(super) fn mark_failed(
        &self,
        id: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            conn.prepare_cached(sql::MARK_OUTBOX_FAILED)?
                .execute(params![error, id])?;
            Ok(())
        })
    }

    pub(super) fn list_mail(
        &self,
        state: Option<String>,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<crate::storage::OutboxSummary>, StoreError>> {
        self.read(move |conn| {
            let mut out = Vec::new();
            // Mail not taken yet is the newest: the entries past the last
            // taken one.
            if state.as_deref().is_none_or(|s| s == "queued") {
                let mut stmt = conn.prepare_cached(
                    "SELECT e.id, e.notify, e.mail_to, u.email, t.number
                     FROM thread_entries e JOIN tickets t ON t.id = e.ticket_id
                     JOIN users u ON u.id = t.user_id
                     WHERE e.id > ?1 AND e.notify <> 0
                     ORDER BY e.id DESC LIMIT ?2",
                )?;
                let mut rows = stmt.query(params![taken_up_to(conn)?, limit])?;
                while let Some(r) = rows.next()? {
                    let mail_to: Option<String> = r.get(2)?;
                    let email: String = r.get(3)?;
                    let number: String = r.get(4)?;
                    let waiting = waiting_views(r.get(0)?, r.get(1)?, mail_to.as_deref(), &email)?;
                    for (id, _, notification) in waiting.into_iter().rev() {
                        out.push(crate::storage::OutboxSummary {
                            id,
                            number: TicketNumber::from_stored(number.clone()),
                            notification,
                        });
                    }
                }
                out.truncate(limit as usize);
            }
            let rest = limit.saturating_sub(out.len() as u32);
            let mut stmt = conn.prepare_cached(
                "SELECT o.kind, o.event, o.recipients, o.state, o.attempts, o.last_error, o.message_id,
                        o.id, t.number
                 FROM outbox o JOIN tickets t ON t.id = o.ticket_id
                 WHERE ?1 IS NULL OR o.state = ?1 ORDER BY o.id DESC LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![state, rest])?;
            while let Some(r) = rows.next()? {
                out.push(crate::storage::OutboxSummary {
                    id: r.get(7)?,
                    number: TicketNumber::from_stored(r.get(8)?),
                    notification: notification_from_row(r)?,
                });
            }
            Ok(out)
        })
    }

    pub(super) fn retry_mail(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn, _| {
            let n = conn
                .prepare_cached(sql::RETRY_OUTBOX)?
                .execute(params![now, id])?;
            if n > 0 {
                return Ok(());
            }
            // Mail not taken yet is queued already.
            let per_entry = crate::storage::OUTBOX_IDS_PER_ENTRY;
            let entry_id = id.div_euclid(per_entry);
            let bit = MailKind::from_index(id.rem_euclid(per_entry)).map_or(0, kind_bit);
            let waiting = entry_id > taken_up_to(conn)?
                && conn
                    .prepare_cached(
                        "SELECT 1 FROM thread_entries WHERE id = ?1 AND notify & ?2 <> 0",
                    )?
                    .query_row(params![entry_id, bit], |_| Ok(()))
                    .optional()?
                    .is_some();
            if bit != 0 && waiting {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            }
        })
    }
}
