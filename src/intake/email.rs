//! RFC 5322 messages (`POST /api/tickets.email`, `oxidesk pipe`).
//!
//! MIME parsing, transfer decoding, RFC 2047/2231 and charsets are
//! `mail-parser`'s (Stalwart). This module decides what a helpdesk takes
//! from a message: the sender, the subject, the body (the html alternative
//! when there is one), the attachments (every other leaf part), the
//! threading ids, and the loop-protection flags (auto-reply, bounce).

use std::collections::HashSet;

use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use serde::Serialize;

use super::{AttachmentDraft, BodyFormat, IntakeError, IntakeLimits, MessageDraft, html};

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

/// Parses a message for intake: it must start with a header field (after
/// an optional mbox `From ` line), and the attachment caps apply.
pub fn parse_email(raw: &[u8], limits: &IntakeLimits) -> Result<EmailDraft, IntakeError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(IntakeError::EmptyBody);
    }
    if !starts_with_header_field(raw) {
        return Err(IntakeError::NotATicket(
            "not an RFC 5322 message: it does not start with a header field".into(),
        ));
    }
    let mut draft = inspect_email(raw)?;
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
/// inspect` and the corpus); never panics.
pub fn inspect_email(raw: &[u8]) -> Result<EmailDraft, IntakeError> {
    let fixed = normalize_headers(raw);
    let raw: &[u8] = &fixed;
    match MessageParser::default().parse(raw) {
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

/// Repairs header blocks before MIME parsing, where real mail breaks
/// the rules in ways the parser reads differently from other clients:
///
/// * raw 8-bit header text (not RFC 2047, not UTF-8) is decoded with the
///   message's first declared charset (else windows-1252) and re-encoded
///   as UTF-8 (RFC 6532); left alone it would become U+FFFD;
/// * a repeated single-valued field (From, Subject, Content-Type, …) keeps
///   its first occurrence, as most clients read it (the parser keeps the
///   last);
/// * a B-encoded word without its `=` padding gets it back.
///
/// Only header lines of the message and of its MIME parts are touched;
/// bodies keep their bytes. Nothing is copied when nothing changes.
fn normalize_headers(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    // Most messages need nothing: a scan decides before anything is copied.
    if normalize_pass(raw, false).is_none() {
        return std::borrow::Cow::Borrowed(raw);
    }
    match normalize_pass(raw, true) {
        Some(fixed) => std::borrow::Cow::Owned(fixed),
        None => std::borrow::Cow::Borrowed(raw),
    }
}

fn normalize_pass(raw: &[u8], write: bool) -> Option<Vec<u8>> {
    const SINGLE: &[&[u8]] = &[
        b"from",
        b"subject",
        b"message-id",
        b"in-reply-to",
        b"references",
        b"content-type",
        b"content-transfer-encoding",
        b"content-disposition",
        b"content-id",
    ];
    let is_utf8 = std::str::from_utf8(raw).is_ok();
    let encoding = if is_utf8 {
        encoding_rs::WINDOWS_1252
    } else {
        declared_charset(raw)
            .and_then(|c| super::charset::lookup(&c))
            .filter(|e| *e != encoding_rs::UTF_8)
            .unwrap_or(encoding_rs::WINDOWS_1252)
    };
    let mut out = if write {
        Vec::with_capacity(raw.len() + 64)
    } else {
        Vec::new()
    };
    let mut changed = false;
    let mut in_headers = true;
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut dropping = false;
    let mut boundaries: Vec<Vec<u8>> = Vec::new();
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if !in_headers {
            if content.starts_with(b"--") && boundaries.iter().any(|b| content[2..].starts_with(b))
            {
                in_headers = true;
                seen.clear();
                dropping = false;
            }
            if write {
                out.extend_from_slice(line);
            }
            continue;
        }
        if content.is_empty() {
            in_headers = false;
            if write {
                out.extend_from_slice(line);
            }
            continue;
        }
        let continuation = content.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            dropping = false;
            if let Some(colon) = content.iter().position(|&b| b == b':') {
                let name = content[..colon].trim_ascii().to_ascii_lowercase();
                if SINGLE.contains(&name.as_slice()) {
                    if seen.contains(&name) {
                        dropping = true;
                    } else {
                        seen.push(name);
                    }
                }
            }
        }
        if dropping {
            changed = true;
            continue;
        }
        if let Some(b) = boundary_param(content) {
            boundaries.push(b);
        }
        let has_encoded_word = content.windows(2).any(|w| w == b"=?");
        if has_encoded_word {
            if let Some(fixed) = pad_b_words(line) {
                if write {
                    out.extend_from_slice(&fixed);
                }
                changed = true;
                continue;
            }
        } else if !is_utf8 && std::str::from_utf8(line).is_err() {
            // Encoded words carry their own charset (even around stray
            // 8-bit bytes): those lines are left to the MIME parser.
            let (text, _, _) = encoding.decode(line);
            if write {
                out.extend_from_slice(text.as_bytes());
            }
            changed = true;
            continue;
        }
        if write {
            out.extend_from_slice(line);
        }
    }
    changed.then_some(out)
}

