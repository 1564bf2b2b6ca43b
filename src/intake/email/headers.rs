//! The header-repair pass: rewrites the header blocks of a raw message
//! (top level and MIME parts) where real mail breaks the rules in ways
//! `mail-parser` reads differently from other clients.
//!
//! It works on bytes before any parsing and must leave bodies byte for
//! byte as they came; it decides nothing about what intake takes from the
//! message (that is `fields`, `parts` and `loops`).

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
pub(super) fn normalize_headers(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
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
            .and_then(|c| crate::intake::charset::lookup(&c))
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
