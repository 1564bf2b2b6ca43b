//! The repair pass: rewrites a raw message where real mail breaks the
//! rules in ways `mail-parser` reads differently from other clients, in
//! one linear pass over its lines, before any parsing.
//!
//! It repairs header blocks (top level, MIME parts, nested messages) and
//! the MIME structure where a multipart is left unterminated; bodies keep
//! their bytes. It decides nothing about what intake takes from the
//! message (that is `fields`, `parts` and `loops`).

use std::borrow::Cow;

use super::Budget;
use crate::intake::IntakeError;

/// Fields that appear once per header block (RFC 5322 §3.6, RFC 2045).
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

/// Deepest multipart nesting the pass follows; deeper ones are left to
/// the parser as they are (real mail nests fewer than ten).
const MAX_DEPTH: usize = 64;

/// Lines between two looks at the clock.
const CHECK_EVERY_LINES: usize = 1 << 14;

/// Repairs a message before MIME parsing:
///
/// * raw 8-bit header text (not RFC 2047, not UTF-8) is decoded with the
///   message's first declared charset (else windows-1252) and re-encoded
///   as UTF-8 (RFC 6532); left alone it would become U+FFFD;
/// * a repeated single-valued field (From, Subject, Content-Type, …) keeps
///   its first occurrence, as most clients read it (the parser keeps the
///   last);
/// * a B-encoded word without its `=` padding gets it back;
/// * a header block that runs into a delimiter of an enclosing multipart
///   (no blank line) is ended before it;
/// * a multipart left open when a delimiter of an enclosing one comes
///   (truncated inner parts of forwarded mail and delivery reports) is
///   closed there (RFC 2046 §5.1.2: the enclosing boundary ends it),
///   where the parser would read on to the end of the message.
///
/// Nothing is copied when nothing changes. Each line is looked at once,
/// against the boundaries of the multiparts that enclose it: the pass is
/// linear in the message, whatever it declares.
pub(super) fn normalize_headers<'a>(
    raw: &'a [u8],
    budget: &Budget,
) -> Result<Cow<'a, [u8]>, IntakeError> {
    // Most messages need nothing: a scan decides before anything is copied.
    if repair_pass(raw, false, budget)?.is_none() {
        return Ok(Cow::Borrowed(raw));
    }
    Ok(match repair_pass(raw, true, budget)? {
        Some(fixed) => Cow::Owned(fixed),
        None => Cow::Borrowed(raw),
    })
}

/// An open multipart: its boundary, and whether a delimiter of it has
/// been seen (a multipart whose boundary never came is the parser's to
/// read as text).
struct Frame {
    boundary: Vec<u8>,
    opened: bool,
}

/// What the current header block declares, read from its first
/// Content-Type and Content-Transfer-Encoding fields.
#[derive(Default)]
struct Block {
    lines: usize,
    content_type: Vec<u8>,
    in_content_type: bool,
    encoded: bool,
}

impl Block {
    /// The boundary of a multipart, or whether the body is a message
    /// whose own header block comes next.
    fn body_kind(&self) -> BodyKind {
        let ct = self.content_type.to_ascii_lowercase();
        let media = ct
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if media.starts_with(b"multipart/") {
            match boundary_param(&self.content_type) {
                Some(b) => BodyKind::Multipart(b),
                None => BodyKind::Leaf,
            }
        } else if (media == b"message/rfc822" || media == b"message/global") && !self.encoded {
            BodyKind::Message
        } else {
            BodyKind::Leaf
        }
    }
}

enum BodyKind {
    Multipart(Vec<u8>),
    Message,
    Leaf,
}

/// `--boundary` or `--boundary--` (RFC 2046 §5.1.1, transport padding
/// allowed) of one of the open multiparts: (frame index, is the close).
/// The innermost match wins.
fn delimiter_of(stack: &[Frame], content: &[u8]) -> Option<(usize, bool)> {
    let rest = content.strip_prefix(b"--")?;
    let rest = rest.trim_ascii_end();
    let closed = rest.strip_suffix(b"--");
    stack.iter().enumerate().rev().find_map(|(i, f)| {
        if rest == f.boundary.as_slice() {
            Some((i, false))
        } else if closed == Some(f.boundary.as_slice()) {
            Some((i, true))
        } else {
            None
        }
    })
}

