//! Outgoing mail: autoresponses and staff alerts through the durable
//! outbox. Storage queues them in the ticket's transaction (PostgreSQL as
//! outbox rows; SQLite on the thread entry, made into a row when the
//! sender claims it); this module renders them ([`render`]) and delivers them over SMTP with
//! `lettre` ([`sender`]): retries with exponential backoff on temporary
//! failures, gives up after a configured time, never resends a row the
//! SMTP server accepted, and resumes after a restart (claims are leases).
//! A relay that cannot be reached is waited out by one [`breaker`], not
//! retried mail by mail.

pub mod breaker;
pub mod render;
pub mod sender;
pub mod smtp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// What ticket intake tells the sender: that mail may be waiting (a
/// wake-up), and when it last stored a ticket (the sender keeps a single
/// mail in flight while intake is busy, so mail never takes the CPU
/// from tickets; the backlog goes out at full speed once intake is
/// quiet).
#[derive(Debug)]
pub struct IntakeSignal {
    wake: Notify,
    base: Instant,
    last_ms: AtomicU64,
}

impl Default for IntakeSignal {
    fn default() -> Self {
        Self {
            wake: Notify::new(),
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl IntakeSignal {
    /// A ticket or reply was stored: wakes the sender.
    pub fn stored(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms.max(1), Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Whether a ticket was stored within `window`.
    pub fn busy_within(&self, window: Duration) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        last != 0 && now.saturating_sub(last) < u64::try_from(window.as_millis()).unwrap_or(0)
    }

    /// Resolves at the next [`Self::stored`] (or at once if one came
    /// since the last wait).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// Why the outbox could not be worked on.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A template does not compile or render.
    #[error("mail template: {0}")]
    Template(String),
    /// The SMTP transport could not be set up.
    #[error("SMTP transport: {0}")]
    Transport(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn intake_is_busy_only_right_after_a_ticket_and_wakes_the_sender() {
        let intake = IntakeSignal::default();
        assert!(!intake.busy_within(Duration::from_secs(60)));
        intake.stored();
        assert!(intake.busy_within(Duration::from_secs(60)));
        // The wake-up is kept until the sender waits for it.
        tokio::time::timeout(Duration::from_secs(1), intake.woken())
            .await
            .expect("woken");
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!intake.busy_within(Duration::from_millis(10)));
    }
}
