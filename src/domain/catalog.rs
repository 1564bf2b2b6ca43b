//! The configuration compiled once at start-up into the lookup tables the
//! request path uses (no per-request work that could be done once).

use std::collections::HashMap;
use std::sync::Arc;

use jiff::tz::TimeZone;

use super::DomainError;
use super::notify::MailRules;
use crate::config::{Channel, Config, EmailConfig, Field, UnknownFields};
use crate::intake::{FieldLimits, IntakeLimits};
use crate::storage::{Named, NumberPolicy};

/// A field and the form it belongs to.
#[derive(Debug, Clone)]
pub struct FormField {
    /// Form name.
    pub form: String,
    /// The field.
    pub field: Field,
}

/// A help topic, ready for lookups.
#[derive(Debug, Clone)]
pub struct TopicEntry {
    /// Id and name.
    pub named: Named,
    /// Refused when false.
    pub active: bool,
    /// Its default priority.
    pub default_priority: Option<Named>,
    /// Its department (else the default).
    pub department: Option<Named>,
    /// Fields of its extra forms, in form order.
    pub fields: Vec<Arc<FormField>>,
    /// The same, by name.
    pub by_name: HashMap<String, Arc<FormField>>,
}

/// Everything the request path needs from the configuration.
#[derive(Debug)]
pub struct Catalog {
    /// Priorities by id.
    pub priorities: HashMap<i64, Named>,
    /// Priorities by lower-case name (accepted as well as ids).
    pub priorities_by_name: HashMap<String, Named>,
    /// Topics by id.
    pub topics: HashMap<i64, TopicEntry>,
    /// Fields of the user and ticket forms, in order.
    pub always: Vec<Arc<FormField>>,
    /// The same, by name.
    pub always_by_name: HashMap<String, Arc<FormField>>,
    /// Default priority.
    pub default_priority: Named,
    /// Default topic.
    pub default_topic: Option<i64>,
    /// Default department.
    pub default_department: Option<Named>,
    /// Departments by id (an agent's departments are these ids).
    pub departments: HashMap<i64, Named>,
    /// The helpdesk time zone.
    pub tz: TimeZone,
    /// Reject or ignore unknown fields.
    pub unknown_fields: UnknownFields,
    /// Ticket numbering.
    pub numbers: NumberPolicy,
    /// Email intake settings.
    pub email: EmailConfig,
    /// Ban list: (lower-case address or `@domain`, channels).
    pub bans: Vec<(String, Vec<Channel>)>,
    /// Limits for intake.
    pub intake_limits: IntakeLimits,
    /// Caps on the fields of a request: count (intake) and lengths (domain).
    pub field_limits: FieldLimits,
    /// Which mail events queue (recipients, caps).
    pub mail_rules: MailRules,
    /// Domain of outgoing Message-IDs (the sender address's).
    pub message_domain: String,
}

impl Catalog {
    /// Whether `address` is banned on `channel`.
    pub fn is_banned(&self, address: &str, channel: Channel) -> bool {
        let address = address.trim().to_lowercase();
        let domain = address.rfind('@').map(|i| &address[i..]);
        self.bans.iter().any(|(pattern, channels)| {
            channels.contains(&channel)
                && (*pattern == address
                    || (pattern.starts_with('@') && Some(pattern.as_str()) == domain))
        })
    }

    /// The topic a request names, or the default one: `Ok(None)` when
    /// there is neither, an error naming `field` when the id is unknown
    /// or the topic inactive.
    pub fn topic(&self, id: Option<i64>, field: &str) -> Result<Option<&TopicEntry>, DomainError> {
        let Some(id) = id.or(self.default_topic) else {
            return Ok(None);
        };
        match self.topics.get(&id) {
            Some(t) if t.active => Ok(Some(t)),
            Some(_) => Err(DomainError::Invalid {
                field: field.into(),
                message: format!("help topic {id} is not active"),
            }),
            None => Err(DomainError::Invalid {
                field: field.into(),
                message: format!("unknown help topic {id}"),
            }),
        }
    }

    /// A priority by id (configured priorities only).
    pub fn priority(&self, id: i64) -> Option<Named> {
        self.priorities.get(&id).cloned()
    }
}

