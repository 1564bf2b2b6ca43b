//! Charset conversion to UTF-8 with `encoding_rs` (WHATWG labels: note that
//! `iso-8859-1` and `us-ascii` decode as windows-1252, a superset for text).

use encoding_rs::Encoding;

use super::IntakeError;

/// Decodes `bytes` declared as `label` into UTF-8. Malformed sequences
/// become U+FFFD (never an error: real data is messy); an unknown label is
/// an error naming `field`.
pub fn decode_to_utf8(bytes: &[u8], label: &str, field: &str) -> Result<String, IntakeError> {
    let encoding = lookup(label).ok_or_else(|| IntakeError::UnknownCharset {
        field: field.to_string(),
        charset: label.to_string(),
    })?;
    let (text, _, _) = encoding.decode(bytes);
    Ok(text.into_owned())
}

/// The encoding for a charset label, also accepting a few labels mail and
/// PHP clients use that the WHATWG list lacks.
pub fn lookup(label: &str) -> Option<&'static Encoding> {
    let label = label.trim().trim_matches('"');
    Encoding::for_label(label.as_bytes()).or_else(|| match label.to_ascii_lowercase().as_str() {
        "utf8" => Some(encoding_rs::UTF_8),
        "latin-1" | "iso8859-1" | "iso_8859-1:1987" => Some(encoding_rs::WINDOWS_1252),
        "cp1252" => Some(encoding_rs::WINDOWS_1252),
        _ => None,
    })
}

/// UTF-8 when valid, else the bytes read as windows-1252 (the usual
/// undeclared legacy charset), so that nothing is lost or rejected.
pub fn utf8_or_legacy(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(e.as_bytes());
            text.into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_declared_charsets() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"Caf\xe9", "iso-8859-1", "Café"),
            (b"\x93q\x94 \x80", "windows-1252", "\u{201c}q\u{201d} €"),
            (b"Caf\xc3\xa9", "UTF-8", "Café"),
            (b"\xa4", "iso-8859-15", "€"),
            (b"Caf\xe9", "latin-1", "Café"),
        ];
        for (bytes, label, want) in cases {
            assert_eq!(&decode_to_utf8(bytes, label, "f").unwrap(), want, "{label}");
        }
    }

    #[test]
    fn unknown_charset_names_field() {
        let err = decode_to_utf8(b"x", "klingon-8", "message").unwrap_err();
        assert_eq!(err.field(), Some("message"));
    }

    #[test]
    fn invalid_utf8_falls_back_to_legacy() {
        assert_eq!(utf8_or_legacy(b"Caf\xe9".to_vec()), "Café");
        assert_eq!(utf8_or_legacy("ok ✓".as_bytes().to_vec()), "ok ✓");
    }
}
