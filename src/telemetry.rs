//! Metrics: the Prometheus recorder (installed once per process, only
//! when `[metrics] enabled`), the metric names, and the few recording
//! helpers the other modules call. Without a recorder every `metrics`
//! macro is a no-op, so a disabled server records nothing.
//!
//! Labels come from matched routes and closed enums only (STYLE.md,
//! Logging and metrics), never from raw input. This module must not
//! know about HTTP or storage types.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// `oxidesk_http_requests_total{route,method,status}`.
pub const HTTP_REQUESTS: &str = "oxidesk_http_requests_total";
/// `oxidesk_http_request_duration_seconds{route,method}` (histogram).
pub const HTTP_DURATION: &str = "oxidesk_http_request_duration_seconds";
/// `oxidesk_tickets_created_total{channel}`.
pub const TICKETS_CREATED: &str = "oxidesk_tickets_created_total";
/// `oxidesk_tickets_refused_total{channel,reason}`.
pub const TICKETS_REFUSED: &str = "oxidesk_tickets_refused_total";
/// `oxidesk_api_key_refusals_total{reason}`.
pub const KEY_REFUSALS: &str = "oxidesk_api_key_refusals_total";
/// `oxidesk_rate_limited_total{scope}`.
pub const RATE_LIMITED: &str = "oxidesk_rate_limited_total";
/// `oxidesk_outbox_queued`: mail not sent yet (set at each scrape).
pub const OUTBOX_QUEUED: &str = "oxidesk_outbox_queued";
/// `oxidesk_outbox_oldest_age_seconds` (set at each scrape; 0 when empty).
pub const OUTBOX_OLDEST_AGE: &str = "oxidesk_outbox_oldest_age_seconds";
/// `oxidesk_outbox_sent_total`.
pub const OUTBOX_SENT: &str = "oxidesk_outbox_sent_total";
/// `oxidesk_outbox_failed_total`: mail given up on.
pub const OUTBOX_FAILED: &str = "oxidesk_outbox_failed_total";
/// `oxidesk_outbox_retries_total`: mail put back for a later attempt.
pub const OUTBOX_RETRIES: &str = "oxidesk_outbox_retries_total";
/// `oxidesk_outbox_relay_state`: the SMTP relay's circuit breaker, 0
/// closed (delivering), 1 half-open (trying one mail), 2 open (waiting).
pub const OUTBOX_RELAY_STATE: &str = "oxidesk_outbox_relay_state";
/// `oxidesk_sqlite_commit_batch_size` (histogram): requests per group commit.
pub const SQLITE_BATCH: &str = "oxidesk_sqlite_commit_batch_size";
/// `oxidesk_sqlite_commit_duration_seconds` (histogram): one group's transaction.
pub const SQLITE_COMMIT: &str = "oxidesk_sqlite_commit_duration_seconds";
/// `oxidesk_sqlite_checkpoint_tail_seconds` (histogram): the part of a
/// checkpoint the writer copies itself, between two groups.
pub const SQLITE_CHECKPOINT_TAIL: &str = "oxidesk_sqlite_checkpoint_tail_seconds";
/// `oxidesk_sqlite_sync_seconds{file="log"|"database"}` (histogram): one
/// `fdatasync` of the log (every write's answer waits for one) or of the
/// database file after a checkpoint's or a copy ahead's pages.
pub const SQLITE_SYNC: &str = "oxidesk_sqlite_sync_seconds";
/// `oxidesk_sqlite_search_segments` (set at each scrape): segments of the
/// full-text index; FTS5 refuses to write at 2,000.
pub const SQLITE_SEARCH_SEGMENTS: &str = "oxidesk_sqlite_search_segments";
/// `oxidesk_postgres_connections{state="in_use"|"idle"}` (set at each scrape).
pub const PG_CONNECTIONS: &str = "oxidesk_postgres_connections";
/// `oxidesk_store_up`: 1 when the last scrape's store read answered.
pub const STORE_UP: &str = "oxidesk_store_up";
/// `oxidesk_build_info{version,commit}`: always 1.
pub const BUILD_INFO: &str = "oxidesk_build_info";

/// Seconds: 1 ms … 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets for one fsync: a tenth of a millisecond on an idle disk; 2
/// and 8 ms are where copying ahead grows and shrinks its pieces.
const SYNC_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.0025, 0.005, 0.008, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];
/// Requests per group commit, up to the writer's cap (512).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The commit the binary was built from, when the build said
/// (`OXIDESK_COMMIT=$(git rev-parse --short HEAD) cargo build`).
pub const COMMIT: &str = match option_env!("OXIDESK_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// A ticket's way in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `POST /api/tickets.json`.
    Json,
    /// `POST /api/tickets.xml`.
    Xml,
    /// `POST /api/tickets.email`.
    Email,
    /// `oxidesk pipe` (its own process: counted only where it records).
    Pipe,
}

