//! Configuration: the TOML file, the `OXIDESK__SECTION__KEY` environment
//! overlay and the command-line overrides, validated once at start-up.
//!
//! This module owns the *shape* of the configuration and its stock defaults
//! (osTicket 1.18's install data). It must not know about HTTP or storage;
//! `domain::catalog` turns a validated `Config` into the lookup tables the
//! request path uses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

mod ops;
pub use ops::{HealthConfig, LogConfig, LogFormat, MetricsConfig};

/// Everything oxidesk can be configured with. Every section has a default,
/// so an empty file (or no file) runs a stock helpdesk.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// `sqlite://PATH` (created when missing).
    pub database: String,
    /// Peers whose `X-Forwarded-For` is believed (API.md, Authentication).
    pub trusted_proxies: Vec<IpNet>,
    /// The helpdesk's time zone (IANA name): dates without an offset are read in it.
    pub timezone: String,
    /// `reject` (API.md default: 400) or `ignore` (osTicket's lenient behaviour).
    pub unknown_fields: UnknownFields,
    /// Size and count caps.
    pub limits: Limits,
    /// Ticket numbering and defaults.
    pub tickets: TicketsConfig,
    /// Ticket priorities.
    pub priorities: Vec<Priority>,
    /// Departments.
    pub departments: Vec<Department>,
    /// Help topics.
    pub topics: Vec<Topic>,
    /// Forms by name: `user` and `ticket` always apply, others through topics.
    pub forms: BTreeMap<String, Form>,
    /// Email intake (`/api/tickets.email` and `oxidesk pipe`).
    pub email: EmailConfig,
    /// Senders refused with `403 Ticket denied`, per channel.
    pub bans: Vec<Ban>,
    /// Outgoing mail: autoresponses and staff alerts.
    pub mail: MailConfig,
    /// PostgreSQL pool settings (when `database` is `postgres://…`).
    pub postgres: PostgresConfig,
    /// `oxidesk pipe` (run by the MTA).
    pub pipe: PipeConfig,
    /// The staff API: sessions and the sign-in throttle.
    pub staff: StaffConfig,
    /// The staff web interface at `/scp/`.
    pub web: WebConfig,
    /// `GET /readyz`.
    pub health: HealthConfig,
    /// Prometheus metrics at `/metrics`.
    pub metrics: MetricsConfig,
    /// Log format.
    pub log: LogConfig,
    /// The server process: how it stops.
    pub server: ServerConfig,
}

/// The `serve` process itself: how it stops, and what a connection may
/// cost it (the same rules hold on the `[metrics] listen` address).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// After SIGTERM or SIGINT, how long open connections may take to
    /// finish before they are closed (a second signal stops at once).
    pub shutdown_grace_secs: u64,
    /// A connection must deliver a complete request head (request line
    /// and headers) within this many seconds of opening, or of the end
    /// of its previous answer; else it is closed. So it is also the idle
    /// timeout of a kept-alive connection.
    pub header_read_timeout_secs: u64,
    /// A request body must arrive within this many seconds of the
    /// handler starting to read it, plus one second per
    /// `body_min_bytes_per_sec` bytes received; else `408` and the
    /// connection is closed. A body shorter than its `Content-Length`
    /// thus ends in a `408`, never a wait.
    pub body_timeout_secs: u64,
    /// The slowest steady upload that can outlast `body_timeout_secs`
    /// (bytes per second; 0: the body must arrive within
    /// `body_timeout_secs`, whatever its size).
    pub body_min_bytes_per_sec: u64,
    /// Most connections open at once; past it new ones wait in the
    /// kernel's listen backlog (1024, or `net.core.somaxconn` if lower)
    /// until one closes. `serve` raises its
    /// open-file soft limit to the hard limit, and uses fewer
    /// connections than this (with a warning) when that limit is lower
    /// than this plus 256.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            shutdown_grace_secs: 10,
            header_read_timeout_secs: 10,
            body_timeout_secs: 30,
            body_min_bytes_per_sec: 1024,
            max_connections: 10_000,
        }
    }
}

impl ServerConfig {
    fn check(&self) -> Result<(), ConfigError> {
        if self.header_read_timeout_secs == 0 || self.header_read_timeout_secs > 3600 {
            return Err(invalid(
                "server.header_read_timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        if self.body_timeout_secs == 0 || self.body_timeout_secs > 86_400 {
            return Err(invalid(
                "server.body_timeout_secs",
                "must be between 1 and 86400",
            ));
        }
        if self.max_connections == 0 || self.max_connections > 1_000_000 {
            return Err(invalid(
                "server.max_connections",
                "must be between 1 and 1000000",
            ));
        }
        Ok(())
    }
}

/// The staff web interface (`/scp/`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The session cookie is `Secure` (sent over HTTPS only). Turn off
    /// only for plain HTTP on loopback (tests, a local trial).
    pub secure_cookies: bool,
    /// How often an open queue page asks for its rows again.
    pub poll_secs: u64,
    /// How long the side bar's queue counts of an agent, and the list
    /// of agents the ticket page offers to assign, are reused, in
    /// milliseconds (0: read for every page). A state-changing
    /// request this server answers makes them count again at once;
    /// changes made elsewhere (another instance, `oxidesk pipe`, the
    /// CLI) show within this time.
    pub counts_max_age_ms: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            secure_cookies: true,
            poll_secs: 10,
            counts_max_age_ms: 2000,
        }
    }
}

