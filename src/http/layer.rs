//! The request layer: one tower service around every route that gives the
//! request its id (a client's safe `X-Request-Id`, else the next number),
//! applies the per-address rate limit, runs the handler with that id in
//! scope for log lines, writes the body of any [`ApiError`] answer as the
//! request's `Accept` asks (the one place that reads it), echoes the id in
//! `X-Request-Id`, writes the rate-limit headers, and then records the
//! request: one access-log line and the request metrics (see [`observe`]).
//! Extractors tell it what they learnt (the key's id, a refusal's reason,
//! the key's rate state) through the request's [`RequestNote`].
//!
//! Written as a plain service rather than `axum::middleware::from_fn`:
//! the two `from_fn` middlewares it replaces cost ~12% of the ticket rate
//! (measured with `oxidesk-bench`, interleaved runs), mostly in cloning the
//! inner service and converting bodies per request.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, HttpBody as _};
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use tower::{Layer, Service};
use tower_http::request_id::RequestId;

use super::ops::{Ops, client_of, is_probe};
use super::rate_limit::RateState;
use super::request_id::{X_REQUEST_ID, is_safe_client_id, scope};
use crate::domain::ids::ApiKeyId;
use crate::error::{ApiError, ErrorFormat};
use crate::storage::BoxFuture;
use crate::telemetry;

/// Adds [`RequestService`] around a service.
#[derive(Debug, Clone)]
pub struct RequestLayer {
    ids: Arc<AtomicU64>,
    ops: Arc<Ops>,
}

impl RequestLayer {
    /// Numbers requests from `ids` (shared with the rest of the process);
    /// limits, logs and measures them as `ops` says.
    pub fn new(ids: Arc<AtomicU64>, ops: Arc<Ops>) -> Self {
        Self { ids, ops }
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestService {
            inner,
            ids: self.ids.clone(),
            ops: self.ops.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct RequestService<S> {
    inner: S,
    ids: Arc<AtomicU64>,
    ops: Arc<Ops>,
}

/// What a request's extractors tell the layer, in the request's
/// extensions (each part written once).
#[derive(Debug, Default)]
pub struct RequestNote {
    key: OnceLock<ApiKeyId>,
    refusal: OnceLock<&'static str>,
    rate: OnceLock<RateState>,
    retry_after_secs: OnceLock<u64>,
}

impl RequestNote {
    /// The request came with this valid key.
    pub fn set_key(&self, key: ApiKeyId) {
        let _ = self.key.set(key);
    }

    /// The request is refused for `reason` (a fixed word, logged and
    /// never the client's text).
    pub fn refuse(&self, reason: &'static str) {
        let _ = self.refusal.set(reason);
    }

    /// The key's rate-limit decision (its headers are written).
    pub fn set_rate(&self, state: RateState) {
        let _ = self.rate.set(state);
    }

    /// Refused for a while: `Retry-After`.
    pub fn retry_after(&self, secs: u64) {
        let _ = self.retry_after_secs.set(secs);
    }
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
        let start = Instant::now();
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
        let ops = self.ops.clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let is_probe = route.as_ref().is_some_and(|r| is_probe(r.as_str()));
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| client_of(peer.ip(), request.headers(), &ops));
        let address_rate = match client {
            Some(client) if !is_probe => ops.rate.check_address(client),
            _ => None,
        };
        let method = request.method().clone();
        let note = Arc::new(RequestNote::default());
        request.extensions_mut().insert(note.clone());
        // Over the address's allowance: the handler is not called.
        let answer = match address_rate {
            Some(RateState {
                retry_after_secs: Some(_),
                ..
            }) => None,
            _ => Some(self.inner.call(request)),
        };
        let change = ChangeMark(
            (!matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)).then(|| ops.clone()),
        );
        Box::pin(async move {
            // The whole mark moves in: it drops when the answer is ready.
            let mut change = change;
            let id_text = id.to_str().unwrap_or("-").to_string();
            let mut response = match answer {
                Some(answer) => scope(id_text.clone(), answer).await?.map(Body::new),
                None => {
                    note.refuse("rate_limited_address");
                    metrics::counter!(telemetry::RATE_LIMITED, "scope" => "address").increment(1);
                    too_many_requests()
                }
            };
            if response.status().is_client_error() {
                // Refused: it changed nothing.
                change.disarm();
            }
            if let Some(error) = response.extensions_mut().remove::<ApiError>() {
                response = render(response, &error, format, &id_text, is_head);
            }
            let headers = response.headers_mut();
            headers.insert(X_REQUEST_ID, id);
            write_rate_headers(headers, &note, address_rate);
            observe(&Observed {
                ops: &ops,
                note: &note,
                route: route.as_ref().map_or("unmatched", MatchedPath::as_str),
                is_probe,
                method: &method,
                client,
                response: &response,
                start,
                request_id: &id_text,
            });
            Ok(response)
        })
    }
}