impl Catalog {
    /// Compiles a validated configuration.
    pub fn new(config: &Config) -> Self {
        let priorities: HashMap<i64, Named> = config
            .priorities
            .iter()
            .map(|p| {
                (
                    p.id,
                    Named {
                        id: p.id,
                        name: p.name.clone(),
                    },
                )
            })
            .collect();
        let departments: HashMap<i64, Named> = config
            .departments
            .iter()
            .map(|d| {
                (
                    d.id,
                    Named {
                        id: d.id,
                        name: d.name.clone(),
                    },
                )
            })
            .collect();
        let form_fields = |form: &str| -> Vec<Arc<FormField>> {
            config
                .forms
                .get(form)
                .map(|f| {
                    f.fields
                        .iter()
                        .map(|field| {
                            Arc::new(FormField {
                                form: form.to_string(),
                                field: field.clone(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut always = form_fields("user");
        always.extend(form_fields("ticket"));
        let always_by_name = always
            .iter()
            .map(|f| (f.field.name.clone(), f.clone()))
            .collect();
        let topics = config
            .topics
            .iter()
            .map(|t| {
                let fields: Vec<Arc<FormField>> =
                    t.forms.iter().flat_map(|f| form_fields(f)).collect();
                let by_name = fields
                    .iter()
                    .map(|f| (f.field.name.clone(), f.clone()))
                    .collect();
                let entry = TopicEntry {
                    named: Named {
                        id: t.id,
                        name: t.name.clone(),
                    },
                    active: t.active,
                    default_priority: t
                        .default_priority_id
                        .and_then(|p| priorities.get(&p).cloned()),
                    department: t.department_id.and_then(|d| departments.get(&d).cloned()),
                    fields,
                    by_name,
                };
                (t.id, entry)
            })
            .collect();
        let default_priority = priorities
            .get(&config.tickets.default_priority_id)
            .cloned()
            .unwrap_or(Named {
                id: config.tickets.default_priority_id,
                name: String::new(),
            });
        Self {
            priorities_by_name: priorities
                .values()
                .map(|p| (p.name.to_lowercase(), p.clone()))
                .collect(),
            priorities,
            topics,
            always,
            always_by_name,
            default_priority,
            default_topic: config.tickets.default_topic_id,
            default_department: departments
                .get(&config.tickets.default_department_id)
                .cloned(),
            departments,
            // Validated by Config::validated.
            tz: TimeZone::get(&config.timezone).unwrap_or(TimeZone::UTC),
            unknown_fields: config.unknown_fields,
            numbers: NumberPolicy {
                format: config.tickets.number_format.clone(),
                sequential: config.tickets.number_sequence
                    == crate::config::NumberSequence::Sequential,
                widen_at: config.tickets.number_widen_at,
                widened: Default::default(),
            },
            email: config.email.clone(),
            bans: config
                .bans
                .iter()
                .map(|b| (b.address.trim().to_lowercase(), b.channels.clone()))
                .collect(),
            mail_rules: MailRules {
                reply_separator: config.mail.reply_separator.clone(),
                autoresponse_limit_per_hour: config.mail.autoresponse_limit_per_hour,
                alert_limit_per_ticket_per_hour: config.mail.alert_limit_per_ticket_per_hour,
                alert_recipients: Arc::new(
                    config
                        .departments
                        .iter()
                        .map(|d| (d.id, d.alert_recipients.clone()))
                        .collect(),
                ),
            },
            message_domain: config
                .mail
                .from_address
                .rsplit('@')
                .next()
                .unwrap_or("localhost")
                .trim_end_matches('>')
                .to_string(),
            intake_limits: IntakeLimits {
                max_attachment_bytes: config.limits.max_attachment_bytes,
                max_attachments: config.limits.max_attachments,
            },
            field_limits: FieldLimits {
                max_fields: config.limits.max_fields,
                max_name_chars: config.limits.max_name_chars,
                max_subject_chars: config.limits.max_subject_chars,
                max_field_value_chars: config.limits.max_field_value_chars,
                max_file_name_chars: config.limits.max_file_name_chars,
            },
        }
    }
}