/// `=?cs?B?eHB0bw?=` → `=?cs?B?eHB0bw==?=`; `None` when nothing needed it.
fn pad_b_words(line: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(line.len() + 4);
    let mut changed = false;
    let mut i = 0;
    while i < line.len() {
        if line[i..].starts_with(b"=?")
            && let Some(q1) = line[i + 2..]
                .iter()
                .position(|&b| b == b'?')
                .map(|p| i + 2 + p)
            && line
                .get(q1 + 1)
                .is_some_and(|b| b.eq_ignore_ascii_case(&b'b'))
            && line.get(q1 + 2) == Some(&b'?')
            && let Some(end) = line[q1 + 3..]
                .windows(2)
                .position(|w| w == b"?=")
                .map(|p| q1 + 3 + p)
        {
            let data = &line[q1 + 3..end];
            out.extend_from_slice(&line[i..q1 + 3]);
            out.extend_from_slice(data);
            let pad = (4 - data.len() % 4) % 4;
            if pad > 0 && pad < 3 && !data.contains(&b'=') {
                out.extend(std::iter::repeat_n(b'=', pad));
                changed = true;
            }
            out.extend_from_slice(b"?=");
            i = end + 2;
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    changed.then_some(out)
}

/// `boundary=…` on a header line, quoted or not.
fn boundary_param(line: &[u8]) -> Option<Vec<u8>> {
    let lower = line.to_ascii_lowercase();
    let at = lower.windows(9).position(|w| w == b"boundary=")? + 9;
    let rest = &line[at..];
    let value: Vec<u8> = if rest.first() == Some(&b'"') {
        rest[1..]
            .iter()
            .take_while(|&&b| b != b'"')
            .copied()
            .collect()
    } else {
        rest.iter()
            .take_while(|&&b| !b.is_ascii_whitespace() && b != b';')
            .copied()
            .collect()
    };
    (!value.is_empty()).then_some(value)
}

/// The first `charset=` parameter in the message.
fn declared_charset(raw: &[u8]) -> Option<String> {
    let lower = raw.to_ascii_lowercase();
    let at = lower.windows(8).position(|w| w == b"charset=")? + 8;
    let value: String = raw[at..]
        .iter()
        .skip_while(|&&b| b == b'"')
        .take_while(|&&b| {
            b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':' || b == b'.'
        })
        .map(|&b| char::from(b))
        .collect();
    (!value.is_empty()).then_some(value)
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

fn strip_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_string())
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => strip_id(t).into_iter().collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|t| strip_id(t)).collect(),
        _ => Vec::new(),
    }
}

/// The first top-level header of that name: with duplicated From,
/// Subject or References, the first one counts (the corpus and most
/// parsers agree; mail-parser's accessors return the last).
fn first_header<'a>(message: &'a Message<'a>, name: &str) -> Option<&'a HeaderValue<'a>> {
    message
        .headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| &h.value)
}

fn raw_header<'a>(message: &'a Message<'a>, name: &'a str) -> Option<&'a str> {
    message.header_raw(name).map(str::trim)
}

fn mailbox<'a>(message: &'a Message<'a>) -> Option<Mailbox> {
    let addr = match first_header(message, "From")? {
        HeaderValue::Address(a) => a.first()?,
        _ => message.from()?.first()?,
    };
    let email = addr.address()?.trim().to_string();
    if email.is_empty() {
        return None;
    }
    // A comment after a display name is not part of it (RFC 5322 §3.2.2);
    // with no phrase, the comment is the name (`addr (Name)`).
    let name = addr
        .name()
        .map(|n| match n.find('(') {
            Some(i) if !n[..i].trim().is_empty() => n[..i].to_string(),
            _ => n.to_string(),
        })
        .map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|n| !n.is_empty());
    Some(Mailbox { name, email })
}

fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => {
            let sub = ct.subtype().unwrap_or("");
            if sub.is_empty() {
                ct.ctype().to_ascii_lowercase()
            } else {
                format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase()
            }
        }
        None => match part.body {
            PartType::Message(_) => "message/rfc822".into(),
            PartType::Html(_) => "text/html".into(),
            PartType::Text(_) => "text/plain".into(),
            _ => "application/octet-stream".into(),
        },
    }
}

/// Leaf parts in message order (nested messages are leaves). Text
/// children of a multipart/alternative are versions of the body, never
/// attachments (RFC 2046 §5.1.4), whichever one is shown.
fn leaves(message: &Message<'_>, id: usize, out: &mut Vec<usize>, depth: usize) {
    let Some(part) = message.parts.get(id) else {
        return;
    };
    match &part.body {
        PartType::Multipart(children) if depth < 64 => {
            let alternative = part
                .content_type()
                .and_then(|ct| ct.subtype())
                .is_some_and(|s| s.eq_ignore_ascii_case("alternative"));
            for &c in children {
                let child = c as usize;
                if alternative
                    && message
                        .parts
                        .get(child)
                        .is_some_and(|p| matches!(p.body, PartType::Text(_) | PartType::Html(_)))
                {
                    continue;
                }
                leaves(message, child, out, depth + 1);
            }
        }
        PartType::Multipart(_) => {}
        _ => out.push(id),
    }
}

/// The decoded bytes of a part as sent (for text attachments, which the
/// parser converts to UTF-8: a file is kept byte for byte). uuencoded
/// parts (`x-uuencode`, which the parser leaves alone) are decoded here.
fn part_bytes(message: &Message<'_>, part: &MessagePart<'_>) -> Vec<u8> {
    let raw = message
        .raw_message()
        .get(part.offset_body as usize..part.offset_end as usize);
    let cte = part
        .content_transfer_encoding()
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if matches!(cte.as_str(), "x-uuencode" | "uuencode" | "x-uue")
        && let Some((_, data)) = raw.and_then(|r| uudecode(r).into_iter().next())
    {
        return data;
    }
    if matches!(part.body, PartType::Text(_) | PartType::Html(_))
        && let Some(raw) = raw
    {
        let decoded = match part.encoding {
            mail_parser::Encoding::Base64 => mail_parser::decoders::base64::base64_decode(raw),
            mail_parser::Encoding::QuotedPrintable => {
                mail_parser::decoders::quoted_printable::quoted_printable_decode(raw)
            }
            mail_parser::Encoding::None => Some(raw.to_vec()),
        };
        if let Some(d) = decoded {
            return d;
        }
    }
    part.contents().to_vec()
}

/// uuencoded files (`begin 644 name` … `end`): (name, bytes) for each
/// block that decodes. No maintained crate does this; it is 20 lines.
pub fn uudecode(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix(b"begin ") else {
            continue;
        };
        let rest = String::from_utf8_lossy(rest);
        let mut words = rest.trim().splitn(2, ' ');
        let mode_ok = words
            .next()
            .is_some_and(|m| !m.is_empty() && m.chars().all(|c| c.is_digit(8)));
        let name = words.next().unwrap_or("").trim().to_string();
        if !mode_ok {
            continue;
        }
        let mut data = Vec::new();
        let mut ok = false;
        for line in lines.by_ref() {
            if line == b"end" || line.starts_with(b"end ") {
                ok = true;
                break;
            }
            let Some((&first, body)) = line.split_first() else {
                continue;
            };
            let len = usize::from(first.wrapping_sub(b' ') & 0x3f);
            if len == 0 {
                continue;
            }
            let sextet = |b: u8| b.wrapping_sub(b' ') & 0x3f;
            let mut bytes = Vec::with_capacity(len + 2);
            for chunk in body.chunks(4) {
                let c: Vec<u8> = (0..4)
                    .map(|i| sextet(*chunk.get(i).unwrap_or(&b'`')))
                    .collect();
                bytes.push((c[0] << 2) | (c[1] >> 4));
                bytes.push((c[1] << 4) | (c[2] >> 2));
                bytes.push((c[2] << 6) | c[3]);
            }
            bytes.truncate(len);
            data.extend(bytes);
        }
        if ok {
            files.push((name, data));
        }
    }
    files
}

