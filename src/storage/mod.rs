//! Persistence: the [`Store`] trait, its records and [`StoreError`].
//!
//! Backend SQL lives only in the backend modules (`sqlite.rs`; PostgreSQL
//! later). Nothing here knows about HTTP or request formats.

mod common;
pub mod postgres;
mod queue_sql;
mod search;
mod sql;
pub mod sqlite;
pub mod staff;

pub use staff::{
    AddedEntry, AgentCredentials, AgentStore, NewAgent, NewAgentToken, QueueStore,
    SLIDE_EVERY_SECS, StoredFile, WorkStore,
};

use std::future::Future;
use std::pin::Pin;

use ipnet::IpNet;

/// A boxed future, so that `Store` can be used as `Arc<dyn Store>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Storage failures, as the caller must treat them.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database is busy, shutting down or unreachable (no
    /// connection in time, a connection lost, a disk full): retry later.
    #[error("storage busy or unavailable: {0}")]
    Busy(String),
    /// What the write was planned on changed meanwhile (an email's thread
    /// appeared): nothing was written; plan again.
    #[error("the data changed while the write was planned")]
    Stale,
    /// The ticket's version is not the one the change was made on
    /// (`If-Match`): nothing was written.
    #[error("the ticket changed since it was read")]
    VersionMismatch,
    /// The request's `Idempotency-Key` was used (and not forgotten yet)
    /// by another request: nothing was written. What that request got is
    /// read anew ([`Store::idempotency_claim`]) once this answer arrives:
    /// by then the other request's transaction has committed (SQLite
    /// answers a group's requests after its COMMIT; PostgreSQL's claim
    /// waits for the other transaction).
    #[error("the idempotency key was used before")]
    IdempotencyKeyUsed,
    /// Anything else (I/O, corruption, bugs), with its cause kept for
    /// the log.
    #[error("storage failure: {0}")]
    Other(#[source] std::sync::Arc<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// [`StoreError::Other`] from an error or a message.
    pub fn other(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Other(std::sync::Arc::from(cause.into()))
    }
}

/// A file to store with a thread entry.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// File name.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Content; stored once per distinct SHA-256.
    pub data: Vec<u8>,
    /// SHA-256 of `data`.
    pub sha256: [u8; 32],
    /// Shown inline.
    pub inline: bool,
    /// Content-ID without angle brackets.
    pub content_id: Option<String>,
}

/// The first message of a new ticket.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// What it is.
    pub kind: EntryKind,
    /// Text or html.
    pub format: BodyFormat,
    /// UTF-8 body (sanitised when html).
    pub body: String,
    /// Sender name.
    pub from_name: String,
    /// Sender address.
    pub from_email: EmailAddress,
    /// Message-ID without angle brackets (email).
    pub message_id: Option<String>,
    /// Auto-reply flag (email).
    pub auto_reply: bool,
    /// Bounce flag (email).
    pub bounce: bool,
    /// Files.
    pub attachments: Vec<NewAttachment>,
    /// Email parts left out (name, size, reason), shown to staff.
    pub dropped: Vec<DroppedPart>,
    /// The agent who wrote it (a response or note).
    pub agent: Option<AgentId>,
}

/// The `thread_entries.dropped` column of an entry: JSON, NULL when
/// nothing was left out.
pub(crate) fn dropped_column(dropped: &[DroppedPart]) -> Result<Option<String>, StoreError> {
    if dropped.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(dropped)
        .map(Some)
        .map_err(|e| StoreError::other(e.to_string()))
}

/// The entry's dropped parts from its column.
pub(crate) fn parse_dropped(column: Option<String>) -> Result<Vec<DroppedPart>, StoreError> {
    match column {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::other(e.to_string())),
    }
}

/// A form value to store with a ticket.
#[derive(Debug, Clone)]
pub struct NewFieldValue {
    /// Form name (`user`, `ticket`, or a topic form).
    pub form: String,
    /// Field name.
    pub name: String,
    /// Normalised value (API.md, Read a ticket: `fields`).
    pub value: serde_json::Value,
}

