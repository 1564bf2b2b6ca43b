//! The queue page (stub until the queue store lands).

use axum::extract::State;
use axum::response::Response;

use super::session::WebStaff;
use super::{NavQueue, departments};
use crate::app::AppState;
use crate::domain::staff::Agent;

/// The navigation's queues with their counts.
pub async fn nav(state: &AppState, _agent: &Agent) -> Result<Vec<NavQueue>, Response> {
    let mut out = vec![
        NavQueue {
            key: "open".into(),
            label: "Open".into(),
            count: 0,
        },
        NavQueue {
            key: "mine".into(),
            label: "Mine".into(),
            count: 0,
        },
        NavQueue {
            key: "unassigned".into(),
            label: "Unassigned".into(),
            count: 0,
        },
    ];
    for (id, name) in departments(&state.catalog) {
        out.push(NavQueue {
            key: format!("dept-{id}"),
            label: name,
            count: 0,
        });
    }
    out.push(NavQueue {
        key: "resolved".into(),
        label: "Resolved today".into(),
        count: 0,
    });
    out.push(NavQueue {
        key: "closed".into(),
        label: "Closed today".into(),
        count: 0,
    });
    Ok(out)
}

/// `GET /scp/`.
pub async fn page(State(_state): State<AppState>, _staff: WebStaff) -> Response {
    super::not_found()
}

/// `GET /scp/rows`.
pub async fn rows(State(_state): State<AppState>, _staff: WebStaff) -> Response {
    super::not_found()
}
