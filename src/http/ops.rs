//! The operator's routes: `GET /healthz` (the process answers),
//! `GET /readyz` (the store answers, its schema is this binary's, the
//! outbox is not stuck) and `GET /metrics` (Prometheus text). None needs
//! a key; none is rate limited. Also [`Ops`], what the request layer and
//! the key extractor share: metrics, rate limits, the proxy rule.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ipnet::IpNet;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use super::rate_limit::RateLimits;
use crate::app::AppState;
use crate::config::Config;
use crate::storage::{Store, StoreHealth};
use crate::telemetry;

/// How long `/readyz` and `/metrics` wait for the store.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// Routes not counted by the per-address limit, and logged at DEBUG
/// (a balancer's probe every few seconds is not news).
pub fn is_probe(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
}

/// What the request layer and the extractors share; built once.
pub struct Ops {
    /// The recorder's handle when `[metrics] enabled`.
    pub metrics: Option<PrometheusHandle>,
    /// Whether `/metrics` is served on the main listener.
    pub metrics_on_main: bool,
    /// `[limits]`' rate limits.
    pub rate: RateLimits,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// `[health] outbox_max_age_secs` (0: not checked).
    pub outbox_max_age_secs: u64,
    /// Whether mail is sent at all (else the outbox is not checked).
    pub mail_enabled: bool,
    /// State-changing requests answered (any method but `GET`, `HEAD`
    /// and `OPTIONS`), moved by the request layer once the answer is
    /// ready: what this process read from the store before it moved may
    /// be stale.
    pub changes: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("metrics", &self.metrics.is_some())
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl Ops {
    /// From the configuration; installs the metrics recorder when enabled.
    pub fn new(config: &Config) -> Self {
        Self {
            metrics: config.metrics.enabled.then(telemetry::install),
            metrics_on_main: config.metrics.enabled && config.metrics.listen.is_none(),
            rate: RateLimits::new(&config.limits),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            outbox_max_age_secs: config.health.outbox_max_age_secs,
            mail_enabled: config.mail.enabled,
            changes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether the request layer records metrics.
    pub fn is_recording(&self) -> bool {
        self.metrics.is_some()
    }
}

/// `/healthz`, `/readyz`, and `/metrics` when it is served on the main
/// listener.
pub fn routes(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if state.ops.metrics_on_main {
        routes.route("/metrics", get(metrics))
    } else {
        routes
    }
}

/// `/metrics` alone, for `[metrics] listen`.
pub fn metrics_routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The operator's routes, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, metrics))]
pub struct OpsDoc;

/// Liveness
///
/// The process answers. No credentials; not rate limited.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    responses(
        (status = 200, description = "`{\"status\": \"ok\"}`.", content_type = "application/json", body = Object),
    ),
)]
async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

async fn read_health(store: &dyn Store) -> Result<StoreHealth, String> {
    match tokio::time::timeout(STORE_TIMEOUT, store.health()).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", STORE_TIMEOUT.as_secs())),
    }
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The checks of `/readyz`, as its body says them; `true` when all pass.
pub fn readiness(
    health: &Result<StoreHealth, String>,
    ops: &Ops,
    now: i64,
) -> (bool, serde_json::Value) {
    let health = match health {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the store does not answer");
            return (
                false,
                json!({
                    "store": { "ok": false, "error": "the store does not answer (see the log)" },
                    "schema": { "ok": false },
                    "outbox": { "ok": false },
                }),
            );
        }
    };
    let schema_ok = health.schema_version == health.latest_schema_version;
    let age = health.oldest_queued_at.map(|t| (now - t).max(0));
    let max_age = i64::try_from(ops.outbox_max_age_secs).unwrap_or(i64::MAX);
    let checked = ops.mail_enabled && max_age > 0;
    let outbox_ok = !checked || age.is_none_or(|a| a < max_age);
    let outbox = json!({
        "ok": outbox_ok,
        "queued": health.queued,
        "oldest_queued_age_secs": age,
        "max_age_secs": ops.outbox_max_age_secs,
        "checked": checked,
    });
    (
        schema_ok && outbox_ok,
        json!({
            "store": { "ok": true },
            "schema": {
                "ok": schema_ok,
                "version": health.schema_version,
                "expected": health.latest_schema_version,
            },
            "outbox": outbox,
        }),
    )
}

