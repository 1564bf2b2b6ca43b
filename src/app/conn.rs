//! The accept loop and what a connection may cost (`[server]`): a cap on
//! open connections, a deadline for each request head (which is also the
//! idle timeout of a kept-alive connection), a deadline for each request
//! body that grows with the bytes received (a minimum rate), and accept
//! errors that back off instead of spinning.
//!
//! hyper's HTTP/1 connection runs each connection; its header-read timer
//! starts whenever it waits for a request head (at the start and again
//! after each answer), so one timer bounds slow heads and idle kept-alive
//! connections alike. The body deadline is ours ([`DeadlineBody`]): hyper
//! has none. [`BodyLayer`] turns a body that missed its deadline into a
//! `408`, and says `Connection: close` on any answer given before the
//! request's body was read to its end (hyper then closes the connection).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::storage::BoxFuture;

/// File descriptors kept free of connections: the database, the log,
/// SQLite's files, mail, the listeners.
const RESERVED_FILES: u64 = 256;

/// Connections open at once on the `[metrics] listen` address.
pub const METRICS_MAX_CONNECTIONS: usize = 64;

/// What a connection may cost, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A request head must be complete this long after the connection
    /// opened or its previous answer ended.
    pub header_read_timeout: Duration,
    /// The body's deadline.
    pub body: BodyRule,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl ConnLimits {
    /// The configured limits, with `max_connections` lowered (and a
    /// warning logged) when the open-file limit cannot hold it.
    pub fn new(server: &ServerConfig) -> Self {
        let mut max_connections = server.max_connections.max(1);
        if let Some(files) = open_file_limit() {
            let room =
                usize::try_from(files.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
            if room < max_connections {
                tracing::warn!(
                    server.max_connections = max_connections,
                    open_file_limit = files,
                    "server.max_connections = {max_connections} does not fit the open-file limit of {files}: \
                     serving at most {room} connections (raise LimitNOFILE / ulimit -n)"
                );
                max_connections = room;
            }
        }
        Self {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs.max(1)),
            body: BodyRule {
                timeout: Duration::from_secs(server.body_timeout_secs.max(1)),
                min_bytes_per_sec: server.body_min_bytes_per_sec,
            },
            max_connections,
        }
    }
}

/// The soft open-file limit (`None`: unlimited or unknown).
fn open_file_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Raises the soft open-file limit to the hard one (systemd and most
/// shells start services at a soft 1024 under a far higher hard limit;
/// each connection is a file). Logs what it did or could not do.
pub fn raise_open_file_limit() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current == limit.maximum {
            return;
        }
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::info!(
                "open-file limit raised from {} to {}",
                show(limit.current),
                show(limit.maximum)
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "cannot raise the open-file limit from {} to {}: {e}",
                show(limit.current),
                show(limit.maximum)
            ),
        }
    }
}

/// Connections the kernel holds for us once accepted by it, while we do
/// not accept (at the cap, or busy): the standard library's and tokio's
/// 128 is soon full, and past it clients are dropped or, with SYN
/// cookies, left believing they are connected. The kernel lowers it to
/// `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 1024;

/// A listener on `addr` with a backlog of [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As tokio's `TcpListener::bind`: a restart may bind the port while
    // the old connections are in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts connections on `listener` and serves each with `router` under
/// `limits`, until `stop` resolves. Each connection is watched by
/// `graceful` and counted in `open` while it lives.
pub async fn accept_until(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    graceful: &GracefulShutdown,
    open: &Arc<AtomicUsize>,
    stop: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut backoff = AcceptBackoff::default();
    let mut at_cap = false;
    tokio::pin!(stop);
    loop {
        // At the cap nothing is accepted: new connections wait in the
        // kernel's backlog (costing us no file) until one closes.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !at_cap {
                    at_cap = true;
                    tracing::warn!(
                        server.max_connections = limits.max_connections,
                        "{} connections open (server.max_connections): new ones wait until one closes",
                        limits.max_connections
                    );
                }
                tokio::select! {
                    biased;
                    () = &mut stop => return,
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.reset();
                    accepted
                }
                Err(e) => {
                    backoff.failed(&e).await;
                    continue;
                }
            },
        };
        if at_cap && permits.available_permits() > limits.max_connections / 10 {
            at_cap = false;
        }
        let service = ConnService {
            router: router.clone(),
            peer,
            body: limits.body,
        };
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        let guard = OpenConnection::new(open);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // A client's fault or its leaving (a head too slow, a
                // reset): worth a debug line, not a warning per attacker.
                tracing::debug!(peer = %peer, error = %e, "connection ended: {e}");
            }
            drop(guard);
            drop(permit);
        });
    }
}

