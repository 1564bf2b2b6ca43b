//! Reads both backends do alike, written once over [`Rows`]: a backend
//! runs a statement of [`super::sql`] and hands back its rows as values;
//! the logic that turns them into tickets, threads and views is here.
//! (Writes stay in the backends: SQLite's run inside its group-commit
//! writer, PostgreSQL's in one statement per ticket.)

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::{
    Actor, AgentId, ApiKeyId, ApiKeyRecord, AttachmentView, BodyFormat, BoxFuture, ChangeEvent,
    ColType, DumpValue, EntryFlags, EntryKind, EntryView, Named, Party, Source, StoreError,
    ThreadQuery, ThreadRef, TicketNumber, TicketStatus, TicketSummary, TicketView, WorkState,
    outgoing_ticket_id, parse_dropped, sql,
};

/// Runs a shared statement: `params` bound in order, each column read as
/// its [`ColType`] (NULL as [`DumpValue::Null`]).
pub(crate) trait Rows {
    /// The statement's rows.
    fn rows<'a>(
        &'a mut self,
        sql: &'static str,
        params: Vec<DumpValue>,
        cols: &'static [ColType],
    ) -> BoxFuture<'a, Result<Vec<Row>, StoreError>>;
}

/// One row of values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(pub Vec<DumpValue>);

fn column_error(i: usize, want: &str, got: &DumpValue) -> StoreError {
    StoreError::other(format!("column {i}: expected {want}, got {got:?}"))
}

impl Row {
    fn get(&self, i: usize) -> Result<&DumpValue, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::other(format!("no column {i}")))
    }

    /// An integer column.
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.get(i)? {
            DumpValue::Int(n) => Ok(*n),
            other => Err(column_error(i, "an integer", other)),
        }
    }

    /// A nullable integer column.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.get(i)? {
            DumpValue::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    /// A text column.
    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.get(i)? {
            DumpValue::Text(t) => Ok(t.clone()),
            other => Err(column_error(i, "text", other)),
        }
    }

    /// A nullable text column.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.get(i)? {
            DumpValue::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    /// A boolean column (SQLite's 0/1 read as [`ColType::Bool`]).
    pub fn bool(&self, i: usize) -> Result<bool, StoreError> {
        match self.get(i)? {
            DumpValue::Bool(b) => Ok(*b),
            other => Err(column_error(i, "a boolean", other)),
        }
    }

    /// A text column that names a value of a closed set.
    pub fn parsed<T>(
        &self,
        i: usize,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, StoreError> {
        let text = self.text(i)?;
        parse(&text)
            .ok_or_else(|| StoreError::other(format!("column {i}: unexpected value {text:?}")))
    }

    /// A time column (RFC 3339 text).
    pub fn time(&self, i: usize) -> Result<jiff::Timestamp, StoreError> {
        self.parsed(i, |t| t.parse().ok())
    }

    /// A blob column.
    pub fn blob(&self, i: usize) -> Result<&[u8], StoreError> {
        match self.get(i)? {
            DumpValue::Blob(b) => Ok(b),
            other => Err(column_error(i, "bytes", other)),
        }
    }
}

/// Runs a future that never waits (SQLite's [`Rows`] answers at once) on
/// the calling thread, so the shared logic serves a synchronous caller.
pub(crate) fn run_ready<T>(
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => Err(StoreError::other(
            "a synchronous read had to wait (a backend bug)",
        )),
    }
}

use crate::domain::views::TicketHead;
use ColType::{Blob, Bool, Int, Text};

/// A ticket's head (one row), for work that does not need its thread.
pub(crate) async fn ticket_head<R: Rows + ?Sized>(
    db: &mut R,
    number: &TicketNumber,
) -> Result<Option<TicketHead>, StoreError> {
    Ok(ticket_row(db, number).await?.map(|v| v.head()))
}