/// The staff API's sessions and sign-in throttle (STAFF-API.md, Agents
/// and sign-in). The throttle counts in memory, per instance.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaffConfig {
    /// A session ends this long after its last use (sliding expiry).
    pub session_ttl_secs: u64,
    /// The window over which failed sign-ins are counted.
    pub sign_in_window_secs: u64,
    /// Failed sign-ins for one account within the window before its
    /// sign-in is refused (429) until the oldest failure ages out.
    pub sign_in_failures_per_account: u32,
    /// Failed sign-ins from one client address (IPv6: its /64) within
    /// the window before sign-in from it is refused.
    pub sign_in_failures_per_address: u32,
}

impl Default for StaffConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 12 * 3600,
            sign_in_window_secs: 15 * 60,
            sign_in_failures_per_account: 5,
            sign_in_failures_per_address: 20,
        }
    }
}

/// `oxidesk pipe`: an MTA waits for it, and keeps the message to retry
/// when it exits 75, so it gives up on an unavailable store much sooner
/// than `serve` does.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipeConfig {
    /// How long the pipe keeps trying an unreachable database before it
    /// exits 75 (the MTA retries the message later).
    pub store_retry_secs: u64,
    /// The longest one message may take to file, store included; past
    /// it the pipe exits 75 (a commit whose answer was lost is caught by
    /// the Message-ID rule when the MTA retries).
    pub timeout_secs: u64,
}

impl Default for PipeConfig {
    fn default() -> Self {
        Self {
            store_retry_secs: 5,
            timeout_secs: 60,
        }
    }
}

/// PostgreSQL pool and timeouts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Most connections per instance.
    pub max_connections: u32,
    /// `statement_timeout` of every statement.
    pub statement_timeout_ms: u64,
    /// How long start-up keeps retrying an unreachable database.
    pub connect_retry_secs: u64,
    /// Once serving, the longest a request waits for a connection
    /// (a free one, or a new one to a database that refuses or does not
    /// answer) before it is answered `503` with `Retry-After`.
    pub acquire_timeout_ms: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            statement_timeout_ms: 30_000,
            connect_retry_secs: 30,
            acquire_timeout_ms: 1000,
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (a local relay).
    None,
    /// STARTTLS, required.
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

/// Outgoing mail settings (autoresponses, alerts, the outbox sender).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// Run the outbox sender in `serve`. Off until configured: a first
    /// trial must not send autoresponses through whatever listens on
    /// port 25 (mail is still queued, and `outbox list` shows it).
    pub enabled: bool,
    /// Sender address.
    pub from_address: String,
    /// Sender name.
    pub from_name: String,
    /// The line above which a customer writes their answer to an agent's
    /// reply: the stored answer is cut there (STAFF-API.md).
    pub reply_separator: String,
    /// SMTP relay host.
    pub smtp_host: String,
    /// SMTP relay port.
    pub smtp_port: u16,
    /// `none`, `starttls` or `tls`.
    pub smtp_security: SmtpSecurity,
    /// Optional SMTP user.
    pub smtp_username: Option<String>,
    /// Optional SMTP password (never logged).
    pub smtp_password: Option<String>,
    /// Timeout of one SMTP exchange.
    pub smtp_timeout_secs: u64,
    /// Most autoresponses one address gets in an hour (mail-loop guard).
    pub autoresponse_limit_per_hour: u32,
    /// Most staff alerts one ticket queues in an hour: a second fence
    /// against mail loops (the first: automatic mail never alerts).
    pub alert_limit_per_ticket_per_hour: u32,
    /// First retry delay; doubles with each attempt.
    pub retry_initial_secs: u64,
    /// Longest retry delay.
    pub retry_max_secs: u64,
    /// After this long a mail the relay still refuses (4xx) is given up.
    /// Time the relay could not be reached gives no mail up: that mail
    /// waits for the relay (see `relay_backoff_max_secs`).
    pub give_up_after_secs: u64,
    /// Longest wait between tries of an SMTP relay that cannot be reached
    /// (the sender's circuit breaker): while it is down no mail is
    /// claimed; one mail is tried after `retry_initial_secs`, then after
    /// twice as long each time it fails, up to this.
    pub relay_backoff_max_secs: u64,
    /// How long a claimed mail stays claimed before another sender (or
    /// this one after a restart) may retry it.
    pub lease_secs: u64,
    /// How often the sender looks for due mail when not woken.
    pub poll_interval_ms: u64,
    /// Autoresponse subject (minijinja: `{{ number }}`, `{{ subject }}`,
    /// `{{ name }}`, `{{ excerpt }}`, `{{ topic }}`, `{{ priority }}`).
    pub autoresponse_subject: String,
    /// Autoresponse body.
    pub autoresponse_body: String,
    /// Staff alert subject.
    pub alert_subject: String,
    /// Staff alert body (also `{{ email }}`, `{{ department }}`, `{{ kind }}`,
    /// and the entry's own sender `{{ sender_name }}`, `{{ sender_email }}`).
    pub alert_body: String,
    /// Optional HTML alternative of the autoresponse body (HTML-escaped
    /// variables); empty: text only.
    pub autoresponse_body_html: String,
    /// Optional HTML alternative of the alert body; empty: text only.
    pub alert_body_html: String,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("enabled", &self.enabled)
            .field("from_address", &self.from_address)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_security", &self.smtp_security)
            .field("smtp_username", &self.smtp_username)
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            from_address: "support@localhost".into(),
            from_name: "Support".into(),
            reply_separator: "-- reply above this line --".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            smtp_security: SmtpSecurity::None,
            smtp_username: None,
            smtp_password: None,
            smtp_timeout_secs: 30,
            autoresponse_limit_per_hour: 5,
            alert_limit_per_ticket_per_hour: 10,
            retry_initial_secs: 30,
            retry_max_secs: 1800,
            give_up_after_secs: 2 * 24 * 3600,
            relay_backoff_max_secs: 300,
            lease_secs: 120,
            poll_interval_ms: 1000,
            autoresponse_subject: "[#{{ number }}] {{ subject }}".into(),
            autoresponse_body: "Dear {{ name }},\n\n\
                We received your request and opened ticket #{{ number }} for it:\n\n\
                    {{ subject }}\n\n\
                {{ excerpt }}\n\n\
                A member of our team will get back to you. To add information, \
                reply to this message and keep [#{{ number }}] in the subject.\n\n\
                -- \n{{ from_name }}\n"
                .into(),
            alert_subject: "{% if kind == 'reply' %}Reply{% else %}New ticket{% endif %} \
                [#{{ number }}] {{ subject }}"
                .into(),
            alert_body: "{% if kind == 'reply' %}A reply was added to{% else %}A new ticket was opened:{% endif %} \
                ticket #{{ number }}\n\n\
                From:       {{ sender_name }} <{{ sender_email }}>\n\
                {% if sender_email != email %}User:       {{ name }} <{{ email }}>\n{% endif %}\
                Subject:    {{ subject }}\n\
                Department: {{ department }}\n\
                Topic:      {{ topic }}\n\
                Priority:   {{ priority }}\n\n\
                {{ excerpt }}\n"
                .into(),
            autoresponse_body_html: String::new(),
            alert_body_html: String::new(),
        }
    }
}

