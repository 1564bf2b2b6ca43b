//! The API-key extractor: `X-API-Key` checked against the stored keys,
//! the client's address and the permission the route needs (API.md,
//! Authentication). It runs from the request's head, so the key is checked
//! before the body is read or parsed; it must not read the body.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::client::client_addr;
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
        let presented = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(ApiKeySecret::from_header)
            .ok_or(AuthError::Missing)?;
        let record = state.store.find_api_key(presented.hash()).await?;
        authorize(&presented, record.as_ref(), client, P::PERMISSION)?;
        Ok(Self {
            client,
            permission: PhantomData,
        })
    }
}