/// Moves [`Ops::changes`] when dropped: after a state-changing request's
/// answer is ready (and before it is sent), or when its handler was
/// dropped half-way (a client gone after the commit) or panicked.
struct ChangeMark(Option<Arc<Ops>>);

impl ChangeMark {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for ChangeMark {
    fn drop(&mut self) {
        if let Some(ops) = &self.0 {
            ops.changes.fetch_add(1, Ordering::Release);
        }
    }
}

/// The per-address limit's refusal (its body is rendered like any error).
fn too_many_requests() -> Response {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests").into_response()
}

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// `RateLimit-Limit`, `-Remaining`, `-Reset` of the tighter of the key's
/// and the address's decisions, and `Retry-After` on a refusal.
fn write_rate_headers(headers: &mut HeaderMap, note: &RequestNote, address: Option<RateState>) {
    let rate = match note.rate.get() {
        Some(key) => Some(key.tighter(address)),
        None => address,
    };
    if let Some(rate) = rate {
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(rate.limit));
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(rate.remaining));
        headers.insert(RATELIMIT_RESET, HeaderValue::from(rate.reset_secs));
    }
    let retry = note
        .retry_after_secs
        .get()
        .copied()
        .or(rate.and_then(|r| r.retry_after_secs));
    if let Some(secs) = retry {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
}

/// One answered request, as [`observe`] records it.
struct Observed<'a> {
    ops: &'a Ops,
    note: &'a RequestNote,
    route: &'a str,
    is_probe: bool,
    method: &'a Method,
    client: Option<IpAddr>,
    response: &'a Response,
    start: Instant,
    request_id: &'a str,
}

/// A method as a label: the standard ones, else `other` (a client may
/// send any token).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A refusal's reason when no extractor named one: the status's kind.
pub fn reason_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid",
        401 => "unauthorized",
        403 => "denied",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        412 => "precondition_failed",
        413 => "too_large",
        415 => "unsupported_format",
        422 => "unprocessable",
        429 => "rate_limited",
        500..=599 => "internal",
        _ => "other",
    }
}

/// The access-log line (target `oxidesk::access`: INFO, probes at DEBUG)
/// and the request metrics. The client's address is after the
/// trusted-proxy rule; the key is named by its id, never its text.
fn observe(o: &Observed<'_>) {
    let status = o.response.status();
    let elapsed = o.start.elapsed();
    if o.ops.is_recording() {
        let method = method_label(o.method);
        metrics::counter!(
            telemetry::HTTP_REQUESTS,
            "route" => o.route.to_owned(),
            "method" => method,
            "status" => status.as_str().to_owned(),
        )
        .increment(1);
        metrics::histogram!(
            telemetry::HTTP_DURATION,
            "route" => o.route.to_owned(),
            "method" => method,
        )
        .record(elapsed.as_secs_f64());
    }
    let reason = o.note.refusal.get().copied().or_else(|| {
        (status.is_client_error() || status.is_server_error()).then(|| reason_of(status))
    });
    let size_bytes = o.response.body().size_hint().exact();
    let duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let client = o.client.map(tracing::field::display);
    let key = o.note.key.get().map(|k| k.0);
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                target: "oxidesk::access",
                $level,
                client.addr = client,
                key.id = key,
                method = %o.method,
                route = o.route,
                status = status.as_u16(),
                size_bytes,
                duration_us,
                request.id = o.request_id,
                reason,
                "{} {} {}",
                o.method,
                o.route,
                status.as_u16()
            )
        };
    }
    if o.is_probe {
        line!(tracing::Level::DEBUG);
    } else {
        line!(tracing::Level::INFO);
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
