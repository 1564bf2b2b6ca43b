-- Schema version 19: on SQLite a filed email's Message-ID is claimed by
-- its entry alone (the unique `thread_entries.message_id`, looked up in
-- the writer's transaction); `processed_messages` gets a row only for a
-- message filed without an entry of that id (a bounce that was only
-- logged). A binary older than this schema would look in
-- `processed_messages` alone, take a redelivered message for a new one
-- and fail on the entry's unique id: the version tells it to stop.
SELECT 1;