/// A ticket by number, without its notifications (which each backend
/// keeps its own way); returns its row id too.
pub(crate) async fn load_ticket<R: Rows + ?Sized>(
    db: &mut R,
    number: &TicketNumber,
) -> Result<Option<(i64, TicketView)>, StoreError> {
    let Some(mut view) = ticket_row(db, number).await? else {
        return Ok(None);
    };
    let ticket_id = view.work.ticket_id;
    let id = || vec![DumpValue::Int(ticket_id)];
    const CHANGE: &[ColType] = &[Text, Text, Int, Text, Text, Text];
    for c in db.rows(sql::TICKET_CHANGES, id(), CHANGE).await? {
        view.work.changes.push(ChangeEvent {
            created: c.time(0)?,
            actor: Actor::from_stored(&c.text(1)?, c.opt_int(2)?, c.text(3)?),
            action: c.text(4)?,
            detail: serde_json::from_str(&c.text(5)?)
                .map_err(|e| StoreError::other(format!("ticket_events.detail: {e}")))?,
        });
    }
    for f in db.rows(sql::TICKET_FIELDS, id(), &[Text, Text]).await? {
        let value = serde_json::from_str(&f.text(1)?)
            .map_err(|e| StoreError::other(format!("field value: {e}")))?;
        view.fields.insert(f.text(0)?, value);
    }
    const ENTRY: &[ColType] = &[
        Int, Text, Text, Text, Text, Text, Text, Text, Bool, Bool, Text, Int,
    ];
    let mut files: std::collections::HashMap<i64, Vec<AttachmentView>> =
        std::collections::HashMap::new();
    for f in db
        .rows(
            sql::TICKET_ATTACHMENTS,
            id(),
            &[Int, Text, Text, Int, Blob, Bool, Text, Int],
        )
        .await?
    {
        files.entry(f.int(0)?).or_default().push(AttachmentView {
            id: f.int(7)?,
            name: f.text(1)?,
            content_type: f.text(2)?,
            size: f.int(3)?,
            sha256: hex::encode(f.blob(4)?),
            inline: f.bool(5)?,
            content_id: f.opt_text(6)?,
        });
    }
    for e in db.rows(sql::TICKET_ENTRIES, id(), ENTRY).await? {
        let attachments = files.remove(&e.int(0)?).unwrap_or_default();
        view.thread.push(EntryView {
            id: e.int(0)?,
            agent: e.opt_int(11)?.map(AgentId),
            kind: e.parsed(1, EntryKind::parse)?,
            format: e.parsed(2, BodyFormat::parse)?,
            body: e.text(3)?,
            from: Party {
                name: e.text(4)?,
                email: e.text(5)?,
            },
            created: e.time(6)?,
            message_id: e.opt_text(7)?,
            flags: EntryFlags {
                auto_reply: e.bool(8)?,
                bounce: e.bool(9)?,
            },
            attachments,
            dropped: parse_dropped(e.opt_text(10)?)?,
        });
    }
    Ok(Some((ticket_id, view)))
}

/// The ticket row of `number` as a view with nothing else (no thread,
/// fields, changes or mail).
async fn ticket_row<R: Rows + ?Sized>(
    db: &mut R,
    number: &TicketNumber,
) -> Result<Option<TicketView>, StoreError> {
    const TICKET: &[ColType] = &[
        Int, Text, Text, Text, Text, Int, Text, Int, Text, Int, Text, Text, Text, Text, Text, Int,
        Text, Text, Text, Text, Int,
    ];
    let rows = db
        .rows(
            sql::TICKET_BY_NUMBER,
            vec![DumpValue::Text(number.as_str().into())],
            TICKET,
        )
        .await?;
    let Some(r) = rows.into_iter().next() else {
        return Ok(None);
    };
    let named = |id: Option<i64>, name: Option<String>| match (id, name) {
        (Some(id), Some(name)) => Some(Named { id, name }),
        _ => None,
    };
    let ticket_id = r.int(0)?;
    Ok(Some(TicketView {
        number: TicketNumber::from_stored(r.text(1)?),
        subject: r.text(2)?,
        status: r.parsed(3, TicketStatus::parse)?,
        source: r.parsed(4, Source::parse)?,
        priority: Named {
            id: r.int(5)?,
            name: r.text(6)?,
        },
        topic: named(r.opt_int(7)?, r.opt_text(8)?),
        department: named(r.opt_int(9)?, r.opt_text(10)?),
        user: Party {
            name: r.text(11)?,
            email: r.text(12)?,
        },
        ip: r.text(13)?,
        created: r.time(14)?,
        fields: serde_json::Map::new(),
        thread: Vec::new(),
        notifications: Vec::new(),
        work: WorkState {
            ticket_id,
            assignee: named(r.opt_int(15)?, r.opt_text(16)?),
            updated: r.time(17)?,
            last_message_at: r.time(18)?,
            status_changed: r.opt_text(19)?.and_then(|t| t.parse().ok()),
            version: r.int(20)?,
            changes: Vec::new(),
        },
    }))
}

