//! API keys: generation, hashing and the authorization rules of API.md.
//!
//! A key is 32 random bytes shown once as 64 upper-case hex characters
//! (osTicket's keys are upper-case hex too). Only its SHA-256 is stored:
//! keys are high-entropy secrets, so a fast hash is safe, and lookups are
//! by hash; the stored hash is then compared in constant time.
//!
//! An existing osTicket key (32 hex characters, `key add --secret`) is
//! kept as it is: osTicket compares keys case-insensitively
//! (`strcasecmp` in its API key lookup), so a key of that form is hashed
//! in lower case, whichever case the client sends.

use std::fmt;
use std::net::IpAddr;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::storage::ApiKeyRecord;

/// A plain API key. Its `Debug` never shows it.
pub struct ApiKeySecret(String);

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret(<redacted>)")
    }
}

impl ApiKeySecret {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(hex::encode_upper(bytes))
    }

    /// Wraps a key received in a request.
    pub fn from_header(s: &str) -> Self {
        Self(s.to_string())
    }

    /// An existing osTicket key given to `key add --secret`: exactly 32
    /// hex characters (osTicket makes its keys that way), in either case.
    pub fn parse_osticket(s: &str) -> Result<Self, KeyFormatError> {
        let s = s.trim();
        if s.len() != OSTICKET_KEY_LEN {
            return Err(KeyFormatError::Length(s.chars().count()));
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(KeyFormatError::NotHex(c));
        }
        Ok(Self(s.to_string()))
    }

    /// The key itself, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the key, as stored. A key of osTicket's form (32 hex
    /// characters) is hashed in lower case: osTicket accepts it in any
    /// case, so must we. Our own keys (64 characters) are hashed as they
    /// are.
    pub fn hash(&self) -> [u8; 32] {
        if self.is_osticket_form() {
            Sha256::digest(self.0.to_ascii_lowercase().as_bytes()).into()
        } else {
            Sha256::digest(self.0.as_bytes()).into()
        }
    }

    /// The first characters, to tell keys apart in listings (upper case
    /// for an osTicket key, as osTicket shows them).
    pub fn prefix(&self) -> String {
        let prefix: String = self.0.chars().take(6).collect();
        if self.is_osticket_form() {
            prefix.to_ascii_uppercase()
        } else {
            prefix
        }
    }

    fn is_osticket_form(&self) -> bool {
        self.0.len() == OSTICKET_KEY_LEN && self.0.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// osTicket's keys: `strtoupper(md5(…))`, 32 hex characters.
const OSTICKET_KEY_LEN: usize = 32;

/// Why `key add --secret` refused a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Not 32 characters long.
    #[error("an osTicket API key is 32 hex characters; this one has {0}")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("an osTicket API key is 32 hex characters (0-9, A-F); `{0}` is not one")]
    NotHex(char),
}

/// What a key is being used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// `can_create_tickets`.
    CreateTickets,
    /// `can_read_tickets`.
    ReadTickets,
}

/// Why a key was refused; the texts are osTicket's (API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No header, or no such key.
    #[error("Valid API key required")]
    Missing,
    /// Inactive, or used from an address it is not bound to.
    #[error("API key not found/active or source IP not authorized")]
    NotActiveOrAddress,
    /// The key lacks the permission.
    #[error("API key not authorized")]
    NotAuthorized,
}