/// The read models storage fills (`domain::views`).
pub use crate::domain::staff::{Actor, AgentId};
pub use crate::domain::views::{
    ApiKeyId, AttachmentView, BodyFormat, ChangeEvent, DroppedPart, EmailAddress, EntryFlags,
    EntryKind, EntryView, MailState, Named, NotificationView, OutboxSummary, Party, Source,
    TicketNumber, TicketStatus, TicketSummary, TicketView, WorkState, format_time,
};

/// A mail to queue, as the domain decided it (`domain::notify`).
pub use crate::domain::notify::{Cap, CapScope, MailEvent, MailKind, QueuedMail};

/// Logs a mail its cap refused (both backends).
pub(crate) fn log_capped(ticket_id: i64, kind: MailKind) {
    tracing::warn!(
        ticket.id = ticket_id,
        mail.kind = kind.as_str(),
        "mail cap reached: not queued (a mail loop?)"
    );
}

/// A ticket ready to be stored: every value already validated.
#[derive(Debug, Clone)]
pub struct NewTicket {
    /// User's address (unique, case-insensitive).
    pub user_email: EmailAddress,
    /// User's name (kept only when the user is new).
    pub user_name: String,
    /// Subject.
    pub subject: String,
    /// How it came in.
    pub source: Source,
    /// Priority.
    pub priority: Named,
    /// Help topic.
    pub topic: Option<Named>,
    /// Department.
    pub department: Option<Named>,
    /// Client IP address.
    pub ip: String,
    /// Send staff alerts.
    pub alert: bool,
    /// Send the user an autoresponse.
    pub autorespond: bool,
    /// Form values.
    pub fields: Vec<NewFieldValue>,
    /// The first thread entry.
    pub entry: NewEntry,
    /// The mail it queues (in the same transaction), caps applied by the
    /// store.
    pub mail: Vec<QueuedMail>,
    /// When it was made (also the caps' clock).
    pub now: jiff::Timestamp,
    /// The request's `Idempotency-Key`, remembered in the same
    /// transaction with the answer (for an email: whatever became of it).
    pub idempotency: Option<crate::domain::idempotency::IdempotencyClaim>,
}

/// What identifies the ticket an email may continue (API.md, Email).
#[derive(Debug, Clone)]
pub struct ThreadQuery {
    /// Ids that may name a message of an existing thread: In-Reply-To,
    /// References, and for a bounce the returned message's Message-ID.
    pub thread_ids: Vec<String>,
    /// `[#number]` from the subject: honoured only when the sender is the
    /// ticket's user.
    pub subject_number: Option<String>,
    /// The sender's address.
    pub from: EmailAddress,
}

/// A ticket an email continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRef {
    /// Row id.
    pub ticket_id: i64,
    /// Number.
    pub number: TicketNumber,
    /// Its department (for the alert's recipients).
    pub department: Option<i64>,
}

/// An email to file: a new ticket, or an entry of the ticket it answers.
#[derive(Debug, Clone)]
pub struct NewEmail {
    /// Message-ID (claimed once: exactly-once processing).
    pub message_id: Option<String>,
    /// How to find the ticket it continues.
    pub query: ThreadQuery,
    /// The ticket it continues, found by [`Store::find_thread`]; `None`:
    /// it opens `ticket` (or, a bounce, is only logged).
    pub thread: Option<ThreadRef>,
    /// A bounce never opens a ticket.
    pub is_bounce: bool,
    /// The ticket to open when the message continues none; its `entry`
    /// and `mail` are what is appended otherwise.
    pub ticket: NewTicket,
    /// The raw message, deflate-compressed.
    pub raw_compressed: Vec<u8>,
}

/// What became of an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailOutcome {
    /// A new ticket.
    Created(TicketNumber),
    /// Appended to this ticket.
    Appended(TicketNumber),
    /// This Message-ID was processed before (into this ticket, if any).
    Duplicate(Option<TicketNumber>),
    /// A bounce that names no ticket: logged, nothing stored.
    BounceLogged,
}

