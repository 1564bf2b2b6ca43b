//! Typing and normalising form field values (API.md, Field processing).
//!
//! Every parser takes the raw request value and answers the normalised
//! value the read API reports, or a message for a `400 <field>: ...`.

use std::net::IpAddr;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::config::{Field, FieldType};
use crate::intake::RawValue;

/// A typed, normalised field value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// Text or memo.
    Text(String),
    /// A number, as its decimal text.
    Number(serde_json::Number),
    /// A calendar date.
    Date(Date),
    /// An instant (timezone-aware datetime field).
    Instant(Timestamp),
    /// A wall-clock time (datetime field that is not timezone-aware).
    Local(DateTime),
    /// `digits` and an optional extension.
    Phone {
        /// Digits only.
        number: String,
        /// Digits only.
        ext: Option<String>,
    },
    /// Choice keys (one unless the field is multiple).
    Choice(Vec<String>),
    /// Checkbox.
    Bool(bool),
}

impl FieldValue {
    /// The JSON the read API shows (API.md, Read a ticket: `fields`).
    pub fn to_json(&self, multiple: bool) -> serde_json::Value {
        use serde_json::Value;
        match self {
            FieldValue::Text(s) => Value::String(s.clone()),
            FieldValue::Number(n) => Value::Number(n.clone()),
            FieldValue::Date(d) => Value::String(d.to_string()),
            FieldValue::Instant(t) => Value::String(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            FieldValue::Local(dt) => Value::String(dt.strftime("%Y-%m-%dT%H:%M:%S").to_string()),
            FieldValue::Phone { number, ext } => Value::String(match ext {
                Some(e) => format!("{number}X{e}"),
                None => number.clone(),
            }),
            FieldValue::Choice(keys) if multiple => {
                Value::Array(keys.iter().cloned().map(Value::String).collect())
            }
            FieldValue::Choice(keys) => Value::String(keys.first().cloned().unwrap_or_default()),
            FieldValue::Bool(b) => Value::Bool(*b),
        }
    }
}

/// Parses `raw` for `field`. `Ok(None)` when the value is empty (absent).
pub fn parse_field(
    field: &Field,
    raw: &RawValue,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<Option<FieldValue>, String> {
    if raw.is_empty() && !matches!(raw, RawValue::Bool(_)) {
        return Ok(None);
    }
    let value = match field.kind {
        FieldType::Text | FieldType::Memo => {
            let s = scalar_text(raw)?;
            let s = if field.kind == FieldType::Text {
                s.trim().to_string()
            } else {
                s
            };
            let n = s.chars().count();
            if let Some(max) = field.max_length
                && n > max
            {
                return Err(format!("longer than {max} characters"));
            }
            if let Some(min) = field.min_length
                && n < min
            {
                return Err(format!("shorter than {min} characters"));
            }
            FieldValue::Text(s)
        }
        FieldType::Email => FieldValue::Text(parse_email(&scalar_text(raw)?)?),
        FieldType::Phone => {
            let (number, ext) = parse_phone(&scalar_text(raw)?, field.min_digits.unwrap_or(1))?;
            if ext.is_some() && !field.extension {
                return Err("no extension allowed".into());
            }
            FieldValue::Phone { number, ext }
        }
        FieldType::Number => {
            let s = scalar_text(raw)?;
            let n: serde_json::Number = s
                .trim()
                .parse()
                .ok()
                .filter(|n: &serde_json::Number| n.as_f64().is_some_and(f64::is_finite))
                .ok_or_else(|| format!("\"{s}\" is not a number"))?;
            FieldValue::Number(n)
        }
        FieldType::Date => {
            let parsed = parse_when(&scalar_text(raw)?, tz, now)?;
            FieldValue::Date(
                parsed
                    .date_as_written
                    .unwrap_or_else(|| parsed.zoned.date()),
            )
        }
        FieldType::Datetime if field.timezone_aware => {
            FieldValue::Instant(parse_when(&scalar_text(raw)?, tz, now)?.zoned.timestamp())
        }
        FieldType::Datetime => {
            let parsed = parse_when(&scalar_text(raw)?, tz, now)?;
            FieldValue::Local(
                parsed
                    .local_as_written
                    .unwrap_or_else(|| parsed.zoned.datetime()),
            )
        }
        FieldType::Choice => FieldValue::Choice(parse_choice(field, raw)?),
        FieldType::Boolean => FieldValue::Bool(parse_bool(raw)?),
    };
    Ok(Some(value))
}

/// Whether `c` may not appear in stored text: the characters XML 1.0
/// §2.2 excludes from documents (C0 controls but tab, line feed and
/// carriage return; U+FFFE, U+FFFF). NUL among them is what PostgreSQL
/// cannot store in `text` at all, so refusing them gives the same answer
/// on both backends (issue 16 point 4).
pub fn is_forbidden_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Checks a text value before it is stored: no forbidden character, at
/// most `max_chars` characters. The message names the first problem.
pub fn check_text(s: &str, max_chars: usize) -> Result<(), String> {
    let mut chars = 0usize;
    for c in s.chars() {
        if is_forbidden_char(c) {
            return Err(format!(
                "contains the control character U+{:04X}, which cannot be stored",
                u32::from(c)
            ));
        }
        chars += 1;
    }
    if chars > max_chars {
        return Err(format!(
            "longer than {max_chars} characters ({chars} characters)"
        ));
    }
    Ok(())
}

/// A string, or a number taken as its text; anything else is a type error.
pub fn scalar_text(raw: &RawValue) -> Result<String, String> {
    match raw {
        RawValue::Str(s) => Ok(s.clone()),
        RawValue::Number(n) => Ok(n.clone()),
        other => Err(format!("expected a string, got {}", other.type_name())),
    }
}

/// API.md: booleans accept `true/false/1/0/yes/no/on/off` (any case) and
/// JSON `true`/`false`.
pub fn parse_bool(raw: &RawValue) -> Result<bool, String> {
    match raw {
        RawValue::Bool(b) => Ok(*b),
        RawValue::Str(s) | RawValue::Number(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("\"{s}\" is not a boolean (true/false)")),
        },
        other => Err(format!("expected a boolean, got {}", other.type_name())),
    }
}

/// An email address (RFC 5321 mailbox syntax, via `email_address`).
pub fn parse_email(s: &str) -> Result<String, String> {
    let s = s.trim();
    if email_address::EmailAddress::parse_with_options(
        s,
        email_address::Options::default().without_display_text(),
    )
    .is_ok()
        && s.rsplit('@').next().is_some_and(|d| !d.is_empty())
    {
        Ok(s.to_string())
    } else {
        Err(format!("\"{s}\" is not a valid email address"))
    }
}

/// Parses an IP address (API.md: `ip` is a valid IPv4/IPv6 address).
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("\"{s}\" is not an IP address"))
}

