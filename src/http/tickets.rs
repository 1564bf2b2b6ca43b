//! `POST /api/tickets.<format>` and `GET /api/tickets/<number>.json`.
//!
//! The path and method are checked first (404, 405, 415), then the key
//! (by the `ApiKey` extractor, before the body is read), then the body.

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use jiff::Timestamp;

use super::api_key::{ApiKey, CanCreate, CanRead};
use crate::app::AppState;
use crate::domain::email::{EmailContext, EmailError, file_email, prepare_email};
use crate::domain::idempotency::{self, IdempotencyClaim, IdempotencyKey, Replay};
use crate::domain::ids::TicketNumber;
use crate::domain::tickets::{CreateError, RequestContext, create_ticket, prepare_ticket};
use crate::error::ApiError;
use crate::intake::{json, xml};
use crate::storage::StoreError;
use crate::telemetry::{self, Channel};

/// Bodies larger than this are decoded on the blocking pool.
const INLINE_DECODE_BYTES: usize = 64 * 1024;

/// Request formats (API.md: the format comes from the path only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `tickets.json`.
    Json,
    /// `tickets.xml`.
    Xml,
    /// `tickets.email`: a whole RFC 5322 message.
    Email,
}

/// The `{file}` path segment; axum's own rejection (a segment that is not
/// UTF-8 once decoded) keeps its status but goes through `ApiError`.
async fn file_segment<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<String, ApiError> {
    Path::<String>::from_request_parts(parts, state)
        .await
        .map(|Path(file)| file)
        .map_err(|r| ApiError::new(r.status(), r.body_text()))
}

/// `405` naming the methods the path takes.
fn method_not_allowed(allow: &'static str) -> Response {
    (
        [(header::ALLOW, HeaderValue::from_static(allow))],
        ApiError::method_not_allowed(),
    )
        .into_response()
}

/// `/api/{file}` is `tickets.<format>` and the method is POST: `404` for
/// another file, then `405`, then `415` for an unknown format (API.md,
/// Routes), all before the key is looked at.
pub struct CreatePath(pub Format);

impl<S: Send + Sync> FromRequestParts<S> for CreatePath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let file = file_segment(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(ext) = file.strip_prefix("tickets.") else {
            return Err(ApiError::not_found().into_response());
        };
        if parts.method != Method::POST {
            return Err(method_not_allowed("POST"));
        }
        match ext {
            "json" => Ok(Self(Format::Json)),
            "xml" => Ok(Self(Format::Xml)),
            "email" => Ok(Self(Format::Email)),
            other => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Unsupported data format: {other}"),
            )
            .into_response()),
        }
    }
}

/// `/api/tickets/{file}` is `<number>.json` and the method GET or HEAD:
/// `404`, then `405`, before the key. The number itself is checked after
/// the key, so that without one nothing says which numbers are well formed.
pub struct ReadPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ReadPath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let file = file_segment(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(number) = file.strip_suffix(".json") else {
            return Err(ApiError::not_found().into_response());
        };
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return Err(method_not_allowed("GET, HEAD"));
        }
        Ok(Self(number.to_string()))
    }
}

/// A request body, and its share of the server's bytes in flight, held
/// until this is dropped (when the request's work is done).
pub(crate) struct BodyBytes {
    /// The body.
    pub bytes: axum::body::Bytes,
    /// Given back on drop.
    pub _permit: super::budget::BytesPermit,
}