fn is_report_of(message: &Message<'_>, report_type: &str) -> bool {
    message.root_part().content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|r| r.eq_ignore_ascii_case(report_type))
    })
}

const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail",
    "undeliverable",
    "delivery status notification",
    "delivery failure",
    "delivery has failed",
    "failure notice",
    "returned mail",
    "mail delivery failed",
    "mail delivery failure",
    "delivery notification",
    "non remis",
    "nondeliverable",
    "non-deliverable",
    "could not be delivered",
    "delivery problem",
    "warning: could not send message",
    "mail system error",
    "message delayed",
    "delayed mail",
    "delivery delayed",
    "メールエラー通知",
    "配信できません",
    "配送できません",
];

/// Subjects of vacation and out-of-office replies.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "auto reply:",
    "automatic reply:",
    "auto-reply:",
    "autoreply:",
    "auto response:",
    "out of office:",
    "out of office reply",
    "abwesenheitsnotiz",
    "réponse automatique",
];

fn is_bounce(message: &Message<'_>, from: Option<&Mailbox>, subject: Option<&str>) -> bool {
    if is_report_of(message, "delivery-status") {
        return true;
    }
    // RFC 5321 §4.5.5: notifications are sent with a null reverse-path,
    // but so are out-of-office replies and read receipts.
    if raw_header(message, "Return-Path").is_some_and(|r| r.trim_matches([' ', '\t']) == "<>")
        && !is_vacation_reply(message)
        && !is_report_of(message, "disposition-notification")
        && !is_report_of(message, "feedback-report")
    {
        return true;
    }
    let local = from.map(|m| {
        m.email
            .split('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    });
    let from_daemon = local
        .as_deref()
        .is_some_and(|l| l == "mailer-daemon" || l == "postmaster" || l == "mail-daemon")
        || (from.is_none()
            && raw_header(message, "From")
                .is_some_and(|f| f.to_ascii_lowercase().contains("mailer-daemon")));
    let subject = subject.unwrap_or_default().to_lowercase();
    let bounce_subject = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    // A message from MAILER-DAEMON is a bounce; postmaster only with a
    // bounce subject (humans write from postmaster too).
    (from_daemon && (local.as_deref() != Some("postmaster") || bounce_subject))
        || (bounce_subject
            && message
                .parts
                .iter()
                .any(|p| p.message().is_some() || content_type(p) == "text/rfc822-headers"))
}

/// Out-of-office and inbox-rule replies (which also use a null
/// Return-Path, but are not bounces).
fn is_vacation_reply(message: &Message<'_>) -> bool {
    let subject = message.subject().unwrap_or_default().trim().to_lowercase();
    AUTO_REPLY_SUBJECTS.iter().any(|s| subject.starts_with(s))
        || raw_header(message, "X-MS-Exchange-Inbox-Rules-Loop").is_some()
        || raw_header(message, "Auto-Submitted")
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("auto-replied"))
}

fn is_auto_reply(message: &Message<'_>) -> bool {
    if raw_header(message, "Auto-Submitted").is_some_and(|v| {
        let v = v.split(';').next().unwrap_or_default().trim();
        !v.is_empty() && !v.eq_ignore_ascii_case("no")
    }) {
        return true;
    }
    if raw_header(message, "Precedence").is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "bulk" | "junk" | "list" | "auto_reply" | "auto-reply"
        )
    }) {
        return true;
    }
    for h in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autogenerated",
        "X-Auto-Response",
    ] {
        if raw_header(message, h).is_some_and(|v| !v.eq_ignore_ascii_case("no")) {
            return true;
        }
    }
    // ARF abuse reports are machine-made (not delivery failures).
    if is_report_of(message, "feedback-report") {
        return true;
    }
    let subject = message.subject().unwrap_or_default().trim().to_lowercase();
    if AUTO_REPLY_SUBJECTS.iter().any(|s| subject.starts_with(s)) {
        return true;
    }
    // Exchange marks replies made by inbox rules and out-of-office.
    if raw_header(message, "X-MS-Exchange-Inbox-Rules-Loop").is_some()
        || raw_header(message, "X-MS-Exchange-Generated-Message-Source").is_some()
    {
        return true;
    }
    if raw_header(message, "X-Auto-Response-Suppress").is_some_and(|v| {
        let v = v.to_ascii_lowercase();
        v.contains("all") || v.contains("oof") || v.contains("autoreply")
    }) && raw_header(message, "In-Reply-To").is_some()
    {
        return true;
    }
    false
}

