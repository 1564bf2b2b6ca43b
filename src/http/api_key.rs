//! The API-key extractor: `X-API-Key` checked against the stored keys,
//! the client's address and the permission the route needs (API.md,
//! Authentication). It runs from the request's head, so the key is checked
//! before the body is read or parsed; it must not read the body.
//!
//! It also applies the key's rate limits (`[limits]`): a client address
//! whose failed checks ran out is refused with `429` before its key is
//! looked at, and each valid key spends its own allowance. A failed check
//! is logged at WARN with the client's address (for fail2ban, README).

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::client::client_addr;
use super::layer::RequestNote;
use crate::app::AppState;
use crate::domain::keys::{ApiKeySecret, AuthError, Permission, authorize};
use crate::error::ApiError;

/// A permission a route needs, as a type, so a handler's signature says it.
pub trait RequiredPermission {
    /// The permission checked.
    const PERMISSION: Permission;
}

/// `can_create_tickets`.
#[derive(Debug, Clone, Copy)]
pub struct CanCreate;

impl RequiredPermission for CanCreate {
    const PERMISSION: Permission = Permission::CreateTickets;
}

/// `can_read_tickets`.
#[derive(Debug, Clone, Copy)]
pub struct CanRead;

impl RequiredPermission for CanRead {
    const PERMISSION: Permission = Permission::ReadTickets;
}

/// A request whose key is valid, active, bound to the client's address and
/// holds permission `P`. Rejections: `400` naming `X-Forwarded-For` when a
/// trusted proxy sent an unreadable one, `401` with osTicket's texts, and
/// the store's own faults.
#[derive(Debug, Clone, Copy)]
pub struct ApiKey<P> {
    /// The client's address (the trusted-proxy rule applied).
    pub client: IpAddr,
    /// The key's id (idempotency keys are per API key).
    pub key_id: crate::domain::ids::ApiKeyId,
    // `fn() -> P`: the marker says nothing about Send or Sync.
    permission: PhantomData<fn() -> P>,
}

impl<P: RequiredPermission> FromRequestParts<AppState> for ApiKey<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // `serve` always supplies the peer; its absence is a wiring bug.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip())
            .ok_or_else(|| {
                ApiError::internal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &"no peer address: the router was served without connect info",
                )
            })?;
        let client = client_addr(peer, &parts.headers, &state.trusted_proxies).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, e.to_string()).with_field("X-Forwarded-For")
        })?;
        let note = parts.extensions.get::<std::sync::Arc<RequestNote>>();
        let rate = &state.ops.rate;
        if let Some(retry) = rate.key_checks_blocked(client) {
            return Err(refuse_key_checks(note, retry));
        }
        let presented = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(ApiKeySecret::from_header);
        let record = match &presented {
            Some(p) => state.store.find_api_key(p.hash()).await?,
            None => None,
        };
        let was_presented = presented.is_some();
        let checked = presented
            .ok_or(AuthError::Missing)
            .and_then(|p| authorize(&p, record.as_ref(), client, P::PERMISSION));
        if let Err(e) = checked {
            let reason = if was_presented {
                auth_reason(e)
            } else {
                "key_missing"
            };
            tracing::warn!(
                client.addr = %client,
                reason,
                request.id = %super::request_id::current(),
                "API key refused from {client}: {reason}"
            );
            metrics::counter!(crate::telemetry::KEY_REFUSALS, "reason" => reason).increment(1);
            if let Some(note) = note {
                note.refuse(reason);
            }
            if let Some(retry) = rate.key_check_failed(client) {
                return Err(refuse_key_checks(note, retry));
            }
            return Err(e.into());
        }
        // `authorize` succeeded, so the record is there.
        let key_id = record.as_ref().map(|r| r.id).ok_or_else(|| {
            ApiError::internal(
                StatusCode::INTERNAL_SERVER_ERROR,
                &"a key passed its check without a record",
            )
        })?;
        if let (Some(record), Some(note)) = (record, note) {
            note.set_key(record.id);
            if let Some(state) = rate.check_key(record.id) {
                note.set_rate(state);
                if state.retry_after_secs.is_some() {
                    note.refuse("rate_limited_key");
                    metrics::counter!(crate::telemetry::RATE_LIMITED, "scope" => "key")
                        .increment(1);
                    return Err(ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many requests",
                    ));
                }
            }
        }
        Ok(Self {
            client,
            key_id,
            permission: PhantomData,
        })
    }
}

/// A failed check's reason, as logs and metrics name it.
fn auth_reason(e: AuthError) -> &'static str {
    match e {
        AuthError::Missing => "key_unknown",
        AuthError::NotActiveOrAddress => "key_inactive_or_address",
        AuthError::NotAuthorized => "key_not_authorized",
    }
}

/// `429` for an address whose failed key checks ran out.
fn refuse_key_checks(
    note: Option<&std::sync::Arc<RequestNote>>,
    retry_after_secs: u64,
) -> ApiError {
    if let Some(note) = note {
        note.refuse("key_failures");
        note.retry_after(retry_after_secs);
    }
    metrics::counter!(crate::telemetry::RATE_LIMITED, "scope" => "key_failures").increment(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed API key checks from this address",
    )
}
