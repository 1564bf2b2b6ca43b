-- Schema version 18: on PostgreSQL, each search row also holds the
-- ticket's scope, marked copies and id range as lexemes (see
-- migrations/postgres/0018_search_own_lexemes.sql); SQLite's FTS5 has
-- had its scope column and marked copies since migrations 14 and 16.
-- The version is kept in step so that both backends name the same
-- schema.
SELECT 1;
