-- Outbox ids follow from the thread entry whose event queued the mail:
-- entry id * 4, plus 0 for the autoresponse, 1 for the staff alert (see
-- migrations/sqlite/0004). The two steps never collide.
UPDATE outbox SET id = -(entry_id * 4 + CASE WHEN kind = 'alert' THEN 1 ELSE 0 END)
    WHERE entry_id IS NOT NULL;
UPDATE outbox SET id = -id WHERE id < 0;
DROP INDEX outbox_ticket;
