//! `Idempotency-Key` on ticket creation (the IETF draft
//! `draft-ietf-httpapi-idempotency-key-header`, as Stripe and others use
//! it): a client that retries a create with the same key and the same
//! body within [`WINDOW_SECS`] gets the first answer again, not a second
//! ticket; the same key with another body is refused (`422`).
//!
//! The rule lives here; the store keeps one row per (API key, key) in the
//! transaction that stores the ticket, so a retry after a lost answer, a
//! concurrent duplicate and another instance on PostgreSQL all see it.

use sha2::{Digest, Sha256};

use crate::storage::{Store, StoreError};

/// How long a key is remembered (the draft suggests 24 hours; Stripe
/// keeps its keys as long).
pub const WINDOW_SECS: i64 = 24 * 3600;

/// Longest key accepted (the draft leaves it open; Stripe takes 255).
pub const MAX_KEY_LEN: usize = 255;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// A key as the client sent it: 1 to [`MAX_KEY_LEN`] printable ASCII
/// characters, taken either bare (`Idempotency-Key: 8e03…`) or as the
/// draft's structured-field string (`Idempotency-Key: "8e03…"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses the header's value; the error says what a key must be.
    pub fn parse(value: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(value).ok().map(str::trim);
        let text = match text {
            Some(t) if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') => {
                Some(&t[1..t.len() - 1])
            }
            other => other,
        };
        match text {
            Some(t)
                if !t.is_empty()
                    && t.len() <= MAX_KEY_LEN
                    && t.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"') =>
            {
                Ok(Self(t.to_string()))
            }
            _ => Err(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"
            )),
        }
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a create with a key asks the store to remember, beside the
/// ticket, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// SHA-256 of the API key's id and the key: keys are per client
    /// (two clients may pick the same key), and the client's text is
    /// never stored.
    pub scope: [u8; 32],
    /// SHA-256 of the request's format and body.
    pub fingerprint: [u8; 32],
    /// When it is made (unix seconds).
    pub now: i64,
}

impl IdempotencyClaim {
    /// The claim of a request made with `key` through API key `key_id`,
    /// in `format` (`json`, `xml`, `email`), with `body`.
    pub fn new(key_id: &str, key: &IdempotencyKey, format: &str, body: &[u8], now: i64) -> Self {
        let mut scope = Sha256::new();
        scope.update(b"oxidesk idempotency scope\0");
        scope.update(key_id.as_bytes());
        scope.update(b"\0");
        scope.update(key.as_str().as_bytes());
        let mut fingerprint = Sha256::new();
        fingerprint.update(format.as_bytes());
        fingerprint.update(b"\0");
        fingerprint.update(body);
        Self {
            scope: scope.finalize().into(),
            fingerprint: fingerprint.finalize().into(),
            now,
        }
    }

    /// Claims made before this are forgotten: a key may be used anew.
    pub fn expired_before(&self) -> i64 {
        self.now - WINDOW_SECS
    }
}

/// A remembered claim: its request's fingerprint and the answer it got
/// (the ticket number; empty for a logged bounce).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClaim {
    /// SHA-256 of the first request's format and body.
    pub fingerprint: [u8; 32],
    /// The `201` body the first request got.
    pub answer: String,
}

/// What a request with an already used key gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The same request again: the first answer, and no new ticket.
    Same(String),
    /// Another request under a used key: refused (`422`).
    DifferentRequest,
}

/// The rule: the same fingerprint replays the first answer; any other is
/// a different request reusing the key.
pub fn replay(claim: &IdempotencyClaim, stored: &StoredClaim) -> Replay {
    use subtle::ConstantTimeEq;
    if bool::from(claim.fingerprint.ct_eq(&stored.fingerprint)) {
        Replay::Same(stored.answer.clone())
    } else {
        Replay::DifferentRequest
    }
}

/// Before a keyed request is worked on: what an earlier request with
/// its key got, if one committed (the usual retry: nothing is parsed or
/// written again).
pub async fn earlier(
    store: &dyn Store,
    claim: &IdempotencyClaim,
) -> Result<Option<Replay>, StoreError> {
    Ok(store
        .idempotency_claim(claim.scope, claim.expired_before())
        .await?
        .map(|stored| replay(claim, &stored)))
}

/// After the store refused the claim ([`StoreError::IdempotencyKeyUsed`]:
/// a concurrent request with the key committed first): what that one got.
pub async fn after_conflict(
    store: &dyn Store,
    claim: &IdempotencyClaim,
) -> Result<Replay, StoreError> {
    earlier(store, claim).await?.ok_or_else(|| {
        StoreError::Busy("the first request with this Idempotency-Key did not commit".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bare_or_quoted_printable_ascii_up_to_255() {
        assert_eq!(IdempotencyKey::parse(b"abc-1").unwrap().as_str(), "abc-1");
        assert_eq!(
            IdempotencyKey::parse(b"\"abc 1\"").unwrap().as_str(),
            "abc 1"
        );
        assert_eq!(IdempotencyKey::parse(b"  x  ").unwrap().as_str(), "x");
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(b"\"\"").is_err());
        assert!(IdempotencyKey::parse("é".as_bytes()).is_err());
        assert!(IdempotencyKey::parse(b"a\x01b").is_err());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 256]).is_err());
    }

    #[test]
    fn the_scope_is_per_api_key_and_the_fingerprint_per_format_and_body() {
        let k = IdempotencyKey::parse(b"k").unwrap();
        let a = IdempotencyClaim::new("1", &k, "json", b"{}", 0);
        assert_eq!(a, IdempotencyClaim::new("1", &k, "json", b"{}", 0));
        assert_ne!(
            a.scope,
            IdempotencyClaim::new("2", &k, "json", b"{}", 0).scope
        );
        let other = IdempotencyKey::parse(b"k2").unwrap();
        assert_ne!(
            a.scope,
            IdempotencyClaim::new("1", &other, "json", b"{}", 0).scope
        );
        assert_ne!(
            a.fingerprint,
            IdempotencyClaim::new("1", &k, "xml", b"{}", 0).fingerprint
        );
        assert_ne!(
            a.fingerprint,
            IdempotencyClaim::new("1", &k, "json", b"{ }", 0).fingerprint
        );
        assert_eq!(a.expired_before(), -WINDOW_SECS);
    }

    #[test]
    fn the_same_request_replays_and_another_is_refused() {
        let k = IdempotencyKey::parse(b"k").unwrap();
        let claim = IdempotencyClaim::new("1", &k, "json", b"{}", 0);
        let stored = StoredClaim {
            fingerprint: claim.fingerprint,
            answer: "123456".into(),
        };
        assert_eq!(replay(&claim, &stored), Replay::Same("123456".into()));
        let other = IdempotencyClaim::new("1", &k, "json", b"{\"a\":1}", 0);
        assert_eq!(replay(&other, &stored), Replay::DifferentRequest);
    }
}
