-- Outbox ids follow from the thread entry whose event queued the mail:
-- entry id * 4, plus 0 for the autoresponse, 1 for the staff alert. A
-- ticket's mails are then found through its entries (a range of the
-- primary key per entry), and the outbox needs no index by ticket: one
-- b-tree fewer to write per queued mail. The two steps never collide.
UPDATE outbox SET id = -(entry_id * 4 + (kind = 'alert')) WHERE entry_id IS NOT NULL;
UPDATE outbox SET id = -id WHERE id < 0;
DROP INDEX outbox_ticket;

-- Only pending mail is indexed for the sender: a queued row by when it
-- is due, a claimed one by when its lease runs out. Sent and failed rows
-- leave the indexes, which stay small and hot however long the history.
DROP INDEX outbox_due;
CREATE INDEX outbox_queued ON outbox(next_attempt_at) WHERE state = 'queued';
CREATE INDEX outbox_leased ON outbox(lease_until) WHERE state = 'sending';