/// Readiness
///
/// The store answers, its schema is this binary's newest, and (when mail
/// is on) the oldest mail not sent yet is younger than
/// `[health] outbox_max_age_secs`. The body names each check. No
/// credentials; not rate limited.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready: `{\"status\": \"ready\", \"checks\": {\"store\", \"schema\", \"outbox\"}}`.", content_type = "application/json", body = Object),
        (status = 503, description = "Not ready: the same body, `\"status\": \"not ready\"`, the failing checks with `\"ok\": false`.", content_type = "application/json", body = Object),
    ),
)]
async fn readyz(State(state): State<AppState>) -> Response {
    let health = read_health(state.store.as_ref()).await;
    let (ready, checks) = readiness(&health, &state.ops, now_unix());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({ "status": if ready { "ready" } else { "not ready" }, "checks": checks }),
    )
}

/// Metrics
///
/// Prometheus text format (`[metrics]`; on `[metrics] listen` when set,
/// else here). No credentials: restrict it at the proxy.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4.", content_type = "text/plain", body = String),
    ),
)]
async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = state.ops.metrics.as_ref() else {
        return crate::error::ApiError::not_found().into_response();
    };
    record_store_gauges(&read_health(state.store.as_ref()).await, now_unix());
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[expect(clippy::cast_precision_loss, reason = "counts and ages far below 2^52")]
fn record_store_gauges(health: &Result<StoreHealth, String>, now: i64) {
    let Ok(h) = health else {
        metrics::gauge!(telemetry::STORE_UP).set(0.0);
        return;
    };
    metrics::gauge!(telemetry::STORE_UP).set(1.0);
    metrics::gauge!(telemetry::OUTBOX_QUEUED).set(h.queued as f64);
    let age = h.oldest_queued_at.map_or(0, |t| (now - t).max(0));
    metrics::gauge!(telemetry::OUTBOX_OLDEST_AGE).set(age as f64);
    if let Some(segments) = h.search_segments {
        metrics::gauge!(telemetry::SQLITE_SEARCH_SEGMENTS).set(segments as f64);
    }
    if let Some(in_use) = h.connections_in_use {
        metrics::gauge!(telemetry::PG_CONNECTIONS, "state" => "in_use").set(f64::from(in_use));
    }
}

/// The client's address for logs and limits: the trusted-proxy rule, or
/// the peer when a trusted proxy sent an unreadable header (the key
/// extractor refuses such a request with 400).
pub fn client_of(peer: IpAddr, headers: &axum::http::HeaderMap, ops: &Ops) -> IpAddr {
    super::client::client_addr(peer, headers, &ops.trusted_proxies)
        .unwrap_or_else(|_| crate::domain::keys::canonical(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(mail: bool, max_age: u64) -> Ops {
        let mut config = Config::default();
        config.mail.enabled = mail;
        config.health.outbox_max_age_secs = max_age;
        config.metrics.enabled = false;
        Ops::new(&config)
    }

    fn health(version: i64, oldest: Option<i64>) -> Result<StoreHealth, String> {
        Ok(StoreHealth {
            schema_version: version,
            latest_schema_version: 10,
            queued: i64::from(oldest.is_some()),
            oldest_queued_at: oldest,
            connections_in_use: None,
            search_segments: None,
        })
    }

    #[test]
    fn readiness_checks() {
        let now = 10_000;
        let cases: &[(&str, Ops, Result<StoreHealth, String>, bool)] = &[
            ("all well", ops(true, 900), health(10, Some(now - 10)), true),
            ("empty outbox", ops(true, 900), health(10, None), true),
            (
                "stuck outbox",
                ops(true, 900),
                health(10, Some(now - 900)),
                false,
            ),
            ("old schema", ops(true, 900), health(9, None), false),
            (
                "mail off: outbox not checked",
                ops(false, 900),
                health(10, Some(0)),
                true,
            ),
            ("check off", ops(true, 0), health(10, Some(0)), true),
            ("store down", ops(true, 900), Err("boom".into()), false),
        ];
        for (name, ops, health, want) in cases {
            let (ready, body) = readiness(health, ops, now);
            assert_eq!(ready, *want, "{name}: {body}");
        }
    }
}
