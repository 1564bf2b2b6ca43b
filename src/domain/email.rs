//! The email use case, shared by `POST /api/tickets.email` and `oxidesk
//! pipe`: a raw message becomes a new ticket, an entry of the ticket it
//! answers, a duplicate, or a logged bounce (API.md, Email).

use crate::domain::notify::{MailKind, QueuedMail};
use std::io::Write;
use std::net::IpAddr;

use jiff::Timestamp;

use super::DomainError;
use super::catalog::Catalog;
use super::ids::EmailAddress;
use super::notify::{MailEvent, MailFacts, MailRules};
use super::tickets::{Assembly, assemble, default_priority};
use super::views::{EntryKind, Source};
use crate::config::Channel;
use crate::intake::IntakeError;
use crate::intake::email::{Budget, EmailDraft, MailCaps, PriorityHint, parse_email_with};
use crate::storage::{
    DroppedPart, EmailOutcome, NewEmail, NewEntry, Store, StoreError, ThreadQuery,
};

/// Facts about the delivery that are not in the message.
#[derive(Debug, Clone)]
pub struct EmailContext {
    /// The HTTP client's address; `None` for the local pipe.
    pub client_ip: Option<IpAddr>,
    /// When it arrived.
    pub now: Timestamp,
}

/// Why an email was not filed.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// Email intake is switched off (`email.enabled = false`).
    #[error("email intake is disabled")]
    Disabled,
    /// The bytes are not a usable message.
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// The message breaks a rule (no sender, banned sender).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Storage failed: retry later.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `[#123456]` in a subject.
fn subject_number(subject: &str) -> Option<String> {
    let start = subject.find("[#")? + 2;
    let len = subject[start..].find(']')?;
    let n = subject[start..start + len].trim();
    (!n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .then(|| n.to_string())
}

/// Parses and checks a message; cheap enough for the async threads only
/// for small messages (callers use `spawn_blocking` for large ones).
pub fn prepare_email(
    catalog: &Catalog,
    raw: &[u8],
    ctx: &EmailContext,
) -> Result<PreparedEmail, EmailError> {
    if !catalog.email.enabled {
        return Err(EmailError::Disabled);
    }
    let caps = MailCaps {
        max_parts: catalog.email.max_parts,
        max_header_fields: catalog.email.max_header_fields,
        budget: Budget::starting_now(std::time::Duration::from_millis(
            catalog.email.parse_timeout_ms,
        )),
    };
    let draft: EmailDraft = parse_email_with(raw, &catalog.intake_limits, &caps)?;
    let from = draft.from.clone().ok_or_else(|| DomainError::Missing {
        field: "from".into(),
        label: "The From header".into(),
    })?;
    let address = EmailAddress::parse(&from.email).map_err(|m| DomainError::Invalid {
        field: "from".into(),
        message: m,
    })?;
    if catalog.is_banned(address.as_str(), Channel::Email) {
        return Err(DomainError::Denied {
            field: "from".into(),
        }
        .into());
    }
    // Mail is not refused for a long subject or sender name (the sender
    // cannot shorten them); they are cut to the limits JSON and XML are
    // held to, as osTicket cuts them to its columns.
    let limits = &catalog.field_limits;
    let name = cut_chars(
        from.name
            .clone()
            .unwrap_or_else(|| address.local_part().to_string()),
        limits.max_name_chars,
    );
    let subject = cut_chars(
        draft
            .subject
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "[No Subject]".to_string()),
        limits.max_subject_chars,
    );
    // Email names no topic: the default one, when it is active.
    let topic = catalog.topic(None, "topicId").ok().flatten();
    let hinted = if catalog.email.use_email_priority {
        draft.priority.and_then(|p| {
            catalog.priority(match p {
                PriorityHint::Low => catalog.email.priority_low_id,
                PriorityHint::Normal => catalog.email.priority_normal_id,
                PriorityHint::High => catalog.email.priority_high_id,
                PriorityHint::Urgent => catalog.email.priority_urgent_id,
            })
        })
    } else {
        None
    };
    let priority = hinted.unwrap_or_else(|| default_priority(catalog, topic));
    let mut thread_ids: Vec<String> = Vec::new();
    for id in draft
        .in_reply_to
        .iter()
        .chain(draft.references.iter())
        .chain(draft.returned_ids.iter())
    {
        if !thread_ids.contains(id) && Some(id) != draft.message_id.as_ref() {
            thread_ids.push(id.clone());
        }
    }
    // Automatic mail (auto-replies, bounces) never queues mail: no
    // autoresponse (two robots would mail each other forever) and no
    // staff alert (an alert recipient's bounce would alert again, and
    // bounce again).
    let automatic = draft.auto_reply || draft.bounce;
    let attachments = super::tickets::stored_attachments(draft.attachments);
    let raw_compressed = deflate_raw(raw)?;
    let ticket = assemble(
        catalog,
        Assembly {
            user_email: address.clone(),
            user_name: name.clone(),
            subject: subject.clone(),
            source: Source::Email,
            priority,
            topic,
            ip: ctx.client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            now: ctx.now,
            alert: true,
            autorespond: true,
            automatic,
            fields: Vec::new(),
            entry: NewEntry {
                kind: EntryKind::Message,
                format: draft.message.format,
                body: draft.message.body,
                from_name: name,
                from_email: address.clone(),
                message_id: draft.message_id.clone(),
                auto_reply: draft.auto_reply,
                bounce: draft.bounce,
                attachments,
                dropped: draft
                    .dropped
                    .into_iter()
                    .map(|d| DroppedPart {
                        name: d.name,
                        size: d.size,
                        reason: d.reason,
                    })
                    .collect(),
                agent: None,
            },
        },
    );
    Ok(PreparedEmail {
        email: NewEmail {
            message_id: draft.message_id,
            query: ThreadQuery {
                thread_ids,
                // From the whole subject: a long one was cut above.
                subject_number: draft.subject.as_deref().and_then(subject_number),
                from: address,
            },
            thread: None,
            is_bounce: draft.bounce,
            ticket,
            raw_compressed,
        },
        automatic,
    })
}

