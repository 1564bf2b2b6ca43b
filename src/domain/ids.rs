//! Values parsed once at the edge and trusted inside (STYLE: parse,
//! don't validate): ticket numbers, email addresses, API key ids.

use std::fmt;

/// A ticket number as the helpdesk shows it (`482913`, `HD-001`): ASCII
/// letters, digits and `-`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketNumber(String);

impl TicketNumber {
    /// A number from a request (a URL, a subject's `[#…]`); `None` when
    /// it cannot be one.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        ok.then(|| Self(text.to_string()))
    }

    /// A number the helpdesk made (drawn or read back from the store).
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl AsRef<str> for TicketNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for TicketNumber {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// An email address that passed the intake check (RFC 5322 addr-spec
/// with a domain), trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an address; the error says why, naming the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        super::fields::parse_email(text).map(Self)
    }

    /// An address read back from the store (checked when it was stored).
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@` (a name for a sender who gave none).
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// An API key's row id (never the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKeyId(pub i64);

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_numbers_are_letters_digits_and_dashes() {
        assert_eq!(TicketNumber::parse("HD-001").unwrap().as_str(), "HD-001");
        for bad in ["", "12 34", "../x", "1;2", &"9".repeat(65)] {
            assert_eq!(TicketNumber::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn email_addresses_are_checked_once() {
        let a = EmailAddress::parse(" ann@example.com ").unwrap();
        assert_eq!((a.as_str(), a.local_part()), ("ann@example.com", "ann"));
        assert!(EmailAddress::parse("not an address").is_err());
    }
}