impl std::ops::Deref for BodyBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Reads the body up to the configured cap (413 past it), first taking
/// its size from the server's budget of bytes in flight (503 with
/// `Retry-After` when there is no room in time). A declared length is
/// taken at once and the buffer sized to it (no growth by doubling); a
/// chunked body takes the budget step by step as it arrives.
pub(crate) async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<BodyBytes, ApiError> {
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
    let mut permit = super::budget::BytesPermit::default();
    state
        .budget
        .grow(&mut permit, declared.unwrap_or(0))
        .await?;
    // `declared` is at most `limit`, which the budget holds.
    let mut buf = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let len = (buf.len() + data.len()) as u64;
        if len > limit {
            return Err(too_large());
        }
        if len > permit.bytes() {
            let step = (len - permit.bytes()).max(super::budget::CHUNK_STEP_BYTES);
            state.budget.grow(&mut permit, step).await?;
        }
        buf.extend_from_slice(&data);
    }
    Ok(BodyBytes {
        bytes: buf.into(),
        _permit: permit,
    })
}

/// `/api/{file}`: `tickets.<format>`.
pub async fn collection(
    State(state): State<AppState>,
    CreatePath(format): CreatePath,
    key: ApiKey<CanCreate>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let outcome = create(&state, &key, &headers, body, format).await;
    let channel = match format {
        Format::Json => Channel::Json,
        Format::Xml => Channel::Xml,
        Format::Email => Channel::Email,
    };
    telemetry::ticket(
        channel,
        outcome
            .as_ref()
            .err()
            .map(|e| super::layer::reason_of(e.status)),
    );
    outcome
}

async fn create(
    state: &AppState,
    key: &ApiKey<CanCreate>,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<Response, ApiError> {
    let client_ip = key.client;
    // A malformed key is refused before the body is read.
    let idempotency_key = match headers.get(idempotency::HEADER) {
        Some(v) => Some(IdempotencyKey::parse(v.as_bytes()).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, e).with_field("Idempotency-Key")
        })?),
        None => None,
    };
    // The permit is held until this request's work is done.
    let BodyBytes {
        bytes,
        _permit: _in_flight,
    } = read_body(state, headers, body).await?;
    let claim = idempotency_key.map(|k| {
        let name = match format {
            Format::Json => "json",
            Format::Xml => "xml",
            Format::Email => "email",
        };
        IdempotencyClaim::new(
            &key.key_id.to_string(),
            &k,
            name,
            &bytes,
            Timestamp::now().as_second(),
        )
    });
    if let Some(claim) = &claim
        && let Some(replay) = idempotency::earlier(state.store.as_ref(), claim).await?
    {
        return replay_response(replay);
    }
    if format == Format::Email {
        create_from_email(state, client_ip, bytes, claim).await
    } else {
        create_from_document(state, client_ip, bytes, format, claim).await
    }
}

/// The store refused the claim: a concurrent request with the same key
/// committed first; answer as it was answered.
async fn replay_after_conflict(
    state: &AppState,
    claim: Option<&IdempotencyClaim>,
) -> Result<Response, ApiError> {
    let claim = claim.ok_or_else(|| {
        ApiError::internal(
            StatusCode::INTERNAL_SERVER_ERROR,
            &"an idempotency conflict without a key",
        )
    })?;
    replay_response(idempotency::after_conflict(state.store.as_ref(), claim).await?)
}

/// The answer to a request whose `Idempotency-Key` was used before.
fn replay_response(replay: Replay) -> Result<Response, ApiError> {
    match replay {
        Replay::Same(answer) => {
            let mut response = text_response(StatusCode::CREATED, answer);
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        Replay::DifferentRequest => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Idempotency-Key was already used with a different request",
        )
        .with_field("Idempotency-Key")),
    }
}

