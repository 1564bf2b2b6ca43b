//! The outbox sender: claims due rows (a lease, so a crashed sender's
//! rows come back), renders, sends with lettre, and marks each row sent,
//! rescheduled with exponential backoff, or failed.
//!
//! A relay that cannot be reached is the [`Breaker`]'s business, not the
//! mails': the pass stops offering mail at the first such failure, puts
//! every mail it claimed back to wait in one statement (those never
//! offered without counting an attempt), and no pass claims anything
//! until the breaker lets one mail try again. Such a failure never gives
//! a mail up: it waits for the relay however long, as osTicket's and
//! Zammad's queues do; `give_up_after_secs` applies to mail the relay
//! itself keeps deferring (4xx).
//!
//! A row is marked sent right after the SMTP server accepted it; the only
//! way to send one twice is a crash between that acceptance and the
//! commit of `sent` (a few milliseconds), which at-least-once delivery
//! cannot close without the receiver's help.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart, SinglePart};
use tokio::sync::watch;

use super::breaker::{Admit, Breaker, Change, State};
use super::render::Templates;
use super::smtp::SmtpClient;
use super::{IntakeSignal, OutboxError};
use crate::config::{Config, MailConfig};
use crate::storage::{OutboxJob, Store, StoreError};

/// RFC 3834 `Auto-Submitted`.
#[derive(Debug, Clone)]
struct AutoSubmitted(&'static str);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        match s.trim() {
            "auto-replied" => Ok(Self("auto-replied")),
            "auto-generated" => Ok(Self("auto-generated")),
            _ => Ok(Self("no")),
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.to_string())
    }
}

/// `Precedence: bulk` and `X-Auto-Response-Suppress: All` (osTicket sends
/// both with automatic mail): out-of-office robots and Exchange stay
/// quiet instead of answering our automatic mail.
fn robot_headers() -> [HeaderValue; 2] {
    [
        HeaderValue::new(HeaderName::new_from_ascii_str("Precedence"), "bulk".into()),
        HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
            "All".into(),
        ),
    ]
}

/// Ties outgoing mail to its ticket for anyone reading the headers.
#[derive(Debug, Clone)]
struct TicketHeader(String);

impl Header for TicketHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Oxidesk-Ticket")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.trim().to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Delivers the outbox.
pub struct OutboxSender {
    store: Arc<dyn Store>,
    /// The server's runtime: storage calls run there, where the store's
    /// connections live, whichever runtime drives the sender.
    db: tokio::runtime::Handle,
    smtp: SmtpClient,
    templates: Templates,
    from: Mailbox,
    /// Departments' own addresses (their agents' replies come from them).
    department_addresses: std::collections::HashMap<i64, lettre::Address>,
    config: MailConfig,
    clock: Clock,
    /// The relay's circuit breaker (the sender's one relay:
    /// `mail.smtp_host`).
    breaker: std::sync::Mutex<Breaker>,
}

/// How one mail of a pass ended.
enum Outcome {
    /// Sent, refused, rescheduled or given up: its row says so, and the
    /// relay answered (or was never asked: a message that cannot be built).
    Settled {
        /// Whether the relay held a session for it.
        relay_answered: bool,
    },
    /// No session with the relay: nothing written yet.
    RelayDown {
        /// The row.
        id: i64,
        /// Why.
        error: String,
    },
}

/// The mails of a pass that met a relay it could not reach.
#[derive(Default)]
struct RelayDown {
    /// Offered (their connection failed).
    tried: Vec<i64>,
    /// Claimed, never offered.
    untried: Vec<i64>,
    /// The first failure's reason.
    error: Option<String>,
}

/// Where the sender reads the time, in unix seconds: [`system_clock`] in
/// production; tests pass their own to [`OutboxSender::with_clock`] and
/// drive retries and give-ups through [`OutboxSender::run_once`] without
/// waiting real seconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(now_unix)
}

