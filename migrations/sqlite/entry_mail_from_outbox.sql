-- Records outbox rows on the thread entries that queued them (bits of
-- `notify` as in 0006_waiting_mail.sql). Part of migration 6, and run
-- again after `migrate-data` has copied outbox rows into a SQLite file.
UPDATE thread_entries SET
    notify = (SELECT coalesce(sum(CASE o.kind WHEN 'autoresponse' THEN 1 ELSE 2 END), 0)
                   + coalesce(max(CASE o.event WHEN 'reply' THEN 4 ELSE 0 END), 0)
              FROM outbox o WHERE o.id BETWEEN thread_entries.id * 4 AND thread_entries.id * 4 + 3),
    alert_to = (SELECT o.recipients FROM outbox o
                WHERE o.id = thread_entries.id * 4 + 1 AND o.kind = 'alert')
WHERE notify = 0 AND id IN (SELECT DISTINCT entry_id FROM outbox WHERE entry_id IS NOT NULL);