impl EmailOutcome {
    /// The `201` body it gets: the ticket's number, or nothing.
    pub fn answer(&self) -> &str {
        match self {
            EmailOutcome::Created(n)
            | EmailOutcome::Appended(n)
            | EmailOutcome::Duplicate(Some(n)) => n.as_str(),
            EmailOutcome::Duplicate(None) | EmailOutcome::BounceLogged => "",
        }
    }
}

/// How ticket numbers are drawn.
#[derive(Debug, Clone)]
pub struct NumberPolicy {
    /// `######`-style pattern.
    pub format: String,
    /// Counter instead of random digits.
    pub sequential: bool,
    /// Random numbers: the share of the pattern's numbers in use at which
    /// one more digit is drawn (`tickets.number_widen_at`).
    pub widen_at: f64,
    /// Digits added to the pattern so far (shared by the clones of one
    /// store; learnt again after a restart at the first taken number).
    pub widened: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// How often a taken random ticket number is redrawn.
pub const NUMBER_ATTEMPTS: usize = 100;

impl NumberPolicy {
    /// Each `#` a random digit; osTicket never starts with 0. The
    /// pattern is the configured one widened by the digits learnt so far.
    pub fn random_number(&self) -> String {
        let extra = self.widened.load(std::sync::atomic::Ordering::Relaxed);
        let format = crate::domain::ids::widen_format(&self.format, extra);
        let mut rng = rand::rng();
        let mut first = true;
        format
            .chars()
            .map(|c| {
                if c != '#' {
                    return c;
                }
                let low = if first { 1 } else { 0 };
                first = false;
                char::from(b'0' + rand::Rng::random_range(&mut rng, low..10u8))
            })
            .collect()
    }

    /// After a taken number: `max_ticket_id` (an upper bound of the
    /// tickets stored) decides how many digits the next draws use, so
    /// that the share in use stays under `widen_at` (issue 16 point 7).
    pub fn note_tickets(&self, max_ticket_id: i64) {
        let extra = crate::domain::ids::extra_digits(
            &self.format,
            u64::try_from(max_ticket_id).unwrap_or(0),
            self.widen_at,
        );
        self.widened
            .fetch_max(extra, std::sync::atomic::Ordering::Relaxed);
    }