/// The ticket an email continues: a thread message it names (ours
/// included: the Message-IDs of our autoresponses and alerts carry the
/// ticket id, and their outbox row proves they are ours), else the
/// `[#number]` of a ticket whose user sent it (API.md, Email).
pub(crate) async fn find_thread<R: Rows + ?Sized>(
    db: &mut R,
    query: &ThreadQuery,
) -> Result<Option<ThreadRef>, StoreError> {
    const THREAD: &[ColType] = &[Int, Text, Int];
    let found = |rows: Vec<Row>| -> Result<Option<ThreadRef>, StoreError> {
        rows.into_iter()
            .next()
            .map(|r| {
                Ok(ThreadRef {
                    ticket_id: r.int(0)?,
                    number: TicketNumber::from_stored(r.text(1)?),
                    department: r.opt_int(2)?,
                })
            })
            .transpose()
    };
    for id in &query.thread_ids {
        let text = || DumpValue::Text(id.clone());
        let hit = found(
            db.rows(sql::THREAD_BY_MESSAGE_ID, vec![text()], THREAD)
                .await?,
        )?;
        if hit.is_some() {
            return Ok(hit);
        }
        if let Some(ticket_id) = outgoing_ticket_id(id) {
            let params = vec![DumpValue::Int(ticket_id), text()];
            let hit = found(
                db.rows(sql::THREAD_BY_OUR_MESSAGE_ID, params, THREAD)
                    .await?,
            )?;
            if hit.is_some() {
                return Ok(hit);
            }
        }
    }
    if let Some(number) = &query.subject_number {
        let params = vec![
            DumpValue::Text(number.clone()),
            DumpValue::Text(query.from.as_str().into()),
        ];
        return found(
            db.rows(sql::THREAD_BY_NUMBER_FROM_USER, params, THREAD)
                .await?,
        );
    }
    Ok(None)
}

/// Newest tickets first.
pub(crate) async fn list_tickets<R: Rows + ?Sized>(
    db: &mut R,
    limit: u32,
) -> Result<Vec<TicketSummary>, StoreError> {
    let rows = db
        .rows(
            sql::LIST_TICKETS,
            vec![DumpValue::Int(i64::from(limit))],
            &[Text, Text, Text, Text, Text],
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(TicketSummary {
                number: TicketNumber::from_stored(r.text(0)?),
                subject: r.text(1)?,
                status: r.parsed(2, TicketStatus::parse)?,
                user_email: r.text(3)?,
                created: r.time(4)?,
            })
        })
        .collect()
}