/// Phone numbers: digits with punctuation dropped and an optional
/// extension after `x`/`X` (or `ext`), as osTicket's PhoneField stores
/// `3185558634X123`. Letters other than the extension mark are an error.
pub fn parse_phone(s: &str, min_digits: usize) -> Result<(String, Option<String>), String> {
    let lower = s.to_ascii_lowercase();
    let (main, ext) = match lower.find(['x', 'e']) {
        Some(i) => {
            let rest = &lower[i..];
            let tail = rest
                .strip_prefix("extension")
                .or_else(|| rest.strip_prefix("ext."))
                .or_else(|| rest.strip_prefix("ext"))
                .or_else(|| rest.strip_prefix('x'))
                .ok_or_else(|| format!("\"{s}\" is not a phone number"))?;
            (&lower[..i], Some(tail))
        }
        None => (lower.as_str(), None),
    };
    let mut digits = String::new();
    for c in main.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' | '.' | '+' | '/' | '\t' => {}
            _ => return Err(format!("\"{s}\" is not a phone number")),
        }
    }
    if digits.len() < min_digits.max(1) {
        return Err(format!(
            "\"{s}\" has fewer than {} digits",
            min_digits.max(1)
        ));
    }
    let ext = match ext {
        None => None,
        Some(e) => {
            let e = e.trim_start_matches(['.', ':', ' ', '\t']).trim_end();
            if e.is_empty() || !e.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("\"{s}\" has an invalid extension"));
            }
            Some(e.to_string())
        }
    };
    Ok((digits, ext))
}

/// A choice by its key (exact, then any case) or its label (any case).
fn resolve_choice(field: &Field, s: &str) -> Result<String, String> {
    let s = s.trim();
    field
        .choices
        .iter()
        .find(|c| c.key == s)
        .or_else(|| field.choices.iter().find(|c| c.key.eq_ignore_ascii_case(s)))
        .or_else(|| {
            field
                .choices
                .iter()
                .find(|c| c.label.to_lowercase() == s.to_lowercase())
        })
        .map(|c| c.key.clone())
        .ok_or_else(|| {
            let keys: Vec<&str> = field.choices.iter().map(|c| c.key.as_str()).collect();
            format!("\"{s}\" is not one of the choices ({})", keys.join(", "))
        })
}

