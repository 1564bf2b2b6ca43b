-- Schema version 10: full-text search (STAFF-API.md, Full-text search).
--
-- One row per ticket: a tsvector of the words that `domain::search`
-- makes (folded, CJK one character per word; the `simple` configuration
-- keeps them as they are), weighted A for the subject, B for the user's
-- name and address and the attachments' names, D for entry bodies. A
-- table of its own, not a column of `tickets`: a ticket's status or
-- assignee changes would otherwise re-insert all its words into the GIN
-- index. Existing tickets are indexed by the same code right after this
-- file runs; an appended entry concatenates its words.
CREATE TABLE ticket_search (
    ticket_id  BIGINT PRIMARY KEY REFERENCES tickets(id),
    doc        TSVECTOR NOT NULL
);
CREATE INDEX ticket_search_doc ON ticket_search USING gin (doc);