/// A JSON or XML ticket.
async fn create_from_document(
    state: &AppState,
    client_ip: std::net::IpAddr,
    bytes: axum::body::Bytes,
    format: Format,
    claim: Option<IdempotencyClaim>,
) -> Result<Response, ApiError> {
    let limits = state.catalog.intake_limits;
    let field_limits = state.catalog.field_limits;
    // The body is dropped as soon as it is decoded.
    let decode = move |bytes: axum::body::Bytes| {
        if format == Format::Xml {
            xml::parse_xml(&bytes, &limits, &field_limits)
        } else {
            json::parse_json(&bytes, &limits, &field_limits)
        }
    };
    let draft = if bytes.len() > INLINE_DECODE_BYTES {
        tokio::task::spawn_blocking(move || decode(bytes)).await??
    } else {
        decode(bytes)?
    };
    let ctx = RequestContext {
        client_ip,
        now: Timestamp::now(),
    };
    let mut prepared = prepare_ticket(&state.catalog, draft, &ctx)?;
    prepared.ticket.idempotency = claim.clone();
    let ignored = prepared.ignored_fields.join(", ");
    if !ignored.is_empty() {
        // Debug-escaped: the names are the client's text.
        tracing::info!(fields = ?ignored, "ignored unknown fields");
    }
    let number = match create_ticket(state.store.as_ref(), prepared).await {
        Err(CreateError::Store(StoreError::IdempotencyKeyUsed)) => {
            return replay_after_conflict(state, claim.as_ref()).await;
        }
        other => other?,
    };
    // Per ticket, so at DEBUG: the access log already has a line for
    // every request (issue 17: logging costs nothing per ticket at INFO).
    tracing::debug!(
        ticket.number = %number,
        request.id = %super::request_id::current(),
        "created ticket {number}"
    );
    state.intake.stored();
    let mut response = text_response(StatusCode::CREATED, number.to_string());
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
    claim: Option<IdempotencyClaim>,
) -> Result<Response, ApiError> {
    let ctx = EmailContext {
        client_ip: Some(client_ip),
        now: Timestamp::now(),
    };
    let catalog = state.catalog.clone();
    let prepared = if bytes.len() > INLINE_DECODE_BYTES {
        tokio::task::spawn_blocking(move || prepare_email(&catalog, &bytes, &ctx)).await?
    } else {
        prepare_email(&catalog, &bytes, &ctx)
    };
    let outcome = match prepared {
        Ok(mut email) => {
            email.email.ticket.idempotency = claim.clone();
            file_email(state.store.as_ref(), &state.catalog.mail_rules, email).await
        }
        Err(e) => Err(e),
    };
    let outcome = match outcome {
        Err(EmailError::Store(StoreError::IdempotencyKeyUsed)) => {
            return replay_after_conflict(state, claim.as_ref()).await;
        }
        other => other?,
    };
    let number = outcome.answer().to_string();
    tracing::debug!(
        ticket.number = %number,
        request.id = %super::request_id::current(),
        "filed email"
    );
    state.intake.stored();
    Ok(text_response(StatusCode::CREATED, number))
}

/// `/api/tickets/{number}.json`.
pub async fn item(
    State(state): State<AppState>,
    ReadPath(number): ReadPath,
    _key: ApiKey<CanRead>,
) -> Result<Response, ApiError> {
    read(&state, &number).await
}

async fn read(state: &AppState, number: &str) -> Result<Response, ApiError> {
    let number = TicketNumber::parse(number).ok_or_else(ApiError::not_found)?;
    let ticket = state
        .store
        .load_ticket(number)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let body = serde_json::to_string(&super::wire::TicketJson::from(&ticket))
        .map_err(|e| ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

// ---- the OpenAPI document of these routes
//
// `collection` and `item` serve every file name under one `{file}` route
// each; the document names each concrete path instead, so these
// operations are written per path, on functions that only carry them.

/// The intake operations (`http::openapi` merges them).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_json,
    create_xml,
    create_email,
    create_json_http_php,
    create_xml_http_php,
    create_email_http_php,
    read_json,
    read_json_http_php,
))]
pub struct IntakeDoc;

