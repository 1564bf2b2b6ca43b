-- Email parts left out of a filed message (over max_attachment_bytes or
-- past max_attachments): a customer's mail is never refused for one
-- oversize file, and staff see what was left out. JSON array of
-- {"name", "size", "reason"}; NULL when nothing was left out.
ALTER TABLE thread_entries ADD COLUMN dropped TEXT;
