//! `POST /api/tickets.<format>` and `GET /api/tickets/<number>.json`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use jiff::Timestamp;

use super::client::client_addr;
use crate::app::AppState;
use crate::domain::email::{EmailContext, file_email, prepare_email};
use crate::domain::keys::{ApiKeySecret, Permission, authorize};
use crate::domain::tickets::{RequestContext, create_ticket, prepare_ticket};
use crate::error::ApiError;
use crate::intake::{json, xml};
use crate::storage::EmailOutcome;

/// Bodies larger than this are decoded on the blocking pool.
const INLINE_DECODE_BYTES: usize = 64 * 1024;

/// Request formats (API.md: the format comes from the path only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
    Email,
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not found")
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        .render(&HeaderMap::new());
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// Authenticates the request for `permission` (before its body is read).
async fn authenticate(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    permission: Permission,
    request_id: u64,
) -> Result<std::net::IpAddr, ApiError> {
    let client = client_addr(peer.ip(), headers, &state.trusted_proxies).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, e.to_string()).with_field("X-Forwarded-For")
    })?;
    let presented = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(ApiKeySecret::from_header)
        .ok_or(crate::domain::keys::AuthError::Missing)?;
    let record = state
        .store
        .find_api_key(presented.hash())
        .await
        .map_err(|e| ApiError::from_store(&e, request_id))?;
    authorize(&presented, record.as_ref(), client, permission)?;
    Ok(client)
}

/// Reads the body up to the configured cap: 413 past it.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.limits.max_request_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is over the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {e}"),
        )),
    }
}

/// `/api/{file}`: `tickets.<format>`.
pub async fn collection(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(ext) = file.strip_prefix("tickets.") else {
        return not_found().render(&headers);
    };
    if method != Method::POST {
        return method_not_allowed("POST");
    }
    let format = match ext {
        "json" => Format::Json,
        "xml" => Format::Xml,
        "email" => Format::Email,
        other => {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Unsupported data format: {other}"),
            )
            .render(&headers);
        }
    };
    match create(&state, peer, &headers, body, format).await {
        Ok(r) => r,
        Err(e) => e.render(&headers),
    }
}

async fn create(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<Response, ApiError> {
    let request_id = state.request_ids.fetch_add(1, Ordering::Relaxed);
    let client_ip =
        authenticate(state, peer, headers, Permission::CreateTickets, request_id).await?;
    let bytes = read_body(state, headers, body).await?;
    if format == Format::Email {
        return create_from_email(state, client_ip, bytes, request_id).await;
    }
    let limits = state.catalog.intake_limits;
    let decode = move |bytes: &[u8]| {
        if format == Format::Xml {
            xml::parse_xml(bytes, &limits)
        } else {
            json::parse_json(bytes, &limits)
        }
    };
    let draft = if bytes.len() > INLINE_DECODE_BYTES {
        tokio::task::spawn_blocking(move || decode(&bytes))
            .await
            .map_err(|e| ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, request_id, &e))??
    } else {
        decode(&bytes)?
    };
    let ctx = RequestContext {
        client_ip,
        now: Timestamp::now(),
    };
    let prepared = prepare_ticket(&state.catalog, draft, &ctx)?;
    let ignored = prepared.ignored_fields.join(", ");
    if !ignored.is_empty() {
        tracing::info!(request.id = request_id, fields = %ignored, "ignored unknown fields");
    }
    let number = create_ticket(state.store.as_ref(), prepared)
        .await
        .map_err(|e| ApiError::from_create(e, request_id))?;
    tracing::info!(request.id = request_id, ticket.number = %number, "created ticket {number}");
    state.intake.stored();
    let mut response = text_response(StatusCode::CREATED, number);
    if !ignored.is_empty()
        && let Ok(v) = HeaderValue::from_str(&ignored)
    {
        response.headers_mut().insert("x-ignored-fields", v);
    }
    Ok(response)
}

fn text_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `POST /api/tickets.email`: 201 with the ticket the message went to, or
/// an empty 201 for a bounce that names no ticket.
async fn create_from_email(
    state: &AppState,
    client_ip: std::net::IpAddr,
    bytes: axum::body::Bytes,
    request_id: u64,
) -> Result<Response, ApiError> {
    let ctx = EmailContext {
        client_ip: Some(client_ip),
        now: Timestamp::now(),
    };
    let catalog = state.catalog.clone();
    let prepared = if bytes.len() > INLINE_DECODE_BYTES {
        tokio::task::spawn_blocking(move || prepare_email(&catalog, &bytes, &ctx))
            .await
            .map_err(|e| ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, request_id, &e))?
    } else {
        prepare_email(&catalog, &bytes, &ctx)
    };
    let outcome = match prepared {
        Ok(email) => file_email(state.store.as_ref(), &state.catalog.mail_rules, email).await,
        Err(e) => Err(e),
    }
    .map_err(|e| ApiError::from_email(e, request_id))?;
    let number = match outcome {
        EmailOutcome::Created(n) | EmailOutcome::Appended(n) | EmailOutcome::Duplicate(Some(n)) => {
            n
        }
        EmailOutcome::Duplicate(None) | EmailOutcome::BounceLogged => String::new(),
    };
    tracing::info!(request.id = request_id, ticket.number = %number, "filed email");
    state.intake.stored();
    Ok(text_response(StatusCode::CREATED, number))
}

/// `/api/tickets/{number}.json`.
pub async fn item(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Some(number) = file.strip_suffix(".json") else {
        return not_found().render(&headers);
    };
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    match read(&state, peer, &headers, number).await {
        Ok(r) => r,
        Err(e) => e.render(&headers),
    }
}

async fn read(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    number: &str,
) -> Result<Response, ApiError> {
    let request_id = state.request_ids.fetch_add(1, Ordering::Relaxed);
    authenticate(state, peer, headers, Permission::ReadTickets, request_id).await?;
    if number.is_empty()
        || !number
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(not_found());
    }
    let ticket = state
        .store
        .load_ticket(number.to_string())
        .await
        .map_err(|e| ApiError::from_store(&e, request_id))?
        .ok_or_else(not_found)?;
    let body = serde_json::to_string(&ticket)
        .map_err(|e| ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, request_id, &e))?;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