impl Channel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Xml => "xml",
            Self::Email => "email",
            Self::Pipe => "pipe",
        }
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same
/// handle) and records the build info.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(SQLITE_COMMIT.into()), LATENCY_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(SQLITE_BATCH.into()), BATCH_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(SQLITE_CHECKPOINT_TAIL.into()),
                        LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(SQLITE_SYNC.into()), SYNC_BUCKETS)
                })
                .map(PrometheusBuilder::build_recorder)
                // The bucket lists are constants and not empty.
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /metrics stays empty");
            }
            describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => COMMIT)
                .set(1.0);
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by matched route, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer a request (to the response head)."
    );
    describe_counter!(
        TICKETS_CREATED,
        "Tickets created (or mail filed), by channel."
    );
    describe_counter!(
        TICKETS_REFUSED,
        "Ticket requests refused, by channel and reason."
    );
    describe_counter!(KEY_REFUSALS, "API-key checks that failed, by reason.");
    describe_counter!(
        RATE_LIMITED,
        "Requests refused with 429 by a rate limit, by scope."
    );
    describe_gauge!(OUTBOX_QUEUED, "Mail not sent yet.");
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest mail not sent yet."
    );
    describe_counter!(OUTBOX_SENT, "Mail handed to the relay.");
    describe_counter!(OUTBOX_FAILED, "Mail given up on.");
    describe_counter!(OUTBOX_RETRIES, "Mail put back for a later attempt.");
    describe_gauge!(
        OUTBOX_RELAY_STATE,
        "The SMTP relay's circuit breaker: 0 closed (delivering), 1 half-open (trying one mail), 2 open (waiting)."
    );
    describe_histogram!(
        SQLITE_BATCH,
        "Requests committed by one SQLite group commit."
    );
    describe_histogram!(
        SQLITE_COMMIT,
        Unit::Seconds,
        "One SQLite group's transaction, BEGIN to COMMIT."
    );
    describe_histogram!(
        SQLITE_CHECKPOINT_TAIL,
        Unit::Seconds,
        "The end of a checkpoint, copied by the SQLite writer between two groups."
    );
    describe_histogram!(
        SQLITE_SYNC,
        Unit::Seconds,
        "One fdatasync of the SQLite log (file=log) or of the database file after a checkpoint's or a copy ahead's pages (file=database)."
    );
    describe_gauge!(PG_CONNECTIONS, "PostgreSQL pool connections, by state.");
    describe_gauge!(
        SQLITE_SEARCH_SEGMENTS,
        "Segments of the SQLite full-text index (FTS5 refuses to write at 2,000)."
    );
    describe_gauge!(
        STORE_UP,
        "1 when the store answered the last scrape's read."
    );
    describe_gauge!(BUILD_INFO, "The running build.");
}

/// Drains histogram samples into their buckets every few seconds, so a
/// server nobody scrapes does not keep every sample.
pub fn spawn_upkeep(handle: PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}

/// One SQLite group commit of `size` requests that took `elapsed`.
pub fn sqlite_group(size: usize, elapsed: Duration) {
    #[expect(clippy::cast_precision_loss, reason = "a batch is at most 512")]
    metrics::histogram!(SQLITE_BATCH).record(size as f64);
    metrics::histogram!(SQLITE_COMMIT).record(elapsed.as_secs_f64());
}

/// Records the writer's share of one checkpoint.
pub fn sqlite_checkpoint_tail(elapsed: Duration) {
    metrics::histogram!(SQLITE_CHECKPOINT_TAIL).record(elapsed.as_secs_f64());
}

/// Which file an fsync of SQLite's was of ([`sqlite_sync`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncedFile {
    /// The log (`-wal`), by the syncer.
    Log,
    /// The database file, by the checkpointer.
    Database,
}

/// Records one fsync of SQLite's log or database file.
pub fn sqlite_sync(file: SyncedFile, elapsed: Duration) {
    let file = match file {
        SyncedFile::Log => "log",
        SyncedFile::Database => "database",
    };
    metrics::histogram!(SQLITE_SYNC, "file" => file).record(elapsed.as_secs_f64());
}

/// How the sender ended one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    /// Handed to the relay.
    Sent,
    /// Put back for a retry.
    Retry,
    /// Given up on.
    Failed,
}

/// Counts one mail's outcome.
pub fn mail(outcome: MailOutcome) {
    mails(outcome, 1);
}

/// Counts `n` mails with the same outcome.
pub fn mails(outcome: MailOutcome, n: u64) {
    let name = match outcome {
        MailOutcome::Sent => OUTBOX_SENT,
        MailOutcome::Retry => OUTBOX_RETRIES,
        MailOutcome::Failed => OUTBOX_FAILED,
    };
    metrics::counter!(name).increment(n);
}

/// The SMTP relay's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    /// Delivering.
    Closed,
    /// Trying one mail.
    HalfOpen,
    /// Waiting out the backoff.
    Open,
}

/// Sets the relay gauge.
pub fn relay(state: RelayState) {
    let value = match state {
        RelayState::Closed => 0.0,
        RelayState::HalfOpen => 1.0,
        RelayState::Open => 2.0,
    };
    metrics::gauge!(OUTBOX_RELAY_STATE).set(value);
}

/// A ticket request's outcome: created, or refused with `reason`.
pub fn ticket(channel: Channel, refused: Option<&'static str>) {
    match refused {
        None => metrics::counter!(TICKETS_CREATED, "channel" => channel.as_str()).increment(1),
        Some(reason) => {
            metrics::counter!(TICKETS_REFUSED, "channel" => channel.as_str(), "reason" => reason)
                .increment(1);
        }
    }
}