/// A channel a ticket arrives by, for the ban list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// `/api/tickets.email` and the pipe.
    Email,
    /// `/api/tickets.json` and `.xml`.
    Api,
}

/// A ban-list entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ban {
    /// An address (`test@example.com`) or a whole domain (`@example.net`).
    pub address: String,
    /// Where the ban applies (osTicket's ban list targets email).
    #[serde(default = "email_channel")]
    pub channels: Vec<Channel>,
}

fn email_channel() -> Vec<Channel> {
    vec![Channel::Email]
}

/// Email intake settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Off: the pipe exits 69 (`EX_UNAVAILABLE`) and HTTP answers 503.
    pub enabled: bool,
    /// Take the priority from `X-Priority`/`Importance`/`Priority`
    /// (osTicket's default: off).
    pub use_email_priority: bool,
    /// Priority ids for the header words.
    pub priority_low_id: i64,
    /// Normal.
    pub priority_normal_id: i64,
    /// High.
    pub priority_high_id: i64,
    /// Urgent.
    pub priority_urgent_id: i64,
    /// Most MIME parts in one message, nested messages' parts included,
    /// counted while parsing: past it the message is refused (HTTP 413,
    /// pipe 65) before the rest are allocated. Attachments past
    /// `limits.max_attachments` are dropped and recorded, not refused;
    /// this cap is on the structure (a mail of millions of empty parts).
    pub max_parts: usize,
    /// Most header fields in one message, all its header blocks (parts,
    /// nested messages) together, counted while parsing: past it the
    /// message is refused (413, pipe 65) before the rest are allocated.
    pub max_header_fields: usize,
    /// Deadline for reading one message (MIME parsing, repairs, body and
    /// attachment extraction), in milliseconds: past it the message is
    /// refused as too costly (HTTP 413, pipe 65). Every pass is linear;
    /// this is the safety net for a shape no one measured.
    pub parse_timeout_ms: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            use_email_priority: false,
            priority_low_id: 1,
            priority_normal_id: 2,
            priority_high_id: 3,
            priority_urgent_id: 4,
            max_parts: crate::intake::email::DEFAULT_MAX_PARTS,
            max_header_fields: crate::intake::email::DEFAULT_MAX_HEADER_FIELDS,
            parse_timeout_ms: 20_000,
        }
    }
}

/// What to do with a request field no form knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownFields {
    /// `400 <field>: Unexpected data received in API request`.
    Reject,
    /// Drop it, log it and name it in `X-Ignored-Fields`.
    Ignore,
}

/// Size and count caps (API.md, Responses: 413).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted.
    pub max_request_body_bytes: u64,
    /// Largest single decoded attachment.
    pub max_attachment_bytes: u64,
    /// Most attachments on one ticket.
    pub max_attachments: usize,
    /// Requests per minute one API key may make (a burst of as many,
    /// refilled evenly); 0: no limit. In memory, per instance.
    pub requests_per_minute_per_key: u32,
    /// Requests per minute from one client address (after the
    /// trusted-proxy rule; health and metrics are not counted); 0: no limit.
    pub requests_per_minute_per_address: u32,
    /// Failed API-key checks per minute from one client address before
    /// its keyed requests are refused with 429; 0: no limit.
    pub key_failures_per_minute_per_address: u32,
    /// Most field values in one request (simple fields, items of a list,
    /// XML attributes of one element); past it, 413 while parsing.
    pub max_fields: usize,
    /// Longest user `name`, in characters (osTicket: 128); past it, 400.
    pub max_name_chars: usize,
    /// Longest `subject`, in characters (osTicket: 255); past it, 400.
    pub max_subject_chars: usize,
    /// Longest value of any other field, in characters; past it, 400.
    pub max_field_value_chars: usize,
    /// Longest attachment file name, in characters (osTicket: 255).
    pub max_file_name_chars: usize,
    /// Request bodies held at once, server-wide (read, decoded and
    /// stored): a request past it waits, then gets 503 with Retry-After.
    /// At least `max_request_body_bytes`.
    pub max_bytes_in_flight: u64,
    /// How long a request waits for room in `max_bytes_in_flight`.
    pub bytes_in_flight_wait_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_body_bytes: 40 * 1024 * 1024,
            max_attachment_bytes: 25 * 1024 * 1024,
            max_attachments: 64,
            requests_per_minute_per_key: 0,
            requests_per_minute_per_address: 0,
            key_failures_per_minute_per_address: 30,
            max_fields: 256,
            max_name_chars: 128,
            max_subject_chars: 255,
            max_field_value_chars: 65_535,
            max_file_name_chars: 255,
            max_bytes_in_flight: 256 * 1024 * 1024,
            bytes_in_flight_wait_ms: 10_000,
        }
    }
}

