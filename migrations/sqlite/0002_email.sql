-- Email intake (schema version 2).

-- Exactly-once: a Message-ID is claimed here before anything else of its
-- message is written; a second claim finds the row (ticket_id NULL for a
-- bounce that was only logged).
CREATE TABLE processed_messages (
    message_id  TEXT PRIMARY KEY,
    ticket_id   INTEGER REFERENCES tickets(id),
    created     TEXT NOT NULL
) WITHOUT ROWID;

-- The raw message of an email entry, deflate-compressed, so it can be
-- parsed again.
CREATE TABLE raw_messages (
    entry_id    INTEGER PRIMARY KEY REFERENCES thread_entries(id),
    compressed  BLOB NOT NULL
);
