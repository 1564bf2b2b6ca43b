-- Schema version 8: what an entry queued is recorded by kind, so that a
-- new kind of mail needs no schema change.
--
-- `notify`: bit `1 << index` for each kind of mail the entry queued
-- (domain::notify::MailKind::index: autoresponse 0, alert 1, …, below
-- 64), bit 64 when it counted against the user's hourly cap, bit 128
-- when the event was a reply (it was bit 4). `mail_to` (was `alert_to`):
-- a JSON object of recipients by kind name, for kinds not sent to the
-- ticket's user alone (it was the alert's JSON array).
ALTER TABLE thread_entries RENAME COLUMN alert_to TO mail_to;
UPDATE thread_entries SET notify = (notify & 3) | ((notify & 4) * 32) | ((notify & 1) * 64)
WHERE notify <> 0;
UPDATE thread_entries SET mail_to = json_object('alert', json(mail_to)) WHERE mail_to IS NOT NULL;
