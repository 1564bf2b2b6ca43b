-- Schema version 17: on SQLite, FTS5 no longer merges a level for its
-- deleted rows alone (see migrations/sqlite/0017_search_deletemerge.sql).
-- PostgreSQL has no such index; the version is kept in step so that
-- both backends name the same schema.
SELECT 1;
