//! RFC 5322 messages (`POST /api/tickets.email`, `oxidesk pipe`): the
//! public face of email intake.
//!
//! MIME parsing, transfer decoding, RFC 2047/2231 and charsets are
//! `mail-parser`'s (Stalwart). This module decides what a helpdesk takes
//! from a message: the sender, the subject, the body (the html alternative
//! when there is one), the attachments (every other leaf part), the
//! threading ids, and the loop-protection flags (auto-reply, bounce). It
//! owns the entry points ([`parse_email`], [`inspect_email`]), the draft
//! they return and the attachment caps; the passes live beside it:
//!
//! * `headers` — repairs broken header blocks and unterminated multiparts
//!   before MIME parsing;
//! * `fields` — reads header fields of the parsed message (sender, ids,
//!   priority);
//! * `parts` — the MIME walk: which part is the body, which are files;
//! * `loops` — auto-reply and bounce detection, the ids a bounce returns;
//! * `uudecode` — uuencoded files inside plain-text bodies.
//!
//! Every pass is linear in the message, the parts are capped while the
//! parser finds them ([`MailCaps::max_parts`], in the patched
//! `vendor/mail-parser`) and the whole read has a deadline
//! ([`Budget`]); text taken from a message is scrubbed of NUL and other
//! control characters so every store keeps the same text.
//!
//! Like all of intake it never touches storage or configuration; the
//! clock only through the [`Budget`] its caller starts.

mod fields;
mod headers;
mod loops;
mod parts;
mod text;
mod uudecode;

use std::time::{Duration, Instant};

use mail_parser::parsers::message::LimitExceeded;
use mail_parser::{Message, MessageParser};
use serde::Serialize;

pub use self::uudecode::uudecode;
use super::{AttachmentDraft, BodyFormat, IntakeError, IntakeLimits, MessageDraft};

/// A mailbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mailbox {
    /// Display name (decoded), or the old-style comment.
    pub name: Option<String>,
    /// The address.
    pub email: String,
}

/// Urgency named by `X-Priority`, `Importance` or `Priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorityHint {
    /// 5, low, non-urgent.
    Low,
    /// 3-4, normal.
    Normal,
    /// 1-2, high.
    High,
    /// urgent.
    Urgent,
}

/// What intake takes from a message.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailDraft {
    /// First mailbox of From; `None` when there is none.
    pub from: Option<Mailbox>,
    /// Decoded subject; `None` when the header is missing.
    pub subject: Option<String>,
    /// The body (html sanitised).
    pub message: MessageDraft,
    /// Every non-body leaf part, in message order.
    pub attachments: Vec<AttachmentDraft>,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// First id of In-Reply-To.
    pub in_reply_to: Option<String>,
    /// All ids of References, in order.
    pub references: Vec<String>,
    /// Must never get an autoresponse.
    pub auto_reply: bool,
    /// A delivery status notification.
    pub bounce: bool,
    /// Message-IDs of the messages a bounce returns.
    pub returned_ids: Vec<String>,
    /// Priority headers, when present.
    pub priority: Option<PriorityHint>,
    /// Parts left out: over `max_attachment_bytes`, or past
    /// `max_attachments` (every part that fits is kept).
    pub dropped: Vec<super::DroppedPart>,
}

/// Default of [`MailCaps::max_parts`] (and of `[email] max_parts`).
pub const DEFAULT_MAX_PARTS: usize = 1000;

/// Default of [`MailCaps::max_header_fields`] (and of `[email]
/// max_header_fields`).
pub const DEFAULT_MAX_HEADER_FIELDS: usize = 20_000;

/// A deadline for reading one message. Every pass checks it as it goes
/// (the MIME parser itself, which cannot be stopped, before and after);
/// past it the message is refused as too costly to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    deadline: Option<(Instant, Duration)>,
}

impl Budget {
    /// No deadline (`mail inspect`, tests).
    pub fn unlimited() -> Self {
        Self { deadline: None }
    }

    /// A deadline `limit` from now.
    pub fn starting_now(limit: Duration) -> Self {
        Self {
            deadline: Some((Instant::now() + limit, limit)),
        }
    }

