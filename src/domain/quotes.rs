//! Cutting the quoted history off a customer's answer (STAFF-API.md:
//! "the quoted text below the reply separator or under the usual `On …
//! wrote:` line stripped from the stored body"). The raw message is kept
//! elsewhere; this only decides what the thread shows.
//!
//! Rules, in order: the first line holding the reply separator (quoted
//! or not) cuts there, together with an attribution line just above it;
//! else the first attribution line (`On … wrote:` and its usual
//! translations, possibly wrapped over two lines) followed only by quoted
//! lines or nothing, or an Outlook `-----Original Message-----` /
//! `From:` header block cuts there. HTML: the separator, or the quote
//! containers mail clients write (Gmail's `gmail_quote`, Thunderbird's
//! `moz-cite-prefix`, Outlook's `divRplyFwdMsg`/`appendonsend`, a
//! `<blockquote type="cite">`), cut there and the rest is sanitised
//! again (which closes what the cut left open). A cut that would leave
//! nothing keeps the whole body. One pass over the input, linear.

use crate::intake::BodyFormat;

/// Attribution lines: (start, verb), matched case-insensitively on a
/// trimmed line that ends with `:` ("On <date>, <name> wrote:", "Am
/// <date> schrieb <name>:").
const ATTRIBUTIONS: &[(&str, &str)] = &[
    ("on ", " wrote"),
    ("am ", " schrieb "),
    ("le ", " a écrit"),
    ("el ", " escribió"),
    ("il ", " ha scritto"),
    ("op ", " schreef "),
    ("em ", " escreveu"),
];

/// Longest attribution line considered (a paragraph that happens to
/// start with "On" and end with "wrote:" is not one).
const MAX_ATTRIBUTION: usize = 300;

/// The body without the quoted history; the body itself when nothing is
/// found or the cut would leave nothing.
pub fn strip_quoted(body: &str, format: BodyFormat, separator: &str) -> String {
    let cut = match format {
        BodyFormat::Text => cut_text(body, separator),
        BodyFormat::Html => cut_html(body, separator),
    };
    match cut {
        Some(kept) if !is_blank(&kept, format) => kept,
        _ => body.to_string(),
    }
}

fn is_blank(text: &str, format: BodyFormat) -> bool {
    match format {
        BodyFormat::Text => text.trim().is_empty(),
        BodyFormat::Html => crate::mail_out::render::html_to_text(text)
            .trim()
            .is_empty(),
    }
}

fn is_attribution(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    l.len() <= MAX_ATTRIBUTION
        && l.ends_with(':')
        && ATTRIBUTIONS
            .iter()
            .any(|(start, verb)| l.starts_with(start) && l.contains(verb))
}

fn attribution_start(line: &str) -> bool {
    let l = line.trim_start().to_lowercase();
    ATTRIBUTIONS.iter().any(|(start, _)| l.starts_with(start))
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

fn cut_text(body: &str, separator: &str) -> Option<String> {
    let separator = separator.trim().to_lowercase();
    let lines: Vec<&str> = body.lines().collect();
    let keep = |n: usize| -> String {
        let mut end = n;
        // Blank and quoted lines right above the cut go with it, and an
        // attribution line above those.
        while end > 0 && (lines[end - 1].trim().is_empty() || is_quoted(lines[end - 1])) {
            end -= 1;
        }
        if end > 0 && is_attribution(lines[end - 1]) {
            end -= 1;
        } else if end > 1 && is_attribution(&format!("{} {}", lines[end - 2], lines[end - 1])) {
            end -= 2;
        }
        lines[..end].join("\n").trim_end().to_string()
    };
    if !separator.is_empty()
        && let Some(n) = lines
            .iter()
            .position(|l| l.to_lowercase().contains(&separator))
    {
        return Some(keep(n));
    }
    // The rest is history only when it is quoted (or empty) after the
    // attribution: a line "On Monday I wrote:" in running text is not.
    let only_quoted_after = |n: usize| {
        lines[n..]
            .iter()
            .all(|l| l.trim().is_empty() || is_quoted(l))
    };
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.eq_ignore_ascii_case("-----original message-----")
            || (t.starts_with("From:")
                && lines.get(i + 1).is_some_and(|n| {
                    let n = n.trim_start();
                    n.starts_with("Sent:") || n.starts_with("Date:")
                })
                && i > 0
                && lines[i - 1].trim().chars().all(|c| c == '_' || c == '-')
                && !lines[i - 1].trim().is_empty())
        {
            let start = if t.starts_with("From:") { i - 1 } else { i };
            return Some(keep(start));
        }
        if is_attribution(line) && only_quoted_after(i + 1) {
            return Some(keep(i));
        }
        if attribution_start(line)
            && let Some(next) = lines.get(i + 1)
            && is_attribution(&format!("{line} {next}"))
            && only_quoted_after(i + 2)
        {
            return Some(keep(i));
        }
    }
    None
}