/// A parsed and checked email, ready to file.
#[derive(Debug, Clone)]
pub struct PreparedEmail {
    /// What to store.
    pub email: NewEmail,
    /// A bounce or an auto-reply.
    automatic: bool,
}

/// Files a prepared email; durable when it returns. The ticket it
/// continues is found first, so that the mail a reply queues (the alert
/// to that ticket's department) is decided here, by the rules, and the
/// store only writes it.
pub async fn file_email(
    store: &dyn Store,
    rules: &MailRules,
    prepared: PreparedEmail,
) -> Result<EmailOutcome, EmailError> {
    let PreparedEmail {
        mut email,
        automatic,
    } = prepared;
    let bounce = email.is_bounce;
    if let Some(thread) = store.find_thread(email.query.clone()).await? {
        // An answer: the quoted history goes (the raw message keeps it).
        let entry = &mut email.ticket.entry;
        entry.body = super::quotes::strip_quoted(&entry.body, entry.format, &rules.reply_separator);
        email.ticket.mail = match agent_response(store, &email, &thread, automatic).await? {
            // An agent's answer (typically to a staff alert) is their
            // response, mailed on to the ticket's user, as osTicket does.
            Some((agent, user_email)) => {
                let entry = &mut email.ticket.entry;
                entry.kind = EntryKind::Response;
                entry.agent = Some(agent.id);
                entry.from_name = agent.name;
                vec![QueuedMail {
                    kind: MailKind::Response,
                    event: MailEvent::Reply,
                    recipients: vec![user_email],
                    cap: None,
                }]
            }
            None => rules.plan(&MailFacts {
                event: MailEvent::Reply,
                automatic,
                autorespond: false,
                alert: true,
                department: thread.department,
                user_email: email.ticket.user_email.as_str(),
            }),
        };
        email.thread = Some(thread);
    }
    // The write checks the lookup still holds: a message of the thread
    // that committed meanwhile makes it `Stale` (nothing written). That
    // race is rare, so the message is refused as a fault of ours (503,
    // pipe 75) and comes back, rather than copied here for a retry.
    let outcome = match store.ingest_email(email).await {
        Err(StoreError::Stale) => {
            return Err(
                StoreError::Busy("the message's thread changed while it was filed".into()).into(),
            );
        }
        other => other?,
    };
    if bounce && outcome == EmailOutcome::BounceLogged {
        tracing::info!("bounce names no known message: logged, no ticket opened");
    }
    Ok(outcome)
}