/// How ticket numbers are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberSequence {
    /// Each `#` a random digit (osTicket's default).
    Random,
    /// A counter, zero-padded to the number of `#`.
    Sequential,
}

/// Ticket numbering and defaults.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsConfig {
    /// `######`-style pattern: `#` is a digit, anything else literal.
    pub number_format: String,
    /// Random or sequential digits.
    pub number_sequence: NumberSequence,
    /// Priority of a ticket that names none and whose topic names none.
    pub default_priority_id: i64,
    /// Topic of a ticket that names none (osTicket: none).
    pub default_topic_id: Option<i64>,
    /// Department of a ticket whose topic names none.
    pub default_department_id: i64,
    /// Random numbers: the share of the format's numbers in use (counted
    /// as the highest ticket id) at which one more digit is drawn, so a
    /// draw never runs out of free numbers (`######` widens at 450,000
    /// tickets by default, to `#######`).
    pub number_widen_at: f64,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        Self {
            number_format: "######".into(),
            number_sequence: NumberSequence::Random,
            default_priority_id: 2,
            default_topic_id: None,
            default_department_id: 1,
            number_widen_at: 0.5,
        }
    }
}

/// A ticket priority.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Priority {
    /// Id sent as `priority`/`priorityId`.
    pub id: i64,
    /// Name shown by the read API.
    pub name: String,
}

/// A department.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    /// Id.
    pub id: i64,
    /// Name shown by the read API.
    pub name: String,
    /// Staff addresses alerted about its new tickets and replies.
    #[serde(default)]
    pub alert_recipients: Vec<String>,
    /// The address its agents' replies come from (else
    /// `mail.from_address`).
    #[serde(default)]
    pub email: Option<String>,
}

/// A help topic.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// Id sent as `topicId`.
    pub id: i64,
    /// Name shown by the read API.
    pub name: String,
    /// Parent topic, for display only.
    #[serde(default)]
    pub parent_id: Option<i64>,
    /// Priority of its tickets when the request names none.
    #[serde(default)]
    pub default_priority_id: Option<i64>,
    /// Department of its tickets (else the default department).
    #[serde(default)]
    pub department_id: Option<i64>,
    /// Extra forms (names in `[forms]`) whose fields this topic accepts.
    #[serde(default)]
    pub forms: Vec<String>,
    /// An inactive topic is refused (400).
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// A form: an ordered list of typed fields.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Form {
    /// Title, for display.
    #[serde(default)]
    pub title: String,
    /// The fields, in order.
    #[serde(default)]
    pub fields: Vec<Field>,
}

/// Field types (API.md, Field processing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// One line of text.
    Text,
    /// Several lines of text.
    Memo,
    /// An email address.
    Email,
    /// Digits with an optional `X` extension.
    Phone,
    /// A decimal number.
    Number,
    /// A calendar date.
    Date,
    /// A date and time.
    Datetime,
    /// One or several keys of a choice list.
    Choice,
    /// A checkbox.
    Boolean,
}

/// One choice of a choice field.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// Stored value.
    pub key: String,
    /// Displayed value, also accepted as input (case-insensitive).
    pub label: String,
}

/// A typed form field.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Name used in requests.
    pub name: String,
    /// Label, for display and messages.
    #[serde(default)]
    pub label: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Missing or empty → 400.
    #[serde(default)]
    pub required: bool,
    /// Shortest accepted text (characters).
    #[serde(default)]
    pub min_length: Option<usize>,
    /// Longest accepted text (characters).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Phone: fewest digits before the extension.
    #[serde(default)]
    pub min_digits: Option<usize>,
    /// Phone: whether an extension is allowed.
    #[serde(default = "yes")]
    pub extension: bool,
    /// Datetime: whether values are instants (converted to UTC).
    #[serde(default = "yes")]
    pub timezone_aware: bool,
    /// Choice: the choices.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Choice: several may be chosen.
    #[serde(default)]
    pub multiple: bool,
}

/// Field names that are not form fields but the request's own (API.md,
/// Create a ticket); no form may define them.
pub const RESERVED_FIELDS: &[&str] = &[
    "email",
    "name",
    "subject",
    "message",
    "alert",
    "autorespond",
    "ip",
    "priority",
    "priorityId",
    "source",
    "topicId",
    "attachments",
];

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: "sqlite://oxidesk-data/oxidesk.db".into(),
            trusted_proxies: Vec::new(),
            timezone: "UTC".into(),
            unknown_fields: UnknownFields::Reject,
            limits: Limits::default(),
            tickets: TicketsConfig::default(),
            priorities: stock_priorities(),
            departments: stock_departments(),
            topics: stock_topics(),
            forms: stock_forms(),
            email: EmailConfig::default(),
            bans: Vec::new(),
            mail: MailConfig::default(),
            postgres: PostgresConfig::default(),
            pipe: PipeConfig::default(),
            staff: StaffConfig::default(),
            web: WebConfig::default(),
            server: ServerConfig::default(),
            health: HealthConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

fn stock_priorities() -> Vec<Priority> {
    [(1, "Low"), (2, "Normal"), (3, "High"), (4, "Emergency")]
        .into_iter()
        .map(|(id, name)| Priority {
            id,
            name: name.into(),
        })
        .collect()
}

