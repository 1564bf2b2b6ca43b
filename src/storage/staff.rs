//! The staff side's persistence (STAFF-API.md), in three traits that
//! [`Store`](super::Store) includes: agents and their tokens, the queue
//! and search, and the work done on one ticket.

use super::{BoxFuture, StoreError};
use crate::domain::staff::{Agent, AgentId};
use crate::domain::work::{StaffEntry, TicketChange};

/// Agents, their departments, sessions and personal tokens.
pub trait AgentStore: Send + Sync {
    /// The active agent a token (SHA-256 of its secret) belongs to, if the
    /// token is unexpired at `now` (unix seconds); a session's sliding
    /// expiry moves forward as it is used.
    fn agent_by_token(
        &self,
        hash: [u8; 32],
        now: i64,
    ) -> BoxFuture<'_, Result<Option<Agent>, StoreError>>;
}

/// The queue: listing with filters, sorts and cursors, full-text search,
/// side-bar counts.
pub trait QueueStore: Send + Sync {}

/// One ticket's work: changes with `If-Match`, replies, notes,
/// attachments (the full ticket is `Store::load_ticket`).
pub trait WorkStore: Send + Sync {
    /// Writes a change in one transaction if the ticket is still at
    /// `change.version` (else [`StoreError::VersionMismatch`], nothing
    /// written): the new fields, `version + 1`, `updated`, its events.
    fn change_ticket(&self, change: TicketChange) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Writes an agent's reply or note with the mail it queues and the
    /// status it sets, in one transaction (indexed for search there);
    /// returns the entry's id.
    fn add_staff_entry(&self, entry: StaffEntry) -> BoxFuture<'_, Result<i64, StoreError>>;
    /// The name of an active agent.
    fn agent_name(&self, id: AgentId) -> BoxFuture<'_, Result<Option<String>, StoreError>>;
    /// The active agent whose sign-in address is `email` (mail from an
    /// agent onto a ticket is that agent's response).
    fn agent_for_mail(&self, email: String) -> BoxFuture<'_, Result<Option<Agent>, StoreError>>;
    /// An attachment's file with the ticket it belongs to.
    fn attachment(&self, id: i64) -> BoxFuture<'_, Result<Option<StoredFile>, StoreError>>;
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
