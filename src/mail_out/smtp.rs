//! SMTP connections for the sender: lettre's client over sockets with
//! Nagle's algorithm off, kept open between mails.
//!
//! lettre 0.11.23 writes a message's body and its final `.` in two
//! writes and never sets `TCP_NODELAY`, so the final five bytes wait for
//! the server's delayed ACK: 40 ms per mail on Linux, which held the
//! sender to ~180 mails/s with 8 in flight (lettre/lettre#1159 fixes it
//! upstream, not yet released). Plain and STARTTLS connections are opened
//! here on a socket with `TCP_NODELAY` and handed to
//! `AsyncSmtpConnection::connect_with_transport`; implicit TLS (port 465)
//! still goes through lettre's own connect, so it keeps the stall until
//! lettre's release.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::OutboxError;
use crate::config::{MailConfig, SmtpSecurity};

/// Why a mail was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server or the SMTP client refused (a reply code, TLS, a
    /// protocol error).
    #[error("{0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The network: connecting, or a connection that timed out.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No session with the relay: connecting (refused, unreachable, DNS,
    /// timeout), TLS, its greeting, EHLO, STARTTLS or AUTH failed. The
    /// mail was never offered: this says nothing about it, only about
    /// the relay (the sender's circuit breaker opens).
    #[error("no session with the SMTP relay: {0}")]
    Relay(Box<SendError>),
}

impl SendError {
    /// A refusal for good (5xx) of this mail: retrying will not help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.is_permanent())
    }

    /// The relay could not be reached or would not hold a session,
    /// whatever the mail.
    pub fn is_relay_down(&self) -> bool {
        matches!(self, Self::Relay(_))
    }

    /// The server answered with a reply code (so the connection was
    /// alive when the mail was tried).
    fn is_reply(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.is_permanent() || e.is_transient())
    }
}

/// Connections older than this are closed rather than reused: servers
/// drop idle clients (Postfix after 300 s).
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Opens, authenticates and reuses SMTP connections.
pub struct SmtpClient {
    host: String,
    port: u16,
    security: SmtpSecurity,
    timeout: Duration,
    hello: ClientId,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    keep: usize,
}

impl SmtpClient {
    /// Settings from `[mail]`; keeps up to `keep` idle connections.
    pub fn new(config: &MailConfig, keep: usize) -> Result<Self, OutboxError> {
        let tls = match config.smtp_security {
            SmtpSecurity::None => None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => Some(
                TlsParameters::new(config.smtp_host.clone())
                    .map_err(|e| OutboxError::Transport(e.to_string()))?,
            ),
        };
        Ok(Self {
            host: config.smtp_host.clone(),
            port: config.smtp_port,
            security: config.smtp_security,
            timeout: Duration::from_secs(config.smtp_timeout_secs.max(1)),
            hello: ClientId::default(),
            tls,
            credentials: match (&config.smtp_username, &config.smtp_password) {
                (Some(user), Some(password)) => {
                    Some(Credentials::new(user.clone(), password.clone()))
                }
                _ => None,
            },
            idle: Mutex::new(Vec::new()),
            keep,
        })
    }

    /// Sends one mail. A kept connection that turns out dead (closed by
    /// the server while idle) is replaced by a new one at once, so the
    /// mail is not put off to a retry for it. Failing to open that new
    /// session is [`SendError::Relay`]; once a session is open, a failure
    /// is this mail's (a reply to it, or a connection lost while sending
    /// it: a mail that always breaks the connection must not hold up the
    /// others as a relay failure would).
    pub async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        if let Some(conn) = self.take_idle() {
            match self.send_on(conn, envelope, raw).await {
                Err(e) if !e.is_reply() => {
                    tracing::debug!(error = %e, "kept SMTP connection failed; opening a new one");
                }
                done => return done,
            }
        }
        let conn = self
            .connect()
            .await
            .map_err(|e| SendError::Relay(Box::new(e)))?;
        self.send_on(conn, envelope, raw).await
    }

    /// One mail on `conn`, within the timeout; the connection is kept if
    /// the mail went through.
    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), SendError> {
        match tokio::time::timeout(self.timeout, conn.send(envelope, raw)).await {
            Ok(Ok(_)) => {
                self.put_idle(conn);
                Ok(())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "SMTP server did not answer in time",
            )
            .into()),
        }
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !conn.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.keep {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let address = (self.host.as_str(), self.port);
        let connect = async {
            let mut conn = match (&self.security, &self.tls) {
                (SmtpSecurity::Tls, Some(tls)) => {
                    AsyncSmtpConnection::connect_tokio1(
                        address,
                        Some(self.timeout),
                        &self.hello,
                        Some(tls.clone()),
                        None,
                    )
                    .await?
                }
                _ => {
                    let stream = tokio::net::TcpStream::connect(address).await?;
                    stream.set_nodelay(true)?;
                    let mut conn =
                        AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                            .await?;
                    if let (SmtpSecurity::Starttls, Some(tls)) = (&self.security, &self.tls) {
                        conn.starttls(tls.clone(), &self.hello).await?;
                    }
                    conn
                }
            };
            if let Some(credentials) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await?;
            }
            Ok::<_, SendError>(conn)
        };
        tokio::time::timeout(self.timeout, connect)
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting to the SMTP server timed out",
                )
                .into())
            })
    }
}
