//! Customer HTML made safe to show an agent, again at render time (it
//! was sanitised on the way in; a stricter rule here protects tickets
//! stored before any rule change): a strict allow-list with no script,
//! no event handlers, no `style` elements or attributes, no SVG/MathML,
//! no `javascript:`/`data:` URLs; `cid:` images point at the entry's
//! attachments; remote images are not loaded but become a link
//! (`a.remote-image`) the agent may follow.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use ammonia::Builder;

/// Elements customer HTML may not carry here even though ammonia's
/// default allows them: landmarks (they would mix with the page's own)
/// and image maps (links without `<a>`).
const DROPPED_TAGS: &[&str] = &["header", "footer", "nav", "article", "aside", "map", "area"];

/// The sanitised HTML of an entry. `cids` maps a Content-ID (without
/// angle brackets) to the attachment id it is served by.
pub fn render_customer_html(html: &str, cids: &HashMap<String, i64>) -> String {
    let cids = cids.clone();
    let mut builder = Builder::default();
    builder
        .rm_tags(DROPPED_TAGS)
        .url_schemes(HashSet::from(["http", "https", "mailto", "cid"]))
        // Relative URLs only as the cid rewrite below makes them.
        .url_relative(ammonia::UrlRelative::Custom(Box::new(attachment_path)))
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(move |element, attribute, value| {
            if element == "img" && attribute == "src" {
                let v = value.trim();
                if v.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("cid:")) {
                    let id = cids.get(v[4..].trim_matches(['<', '>']))?;
                    return Some(Cow::Owned(format!("/scp/attachments/{id}")));
                }
                let lower = v.to_ascii_lowercase();
                // Kept for now: replaced by a link below, never loaded.
                return (lower.starts_with("http://") || lower.starts_with("https://"))
                    .then_some(Cow::Borrowed(value));
            }
            if attribute == "href" && value.trim().to_ascii_lowercase().starts_with("cid:") {
                return None;
            }
            Some(Cow::Borrowed(value))
        });
    let clean = builder.clean(html).to_string();
    replace_remote_images(&clean)
}

/// A relative URL is kept only when it is an attachment's page path.
fn attachment_path(url: &str) -> Option<Cow<'_, str>> {
    let id = url.strip_prefix("/scp/attachments/")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(Cow::Borrowed(url))
}

/// Replaces each `<img>` whose `src` is remote by a link to it. Works on
/// ammonia's serialised output, whose tags are well-formed: text `<` is
/// always `&lt;`, attribute values are double-quoted with `"` escaped.
fn replace_remote_images(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<img") {
        out.push_str(&rest[..start]);
        let tag_and_after = &rest[start..];
        let end = tag_end(tag_and_after);
        let tag = &tag_and_after[..end];
        match src_of(tag) {
            Some(src) if src.starts_with("http://") || src.starts_with("https://") => {
                out.push_str("<a class=\"remote-image\" href=\"");
                out.push_str(src);
                out.push_str(
                    "\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">Remote image (not loaded): open it</a>",
                );
            }
            _ => out.push_str(tag),
        }
        rest = &tag_and_after[end..];
    }
    out.push_str(rest);
    out
}

/// Length of the tag at the start of `s` (through its `>`, quotes respected).
fn tag_end(s: &str) -> usize {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '>' if !quoted => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// The (still escaped) value of the `src` attribute of a serialised tag.
fn src_of(tag: &str) -> Option<&str> {
    let at = tag.find(" src=\"")? + " src=\"".len();
    let value = &tag[at..];
    Some(&value[..value.find('"')?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(html: &str) -> String {
        render_customer_html(html, &HashMap::from([("logo@x".to_string(), 7)]))
    }

    #[test]
    fn active_content_is_removed() {
        for (input, banned) in [
            ("<p>hi<script>window.x=1</script></p>", "script"),
            ("<img src=x onerror=\"window.x=1\">", "onerror"),
            ("<a href=\"javascript:window.x=1\">x</a>", "javascript"),
            ("<svg><script>window.x=1</script></svg>", "svg"),
            ("<math><mi>x</mi></math>", "math"),
            ("<style>p{background:url(http://b.test/)}</style>", "url("),
            ("<p style=\"background:url(http://b.test/)\">x</p>", "style"),
            ("<a href=\"data:text/html,<script>\">x</a>", "data:"),
            ("<iframe src=\"http://x.test/\"></iframe>", "iframe"),
            ("<header>h</header><nav>n</nav>", "<header"),
        ] {
            let out = render(input);
            assert!(!out.contains(banned), "{input} → {out}");
        }
    }

    #[test]
    fn cid_images_point_at_attachments_and_remote_ones_become_links() {
        let out = render(
            "<p><img src=\"cid:logo@x\" alt=\"l\"><img src=\"https://t.test/p.gif?a=1&amp;b=2\" alt='\"><script>'></p>",
        );
        assert!(out.contains("<img src=\"/scp/attachments/7\""), "{out}");
        assert!(
            out.contains("<a class=\"remote-image\" href=\"https://t.test/p.gif?a=1&amp;b=2\""),
            "{out}"
        );
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("<img src=\"http"), "{out}");
        // An unknown cid is no image source at all.
        assert!(!render("<img src=\"cid:other@x\">").contains("cid:"));
    }
}
