//! The web session: the `oxidesk_session` cookie (a staff API session
//! token, stored hashed, same sliding expiry), the [`WebStaff`]
//! extractor that sends a visitor without one to the sign-in page, and
//! the CSRF token bound to the session.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::domain::staff::Agent;
use crate::http::staff::auth::{client_of, token_hash};

/// The session cookie's name.
pub const COOKIE: &str = "oxidesk_session";

/// The header htmx requests carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A request of a signed-in, active agent (by the session cookie).
#[derive(Debug, Clone)]
pub struct WebStaff {
    /// The agent.
    pub agent: Agent,
    /// The session token (the cookie's value).
    pub token: String,
    /// The CSRF token of this session.
    pub csrf: String,
    /// The client's address.
    pub client: IpAddr,
}

/// The session token of the request's cookie, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: SHA-256 of a label and the session token,
/// hex. Only the holder of the (HttpOnly) cookie can know it; it is not
/// the stored hash of the token (the label differs), and it needs no
/// server key, so it survives restarts and works across instances.
pub fn csrf_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"oxidesk web csrf\0");
    h.update(session_token.as_bytes());
    hex::encode(h.finalize())
}

impl WebStaff {
    /// Whether `presented` (a form field or the `X-CSRF-Token` header)
    /// is this session's CSRF token.
    pub fn csrf_ok(&self, headers: &HeaderMap, presented: Option<&str>) -> bool {
        let from_header = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        [presented, from_header]
            .into_iter()
            .flatten()
            .any(|p| bool::from(p.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(token: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// `next` as a safe place to return to: a path under `/scp/` of this
/// site (never `//host` or a scheme), else the queue.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/scp/")
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/scp/".to_string(),
    }
}

/// Percent-encodes a query value.
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// 303 to the sign-in page, keeping where the visitor was going (a GET
/// only: a form POST cannot be replayed).
fn to_sign_in(parts: &Parts) -> Response {
    let mut location = "/scp/login".to_string();
    if parts.method == Method::GET {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/scp/");
        if path != "/scp/" {
            location.push_str("?next=");
            location.push_str(&encode_query(&safe_next(Some(path))));
        }
    }
    super::see_other(&location)
}

impl FromRequestParts<AppState> for WebStaff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let client = client_of(parts, state).map_err(IntoResponse::into_response)?;
        let Some(token) = session_cookie(&parts.headers).map(str::to_string) else {
            return Err(to_sign_in(parts));
        };
        let now = jiff::Timestamp::now().as_second();
        let agent = state
            .store
            .agent_by_token(token_hash(&token), now)
            .await
            .map_err(|e| {
                super::error_page(super::store_status(&e), "The store is busy; try again.")
            })?
            .filter(|a| a.active);
        let Some(agent) = agent else {
            return Err(to_sign_in(parts));
        };
        Ok(Self {
            csrf: csrf_token(&token),
            agent,
            token,
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_kept_only_for_our_own_pages() {
        assert_eq!(safe_next(Some("/scp/tickets/1?x=2")), "/scp/tickets/1?x=2");
        assert_eq!(safe_next(Some("//evil.test/scp/")), "/scp/");
        assert_eq!(safe_next(Some("https://evil.test/")), "/scp/");
        assert_eq!(safe_next(Some("/scp/\\evil")), "/scp/");
        assert_eq!(safe_next(None), "/scp/");
    }

    #[test]
    fn the_cookie_is_found_among_others_and_csrf_is_not_the_stored_hash() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; oxidesk_session=oxd_abc; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("oxd_abc"));
        assert_ne!(csrf_token("oxd_abc"), hex::encode(token_hash("oxd_abc")));
        assert_eq!(csrf_token("oxd_abc").len(), 64);
    }
}
