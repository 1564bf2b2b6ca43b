//! The request layer: one tower service around every route that gives the
//! request its id (a client's safe `X-Request-Id`, else the next number),
//! runs the handler with that id in scope for log lines, writes the body
//! of any [`ApiError`] answer as the request's `Accept` asks (the one
//! place that reads it), and echoes the id in `X-Request-Id`.
//!
//! Written as a plain service rather than `axum::middleware::from_fn`:
//! the two `from_fn` middlewares it replaces cost ~12% of the ticket rate
//! (measured with `oxidesk-bench`, interleaved runs), mostly in cloning the
//! inner service and converting bodies per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use tower::{Layer, Service};
use tower_http::request_id::RequestId;

use super::request_id::{X_REQUEST_ID, is_safe_client_id, scope};
use crate::error::{ApiError, ErrorFormat};
use crate::storage::BoxFuture;

/// Adds [`RequestService`] around a service.
#[derive(Debug, Clone)]
pub struct RequestLayer {
    ids: Arc<AtomicU64>,
}

impl RequestLayer {
    /// Numbers requests from `ids` (shared with the rest of the process).
    pub fn new(ids: Arc<AtomicU64>) -> Self {
        Self { ids }
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestService {
            inner,
            ids: self.ids.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct RequestService<S> {
    inner: S,
    ids: Arc<AtomicU64>,
}

impl<S, B> Service<Request> for RequestService<S>
where
    S: Service<Request, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // A client's id is kept only when it is one safe value.
        let client_id = {
            let mut values = request.headers().get_all(&X_REQUEST_ID).iter();
            match (values.next(), values.next()) {
                (Some(value), None) if is_safe_client_id(value) => Some(value.clone()),
                _ => None,
            }
        };
        let id = client_id
            .unwrap_or_else(|| HeaderValue::from(self.ids.fetch_add(1, Ordering::Relaxed)));
        request.headers_mut().insert(X_REQUEST_ID, id.clone());
        request.extensions_mut().insert(RequestId::new(id.clone()));
        let format = if errors_always_json(request.uri().path()) {
            ErrorFormat::Json
        } else {
            ErrorFormat::from_request_headers(request.headers())
        };
        let is_head = request.method() == Method::HEAD;
        let answer = self.inner.call(request);
        Box::pin(async move {
            let id_text = id.to_str().unwrap_or("-").to_string();
            let response = scope(id_text.clone(), answer).await?;
            let mut response = response.map(Body::new);
            if let Some(error) = response.extensions_mut().remove::<ApiError>() {
                response = render(response, &error, format, &id_text, is_head);
            }
            response.headers_mut().insert(X_REQUEST_ID, id);
            Ok(response)
        })
    }
}

/// Whether errors on `path` are always the JSON envelope: the staff API
/// always answers JSON (STAFF-API.md); elsewhere `Accept` decides. The
/// OpenAPI document describes error bodies by the same rule.
pub fn errors_always_json(path: &str) -> bool {
    path.starts_with("/api/v1/")
}

/// The answer with the error's body, as `format` says. Headers the
/// handler set (`Allow`, `Retry-After`) are kept.
fn render(
    response: Response,
    error: &ApiError,
    format: ErrorFormat,
    request_id: &str,
    is_head: bool,
) -> Response {
    let (content_type, body) = error.render_body(format, Some(request_id));
    let (mut parts, _) = response.into_parts();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A HEAD answer keeps the length of the body a GET would have had.
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let body = if is_head {
        Body::empty()
    } else {
        Body::from(body)
    };
    Response::from_parts(parts, body)
}