/// The JSON ticket (API.md, Create a ticket; JSON), plus the fields of
/// the configured forms (stock: `phone`, `notes`). Decoded by
/// `intake::json` from any JSON object: this type only describes it.
#[derive(utoipa::ToSchema)]
#[schema(
    as = TicketRequest,
    example = json!({
        "email": "api@example.com", "name": "Angry User", "subject": "Testing API",
        "message": "data:text/html,MESSAGE <b>HERE</b>", "ip": "10.0.0.1",
        "phone": "3185558634X123",
        "attachments": [{"file.txt": "data:text/plain;charset=utf-8,content"}]
    })
)]
#[allow(dead_code, non_snake_case)] // A schema only; the names are the wire's.
struct TicketRequestSchema {
    #[schema(format = Email)]
    email: String,
    name: String,
    subject: String,
    /// Plain text, or an RFC 2397 data URL (`data:text/html,…`,
    /// `data:text/plain;charset=iso-8859-1;base64,…`); percent escapes are
    /// not decoded.
    message: String,
    /// Alert staff (default true).
    #[schema(required = false)]
    alert: bool,
    /// Send the user an autoresponse (default true).
    #[schema(required = false)]
    autorespond: bool,
    /// The user's address (default: the source address).
    #[schema(required = false)]
    ip: String,
    /// A priority id.
    #[schema(required = false)]
    priority: i64,
    /// Alias of `priority` (osTicket's code).
    #[schema(required = false)]
    priorityId: i64,
    /// `API` (default), `Email`, `Phone`, `Web`, `Other`, any case.
    #[schema(required = false)]
    source: String,
    /// An active help topic id.
    #[schema(required = false)]
    topicId: i64,
    /// One-key objects, file name → data URL (base64 or literal; media
    /// type default `text/plain`).
    #[schema(value_type = Vec<std::collections::HashMap<String, String>>, required = false)]
    attachments: (),
}

/// One create operation per concrete path and format.
macro_rules! create_op {
    ($fn:ident, $path:literal, $id:literal, $summary:literal, {$($body:tt)*}, $ok:literal, {$($extra:tt)*}) => {
        #[utoipa::path(
            post,
            path = $path,
            tag = "intake",
            operation_id = $id,
            summary = $summary,
            request_body($($body)*),
            params(("Idempotency-Key" = Option<String>, Header,
                description = "Makes a retry safe: the same key (1 to 255 printable ASCII characters, bare or as a quoted string) with the same body within 24 hours answers the first `201` again (with `Idempotent-Replayed: true`) and creates nothing; per API key; concurrent duplicates create one ticket.",
                example = "4c1f7a0e-2b1d-4d8e-9a51-7f0f3c2b9e11")),
            responses(
                (status = 201, description = $ok, $($extra)* body = String,
                    content_type = "text/plain", example = "123456"),
                (status = 400, description = "A required field missing, a wrong data type, bad base64, an unexpected field, a field given twice, an attachment object without a file, a control character (NUL, …) in a text, a text over its length (`max_name_chars`, `max_subject_chars`, `max_field_value_chars`, `max_file_name_chars`), malformed data (XML: bytes not valid in its encoding), a `DOCTYPE`, a malformed `Idempotency-Key`; names the field."),
                (status = 401, description = "`Valid API key required` (no or unknown key), `API key not found/active or source IP not authorized`, `API key not authorized` (no `can_create_tickets`)."),
                (status = 403, description = "`Ticket denied`: the sender is on the ban list."),
                (status = 413, description = "The body is over `max_request_body_bytes`, an attachment over `max_attachment_bytes` (named), too many attachments, or more field values than `max_fields` (found while parsing)."),
                (status = 422, description = "The `Idempotency-Key` was used within 24 hours with a different request (body or format); nothing is created."),
                (status = 429, description = "Over a `[limits]` rate (per key, per address, or failed key checks); `Retry-After` and `RateLimit-*` say when to come back."),
                (status = 503, description = "The store is busy, or the server holds `max_bytes_in_flight` of request bodies (both with `Retry-After`), or (email) email intake is off."),
            ),
            security(("apiKey" = [])),
        )]
        #[allow(dead_code)] // Documentation only: `collection` serves it.
        fn $fn() {}
    };
}

