//! RFC 2397 data URLs as osTicket clients send them.
//!
//! The media-type grammar and the forgiving base64 decoder come from the
//! `data-url` crate (servo/rust-url). The split into header and data is
//! ours, because `DataUrl::process` follows the WHATWG URL rules, which
//! percent-decode the data and drop tabs and newlines: API.md says percent
//! escapes are **not** decoded (osTicket never does and clients rely on a
//! literal `%`), and a plain-text message must keep its lines.

use std::str::FromStr;

use data_url::mime::Mime;

use super::{IntakeError, charset};

/// A decoded data URL.
#[derive(Debug, Clone, PartialEq)]
pub struct DataUrl {
    /// Media type, lower case, without parameters (`text/plain` by default).
    pub media_type: String,
    /// The `charset` parameter, when declared.
    pub charset: Option<String>,
    /// The bytes: base64-decoded, or the literal text.
    pub data: Vec<u8>,
}

/// Whether `s` looks like a data URL (`data:` in any case).
pub fn is_data_url(s: &str) -> bool {
    s.as_bytes()
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"data:"))
}

/// Parses `s`; errors name `field`.
pub fn parse(s: &str, field: &str) -> Result<DataUrl, IntakeError> {
    let bad = |reason: &str| IntakeError::BadDataUrl {
        field: field.to_string(),
        reason: reason.to_string(),
    };
    if !is_data_url(s) {
        return Err(bad("does not start with `data:`"));
    }
    // `is_data_url` checked five ASCII bytes, so index 5 is a boundary.
    let rest = &s[5..];
    let comma = rest
        .find(',')
        .ok_or_else(|| bad("no `,` before the data"))?;
    let (header, data) = (&rest[..comma], &rest[comma + 1..]);
    let mut header = header.trim();
    let mut is_base64 = false;
    if let Some(semi) = header.rfind(';')
        && header[semi + 1..].trim().eq_ignore_ascii_case("base64")
    {
        is_base64 = true;
        header = header[..semi].trim_end();
    }
    // RFC 2397: "data:,x" and "data:;charset=..,x" mean text/plain.
    let mime_text = if header.is_empty() || header.starts_with(';') {
        format!("text/plain{header}")
    } else {
        header.to_string()
    };
    let mime = Mime::from_str(&mime_text).map_err(|_| bad("invalid media type"))?;
    let charset = mime.get_parameter("charset").map(str::to_string);
    let bytes = if is_base64 {
        decode_base64(data.as_bytes()).map_err(|_| IntakeError::BadBase64 {
            field: field.to_string(),
        })?
    } else {
        data.as_bytes().to_vec()
    };
    Ok(DataUrl {
        media_type: format!("{}/{}", mime.type_, mime.subtype),
        charset,
        data: bytes,
    })
}

/// Forgiving base64 (WHATWG) into a vector sized once from the input:
/// `decode_to_vec` grows by doubling, which can hold twice the decoded
/// size of a large attachment at the end.
pub fn decode_base64(
    input: &[u8],
) -> Result<Vec<u8>, data_url::forgiving_base64::DecodeError<std::convert::Infallible>> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut decoder = data_url::forgiving_base64::Decoder::new(|bytes: &[u8]| {
        out.extend_from_slice(bytes);
        Ok(())
    });
    decoder.feed(input)?;
    decoder.finish()?;
    Ok(out)
}

impl DataUrl {
    /// Whether the media type is `text/*`.
    pub fn is_text(&self) -> bool {
        self.media_type.starts_with("text/")
    }

    /// The data as UTF-8 text: converted from the declared charset, or
    /// taken as UTF-8 when none is declared (API.md: a JSON string already
    /// is Unicode).
    pub fn text(self, field: &str) -> Result<String, IntakeError> {
        match &self.charset {
            Some(label) => charset::decode_to_utf8(&self.data, label, field),
            None => Ok(charset::utf8_or_legacy(self.data)),
        }
    }

