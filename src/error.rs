//! `ApiError`: the only type that becomes an HTTP error response.
//!
//! Each layer's error is mapped here, in one exhaustive `match` per enum
//! (no wildcard arms), so that a new variant forces a decision about its
//! status. 4xx bodies name the offending field; 5xx bodies are opaque and
//! carry a request id, the cause being logged once, here.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::DomainError;
use crate::domain::email::EmailError;
use crate::domain::keys::AuthError;
use crate::domain::tickets::CreateError;
use crate::intake::IntakeError;
use crate::storage::StoreError;

/// An error answer: status, a readable message and the field it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Readable description (names the field for 4xx).
    pub message: String,
    /// The offending field, when there is one.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
        }
    }

    /// The same, about `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A server fault: logs the cause once and answers an opaque 500/503.
    pub fn internal(status: StatusCode, request_id: u64, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(request.id = request_id, error = %cause, "request failed: {cause}");
        Self::new(
            status,
            format!("Internal server error (request {request_id})"),
        )
    }

    /// Renders as text/plain, or the JSON envelope when the client asked
    /// for `application/json` (API.md, Responses).
    pub fn render(&self, request_headers: &HeaderMap) -> Response {
        let wants_json = request_headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("application/json"));
        let (content_type, body) = if wants_json {
            let body = serde_json::json!({
                "error": {"status": self.status.as_u16(), "message": self.message, "field": self.field}
            });
            ("application/json", body.to_string())
        } else {
            ("text/plain; charset=utf-8", format!("{}\n", self.message))
        };
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::Missing | AuthError::NotActiveOrAddress | AuthError::NotAuthorized => {
                StatusCode::UNAUTHORIZED
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<IntakeError> for ApiError {
    fn from(e: IntakeError) -> Self {
        let status = match &e {
            IntakeError::AttachmentTooLarge { .. } | IntakeError::TooManyAttachments { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IntakeError::EmptyBody
            | IntakeError::Malformed { .. }
            | IntakeError::NotATicket(_)
            | IntakeError::WrongType { .. }
            | IntakeError::BadDataUrl { .. }
            | IntakeError::BadBase64 { .. }
            | IntakeError::UnknownCharset { .. }
            | IntakeError::EmptyFileName => StatusCode::BAD_REQUEST,
        };
        let field = e.field().map(str::to_string);
        ApiError {
            status,
            message: e.to_string(),
            field,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let status = match &e {
            DomainError::Missing { .. }
            | DomainError::Invalid { .. }
            | DomainError::Unexpected { .. } => StatusCode::BAD_REQUEST,
            DomainError::Denied { .. } => StatusCode::FORBIDDEN,
        };
        ApiError::new(status, e.to_string()).with_field(e.field())
    }
}

impl ApiError {
    /// Maps a storage failure; `request_id` goes into the opaque body.
    pub fn from_store(e: &StoreError, request_id: u64) -> Self {
        match e {
            StoreError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "Not found"),
            StoreError::Busy(_) => {
                ApiError::internal(StatusCode::SERVICE_UNAVAILABLE, request_id, e)
            }
            StoreError::Conflict(_) | StoreError::Other(_) => {
                ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, request_id, e)
            }
        }
    }

    /// Maps a failed email intake.
    pub fn from_email(e: EmailError, request_id: u64) -> Self {
        match e {
            EmailError::Disabled => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Email intake is disabled")
            }
            EmailError::Intake(i) => i.into(),
            EmailError::Domain(DomainError::Denied { field }) => {
                ApiError::new(StatusCode::FORBIDDEN, "Ticket denied").with_field(field)
            }
            EmailError::Domain(d) => d.into(),
            EmailError::Store(s) => ApiError::from_store(&s, request_id),
        }
    }

    /// Maps a failed ticket creation.
    pub fn from_create(e: CreateError, request_id: u64) -> Self {
        match e {
            CreateError::Domain(d) => d.into(),
            CreateError::Store(s) => ApiError::from_store(&s, request_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_bodies() {
        let e = ApiError::new(StatusCode::BAD_REQUEST, "subject: missing").with_field("subject");
        let plain = e.render(&HeaderMap::new());
        assert_eq!(
            plain.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let json = e.render(&h);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(json.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn attachment_limits_are_413() {
        let e: ApiError = IntakeError::AttachmentTooLarge {
            name: "big.bin".into(),
            size: 2,
            limit: 1,
        }
        .into();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(e.message.contains("big.bin"));
    }
}
