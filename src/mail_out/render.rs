//! Rendering an outbox row into subject and text with the configured
//! minijinja templates (compiled once at start-up).

use minijinja::Environment;

use super::OutboxError;
use crate::config::MailConfig;
use crate::domain::notify::{MailEvent, MailKind};
use crate::storage::OutboxJob;

/// The templates, compiled.
pub struct Templates {
    env: Environment<'static>,
    from_name: String,
    has_html: [bool; 2],
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// The text body.
    pub text: String,
    /// The HTML alternative, when its template is set.
    pub html: Option<String>,
}

/// Template names; the `.html` ones get minijinja's HTML auto-escaping.
const NAMES: [&str; 6] = [
    "autoresponse_subject",
    "autoresponse_body",
    "alert_subject",
    "alert_body",
    "autoresponse_body.html",
    "alert_body.html",
];

impl Templates {
    /// Compiles the templates of `config`; an error names the template.
    pub fn new(config: &MailConfig) -> Result<Self, OutboxError> {
        let mut env = Environment::new();
        // An unknown variable is an error, not an empty string: `check`
        // finds it at start-up instead of every mail missing a word.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let sources = [
            &config.autoresponse_subject,
            &config.autoresponse_body,
            &config.alert_subject,
            &config.alert_body,
            &config.autoresponse_body_html,
            &config.alert_body_html,
        ];
        for (name, source) in NAMES.iter().zip(sources) {
            env.add_template_owned(*name, source.clone())
                .map_err(|e| OutboxError::Template(format!("mail.{}: {e}", key(name))))?;
        }
        Ok(Self {
            env,
            from_name: config.from_name.clone(),
            has_html: [
                !config.autoresponse_body_html.trim().is_empty(),
                !config.alert_body_html.trim().is_empty(),
            ],
        })
    }

    /// Subject, text and HTML of a row.
    pub fn render(&self, job: &OutboxJob) -> Result<Rendered, OutboxError> {
        let vars = Vars {
            number: job.number.as_str(),
            subject: &job.subject,
            name: &job.user_name,
            email: &job.user_email,
            excerpt: excerpt(&job.body, &job.format, 600),
            topic: job.topic.as_deref().unwrap_or("-"),
            priority: &job.priority,
            department: job.department.as_deref().unwrap_or("-"),
            kind: job.event.as_str(),
            from_name: &self.from_name,
            sender_name: &job.sender.name,
            sender_email: &job.sender.email,
        };
        self.render_vars(&vars, job.kind == MailKind::Alert)
    }

    /// Renders every template, both kinds of mail and both events (new
    /// ticket, reply), with sample data, as `config check` and `serve`'s
    /// start do: a misspelt variable (`{{ nmae }}`) is an error naming
    /// the template, not an empty word in every mail.
    pub fn check(&self) -> Result<(), OutboxError> {
        for kind in [MailEvent::New, MailEvent::Reply] {
            for (sender_name, sender_email) in [
                ("Jane Doe", "jane@example.com"),
                ("Colleague", "cc@example.com"),
            ] {
                let vars = Vars {
                    number: "123456",
                    subject: "Printer on fire",
                    name: "Jane Doe",
                    email: "jane@example.com",
                    excerpt: "It started smoking this morning.".into(),
                    topic: "Report a Problem",
                    priority: "High",
                    department: "Support",
                    kind: kind.as_str(),
                    from_name: &self.from_name,
                    sender_name,
                    sender_email,
                };
                for is_alert in [false, true] {
                    self.render_vars(&vars, is_alert)?;
                }
            }
        }
        Ok(())
    }

    fn render_vars(&self, vars: &Vars<'_>, is_alert: bool) -> Result<Rendered, OutboxError> {
        let (subject, body, html) = if is_alert {
            ("alert_subject", "alert_body", "alert_body.html")
        } else {
            (
                "autoresponse_subject",
                "autoresponse_body",
                "autoresponse_body.html",
            )
        };
        let render = |name: &str| -> Result<String, OutboxError> {
            self.env
                .get_template(name)
                .and_then(|t| t.render(vars))
                .map_err(|e| OutboxError::Template(format!("mail.{}: {e}", key(name))))
        };
        // A subject is one line, whatever the template or ticket holds.
        let subject = render(subject)?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let html = if self.has_html[usize::from(is_alert)] {
            Some(render(html)?)
        } else {
            None
        };
        Ok(Rendered {
            subject,
            text: render(body)?,
            html,
        })
    }
}