fn parse_choice(field: &Field, raw: &RawValue) -> Result<Vec<String>, String> {
    let items: Vec<String> = match raw {
        RawValue::List(items) if field.multiple => {
            items.iter().map(scalar_text).collect::<Result<_, _>>()?
        }
        RawValue::Str(s) if field.multiple => s
            .split(',')
            .map(str::to_string)
            .filter(|p| !p.trim().is_empty())
            .collect(),
        other => vec![scalar_text(other)?],
    };
    let mut keys = Vec::with_capacity(items.len());
    for item in items {
        let key = resolve_choice(field, &item)?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// A point in time and what the text said literally.
#[derive(Debug)]
pub struct When {
    /// The instant, in the helpdesk zone unless the text named an offset.
    pub zoned: Zoned,
    /// The calendar date as written (`2024-03-05T23:30-05:00` → 2024-03-05).
    pub date_as_written: Option<Date>,
    /// The wall-clock time as written, when it had one.
    pub local_as_written: Option<DateTime>,
}

/// Dates as osTicket clients send them: Unix epoch seconds, ISO 8601
/// (with or without offset), the d-m-Y / d.m.Y forms PHP reads, and the
/// other `strtotime()` forms through `parse_datetime` (GNU `date -d`).
pub fn parse_when(s: &str, tz: &TimeZone, now: Timestamp) -> Result<When, String> {
    let text = s.trim();
    let fail = || format!("\"{text}\" is not a date");
    if text.is_empty() {
        return Err(fail());
    }
    let epoch = text.strip_prefix('@').unwrap_or(text);
    if let Some(secs) = parse_epoch(epoch) {
        let ts = Timestamp::from_second(secs).map_err(|_| fail())?;
        return Ok(When {
            zoned: ts.to_zoned(tz.clone()),
            date_as_written: None,
            local_as_written: None,
        });
    }
    // ISO 8601 / RFC 3339 with an offset or Z.
    if let Ok(ts) = text.parse::<Timestamp>() {
        let written = text.parse::<DateTime>().ok();
        let zoned = ts.to_zoned(tz.clone());
        return Ok(When {
            zoned,
            date_as_written: written.map(|d| d.date()),
            local_as_written: written,
        });
    }
    // ISO 8601 without an offset: wall-clock time in the helpdesk zone.
    let local = text.parse::<DateTime>().ok().or_else(|| {
        text.parse::<Date>()
            .ok()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    });
    let local = local.or_else(|| {
        const PHP_FORMS: &[&str] = &[
            "%d-%m-%Y %H:%M:%S",
            "%d-%m-%Y %H:%M",
            "%d-%m-%Y",
            "%d.%m.%Y %H:%M:%S",
            "%d.%m.%Y %H:%M",
            "%d.%m.%Y",
        ];
        PHP_FORMS.iter().find_map(|f| {
            DateTime::strptime(f, text).ok().or_else(|| {
                Date::strptime(f, text)
                    .ok()
                    .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
            })
        })
    });
    if let Some(dt) = local {
        let zoned = dt.to_zoned(tz.clone()).map_err(|_| fail())?;
        return Ok(When {
            zoned,
            date_as_written: Some(dt.date()),
            local_as_written: Some(dt),
        });
    }
    let base = now.to_zoned(tz.clone());
    let parsed = parse_datetime::parse_datetime_at_date(base, text).map_err(|_| fail())?;
    let zoned = parsed.as_zoned().ok_or_else(fail)?.clone();
    Ok(When {
        date_as_written: Some(zoned.date()),
        local_as_written: Some(zoned.datetime()),
        zoned,
    })
}

fn parse_epoch(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || digits.len() > 12 {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Choice;

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    fn now() -> Timestamp {
        "2026-11-28T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn phones() {
        let ok = [
            ("3185558634X123", "3185558634", Some("123")),
            ("318-555-8634 x77", "3185558634", Some("77")),
            ("(318) 555-8634", "3185558634", None),
            ("+1 (555) 987-6543 X 1234", "15559876543", Some("1234")),
            ("555.123.4567 ext. 9", "5551234567", Some("9")),
        ];
        for (input, number, ext) in ok {
            let (n, e) = parse_phone(input, 7).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((n.as_str(), e.as_deref()), (number, ext), "{input}");
        }
        for bad in [
            "call me maybe",
            "123",
            "555-1234567 x",
            "555-1234567 xab",
            "5551234567e",
        ] {
            assert!(parse_phone(bad, 7).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        let tz = utc();
        let date = |s: &str| {
            let w = parse_when(s, &tz, now()).unwrap_or_else(|e| panic!("{s}: {e}"));
            w.date_as_written
                .unwrap_or_else(|| w.zoned.date())
                .to_string()
        };
        assert_eq!(date("1709640000"), "2024-03-05");
        assert_eq!(date("@1709640000"), "2024-03-05");
        assert_eq!(date("2024-03-05"), "2024-03-05");
        assert_eq!(date("2024-03-05T23:30:00-05:00"), "2024-03-05");
        assert_eq!(date("5 March 2024"), "2024-03-05");
        assert_eq!(date("March 5, 2024"), "2024-03-05");
        assert_eq!(date("03/05/2024"), "2024-03-05");
        assert_eq!(date("05-03-2024"), "2024-03-05");
        assert_eq!(date("05.03.2024"), "2024-03-05");
        assert_eq!(date("tomorrow"), "2026-11-29");
        for bad in ["not a date", "2024-02-30", "", "32.13.2024"] {
            assert!(parse_when(bad, &tz, now()).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_convert_to_utc() {
        let tz = utc();
        let inst = |s: &str| {
            parse_when(s, &tz, now())
                .unwrap()
                .zoned
                .timestamp()
                .to_string()
        };
        assert_eq!(inst("2024-03-05T14:30:00+02:00"), "2024-03-05T12:30:00Z");
        assert_eq!(inst("2024-01-01T01:15:00+05:30"), "2023-12-31T19:45:00Z");
        assert_eq!(inst("1709649000"), "2024-03-05T14:30:00Z");
        assert_eq!(inst("2024-03-05 14:30"), "2024-03-05T14:30:00Z");
        let paris = TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(
            parse_when("2024-03-05 14:30", &paris, now())
                .unwrap()
                .zoned
                .timestamp()
                .to_string(),
            "2024-03-05T13:30:00Z"
        );
    }

    fn choice_field(multiple: bool) -> Field {
        let mut f: Field = toml::from_str("name = \"s\"\ntype = \"choice\"").unwrap();
        f.choices = vec![
            Choice {
                key: "sev1".into(),
                label: "Critical".into(),
            },
            Choice {
                key: "sev2".into(),
                label: "Major".into(),
            },
        ];
        f.multiple = multiple;
        f
    }

    #[test]
    fn choices_by_key_or_label() {
        let f = choice_field(false);
        let p = |s: &str| parse_choice(&f, &RawValue::Str(s.into()));
        assert_eq!(p("sev2").unwrap(), vec!["sev2"]);
        assert_eq!(p("SEV2").unwrap(), vec!["sev2"]);
        assert_eq!(p("major").unwrap(), vec!["sev2"]);
        assert!(p("Minor").is_err());
        let m = choice_field(true);
        let list = RawValue::List(vec![
            RawValue::Str("Critical".into()),
            RawValue::Str("sev2".into()),
        ]);
        assert_eq!(parse_choice(&m, &list).unwrap(), vec!["sev1", "sev2"]);
        assert_eq!(
            parse_choice(&m, &RawValue::Str("sev1, major".into())).unwrap(),
            vec!["sev1", "sev2"]
        );
    }

    #[test]
    fn booleans() {
        for (raw, want) in [
            (RawValue::Bool(true), true),
            (RawValue::Str("FALSE".into()), false),
            (RawValue::Str("on".into()), true),
            (RawValue::Number("0".into()), false),
        ] {
            assert_eq!(parse_bool(&raw).unwrap(), want, "{raw:?}");
        }
        assert!(parse_bool(&RawValue::Str("maybe".into())).is_err());
        assert!(parse_bool(&RawValue::List(vec![])).is_err());
    }

    #[test]
    fn emails() {
        assert!(parse_email("a.b+c@example.com").is_ok());
        for bad in [
            "not-an-email-address",
            "a@",
            "@b.c",
            "a b@c.d",
            "Name <a@b.c>",
        ] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }
}
