//! The email use case, shared by `POST /api/tickets.email` and `oxidesk
//! pipe`: a raw message becomes a new ticket, an entry of the ticket it
//! answers, a duplicate, or a logged bounce (API.md, Email).

use std::io::Write;
use std::net::IpAddr;

use jiff::Timestamp;

use super::DomainError;
use super::catalog::Catalog;
use super::fields::parse_email as parse_address;
use crate::config::Channel;
use crate::intake::IntakeError;
use crate::intake::email::{EmailDraft, PriorityHint, parse_email};
use crate::storage::{DroppedPart, EmailOutcome, NewEmail, NewEntry, NewTicket, Store, StoreError};

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
) -> Result<NewEmail, EmailError> {
    if !catalog.email.enabled {
        return Err(EmailError::Disabled);
    }
    let draft: EmailDraft = parse_email(raw, &catalog.intake_limits)?;
    let from = draft.from.clone().ok_or_else(|| DomainError::Missing {
        field: "from".into(),
        label: "The From header".into(),
    })?;
    let address = parse_address(&from.email).map_err(|m| DomainError::Invalid {
        field: "from".into(),
        message: m,
    })?;
    if catalog.is_banned(&address, Channel::Email) {
        return Err(DomainError::Denied {
            field: "from".into(),
        }
        .into());
    }
    let name = from
        .name
        .clone()
        .unwrap_or_else(|| address.split('@').next().unwrap_or(&address).to_string());
    let subject = draft
        .subject
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "[No Subject]".to_string());
    let topic = catalog
        .default_topic
        .and_then(|id| catalog.topics.get(&id))
        .filter(|t| t.active);
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
    let priority = hinted
        .or_else(|| topic.and_then(|t| t.default_priority.clone()))
        .unwrap_or_else(|| catalog.default_priority.clone());
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
    let automatic = draft.auto_reply || draft.bounce;
    let attachments = super::tickets::stored_attachments(draft.attachments);
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    deflate
        .write_all(raw)
        .and_then(|()| deflate.flush())
        .map_err(|e| StoreError::Other(format!("compressing the raw message: {e}")))?;
    let raw_compressed = deflate
        .finish()
        .map_err(|e| StoreError::Other(format!("compressing the raw message: {e}")))?;
    Ok(NewEmail {
        message_id: draft.message_id.clone(),
        thread_ids,
        subject_number: subject_number(&subject),
        is_bounce: draft.bounce,
        ticket: NewTicket {
            user_email: address.clone(),
            user_name: name.clone(),
            subject,
            source: "Email".into(),
            priority,
            topic: topic.map(|t| t.named.clone()),
            department: topic
                .and_then(|t| t.department.clone())
                .or_else(|| catalog.default_department.clone()),
            ip: ctx.client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            created: ctx.now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            alert: !automatic,
            autorespond: !automatic,
            fields: Vec::new(),
            // Automatic mail (auto-replies, bounces) never queues mail:
            // no autoresponse (two robots would mail each other forever)
            // and no staff alert (an alert recipient's bounce would alert
            // again, and bounce again: osTicket, "Don't send alerts to
            // staff when the message is a bounce … avoid possible loop").
            notify: catalog.notifications(!automatic, !automatic, ctx.now),
            entry: NewEntry {
                kind: "message".into(),
                format: draft.message.format.as_str().into(),
                body: draft.message.body,
                from_name: name,
                from_email: address,
                message_id: draft.message_id,
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
            },
        },
        raw_compressed,
    })
}

/// Files a prepared email; durable when it returns.
pub async fn file_email(store: &dyn Store, email: NewEmail) -> Result<EmailOutcome, EmailError> {
    let bounce = email.is_bounce;
    let outcome = store.ingest_email(email).await?;
    if bounce && outcome == EmailOutcome::BounceLogged {
        tracing::info!("bounce names no known message: logged, no ticket opened");
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

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
