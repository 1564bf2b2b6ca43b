//! Who is calling: the [`Staff`] extractor (a Bearer token, session or
//! personal, looked up by its SHA-256) and the session routes.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::domain::staff::Agent;
use crate::error::ApiError;
use crate::http::client::client_addr;

/// The session routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}

/// A request made by a signed-in, active agent.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The agent.
    pub agent: Agent,
    /// The client's address (the trusted-proxy rule applied).
    pub client: IpAddr,
}

/// The token of `Authorization: Bearer <token>`, if one is given.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// SHA-256 of a token's secret: how tokens are stored and looked up.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `401`, asking for a Bearer token.
pub fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "Authentication required")
}

/// The client's address of a request (the trusted-proxy rule applied).
pub fn client_of(parts: &Parts, state: &AppState) -> Result<IpAddr, ApiError> {
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
    client_addr(peer, &parts.headers, &state.trusted_proxies).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, e.to_string()).with_field("X-Forwarded-For")
    })
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = client_of(parts, state)?;
        let token = bearer_token(parts).ok_or_else(unauthorized)?;
        let now = jiff::Timestamp::now().as_second();
        let agent = state
            .store
            .agent_by_token(token_hash(token), now)
            .await?
            .filter(|a| a.active)
            .ok_or_else(unauthorized)?;
        Ok(Self { agent, client })
    }
}