/// Markers of quoted history in HTML mail, lower case.
const HTML_MARKERS: &[&str] = &[
    "<div class=\"gmail_quote",
    "<div class=\"moz-cite-prefix",
    "<div id=\"divrplyfwdmsg",
    "<div id=\"appendonsend",
    "<blockquote type=\"cite",
];

fn cut_html(body: &str, separator: &str) -> Option<String> {
    let lower = body.to_lowercase();
    // Lower-casing can change byte lengths outside ASCII: only use
    // positions when it did not.
    if lower.len() != body.len() {
        return None;
    }
    let separator = separator.trim().to_lowercase();
    let at_separator = (!separator.is_empty())
        .then(|| lower.find(&separator))
        .flatten()
        // Back to the tag that holds the separator's text.
        .map(|i| lower[..i].rfind('<').unwrap_or(i));
    let at_marker = HTML_MARKERS.iter().filter_map(|m| lower.find(m)).min();
    let cut = match (at_separator, at_marker) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(crate::intake::html::sanitize(&body[..cut]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEP: &str = "-- reply above this line --";

    fn text(body: &str) -> String {
        strip_quoted(body, BodyFormat::Text, SEP)
    }

    #[test]
    fn the_separator_cuts_with_the_attribution_above_it() {
        let body = "Thanks, that fixed it.\n\nOn Mon, 1 Dec 2026 at 10:00, Support <s@x.org> wrote:\n> -- reply above this line --\n>\n> Please restart the printer.\n";
        assert_eq!(text(body), "Thanks, that fixed it.");
        let wrapped = "Works now\n\nOn Mon, 1 Dec 2026 at 10:00, Support <s@x.org>\nwrote:\n\n> -- Reply above this line --\n> old";
        assert_eq!(text(wrapped), "Works now");
    }

    #[test]
    fn an_attribution_followed_by_quotes_cuts_there() {
        let body = "Still broken.\n\nAm 01.12.2026 um 10:00 schrieb Support <s@x.org>:\n> Bitte neu starten\n> Danke";
        assert_eq!(text(body), "Still broken.");
        let outlook =
            "See below\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n\nold text";
        assert_eq!(text(outlook), "See below");
        let outlook2 =
            "Ok\n________________________________\nFrom: Support <s@x.org>\nSent: Monday\nold";
        assert_eq!(text(outlook2), "Ok");
    }

    #[test]
    fn running_text_is_kept() {
        let body = "On Monday I wrote:\nthe printer is on fire\nand nobody came";
        assert_eq!(text(body), body);
        let only_quote = "> -- reply above this line --\n> all quoted";
        assert_eq!(text(only_quote), only_quote, "never cut to nothing");
        assert_eq!(text("plain answer"), "plain answer");
    }

    #[test]
    fn html_is_cut_at_the_separator_or_a_quote_container() {
        let gmail = r#"<div dir="ltr">Fixed, thanks</div><br><div class="gmail_quote"><div class="gmail_attr">On Mon wrote:</div><blockquote>old</blockquote></div>"#;
        let kept = strip_quoted(gmail, BodyFormat::Html, SEP);
        assert!(
            kept.contains("Fixed, thanks") && !kept.contains("old"),
            "{kept}"
        );
        let sep =
            "<p>Yes</p><p style=\"color:#888888\">-- reply above this line --</p><div>old</div>";
        let kept = strip_quoted(sep, BodyFormat::Html, SEP);
        assert!(kept.contains("Yes") && !kept.contains("old"), "{kept}");
        let nothing = "<p>just this</p>";
        assert_eq!(strip_quoted(nothing, BodyFormat::Html, SEP), nothing);
    }
}
