//! `ApiError`: the only type that becomes an HTTP error response.
//!
//! Each layer's error is mapped here, in one exhaustive `match` per enum
//! (no wildcard arms), so that a new variant forces a decision about its
//! status. 4xx bodies name the offending field; 5xx bodies are opaque and
//! carry the request id, the cause being logged once, where the `ApiError`
//! is made (inside the request's span, so the log line names the request).
//!
//! The body is written in one place, `http::layer`: a handler, an
//! extractor, the router's fallbacks and the panic guard only return an
//! `ApiError`, whose `IntoResponse` marks the response with it; the layer,
//! which alone looks at the request's `Accept` and id, writes text/plain or
//! the JSON envelope (API.md, Responses). Nothing here reads a body, a key
//! or storage.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::DomainError;
use crate::domain::agents::SignInError;
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
    /// A fault of the server: the body says only that, and which request
    /// it was, so the operator can find the logged cause (STYLE.md, Errors).
    pub is_internal: bool,
}

/// The body an error answer is written as (API.md, Responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `text/plain; charset=utf-8`: the message alone (osTicket's form).
    Text,
    /// `{"error": {"status": N, "message": "...", "field": "..." | null}}`.
    Json,
}

impl ErrorFormat {
    /// JSON when any `Accept` value names `application/json` (with or
    /// without parameters, any case); text otherwise.
    pub fn from_request_headers(headers: &HeaderMap) -> Self {
        let wants_json = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("application/json"));
        if wants_json { Self::Json } else { Self::Text }
    }
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            is_internal: false,
        }
    }

    /// The same, about `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A server fault: logs the cause once, with the request's id, and
    /// answers an opaque 500/503 naming the request.
    pub fn internal(status: StatusCode, cause: &dyn std::fmt::Display) -> Self {
        let id = crate::http::request_id::current();
        tracing::error!(request.id = %id, error = %cause, "request {id} failed: {cause}");
        Self {
            is_internal: true,
            ..Self::new(status, "Internal server error")
        }
    }

    /// A store that cannot serve now (busy, down, unreachable): logs the
    /// cause once, with the request's id, and answers `503` with
    /// `Retry-After`, saying what is unavailable and naming the request.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        let id = crate::http::request_id::current();
        tracing::warn!(request.id = %id, error = %cause, "request {id}: the database is unavailable: {cause}");
        Self {
            is_internal: true,
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE)
        }
    }

    /// `404 Not found` (API.md, Routes: anything else).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found")
    }

    /// `405 Method not allowed`; the caller adds `Allow`.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
    }

    /// The message as sent: an internal error's names the request.
    fn public_message(&self, request_id: Option<&str>) -> String {
        match request_id {
            Some(id) if self.is_internal => format!("{} (request {id})", self.message),
            Some(_) | None => self.message.clone(),
        }
    }

    /// The content type and body of this error in `format`.
    pub fn render_body(
        &self,
        format: ErrorFormat,
        request_id: Option<&str>,
    ) -> (&'static str, String) {
        let message = self.public_message(request_id);
        match format {
            ErrorFormat::Json => {
                let envelope = ErrorEnvelope {
                    error: ErrorDetail {
                        status: self.status.as_u16(),
                        message: &message,
                        field: self.field.as_deref(),
                    },
                };
                // Strings and integers only: serialising cannot fail.
                let body = serde_json::to_string(&envelope).unwrap_or_default();
                ("application/json", body)
            }
            ErrorFormat::Text => ("text/plain; charset=utf-8", format!("{message}\n")),
        }
    }
}

/// The JSON error body (API.md, Responses):
/// `{"error": {"status": N, "message": "...", "field": "..." | null}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorEnvelope<'a> {
    /// The error.
    pub error: ErrorDetail<'a>,
}

/// The inside of the error envelope.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// The HTTP status, repeated.
    #[schema(example = 400)]
    pub status: u16,
    /// A readable description naming the offending field; for a fault
    /// of the server only `Internal server error (request ID)`.
    #[schema(example = "phone: invalid extension")]
    pub message: &'a str,
    /// The offending field, when there is one.
    #[schema(required = true, example = "phone")]
    pub field: Option<&'a str>,
}

/// The message of a `503` for a store that cannot serve now.
pub const UNAVAILABLE_MESSAGE: &str =
    "Service unavailable: the database is busy or unreachable; try again";

/// Seconds a client is asked to wait after a `503` for a busy store.
pub const BUSY_RETRY_AFTER_SECS: u32 = 1;