/// How many rows one pass claims.
const BATCH: u32 = 64;
/// How long a woken sender waits for more mail before its pass: short
/// beside an SMTP exchange, long beside a ticket's creation.
const GATHER: Duration = Duration::from_millis(10);
/// How many mails are in flight at once (each on its own connection,
/// kept between mails) while intake is quiet; one while it is busy.
const IN_FLIGHT: usize = 8;
/// Intake is busy if it stored a ticket this recently.
const BUSY_WINDOW: Duration = Duration::from_millis(100);

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl OutboxSender {
    /// Sets up the SMTP client and compiles the templates. Call it on
    /// the server's runtime: the store is used there.
    pub fn new(store: Arc<dyn Store>, config: &Config) -> Result<Self, OutboxError> {
        Self::with_clock(store, config, system_clock())
    }

    /// [`Self::new`] reading the time from `clock`.
    pub fn with_clock(
        store: Arc<dyn Store>,
        config: &Config,
        clock: Clock,
    ) -> Result<Self, OutboxError> {
        let departments = &config.departments;
        let config = &config.mail;
        let from = Mailbox::new(
            Some(config.from_name.clone()),
            config
                .from_address
                .parse()
                .map_err(|e| OutboxError::Transport(format!("mail.from_address: {e}")))?,
        );
        Ok(Self {
            store,
            db: tokio::runtime::Handle::current(),
            smtp: SmtpClient::new(config, IN_FLIGHT)?,
            templates: Templates::new(config)?,
            from,
            // Agents' replies come from their department's address, where
            // it has one (`departments[].email`).
            department_addresses: departments
                .iter()
                .filter_map(|d| Some((d.id, d.email.as_deref()?.parse().ok()?)))
                .collect(),
            breaker: std::sync::Mutex::new(Breaker::new(
                config.retry_initial_secs,
                config.relay_backoff_max_secs,
            )),
            config: config.clone(),
            clock,
        })
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // The breaker's state is whole after any panic (plain copies).
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs and publishes a change of the breaker (once per change,
    /// never per mail).
    fn breaker_changed(&self, change: Option<Change>, now: i64, error: &str) {
        let state = self.breaker().state();
        let until = match state {
            State::Open { until, .. } => until,
            _ => now,
        };
        match change {
            Some(Change::Opened) => tracing::warn!(
                error = %error,
                retry_in_secs = until - now,
                "SMTP relay {}:{} cannot be reached: mail waits; one mail will be tried in {} s",
                self.config.smtp_host,
                self.config.smtp_port,
                until - now,
            ),
            Some(Change::Reopened) => tracing::debug!(
                error = %error,
                retry_in_secs = until - now,
                "SMTP relay still cannot be reached; next try in {} s",
                until - now,
            ),
            Some(Change::Closed) => tracing::info!(
                "SMTP relay {}:{} answers again: delivering",
                self.config.smtp_host,
                self.config.smtp_port,
            ),
            None => return,
        }
        crate::telemetry::relay(match state {
            State::Closed => crate::telemetry::RelayState::Closed,
            State::HalfOpen { .. } => crate::telemetry::RelayState::HalfOpen,
            State::Open { .. } => crate::telemetry::RelayState::Open,
        });
    }

    /// How long an open breaker keeps the sender from trying anything.
    fn relay_wait(&self) -> Option<Duration> {
        let until = self.breaker().open_until()?;
        let secs = until.saturating_sub((self.clock)());
        (secs > 0).then(|| Duration::from_secs(secs.unsigned_abs()))
    }

    /// An agent's reply to the ticket's user: From the department's
    /// address (else `mail.from_address`) with the agent's name, Subject
    /// `Re: [#number] subject`, In-Reply-To the user's last message and
    /// References the ones before it, text and HTML alternatives with the
    /// reply separator above, the entry's files, and no automatic-mail
    /// headers (a person wrote it).
    fn response(&self, job: &OutboxJob) -> Result<Message, String> {
        let address = job
            .department_id
            .and_then(|d| self.department_addresses.get(&d))
            .cloned()
            .unwrap_or_else(|| self.from.email.clone());
        let rendered = super::render::response(job, &self.config.reply_separator);
        let mut builder = Message::builder()
            .from(Mailbox::new(Some(job.sender.name.clone()), address))
            .subject(rendered.subject)
            .message_id(Some(format!("<{}>", job.message_id)))
            .header(TicketHeader(job.number.to_string()));
        if let Some(parent) = job.earlier_mail.last() {
            builder = builder.in_reply_to(format!("<{parent}>"));
            let list: Vec<String> = job.earlier_mail.iter().map(|r| format!("<{r}>")).collect();
            builder = builder.references(list.join(" "));
        }
        for r in &job.recipients {
            let to: Mailbox = r.parse().map_err(|e| format!("recipient {r}: {e}"))?;
            builder = builder.to(to);
        }
        let alternative =
            MultiPart::alternative_plain_html(rendered.text, rendered.html.unwrap_or_default());
        let built = if job.attachments.is_empty() {
            builder.multipart(alternative)
        } else {
            let mut mixed = MultiPart::mixed().multipart(alternative);
            for f in &job.attachments {
                let content_type = lettre::message::header::ContentType::parse(&f.content_type)
                    .unwrap_or(
                        lettre::message::header::ContentType::parse("application/octet-stream")
                            .map_err(|e| e.to_string())?,
                    );
                mixed = mixed.singlepart(
                    lettre::message::Attachment::new(f.name.clone())
                        .body(f.data.clone(), content_type),
                );
            }
            builder.multipart(mixed)
        };
        built.map_err(|e| format!("building the message: {e}"))
    }

    /// Runs a storage call on the server's runtime.
    async fn db<T, F>(&self, call: impl FnOnce(Arc<dyn Store>) -> F) -> Result<T, OutboxError>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        self.db
            .spawn(call(self.store.clone()))
            .await
            .map_err(|e| OutboxError::Transport(format!("storage call: {e}")))?
            .map_err(OutboxError::from)
    }

    /// Marks a row failed, recording why.
    async fn give_up(&self, id: i64, why: String) -> Result<(), OutboxError> {
        crate::telemetry::mail(crate::telemetry::MailOutcome::Failed);
        self.db(move |s| async move { s.mark_outbox_failed(id, why).await })
            .await
    }

    /// The MIME message of a row: `MIME-Version`, `Content-Type` with
    /// charset (text, or text and HTML alternatives), non-ASCII subject
    /// and names as RFC 2047 words (lettre encodes them), and the
    /// headers that keep robots from answering.
    fn message(&self, job: &OutboxJob) -> Result<Message, String> {
        if job.kind.is_personal() {
            return self.response(job);
        }
        let rendered = self.templates.render(job).map_err(|e| e.to_string())?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(rendered.subject)
            .message_id(Some(format!("<{}>", job.message_id)))
            .header(TicketHeader(job.number.to_string()))
            .header(AutoSubmitted(if job.kind.is_reply_to_message() {
                "auto-replied"
            } else {
                "auto-generated"
            }));
        for h in robot_headers() {
            builder = builder.raw_header(h);
        }
        // An autoresponse answers the customer's message; other mail
        // (alerts) follows the ticket's earlier mail of its kind (staff
        // never received the customer's message, so it would be no
        // parent to them).
        let (parent, references) = if !job.kind.is_reply_to_message() {
            (job.earlier_mail.last(), job.earlier_mail.clone())
        } else {
            let parent = job.entry_message_id.as_ref();
            (parent, parent.cloned().into_iter().collect())
        };
        if let Some(parent) = parent {
            builder = builder.in_reply_to(format!("<{parent}>"));
        }
        if !references.is_empty() {
            let list: Vec<String> = references.iter().map(|r| format!("<{r}>")).collect();
            builder = builder.references(list.join(" "));
        }
        for r in &job.recipients {
            let to: Mailbox = r.parse().map_err(|e| format!("recipient {r}: {e}"))?;
            builder = builder.to(to);
        }
        let built = match rendered.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(rendered.text, html)),
            None => builder.singlepart(SinglePart::plain(rendered.text)),
        };
        built.map_err(|e| format!("building the message: {e}"))
    }

    fn backoff(&self, attempts: i64) -> i64 {
        let exp = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20);
        let delay = self.config.retry_initial_secs.saturating_mul(1u64 << exp);
        i64::try_from(delay.min(self.config.retry_max_secs)).unwrap_or(i64::MAX)
    }

    /// One pass: claims due rows and tries each once, a few at a time.
    /// Returns how many mails it tried (tests drive the sender with
    /// this, no sleeping). With the breaker open it does nothing; half
    /// open, it tries one mail, and if the relay answers, goes on with
    /// the rest at once.
    pub async fn run_once(self: &Arc<Self>, intake: &IntakeSignal) -> Result<usize, OutboxError> {
        let now = (self.clock)();
        let admit = self.breaker().admit(now);
        match admit {
            Admit::Nothing => Ok(0),
            Admit::All => self.pass(intake, now, BATCH).await,
            Admit::One => {
                crate::telemetry::relay(crate::telemetry::RelayState::HalfOpen);
                let tried = self.pass(intake, now, 1).await?;
                if tried > 0 && self.breaker().state() == State::Closed {
                    Ok(tried + self.pass(intake, now, BATCH).await?)
                } else {
                    Ok(tried)
                }
            }
        }
    }

    /// Claims up to `limit` due rows and tries them; stops offering mail
    /// once the relay cannot be reached, and puts what it claimed back.
    /// Returns how many it tried.
    async fn pass(
        self: &Arc<Self>,
        intake: &IntakeSignal,
        now: i64,
        limit: u32,
    ) -> Result<usize, OutboxError> {
        let lease = i64::try_from(self.config.lease_secs).unwrap_or(i64::MAX);
        let until = now.saturating_add(lease);
        let jobs = self
            .db(move |s| async move { s.claim_outbox(now, until, limit).await })
            .await?;
        let claimed = jobs.len();
        let mut down = RelayDown::default();
        let mut running = tokio::task::JoinSet::new();
        let mut jobs = jobs.into_iter();
        while let Some(job) = jobs.next() {
            // A half-open breaker's pass offers one mail at a time (a
            // claim may hold both mails of an entry): the first tells.
            let probing = self.breaker().state() != State::Closed;
            let room = if probing || intake.busy_within(BUSY_WINDOW) {
                1
            } else {
                IN_FLIGHT
            };
            while running.len() >= room
                && let Some(done) = running.join_next().await
            {
                let outcome = done.map_err(|e| OutboxError::Transport(e.to_string()))??;
                self.settle(outcome, &mut down);
            }
            if down.error.is_some() {
                // The relay is down: the rest is not offered (nor rendered).
                down.untried.push(job.id);
                down.untried.extend(jobs.by_ref().map(|j| j.id));
                break;
            }
            let this = self.clone();
            running.spawn(async move { this.deliver(job).await });
        }
        while let Some(done) = running.join_next().await {
            let outcome = done.map_err(|e| OutboxError::Transport(e.to_string()))??;
            self.settle(outcome, &mut down);
        }
        let tried = claimed - down.untried.len();
        if let Some(error) = down.error {
            // The breaker opened (or was open): the mail waits for it.
            let next = self
                .breaker()
                .open_until()
                .unwrap_or_else(|| now.saturating_add(self.backoff(1)));
            crate::telemetry::mails(
                crate::telemetry::MailOutcome::Retry,
                down.tried.len() as u64,
            );
            let (tried, untried) = (down.tried, down.untried);
            self.db(
                move |s| async move { s.mark_outbox_retry_many(tried, untried, next, error).await },
            )
            .await?;
        }
        Ok(tried)
    }

    /// Feeds one mail's outcome to the breaker.
    fn settle(&self, outcome: Outcome, down: &mut RelayDown) {
        let now = (self.clock)();
        match outcome {
            Outcome::Settled {
                relay_answered: true,
            } => {
                let change = self.breaker().relay_answered();
                self.breaker_changed(change, now, "");
            }
            Outcome::Settled {
                relay_answered: false,
            } => {}
            Outcome::RelayDown { id, error } => {
                let change = self.breaker().relay_failed(now);
                self.breaker_changed(change, now, &error);
                down.tried.push(id);
                down.error.get_or_insert(error);
            }
        }
    }

    async fn deliver(&self, job: OutboxJob) -> Result<Outcome, OutboxError> {
        let message = match self.message(&job) {
            Ok(m) => m,
            Err(reason) => {
                tracing::error!(outbox.id = job.id, ticket.number = %job.number, "cannot build mail: {reason}");
                self.give_up(job.id, reason).await?;
                return Ok(Outcome::Settled {
                    relay_answered: false,
                });
            }
        };
        match self
            .smtp
            .send(message.envelope(), &message.formatted())
            .await
        {
            Ok(_) => {
                let (id, now) = (job.id, (self.clock)());
                self.db(move |s| async move { s.mark_outbox_sent(id, now).await })
                    .await?;
                crate::telemetry::mail(crate::telemetry::MailOutcome::Sent);
                tracing::debug!(outbox.id = job.id, ticket.number = %job.number, kind = %job.kind, "sent {} for ticket {}", job.kind, job.number);
            }
            Err(e) if e.is_relay_down() => {
                // Written with the pass's other mails, in one statement.
                return Ok(Outcome::RelayDown {
                    id: job.id,
                    error: e.to_string(),
                });
            }
            Err(e) if e.is_permanent() => {
                tracing::warn!(outbox.id = job.id, error = %e, "mail refused for good");
                self.give_up(job.id, format!("refused: {e}")).await?;
            }
            Err(e) => {
                let now = (self.clock)();
                let next = now.saturating_add(self.backoff(job.attempts));
                let give_up = i64::try_from(self.config.give_up_after_secs).unwrap_or(i64::MAX);
                if next.saturating_sub(job.created_at) > give_up {
                    tracing::warn!(outbox.id = job.id, error = %e, "giving up on mail");
                    self.give_up(
                        job.id,
                        format!("gave up after {} attempts: {e}", job.attempts),
                    )
                    .await?;
                } else {
                    tracing::info!(outbox.id = job.id, error = %e, retry_in_secs = next - now, "mail will be retried");
                    let (id, why) = (job.id, e.to_string());
                    self.db(move |s| async move { s.mark_outbox_retry(id, next, why).await })
                        .await?;
                    crate::telemetry::mail(crate::telemetry::MailOutcome::Retry);
                }
            }
        }
        Ok(Outcome::Settled {
            relay_answered: true,
        })
    }

    /// Runs until `stop` turns true: a pass whenever woken, a due row's
    /// time comes, or the poll interval passes. A wake-up waits
    /// [`GATHER`] first, so that a burst of tickets is one pass (and one
    /// claim in the writer) rather than a pass per ticket. While the
    /// relay's breaker is open it only waits for the breaker: wake-ups
    /// and polls cause no pass.
    pub async fn run(self: Arc<Self>, intake: Arc<IntakeSignal>, mut stop: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(10));
        crate::telemetry::relay(crate::telemetry::RelayState::Closed);
        loop {
            if *stop.borrow() {
                break;
            }
            if let Some(wait) = self.relay_wait() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            match self.run_once(&intake).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "outbox pass failed"),
            }
            if self.relay_wait().is_some() {
                continue;
            }
            tokio::select! {
                () = intake.woken() => {
                    tokio::select! {
                        () = tokio::time::sleep(GATHER) => {}
                        _ = stop.changed() => {}
                    }
                }
                () = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
