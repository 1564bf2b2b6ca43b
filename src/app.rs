//! Application state, router assembly and `serve`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::config::{Config, Limits, ServerConfig};
use crate::domain::catalog::Catalog;
use crate::error::ApiError;
use crate::http::request_id::make_span;
use crate::storage::Store;

pub mod conn;

/// Shared by every request; built once at start-up.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Compiled configuration.
    pub catalog: Arc<Catalog>,
    /// Size caps.
    pub limits: Limits,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// Numbers requests that bring no usable `X-Request-Id` of their own:
    /// the id of logs, of the `X-Request-Id` answer and of opaque 5xx bodies.
    pub request_ids: Arc<AtomicU64>,
    /// Tells the outbox sender about stored tickets.
    pub intake: Arc<crate::mail_out::IntakeSignal>,
    /// Staff sign-in: session lifetime and the failure throttle.
    pub sign_in: Arc<crate::domain::agents::SignIn>,
    /// The staff pages' templates and settings.
    pub web: Arc<crate::web::Web>,
    /// Metrics, rate limits and readiness settings.
    pub ops: Arc<crate::http::ops::Ops>,
    /// What a connection may cost (`[server]`).
    pub server: ServerConfig,
    /// Request bytes in flight, server-wide (`limits.max_bytes_in_flight`).
    pub budget: Arc<crate::http::budget::ByteBudget>,
}

impl AppState {
    /// Builds the state from a validated configuration and an open store.
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Self {
        Self {
            store,
            catalog: Arc::new(Catalog::new(config)),
            limits: config.limits.clone(),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            request_ids: Arc::new(AtomicU64::new(1)),
            intake: Arc::default(),
            sign_in: Arc::new(crate::domain::agents::SignIn::new(
                i64::try_from(config.staff.session_ttl_secs).unwrap_or(i64::MAX),
                crate::domain::throttle::ThrottleLimits {
                    window_secs: i64::try_from(config.staff.sign_in_window_secs)
                        .unwrap_or(i64::MAX),
                    per_account: config.staff.sign_in_failures_per_account as usize,
                    per_address: config.staff.sign_in_failures_per_address as usize,
                },
            )),
            // The templates are embedded: one that does not compile is a
            // bug caught by `web::tests::every_template_compiles`, and
            // stops the server here, before it listens.
            web: Arc::new(
                crate::web::Web::new(&config.web).expect(
                    "embedded page templates compile (web::tests::every_template_compiles)",
                ),
            ),
            ops: Arc::new(crate::http::ops::Ops::new(config)),
            server: config.server.clone(),
            budget: Arc::new(crate::http::budget::ByteBudget::new(
                config.limits.max_bytes_in_flight,
                std::time::Duration::from_millis(config.limits.bytes_in_flight_wait_ms),
            )),
        }
    }
}

/// A running outbox sender.
pub struct OutboxHandle {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl OutboxHandle {
    /// Asks the sender to stop after its current pass and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// Starts the outbox sender for `state` (when `mail.enabled`).
pub fn start_outbox(
    config: &Config,
    state: &AppState,
) -> Result<Option<OutboxHandle>, crate::mail_out::OutboxError> {
    if !config.mail.enabled {
        return Ok(None);
    }
    let sender = Arc::new(crate::mail_out::sender::OutboxSender::new(
        state.store.clone(),
        config,
    )?);
    let (stop, stopped) = watch::channel(false);
    let intake = state.intake.clone();
    // Its own thread at the lowest CPU priority: mail goes out with the
    // CPU that ticket intake leaves (a busy server answers tickets first
    // and sends the backlog after; an idle one sends thousands a second).
    // Storage calls still run on the server's runtime.
    // The thread reports once its priority is lowered, so that no mail
    // is ever sent at the normal priority and the start is observable.
    let (lowered, is_lowered) = std::sync::mpsc::sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("oxidesk-outbox".into())
        .spawn(move || {
            lower_priority();
            let _ = lowered.send(());
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(sender.run(intake, stopped)),
                Err(e) => tracing::error!(error = %e, "cannot start the outbox sender"),
            }
        })
        .map_err(|e| crate::mail_out::OutboxError::Transport(e.to_string()))?;
    let _ = is_lowered.recv();
    Ok(Some(OutboxHandle { stop, thread }))
}

/// Nice 19 for the calling thread (Linux nice values are per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::warn!(error = %e, "cannot lower the outbox sender's priority");
    }
}

/// The full router: the API routes behind [`router_with`]'s fallbacks
/// and layers.
pub fn router(state: AppState) -> Router {
    let routes = crate::http::routes()
        .merge(crate::web::routes(&state))
        .merge(crate::http::ops::routes(&state));
    router_with(routes, state)
}

