-- Schema version 20: on PostgreSQL, the trigger keeping `open_counts`
-- changes its two rows in one order, so that tickets moved at once in
-- opposite directions cannot deadlock (migrations/postgres/0020). SQLite
-- has one writer and no such race; the version is kept in step so that
-- both backends name the same schema.
SELECT 1;