/// Checks a stored key against the presented one, the client address and
/// the permission needed.
pub fn authorize(
    presented: &ApiKeySecret,
    record: Option<&ApiKeyRecord>,
    client: IpAddr,
    permission: Permission,
) -> Result<(), AuthError> {
    let record = record.ok_or(AuthError::Missing)?;
    if !bool::from(record.hash.ct_eq(&presented.hash())) {
        return Err(AuthError::Missing);
    }
    let client = canonical(client);
    if !record.is_active || !record.addresses.iter().any(|net| net.contains(&client)) {
        return Err(AuthError::NotActiveOrAddress);
    }
    let allowed = match permission {
        Permission::CreateTickets => record.can_create,
        Permission::ReadTickets => record.can_read,
    };
    if allowed {
        Ok(())
    } else {
        Err(AuthError::NotAuthorized)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) compare as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// An address or CIDR range a key may be used from (`key add --ip`,
/// the admin page): a bare address is its own /32 or /128.
pub fn parse_network(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<ipnet::IpNet>() {
        return Some(net);
    }
    s.parse::<IpAddr>()
        .ok()
        .map(|ip| ipnet::IpNet::from(canonical(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(secret: &ApiKeySecret, nets: &[&str]) -> ApiKeyRecord {
        ApiKeyRecord {
            id: crate::domain::ids::ApiKeyId(1),
            hash: secret.hash(),
            prefix: secret.prefix(),
            addresses: nets.iter().map(|n| n.parse().unwrap()).collect(),
            is_active: true,
            can_create: true,
            can_read: false,
            notes: String::new(),
            created: String::new(),
        }
    }

    #[test]
    fn keys_are_random_hex_and_redacted() {
        let a = ApiKeySecret::generate();
        let b = ApiKeySecret::generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn osticket_keys_are_kept_and_match_in_either_case() {
        let upper = "0123456789ABCDEF0123456789ABCDEF";
        let key = ApiKeySecret::parse_osticket(upper).unwrap();
        let r = record(&key, &["127.0.0.1/32"]);
        let ip = "127.0.0.1".parse::<IpAddr>().unwrap();
        for presented in [
            upper,
            &upper.to_ascii_lowercase(),
            "0123456789abcdef0123456789ABCDEF",
        ] {
            let p = ApiKeySecret::from_header(presented);
            assert_eq!(
                authorize(&p, Some(&r), ip, Permission::CreateTickets),
                Ok(())
            );
        }
        assert_eq!(key.prefix(), "012345");
        // Our own 64-character keys stay case-sensitive, as before.
        let ours = ApiKeySecret::generate();
        let lower = ApiKeySecret::from_header(&ours.expose().to_ascii_lowercase());
        assert_ne!(lower.hash(), ours.hash());
    }

    #[test]
    fn osticket_key_format_is_checked() {
        let table: &[(&str, Option<KeyFormatError>)] = &[
            ("0123456789abcdef0123456789abcdef", None),
            (" 0123456789abcdef0123456789abcdef\n", None),
            ("0123456789abcdef", Some(KeyFormatError::Length(16))),
            (
                "0123456789abcdef0123456789abcdeg",
                Some(KeyFormatError::NotHex('g')),
            ),
            ("", Some(KeyFormatError::Length(0))),
        ];
        for (input, want) in table {
            assert_eq!(
                ApiKeySecret::parse_osticket(input).err(),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn authorization_rules() {
        let k = ApiKeySecret::generate();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let r = record(&k, &["127.0.0.1/32", "10.0.0.0/8", "2001:db8::/32"]);
        let create = Permission::CreateTickets;
        assert_eq!(authorize(&k, Some(&r), ip("127.0.0.1"), create), Ok(()));
        assert_eq!(
            authorize(&k, Some(&r), ip("::ffff:127.0.0.1"), create),
            Ok(())
        );
        assert_eq!(authorize(&k, Some(&r), ip("10.9.8.7"), create), Ok(()));
        assert_eq!(authorize(&k, Some(&r), ip("2001:db8::5"), create), Ok(()));
        assert_eq!(
            authorize(&k, Some(&r), ip("127.0.0.2"), create),
            Err(AuthError::NotActiveOrAddress)
        );
        assert_eq!(
            authorize(&k, Some(&r), ip("127.0.0.1"), Permission::ReadTickets),
            Err(AuthError::NotAuthorized)
        );
        assert_eq!(
            authorize(&k, None, ip("127.0.0.1"), create),
            Err(AuthError::Missing)
        );
        let other = ApiKeySecret::generate();
        assert_eq!(
            authorize(&other, Some(&r), ip("127.0.0.1"), create),
            Err(AuthError::Missing)
        );
        let mut inactive = r.clone();
        inactive.is_active = false;
        assert_eq!(
            authorize(&k, Some(&inactive), ip("127.0.0.1"), create),
            Err(AuthError::NotActiveOrAddress)
        );
    }
}