fn priority(message: &Message<'_>) -> Option<PriorityHint> {
    if let Some(v) = raw_header(message, "X-Priority") {
        let digit = v.chars().find(|c| c.is_ascii_digit())?;
        return Some(match digit {
            '1' | '2' => PriorityHint::High,
            '3' | '4' => PriorityHint::Normal,
            _ => PriorityHint::Low,
        });
    }
    for h in ["Importance", "Priority"] {
        if let Some(v) = raw_header(message, h) {
            return match v.to_ascii_lowercase().as_str() {
                "high" => Some(PriorityHint::High),
                "urgent" | "emergency" => Some(PriorityHint::Urgent),
                "normal" | "medium" => Some(PriorityHint::Normal),
                "low" | "non-urgent" => Some(PriorityHint::Low),
                _ => None,
            };
        }
    }
    None
}

/// Message-IDs of the messages a bounce returns (message/rfc822 and
/// text/rfc822-headers parts).
fn returned_ids(message: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for part in &message.parts {
        if let Some(inner) = part.message() {
            out.extend(inner.message_id().and_then(strip_id));
        } else if content_type(part) == "text/rfc822-headers" {
            // RFC 6522 §4: a header block, often with no blank line after
            // it (the part ends where the headers do), which the parser
            // would not take for a complete header section.
            let mut block = part.contents().to_vec();
            block.extend_from_slice(b"\r\n\r\n");
            if let Some(headers) = MessageParser::default().parse(&block) {
                out.extend(headers.message_id().and_then(strip_id));
            }
        }
    }
    out
}

