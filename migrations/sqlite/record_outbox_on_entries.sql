-- Records outbox rows on the thread entries that queued them (`notify`
-- and `mail_to` as in 0008_mail_kinds.sql), after `migrate-data` has
-- copied outbox rows into a SQLite file. (Migration 6 ran the older
-- encoding, entry_mail_from_outbox.sql, which 0008 then converted.)
-- Run for a range of entry ids at a time (?1 to ?2, copy.rs): one
-- statement keeps a copy of every page it changes until it ends (in
-- the writer's memory: `temp_store = MEMORY`).
UPDATE thread_entries SET
    notify = (SELECT coalesce(sum(1 << (o.id - thread_entries.id * 4)), 0)
                   + coalesce(max(CASE o.kind WHEN 'autoresponse' THEN 64 ELSE 0 END), 0)
                   + coalesce(max(CASE o.event WHEN 'reply' THEN 128 ELSE 0 END), 0)
              FROM outbox o WHERE o.id BETWEEN thread_entries.id * 4 AND thread_entries.id * 4 + 3),
    mail_to = (SELECT json_group_object(o.kind, json(o.recipients)) FROM outbox o
               WHERE o.id BETWEEN thread_entries.id * 4 AND thread_entries.id * 4 + 3)
WHERE notify = 0 AND id BETWEEN ?1 AND ?2
  AND id IN (SELECT DISTINCT entry_id FROM outbox
             WHERE entry_id BETWEEN ?1 AND ?2);
