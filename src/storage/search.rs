//! A ticket's full-text document, as both backends index it: the words
//! of its subject; of its entries' bodies; of its user's name and
//! address and its attachments' names ([`crate::domain::search`] makes
//! the words). Backend SQL is in `sqlite/search.rs` and
//! `postgres/search.rs`.

use crate::domain::search::{body_text, push_index_text};

use super::{BodyFormat, NewTicket};

/// Most bytes of entry words indexed per ticket.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;
/// Most bytes of name and address words indexed per ticket.
pub(crate) const MAX_META_BYTES: usize = 16 * 1024;

/// The three indexed parts of a ticket (space-joined words each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SearchDoc {
    /// The subject's words (ranked highest).
    pub subject: String,
    /// Every entry body's words.
    pub body: String,
    /// The user's name and address, attachment names.
    pub meta: String,
    /// Who may see the ticket: its department and assignee
    /// ([`crate::domain::search::scope_words`]; SQLite indexes it, as
    /// PostgreSQL filters on the ticket's columns).
    pub scope: String,
}

impl SearchDoc {
    /// Bytes of text to index.
    pub fn text_len(&self) -> usize {
        self.subject.len() + self.body.len() + self.meta.len()
    }

    /// A new ticket's document.
    pub fn of_ticket(t: &NewTicket) -> Self {
        let mut doc = SearchDoc {
            scope: crate::domain::search::scope_words(t.department.as_ref().map(|d| d.id), None),
            ..SearchDoc::default()
        };
        push_index_text(&mut doc.subject, &t.subject);
        push_index_text(&mut doc.meta, &t.user_name);
        push_index_text(&mut doc.meta, t.user_email.as_str());
        let names: Vec<&str> = t
            .entry
            .attachments
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        doc.push_entry(&t.entry.body, t.entry.format, &names);
        doc
    }

    /// Adds an entry: its body, its attachments' names. A ticket's
    /// words stop at [`MAX_BODY_BYTES`] and [`MAX_META_BYTES`] (a
    /// PostgreSQL `tsvector` holds at most 1 MB; an endless thread is
    /// found by its beginning).
    pub fn push_entry(&mut self, body: &str, format: BodyFormat, attachment_names: &[&str]) {
        if self.body.len() < MAX_BODY_BYTES {
            push_index_text(&mut self.body, &body_text(body, format == BodyFormat::Html));
        }
        for name in attachment_names {
            if self.meta.len() < MAX_META_BYTES {
                push_index_text(&mut self.meta, name);
            }
        }
    }
}