/// One pass over the lines; with `write`, the repaired message (`None`
/// when nothing needs repairing).
fn repair_pass(raw: &[u8], write: bool, budget: &Budget) -> Result<Option<Vec<u8>>, IntakeError> {
    const CONTENT_TYPE: usize = 5;
    const TRANSFER_ENCODING: usize = 6;
    let is_utf8 = std::str::from_utf8(raw).is_ok();
    let encoding = if is_utf8 {
        encoding_rs::WINDOWS_1252
    } else {
        declared_charset(raw)
            .and_then(|c| crate::intake::charset::lookup(&c))
            .filter(|e| *e != encoding_rs::UTF_8)
            .unwrap_or(encoding_rs::WINDOWS_1252)
    };
    // Inserted lines end as the message's first line does.
    let eol: &[u8] = match raw.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && raw[i - 1] == b'\r' => b"\r\n",
        _ => b"\n",
    };
    let mut out = if write {
        Vec::with_capacity(raw.len() + 64)
    } else {
        Vec::new()
    };
    let mut changed = false;
    let mut in_headers = true;
    // The top header block of a nested message is that part's body: its
    // bytes are kept (only where it ends is repaired).
    let mut nested_block = false;
    let mut seen: u16 = 0;
    let mut dropping = false;
    let mut block = Block::default();
    let mut stack: Vec<Frame> = Vec::new();
    for (n, line) in raw.split_inclusive(|&b| b == b'\n').enumerate() {
        if n % CHECK_EVERY_LINES == 0 {
            budget.check()?;
        }
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        // A delimiter of an enclosing multipart ends whatever is open
        // inside it (RFC 2046 §5.1.2).
        if content.starts_with(b"--")
            && let Some((at, close)) = delimiter_of(&stack, content)
        {
            if in_headers && block.lines > 0 {
                // A header block with no blank line before the delimiter.
                if let BodyKind::Multipart(b) = block.body_kind()
                    && stack.len() < MAX_DEPTH
                {
                    stack.push(Frame {
                        boundary: b,
                        opened: false,
                    });
                }
                if write {
                    out.extend_from_slice(eol);
                }
                changed = true;
            }
            while stack.len() > at + 1 {
                if let Some(inner) = stack.pop()
                    && inner.opened
                {
                    if write {
                        out.extend_from_slice(b"--");
                        out.extend_from_slice(&inner.boundary);
                        out.extend_from_slice(b"--");
                        out.extend_from_slice(eol);
                    }
                    changed = true;
                }
            }
            if close {
                stack.pop();
                in_headers = false;
            } else {
                stack[at].opened = true;
                in_headers = true;
            }
            nested_block = false;
            block = Block::default();
            seen = 0;
            dropping = false;
            if write {
                out.extend_from_slice(line);
            }
            continue;
        }
        if !in_headers {
            if write {
                out.extend_from_slice(line);
            }
            continue;
        }
        if content.is_empty() {
            match block.body_kind() {
                BodyKind::Multipart(b) => {
                    if stack.len() < MAX_DEPTH {
                        stack.push(Frame {
                            boundary: b,
                            opened: false,
                        });
                    }
                    in_headers = false;
                }
                BodyKind::Message if block.lines > 0 => nested_block = true,
                BodyKind::Message | BodyKind::Leaf => in_headers = false,
            }
            block = Block::default();
            seen = 0;
            dropping = false;
            if write {
                out.extend_from_slice(line);
            }
            continue;
        }
        block.lines += 1;
        let continuation = content.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if continuation {
            if block.in_content_type && !dropping {
                block.content_type.push(b' ');
                block.content_type.extend_from_slice(content.trim_ascii());
            }
        } else {
            dropping = false;
            block.in_content_type = false;
            if let Some(colon) = content.iter().position(|&b| b == b':') {
                let name = content[..colon].trim_ascii();
                if let Some(k) = SINGLE.iter().position(|s| s.eq_ignore_ascii_case(name)) {
                    if seen & (1 << k) != 0 {
                        dropping = !nested_block;
                    } else {
                        seen |= 1 << k;
                        let value = content[colon + 1..].trim_ascii();
                        if k == CONTENT_TYPE {
                            block.in_content_type = true;
                            block.content_type.extend_from_slice(value);
                        } else if k == TRANSFER_ENCODING {
                            block.encoded = value.eq_ignore_ascii_case(b"base64")
                                || value.eq_ignore_ascii_case(b"quoted-printable");
                        }
                    }
                }
            }
        }
        if dropping {
            changed = true;
            continue;
        }
        if !nested_block {
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
        }
        if write {
            out.extend_from_slice(line);
        }
    }
    Ok(changed.then_some(out))
}

