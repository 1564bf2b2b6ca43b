//! Reads both backends do alike, written once over [`Rows`]: a backend
//! runs a statement of [`super::sql`] and hands back its rows as values;
//! the logic that turns them into tickets, threads and views is here.
//! (Writes stay in the backends: SQLite's run inside its group-commit
//! writer, PostgreSQL's in one statement per ticket.)

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::{
    ApiKeyId, ApiKeyRecord, AttachmentView, BodyFormat, BoxFuture, ColType, DumpValue, EntryFlags,
    EntryKind, EntryView, Named, Party, Source, StoreError, ThreadQuery, ThreadRef, TicketNumber,
    TicketStatus, TicketSummary, TicketView, outgoing_ticket_id, parse_dropped, sql,
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

use ColType::{Blob, Bool, Int, Text};

/// A ticket by number, without its notifications (which each backend
/// keeps its own way); returns its row id too.
pub(crate) async fn load_ticket<R: Rows + ?Sized>(
    db: &mut R,
    number: &TicketNumber,
) -> Result<Option<(i64, TicketView)>, StoreError> {
    const TICKET: &[ColType] = &[
        Int, Text, Text, Text, Text, Int, Text, Int, Text, Int, Text, Text, Text, Text, Text,
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
    let mut view = TicketView {
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
    };
    let id = || vec![DumpValue::Int(ticket_id)];
    for f in db.rows(sql::TICKET_FIELDS, id(), &[Text, Text]).await? {
        let value = serde_json::from_str(&f.text(1)?)
            .map_err(|e| StoreError::other(format!("field value: {e}")))?;
        view.fields.insert(f.text(0)?, value);
    }
    const ENTRY: &[ColType] = &[
        Int, Text, Text, Text, Text, Text, Text, Text, Bool, Bool, Text,
    ];
    for e in db.rows(sql::TICKET_ENTRIES, id(), ENTRY).await? {
        let files = db
            .rows(
                sql::ENTRY_ATTACHMENTS,
                vec![DumpValue::Int(e.int(0)?)],
                &[Text, Text, Int, Blob, Bool, Text],
            )
            .await?;
        let mut attachments = Vec::with_capacity(files.len());
        for f in files {
            attachments.push(AttachmentView {
                name: f.text(0)?,
                content_type: f.text(1)?,
                size: f.int(2)?,
                sha256: hex::encode(f.blob(3)?),
                inline: f.bool(4)?,
                content_id: f.opt_text(5)?,
            });
        }
        view.thread.push(EntryView {
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