fn extract<'a>(message: &'a Message<'a>) -> EmailDraft {
    let from = mailbox(message);
    let subject = message.header("Subject").map(|_| {
        message
            .subject()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    });

    // The body: the html alternative when one exists, else the text part
    // (API.md: rich text on).
    // A text part that declares a file name and is not marked inline is
    // a file (McAfee's "deliveryproblems.txt"), not the body.
    let is_named_file = |i: usize| {
        message.parts.get(i).is_some_and(|p| {
            p.attachment_name().is_some()
                && !p
                    .content_disposition()
                    .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"))
        })
    };
    let html_ids: Vec<usize> = message
        .html_body
        .iter()
        .map(|&i| i as usize)
        .filter(|&i| {
            matches!(
                message.parts.get(i).map(|p| &p.body),
                Some(PartType::Html(_))
            )
        })
        .filter(|&i| !is_named_file(i))
        .collect();
    let text_ids: Vec<usize> = message
        .text_body
        .iter()
        .map(|&i| i as usize)
        .filter(|&i| {
            matches!(
                message.parts.get(i).map(|p| &p.body),
                Some(PartType::Text(_))
            )
        })
        .filter(|&i| !is_named_file(i))
        .collect();
    let (format, body_ids) = if html_ids.is_empty() {
        (BodyFormat::Text, text_ids.clone())
    } else {
        (BodyFormat::Html, html_ids.clone())
    };
    let mut body = String::new();
    for &i in &body_ids {
        if let Some(text) = message.parts[i].text_contents() {
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(text);
        }
    }
    // Parts referenced by `cid:` from any html version are inline.
    let mut referenced_cids: HashSet<String> = HashSet::new();
    for part in &message.parts {
        if let PartType::Html(html) = &part.body {
            referenced_cids.extend(cid_references(html));
        }
    }
    let body = match format {
        BodyFormat::Html => html::sanitize(&body),
        BodyFormat::Text => body,
    };

    // Every other leaf is an attachment; the unchosen alternative is not.
    let skip: HashSet<usize> = html_ids.iter().chain(text_ids.iter()).copied().collect();
    let mut leaf_ids = Vec::new();
    leaves(message, 0, &mut leaf_ids, 0);
    let mut attachments = Vec::new();
    for id in leaf_ids {
        if skip.contains(&id) {
            continue;
        }
        let part = &message.parts[id];
        if id == 0
            && !matches!(
                part.body,
                PartType::Binary(_) | PartType::InlineBinary(_) | PartType::Message(_)
            )
        {
            continue;
        }
        let content_id = part.content_id().and_then(strip_id);
        let inline = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"))
            || content_id
                .as_ref()
                .is_some_and(|c| referenced_cids.contains(c));
        attachments.push(AttachmentDraft {
            name: part
                .attachment_name()
                .map(str::to_string)
                .unwrap_or_default(),
            content_type: content_type(part),
            data: part_bytes(message, part),
            inline,
            content_id,
        });
    }
    // TNEF (winmail.dat): Outlook's wrapper around the real files. A
    // stream with files is replaced by them; one without (a read receipt)
    // stays as it came.
    let mut unpacked = Vec::with_capacity(attachments.len());
    for att in attachments {
        let is_tnef = att.content_type == "application/ms-tnef"
            || att.content_type == "application/vnd.ms-tnef"
            || att.name.eq_ignore_ascii_case("winmail.dat");
        match is_tnef.then(|| super::tnef::unpack(&att.data)).flatten() {
            Some(files) if !files.is_empty() => {
                for (i, (name, data)) in files.into_iter().enumerate() {
                    unpacked.push(AttachmentDraft {
                        name: if name.is_empty() {
                            format!("winmail-{}.bin", i + 1)
                        } else {
                            name
                        },
                        content_type: "application/octet-stream".into(),
                        data,
                        inline: false,
                        content_id: None,
                    });
                }
            }
            _ => unpacked.push(att),
        }
    }
    let mut attachments = unpacked;
    // Outlook and Notes put uuencoded files inside a plain-text body.
    let mut body = body;
    if format == BodyFormat::Text && body.contains("\nbegin ") {
        let files = uudecode(body.as_bytes());
        if !files.is_empty() {
            body = strip_uuencoded(&body);
            for (name, data) in files {
                attachments.push(AttachmentDraft {
                    name,
                    content_type: "application/octet-stream".into(),
                    data,
                    inline: false,
                    content_id: None,
                });
            }
        }
    }

    let bounce = is_bounce(message, from.as_ref(), subject.as_deref());
    EmailDraft {
        auto_reply: bounce || is_auto_reply(message),
        returned_ids: if bounce {
            returned_ids(message)
        } else {
            Vec::new()
        },
        bounce,
        dropped: Vec::new(),
        priority: priority(message),
        message_id: first_header(message, "Message-ID")
            .map(ids)
            .and_then(|v| v.into_iter().next()),
        in_reply_to: first_header(message, "In-Reply-To")
            .map(ids)
            .and_then(|v| v.into_iter().next()),
        references: first_header(message, "References")
            .map(ids)
            .unwrap_or_default(),
        from,
        subject,
        message: MessageDraft { body, format },
        attachments,
    }
}

/// The body without its `begin`…`end` uuencoded blocks.
fn strip_uuencoded(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut skipping = false;
    for line in body.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if !skipping
            && bare.starts_with("begin ")
            && bare
                .split(' ')
                .nth(1)
                .is_some_and(|m| !m.is_empty() && m.chars().all(|c| c.is_digit(8)))
        {
            skipping = true;
            continue;
        }
        if skipping {
            if bare == "end" {
                skipping = false;
            }
            continue;
        }
        out.push_str(line);
    }
    out
}

