//! The server-wide budget of request bytes in flight (issue 16 point 3).
//!
//! A request takes its body's size from the budget before the body is
//! read (by `Content-Length`, or chunk by chunk as a chunked body
//! arrives) and gives it back when its work is done, so that the memory
//! held by bodies being read, decoded and stored at once is bounded by
//! `limits.max_bytes_in_flight`, however many clients send at once. A
//! request that finds no room waits up to `limits.bytes_in_flight_wait_ms`
//! (the semaphore is fair: first come, first served), then gets `503`
//! with `Retry-After`: the server's state, not the message, is at fault.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The budget's unit: permits count KiB, so that a 4 GiB request still
/// fits a `u32` permit count.
const UNIT_BYTES: u64 = 1024;

/// Bytes a chunked body takes at a time (it has no length to take at once).
pub const CHUNK_STEP_BYTES: u64 = 1024 * 1024;

/// The budget of one server.
#[derive(Debug)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    total_units: u32,
    wait: Duration,
}

/// Bytes taken from the budget, given back when dropped.
#[derive(Debug, Default)]
pub struct BytesPermit {
    permit: Option<OwnedSemaphorePermit>,
}

impl BytesPermit {
    /// Bytes this permit holds.
    pub fn bytes(&self) -> u64 {
        self.permit
            .as_ref()
            .map_or(0, |p| p.num_permits() as u64 * UNIT_BYTES)
    }
}

fn units(bytes: u64) -> u64 {
    bytes.div_ceil(UNIT_BYTES)
}

impl ByteBudget {
    /// A budget of `max_bytes`; a request waits at most `wait` for room.
    pub fn new(max_bytes: u64, wait: Duration) -> Self {
        let total_units = u32::try_from(units(max_bytes)).unwrap_or(u32::MAX).max(1);
        Self {
            semaphore: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            wait,
        }
    }

    /// Bytes free right now (for tests and metrics).
    pub fn available_bytes(&self) -> u64 {
        self.semaphore.available_permits() as u64 * UNIT_BYTES
    }

    /// Adds `bytes` to `permit`, waiting for room; `503` with
    /// `Retry-After` when none comes in time. A request never asks for
    /// more than the whole budget (validated: at least the body cap).
    pub async fn grow(&self, permit: &mut BytesPermit, bytes: u64) -> Result<(), ApiError> {
        let want = u32::try_from(units(bytes))
            .unwrap_or(u32::MAX)
            .min(self.total_units);
        if want == 0 {
            return Ok(());
        }
        let acquire = Arc::clone(&self.semaphore).acquire_many_owned(want);
        let taken = match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(p)) => p,
            // Timed out (or, never, closed): the server is full.
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(
                    request.size_bytes = bytes,
                    "request refused: bytes in flight at the cap"
                );
                return Err(busy());
            }
        };
        match &mut permit.permit {
            Some(p) => p.merge(taken),
            None => permit.permit = Some(taken),
        }
        Ok(())
    }
}

/// `503` with `Retry-After` (the error layer adds it to a 503 of ours).
fn busy() -> ApiError {
    ApiError {
        is_internal: true,
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Server busy: too many request bytes in flight, try again later",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_are_taken_and_given_back() {
        let budget = ByteBudget::new(10 * 1024, Duration::from_millis(20));
        let mut a = BytesPermit::default();
        budget.grow(&mut a, 6 * 1024).await.unwrap();
        budget.grow(&mut a, 1).await.unwrap();
        assert_eq!((a.bytes(), budget.available_bytes()), (7 * 1024, 3 * 1024));
        let mut b = BytesPermit::default();
        let refused = budget.grow(&mut b, 4 * 1024).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(b.bytes(), 0);
        drop(a);
        budget.grow(&mut b, 4 * 1024).await.unwrap();
        assert_eq!(budget.available_bytes(), 6 * 1024);
    }

    #[tokio::test]
    async fn a_waiting_request_gets_room_when_it_is_given_back() {
        let budget = Arc::new(ByteBudget::new(4096, Duration::from_secs(30)));
        let mut a = BytesPermit::default();
        budget.grow(&mut a, 4096).await.unwrap();
        let waiter = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move {
                let mut b = BytesPermit::default();
                budget.grow(&mut b, 4096).await.map(|()| b.bytes())
            })
        };
        tokio::task::yield_now().await;
        drop(a);
        assert_eq!(waiter.await.unwrap().unwrap(), 4096);
    }
}
