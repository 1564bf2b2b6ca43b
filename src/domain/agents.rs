//! Agents' secrets and sign-in (STAFF-API.md, Agents and sign-in):
//! passwords (argon2id PHC strings), tokens (random, stored as SHA-256),
//! and the sign-in use case with its throttle.
//!
//! Agents are staff; API keys (`keys`) are for intake: separate tables,
//! separate secrets, separate rules. Nothing here logs a password, a
//! token or a hash.

use std::fmt;
use std::net::IpAddr;
use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::DomainError;
use super::catalog::Catalog;
use super::staff::Agent;
use super::throttle::{Locked, SignInThrottle, ThrottleLimits};
use crate::storage::{NewAgentToken, Store, StoreError};

/// Shortest password accepted from a person (`--password-stdin`);
/// generated ones are longer. OWASP ASVS 2.1.1: at least 12 characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Longest password accepted, in bytes: anything longer is refused
/// before hashing (a sign-in may not make the server hash megabytes).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The prefix of every agent token, so that a leaked one is recognisable
/// (secret scanners, logs) and never mistaken for an API key.
pub const TOKEN_PREFIX: &str = "oxd_";

/// A plain password. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Password(<redacted>)")
    }
}

impl Password {
    /// A fresh random password: 20 random bytes (160 bits) as 40
    /// lower-case hex characters, easy to paste and to type.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 20];
        rand::rng().fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// A password someone chose: at least [`MIN_PASSWORD_CHARS`]
    /// characters, at most [`MAX_PASSWORD_BYTES`] bytes.
    pub fn parse_new(text: String) -> Result<Self, String> {
        if text.chars().count() < MIN_PASSWORD_CHARS {
            return Err(format!(
                "the password is shorter than {MIN_PASSWORD_CHARS} characters"
            ));
        }
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(format!(
                "the password is longer than {MAX_PASSWORD_BYTES} bytes"
            ));
        }
        Ok(Self(text))
    }

    /// A password presented at sign-in (checked only by verifying it).
    pub fn presented(text: String) -> Self {
        Self(text)
    }

    /// The password itself, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A session or personal access token. Its `Debug` never shows it.
pub struct AgentToken(String);

impl fmt::Debug for AgentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentToken(<redacted>)")
    }
}

impl AgentToken {
    /// A fresh token: [`TOKEN_PREFIX`] and 32 random bytes (256 bits) as
    /// 64 lower-case hex characters (URL- and header-safe).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
    }

    /// The token itself, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the token, as stored.
    pub fn hash(&self) -> [u8; 32] {
        token_hash(&self.0)
    }
}

/// SHA-256 of a token's text: how tokens are stored and looked up. A
/// fast hash is safe for 256-bit random secrets (as for API keys);
/// argon2 is for passwords, which people choose.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Made by signing in; sliding expiry; ended by signing out.
    Session,
    /// Made by `oxidesk agent token`, for scripts; no expiry.
    Personal,
}

impl TokenKind {
    /// Its stored name (`agent_tokens.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Personal => "personal",
        }
    }
}

/// Argon2id with OWASP's minimum: m = 19 456 KiB, t = 2, p = 1.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string. CPU-heavy (tens of
/// milliseconds): call it through [`hash_password`] on async threads.
pub fn hash_password_now(password: &Password) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    hasher()
        .hash_password_with_salt(password.0.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches a stored PHC string (constant-time
/// comparison inside argon2). An unreadable hash matches nothing.
/// CPU-heavy: see [`verify_password`].
pub fn verify_password_now(password: &Password, phc: &str) -> bool {
    if password.0.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    // Verified with the parameters the hash names, so hashes made with
    // other parameters (older, or raised later) still verify.
    let Ok(parsed) = argon2::PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.0.as_bytes(), &parsed)
        .is_ok()
}

/// [`hash_password_now`] on the blocking pool.
pub async fn hash_password(password: Password) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash_password_now(&password))
        .await
        .map_err(|e| e.to_string())?
}

/// [`verify_password_now`] on the blocking pool; `None` as the hash
/// verifies against a dummy hash of the same cost and answers `false`,
/// so an unknown account takes as long as a wrong password.
pub async fn verify_password(password: Password, phc: Option<String>) -> Result<bool, String> {
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify_password_now(&password, &phc),
        None => {
            let _ = verify_password_now(&password, &DUMMY_HASH);
            false
        }
    })
    .await
    .map_err(|e| e.to_string())
}

/// A hash of a random password nobody knows, with the same parameters
/// as real ones (made once, on first use).
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password_now(&Password::generate()).unwrap_or_default());

