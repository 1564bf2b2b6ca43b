-- Schema version 14: the search index knows who may see each ticket.
--
-- A fourth column, `scope`, holds two terms made by `domain::search`
-- (`scope_words`): the ticket's department and its assignee. A search
-- by an agent of some departments intersects its words with those
-- departments' and the agent's own terms inside FTS5, so it reads only
-- matches the agent may see, instead of reading every recent match and
-- looking its ticket up to drop the others (~25,000 lookups for a
-- common word searched by an agent of a department with 8% of the
-- tickets). The user's query is confined to the other three columns.
-- The ticket's columns stay the rule (the SQL filters on them too);
-- the index is rewritten with every transfer and assignment.
--
-- FTS5 cannot add a column to a table: it is made anew, and every
-- ticket is indexed again by the same code right after this file runs.
DROP TABLE ticket_search;
CREATE VIRTUAL TABLE ticket_search USING fts5(
    subject, body, meta, scope,
    content = '', contentless_delete = 1, tokenize = 'ascii', detail = full
);