/// `cid:` references in an html body (lower-case ids are kept as sent).
fn cid_references(html: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("cid:") {
        let start = from + pos + 4;
        let end = html[start..]
            .find(|c: char| c == '"' || c == '\'' || c == '>' || c.is_whitespace() || c == ')')
            .map_or(html.len(), |e| start + e);
        if let Some(id) = strip_id(&html[start..end]) {
            out.insert(id);
        }
        from = end.max(start);
    }
    out
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

    fn parse(lines: &[&str]) -> EmailDraft {
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
    fn a_returned_header_block_without_a_blank_line_still_names_its_message() {
        let d = parse(&[
            "From: MAILER-DAEMON@mx.example.net",
            "Subject: Undelivered Mail Returned to Sender",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"",
            "",
            "--b",
            "Content-Type: text/plain",
            "",
            "full",
            "--b",
            "Content-Type: text/rfc822-headers",
            "",
            "From: Support <support@example.com>",
            "Message-ID: <oxidesk.alert.1.abc@example.com>",
            "--b--",
        ]);
        assert!(d.bounce);
        assert_eq!(d.returned_ids, ["oxidesk.alert.1.abc@example.com"]);
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
    fn plain_message() {
        let d = parse(&[
            "From: =?UTF-8?B?Wm/DqyDDhW5nc3Ryw7Zt?= <zoe@example.com>",
            "Subject: Re: =?ISO-8859-1?Q?Stra=DFe?= and =?UTF-8?B?5pel5pys?= done",
            "Message-ID: <a@b>",
            "In-Reply-To: <x@y> <z@w>",
            "References: <r1@x>\r\n <r2@x>",
            "Content-Type: text/plain; charset=UTF-8",
            "",
            "Hello",
        ]);
        assert_eq!(d.from.unwrap().name.as_deref(), Some("Zoë Ångström"));
        assert_eq!(d.subject.as_deref(), Some("Re: Straße and 日本 done"));
        assert_eq!(d.message_id.as_deref(), Some("a@b"));
        assert_eq!(d.in_reply_to.as_deref(), Some("x@y"));
        assert_eq!(d.references, vec!["r1@x", "r2@x"]);
        assert_eq!(
            (d.message.body.trim(), d.message.format),
            ("Hello", BodyFormat::Text)
        );
        assert!(!d.auto_reply && !d.bounce && d.attachments.is_empty());
    }

    #[test]
    fn alternative_prefers_html_and_related_image_is_inline() {
        let d = parse(&[
            "From: a@example.com",
            "Content-Type: multipart/related; boundary=rel",
            "",
            "--rel",
            "Content-Type: multipart/alternative; boundary=alt",
            "",
            "--alt",
            "Content-Type: text/plain",
            "",
            "plain",
            "--alt",
            "Content-Type: text/html",
            "",
            "<p>html <img src=\"cid:logo@x\"><script>x</script></p>",
            "--alt--",
            "--rel",
            "Content-Type: image/png",
            "Content-ID: <logo@x>",
            "Content-Transfer-Encoding: base64",
            "",
            "AAEC",
            "--rel--",
        ]);
        assert_eq!(d.message.format, BodyFormat::Html);
        assert!(d.message.body.contains("cid:logo@x") && !d.message.body.contains("script"));
        assert_eq!(d.attachments.len(), 1);
        let a = &d.attachments[0];
        assert_eq!(
            (a.inline, a.content_id.as_deref(), a.data.len()),
            (true, Some("logo@x"), 3)
        );
    }

    #[test]
    fn loop_flags() {
        let auto = parse(&[
            "From: a@example.com",
            "Auto-Submitted: auto-replied",
            "",
            "x",
        ]);
        assert!(auto.auto_reply && !auto.bounce);
        let not_auto = parse(&["From: a@example.com", "Auto-Submitted: no", "", "x"]);
        assert!(!not_auto.auto_reply);
        let bulk = parse(&["From: a@example.com", "Precedence: bulk", "", "x"]);
        assert!(bulk.auto_reply);
        let bounce = parse(&[
            "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b",
            "",
            "--b",
            "Content-Type: text/plain",
            "",
            "failed",
            "--b",
            "Content-Type: message/rfc822",
            "",
            "From: x@example.com",
            "Message-ID: <orig@x>",
            "",
            "original",
            "--b--",
        ]);
        assert!(bounce.bounce && bounce.auto_reply);
        assert_eq!(bounce.returned_ids, vec!["orig@x"]);
        let null_path = parse(&["Return-Path: <>", "From: a@example.com", "", "x"]);
        assert!(null_path.bounce);
    }

    #[test]
    fn priority_headers() {
        let p = |h: &str| parse(&["From: a@example.com", h, "", "x"]).priority;
        assert_eq!(p("X-Priority: 1 (Highest)"), Some(PriorityHint::High));
        assert_eq!(p("X-Priority: 5"), Some(PriorityHint::Low));
        assert_eq!(p("Importance: high"), Some(PriorityHint::High));
        assert_eq!(p("Priority: urgent"), Some(PriorityHint::Urgent));
        assert_eq!(p("X-Other: 1"), None);
    }

    #[test]
    fn not_a_message() {
        assert!(parse_email(b"", &LIMITS).is_err());
        assert!(parse_email(b"this is not an email message at all", &LIMITS).is_err());
        assert!(parse_email(b"no colon here\r\n\r\nbody", &LIMITS).is_err());
        assert!(parse_email(b"From a@b Thu Mar 5 10:00:00 2026\nFrom: a@b\n\nx", &LIMITS).is_ok());
    }
}
