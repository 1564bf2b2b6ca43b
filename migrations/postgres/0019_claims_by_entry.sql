-- Schema version 19: PostgreSQL still claims every Message-ID in
-- `processed_messages` (instances race for it), and also takes a
-- Message-ID already held by an entry for a duplicate: data copied from
-- SQLite by `migrate-data` carries, from this version on, its filed
-- messages' ids in their entries only (migrations/sqlite/0019). The
-- version is kept in step with SQLite's.
SELECT 1;
