-- Schema version 6: a mail is queued by the thread entry that causes it,
-- and enters the outbox table when the sender takes it.
--
-- `notify` holds what the entry queued, in the ticket's (or reply's) own
-- transaction: bit 1 an autoresponse to the ticket's user, bit 2 a staff
-- alert to `alert_to` (a JSON array), bit 4 set when the event is a
-- reply rather than a new ticket. The sender reads entries in id order
-- past the last one it took (SQLite has one writer, so ids grow in
-- commit order) and writes each mail's outbox row, id `entry id * 4 +
-- kind`, as it claims it. A request so writes no outbox row and no index
-- entry: the outbox's own pages were most of what notifications cost
-- each commit. Entries up to max(outbox.id) / 4 have all been taken.
ALTER TABLE thread_entries ADD COLUMN notify INTEGER NOT NULL DEFAULT 0;
ALTER TABLE thread_entries ADD COLUMN alert_to TEXT;

-- Mail queued before this version is already in the outbox: it is
-- recorded on its entries too (entry_mail_from_outbox.sql, run next), so
-- that the entries alone say what was queued (the hourly autoresponse
-- cap is rebuilt from them).