fn stock_departments() -> Vec<Department> {
    [(1, "Support"), (2, "Sales"), (3, "Maintenance")]
        .into_iter()
        .map(|(id, name)| Department {
            id,
            name: name.into(),
            alert_recipients: Vec::new(),
            email: None,
        })
        .collect()
}

fn stock_topics() -> Vec<Topic> {
    let topic = |id, name: &str, parent_id, prio, dept| Topic {
        id,
        name: name.into(),
        parent_id,
        default_priority_id: Some(prio),
        department_id: dept,
        forms: Vec::new(),
        active: true,
    };
    vec![
        topic(1, "General Inquiry", None, 2, None),
        topic(2, "Feedback", None, 1, None),
        topic(10, "Report a Problem", None, 2, Some(3)),
        topic(11, "Access Issue", Some(10), 3, None),
    ]
}

fn field(name: &str, label: &str, kind: FieldType) -> Field {
    Field {
        name: name.into(),
        label: label.into(),
        kind,
        required: false,
        min_length: None,
        max_length: None,
        min_digits: None,
        extension: true,
        timezone_aware: true,
        choices: Vec::new(),
        multiple: false,
    }
}

/// osTicket's stock user form ("Contact Information") and ticket form
/// ("Ticket Details"), less the built-in fields (email, name, subject,
/// message, priority), which every ticket has.
fn stock_forms() -> BTreeMap<String, Form> {
    let mut phone = field("phone", "Phone Number", FieldType::Phone);
    phone.min_digits = Some(7);
    let notes = field("notes", "Internal Notes", FieldType::Memo);
    BTreeMap::from([
        (
            "user".to_string(),
            Form {
                title: "Contact Information".into(),
                fields: vec![phone, notes],
            },
        ),
        (
            "ticket".to_string(),
            Form {
                title: "Ticket Details".into(),
                fields: Vec::new(),
            },
        ),
    ])
}

