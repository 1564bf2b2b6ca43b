-- Lean intake (issue 17). Schema version 13 on SQLite is the API-key
-- version its key cache watches; PostgreSQL's cache listens to
-- notifications (migration 5).
SELECT 1;
