//! HTML sanitising with `ammonia` (an allow-list over html5ever).
//!
//! Kept: formatting, tables, links (with `rel="noopener noreferrer"`) and
//! `cid:` images, so inline email images keep working. Removed: scripts,
//! event handlers, `javascript:` URLs, styles and every tag or attribute
//! that loads something remote (API.md, Field processing).

use std::borrow::Cow;
use std::sync::LazyLock;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.add_url_schemes(["cid"]);
    // An <img> may only show an attachment of the same message: a remote
    // src is a tracking pixel or worse.
    b.attribute_filter(|element, attribute, value| {
        if element == "img" && attribute == "src" {
            let is_cid = value
                .as_bytes()
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"cid:"));
            return is_cid.then_some(Cow::Borrowed(value));
        }
        Some(Cow::Borrowed(value))
    });
    b
});

/// Returns the sanitised HTML.
pub fn sanitize(html: &str) -> String {
    CLEANER.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn removes_active_and_remote_content() {
        let cases = [
            ("<p>hi<script>alert(1)</script></p>", "<p>hi</p>"),
            ("<b onclick=\"x()\">b</b>", "<b>b</b>"),
            (
                "<a href=\"javascript:alert(1)\">x</a>",
                "<a rel=\"noopener noreferrer\">x</a>",
            ),
            ("<img src=\"http://evil/p.gif\">", "<img>"),
            ("<iframe src=\"http://x\"></iframe>ok", "ok"),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize(input), want, "{input}");
        }
    }

    #[test]
    fn keeps_formatting_links_cid_and_unicode() {
        let out = sanitize(
            "<p>MESSAGE <b>HERE</b> 😀 <a href=\"https://x.test/\">l</a><img src=\"cid:part1@x\"></p>",
        );
        assert!(out.contains("MESSAGE <b>HERE</b> 😀"), "{out}");
        assert!(out.contains("href=\"https://x.test/\""), "{out}");
        assert!(out.contains("src=\"cid:part1@x\""), "{out}");
    }

    #[test]
    fn multibyte_src_does_not_panic() {
        assert_eq!(sanitize("<img src=\"é€\">"), "<img>");
    }

    #[test]
    fn is_idempotent() {
        let once = sanitize("<div><p>a<b>b</p><img src=cid:x onerror=y>");
        assert_eq!(sanitize(&once), once);
    }
}