    /// Attachment bytes: text/* with a declared charset converted to UTF-8,
    /// anything else byte for byte.
    pub fn into_file_bytes(self, field: &str) -> Result<Vec<u8>, IntakeError> {
        match (&self.charset, self.is_text()) {
            (Some(label), true) => {
                Ok(charset::decode_to_utf8(&self.data, label, field)?.into_bytes())
            }
            _ => Ok(self.data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_data_urls() {
        // (input, media type, charset, bytes)
        let cases: &[(&str, &str, Option<&str>, &[u8])] = &[
            ("data:text/plain,hi", "text/plain", None, b"hi"),
            ("data:,hi", "text/plain", None, b"hi"),
            ("DATA:TEXT/HTML,<b>x</b>", "text/html", None, b"<b>x</b>"),
            ("data:text/plain;base64,aGk=", "text/plain", None, b"hi"),
            ("data:text/plain;base64,aGk", "text/plain", None, b"hi"),
            ("data:text/plain;base64,a G\nk=", "text/plain", None, b"hi"),
            (
                "data:text/plain;charset=iso-8859-1;base64,Q2Fm6Q==",
                "text/plain",
                Some("iso-8859-1"),
                b"Caf\xe9",
            ),
            ("data:;charset=utf-8,x", "text/plain", Some("utf-8"), b"x"),
            (
                "data:text/plain,50% off %41",
                "text/plain",
                None,
                b"50% off %41",
            ),
            ("data:text/plain,a,b", "text/plain", None, b"a,b"),
            (
                "data:text/plain,line1\nline2",
                "text/plain",
                None,
                b"line1\nline2",
            ),
            ("data:image/png;BASE64,AAEC", "image/png", None, &[0, 1, 2]),
        ];
        for (input, mt, cs, bytes) in cases {
            let d = parse(input, "f").unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(d.media_type, *mt, "{input}");
            assert_eq!(d.charset.as_deref(), *cs, "{input}");
            assert_eq!(d.data, *bytes, "{input}");
        }
    }

    #[test]
    fn bad_base64_names_the_field() {
        let e = parse(
            "data:application/octet-stream;base64,%%%not*base64!!!",
            "broken.bin",
        )
        .unwrap_err();
        assert_eq!(
            e,
            IntakeError::BadBase64 {
                field: "broken.bin".into()
            }
        );
    }

    #[test]
    fn multibyte_text_is_not_mistaken_for_a_data_url() {
        assert!(!is_data_url("Grüße"));
        assert!(!is_data_url("日本"));
        assert!(is_data_url("DaTa:,x"));
    }

    #[test]
    fn not_a_data_url() {
        assert!(matches!(
            parse("hello", "m"),
            Err(IntakeError::BadDataUrl { .. })
        ));
        assert!(matches!(
            parse("data:text/plain", "m"),
            Err(IntakeError::BadDataUrl { .. })
        ));
    }

    #[test]
    fn charset_conversion_for_text_only() {
        let d = parse(
            "data:text/plain;charset=iso-8859-1;base64,R3L232U6IDUgtW0=",
            "f",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(d.into_file_bytes("f").unwrap()).unwrap(),
            "Größe: 5 µm"
        );
        let d = parse(
            "data:application/octet-stream;charset=iso-8859-1;base64,/w==",
            "f",
        )
        .unwrap();
        assert_eq!(d.into_file_bytes("f").unwrap(), vec![0xff]);
    }

    proptest::proptest! {
        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            use base64::Engine as _;
            let url = format!("data:application/octet-stream;base64,{}", base64::engine::general_purpose::STANDARD.encode(&bytes));
            proptest::prop_assert_eq!(parse(&url, "f").unwrap().data, bytes);
        }

        #[test]
        fn literal_data_is_kept_byte_for_byte(text in "[^,]{0,20}", data in "\\PC{0,100}") {
            let url = format!("data:text/plain,{data}");
            proptest::prop_assert_eq!(parse(&url, "f").unwrap().data, data.as_bytes().to_vec());
            let _ = parse(&format!("data:{text},{data}"), "f");
        }
    }
}