/// The variables every mail template sees (README, Autoresponses).
#[derive(serde::Serialize)]
struct Vars<'a> {
    number: &'a str,
    subject: &'a str,
    name: &'a str,
    email: &'a str,
    excerpt: String,
    topic: &'a str,
    priority: &'a str,
    department: &'a str,
    kind: &'a str,
    from_name: &'a str,
    sender_name: &'a str,
    sender_email: &'a str,
}

/// An agent's reply as mail: `Re: [#number] subject`, the reply
/// separator above the body (the customer's answer is cut there), text
/// and HTML (HTML bodies sanitised again on the way out; text escaped).
pub fn response(job: &OutboxJob, separator: &str) -> Rendered {
    let subject = format!("Re: [#{}] {}", job.number, job.subject)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let (text, html_body) = if job.format == "html" {
        (
            html_to_text(&job.body),
            crate::intake::html::sanitize(&job.body),
        )
    } else {
        let escaped = escape_html(&job.body).replace('\n', "<br>\n");
        (job.body.clone(), format!("<div>{escaped}</div>"))
    };
    let text = format!("{separator}\n\n{}\n", text.trim_end());
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n\
         <p style=\"color:#888888\">{}</p>\n{html_body}\n</body></html>\n",
        escape_html(separator)
    );
    Rendered {
        subject,
        text,
        html: Some(html),
    }
}

