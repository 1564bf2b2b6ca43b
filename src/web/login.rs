//! Sign-in and sign-out pages. Sign-in is the staff API's use case
//! (`domain::agents::SignIn`: the same throttle, the same single answer
//! for every wrong address or password); the session it opens goes in
//! the cookie.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::session::{WebStaff, clear_cookie, safe_next, set_cookie};
use super::{Fields, Flash, assets, check_csrf, html, see_other};
use crate::app::AppState;
use crate::domain::agents::{Password, SignInError, TokenKind};
use crate::http::staff::auth::{Client, token_hash};

/// `?next=` of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

#[derive(Serialize)]
struct LoginPage<'a> {
    title: &'a str,
    css: String,
    next: String,
    email: &'a str,
    flashes: Vec<Flash>,
}

fn render(
    state: &AppState,
    status: StatusCode,
    next: String,
    email: &str,
    flash: Option<Flash>,
) -> Response {
    let page = LoginPage {
        title: "Sign in",
        css: assets::url("style.css"),
        next,
        email,
        flashes: flash.into_iter().collect(),
    };
    match state.web.render("login.html", page) {
        Ok(body) => html(status, body),
        Err(r) => r,
    }
}

/// `GET /scp/login`.
pub async fn form(State(state): State<AppState>, Query(q): Query<Next>) -> Response {
    render(
        &state,
        StatusCode::OK,
        safe_next(q.next.as_deref()),
        "",
        None,
    )
}

/// `POST /scp/login` (`email`, `password`, `next`).
pub async fn submit(
    State(state): State<AppState>,
    Client(client): Client,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let email = fields.get("email").unwrap_or("").to_string();
    let password = fields.get("password").unwrap_or("").to_string();
    let next = safe_next(fields.get("next"));
    let now = jiff::Timestamp::now().as_second();
    let loggable: String = email.trim().chars().take(100).collect();
    match state
        .sign_in
        .sign_in(
            state.store.as_ref(),
            &email,
            Password::presented(password),
            client,
            now,
        )
        .await
    {
        Ok(session) => {
            tracing::info!(agent.id = %session.agent.id, client.address = %client, "agent {} signed in (web)", session.agent.id);
            let mut response = see_other(&next);
            response.headers_mut().insert(
                header::SET_COOKIE,
                set_cookie(
                    session.token.expose(),
                    state.sign_in.session_ttl_secs,
                    state.web.secure_cookies,
                ),
            );
            response
        }
        Err(SignInError::Throttled(locked)) => {
            tracing::warn!(client.address = %client, account = ?loggable, retry_after_secs = locked.retry_after_secs, "sign-in refused: too many failures");
            let text = SignInError::Throttled(locked).to_string();
            let mut response = render(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                &email,
                Some(Flash::error(text)),
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(locked.retry_after_secs),
            );
            response
        }
        Err(SignInError::Invalid) => {
            tracing::warn!(client.address = %client, account = ?loggable, "sign-in failed");
            render(
                &state,
                StatusCode::UNAUTHORIZED,
                next,
                &email,
                Some(Flash::error(SignInError::Invalid.to_string())),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed on our side");
            render(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                next,
                &email,
                Some(Flash::error(
                    "Sign-in is not available right now; try again.",
                )),
            )
        }
    }
}

/// `POST /scp/logout`: ends the session, removes the cookie.
pub async fn logout(
    State(state): State<AppState>,
    staff: WebStaff,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = check_csrf(&staff, &headers, &Fields(fields)) {
        return r;
    }
    if let Err(e) = state
        .store
        .delete_agent_token(token_hash(&staff.token), TokenKind::Session)
        .await
    {
        return super::store_failed(e);
    }
    tracing::info!(agent.id = %staff.agent.id, client.address = %staff.client, "agent {} signed out (web)", staff.agent.id);
    let mut response = see_other("/scp/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(state.web.secure_cookies));
    response
}
