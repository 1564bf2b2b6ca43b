-- Schema version 16: on SQLite, the search index holds a marked copy of
-- the subject's and the names' words, for ranking (see
-- migrations/sqlite/0016_search_marks.sql). PostgreSQL ranks with the
-- weights its `tsvector` carries; the version is kept in step so that
-- both backends name the same schema.
SELECT 1;