/// Text of an HTML body: block ends and `<br>` become line breaks, tags
/// go, entities are decoded.
pub fn html_to_text(html: &str) -> String {
    let mut marked = String::with_capacity(html.len());
    let lower = html.to_ascii_lowercase();
    let mut last = 0;
    for (i, _) in lower.match_indices('<') {
        let rest = &lower[i..];
        let breaks = [
            "<br",
            "</p",
            "</div",
            "</li",
            "</tr",
            "</h1",
            "</h2",
            "</h3",
            "</blockquote",
        ]
        .iter()
        .any(|t| rest.starts_with(t));
        if breaks {
            marked.push_str(&html[last..i]);
            marked.push('\n');
            last = i;
        }
    }
    marked.push_str(&html[last..]);
    excerpt(&marked, "html", usize::MAX)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The configuration key of a template name (`alert_body.html` →
/// `alert_body_html`).
fn key(name: &str) -> String {
    name.replace('.', "_")
}

/// The first `max` characters of a body, as plain text.
pub fn excerpt(body: &str, format: &str, max: usize) -> String {
    let text = if format == "html" {
        let stripped = ammonia::Builder::empty().clean(body).to_string();
        stripped
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&nbsp;", " ")
            .replace("&amp;", "&")
    } else {
        body.to_string()
    };
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::notify::MailEvent;

    fn job(kind: &str, event: &str) -> OutboxJob {
        let (kind, event) = (
            MailKind::parse(kind).unwrap(),
            MailEvent::parse(event).unwrap(),
        );
        OutboxJob {
            id: 1,
            kind,
            event,
            recipients: vec!["u@example.com".into()],
            message_id: "m@x".into(),
            attempts: 1,
            created_at: 0,
            number: crate::domain::ids::TicketNumber::from_stored("123456".into()),
            subject: "Printer\non fire".into(),
            user_name: "Ann User".into(),
            user_email: "u@example.com".into(),
            topic: Some("Feedback".into()),
            priority: "High".into(),
            department: Some("Support".into()),
            body: "<p>It <b>burns</b> &amp; smokes</p>".into(),
            format: "html".into(),
            entry_message_id: None,
            sender: crate::storage::Party {
                name: "Mail Delivery System".into(),
                email: "mailer-daemon@example.net".into(),
            },
            earlier_mail: Vec::new(),
            department_id: Some(1),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn stock_templates_render_every_variable() {
        let t = Templates::new(&MailConfig::default()).unwrap();
        let r = t.render(&job("autoresponse", "new")).unwrap();
        assert_eq!(r.subject, "[#123456] Printer on fire");
        assert!(
            r.text.contains("Dear Ann User") && r.text.contains("It burns & smokes"),
            "{}",
            r.text
        );
        assert_eq!(r.html, None);
        let r = t.render(&job("alert", "reply")).unwrap();
        assert_eq!(r.subject, "Reply [#123456] Printer on fire");
        assert!(
            r.text.contains("u@example.com")
                && r.text.contains("Feedback")
                && r.text.contains("High"),
            "{}",
            r.text
        );
    }

    #[test]
    fn a_reply_alert_names_the_entrys_real_sender() {
        let t = Templates::new(&MailConfig::default()).unwrap();
        let r = t.render(&job("alert", "reply")).unwrap();
        let from = r.text.lines().find(|l| l.starts_with("From:")).unwrap();
        assert_eq!(
            from,
            "From:       Mail Delivery System <mailer-daemon@example.net>"
        );
        assert!(
            r.text.contains("User:       Ann User <u@example.com>"),
            "{}",
            r.text
        );
    }

    #[test]
    fn html_templates_escape_what_they_show() {
        let config = MailConfig {
            alert_body_html: "<p>{{ subject }} from {{ sender_name }}</p>".into(),
            ..MailConfig::default()
        };
        let t = Templates::new(&config).unwrap();
        let mut j = job("alert", "new");
        j.subject = "<script>x</script>".into();
        let r = t.render(&j).unwrap();
        assert_eq!(
            r.html.as_deref(),
            Some("<p>&lt;script&gt;x&lt;&#x2f;script&gt; from Mail Delivery System</p>")
        );
        assert_eq!(t.render(&job("autoresponse", "new")).unwrap().html, None);
    }

    #[test]
    fn a_broken_html_template_names_its_key() {
        let config = MailConfig {
            autoresponse_body_html: "{% for %}".into(),
            ..MailConfig::default()
        };
        let err = Templates::new(&config).err().unwrap().to_string();
        assert!(err.contains("mail.autoresponse_body_html"), "{err}");
    }

    #[test]
    fn a_broken_template_is_a_startup_error_naming_it() {
        let config = MailConfig {
            alert_body: "{% if %}".into(),
            ..MailConfig::default()
        };
        let err = Templates::new(&config).err().unwrap().to_string();
        assert!(err.contains("mail.alert_body"), "{err}");
    }

    #[test]
    fn stock_templates_pass_the_check() {
        Templates::new(&MailConfig::default())
            .unwrap()
            .check()
            .unwrap();
    }

    #[test]
    fn a_misspelt_variable_fails_the_check_naming_the_template() {
        // Only in the reply branch: the check renders both events.
        let config = MailConfig {
            alert_subject: "{% if kind == 'reply' %}Re {{ nmae }}{% else %}New{% endif %}".into(),
            ..MailConfig::default()
        };
        let err = Templates::new(&config)
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mail.alert_subject") && err.contains("undefined"),
            "{err}"
        );
    }

    #[test]
    fn excerpts_are_short_plain_text() {
        assert_eq!(excerpt("abcdef", "text", 3), "abc…");
        assert_eq!(excerpt("<p>a &amp; b</p>", "html", 10), "a & b");
    }
}