/// `routes` with the product's fallbacks and layers: unknown paths and
/// methods answer through `ApiError`; every request gets an id (echoed in
/// `X-Request-Id`, named in its tracing span and in opaque 5xx bodies); a
/// panic answers an opaque 500 instead of dropping the connection; the
/// error body is written once, as the request's `Accept` asks; and
/// credentials are masked in traces. Public so that tests can serve a
/// route the product does not have (one that panics) behind the same
/// layers.
pub fn router_with(routes: Router<AppState>, state: AppState) -> Router {
    let request_ids = state.request_ids.clone();
    let ops = state.ops.clone();
    routes
        .fallback(crate::http::not_found)
        // After every route: axum applies this to the routes it has now.
        .method_not_allowed_fallback(crate::http::method_not_allowed)
        .with_state(state)
        // Each layer wraps those before it: the last is the outermost.
        // The panic guard sits inside the error renderer so that its 500
        // gets the request's format and id like any other error.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(make_span))
        // A body past its deadline answers 408; an answer before the end
        // of the body closes the connection. Inside the request layer,
        // which writes the 408's body and logs it.
        .layer(conn::BodyLayer)
        // Outside the trace layer: the span names the id it gives.
        .layer(crate::http::layer::RequestLayer::new(request_ids, ops))
        .layer(SetSensitiveRequestHeadersLayer::new([
            HeaderName::from_static("x-api-key"),
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
}

/// The panic guard's answer: the panic message is logged (in the
/// request's span), the client gets an opaque 500.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    ApiError::internal(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format_args!("request handler panicked: {message}"),
    )
    .into_response()
}

/// Serves until `stop` resolves, then lets open connections finish for
/// at most `grace`, or until `stop_now` resolves (a second signal),
/// whichever comes first; connections still open then are dropped when
/// the runtime ends. Logs that the shutdown started, what it waits for,
/// and how it ended. Connections are limited as `[server]` says
/// ([`conn`]).
pub async fn serve_draining(
    listener: TcpListener,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    stop_now: impl std::future::Future<Output = ()> + Send,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    // The metrics' upkeep (until now only `serve` ran it: without a
    // scrape, histogram samples piled up) and the store's.
    let _upkeep = metrics_upkeep(&state);
    let _store_upkeep = AbortOnDrop(Some(spawn_store_upkeep(state.store.clone())));
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = GracefulShutdown::new();
    let limits = conn::ConnLimits::new(&state.server);
    conn::accept_until(listener, router(state), limits, &graceful, &open, stop).await;
    let waiting = open.load(Ordering::SeqCst);
    tracing::info!(
        connections.open = waiting,
        shutdown.grace_secs = grace.as_secs(),
        "shutting down: no new connections; waiting up to {} s for {waiting} open connection(s) to finish \
         (a second SIGTERM or SIGINT stops at once)",
        grace.as_secs()
    );
    tokio::select! {
        () = graceful.shutdown() => {
            tracing::info!("every connection finished");
        }
        () = tokio::time::sleep(grace) => {
            let left = open.load(Ordering::SeqCst);
            tracing::warn!(connections.open = left, "drain deadline of {} s passed: closing {left} connection(s)", grace.as_secs());
        }
        () = stop_now => {
            let left = open.load(Ordering::SeqCst);
            tracing::warn!(connections.open = left, "second signal: stopping at once, closing {left} connection(s)");
        }
    }
    Ok(())
}

/// Serves until `shutdown` resolves, then drains in-flight requests
/// (idle connections close at once). Connections are limited as
/// `[server]` says ([`conn`]). Unlike [`serve_draining`] (the `serve`
/// command's) it leaves [`Store::upkeep`](crate::storage::Store::upkeep)
/// to its caller, so that tests drive that round themselves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _upkeep = metrics_upkeep(&state);
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = GracefulShutdown::new();
    let limits = conn::ConnLimits::new(&state.server);
    conn::accept_until(listener, router(state), limits, &graceful, &open, shutdown).await;
    graceful.shutdown().await;
    Ok(())
}

/// Stops a background task when dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// The metrics recorder's upkeep, when metrics are on.
fn metrics_upkeep(state: &AppState) -> AbortOnDrop {
    AbortOnDrop(
        state
            .ops
            .metrics
            .clone()
            .map(crate::telemetry::spawn_upkeep),
    )
}

/// Runs [`Store::upkeep`](crate::storage::Store::upkeep) every
/// [`UPKEEP_EVERY`](crate::storage::UPKEEP_EVERY) until aborted; a
/// failure is logged and the next round tries again.
fn spawn_store_upkeep(store: Arc<dyn crate::storage::Store>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::storage::UPKEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = store.upkeep().await {
                tracing::warn!(error = %e, "store upkeep failed; trying again in {} s", crate::storage::UPKEEP_EVERY.as_secs());
            }
        }
    })
}

/// Serves `/metrics` alone (`[metrics] listen`) behind the same layers
/// and connection limits (at most [`conn::METRICS_MAX_CONNECTIONS`]
/// open), until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let limits = conn::ConnLimits {
        max_connections: conn::METRICS_MAX_CONNECTIONS,
        ..conn::ConnLimits::new(&state.server)
    };
    let app = router_with(crate::http::ops::metrics_routes(), state);
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = GracefulShutdown::new();
    conn::accept_until(
        listener,
        app,
        limits,
        &graceful,
        &open,
        std::future::pending(),
    )
    .await;
    Ok(())
}