/// A configuration problem, naming the key (and the line when the TOML
/// parser knows it).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a value of the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file (or `environment`).
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// An `OXIDESK__…` variable that names no key or holds a wrong
    /// value (its value is not repeated: it may be a secret).
    #[error("environment variable {variable}: {message}")]
    Env {
        /// The variable.
        variable: String,
        /// What is wrong.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// Dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

impl Config {
    /// Loads the file (if any), applies `OXIDESK__SECTION__KEY` variables from
    /// `env`, and validates the result.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (text, name) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (String::new(), "defaults".to_string()),
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: name.clone(),
            message: e.to_string(),
        })?;
        let mut overrides: Vec<(String, Vec<String>, toml::Value)> = Vec::new();
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("OXIDESK__") else {
                if let Some(warning) = look_alike_warning(&key) {
                    tracing::warn!(variable = %key, "{warning}");
                }
                continue;
            };
            let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if parts.iter().any(String::is_empty) {
                return Err(env_error(
                    &key,
                    "empty path segment (a `___`, or a trailing `__`)",
                ));
            }
            overrides.push((key, parts, parse_env_value(&value)));
        }
        // The order of the environment is the system's: sort, so that two
        // runs report the same variable first.
        overrides.sort_by(|a, b| a.0.cmp(&b.0));
        let config: Config = if overrides.is_empty() {
            toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: name,
                message: e.to_string(),
            })?
        } else {
            let file_table = table.clone();
            for (key, parts, value) in &overrides {
                set_path(&mut table, parts, value.clone()).map_err(|m| env_error(key, &m))?;
            }
            match toml::Value::Table(table).try_into::<Config>() {
                Ok(config) => config,
                Err(e) => return Err(blame_env(&text, &name, file_table, &overrides, &e)),
            }
        };
        config.validated().map_err(|e| match e {
            // A value that came from a variable: name the variable.
            ConfigError::Invalid { key, message } => match overrides
                .iter()
                .find(|(_, parts, _)| key.starts_with(&parts.join(".")))
            {
                Some((variable, _, _)) => ConfigError::Invalid {
                    key,
                    message: format!("{message} (set by {variable})"),
                },
                None => ConfigError::Invalid { key, message },
            },
            other => other,
        })
    }

    /// Checks cross-references and values; fills in the stock `user` and
    /// `ticket` forms when the file defines other forms only.
    pub fn validated(mut self) -> Result<Self, ConfigError> {
        for stock in ["user", "ticket"] {
            if !self.forms.contains_key(stock) {
                let form = stock_forms()
                    .remove(stock)
                    .ok_or_else(|| invalid(stock, "no stock form"))?;
                self.forms.insert(stock.to_string(), form);
            }
        }
        if self.database.trim().is_empty() {
            return Err(invalid("database", "must not be empty"));
        }
        if !self.database.starts_with("sqlite:") && !self.is_postgres() {
            return Err(invalid(
                "database",
                "use sqlite://PATH or postgres://USER@HOST/DB",
            ));
        }
        jiff::tz::TimeZone::get(&self.timezone)
            .map_err(|e| invalid("timezone", format!("unknown time zone: {e}")))?;
        let fmt = &self.tickets.number_format;
        if !fmt.contains('#') {
            return Err(invalid("tickets.number_format", "needs at least one `#`"));
        }
        if !fmt
            .chars()
            .all(|c| c == '#' || c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid(
                "tickets.number_format",
                "only `#`, ASCII letters, digits and `-` are allowed",
            ));
        }
        if fmt.chars().filter(|&c| c == '#').count() > 18 {
            return Err(invalid("tickets.number_format", "at most 18 `#`"));
        }
        if self.limits.max_request_body_bytes == 0 || self.limits.max_attachment_bytes == 0 {
            return Err(invalid("limits", "limits must be greater than zero"));
        }
        let l = &self.limits;
        if [
            l.max_fields,
            l.max_name_chars,
            l.max_subject_chars,
            l.max_field_value_chars,
            l.max_file_name_chars,
        ]
        .contains(&0)
        {
            return Err(invalid("limits", "limits must be greater than zero"));
        }
        if l.max_bytes_in_flight < l.max_request_body_bytes {
            return Err(invalid(
                "limits.max_bytes_in_flight",
                "must be at least max_request_body_bytes",
            ));
        }
        let widen = self.tickets.number_widen_at;
        if !(widen > 0.0 && widen < 1.0) {
            return Err(invalid(
                "tickets.number_widen_at",
                "must be a share between 0 and 1 (e.g. 0.5)",
            ));
        }
        unique_ids(self.priorities.iter().map(|p| p.id), "priorities")?;
        unique_ids(self.departments.iter().map(|d| d.id), "departments")?;
        unique_ids(self.topics.iter().map(|t| t.id), "topics")?;
        let priority_ids: BTreeSet<i64> = self.priorities.iter().map(|p| p.id).collect();
        let dept_ids: BTreeSet<i64> = self.departments.iter().map(|d| d.id).collect();
        let topic_ids: BTreeSet<i64> = self.topics.iter().map(|t| t.id).collect();
        if !priority_ids.contains(&self.tickets.default_priority_id) {
            return Err(invalid(
                "tickets.default_priority_id",
                format!("no priority {}", self.tickets.default_priority_id),
            ));
        }
        if !dept_ids.contains(&self.tickets.default_department_id) {
            return Err(invalid(
                "tickets.default_department_id",
                format!("no department {}", self.tickets.default_department_id),
            ));
        }
        if let Some(t) = self.tickets.default_topic_id
            && !topic_ids.contains(&t)
        {
            return Err(invalid("tickets.default_topic_id", format!("no topic {t}")));
        }
        for (i, t) in self.topics.iter().enumerate() {
            let key = |k: &str| format!("topics[{i}].{k}");
            if let Some(p) = t.default_priority_id
                && !priority_ids.contains(&p)
            {
                return Err(invalid(
                    key("default_priority_id"),
                    format!("no priority {p}"),
                ));
            }
            if let Some(d) = t.department_id
                && !dept_ids.contains(&d)
            {
                return Err(invalid(key("department_id"), format!("no department {d}")));
            }
            if let Some(p) = t.parent_id
                && !topic_ids.contains(&p)
            {
                return Err(invalid(key("parent_id"), format!("no topic {p}")));
            }
            for f in &t.forms {
                if f == "user" || f == "ticket" || !self.forms.contains_key(f) {
                    return Err(invalid(key("forms"), format!("no extra form named `{f}`")));
                }
            }
        }
        let mut always: BTreeSet<&str> = BTreeSet::new();
        for (form_name, form) in &self.forms {
            let mut names = BTreeSet::new();
            for (i, f) in form.fields.iter().enumerate() {
                let key = |k: &str| format!("forms.{form_name}.fields[{i}].{k}");
                if f.name.is_empty()
                    || !f
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(invalid(
                        key("name"),
                        "use ASCII letters, digits, `_` or `-`",
                    ));
                }
                if RESERVED_FIELDS.contains(&f.name.as_str()) {
                    return Err(invalid(
                        key("name"),
                        format!("`{}` is a built-in request field", f.name),
                    ));
                }
                if !names.insert(f.name.as_str()) {
                    return Err(invalid(
                        key("name"),
                        format!("duplicate field `{}`", f.name),
                    ));
                }
                if (form_name == "user" || form_name == "ticket") && !always.insert(f.name.as_str())
                {
                    return Err(invalid(
                        key("name"),
                        format!("`{}` is in both the user and ticket forms", f.name),
                    ));
                }
                if f.kind == FieldType::Choice {
                    if f.choices.is_empty() {
                        return Err(invalid(key("choices"), "a choice field needs choices"));
                    }
                    let mut keys = BTreeSet::new();
                    for c in &f.choices {
                        if !keys.insert(c.key.as_str()) {
                            return Err(invalid(
                                key("choices"),
                                format!("duplicate key `{}`", c.key),
                            ));
                        }
                    }
                }
                if let (Some(a), Some(b)) = (f.min_length, f.max_length)
                    && a > b
                {
                    return Err(invalid(key("min_length"), "greater than max_length"));
                }
            }
        }
        if self.email.max_parts == 0 {
            return Err(invalid("email.max_parts", "must be at least 1"));
        }
        if self.email.max_header_fields == 0 {
            return Err(invalid("email.max_header_fields", "must be at least 1"));
        }
        if self.email.parse_timeout_ms == 0 {
            return Err(invalid("email.parse_timeout_ms", "must be at least 1"));
        }
        if self.email.use_email_priority {
            for (key, id) in [
                ("email.priority_low_id", self.email.priority_low_id),
                ("email.priority_normal_id", self.email.priority_normal_id),
                ("email.priority_high_id", self.email.priority_high_id),
                ("email.priority_urgent_id", self.email.priority_urgent_id),
            ] {
                if !priority_ids.contains(&id) {
                    return Err(invalid(key, format!("no priority {id}")));
                }
            }
        }
        for (i, b) in self.bans.iter().enumerate() {
            let a = b.address.trim();
            let ok = match a.strip_prefix('@') {
                Some(domain) => !domain.is_empty() && !domain.contains('@'),
                None => a.contains('@') && !a.starts_with('@') && !a.ends_with('@'),
            };
            if !ok {
                return Err(invalid(
                    format!("bans[{i}].address"),
                    "use an address (a@example.com) or a domain (@example.com)",
                ));
            }
        }
        if self.mail.from_address.trim().is_empty() || !self.mail.from_address.contains('@') {
            return Err(invalid("mail.from_address", "needs an address"));
        }
        if self.mail.lease_secs == 0
            || self.mail.retry_initial_secs == 0
            || self.mail.relay_backoff_max_secs == 0
        {
            return Err(invalid(
                "mail",
                "lease_secs, retry_initial_secs and relay_backoff_max_secs must be > 0",
            ));
        }
        if self.mail.reply_separator.trim().len() < 8 {
            return Err(invalid(
                "mail.reply_separator",
                "needs at least 8 characters (a shorter line would cut ordinary text)",
            ));
        }
        for (i, d) in self.departments.iter().enumerate() {
            if let Some(e) = &d.email
                && e.parse::<lettre::Address>().is_err()
            {
                return Err(invalid(
                    format!("departments[{i}].email"),
                    format!("\"{e}\" is not an address"),
                ));
            }
            for r in &d.alert_recipients {
                if !r.contains('@') {
                    return Err(invalid(
                        format!("departments[{i}].alert_recipients"),
                        format!("\"{r}\" is not an address"),
                    ));
                }
            }
        }
        let staff = &self.staff;
        if staff.session_ttl_secs < 60 || staff.session_ttl_secs > 366 * 86_400 {
            return Err(invalid(
                "staff.session_ttl_secs",
                "must be between 60 and 31622400 (366 days)",
            ));
        }
        if staff.sign_in_window_secs == 0 || staff.sign_in_window_secs > 86_400 {
            return Err(invalid(
                "staff.sign_in_window_secs",
                "must be between 1 and 86400",
            ));
        }
        if staff.sign_in_failures_per_account == 0 || staff.sign_in_failures_per_address == 0 {
            return Err(invalid(
                "staff",
                "sign_in_failures_per_account and sign_in_failures_per_address must be > 0",
            ));
        }
        if self.web.poll_secs == 0 || self.web.poll_secs > 3600 {
            return Err(invalid("web.poll_secs", "must be between 1 and 3600"));
        }
        if self.web.counts_max_age_ms > 60_000 {
            return Err(invalid(
                "web.counts_max_age_ms",
                "must be between 0 and 60000",
            ));
        }
        self.server.check()?;
        if self.postgres.acquire_timeout_ms == 0 || self.postgres.acquire_timeout_ms > 60_000 {
            return Err(invalid(
                "postgres.acquire_timeout_ms",
                "must be between 1 and 60000",
            ));
        }
        // A topic form must not redefine a field every ticket already has.
        for t in &self.topics {
            for form in &t.forms {
                for f in &self.forms[form].fields {
                    if always.contains(f.name.as_str()) {
                        return Err(invalid(
                            format!("forms.{form}.fields"),
                            format!("`{}` is already in the user or ticket form", f.name),
                        ));
                    }
                }
            }
        }
        Ok(self)
    }

    /// Whether `database` names a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        self.database.starts_with("postgres://") || self.database.starts_with("postgresql://")
    }

    /// The SQLite file path of `database`.
    pub fn sqlite_path(&self) -> PathBuf {
        let rest = self
            .database
            .strip_prefix("sqlite://")
            .or_else(|| self.database.strip_prefix("sqlite:"))
            .unwrap_or(&self.database);
        PathBuf::from(rest)
    }
}

