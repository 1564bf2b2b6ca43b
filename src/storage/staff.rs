//! The staff side's persistence (STAFF-API.md), in three traits that
//! [`Store`](super::Store) includes: agents and their tokens, the queue
//! and search, and the work done on one ticket.

use super::{BoxFuture, StoreError};
use crate::domain::staff::Agent;

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

/// One ticket's work: the full ticket with events, changes with
/// `If-Match`, replies, notes, attachments.
pub trait WorkStore: Send + Sync {}
