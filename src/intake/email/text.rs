//! Scrubbing the text a message yields: NUL and the other C0 control
//! characters except tab, line feed and carriage return are removed from
//! every text field of a draft (sender, subject, body, ids, file names,
//! media types).
//!
//! Why: PostgreSQL `text` cannot hold NUL (the insert fails, a `500` and
//! a pipe exit 75 that the MTA retries for days) while SQLite stores it;
//! the other controls are invisible, break terminals and logs, and no
//! mail client shows them. Removing them gives both stores the same text.
//! Attachment bytes are files and are kept as sent.
//!
//! A message id longer than a header line may be (RFC 5322 §2.1.1: 998)
//! is no id: PostgreSQL refuses index entries over ~2.7 kB, SQLite does
//! not, so such an id must not reach either.

use super::EmailDraft;

/// A C0 control other than tab, line feed and carriage return.
fn is_unwanted(c: char) -> bool {
    c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r') && c != '\u{7f}'
}

/// `s` without the unwanted controls (no copy when it has none).
pub(super) fn scrub(s: &mut String) {
    if s.chars().any(is_unwanted) {
        s.retain(|c| !is_unwanted(c));
    }
}

fn scrub_opt(s: &mut Option<String>) {
    if let Some(s) = s {
        scrub(s);
    }
}

/// Longest message id kept (RFC 5322 §2.1.1's line limit).
const MAX_ID_BYTES: usize = 998;

/// Scrubs every text field of a draft.
pub(super) fn scrub_draft(d: &mut EmailDraft) {
    let too_long = |id: &String| id.len() > MAX_ID_BYTES;
    d.message_id.take_if(|id| too_long(id));
    d.in_reply_to.take_if(|id| too_long(id));
    d.references.retain(|id| !too_long(id));
    d.returned_ids.retain(|id| !too_long(id));
    if let Some(from) = &mut d.from {
        scrub_opt(&mut from.name);
        scrub(&mut from.email);
    }
    scrub_opt(&mut d.subject);
    scrub(&mut d.message.body);
    scrub_opt(&mut d.message_id);
    scrub_opt(&mut d.in_reply_to);
    d.references.iter_mut().for_each(scrub);
    d.returned_ids.iter_mut().for_each(scrub);
    for a in &mut d.attachments {
        scrub(&mut a.name);
        scrub(&mut a.content_type);
        scrub_opt(&mut a.content_id);
    }
    for p in &mut d.dropped {
        scrub(&mut p.name);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;

    #[test]
    fn nul_and_controls_are_removed_from_text_but_not_from_files() {
        let d = parse(&[
            "From: \"Ann\u{0}ie\u{1}\" <ann@example.com>",
            "Subject: a\u{0}b\u{7}c\td",
            "Message-ID: <id\u{0}1@x>",
            "Content-Type: multipart/mixed; boundary=b",
            "",
            "--b",
            "Content-Type: text/plain",
            "",
            "line\u{0} one\u{1b}[31m\r\nline two",
            "--b",
            "Content-Type: application/octet-stream",
            "Content-Disposition: attachment; filename=\"f\u{0}.bin\"",
            "",
            "x\u{0}y",
            "--b--",
        ]);
        assert_eq!(d.from.unwrap().name.as_deref(), Some("Annie"));
        assert_eq!(d.subject.as_deref(), Some("abc d"));
        assert_eq!(d.message_id.as_deref(), Some("id1@x"));
        assert!(
            d.message.body.starts_with("line one[31m\r\nline two"),
            "{:?}",
            d.message.body
        );
        assert_eq!(d.attachments[0].name, "f.bin");
        assert_eq!(d.attachments[0].data, b"x\0y");
    }
}
