//! uuencoded files (`begin 644 name` … `end`), which Outlook and Notes
//! put inside plain-text bodies and `x-uuencode` parts carry: decoding
//! them, and the body without them.
//!
//! Pure byte work; which parts or bodies are looked at is `parts`'s call.

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

/// The body without its `begin`…`end` uuencoded blocks.
pub(super) fn strip_uuencoded(body: &str) -> String {
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