/// Environment variables of ours that are not overrides: the file, and
/// the commit a build names (`build.rs`; cargo also sets it for tests).
const OWN_VARIABLES: &[&str] = &["OXIDESK_CONFIG", "OXIDESK_BUILD_COMMIT"];

/// A warning for a variable that looks like an override but is not one
/// (`OXIDESK_LISTEN`, `oxidesk__listen`): it would be ignored silently.
fn look_alike_warning(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    if !upper.starts_with("OXIDESK")
        || OWN_VARIABLES.contains(&name)
        || name.starts_with("OXIDESK_REQUIRE_")
    {
        return None;
    }
    let rest = upper.trim_start_matches("OXIDESK").trim_start_matches('_');
    // A one-word key has one spelling; a longer one is ambiguous
    // (`MAIL_SMTP_HOST`: section `mail`, key `smtp_host`).
    let hint = if !rest.is_empty() && !rest.contains('_') {
        format!("did you mean OXIDESK__{rest}?")
    } else {
        "e.g. OXIDESK__LISTEN, OXIDESK__MAIL__SMTP_HOST".to_string()
    };
    Some(format!(
        "environment variable {name} is ignored: overrides are spelt \
         OXIDESK__SECTION__KEY, in capitals, with two underscores between the parts ({hint})"
    ))
}

fn env_error(variable: &str, message: &str) -> ConfigError {
    ConfigError::Env {
        variable: variable.to_string(),
        message: message.to_string(),
    }
}

/// The overlaid configuration does not deserialize: find whose fault it
/// is. The file alone (with its line numbers), else the first variable
/// (in sorted order) after which it stops deserializing.
fn blame_env(
    text: &str,
    name: &str,
    mut table: toml::Table,
    overrides: &[(String, Vec<String>, toml::Value)],
    overall: &toml::de::Error,
) -> ConfigError {
    if let Err(e) = toml::from_str::<Config>(text) {
        return ConfigError::Parse {
            path: name.to_string(),
            message: e.to_string(),
        };
    }
    for (variable, parts, value) in overrides {
        if set_path(&mut table, parts, value.clone()).is_err() {
            continue;
        }
        if let Err(e) = toml::Value::Table(table.clone()).try_into::<Config>() {
            return env_error(variable, e.message());
        }
    }
    let names: Vec<&str> = overrides.iter().map(|(v, _, _)| v.as_str()).collect();
    ConfigError::Parse {
        path: format!("{name} + environment {}", names.join(", ")),
        message: overall.message().to_string(),
    }
}