/// Whether a ticket number is taken.
pub(crate) async fn ticket_exists<R: Rows + ?Sized>(
    db: &mut R,
    number: &TicketNumber,
) -> Result<bool, StoreError> {
    let rows = db
        .rows(
            sql::TICKET_EXISTS,
            vec![DumpValue::Text(number.as_str().into())],
            &[Int],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// The Message-IDs of the ticket's mail of the same kind as outbox row
/// `id` that came before it: the first and the latest (an alert threads
/// on the ticket's earlier alerts).
pub(crate) async fn earlier_mail<R: Rows + ?Sized>(
    db: &mut R,
    ticket_id: i64,
    id: i64,
) -> Result<Vec<String>, StoreError> {
    let offset = id.rem_euclid(super::OUTBOX_IDS_PER_ENTRY);
    let mut ids = Vec::with_capacity(2);
    for statement in [sql::FIRST_EARLIER_MAIL, sql::LATEST_EARLIER_MAIL] {
        let params = vec![
            DumpValue::Int(offset),
            DumpValue::Int(ticket_id),
            DumpValue::Int(id),
        ];
        for r in db.rows(statement, params, &[Text]).await? {
            let m = r.text(0)?;
            if !ids.contains(&m) {
                ids.push(m);
            }
        }
    }
    Ok(ids)
}

/// The columns of [`sql::FIND_API_KEY`] and [`sql::LIST_API_KEYS`].
const KEY: &[ColType] = &[Int, Blob, Text, Text, Bool, Bool, Bool, Text, Text];

fn key_from_row(r: &Row) -> Result<ApiKeyRecord, StoreError> {
    let hash: [u8; 32] = r
        .blob(1)?
        .try_into()
        .map_err(|_| StoreError::other("api_keys.hash is not 32 bytes"))?;
    Ok(ApiKeyRecord {
        id: ApiKeyId(r.int(0)?),
        hash,
        prefix: r.text(2)?,
        addresses: serde_json::from_str(&r.text(3)?)
            .map_err(|e| StoreError::other(format!("api_keys.addresses: {e}")))?,
        is_active: r.bool(4)?,
        can_create: r.bool(5)?,
        can_read: r.bool(6)?,
        notes: r.text(7)?,
        created: r.text(8)?,
    })
}

/// An API key by the SHA-256 of its secret.
pub(crate) async fn find_api_key<R: Rows + ?Sized>(
    db: &mut R,
    hash: &[u8; 32],
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let rows = db
        .rows(sql::FIND_API_KEY, vec![DumpValue::Blob(hash.to_vec())], KEY)
        .await?;
    rows.first().map(key_from_row).transpose()
}

/// Every API key, oldest first.
pub(crate) async fn list_api_keys<R: Rows + ?Sized>(
    db: &mut R,
) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let rows = db.rows(sql::LIST_API_KEYS, Vec::new(), KEY).await?;
    rows.iter().map(key_from_row).collect()
}

// ---- the staff side's writes and reads, alike on both backends

/// Records that `entry` joined ticket `ticket_id`: `updated`, the entry
/// count, the version, the user's last message, and a status: the one a
/// staff reply sets, or the domain's rule for a message (a person's
/// message reopens a resolved or closed ticket; automatic mail never
/// does), with its event. Returns the ticket's new version.
pub(crate) async fn entry_added<R: Rows + ?Sized>(
    db: &mut R,
    ticket_id: i64,
    entry: &super::NewEntry,
    status: Option<&(TicketStatus, ChangeEvent)>,
    now: jiff::Timestamp,
) -> Result<i64, StoreError> {
    let automatic = entry.auto_reply || entry.bounce;
    let (new_status, event) = match status {
        Some((s, e)) => (Some(*s), Some(e.clone())),
        None if entry.kind == EntryKind::Message => {
            let rows = db
                .rows(sql::TICKET_STATUS, vec![DumpValue::Int(ticket_id)], &[Text])
                .await?;
            let current = rows
                .first()
                .ok_or(StoreError::NotFound)?
                .parsed(0, TicketStatus::parse)?;
            match crate::domain::work::status_after_message(current, automatic) {
                Some(s) => {
                    let actor = Actor::User {
                        name: entry.from_name.clone(),
                    };
                    let e = crate::domain::work::status_event(&actor, current, s, now);
                    (Some(s), Some(e))
                }
                None => (None, None),
            }
        }
        None => (None, None),
    };
    let created = super::format_time(now);
    let is_user_message = entry.kind == EntryKind::Message && !automatic;
    let version = db
        .rows(
            sql::TOUCH_TICKET,
            vec![
                DumpValue::Text(created),
                DumpValue::Bool(is_user_message),
                new_status.map_or(DumpValue::Null, |s| DumpValue::Text(s.as_str().into())),
                DumpValue::Int(ticket_id),
            ],
            &[Int],
        )
        .await?
        .first()
        .ok_or(StoreError::NotFound)?
        .int(0)?;
    if let Some(e) = event {
        insert_event(db, ticket_id, &e).await?;
    }
    Ok(version)
}

/// Stores a change event.
pub(crate) async fn insert_event<R: Rows + ?Sized>(
    db: &mut R,
    ticket_id: i64,
    e: &ChangeEvent,
) -> Result<(), StoreError> {
    db.rows(
        sql::INSERT_EVENT,
        vec![
            DumpValue::Int(ticket_id),
            DumpValue::Text(super::format_time(e.created)),
            DumpValue::Text(e.actor.kind().into()),
            DumpValue::Bool(e.actor.agent_id().is_some()),
            DumpValue::Int(e.actor.agent_id().map_or(0, |a| a.0)),
            DumpValue::Text(e.actor.name().into()),
            DumpValue::Text(e.action.clone()),
            DumpValue::Text(e.detail.to_string()),
        ],
        &[],
    )
    .await?;
    Ok(())
}

/// Writes a change if the ticket is still at its version.
pub(crate) async fn change_ticket<R: Rows + ?Sized>(
    db: &mut R,
    c: &crate::domain::work::TicketChange,
) -> Result<(), StoreError> {
    // A nullable id: a flag and a value, never a NULL parameter (sql.rs).
    let opt_int = |v: Option<i64>| [DumpValue::Bool(v.is_some()), DumpValue::Int(v.unwrap_or(0))];
    let opt_text = |v: Option<&str>| v.map_or(DumpValue::Null, |t| DumpValue::Text(t.into()));
    let f = &c.fields;
    let rows = db
        .rows(
            sql::CHANGE_TICKET,
            vec![DumpValue::Text(f.status.as_str().into())]
                .into_iter()
                .chain(opt_int(f.assignee.as_ref().map(|a| a.id)))
                .chain(opt_int(f.department.as_ref().map(|d| d.id)))
                .chain([opt_text(f.department.as_ref().map(|d| d.name.as_str()))])
                .chain([
                    DumpValue::Int(f.priority.id),
                    DumpValue::Text(f.priority.name.clone()),
                ])
                .chain(opt_int(f.topic.as_ref().map(|t| t.id)))
                .chain([
                    opt_text(f.topic.as_ref().map(|t| t.name.as_str())),
                    DumpValue::Bool(c.status_changed),
                    DumpValue::Text(super::format_time(c.now)),
                    DumpValue::Int(c.ticket_id),
                    DumpValue::Int(c.version),
                ])
                .collect(),
            &[Int],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::VersionMismatch);
    }
    for e in &c.events {
        insert_event(db, c.ticket_id, e).await?;
    }
    Ok(())
}

