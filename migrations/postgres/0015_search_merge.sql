-- Schema version 15: on SQLite, the search index is merged a little
-- with every group instead of in FTS5's bursts (see
-- migrations/sqlite/0015_search_merge.sql). PostgreSQL's GIN index has
-- nothing alike; the version is kept in step so that both backends
-- name the same schema.
SELECT 1;