/// The agent (and the ticket user's address) when an email that joins a
/// ticket comes from an active agent who may see that ticket and is not
/// its user; automatic mail from an agent's address (their out-of-office)
/// stays a message.
async fn agent_response(
    store: &dyn Store,
    email: &NewEmail,
    thread: &crate::storage::ThreadRef,
    automatic: bool,
) -> Result<Option<(crate::domain::staff::Agent, String)>, StoreError> {
    if automatic {
        return Ok(None);
    }
    let Some(agent) = store
        .agent_for_mail(email.ticket.user_email.as_str().to_string())
        .await?
    else {
        return Ok(None);
    };
    let Some(view) = store.load_ticket(thread.number.clone()).await? else {
        return Ok(None);
    };
    let assignee = view
        .work
        .assignee
        .as_ref()
        .map(|a| crate::domain::staff::AgentId(a.id));
    let may_see = agent.may_see(view.department.as_ref().map(|d| d.id), assignee);
    if !may_see || view.user.email.eq_ignore_ascii_case(&agent.email) {
        return Ok(None);
    }
    Ok(Some((agent, view.user.email)))
}

/// `text` cut to at most `max` characters.
fn cut_chars(mut text: String, max: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
    }
    text
}

/// Raw messages up to this size are kept in stored (uncompressed)
/// DEFLATE blocks: setting up a compressor (its zeroed hash tables) cost
/// more than the few hundred bytes it saved on a small message, an
/// eighth of the CPU of filing one (issue 17). Readers inflate both.
const DEFLATE_FROM_BYTES: usize = 8 * 1024;

/// The raw message as a raw DEFLATE stream (`raw_messages.compressed`).
fn deflate_raw(raw: &[u8]) -> Result<Vec<u8>, StoreError> {
    if raw.len() < DEFLATE_FROM_BYTES {
        return Ok(deflate_stored(raw));
    }
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    deflate
        .write_all(raw)
        .and_then(|()| deflate.flush())
        .map_err(|e| StoreError::other(format!("compressing the raw message: {e}")))?;
    deflate
        .finish()
        .map_err(|e| StoreError::other(format!("compressing the raw message: {e}")))
}

/// `data` as DEFLATE stored blocks (RFC 1951, 3.2.4): per block of at
/// most 65,535 bytes, a header byte (BFINAL on the last, BTYPE 00), LEN
/// and its complement, then the bytes.
fn deflate_stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5 * (data.len() / 65_535 + 1));
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        // An empty stream is one empty final block.
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        return out;
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        out.push(u8::from(last));
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(stream: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(stream)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn raw_messages_inflate_back_whatever_their_size() {
        for len in [0, 1, 1000, 8 * 1024 - 1, 8 * 1024, 65_535, 65_536, 200_000] {
            let raw: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let stored = deflate_raw(&raw).unwrap();
            assert_eq!(inflate(&stored), raw, "{len} bytes");
            if len < DEFLATE_FROM_BYTES {
                assert_eq!(stored.len(), len + 5, "one stored block");
            }
        }
        // Stored blocks of more than one block, directly.
        let big = vec![b'x'; 150_000];
        let stored = deflate_stored(&big);
        assert_eq!(stored.len(), big.len() + 3 * 5);
        assert_eq!(inflate(&stored), big);
    }

    #[test]
    fn subject_numbers() {
        assert_eq!(
            subject_number("Re: [#123456] Printer").as_deref(),
            Some("123456")
        );
        assert_eq!(subject_number("[#HD-001]").as_deref(), Some("HD-001"));
        assert_eq!(subject_number("Re: [# ] x"), None);
        assert_eq!(subject_number("no number"), None);
        assert_eq!(subject_number("[#12 34]"), None);
    }
}