/// An active agent's name.
pub(crate) async fn agent_name<R: Rows + ?Sized>(
    db: &mut R,
    id: AgentId,
) -> Result<Option<String>, StoreError> {
    let rows = db
        .rows(sql::AGENT_NAME, vec![DumpValue::Int(id.0)], &[Text])
        .await?;
    rows.first().map(|r| r.text(0)).transpose()
}

/// An active agent by address, with departments.
pub(crate) async fn agent_for_mail<R: Rows + ?Sized>(
    db: &mut R,
    email: &str,
) -> Result<Option<crate::domain::staff::Agent>, StoreError> {
    let rows = db
        .rows(
            sql::AGENT_BY_EMAIL,
            vec![DumpValue::Text(email.into())],
            &[Int, Text, Text, Bool, Bool],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let id = r.int(0)?;
    let mut departments = Vec::new();
    for d in db
        .rows(sql::AGENT_DEPARTMENTS, vec![DumpValue::Int(id)], &[Int])
        .await?
    {
        departments.push(d.int(0)?);
    }
    Ok(Some(crate::domain::staff::Agent {
        id: AgentId(id),
        email: r.text(1)?,
        name: r.text(2)?,
        admin: r.bool(3)?,
        active: r.bool(4)?,
        departments,
    }))
}

/// An attachment's file.
pub(crate) async fn attachment<R: Rows + ?Sized>(
    db: &mut R,
    id: i64,
) -> Result<Option<super::StoredFile>, StoreError> {
    let rows = db
        .rows(
            sql::ATTACHMENT_FILE,
            vec![DumpValue::Int(id)],
            &[Text, Text, Blob, Int, Int, Text],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(super::StoredFile {
        name: r.text(0)?,
        content_type: r.text(1)?,
        data: r.blob(2)?.to_vec(),
        department: r.opt_int(3)?,
        assignee: r.opt_int(4)?.map(AgentId),
        kind: r.parsed(5, EntryKind::parse)?,
    }))
}

/// The Message-IDs a response to the user names: the user's messages
/// before it, oldest first (at most the last 20).
pub(crate) async fn user_message_ids<R: Rows + ?Sized>(
    db: &mut R,
    ticket_id: i64,
    entry_id: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = db
        .rows(
            sql::USER_MESSAGE_IDS,
            vec![DumpValue::Int(ticket_id), DumpValue::Int(entry_id)],
            &[Text],
        )
        .await?;
    let mut ids = rows
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    ids.reverse();
    Ok(ids)
}

/// What a response's mail carries besides its entry: the user's
/// Message-IDs it answers and the entry's files.
pub(crate) async fn response_parts<R: Rows + ?Sized>(
    db: &mut R,
    job: &mut super::OutboxJob,
    ticket_id: i64,
    entry_id: i64,
) -> Result<(), StoreError> {
    job.earlier_mail = user_message_ids(db, ticket_id, entry_id).await?;
    for r in db
        .rows(
            sql::ENTRY_FILES,
            vec![DumpValue::Int(entry_id)],
            &[Text, Text, Blob],
        )
        .await?
    {
        job.attachments.push(super::OutgoingFile {
            name: r.text(0)?,
            content_type: r.text(1)?,
            data: r.blob(2)?.to_vec(),
        });
    }
    Ok(())
}

// ---- Idempotency-Key (domain::idempotency)

/// The claim remembered under `scope`, unless forgotten.
pub(crate) async fn idempotency_claim(
    rows: &mut impl Rows,
    scope: [u8; 32],
    expired_before: i64,
) -> Result<Option<crate::domain::idempotency::StoredClaim>, StoreError> {
    let found = rows
        .rows(
            sql::IDEMPOTENCY_CLAIM,
            vec![
                DumpValue::Blob(scope.to_vec()),
                DumpValue::Int(expired_before),
            ],
            &[ColType::Blob, ColType::Text],
        )
        .await?;
    let Some(row) = found.first() else {
        return Ok(None);
    };
    let fingerprint = <[u8; 32]>::try_from(row.blob(0)?)
        .map_err(|_| StoreError::other("an idempotency fingerprint is not 32 bytes"))?;
    Ok(Some(crate::domain::idempotency::StoredClaim {
        fingerprint,
        answer: row.text(1)?,
    }))
}

/// Remembers `claim` with the request's `answer`, in the caller's
/// transaction; a key already taken is [`StoreError::IdempotencyKeyUsed`]
/// (the caller's transaction must then be rolled back: the ticket it
/// wrote is not to be kept).
pub(crate) async fn claim_idempotency(
    rows: &mut impl Rows,
    claim: &crate::domain::idempotency::IdempotencyClaim,
    answer: &str,
) -> Result<(), StoreError> {
    let cutoff = claim.expired_before();
    rows.rows(sql::FORGET_IDEMPOTENCY, vec![DumpValue::Int(cutoff)], &[])
        .await?;
    let taken = rows
        .rows(
            sql::CLAIM_IDEMPOTENCY,
            vec![
                DumpValue::Blob(claim.scope.to_vec()),
                DumpValue::Blob(claim.fingerprint.to_vec()),
                DumpValue::Text(answer.to_string()),
                DumpValue::Int(claim.now),
                DumpValue::Int(cutoff),
            ],
            &[ColType::Int],
        )
        .await?
        .is_empty();
    if taken {
        return Err(StoreError::IdempotencyKeyUsed);
    }
    Ok(())
}
