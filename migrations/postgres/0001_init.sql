-- oxidesk schema, version 1 (PostgreSQL). Same numbering as migrations/sqlite.
CREATE TABLE users (
    id         BIGSERIAL PRIMARY KEY,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL,
    created    TEXT NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE tickets (
    id            BIGSERIAL PRIMARY KEY,
    number        TEXT NOT NULL UNIQUE,
    user_id       BIGINT NOT NULL REFERENCES users(id),
    subject       TEXT NOT NULL,
    status        TEXT NOT NULL,
    source        TEXT NOT NULL,
    priority_id   BIGINT NOT NULL,
    priority_name TEXT NOT NULL,
    topic_id      BIGINT,
    topic_name    TEXT,
    dept_id       BIGINT,
    dept_name     TEXT,
    ip            TEXT NOT NULL,
    created       TEXT NOT NULL,
    alert         BOOLEAN NOT NULL,
    autorespond   BOOLEAN NOT NULL
);

CREATE TABLE thread_entries (
    id          BIGSERIAL PRIMARY KEY,
    ticket_id   BIGINT NOT NULL REFERENCES tickets(id),
    kind        TEXT NOT NULL,
    format      TEXT NOT NULL,
    body        TEXT NOT NULL,
    from_name   TEXT NOT NULL,
    from_email  TEXT NOT NULL,
    created     TEXT NOT NULL,
    message_id  TEXT UNIQUE,
    auto_reply  BOOLEAN NOT NULL DEFAULT false,
    bounce      BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX thread_entries_ticket ON thread_entries(ticket_id);

CREATE TABLE blobs (
    sha256  BYTEA PRIMARY KEY,
    size    BIGINT NOT NULL,
    data    BYTEA NOT NULL
);

CREATE TABLE attachments (
    id            BIGSERIAL PRIMARY KEY,
    entry_id      BIGINT NOT NULL REFERENCES thread_entries(id),
    position      BIGINT NOT NULL,
    sha256        BYTEA NOT NULL REFERENCES blobs(sha256),
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    inline        BOOLEAN NOT NULL,
    content_id    TEXT
);
CREATE INDEX attachments_entry ON attachments(entry_id);

CREATE TABLE field_values (
    ticket_id  BIGINT NOT NULL REFERENCES tickets(id),
    form       TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (ticket_id, form, name)
);

CREATE TABLE api_keys (
    id          BIGSERIAL PRIMARY KEY,
    hash        BYTEA NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    addresses   TEXT NOT NULL,
    is_active   BOOLEAN NOT NULL,
    can_create  BOOLEAN NOT NULL,
    can_read    BOOLEAN NOT NULL,
    notes       TEXT NOT NULL,
    created     TEXT NOT NULL
);

-- Sequential ticket numbers (tickets.number_sequence = "sequential").
CREATE SEQUENCE ticket_number_seq;
