-- Email intake (schema version 2).
CREATE TABLE processed_messages (
    message_id  TEXT PRIMARY KEY,
    ticket_id   BIGINT REFERENCES tickets(id),
    created     TEXT NOT NULL
);

CREATE TABLE raw_messages (
    entry_id    BIGINT PRIMARY KEY REFERENCES thread_entries(id),
    compressed  BYTEA NOT NULL
);
