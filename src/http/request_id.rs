//! Request ids: which client ids are kept, the id in scope while a request
//! is answered (for log lines), and the request's tracing span.
//! `http::layer` gives each request its id and echoes it. This module
//! must not look at bodies or keys.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use tower_http::request_id::RequestId;
use tracing::Span;

/// The header the id is read from and echoed in.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-sent id that is kept.
const MAX_CLIENT_ID_BYTES: usize = 64;

/// A client's id is kept only when it cannot forge or break a log line or
/// a header: 1 to 64 bytes of `[A-Za-z0-9._-]`.
pub fn is_safe_client_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_CLIENT_ID_BYTES
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

tokio::task_local! {
    /// The id of the request this task is answering (set by
    /// `http::layer` around the handler).
    static CURRENT: String;
}

/// Runs `fut` as the answer to the request with id `id`.
pub async fn scope<F: std::future::Future>(id: String, fut: F) -> F::Output {
    CURRENT.scope(id, fut).await
}

/// The id of the request being answered, for log lines (`-` outside one).
pub fn current() -> String {
    CURRENT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_string())
}

/// The span of one request, at DEBUG: a span per request at a level that
/// is on by default cost ~10% of the ticket rate (measured), so the lines
/// that matter name the id themselves ([`current`]): errors, panics and
/// each filed ticket.
pub fn make_span(request: &Request) -> Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-");
    tracing::debug_span!(
        "request",
        request.id = %id,
        method = %request.method(),
        uri = %request.uri(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_safe_client_ids_are_kept() {
        let cases: &[(&[u8], bool)] = &[
            (b"abc-123_x.y", true),
            (b"0", true),
            (&[b'a'; 64], true),
            (&[b'a'; 65], false),
            (b"", false),
            (b"a b", false),
            (b"a\tb", false),
            (b"a/b", false),
            (b"\"quoted\"", false),
            (b"caf\xc3\xa9", false),
        ];
        for (raw, want) in cases {
            let value = HeaderValue::from_bytes(raw).unwrap();
            assert_eq!(is_safe_client_id(&value), *want, "{value:?}");
        }
    }
}
