-- Schema version 6 is SQLite's: there a request records the mail it
-- queues on its thread entry and the sender writes the outbox row when it
-- takes the mail (ids grow in commit order under SQLite's one writer).
-- PostgreSQL's instances commit concurrently, so ids do not, and a
-- request keeps writing its outbox rows itself. The number is kept so
-- both trees count alike.
SELECT 1;
