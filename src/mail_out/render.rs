//! Rendering an outbox row into subject and text with the configured
//! minijinja templates (compiled once at start-up).

use minijinja::{Environment, context};

use super::OutboxError;
use crate::config::MailConfig;
use crate::storage::OutboxJob;

/// The four templates, compiled.
pub struct Templates {
    env: Environment<'static>,
    from_name: String,
}

const NAMES: [&str; 4] = [
    "autoresponse_subject",
    "autoresponse_body",
    "alert_subject",
    "alert_body",
];

impl Templates {
    /// Compiles the templates of `config`; an error names the template.
    pub fn new(config: &MailConfig) -> Result<Self, OutboxError> {
        let mut env = Environment::new();
        let sources = [
            &config.autoresponse_subject,
            &config.autoresponse_body,
            &config.alert_subject,
            &config.alert_body,
        ];
        for (name, source) in NAMES.iter().zip(sources) {
            env.add_template_owned(*name, source.clone())
                .map_err(|e| OutboxError::Template(format!("mail.{name}: {e}")))?;
        }
        Ok(Self {
            env,
            from_name: config.from_name.clone(),
        })
    }

    /// Subject and body of a row.
    pub fn render(&self, job: &OutboxJob) -> Result<(String, String), OutboxError> {
        let ctx = context! {
            number => job.number,
            subject => job.subject,
            name => job.user_name,
            email => job.user_email,
            excerpt => excerpt(&job.body, &job.format, 600),
            topic => job.topic.as_deref().unwrap_or("-"),
            priority => job.priority,
            department => job.department.as_deref().unwrap_or("-"),
            kind => job.event,
            from_name => self.from_name,
        };
        let (subject, body) = if job.kind == "alert" {
            ("alert_subject", "alert_body")
        } else {
            ("autoresponse_subject", "autoresponse_body")
        };
        let render = |name: &str| -> Result<String, OutboxError> {
            self.env
                .get_template(name)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| OutboxError::Template(format!("mail.{name}: {e}")))
        };
        // A subject is one line, whatever the template or ticket holds.
        let subject = render(subject)?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok((subject, render(body)?))
    }
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

    fn job(kind: &str, event: &str) -> OutboxJob {
        OutboxJob {
            id: 1,
            kind: kind.into(),
            event: event.into(),
            recipients: vec!["u@example.com".into()],
            message_id: "m@x".into(),
            attempts: 1,
            created_at: 0,
            number: "123456".into(),
            subject: "Printer\non fire".into(),
            user_name: "Ann User".into(),
            user_email: "u@example.com".into(),
            topic: Some("Feedback".into()),
            priority: "High".into(),
            department: Some("Support".into()),
            body: "<p>It <b>burns</b> &amp; smokes</p>".into(),
            format: "html".into(),
            entry_message_id: None,
        }
    }

    #[test]
    fn stock_templates_render_every_variable() {
        let t = Templates::new(&MailConfig::default()).unwrap();
        let (subject, body) = t.render(&job("autoresponse", "new")).unwrap();
        assert_eq!(subject, "[#123456] Printer on fire");
        assert!(
            body.contains("Dear Ann User") && body.contains("It burns & smokes"),
            "{body}"
        );
        let (subject, body) = t.render(&job("alert", "reply")).unwrap();
        assert_eq!(subject, "Reply [#123456] Printer on fire");
        assert!(
            body.contains("u@example.com") && body.contains("Feedback") && body.contains("High"),
            "{body}"
        );
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
    fn excerpts_are_short_plain_text() {
        assert_eq!(excerpt("abcdef", "text", 3), "abc…");
        assert_eq!(excerpt("<p>a &amp; b</p>", "html", 10), "a & b");
    }
}