    /// `TooComplex` once the deadline has passed.
    pub(crate) fn check(&self) -> Result<(), IntakeError> {
        match self.deadline {
            Some((at, limit)) if Instant::now() > at => Err(IntakeError::TooComplex(format!(
                "message: reading it took more than the limit of {} ms",
                limit.as_millis()
            ))),
            _ => Ok(()),
        }
    }
}

/// The bounds of reading one message, beside the attachment caps.
#[derive(Debug, Clone, Copy)]
pub struct MailCaps {
    /// Most MIME parts (nested messages' included), counted while the
    /// parser finds them: past it the message is refused before the
    /// rest are allocated.
    pub max_parts: usize,
    /// Most header fields, all header blocks of the message together,
    /// counted the same way.
    pub max_header_fields: usize,
    /// The deadline.
    pub budget: Budget,
}

impl Default for MailCaps {
    fn default() -> Self {
        Self {
            max_parts: DEFAULT_MAX_PARTS,
            max_header_fields: DEFAULT_MAX_HEADER_FIELDS,
            budget: Budget::unlimited(),
        }
    }
}

/// Parses a message for intake: it must start with a header field (after
/// an optional mbox `From ` line), and the attachment caps apply. The
/// default [`MailCaps`]: [`DEFAULT_MAX_PARTS`], no deadline.
pub fn parse_email(raw: &[u8], limits: &IntakeLimits) -> Result<EmailDraft, IntakeError> {
    parse_email_with(raw, limits, &MailCaps::default())
}

/// [`parse_email`] with explicit caps on parts and time.
pub fn parse_email_with(
    raw: &[u8],
    limits: &IntakeLimits,
    caps: &MailCaps,
) -> Result<EmailDraft, IntakeError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(IntakeError::EmptyBody);
    }
    if !starts_with_header_field(raw) {
        return Err(IntakeError::NotATicket(
            "not an RFC 5322 message: it does not start with a header field".into(),
        ));
    }
    let mut draft = read_email(raw, caps)?;
    // A customer's mail is never refused for one oversize file (osTicket
    // keeps the ticket and drops the file; its automail scripts have no
    // 413 case and would make the MTA retry for days): every part that
    // fits is kept, the others are recorded for staff to see.
    let parts = std::mem::take(&mut draft.attachments);
    for (i, mut att) in parts.into_iter().enumerate() {
        if att.name.trim().is_empty() {
            att.name = invented_name(i + 1, &att.content_type);
        }
        let size = att.data.len() as u64;
        let reason = if size > limits.max_attachment_bytes {
            format!(
                "over the limit of {} bytes per attachment",
                limits.max_attachment_bytes
            )
        } else if draft.attachments.len() >= limits.max_attachments {
            format!(
                "past the limit of {} attachments per message",
                limits.max_attachments
            )
        } else {
            draft.attachments.push(att);
            continue;
        };
        draft.dropped.push(super::DroppedPart {
            name: att.name,
            size,
            reason,
        });
    }
    Ok(draft)
}

/// A name for a part that declares none (stored files need one):
/// `attachment-2.png`, `message-3.eml`.
fn invented_name(n: usize, content_type: &str) -> String {
    let ext = match content_type {
        "message/rfc822" => return format!("message-{n}.eml"),
        "text/plain" => "txt",
        "text/html" => "html",
        "text/calendar" => "ics",
        "text/rfc822-headers" => "txt",
        "message/delivery-status" => "txt",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        _ => "bin",
    };
    format!("attachment-{n}.{ext}")
}

/// Parses whatever it is given as leniently as possible (for `mail
/// inspect` and the corpus), with the default part cap and no deadline;
/// never panics.
pub fn inspect_email(raw: &[u8]) -> Result<EmailDraft, IntakeError> {
    read_email(raw, &MailCaps::default())
}

/// The lenient read, under `caps`, with the text scrubbed.
fn read_email(raw: &[u8], caps: &MailCaps) -> Result<EmailDraft, IntakeError> {
    let mut draft = read_unscrubbed(raw, caps)?;
    text::scrub_draft(&mut draft);
    caps.budget.check()?;
    Ok(draft)
}

