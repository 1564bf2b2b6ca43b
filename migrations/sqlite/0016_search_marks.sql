-- Schema version 16: the index can tell cheaply whether a match's words
-- are in the subject or in the names.
--
-- A search ranked by relevance scores its newest matches by where the
-- words are (subject, then names and file names, then bodies). That
-- took two more FTS5 queries with a column filter, and a column filter
-- reads the position list of every occurrence of the words in the
-- range, in bodies too: 1.6 ms of a 2.9 ms search for `printer`, 4 ms
-- of 6.3 ms for "out of toner" (1,000,000 tickets). The subject and
-- meta columns now also hold a marked copy of their words (`s_printer`,
-- `m_smith`: `domain::search::marked_copy`), whose short doclists hold
-- only those columns' occurrences. `_` joins a token (the tokenizer's
-- `tokenchars`) and is never part of a word (`domain::search::words`),
-- so a marked copy cannot be matched by, or match, anything typed.
--
-- FTS5 cannot change a table's tokenizer: it is made anew, FTS5's own
-- merging turned off again (migration 15), and every ticket is indexed
-- again by the same code right after this file runs.
DROP TABLE ticket_search;
CREATE VIRTUAL TABLE ticket_search USING fts5(
    subject, body, meta, scope,
    content = '', contentless_delete = 1, tokenize = "ascii tokenchars '_'", detail = full
);
INSERT INTO ticket_search (ticket_search, rank) VALUES ('automerge', 0);
