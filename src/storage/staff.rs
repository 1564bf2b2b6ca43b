//! The staff side's persistence (STAFF-API.md), in three traits that
//! [`Store`](super::Store) includes: agents and their tokens, the queue
//! and search, and the work done on one ticket.

use super::{BoxFuture, StoreError};
use crate::domain::queue::{QueueCounts, QueuePage, QueueQuery};
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

/// One ticket's work: the full ticket with events, changes with
/// `If-Match`, replies, notes, attachments.
pub trait WorkStore: Send + Sync {}
