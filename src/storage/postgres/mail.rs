//! The outbox on PostgreSQL: claims with `FOR UPDATE SKIP LOCKED`, so
//! instances sharing the database never take the same mail.

use super::*;

impl PgStore {
    pub(super) fn claim(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<OutboxJob>, StoreError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            // SKIP LOCKED: instances sharing the database never claim the
            // same row.
            let mut ids: Vec<i64> = Vec::new();
            for sql in [
                "UPDATE outbox SET state = 'sending', lease_until = $2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= $1
                              ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id",
                "UPDATE outbox SET state = 'sending', lease_until = $2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM outbox WHERE state = 'sending' AND lease_until <= $1
                              LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id",
            ] {
                let room = i64::from(limit) - ids.len() as i64;
                if room <= 0 {
                    break;
                }
                let claimed: Vec<i64> = sqlx::query_scalar(sql)
                    .bind(now)
                    .bind(lease_until)
                    .bind(room)
                    .fetch_all(&mut *tx)
                    .await?;
                ids.extend(claimed);
            }
            let mut jobs = Vec::with_capacity(ids.len());
            for id in ids {
                let r = sqlx::query(sql::OUTBOX_JOB)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                let recipients: String = r.try_get(3)?;
                let ticket_id: i64 = r.try_get(19)?;
                let user_name: String = r.try_get(9)?;
                let user_email: String = r.try_get(10)?;
                let sender = Party {
                    name: r
                        .try_get::<Option<String>, _>(17)?
                        .unwrap_or_else(|| user_name.clone()),
                    email: r
                        .try_get::<Option<String>, _>(18)?
                        .unwrap_or_else(|| user_email.clone()),
                };
                let kind: String = r.try_get(1)?;
                let event: String = r.try_get(2)?;
                // A new ticket's mail is its first of its kind: nothing
                // to thread on (and two lookups fewer per ticket).
                let entry_id: Option<i64> = r.try_get(21)?;
                let earlier_mail = if event == MailEvent::Reply.as_str() {
                    common::earlier_mail(&mut PgRows(&mut tx), ticket_id, id).await?
                } else {
                    Vec::new()
                };
                jobs.push(OutboxJob {
                    id: r.try_get(0)?,
                    kind: MailKind::parse(&kind)
                        .ok_or_else(|| other(format!("outbox row {id}: unknown kind {kind:?}")))?,
                    event: MailEvent::parse(&event).ok_or_else(|| {
                        other(format!("outbox row {id}: unknown event {event:?}"))
                    })?,
                    recipients: serde_json::from_str(&recipients).map_err(other)?,
                    message_id: r.try_get(4)?,
                    attempts: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                    number: TicketNumber::from_stored(r.try_get(7)?),
                    subject: r.try_get(8)?,
                    user_name,
                    user_email,
                    topic: r.try_get(11)?,
                    priority: r.try_get(12)?,
                    department: r.try_get(13)?,
                    body: r.try_get::<Option<String>, _>(14)?.unwrap_or_default(),
                    format: r.try_get::<Option<String>, _>(15)?.unwrap_or_default(),
                    entry_message_id: r.try_get(16)?,
                    sender,
                    earlier_mail,
                    department_id: r.try_get(20)?,
                    attachments: Vec::new(),
                });
                if let (Some(job), Some(entry_id)) = (jobs.last_mut(), entry_id)
                    && job.kind == MailKind::Response
                {
                    common::response_parts(&mut PgRows(&mut tx), job, ticket_id, entry_id).await?;
                }
            }
            tx.commit().await?;
            Ok(jobs)
        })
    }

    pub(super) fn mark_sent(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(sql::MARK_OUTBOX_SENT)
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    pub(super) fn mark_retry(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(sql::MARK_OUTBOX_RETRY)
                .bind(next_attempt_at)
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await?;
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
        Box::pin(async move {
            if tried.is_empty() && untried.is_empty() {
                return Ok(());
            }
            sqlx::query(
                "UPDATE outbox SET state = 'queued', next_attempt_at = $1, lease_until = NULL,
                     last_error = CASE WHEN id = ANY($2) THEN $3 ELSE last_error END,
                     attempts = CASE WHEN id = ANY($2) THEN attempts ELSE GREATEST(attempts - 1, 0) END
                 WHERE id = ANY($2 || $4) AND state = 'sending'",
            )
            .bind(next_attempt_at)
            .bind(tried)
            .bind(error)
            .bind(untried)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    pub(super) fn mark_failed(
        &self,
        id: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(sql::MARK_OUTBOX_FAILED)
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    pub(super) fn list_mail(
        &self,
        state: Option<String>,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<OutboxSummary>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT o.kind, o.event, o.recipients, o.state, o.attempts, o.last_error, o.message_id,
                        o.id, t.number
                 FROM outbox o JOIN tickets t ON t.id = o.ticket_id
                 WHERE $1::text IS NULL OR o.state = $1 ORDER BY o.id DESC LIMIT $2",
            )
            .bind(state)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(OutboxSummary {
                        id: r.try_get(7)?,
                        number: TicketNumber::from_stored(r.try_get(8)?),
                        notification: notification(r)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn retry_mail(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let done = sqlx::query(sql::RETRY_OUTBOX)
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }
}