    /// The counter's `value`, zero-padded into the pattern; past the
    /// pattern's capacity every digit is kept rather than wrapping.
    pub fn sequential_number(&self, value: i64) -> String {
        let width = self.format.chars().filter(|&c| c == '#').count();
        let digits = format!("{value:0width$}");
        if digits.len() > width {
            let prefix: String = self.format.chars().take_while(|&c| c != '#').collect();
            return format!("{prefix}{digits}");
        }
        let mut d = digits.chars();
        self.format
            .chars()
            .map(|c| if c == '#' { d.next().unwrap_or('0') } else { c })
            .collect()
    }
}

/// The outbox id of the mail of `kind` queued by thread entry `entry_id`:
/// an entry queues at most one mail of each kind, so the id follows from
/// the entry and a ticket's mails are found through its entries, without
/// an index by ticket (see migrations 0004).
pub fn outbox_id(entry_id: i64, kind: MailKind) -> i64 {
    entry_id * OUTBOX_IDS_PER_ENTRY + kind.index()
}

/// Outbox ids reserved per thread entry (the `e.id * 4` of the queries
/// that find a ticket's mails).
pub const OUTBOX_IDS_PER_ENTRY: i64 = 4;

/// The Message-ID of an outgoing mail: `oxidesk.<kind>.<ticket id>.<token>@<domain>`.
/// Carrying the ticket id lets a reply be matched without an index on
/// the ids themselves.
pub fn outgoing_message_id(kind: MailKind, ticket_id: i64, domain: &str) -> String {
    let kind = kind.as_str();
    format!(
        "oxidesk.{kind}.{ticket_id}.{}",
        outgoing_message_id_tail(domain)
    )
}

/// What follows the ticket id in an outgoing Message-ID: `<token>@<domain>`
/// (for SQL that knows the ticket id only as it inserts).
pub fn outgoing_message_id_tail(domain: &str) -> String {
    let token: u64 = rand::random();
    format!("{token:016x}@{domain}")
}

/// The ticket id inside a Message-ID made by [`outgoing_message_id`].
pub fn outgoing_ticket_id(message_id: &str) -> Option<i64> {
    let mut parts = message_id.strip_prefix("oxidesk.")?.split('.');
    let _kind = parts.next()?;
    parts.next()?.parse().ok()
}

/// A claimed outbox row with what is needed to render and send it.
#[derive(Debug, Clone)]
pub struct OutboxJob {
    /// Row id.
    pub id: i64,
    /// What it is.
    pub kind: MailKind,
    /// What it is about.
    pub event: MailEvent,
    /// Addresses.
    pub recipients: Vec<String>,
    /// Message-ID to send with.
    pub message_id: String,
    /// Attempts including this one.
    pub attempts: i64,
    /// Unix time it was queued.
    pub created_at: i64,
    /// Ticket number.
    pub number: TicketNumber,
    /// Ticket subject.
    pub subject: String,
    /// User's name.
    pub user_name: String,
    /// User's address.
    pub user_email: String,
    /// Topic name, if any.
    pub topic: Option<String>,
    /// Priority name.
    pub priority: String,
    /// Department name, if any.
    pub department: Option<String>,
    /// The triggering entry's body.
    pub body: String,
    /// Its format.
    pub format: String,
    /// Its Message-ID (for In-Reply-To), if it came by email.
    pub entry_message_id: Option<String>,
    /// The triggering entry's sender (a reply may come from someone else
    /// than the ticket's user: a colleague in Cc, a mailer daemon).
    pub sender: Party,
    /// Message-IDs of the ticket's earlier mail of this kind, oldest
    /// first (the first and the latest): alerts of one ticket thread
    /// together among themselves, not on the customer's Message-ID that
    /// staff never received. A response: the user's messages it answers,
    /// oldest first.
    pub earlier_mail: Vec<String>,
    /// The ticket's department id.
    pub department_id: Option<i64>,
    /// Files sent with it (a response's attachments).
    pub attachments: Vec<OutgoingFile>,
}

/// A file an outgoing mail carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFile {
    /// File name.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Bytes.
    pub data: Vec<u8>,
}

/// An API key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    /// Id.
    pub id: ApiKeyId,
    /// SHA-256 of the key.
    pub hash: [u8; 32],
    /// First characters of the key, to tell keys apart in listings.
    pub prefix: String,
    /// Source addresses the key may be used from.
    pub addresses: Vec<IpNet>,
    /// Inactive keys are refused.
    pub is_active: bool,
    /// osTicket's `can_create_tickets`.
    pub can_create: bool,
    /// `can_read_tickets` (new).
    pub can_read: bool,
    /// Admin notes.
    pub notes: String,
    /// RFC 3339 UTC.
    pub created: String,
}

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// SHA-256 of the key.
    pub hash: [u8; 32],
    /// First characters of the key.
    pub prefix: String,
    /// Bound addresses.
    pub addresses: Vec<IpNet>,
    /// Create permission.
    pub can_create: bool,
    /// Read permission.
    pub can_read: bool,
    /// Notes.
    pub notes: String,
    /// RFC 3339 UTC.
    pub created: String,
}

