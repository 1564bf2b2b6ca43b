-- oxidesk schema, version 1 (SQLite). PostgreSQL gets the same numbering.
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    email      TEXT NOT NULL COLLATE NOCASE UNIQUE,
    name       TEXT NOT NULL,
    created    TEXT NOT NULL
);

CREATE TABLE tickets (
    id            INTEGER PRIMARY KEY,
    number        TEXT NOT NULL UNIQUE,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    subject       TEXT NOT NULL,
    status        TEXT NOT NULL,
    source        TEXT NOT NULL,
    priority_id   INTEGER NOT NULL,
    priority_name TEXT NOT NULL,
    topic_id      INTEGER,
    topic_name    TEXT,
    dept_id       INTEGER,
    dept_name     TEXT,
    ip            TEXT NOT NULL,
    created       TEXT NOT NULL,
    alert         INTEGER NOT NULL,
    autorespond   INTEGER NOT NULL
);

CREATE TABLE thread_entries (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    kind        TEXT NOT NULL,
    format      TEXT NOT NULL,
    body        TEXT NOT NULL,
    from_name   TEXT NOT NULL,
    from_email  TEXT NOT NULL,
    created     TEXT NOT NULL,
    message_id  TEXT UNIQUE,
    auto_reply  INTEGER NOT NULL DEFAULT 0,
    bounce      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX thread_entries_ticket ON thread_entries(ticket_id);

-- Identical content is stored once (API: attachments carry their sha256).
CREATE TABLE blobs (
    sha256  BLOB PRIMARY KEY,
    size    INTEGER NOT NULL,
    data    BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY,
    entry_id      INTEGER NOT NULL REFERENCES thread_entries(id),
    position      INTEGER NOT NULL,
    sha256        BLOB NOT NULL REFERENCES blobs(sha256),
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    inline        INTEGER NOT NULL,
    content_id    TEXT
);
CREATE INDEX attachments_entry ON attachments(entry_id);

CREATE TABLE field_values (
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    form       TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (ticket_id, form, name)
) WITHOUT ROWID;

-- Keys are stored as SHA-256 of the secret; the secret is shown once.
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    hash        BLOB NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    addresses   TEXT NOT NULL,
    is_active   INTEGER NOT NULL,
    can_create  INTEGER NOT NULL,
    can_read    INTEGER NOT NULL,
    notes       TEXT NOT NULL,
    created     TEXT NOT NULL
);

CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) WITHOUT ROWID;
