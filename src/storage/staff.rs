//! The staff side's persistence (STAFF-API.md), in three traits that
//! [`Store`](super::Store) includes: agents and their tokens, the queue
//! and search, and the work done on one ticket.

use super::{BoxFuture, StoreError, TicketNumber};
use crate::domain::agents::TokenKind;
use crate::domain::queue::{QueueCounts, QueuePage, QueueQuery};
use crate::domain::staff::{Agent, AgentId};
use crate::domain::work::{StaffEntry, TicketChange};

/// An agent to store.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Sign-in address (unique, case-insensitive).
    pub email: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Sees and does everything.
    pub admin: bool,
    /// Configuration ids of their departments (checked by the caller).
    pub departments: Vec<i64>,
    /// RFC 3339 UTC.
    pub created: String,
}

/// An agent and their password hash, for sign-in only. Its `Debug`
/// leaves the hash out.
#[derive(Clone)]
pub struct AgentCredentials {
    /// The agent (active or not: the caller decides).
    pub agent: Agent,
    /// argon2id PHC string.
    pub password_hash: String,
}

impl std::fmt::Debug for AgentCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCredentials")
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

/// A token to store (its SHA-256 only).
#[derive(Debug, Clone)]
pub struct NewAgentToken {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// Whose.
    pub agent_id: AgentId,
    /// Session or personal.
    pub kind: TokenKind,
    /// What it is for (`session`, or the name given to a personal token).
    pub name: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds; `None`: until revoked. Stored with
    /// `last_used = created`, so a session's lifetime is
    /// `expires_at - last_used` (see [`AgentStore::agent_by_token`]).
    pub expires_at: Option<i64>,
}

/// Sliding expiry is written at most this often per token: a request
/// within a minute of the last write costs no write at all.
pub const SLIDE_EVERY_SECS: i64 = 60;

/// Agents, their departments, sessions and personal tokens.
pub trait AgentStore: Send + Sync {
    /// The active agent a token (SHA-256 of its secret) belongs to, if the
    /// token is unexpired at `now` (unix seconds); a session's sliding
    /// expiry moves forward as it is used.
    ///
    /// How it slides: a token keeps `last_used` (at creation: `created`)
    /// and `expires_at = last_used + lifetime`. When `now` is more than
    /// [`SLIDE_EVERY_SECS`] past `last_used`, both move forward by the
    /// same amount (`last_used = now`, `expires_at = now + lifetime`), so
    /// the lifetime the session was made with is kept without a column
    /// of its own. A personal token (`expires_at` NULL) only has its
    /// `last_used` updated.
    fn agent_by_token(
        &self,
        hash: [u8; 32],
        now: i64,
    ) -> BoxFuture<'_, Result<Option<Agent>, StoreError>>;

    /// Stores an agent with their departments. An address already taken
    /// (in any case) is [`StoreError::Conflict`].
    fn add_agent(&self, agent: NewAgent) -> BoxFuture<'_, Result<AgentId, StoreError>>;

    /// Every agent, by id.
    fn list_agents(&self) -> BoxFuture<'_, Result<Vec<Agent>, StoreError>>;

    /// One agent, active or not.
    fn find_agent(&self, id: AgentId) -> BoxFuture<'_, Result<Option<Agent>, StoreError>>;

    /// The agent with this sign-in address (case-insensitive) and their
    /// password hash, active or not.
    fn agent_credentials(
        &self,
        email: String,
    ) -> BoxFuture<'_, Result<Option<AgentCredentials>, StoreError>>;

    /// Enables or disables an agent; disabling also ends their sessions
    /// (their personal tokens stop working while they are disabled).
    /// [`StoreError::NotFound`] when there is no such agent.
    fn set_agent_active(&self, id: AgentId, active: bool) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Replaces an agent's password hash and ends their sessions (a new
    /// password is usually given because the old one leaked).
    /// [`StoreError::NotFound`] when there is no such agent.
    fn set_agent_password(
        &self,
        id: AgentId,
        password_hash: String,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Stores a token, and deletes the agent's tokens expired at its
    /// `created`. [`StoreError::NotFound`] when the agent does not exist.
    fn add_agent_token(&self, token: NewAgentToken) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Deletes a token of this kind; whether there was one.
    fn delete_agent_token(
        &self,
        hash: [u8; 32],
        kind: TokenKind,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
}

/// The queue: listing with filters, sorts and cursors, full-text search,
/// side-bar counts. Both apply the permission rule
/// ([`Agent::may_see`]) in SQL: a ticket the viewer may not see is
/// neither listed, found nor counted.
pub trait QueueStore: Send + Sync {
    /// One page of the queue as `viewer` sees it: `query`'s filters and
    /// search, in its sort (ties by id), after its cursor; with a next
    /// cursor when more rows follow.
    fn list_queue<'a>(
        &'a self,
        viewer: &'a Agent,
        query: &'a QueueQuery,
    ) -> BoxFuture<'a, Result<QueuePage, StoreError>>;

    /// The side bar's counts as `viewer` sees them; "today" is from
    /// `today_start` (a ticket's `status_changed`).
    fn queue_counts<'a>(
        &'a self,
        viewer: &'a Agent,
        today_start: jiff::Timestamp,
    ) -> BoxFuture<'a, Result<QueueCounts, StoreError>>;
}

/// One ticket's work: changes with `If-Match`, replies, notes,
/// attachments (the full ticket is `Store::load_ticket`).
pub trait WorkStore: Send + Sync {
    /// Writes a change in one transaction if the ticket is still at
    /// `change.version` (else [`StoreError::VersionMismatch`], nothing
    /// written): the new fields, `version + 1`, `updated`, its events.
    fn change_ticket(&self, change: TicketChange) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Writes an agent's reply or note with the mail it queues and the
    /// status it sets, in one transaction (indexed for search there);
    /// returns the ids it was given and the ticket's new version.
    fn add_staff_entry(&self, entry: StaffEntry) -> BoxFuture<'_, Result<AddedEntry, StoreError>>;
    /// A ticket's head by number (one row: no thread).
    fn ticket_head(
        &self,
        number: TicketNumber,
    ) -> BoxFuture<'_, Result<Option<crate::domain::views::TicketHead>, StoreError>>;
    /// The name of an active agent.
    fn agent_name(&self, id: AgentId) -> BoxFuture<'_, Result<Option<String>, StoreError>>;
    /// The active agent whose sign-in address is `email` (mail from an
    /// agent onto a ticket is that agent's response).
    fn agent_for_mail(&self, email: String) -> BoxFuture<'_, Result<Option<Agent>, StoreError>>;
    /// An attachment's file with the ticket it belongs to.
    fn attachment(&self, id: i64) -> BoxFuture<'_, Result<Option<StoredFile>, StoreError>>;
}

/// What writing an entry gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedEntry {
    /// The entry's row id.
    pub id: i64,
    /// Its files' row ids, in order.
    pub files: Vec<i64>,
    /// The ticket's version after the write (its `ETag`).
    pub version: i64,
}

/// An attachment's file, and what the permission rule needs.
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// File name.
    pub name: String,
    /// Media type as stored.
    pub content_type: String,
    /// Bytes.
    pub data: Vec<u8>,
    /// Its ticket's department.
    pub department: Option<i64>,
    /// Its ticket's assignee.
    pub assignee: Option<AgentId>,
    /// Whether its entry is an internal note.
    pub kind: crate::domain::views::EntryKind,
}