/// The persistence operations oxidesk needs. Every write is durable
/// (committed and synced) when its future resolves `Ok`.
pub trait Store: AgentStore + QueueStore + WorkStore + Send + Sync {
    /// Stores a ticket atomically and returns its new number.
    fn create_ticket(&self, ticket: NewTicket) -> BoxFuture<'_, Result<TicketNumber, StoreError>>;
    /// The ticket an email continues: a thread message it names (ours
    /// included: autoresponses and alerts), else the `[#number]` of a
    /// ticket whose user sent it.
    fn find_thread(
        &self,
        query: ThreadQuery,
    ) -> BoxFuture<'_, Result<Option<ThreadRef>, StoreError>>;
    /// Files an email atomically: claims its Message-ID, then appends it
    /// to `email.thread` or opens `email.ticket` (API.md, Email).
    fn ingest_email(&self, email: NewEmail) -> BoxFuture<'_, Result<EmailOutcome, StoreError>>;
    /// The claim remembered under `scope` (an `Idempotency-Key`), unless
    /// it was made before `expired_before` (unix seconds).
    fn idempotency_claim(
        &self,
        scope: [u8; 32],
        expired_before: i64,
    ) -> BoxFuture<'_, Result<Option<crate::domain::idempotency::StoredClaim>, StoreError>>;
    /// A ticket by number.
    fn load_ticket(
        &self,
        number: TicketNumber,
    ) -> BoxFuture<'_, Result<Option<TicketView>, StoreError>>;
    /// Newest tickets first.
    fn list_tickets(&self, limit: u32) -> BoxFuture<'_, Result<Vec<TicketSummary>, StoreError>>;
    /// Whether a ticket with this number exists.
    fn ticket_exists(&self, number: TicketNumber) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// A key by the SHA-256 of its secret.
    fn find_api_key(
        &self,
        hash: [u8; 32],
    ) -> BoxFuture<'_, Result<Option<ApiKeyRecord>, StoreError>>;
    /// Stores a key; returns its id.
    fn add_api_key(&self, key: NewApiKey) -> BoxFuture<'_, Result<ApiKeyId, StoreError>>;
    /// Every key, oldest first.
    fn list_api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>>;
    /// Deactivates a key; `NotFound` when there is none.
    fn revoke_api_key(&self, id: ApiKeyId) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Claims up to `limit` due outbox rows until `lease_until` (unix).
    fn claim_outbox(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<OutboxJob>, StoreError>>;
    /// Marks a row sent (never to be sent again).
    fn mark_outbox_sent(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Puts a row back for a retry at `next_attempt_at`, recording why.
    fn mark_outbox_retry(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Puts claimed rows back to wait until `next_attempt_at`, all in
    /// one statement (the sender's circuit breaker opened: the relay
    /// could not be reached). `tried` rows were offered to the relay:
    /// they keep the attempt their claim counted and record `error`.
    /// `untried` rows never left: the attempt their claim counted is
    /// taken back and their last error kept. Rows no longer claimed
    /// (sent, failed, queued) are left as they are.
    fn mark_outbox_retry_many(
        &self,
        tried: Vec<i64>,
        untried: Vec<i64>,
        next_attempt_at: i64,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Gives a row up, recording why.
    fn mark_outbox_failed(&self, id: i64, error: String) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Outbox rows, newest first, optionally in one state.
    fn list_outbox(
        &self,
        state: Option<String>,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<OutboxSummary>, StoreError>>;
    /// Queues a row again now (any state but `sent`); `NotFound` otherwise.
    fn retry_outbox(&self, id: i64, now: i64) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Row counts by table, for tests and checks.
    fn counts(&self) -> BoxFuture<'_, Result<Vec<(String, i64)>, StoreError>>;
    /// The store's state for `GET /readyz` and the metrics: a read that
    /// proves the store answers.
    fn health(&self) -> BoxFuture<'_, Result<StoreHealth, StoreError>>;
    /// One round of the store's own upkeep, which a serving process runs
    /// every [`UPKEEP_EVERY`] so that no request does it; returns how
    /// much it did (0: nothing was due). PostgreSQL moves the search
    /// index's pending entries into the index (`gin_clean_pending_list`):
    /// otherwise the insert that finds the pending list full (4 MB) moves
    /// them all inside its own statement, and one reply in a few thousand
    /// took 1–5 s at 1M tickets, with every reply to the same ticket
    /// queued behind it. SQLite has nothing to do here (its checkpoints
    /// run on a thread of their own).
    fn upkeep(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async { Ok(0) })
    }
}

/// How often a serving process runs [`Store::upkeep`].
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What [`Store::health`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHealth {
    /// The last migration the database has applied.
    pub schema_version: i64,
    /// The last migration this binary knows.
    pub latest_schema_version: i64,
    /// Mail not sent yet (queued, or claimed and being sent).
    pub queued: i64,
    /// Unix time the oldest of them was queued.
    pub oldest_queued_at: Option<i64>,
    /// PostgreSQL: pool connections in use (`None` on SQLite).
    pub connections_in_use: Option<u32>,
    /// SQLite: segments of the full-text index (FTS5 refuses to write
    /// at 2,000; `None` on PostgreSQL).
    pub search_segments: Option<u64>,
}

/// Column types of the data every backend holds, for `migrate-data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// 64-bit integer.
    Int,
    /// Text.
    Text,
    /// Bytes.
    Blob,
    /// Boolean (0/1 in SQLite).
    Bool,
}

/// One table, its copy order key and its columns (nullable ones too: a
/// value may be `Null` in any column that allows it).
#[derive(Debug)]
pub struct TableSpec {
    /// Table name.
    pub name: &'static str,
    /// `ORDER BY` for a stable copy and checksum.
    pub order_by: &'static str,
    /// Columns and their types.
    pub columns: &'static [(&'static str, ColType)],
    /// Whether `id` comes from a sequence to move forward after import.
    pub has_serial_id: bool,
}

impl TableSpec {
    /// Its columns, comma-separated, for the copy's statements (names
    /// are constants of [`TABLES`], never input).
    pub(crate) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Positions in [`columns`](Self::columns) of the `order_by` columns:
    /// a row's values there are its key, and the copy resumes after the
    /// last row's key (keyset pagination: every batch starts at an index
    /// seek, so a copy is linear in the table, where an `OFFSET` would
    /// read every row before the batch again).
    pub(crate) fn key_positions(&self) -> Vec<usize> {
        self.order_by
            .split(',')
            .map(|k| {
                let k = k.trim();
                self.columns
                    .iter()
                    .position(|(c, _)| *c == k)
                    .unwrap_or_else(|| panic!("{}: order_by {k} is not a column", self.name))
            })
            .collect()
    }

    /// `WHERE (k1, k2) > (p1, p2)` for a keyset batch, with the
    /// placeholders `placeholder(1)`, `placeholder(2)`…
    pub(crate) fn after_key(&self, placeholder: impl Fn(usize) -> String) -> String {
        let keys: Vec<&str> = self.order_by.split(',').map(str::trim).collect();
        let marks: Vec<String> = (1..=keys.len()).map(placeholder).collect();
        format!(" WHERE ({}) > ({})", keys.join(", "), marks.join(", "))
    }

    /// One batch of the copy in `order_by` order: after the key bound
    /// first (when `resuming`), then the `LIMIT` bound last.
    pub(crate) fn page_sql(&self, resuming: bool, placeholder: impl Fn(usize) -> String) -> String {
        let (after, limit) = if resuming {
            (
                self.after_key(&placeholder),
                placeholder(self.key_positions().len() + 1),
            )
        } else {
            (String::new(), placeholder(1))
        };
        format!(
            "SELECT {} FROM {}{after} ORDER BY {} LIMIT {limit}",
            self.column_list(),
            self.name,
            self.order_by
        )
    }
}

/// A value of a copied row.
#[derive(Debug, Clone, PartialEq)]
pub enum DumpValue {
    /// NULL.
    Null,
    /// Integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// Boolean.
    Bool(bool),
}

/// Every table, parents before children.
pub const TABLES: &[TableSpec] = {
    use ColType::{Blob, Bool, Int, Text};
    &[
        TableSpec {
            name: "users",
            order_by: "id",
            columns: &[
                ("id", Int),
                ("email", Text),
                ("name", Text),
                ("created", Text),
                ("autoresponse_window_start", Int),
                ("autoresponses_in_window", Int),
            ],
            has_serial_id: true,
        },
        TableSpec {
            name: "agents",
            order_by: "id",
            columns: &[
                ("id", Int),
                ("email", Text),
                ("name", Text),
                ("password_hash", Text),
                ("is_admin", Bool),
                ("is_active", Bool),
                ("created", Text),
            ],
            has_serial_id: true,
        },
        TableSpec {
            name: "agent_departments",
            order_by: "agent_id, dept_id",
            columns: &[("agent_id", Int), ("dept_id", Int)],
            has_serial_id: false,
        },
        TableSpec {
            name: "agent_tokens",
            order_by: "id",
            columns: &[
                ("id", Int),
                ("hash", Blob),
                ("agent_id", Int),
                ("kind", Text),
                ("name", Text),
                ("created", Int),
                ("expires_at", Int),
                ("last_used", Int),
            ],
            has_serial_id: true,
        },
        TableSpec {
            name: "tickets",
            order_by: "id",
            columns: &[
                ("id", Int),
                ("number", Text),
                ("user_id", Int),
                ("subject", Text),
                ("status", Text),
                ("source", Text),
                ("priority_id", Int),
                ("priority_name", Text),
                ("topic_id", Int),
                ("topic_name", Text),
                ("dept_id", Int),
                ("dept_name", Text),
                ("ip", Text),
                ("created", Text),
                ("alert", Bool),
                ("autorespond", Bool),
                ("assignee_id", Int),
                ("updated", Text),
                ("last_message_at", Text),
                ("status_changed", Text),
                ("entries", Int),
                ("version", Int),
            ],
            has_serial_id: true,
        },
        TableSpec {
            name: "thread_entries",
            order_by: "id",
            columns: &[
                ("id", Int),
                ("ticket_id", Int),
                ("kind", Text),
                ("format", Text),
                ("body", Text),
                ("from_name", Text),
                ("from_email", Text),
                ("created", Text),
                ("message_id", Text),
                ("auto_reply", Bool),
                ("bounce", Bool),
                ("dropped", Text),
                ("agent_id", Int),
            ],
            has_serial_id: true,
        },
        TableSpec {
            name: "ticket_events",
            order_by: "id",
            columns: &[
                ("id", Int),
                ("ticket_id", Int),
                ("created", Text),
                ("actor_kind", Text),
                ("actor_id", Int),
                ("actor_name", Text),
                ("action", Text),
                ("detail", Text),
            ],
            has_serial_id: true,
        },
        TableSpec {
            name: "blobs",
            order_by: "sha256",
            columns: &[("sha256", Blob), ("size", Int), ("data", Blob)],
            has_serial_id: false,
        },
        TableSpec {
            name: "attachments",
            order_by: "id",
            columns: &[
                ("id", Int),
                ("entry_id", Int),
                ("position", Int),
                ("sha256", Blob),
                ("name", Text),
                ("content_type", Text),
                ("inline", Bool),
                ("content_id", Text),
            ],
            has_serial_id: true,
        },
        TableSpec {
            name: "field_values",
            order_by: "ticket_id, form, name",
            columns: &[
                ("ticket_id", Int),
                ("form", Text),
                ("name", Text),
                ("value", Text),
            ],
            has_serial_id: false,
        },
        TableSpec {
            name: "api_keys",
            order_by: "id",
            columns: &[
                ("id", Int),
                ("hash", Blob),
                ("prefix", Text),
                ("addresses", Text),
                ("is_active", Bool),
                ("can_create", Bool),
                ("can_read", Bool),
                ("notes", Text),
                ("created", Text),
            ],
            has_serial_id: true,
        },
        TableSpec {
            name: "processed_messages",
            order_by: "message_id",
            columns: &[("message_id", Text), ("ticket_id", Int), ("created", Text)],
            has_serial_id: false,
        },
        TableSpec {
            name: "idempotency_keys",
            order_by: "scope",
            columns: &[
                ("scope", Blob),
                ("fingerprint", Blob),
                ("answer", Text),
                ("created", Int),
            ],
            has_serial_id: false,
        },
        TableSpec {
            name: "raw_messages",
            order_by: "entry_id",
            columns: &[("entry_id", Int), ("compressed", Blob)],
            has_serial_id: false,
        },
        TableSpec {
            name: "outbox",
            order_by: "id",
            columns: &[
                ("id", Int),
                ("ticket_id", Int),
                ("entry_id", Int),
                ("kind", Text),
                ("event", Text),
                ("recipients", Text),
                ("message_id", Text),
                ("state", Text),
                ("attempts", Int),
                ("next_attempt_at", Int),
                ("lease_until", Int),
                ("last_error", Text),
                ("created_at", Int),
                ("sent_at", Int),
            ],
            has_serial_id: true,
        },
    ]
};

/// Bulk copy between backends (`oxidesk migrate-data`).
pub trait DataCopy: Send + Sync {
    /// Up to `limit` rows of a table in `order_by` order, those whose key
    /// ([`TableSpec::key_positions`]) comes after `after` (from the
    /// start when `None`). The order is the backend's own (PostgreSQL
    /// compares text in the database's collation, so that its key
    /// indexes serve the seek); the copy's check does not depend on it.
    fn export_rows(
        &self,
        table: &'static TableSpec,
        after: Option<Vec<DumpValue>>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<Vec<DumpValue>>, StoreError>>;
    /// Inserts rows as they are (ids included), in one transaction.
    fn import_rows(
        &self,
        table: &'static TableSpec,
        rows: Vec<Vec<DumpValue>>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Before export: puts anything the copy would not carry into the
    /// tables it copies (SQLite: mail still waiting on its thread entry
    /// becomes a queued outbox row).
    fn prepare_export(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Rows in a table.
    fn row_count(&self, table: &'static TableSpec) -> BoxFuture<'_, Result<i64, StoreError>>;
    /// The sequential ticket counter (0 when none was used).
    fn ticket_counter(&self) -> BoxFuture<'_, Result<i64, StoreError>>;
    /// After import: moves sequences past the copied ids and the counter
    /// (SQLite: also records the copied outbox rows on their entries).
    fn finish_import(&self, ticket_counter: i64) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Rows per table, in [`TABLES`] order (`Store::counts` of every backend).
pub(crate) async fn table_counts(
    db: &(impl DataCopy + ?Sized),
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut out = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        out.push((table.name.to_string(), db.row_count(table).await?));
    }
    Ok(out)
}

/// The start-up rule of both backends' migrations: a database whose
/// schema is newer than this binary's newest migration was upgraded by a
/// newer oxidesk, and an older binary must not write to it; a database
/// with no schema at all is refused unless the caller may create one.
pub fn check_schema_version(current: i64, newest: i64, may_create: bool) -> Result<(), StoreError> {
    if current > newest {
        return Err(StoreError::other(format!(
            "the database schema is at version {current}, newer than this oxidesk knows \
             (its newest migration is {newest}): it was upgraded by a newer oxidesk; \
             run that version (or restore a backup made before the upgrade)"
        )));
    }
    if current == 0 && !may_create {
        return Err(StoreError::other(
            "the database has no oxidesk tables: only `oxidesk serve` or `oxidesk migrate` \
             creates them (check `database` in the configuration)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_copied_table_resumes_after_a_key_of_its_own_columns() {
        // `key_positions` panics on an `order_by` name that is not a
        // column (a typo would otherwise surface only in a copy).
        for table in TABLES {
            assert!(!table.key_positions().is_empty(), "{}", table.name);
        }
        let fields = TABLES.iter().find(|t| t.name == "field_values").unwrap();
        assert_eq!(
            fields.after_key(|i| format!("?{i}")),
            " WHERE (ticket_id, form, name) > (?1, ?2, ?3)"
        );
        let names: Vec<&str> = fields
            .key_positions()
            .into_iter()
            .map(|p| fields.columns[p].0)
            .collect();
        assert_eq!(names, ["ticket_id", "form", "name"]);
        let blobs = TABLES.iter().find(|t| t.name == "blobs").unwrap();
        assert_eq!(
            blobs.after_key(|i| format!("${i}")),
            " WHERE (sha256) > ($1)"
        );
    }
}