/// `=?cs?B?eHB0bw?=` → `=?cs?B?eHB0bw==?=`; `None` when nothing needed it.
/// Linear: once no `?=` follows, no later word can end either.
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
        {
            let Some(end) = line[q1 + 3..]
                .windows(2)
                .position(|w| w == b"?=")
                .map(|p| q1 + 3 + p)
            else {
                out.extend_from_slice(&line[i..]);
                break;
            };
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

/// The `boundary` parameter of a Content-Type value, quoted or not.
fn boundary_param(value: &[u8]) -> Option<Vec<u8>> {
    let at = value
        .windows(9)
        .position(|w| w.eq_ignore_ascii_case(b"boundary="))?
        + 9;
    let rest = &value[at..];
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
    let at = raw
        .windows(8)
        .position(|w| w.eq_ignore_ascii_case(b"charset="))?
        + 8;
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

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    fn repaired(lines: &[&str]) -> String {
        let raw = lines.join("\r\n");
        let fixed = normalize_headers(raw.as_bytes(), &Budget::unlimited()).unwrap();
        String::from_utf8(fixed.into_owned()).unwrap()
    }

    #[test]
    fn an_inner_multipart_left_open_is_closed_by_the_enclosing_delimiter() {
        let lines = [
            "From: a@example.com",
            "Content-Type: multipart/related; boundary=rel",
            "",
            "--rel",
            "Content-Type: multipart/alternative; boundary=alt",
            "",
            "--alt",
            "Content-Type: text/html",
            "",
            "<p>html</p>",
            "--rel",
            "Content-Type: image/png",
            "Content-Transfer-Encoding: base64",
            "",
            "AAEC",
            "--rel--",
        ];
        assert!(repaired(&lines).contains("<p>html</p>\r\n--alt--\r\n--rel\r\n"));
        let d = parse(&lines);
        assert_eq!(d.attachments.len(), 1, "{:?}", d.attachments);
        assert_eq!(d.attachments[0].content_type, "image/png");
    }

    #[test]
    fn a_nested_header_block_without_a_blank_line_ends_at_the_enclosing_delimiter() {
        let lines = [
            "From: a@example.com",
            "Content-Type: multipart/mixed; boundary=\"out\"",
            "",
            "--out",
            "Content-Type: text/plain",
            "",
            "see both",
            "--out",
            "Content-Type: message/rfc822; name=one.eml",
            "",
            "From: b@example.com",
            "Content-Type: multipart/alternative; boundary=never",
            "--out",
            "Content-Type: message/rfc822; name=two.eml",
            "",
            "From: c@example.com",
            "",
            "two",
            "--out--",
        ];
        assert!(repaired(&lines).contains("boundary=never\r\n\r\n--out\r\n"));
        let names: Vec<String> = parse(&lines)
            .attachments
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["one.eml", "two.eml"]);
    }

    #[test]
    fn a_well_formed_message_is_not_copied() {
        let raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
        assert!(matches!(
            normalize_headers(raw, &Budget::unlimited()).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn unclosed_encoded_words_are_copied_once() {
        let line = "Subject: =?utf-8?B?QUJD ".repeat(20_000);
        assert!(pad_b_words(line.as_bytes()).is_none());
        assert_eq!(
            pad_b_words(b"S: =?utf-8?B?QUI?= =?utf-8?B?x").unwrap(),
            b"S: =?utf-8?B?QUI=?= =?utf-8?B?x"
        );
    }
}
