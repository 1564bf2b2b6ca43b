//! Reading header fields of a parsed message: the first occurrence of a
//! field, message ids, the sender's mailbox, the priority hint.
//!
//! It reads what `mail-parser` decoded and must not repair raw bytes
//! (that is `headers`) or decide about loops (that is `loops`).

use mail_parser::{HeaderValue, Message};

use super::{Mailbox, PriorityHint};

/// A message id without its angle brackets; `None` when empty.
pub(super) fn strip_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// The ids of an id-list field (Message-ID, In-Reply-To, References).
pub(super) fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => strip_id(t).into_iter().collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|t| strip_id(t)).collect(),
        _ => Vec::new(),
    }
}

/// The first top-level header of that name: with duplicated From,
/// Subject or References, the first one counts (the corpus and most
/// parsers agree; mail-parser's accessors return the last).
pub(super) fn first_header<'a>(
    message: &'a Message<'a>,
    name: &str,
) -> Option<&'a HeaderValue<'a>> {
    message
        .headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| &h.value)
}

/// A field as sent, trimmed (for flags compared as text).
pub(super) fn raw_header<'a>(message: &'a Message<'a>, name: &'a str) -> Option<&'a str> {
    message.header_raw(name).map(str::trim)
}

/// The first mailbox of the first From field.
pub(super) fn mailbox<'a>(message: &'a Message<'a>) -> Option<Mailbox> {
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

/// The urgency named by `X-Priority`, else `Importance` or `Priority`.
pub(super) fn priority(message: &Message<'_>) -> Option<PriorityHint> {
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

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;
    use crate::intake::BodyFormat;

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
    fn text_right_after_an_encoded_word_keeps_to_it() {
        // The vendored mail-parser's patch 4 (vendor/mail-parser/PATCHES.md).
        let subject = |h: &str| parse(&["From: a@example.com", h, "", "x"]).subject;
        assert_eq!(
            subject("Subject: =?UTF-8?B?0L3QtSDQtNC+0YHRgtCw0LLQu9C10L3Qvg==?=. Mail failure.")
                .as_deref(),
            Some("не доставлено. Mail failure.")
        );
        // White space between them is kept as one space; encoded words
        // next to each other are joined (RFC 2047).
        assert_eq!(
            subject("Subject: =?UTF-8?Q?caf=C3=A9?= . ok").as_deref(),
            Some("café . ok")
        );
        assert_eq!(
            subject("Subject: =?UTF-8?Q?a?= =?UTF-8?Q?b?=c d").as_deref(),
            Some("abc d")
        );
        assert_eq!(
            subject("Subject: =?UTF-8?Q?a?=\r\n .b").as_deref(),
            Some("a .b")
        );
    }

    #[test]
    fn a_file_name_in_segments_is_decoded_whole_in_its_first_segments_charset() {
        // RFC 2231: the charset is named in the first segment; ISO-2022-JP
        // switches to JIS and back within each segment (the vendored
        // mail-parser's patch 5).
        let d = parse(&[
            "From: a@example.com",
            "Subject: files",
            "MIME-Version: 1.0",
            "Content-Type: multipart/mixed; boundary=\"b\"",
            "",
            "--b",
            "Content-Type: text/plain",
            "",
            "see file",
            "--b",
            "Content-Type: application/octet-stream",
            "Content-Disposition: attachment;",
            " filename*0*=ISO-2022-JP'ja'%1b$B%3f7$7$$%25F%25%2d%259%25H%1b%28B;",
            " filename*1*=%20;",
            " filename*2*=%1b$B%25I%25%2d%25e%25a%25s%25H%1b%28B;",
            " filename*3=100%.txt",
            "",
            "x",
            "--b--",
        ]);
        assert_eq!(d.attachments.len(), 1);
        assert_eq!(d.attachments[0].name, "新しいテキスト ドキュメント100%.txt");
        // The file name of a one-part message whose disposition is `line`.
        let name = |line: &str| {
            let d = parse(&[
                "From: a@example.com",
                "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=\"b\"",
                "",
                "--b",
                "Content-Type: application/octet-stream",
                line,
                "",
                "x",
                "--b--",
            ]);
            d.attachments[0].name.clone()
        };
        // UTF-8 in segments (each whole in itself) as before.
        assert_eq!(
            name(
                "Content-Disposition: attachment; filename*0*=UTF-8''caf%C3%A9; filename*1=-menu.txt"
            ),
            "café-menu.txt"
        );
        // A character's bytes split between two segments.
        assert_eq!(
            name("Content-Disposition: attachment; filename*0*=UTF-8''caf%C3; filename*1*=%A9.txt"),
            "café.txt"
        );
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
}
