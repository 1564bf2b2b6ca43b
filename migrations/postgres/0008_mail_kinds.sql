-- Schema version 8 is SQLite's (mail recorded on the thread entry by
-- kind); PostgreSQL writes outbox rows by kind already. The number is
-- kept so both trees count alike.
SELECT 1;
