//! HTTP handlers by route group, and the client-address extractor.
//!
//! Routes (API.md, Routes): `POST /api/tickets.<format>` (also under
//! `/api/http.php/`), `GET /api/tickets/<number>.json`; other methods on a
//! known path get `405` with `Allow`; anything else `404`.

pub mod client;
pub mod tickets;

use axum::Router;
use axum::routing::any;

use crate::app::AppState;

/// The API routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/{file}", any(tickets::collection))
        .route("/api/http.php/{file}", any(tickets::collection))
        .route("/api/tickets/{file}", any(tickets::item))
        .route("/api/http.php/tickets/{file}", any(tickets::item))
}