/// Counts a connection in `open` while it lives.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::SeqCst);
        Self(open.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What to do after a failed `accept`: a client that left before we
/// accepted it is nothing; anything else (out of files, out of memory)
/// waits, doubling from 10 ms to 1 s, and is logged once per run of
/// failures rather than once per attempt.
#[derive(Default)]
struct AcceptBackoff {
    failures: u64,
}

impl AcceptBackoff {
    fn reset(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                failures = self.failures,
                "accepting connections again after {} failed attempt(s)",
                self.failures
            );
        }
        self.failures = 0;
    }

    async fn failed(&mut self, e: &std::io::Error) {
        use std::io::ErrorKind;
        if matches!(
            e.kind(),
            ErrorKind::ConnectionAborted
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionRefused
        ) {
            return;
        }
        if self.failures == 0 {
            tracing::error!(error = %e, "cannot accept connections: {e} (retrying, logged once until it works again)");
        }
        self.failures += 1;
        let shift = u32::try_from(self.failures.min(7)).unwrap_or(7);
        let pause = Duration::from_millis(10 << shift).min(Duration::from_secs(1));
        tokio::time::sleep(pause).await;
    }
}

/// One connection's service: the router, with the peer's address as
/// `ConnectInfo` (what the API-key and sign-in extractors read) and the
/// body under its deadline.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    body: BodyRule,
}

impl tower::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as tower::Service<Request>>::Future;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<Incoming>) -> Self::Future {
        let watch = Arc::new(BodyWatch::default());
        let rule = self.body;
        let watched = watch.clone();
        let mut request = request.map(|body| {
            if body.is_end_stream() {
                watched.finished.store(true, Ordering::Relaxed);
            }
            Body::new(DeadlineBody::new(body, rule, watched))
        });
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request.extensions_mut().insert(watch);
        tower::Service::call(&mut self.router, request)
    }
}

/// A body's deadline: `timeout` from the first read, plus one second per
/// `min_bytes_per_sec` bytes received (none when 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRule {
    /// The allowance at the start.
    pub timeout: Duration,
    /// Bytes per second that extend it.
    pub min_bytes_per_sec: u64,
}

impl BodyRule {
    /// How long after the first read a body that has brought `received`
    /// bytes so far may still take.
    pub fn allowance(&self, received: u64) -> Duration {
        let earned = match self.min_bytes_per_sec {
            0 => Duration::ZERO,
            rate => Duration::from_millis(received.saturating_mul(1000) / rate),
        };
        self.timeout.saturating_add(earned)
    }
}

/// What became of a request's body, shared by its [`DeadlineBody`] and
/// [`BodyLayer`].
#[derive(Debug, Default)]
pub struct BodyWatch {
    finished: AtomicBool,
    timed_out: AtomicBool,
}

/// The body has missed its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// hyper's body under a [`BodyRule`]: past the deadline it ends in
/// [`BodyTimedOut`] (and tells its [`BodyWatch`]).
struct DeadlineBody {
    inner: Incoming,
    rule: BodyRule,
    watch: Arc<BodyWatch>,
    started: Option<Instant>,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, rule: BodyRule, watch: Arc<BodyWatch>) -> Self {
        Self {
            inner,
            rule,
            watch,
            started: None,
            received: 0,
            timer: None,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.watch.timed_out.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                }
                if this.inner.is_end_stream() {
                    this.watch.finished.store(true, Ordering::Relaxed);
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                this.watch.finished.store(true, Ordering::Relaxed);
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        let deadline = started + this.rule.allowance(this.received);
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.watch.timed_out.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(BodyTimedOut.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Adds [`BodyService`] around the routes.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyLayer;

impl<S> tower::Layer<S> for BodyLayer {
    type Service = BodyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyService { inner }
    }
}

/// A request whose body missed its deadline is answered `408`, whatever
/// the handler made of the failed read; an answer given before the body
/// was read to its end says `Connection: close` (the rest of the body
/// would have to be read before the next request, and is not).
#[derive(Debug, Clone)]
pub struct BodyService<S> {
    inner: S,
}

impl<S> tower::Service<Request> for BodyService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let watch = request.extensions().get::<Arc<BodyWatch>>().cloned();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            let Some(watch) = watch else {
                return Ok(response);
            };
            if watch.timed_out.load(Ordering::Relaxed) {
                response = ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "The request body did not arrive in time",
                )
                .into_response();
            }
            if !watch.finished.load(Ordering::Relaxed) {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_allowance_grows_with_the_bytes_received() {
        let rule = BodyRule {
            timeout: Duration::from_secs(30),
            min_bytes_per_sec: 1024,
        };
        assert_eq!(rule.allowance(0), Duration::from_secs(30));
        assert_eq!(rule.allowance(10 * 1024), Duration::from_secs(40));
        assert_eq!(rule.allowance(512), Duration::from_millis(30_500));
        assert_eq!(
            rule.allowance(u64::MAX),
            Duration::from_secs(30).saturating_add(Duration::from_millis(u64::MAX / 1024))
        );
        let fixed = BodyRule {
            min_bytes_per_sec: 0,
            ..rule
        };
        assert_eq!(fixed.allowance(1 << 30), Duration::from_secs(30));
    }
}
