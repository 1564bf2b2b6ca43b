//! The MIME walk: which part of a parsed message is the body (the html
//! alternative when there is one, sanitised) and which leaf parts are
//! files, with their bytes as sent; TNEF (winmail.dat) and uuencoded
//! files are unpacked here.
//!
//! It must not read the sender, ids or loop flags (`fields`, `loops`), nor
//! apply the attachment caps (that is `parse_email`'s).

use std::collections::HashSet;

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::fields::strip_id;
use super::uudecode::{strip_uuencoded, uudecode};
use crate::intake::{AttachmentDraft, BodyFormat, MessageDraft, html};

/// The body and every other leaf part as an attachment, in message
/// order; the unchosen alternative of the body is neither.
pub(super) fn body_and_attachments(message: &Message<'_>) -> (MessageDraft, Vec<AttachmentDraft>) {
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
    // An HTML body too big to sanitise (html::MAX_SANITIZE_BYTES) gives
    // way to the text alternative when there is one.
    let html_bytes: usize = html_ids
        .iter()
        .filter_map(|&i| message.parts[i].text_contents())
        .map(str::len)
        .sum();
    let (format, body_ids) =
        if html_ids.is_empty() || (html_bytes > html::MAX_SANITIZE_BYTES && !text_ids.is_empty()) {
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

    // Every other leaf is an attachment; the unchosen alternative is not,
    // unless it is HTML given up for its size (the text parts chosen
    // instead may be only a footer): then it is kept as a file.
    let html_given_up = format == BodyFormat::Text && !html_ids.is_empty();
    let skip: HashSet<usize> = text_ids
        .iter()
        .chain(html_ids.iter().filter(|_| !html_given_up))
        .copied()
        .collect();
    let mut leaf_ids = Vec::new();
    leaves(message, 0, &mut leaf_ids, 0);
    if html_given_up {
        // Alternatives are never leaves: add the HTML in part order.
        leaf_ids.extend(
            html_ids
                .iter()
                .filter(|i| !leaf_ids.contains(i))
                .collect::<Vec<_>>(),
        );
        leaf_ids.sort_unstable();
    }
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
        match is_tnef
            .then(|| crate::intake::tnef::unpack(&att.data))
            .flatten()
        {
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
    (MessageDraft { body, format }, attachments)
}

/// A part's media type in lower case, from its body kind when undeclared.
pub(super) fn content_type(part: &MessagePart<'_>) -> String {
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
    let mut seen = vec![false; message.parts.len()];
    walk_leaves(message, id, out, depth, &mut seen);
}

/// Each part is visited once: a malformed message can make the parser
/// list a part under several multiparts (found by fuzzing: 13 KB of
/// mail whose walk, bounded only by depth, ran for hours).
fn walk_leaves(
    message: &Message<'_>,
    id: usize,
    out: &mut Vec<usize>,
    depth: usize,
    seen: &mut [bool],
) {
    match seen.get_mut(id) {
        Some(s) if !*s => *s = true,
        _ => return,
    }
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
                walk_leaves(message, child, out, depth + 1, seen);
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

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use crate::intake::BodyFormat;

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
}
