//! Request ids: which id a request gets, and the tracing span that carries
//! it. tower-http's `SetRequestIdLayer`/`PropagateRequestIdLayer` put the
//! id in the request's extensions and echo it in `X-Request-Id`; this
//! module only decides the id (a client's own when it is short and safe,
//! else the next number of `AppState::request_ids`) and names it in logs.
//! It must not look at bodies or keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Span;

/// The header the id is read from and echoed in.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-sent id that is kept.
const MAX_CLIENT_ID_BYTES: usize = 64;

/// Numbers requests from a shared counter (one per process): short ids a
/// person can read out of an error body.
#[derive(Debug, Clone)]
pub struct CountRequestIds(pub Arc<AtomicU64>);

impl MakeRequestId for CountRequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Some(RequestId::new(HeaderValue::from(n)))
    }
}

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

/// Middleware (before `SetRequestIdLayer`, which keeps any id it finds):
/// removes a client's `X-Request-Id` unless it is one safe value, so an
/// unsafe or repeated one is replaced by a number.
pub async fn drop_unsafe_request_id(mut request: Request) -> Request {
    let is_kept = {
        let mut values = request.headers().get_all(&X_REQUEST_ID).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => is_safe_client_id(value),
            (None, _) | (Some(_), Some(_)) => false,
        }
    };
    if !is_kept {
        request.headers_mut().remove(&X_REQUEST_ID);
    }
    request
}

/// The span of one request, naming its id so that every log line of the
/// request carries it. ERROR level so that it is recorded whenever any of
/// its events is: under `RUST_LOG=warn` an INFO span would be filtered out
/// and the warnings and errors of the request would lose their id.
pub fn make_span(request: &Request) -> Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-");
    tracing::error_span!(
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

    #[tokio::test]
    async fn unsafe_or_repeated_ids_are_dropped() {
        let request = |values: &[&str]| {
            let mut r = Request::new(axum::body::Body::empty());
            for v in values {
                r.headers_mut()
                    .append(X_REQUEST_ID, HeaderValue::from_str(v).unwrap());
            }
            r
        };
        let kept = drop_unsafe_request_id(request(&["ok-1"])).await;
        assert_eq!(kept.headers()[X_REQUEST_ID], "ok-1");
        for values in [&["bad id"][..], &["a", "b"], &[]] {
            let r = drop_unsafe_request_id(request(values)).await;
            assert!(r.headers().get(X_REQUEST_ID).is_none(), "{values:?}");
        }
    }

    #[test]
    fn the_counter_numbers_requests() {
        let mut ids = CountRequestIds(Arc::new(AtomicU64::new(7)));
        let r = axum::http::Request::new(());
        let a = ids.make_request_id(&r).unwrap();
        let b = ids.make_request_id(&r).unwrap();
        assert_eq!(a.header_value(), "7");
        assert_eq!(b.header_value(), "8");
    }
}