/// A plain-text answer carrying the error itself, which `http::layer`
/// rewrites for the request; without that layer the text stands.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (content_type, body) = self.render_body(ErrorFormat::Text, None);
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response();
        // A busy or shutting-down store (our 503) passes: say when to
        // try again (RFC 9110 §10.2.3). A 503 that is a setting (email
        // intake off) is not transient and names no time.
        if self.is_internal && self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(BUSY_RETRY_AFTER_SECS),
            );
        }
        response.extensions_mut().insert(self);
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
            IntakeError::AttachmentTooLarge { .. }
            | IntakeError::TooManyAttachments { .. }
            | IntakeError::TooManyValues { .. }
            | IntakeError::TooComplex(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IntakeError::EmptyBody
            | IntakeError::Malformed { .. }
            | IntakeError::NotATicket(_)
            | IntakeError::WrongType { .. }
            | IntakeError::BadDataUrl { .. }
            | IntakeError::BadBase64 { .. }
            | IntakeError::UnknownCharset { .. }
            | IntakeError::EmptyFileName
            | IntakeError::Duplicate { .. } => StatusCode::BAD_REQUEST,
        };
        let field = e.field().map(str::to_string);
        ApiError {
            field,
            ..ApiError::new(status, e.to_string())
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

/// A storage failure: `NotFound` is the caller's 404, the rest are ours.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::VersionMismatch => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "The ticket changed since it was read (If-Match)",
            ),
            // Answered by a replay where a key is claimed (http::tickets);
            // this is only the fallback.
            StoreError::IdempotencyKeyUsed => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency-Key was already used",
            )
            .with_field("Idempotency-Key"),
            StoreError::Busy(_) | StoreError::Stale => ApiError::unavailable(&e),
            StoreError::Conflict(_) | StoreError::Other(_) => {
                ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, &e)
            }
        }
    }
}

/// A failed email intake.
impl From<EmailError> for ApiError {
    fn from(e: EmailError) -> Self {
        match e {
            EmailError::Disabled => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Email intake is disabled")
            }
            EmailError::Intake(i) => i.into(),
            EmailError::Domain(DomainError::Denied { field }) => {
                ApiError::new(StatusCode::FORBIDDEN, "Ticket denied").with_field(field)
            }
            EmailError::Domain(d) => d.into(),
            EmailError::Store(s) => s.into(),
        }
    }
}

/// A failed ticket creation.
impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Domain(d) => d.into(),
            CreateError::Store(s) => s.into(),
        }
    }
}

/// A refused sign-in: one `401` for every wrong address, password or
/// disabled agent; `429` while throttled (the handler adds `Retry-After`).
impl From<SignInError> for ApiError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::Invalid => ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()),
            SignInError::Throttled(_) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
            }
            SignInError::Store(s) => s.into(),
            SignInError::Hashing(_) => ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    }
}

/// Work moved to the blocking pool panicked or was cancelled: our fault.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, &e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept_json() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, Application/JSON;q=0.9"),
        );
        h
    }

    #[test]
    fn accept_decides_the_format() {
        assert_eq!(
            ErrorFormat::from_request_headers(&HeaderMap::new()),
            ErrorFormat::Text
        );
        assert_eq!(
            ErrorFormat::from_request_headers(&accept_json()),
            ErrorFormat::Json
        );
    }

    #[test]
    fn text_and_json_bodies() {
        let e = ApiError::new(StatusCode::BAD_REQUEST, "subject: missing").with_field("subject");
        assert_eq!(
            e.render_body(ErrorFormat::Text, Some("7")),
            (
                "text/plain; charset=utf-8",
                "subject: missing\n".to_string()
            )
        );
        let (content_type, body) = e.render_body(ErrorFormat::Json, Some("7"));
        assert_eq!(content_type, "application/json");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"status": 400, "message": "subject: missing", "field": "subject"}})
        );
    }

    #[test]
    fn internal_errors_are_opaque_and_name_the_request() {
        let e = ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, &"disk on fire");
        let (_, body) = e.render_body(ErrorFormat::Text, Some("42"));
        assert_eq!(body, "Internal server error (request 42)\n");
        let (_, body) = e.render_body(ErrorFormat::Json, Some("42"));
        assert!(!body.contains("disk"), "{body}");
        assert!(body.contains("\"field\":null"), "{body}");
        let e: ApiError = StoreError::Busy("locked".into()).into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.is_internal);
        let (_, body) = e.render_body(ErrorFormat::Text, Some("42"));
        assert_eq!(
            body,
            "Service unavailable: the database is busy or unreachable; try again (request 42)\n"
        );
        assert_eq!(e.into_response().headers()[header::RETRY_AFTER], "1");
        let off: ApiError = EmailError::Disabled.into();
        assert!(
            !off.into_response()
                .headers()
                .contains_key(header::RETRY_AFTER)
        );
    }

    #[test]
    fn into_response_is_plain_text_and_carries_the_error() {
        let e = ApiError::not_found();
        let response = e.clone().into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(response.extensions().get::<ApiError>(), Some(&e));
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
