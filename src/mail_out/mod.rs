//! Outgoing mail: autoresponses and staff alerts through the durable
//! outbox. Rows are queued by storage in the ticket's transaction; this
//! module renders them ([`render`]) and delivers them over SMTP with
//! `lettre` ([`sender`]): retries with exponential backoff on temporary
//! failures, gives up after a configured time, never resends a row the
//! SMTP server accepted, and resumes after a restart (claims are leases).

pub mod render;
pub mod sender;
pub mod smtp;

/// Why the outbox could not be worked on.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A template does not compile or render.
    #[error("mail template: {0}")]
    Template(String),
    /// The SMTP transport could not be set up.
    #[error("SMTP transport: {0}")]
    Transport(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
}
