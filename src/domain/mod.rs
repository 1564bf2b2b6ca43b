//! The helpdesk's rules: which fields a request may carry and how each is
//! typed ([`catalog`], [`fields`]), turning a draft into a stored ticket
//! ([`tickets`]), and API keys ([`keys`]).
//!
//! Domain code depends on `intake` types and the `storage::Store` trait,
//! never on HTTP.

pub mod agents;
pub mod catalog;
pub mod email;
pub mod fields;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod notify;
pub mod queue;
pub mod quotes;
pub mod search;
pub mod staff;
pub mod throttle;
pub mod tickets;
pub mod views;
pub mod work;

/// Why a request was refused by the helpdesk's rules. Each variant names
/// the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// A required field is missing or empty.
    #[error("{field}: {label} is a required field")]
    Missing {
        /// Field name.
        field: String,
        /// Its label.
        label: String,
    },
    /// A value that does not parse for its field.
    #[error("{field}: {message}")]
    Invalid {
        /// Field name.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The sender is on the ban list (403).
    #[error("Ticket denied: {field} is on the ban list")]
    Denied {
        /// The address field.
        field: String,
    },
    /// A field no applicable form has (osTicket's own words).
    #[error("{field}: Unexpected data received in API request")]
    Unexpected {
        /// Field name.
        field: String,
    },
}

impl DomainError {
    /// The field the error is about.
    pub fn field(&self) -> &str {
        match self {
            DomainError::Missing { field, .. }
            | DomainError::Invalid { field, .. }
            | DomainError::Unexpected { field }
            | DomainError::Denied { field } => field,
        }
    }
}
