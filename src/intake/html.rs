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

/// HTML bodies longer than this are not parsed: html5ever's tree and
/// ammonia's pass took ~28 times the HTML's size (1.1 GB for a 40 MB
/// body). Their text is kept instead, escaped, in one `<pre>` (mail
/// prefers its text alternative when it has one: `email::parts`).
pub const MAX_SANITIZE_BYTES: usize = 2 * 1024 * 1024;

/// Returns the sanitised HTML.
pub fn sanitize(html: &str) -> String {
    if html.len() > MAX_SANITIZE_BYTES {
        return text_as_html(&crate::domain::search::html_to_text(html));
    }
    CLEANER.clean(html).to_string()
}

/// `text`, escaped, as one preformatted block.
fn text_as_html(text: &str) -> String {
    format!("<pre>{}</pre>", escape(text))
}

/// Escapes text for HTML (also the pages written without a template).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{MAX_SANITIZE_BYTES, sanitize};

    #[test]
    fn html_over_the_cap_keeps_its_text_escaped_and_nothing_active() {
        let mut html = String::from("<p>Hello &amp; <b>welcome</b></p><script>alert(1)</script>");
        html.push_str(&"<i>x</i> &lt;tag&gt; ".repeat(MAX_SANITIZE_BYTES / 16));
        let out = sanitize(&html);
        assert!(
            out.starts_with("<pre>") && out.ends_with("</pre>"),
            "{}",
            &out[..80]
        );
        assert!(out.contains("Hello &amp;  welcome"), "{}", &out[..80]);
        assert!(out.contains("&lt;tag&gt;"));
        assert!(!out.contains("<script") && !out.contains("alert") && !out.contains("<i>"));
        assert!(out.len() < html.len());
    }

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