fn read_unscrubbed(raw: &[u8], caps: &MailCaps) -> Result<EmailDraft, IntakeError> {
    caps.budget.check()?;
    let fixed = headers::normalize_headers(raw, &caps.budget)?;
    let raw: &[u8] = &fixed;
    caps.budget.check()?;
    let parsed = MessageParser::default()
        .parse_bounded(raw, caps.max_parts, caps.max_header_fields)
        .map_err(|e| {
            IntakeError::TooComplex(match e {
                LimitExceeded::Parts(n) => {
                    format!("message: more than the limit of {n} MIME parts")
                }
                LimitExceeded::HeaderFields(n) => {
                    format!("message: more than the limit of {n} header fields")
                }
            })
        })?;
    caps.budget.check()?;
    match parsed {
        Some(message) => Ok(extract(&message)),
        // No header block at all: the whole input is body text.
        None => Ok(EmailDraft {
            from: None,
            subject: None,
            message: MessageDraft {
                body: super::charset::utf8_or_legacy(raw.to_vec()),
                format: BodyFormat::Text,
            },
            attachments: Vec::new(),
            message_id: None,
            in_reply_to: None,
            references: Vec::new(),
            auto_reply: false,
            bounce: false,
            returned_ids: Vec::new(),
            priority: None,
            dropped: Vec::new(),
        }),
    }
}

/// RFC 5322 §2.2: `field-name ":"` with printable ASCII other than colon.
fn starts_with_header_field(raw: &[u8]) -> bool {
    let mut lines = raw
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(mut first) = lines.by_ref().find(|l| !l.is_empty()) else {
        return false;
    };
    if first.starts_with(b"From ") {
        match lines.next() {
            Some(next) => first = next,
            None => return false,
        }
    }
    match first.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => first[..colon].iter().all(|&b| (33..=126).contains(&b)),
        _ => false,
    }
}

/// The draft of a parsed message: the passes beside this module put
/// together (caps are applied by the caller).
fn extract<'a>(message: &'a Message<'a>) -> EmailDraft {
    let from = fields::mailbox(message);
    let subject = message.header("Subject").map(|_| {
        message
            .subject()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    });
    let (body, attachments) = parts::body_and_attachments(message);

    let bounce = loops::is_bounce(message, from.as_ref(), subject.as_deref());
    EmailDraft {
        auto_reply: bounce || loops::is_auto_reply(message),
        returned_ids: if bounce {
            loops::returned_ids(message)
        } else {
            Vec::new()
        },
        bounce,
        dropped: Vec::new(),
        priority: fields::priority(message),
        message_id: fields::first_header(message, "Message-ID")
            .map(fields::ids)
            .and_then(|v| v.into_iter().next()),
        in_reply_to: fields::first_header(message, "In-Reply-To")
            .map(fields::ids)
            .and_then(|v| v.into_iter().next()),
        references: fields::first_header(message, "References")
            .map(fields::ids)
            .unwrap_or_default(),
        from,
        subject,
        message: body,
        attachments,
    }
}

/// The mail corpus's expectation schema (`../shared/mail-corpus`), as
/// `oxidesk mail inspect --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The file inspected.
    pub file: String,
    /// Sender.
    pub from: Option<Mailbox>,
    /// Subject.
    pub subject: Option<String>,
    /// Body.
    pub body: String,
    /// `text` or `html`.
    pub body_format: &'static str,
    /// Attachments.
    pub attachments: Vec<InspectedAttachment>,
    /// Message-ID.
    pub message_id: Option<String>,
    /// In-Reply-To.
    pub in_reply_to: Option<String>,
    /// References.
    pub references: Vec<String>,
    /// Auto-reply.
    pub auto_reply: bool,
    /// Bounce.
    pub bounce: bool,
}

/// One attachment in an [`Inspection`].
#[derive(Debug, Clone, Serialize)]
pub struct InspectedAttachment {
    /// File name, `None` when none is declared.
    pub name: Option<String>,
    /// Media type.
    #[serde(rename = "type")]
    pub content_type: String,
    /// Decoded size.
    pub size: usize,
    /// Inline.
    pub inline: bool,
    /// Content-ID.
    pub content_id: Option<String>,
}

