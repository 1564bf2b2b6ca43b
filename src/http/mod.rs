//! HTTP handlers by route group, their extractors (API key, client
//! address) and the request-id rule.
//!
//! Routes (API.md, Routes): `POST /api/tickets.<format>` (also under
//! `/api/http.php/`), `GET /api/tickets/<number>.json`, the staff API
//! under `/api/v1`, and `GET /api/openapi.json` (`openapi`, the document
//! of them all); other methods on a known path get `405` with `Allow`;
//! anything else `404`. Handlers return
//! `Result<_, ApiError>` and never look at `Accept`: the error body is
//! written by `http::layer`.

pub mod api_key;
pub mod budget;
pub mod client;
pub mod layer;
pub mod openapi;
pub mod ops;
pub mod rate_limit;
pub mod request_id;
pub mod staff;
pub mod tickets;
pub mod wire;

use axum::Router;
use axum::routing::any;

use crate::app::AppState;
use crate::error::ApiError;

/// The API routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        // A static path: matchit prefers it to `/api/{file}` below.
        .merge(openapi::routes())
        .route("/api/{file}", any(tickets::collection))
        .route("/api/http.php/{file}", any(tickets::collection))
        .route("/api/tickets/{file}", any(tickets::item))
        .route("/api/http.php/tickets/{file}", any(tickets::item))
        .merge(staff::routes())
}

/// The router's fallback: a path no route knows.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// A route that dispatches by method (axum's `get`, `post`…) was called
/// with another one; axum adds `Allow` to this answer.
pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