/// Checks that every id names a configured department (an agent's
/// departments are configuration ids); sorted, without repeats.
pub fn check_departments(catalog: &Catalog, ids: &[i64]) -> Result<Vec<i64>, DomainError> {
    let mut out: Vec<i64> = Vec::with_capacity(ids.len());
    for &id in ids {
        if !catalog.departments.contains_key(&id) {
            let mut known: Vec<i64> = catalog.departments.keys().copied().collect();
            known.sort_unstable();
            let known: Vec<String> = known.iter().map(i64::to_string).collect();
            return Err(DomainError::Invalid {
                field: "department".into(),
                message: format!(
                    "no department {id} in the configuration (known: {})",
                    known.join(", ")
                ),
            });
        }
        out.push(id);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// How sessions are made: their lifetime and the throttle.
#[derive(Debug)]
pub struct SignIn {
    /// A session's sliding lifetime.
    pub session_ttl_secs: i64,
    /// Failed sign-ins per account and address.
    pub throttle: SignInThrottle,
}

/// A new session.
#[derive(Debug)]
pub struct Session {
    /// The token, shown once.
    pub token: AgentToken,
    /// Unix seconds; moves forward as the session is used.
    pub expires_at: i64,
    /// Who signed in.
    pub agent: Agent,
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignInError {
    /// Unknown address, wrong password or disabled agent: one answer for
    /// all three, so that it reveals nothing about accounts.
    #[error("Invalid email or password")]
    Invalid,
    /// Too many failures for the account or from the address.
    #[error("Too many failed sign-ins; try again in {} seconds", .0.retry_after_secs)]
    Throttled(Locked),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed (the blocking pool is gone).
    #[error("password check failed: {0}")]
    Hashing(String),
}

impl SignIn {
    /// Sign-in settings with a fresh throttle.
    pub fn new(session_ttl_secs: i64, limits: ThrottleLimits) -> Self {
        Self {
            session_ttl_secs,
            throttle: SignInThrottle::new(limits),
        }
    }

    /// Checks an address and password and opens a session (a token
    /// stored hashed, expiring `session_ttl_secs` after its last use).
    /// Refused while the account or address is throttled, even with the
    /// right password; every failure counts against both.
    pub async fn sign_in(
        &self,
        store: &dyn Store,
        email: &str,
        password: Password,
        client: IpAddr,
        now: i64,
    ) -> Result<Session, SignInError> {
        self.throttle
            .check(email, client, now)
            .map_err(SignInError::Throttled)?;
        let found = if email.trim().is_empty() || email.len() > 320 {
            None
        } else {
            store.agent_credentials(email.trim().to_string()).await?
        };
        let (agent, hash) = match found {
            Some(c) => (Some(c.agent), Some(c.password_hash)),
            None => (None, None),
        };
        let matches = verify_password(password, hash)
            .await
            .map_err(SignInError::Hashing)?;
        let agent = match agent {
            Some(agent) if matches && agent.active => agent,
            _ => {
                self.throttle.failed(email, client, now);
                return Err(SignInError::Invalid);
            }
        };
        self.throttle.succeeded(email);
        let token = AgentToken::generate();
        let expires_at = now + self.session_ttl_secs;
        store
            .add_agent_token(NewAgentToken {
                hash: token.hash(),
                agent_id: agent.id,
                kind: TokenKind::Session,
                name: "session".into(),
                created: now,
                expires_at: Some(expires_at),
            })
            .await?;
        Ok(Session {
            token,
            expires_at,
            agent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_long_and_redacted() {
        let (a, b) = (Password::generate(), Password::generate());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 40);
        assert!(!format!("{a:?}").contains(a.expose()));
        let (t, u) = (AgentToken::generate(), AgentToken::generate());
        assert_ne!(t.expose(), u.expose());
        assert!(t.expose().starts_with("oxd_"));
        assert_eq!(t.expose().len(), 4 + 64);
        assert!(!format!("{t:?}").contains(t.expose()));
        assert_eq!(t.hash(), token_hash(t.expose()));
    }

    #[test]
    fn passwords_hash_to_argon2id_phc_strings_that_verify() {
        let p = Password::generate();
        let phc = hash_password_now(&p).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains(p.expose()));
        assert!(verify_password_now(&p, &phc));
        assert!(!verify_password_now(&Password::generate(), &phc));
        assert!(!verify_password_now(&p, "not a hash"));
        assert_ne!(phc, hash_password_now(&p).unwrap(), "salted");
    }

    #[test]
    fn chosen_passwords_have_a_minimum_and_maximum_length() {
        assert!(Password::parse_new("short".into()).is_err());
        assert!(Password::parse_new("x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(Password::parse_new("correct horse battery".into()).is_ok());
    }
}
