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

/// How many numbers a pattern with `digits` `#` makes (the first digit
/// is never 0, as in osTicket): 9·10^(digits-1).
fn capacity(digits: usize) -> f64 {
    9.0 * 10f64.powi(i32::try_from(digits.saturating_sub(1)).unwrap_or(i32::MAX))
}

/// Digits to add to `format` so that `tickets` fill less than `widen_at`
/// of its random numbers (issue 16 point 7: a crowded pattern made each
/// draw collide until the 100th failed with a 500, near 900,000 tickets
/// for `######`). Keeping the share in use under `widen_at` keeps the
/// expected draws per ticket under 1/(1-widen_at).
pub fn extra_digits(format: &str, tickets: u64, widen_at: f64) -> usize {
    let base = format.chars().filter(|&c| c == '#').count();
    let mut extra = 0;
    // 64 characters is a ticket number's maximum (`TicketNumber::parse`).
    while format.len() + extra < 64 && tickets as f64 >= widen_at * capacity(base + extra) {
        extra += 1;
    }
    extra
}

/// `format` with `extra` more `#` beside its first one (`HD-####` →
/// `HD-#####`). A widened number is longer than every number of the
/// narrower pattern, so the two can never be equal.
pub fn widen_format(format: &str, extra: usize) -> std::borrow::Cow<'_, str> {
    match format.find('#') {
        Some(i) if extra > 0 => {
            let mut out = String::with_capacity(format.len() + extra);
            out.push_str(&format[..i]);
            out.extend(std::iter::repeat_n('#', extra));
            out.push_str(&format[i..]);
            std::borrow::Cow::Owned(out)
        }
        _ => std::borrow::Cow::Borrowed(format),
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
    fn patterns_widen_before_they_are_crowded() {
        // `##`: 90 numbers; at 0.5, 45 tickets move to `###` (900).
        assert_eq!(extra_digits("##", 0, 0.5), 0);
        assert_eq!(extra_digits("##", 44, 0.5), 0);
        assert_eq!(extra_digits("##", 45, 0.5), 1);
        assert_eq!(extra_digits("##", 450, 0.5), 2);
        assert_eq!(extra_digits("######", 449_999, 0.5), 0);
        assert_eq!(extra_digits("######", 450_000, 0.5), 1);
        assert_eq!(extra_digits("#", u64::MAX, 0.5), 19);
        assert_eq!(widen_format("HD-##", 2), "HD-####");
        assert_eq!(widen_format("##-#", 1), "###-#");
        assert_eq!(widen_format("###", 0), "###");
    }

    #[test]
    fn email_addresses_are_checked_once() {
        let a = EmailAddress::parse(" ann@example.com ").unwrap();
        assert_eq!((a.as_str(), a.local_part()), ("ann@example.com", "ann"));
        assert!(EmailAddress::parse("not an address").is_err());
    }
}
