-- Outbox ids follow from the thread entry whose event queued the mail:
-- entry id * 4, plus 0 for the autoresponse, 1 for the staff alert (see
-- migrations/sqlite/0004). The two steps never collide.
UPDATE outbox SET id = -(entry_id * 4 + CASE WHEN kind = 'alert' THEN 1 ELSE 0 END)
    WHERE entry_id IS NOT NULL;
UPDATE outbox SET id = -id WHERE id < 0;
DROP INDEX outbox_ticket;

-- Only pending mail is indexed for the sender: a queued row by when it
-- is due, a claimed one by when its lease runs out. Sent and failed rows
-- leave the indexes, which stay small and hot however long the history.
DROP INDEX outbox_due;
CREATE INDEX outbox_queued ON outbox(next_attempt_at) WHERE state = 'queued';
CREATE INDEX outbox_leased ON outbox(lease_until) WHERE state = 'sending';