create_op!(create_json, "/api/tickets.json", "create_ticket_json",
    "Create a ticket from JSON",
    {content = TicketRequestSchema, content_type = "application/json",
        description = "The ticket as a JSON object (the format comes from the path; `Content-Type` is not looked at)."},
    "Created: the ticket number.",
    {headers(("X-Ignored-Fields" = String, description = "Unknown fields that were dropped (only with `unknown_fields = \"ignore\"`).")),});
create_op!(create_xml, "/api/tickets.xml", "create_ticket_xml",
    "Create a ticket from XML",
    {content = String, content_type = "application/xml",
        description = "`<ticket>` with the same fields as attributes or child elements; `<message type=\"text/html\">`, `<attachments><file name=\"…\" type=\"…\" encoding=\"base64\">…</file></attachments>`. No `DOCTYPE`."},
    "Created: the ticket number.",
    {headers(("X-Ignored-Fields" = String, description = "Unknown fields that were dropped (only with `unknown_fields = \"ignore\"`).")),});
create_op!(create_email, "/api/tickets.email", "create_ticket_email",
    "Create a ticket from an email",
    {content = String, content_type = "message/rfc822",
        description = "A whole RFC 5322 message. A reply to a ticket's thread continues that ticket."},
    "Filed: the number of the ticket the message opened or continued (also for a Message-ID already processed); empty for a bounce that names no ticket.",
    {});
create_op!(create_json_http_php, "/api/http.php/tickets.json", "create_ticket_json_http_php",
    "Create a ticket from JSON (osTicket's path without URL rewriting)",
    {content = TicketRequestSchema, content_type = "application/json",
        description = "As `POST /api/tickets.json`."},
    "Created: the ticket number.",
    {headers(("X-Ignored-Fields" = String, description = "Unknown fields that were dropped (only with `unknown_fields = \"ignore\"`).")),});
create_op!(create_xml_http_php, "/api/http.php/tickets.xml", "create_ticket_xml_http_php",
    "Create a ticket from XML (osTicket's path without URL rewriting)",
    {content = String, content_type = "application/xml", description = "As `POST /api/tickets.xml`."},
    "Created: the ticket number.",
    {headers(("X-Ignored-Fields" = String, description = "Unknown fields that were dropped (only with `unknown_fields = \"ignore\"`).")),});
create_op!(create_email_http_php, "/api/http.php/tickets.email", "create_ticket_email_http_php",
    "Create a ticket from an email (osTicket's path without URL rewriting)",
    {content = String, content_type = "message/rfc822", description = "As `POST /api/tickets.email`."},
    "As `POST /api/tickets.email`.",
    {});

/// One read operation per concrete path.
macro_rules! read_op {
    ($fn:ident, $path:literal, $id:literal, $summary:literal) => {
        #[utoipa::path(
            get,
            path = $path,
            tag = "intake",
            operation_id = $id,
            summary = $summary,
            params(("number" = String, Path, description = "The ticket number.", example = "123456")),
            responses(
                (status = 200, description = "The ticket (internal notes left out).", body = super::wire::TicketJson),
                (status = 401, description = "`Valid API key required`, `API key not found/active or source IP not authorized`, `API key not authorized` (no `can_read_tickets`)."),
                (status = 404, description = "No such ticket."),
                (status = 503, description = "The store is busy."),
            ),
            security(("apiKey" = [])),
        )]
        #[allow(dead_code)] // Documentation only: `item` serves it.
        fn $fn() {}
    };
}

read_op!(
    read_json,
    "/api/tickets/{number}.json",
    "read_ticket",
    "Read a ticket"
);
read_op!(
    read_json_http_php,
    "/api/http.php/tickets/{number}.json",
    "read_ticket_http_php",
    "Read a ticket (osTicket's path without URL rewriting)"
);
