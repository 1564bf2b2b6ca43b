//! The circuit breaker of the SMTP relay: one backoff for the relay, not
//! one refused connection, render and UPDATE per mail.
//!
//! Closed, the sender delivers as usual. A failure to get a session with
//! the relay (refused, DNS, timeout, TLS, greeting, AUTH — not a reply to
//! one mail) opens it: the sender then claims, renders and writes
//! nothing until the backoff has passed. Then it half-opens: the next
//! pass tries one mail. A session with the relay (the mail accepted, or
//! refused by a reply about that mail) closes it and delivery resumes at
//! once; another failure opens it again for twice as long, from
//! `mail.retry_initial_secs` up to `mail.relay_backoff_max_secs`.
//!
//! This module is the state machine alone: times are the sender's clock
//! (unix seconds), and it does no I/O, logging aside, so the sender's
//! tests drive it through `run_once` on a test clock. Each breaker
//! belongs to one sender: instances sharing a database each find out for
//! themselves.

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The relay answers: mail is delivered.
    Closed,
    /// The relay did not answer: nothing is tried before `until`.
    Open {
        /// When one mail may be tried again (unix seconds).
        until: i64,
        /// Failures in a row, the first included.
        failures: u32,
    },
    /// The backoff has passed: one mail is tried next.
    HalfOpen {
        /// Failures in a row so far.
        failures: u32,
    },
}

/// What a pass may try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// As much as is due.
    All,
    /// One mail, to see whether the relay is back.
    One,
    /// Nothing (the breaker is open).
    Nothing,
}

/// A change worth telling the operator about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The relay stopped answering: the breaker opened.
    Opened,
    /// The half-open try failed too: the breaker is open again, longer.
    Reopened,
    /// The relay answers again: the breaker closed.
    Closed,
}

/// One relay's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: State,
    initial_secs: i64,
    max_secs: i64,
}

impl Breaker {
    /// A closed breaker whose first backoff is `initial_secs`, doubling
    /// up to `max_secs`.
    pub fn new(initial_secs: u64, max_secs: u64) -> Self {
        let initial_secs = i64::try_from(initial_secs.max(1)).unwrap_or(i64::MAX);
        let max_secs = i64::try_from(max_secs).unwrap_or(i64::MAX).max(1);
        Self {
            state: State::Closed,
            initial_secs,
            max_secs,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// When an open breaker lets one mail through (unix seconds).
    pub fn open_until(&self) -> Option<i64> {
        match self.state {
            State::Open { until, .. } => Some(until),
            _ => None,
        }
    }

    /// What a pass starting at `now` may try; an open breaker whose
    /// backoff has passed half-opens.
    pub fn admit(&mut self, now: i64) -> Admit {
        match self.state {
            State::Closed => Admit::All,
            State::HalfOpen { .. } => Admit::One,
            State::Open { until, failures } if now >= until => {
                self.state = State::HalfOpen { failures };
                Admit::One
            }
            State::Open { .. } => Admit::Nothing,
        }
    }

    /// No session with the relay at `now`. Further failures while open
    /// (mails that were in flight with the one that opened it) change
    /// nothing.
    pub fn relay_failed(&mut self, now: i64) -> Option<Change> {
        let (failures, change) = match self.state {
            State::Closed => (1, Change::Opened),
            State::HalfOpen { failures } => (failures.saturating_add(1), Change::Reopened),
            State::Open { .. } => return None,
        };
        self.state = State::Open {
            until: now.saturating_add(self.backoff(failures)),
            failures,
        };
        Some(change)
    }

    /// A session with the relay: it accepted a mail, or answered one
    /// with a reply code. Closes a half-open breaker; an open one stays
    /// open (a mail in flight before it opened says nothing newer).
    pub fn relay_answered(&mut self) -> Option<Change> {
        match self.state {
            State::HalfOpen { .. } => {
                self.state = State::Closed;
                Some(Change::Closed)
            }
            State::Closed | State::Open { .. } => None,
        }
    }

    /// The wait after `failures` failures in a row: the initial backoff,
    /// doubled for each failure after the first, at most the maximum.
    fn backoff(&self, failures: u32) -> i64 {
        let doublings = failures.saturating_sub(1).min(30);
        self.initial_secs
            .saturating_mul(1 << doublings)
            .min(self.max_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_opens_it_for_the_initial_backoff_then_one_mail_is_tried() {
        let mut b = Breaker::new(30, 300);
        assert_eq!(b.admit(100), Admit::All);
        assert_eq!(b.relay_failed(100), Some(Change::Opened));
        // The others in flight with it fail too: no longer wait.
        assert_eq!(b.relay_failed(101), None);
        assert_eq!(b.open_until(), Some(130));
        assert_eq!(b.admit(129), Admit::Nothing);
        assert_eq!(b.admit(130), Admit::One);
        assert_eq!(b.state(), State::HalfOpen { failures: 1 });
        // Nothing was due: the next pass may still try one.
        assert_eq!(b.admit(131), Admit::One);
    }

    #[test]
    fn each_failed_try_doubles_the_backoff_up_to_the_maximum() {
        let mut b = Breaker::new(30, 100);
        let mut now = 0;
        b.relay_failed(now);
        for expected in [60, 100, 100] {
            now = b.open_until().unwrap();
            assert_eq!(b.admit(now), Admit::One);
            assert_eq!(b.relay_failed(now), Some(Change::Reopened));
            assert_eq!(b.open_until(), Some(now + expected));
        }
    }

    #[test]
    fn an_answer_closes_a_half_open_breaker_but_not_an_open_one() {
        let mut b = Breaker::new(30, 300);
        b.relay_failed(0);
        // A mail sent before the breaker opened finishes afterwards.
        assert_eq!(b.relay_answered(), None);
        assert_eq!(b.admit(10), Admit::Nothing);
        assert_eq!(b.admit(30), Admit::One);
        assert_eq!(b.relay_answered(), Some(Change::Closed));
        assert_eq!(b.admit(30), Admit::All);
        assert_eq!(b.relay_answered(), None);
        // Closed, it starts over at the initial backoff.
        assert_eq!(b.relay_failed(40), Some(Change::Opened));
        assert_eq!(b.open_until(), Some(70));
    }

    #[test]
    fn huge_settings_do_not_overflow() {
        let mut b = Breaker::new(u64::MAX, u64::MAX);
        b.relay_failed(i64::MAX - 1);
        assert_eq!(b.open_until(), Some(i64::MAX));
        for _ in 0..40 {
            b.admit(i64::MAX);
            b.relay_failed(i64::MAX);
        }
        assert_eq!(b.open_until(), Some(i64::MAX));
    }
}