impl Inspection {
    /// Describes a parsed message.
    pub fn new(file: String, d: &EmailDraft) -> Self {
        Self {
            file,
            from: d.from.clone(),
            subject: d.subject.clone(),
            body: d.message.body.clone(),
            body_format: d.message.format.as_str(),
            attachments: d
                .attachments
                .iter()
                .map(|a| InspectedAttachment {
                    name: (!a.name.is_empty()).then(|| a.name.clone()),
                    content_type: a.content_type.clone(),
                    size: a.data.len(),
                    inline: a.inline,
                    content_id: a.content_id.clone(),
                })
                .collect(),
            message_id: d.message_id.clone(),
            in_reply_to: d.in_reply_to.clone(),
            references: d.references.clone(),
            auto_reply: d.auto_reply,
            bounce: d.bounce,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: IntakeLimits = IntakeLimits {
        max_attachment_bytes: 1024,
        max_attachments: 8,
    };

    /// Parses `lines` joined with CRLF; the other test modules use it too.
    pub(super) fn parse(lines: &[&str]) -> EmailDraft {
        parse_email(lines.join("\r\n").as_bytes(), &LIMITS).unwrap()
    }

    /// A multipart message with one text part and `files` (name, size).
    fn with_files(files: &[(&str, usize)]) -> Vec<u8> {
        let mut m = String::from(
            "From: a@example.com\r\nSubject: files\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nsee files\r\n",
        );
        for (name, size) in files {
            m.push_str(&format!(
                "--b\r\nContent-Type: application/octet-stream\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{}\r\n",
                "x".repeat(*size)
            ));
        }
        m.push_str("--b--\r\n");
        m.into_bytes()
    }

    #[test]
    fn oversize_parts_are_left_out_and_recorded_not_refused() {
        let limits = IntakeLimits {
            max_attachment_bytes: 100,
            max_attachments: 2,
        };
        let raw = with_files(&[
            ("a.bin", 10),
            ("big.bin", 500),
            ("b.bin", 20),
            ("c.bin", 30),
        ]);
        let d = parse_email(&raw, &limits).unwrap();
        let kept: Vec<&str> = d.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(kept, ["a.bin", "b.bin"]);
        assert_eq!(d.dropped.len(), 2, "{:?}", d.dropped);
        assert_eq!(
            (d.dropped[0].name.as_str(), d.dropped[0].size),
            ("big.bin", 500)
        );
        assert!(
            d.dropped[0].reason.contains("100 bytes"),
            "{:?}",
            d.dropped[0]
        );
        assert_eq!(
            (d.dropped[1].name.as_str(), d.dropped[1].size),
            ("c.bin", 30)
        );
        assert!(
            d.dropped[1].reason.contains("2 attachments"),
            "{:?}",
            d.dropped[1]
        );
        assert_eq!(d.message.body.trim(), "see files");
    }

    #[test]
    fn not_a_message() {
        assert!(parse_email(b"", &LIMITS).is_err());
        assert!(parse_email(b"this is not an email message at all", &LIMITS).is_err());
        assert!(parse_email(b"no colon here\r\n\r\nbody", &LIMITS).is_err());
        assert!(parse_email(b"From a@b Thu Mar 5 10:00:00 2026\nFrom: a@b\n\nx", &LIMITS).is_ok());
    }

    #[test]
    fn a_fuzzed_message_that_tripped_a_parser_debug_assertion_parses() {
        // Found by the `email` fuzz target: mail-parser's "Invalid part
        // ID" debug assertion (vendor/mail-parser/PATCHES.md, 3).
        let raw = include_bytes!("../../../fuzz/regressions/email-part-id-debug-assert.eml");
        let _ = parse_email(raw, &LIMITS);
        let _ = inspect_email(raw);
    }

    #[test]
    fn a_fuzzed_message_whose_parts_are_listed_twice_is_walked_once() {
        // Found by the `email` fuzz target (13 KB): the parser lists parts
        // under several multiparts, and the walk for attachments, bounded
        // only by depth, ran for hours. Each part is now visited once.
        let raw = include_bytes!("../../../fuzz/regressions/email-shared-parts-walk.eml");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = parse_email(raw, &LIMITS);
            let _ = tx.send(());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the message is parsed within a minute (it was hours)");
    }
}
