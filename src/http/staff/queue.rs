//! Staff routes: queue.

use axum::Router;

use crate::app::AppState;

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
