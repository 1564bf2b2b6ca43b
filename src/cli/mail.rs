//! `oxidesk mail inspect FILE... [--json]`: what intake takes from each
//! message, without storing anything.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::intake::email::{Inspection, inspect_email};

/// `mail` subcommands.
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Show what intake takes from each message (nothing is stored).
    Inspect {
        /// Message files (RFC 5322).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON object per line, in the mail corpus's schema.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(cmd: &MailCommand) -> anyhow::Result<()> {
    let MailCommand::Inspect { files, json } = cmd;
    for path in files {
        let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path.display().to_string();
        let draft = match inspect_email(&raw) {
            Ok(d) => d,
            Err(e) => {
                errln!("{name}: {e}");
                continue;
            }
        };
        let report = Inspection::new(name, &draft);
        if *json {
            outln!("{}", serde_json::to_string(&report)?);
            continue;
        }
        outln!("== {}", report.file);
        match &report.from {
            Some(m) => outln!(
                "From:        {} <{}>",
                m.name.as_deref().unwrap_or(""),
                m.email
            ),
            None => outln!("From:        (none)"),
        }
        outln!(
            "Subject:     {}",
            report.subject.as_deref().unwrap_or("(none)")
        );
        outln!(
            "Message-ID:  {}",
            report.message_id.as_deref().unwrap_or("(none)")
        );
        outln!(
            "In-Reply-To: {}",
            report.in_reply_to.as_deref().unwrap_or("(none)")
        );
        outln!("References:  {}", report.references.join(" "));
        outln!(
            "Auto-reply:  {}   Bounce: {}",
            report.auto_reply,
            report.bounce
        );
        outln!(
            "Body ({}, {} bytes):",
            report.body_format,
            report.body.len()
        );
        for line in report.body.lines().take(12) {
            outln!("  | {line}");
        }
        for a in &report.attachments {
            outln!(
                "Attachment:  {} ({}, {} bytes{}{})",
                a.name.as_deref().unwrap_or("(unnamed)"),
                a.content_type,
                a.size,
                if a.inline { ", inline" } else { "" },
                a.content_id
                    .as_ref()
                    .map(|c| format!(", cid {c}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}
