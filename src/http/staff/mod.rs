//! The staff API under `/api/v1` (STAFF-API.md): sign-in, the queue and
//! search, one ticket's work. Every route but `POST /api/v1/session`
//! takes a [`auth::Staff`] (a Bearer session or personal token); errors
//! are always JSON (`http::layer`).

pub mod auth;
pub mod queue;
pub mod work;

use axum::Router;

use crate::app::AppState;

/// The staff routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(queue::routes())
        .merge(work::routes())
}
