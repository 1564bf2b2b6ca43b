-- Schema version 10: full-text search (STAFF-API.md, Full-text search).
--
-- One row per ticket, rowid = tickets.id: `subject`; `body`, the text of
-- every thread entry (HTML without its tags); `meta`, the user's name and
-- address and every attachment's name. The text is the words that
-- `domain::search` makes (folded, CJK one character per word), joined by
-- spaces: the `ascii` tokenizer only has to split on them.
--
-- Contentless (the text is in the tickets and entries already; a copy
-- would double the database), with `contentless_delete=1` so that a
-- ticket's row can be replaced when an entry is appended: the row is
-- rebuilt from the stored ticket (`storage::sqlite::search`). Existing
-- tickets are indexed by the same code right after this file runs.
CREATE VIRTUAL TABLE ticket_search USING fts5(
    subject, body, meta,
    content = '', contentless_delete = 1, tokenize = 'ascii', detail = full
);
