-- Schema version 14: on SQLite, the search index learns who may see each
-- ticket (a `scope` column in its FTS5 table; migrations/sqlite/0014).
-- PostgreSQL's search filters on the ticket's own columns and its index
-- is unchanged; this version keeps both backends' numbering the same.
SELECT 1;