fn unique_ids(ids: impl Iterator<Item = i64>, key: &str) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(invalid(key, format!("duplicate id {id}")));
        }
    }
    Ok(())
}

/// An environment value is read as a TOML value when it parses as one
/// (`8080`, `true`, `["10.0.0.0/8"]`), else as a plain string.
fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn set_path(table: &mut toml::Table, parts: &[String], value: toml::Value) -> Result<(), String> {
    match parts {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("`{first}` is not a section")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: Vec<(&str, &str)>) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(
            Some(&path),
            env.into_iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn empty_file_gives_stock_helpdesk() {
        let c = load_str("", vec![]).unwrap();
        assert_eq!(c.priorities.len(), 4);
        assert_eq!(c.topics.len(), 4);
        assert!(c.forms.contains_key("user") && c.forms.contains_key("ticket"));
        assert_eq!(c.listen.port(), 8080);
    }

    #[test]
    fn unknown_key_is_an_error_naming_key_and_line() {
        let err = load_str(
            "listen = \"127.0.0.1:1\"\n\n[limits]\nmax_body = 3\n",
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_body"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn bad_value_is_an_error_naming_line() {
        let err = load_str("\nlisten = 12\n", vec![]).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn env_overlay_overrides_file() {
        let c = load_str(
            "[limits]\nmax_attachment_bytes = 5\n",
            vec![
                ("OXIDESK__LIMITS__MAX_ATTACHMENT_BYTES", "7"),
                ("OXIDESK__LISTEN", "127.0.0.1:9999"),
                ("OTHER", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.limits.max_attachment_bytes, 7);
        assert_eq!(c.listen.port(), 9999);
    }

    #[test]
    fn a_wrong_override_names_its_variable() {
        let err = load_str("", vec![("OXIDESK__LIMITS__MAX_BODY", "7")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("OXIDESK__LIMITS__MAX_BODY") && err.contains("max_body"),
            "{err}"
        );
        let err = load_str(
            "",
            vec![("OXIDESK__LISTEN", "nowhere"), ("OXIDESK__TIMEZONE", "UTC")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("OXIDESK__LISTEN") && !err.contains("nowhere"),
            "{err}"
        );
        let err = load_str("", vec![("OXIDESK__MAIL__FROM_ADDRESS", "nobody")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mail.from_address") && err.contains("OXIDESK__MAIL__FROM_ADDRESS"),
            "{err}"
        );
        // A file error is still the file's, with its line.
        let err = load_str("\nlisten = 12\n", vec![("OXIDESK__TIMEZONE", "UTC")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn look_alike_variables_are_warned_about() {
        let table: &[(&str, Option<&str>)] = &[
            ("OXIDESK_LISTEN", Some("OXIDESK__LISTEN")),
            ("oxidesk__mail__smtp_host", Some("OXIDESK__MAIL__SMTP_HOST")),
            ("OXIDESK_MAIL_SMTP_HOST", Some("two underscores")),
            ("OXIDESK_CONFIG", None),
            ("PATH", None),
        ];
        for (name, hint) in table {
            let warning = look_alike_warning(name);
            match hint {
                Some(h) => {
                    let w = warning.unwrap_or_default();
                    assert!(w.contains(name) && w.contains(h), "{name}: {w}");
                }
                None => assert_eq!(warning, None, "{name}"),
            }
        }
    }

    #[test]
    fn topic_with_unknown_form_is_rejected() {
        let err = load_str(
            "[[topics]]\nid = 5\nname = \"X\"\nforms = [\"nope\"]\n",
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("topics[0].forms"), "{err}");
    }

    #[test]
    fn reserved_field_name_is_rejected() {
        let err = load_str(
            "[forms.user]\nfields = [{ name = \"email\", type = \"text\" }]\n",
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("built-in"), "{err}");
    }

    #[test]
    fn staff_section_has_defaults_and_is_checked() {
        let c = load_str("", vec![]).unwrap();
        assert_eq!(c.staff.session_ttl_secs, 43_200);
        let c = load_str("[staff]\nsession_ttl_secs = 600\n", vec![]).unwrap();
        assert_eq!(c.staff.session_ttl_secs, 600);
        let err = load_str("[staff]\nsession_ttl_secs = 0\n", vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("staff.session_ttl_secs"), "{err}");
        let err = load_str("[staff]\nsession_ttl = 600\n", vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("session_ttl"), "{err}");
    }

    #[test]
    fn connection_limits_have_defaults_and_are_checked() {
        let c = load_str("", vec![]).unwrap();
        assert_eq!(c.server.header_read_timeout_secs, 10);
        assert_eq!(c.server.body_timeout_secs, 30);
        assert_eq!(c.server.body_min_bytes_per_sec, 1024);
        assert_eq!(c.server.max_connections, 10_000);
        assert_eq!(c.postgres.acquire_timeout_ms, 1000);
        for (text, key) in [
            (
                "[server]\nheader_read_timeout_secs = 0\n",
                "server.header_read_timeout_secs",
            ),
            (
                "[server]\nbody_timeout_secs = 0\n",
                "server.body_timeout_secs",
            ),
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
            (
                "[postgres]\nacquire_timeout_ms = 0\n",
                "postgres.acquire_timeout_ms",
            ),
        ] {
            let err = load_str(text, vec![]).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn bad_timezone_and_number_format_are_rejected() {
        assert!(load_str("timezone = \"Mars/Base\"\n", vec![]).is_err());
        assert!(load_str("[tickets]\nnumber_format = \"ABC\"\n", vec![]).is_err());
    }
}
