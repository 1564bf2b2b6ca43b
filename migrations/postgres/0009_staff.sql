-- Schema version 9: the staff side (STAFF-API.md). Agents, their
-- departments and tokens; a ticket's lifecycle (assignee, status time,
-- updated, version for ETag); entries written by agents; change events.

-- Agents sign in with a password (argon2id PHC string).
CREATE TABLE agents (
    id             BIGSERIAL PRIMARY KEY,
    email          TEXT NOT NULL,
    name           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    is_admin       BOOLEAN NOT NULL,
    is_active      BOOLEAN NOT NULL,
    created        TEXT NOT NULL
);
CREATE UNIQUE INDEX agents_email ON agents (lower(email));

-- The departments (configuration ids) whose tickets an agent sees.
CREATE TABLE agent_departments (
    agent_id  BIGINT NOT NULL REFERENCES agents(id),
    dept_id   BIGINT NOT NULL,
    PRIMARY KEY (agent_id, dept_id)
);

-- Sessions and personal access tokens, stored as SHA-256 of the secret.
CREATE TABLE agent_tokens (
    id          BIGSERIAL PRIMARY KEY,
    hash        BYTEA NOT NULL UNIQUE,
    agent_id    BIGINT NOT NULL REFERENCES agents(id),
    kind        TEXT NOT NULL,      -- session | personal
    name        TEXT NOT NULL,
    created     BIGINT NOT NULL,   -- unix seconds
    expires_at  BIGINT,            -- unix seconds; NULL: until revoked
    last_used   BIGINT
);
CREATE INDEX agent_tokens_agent ON agent_tokens(agent_id);

-- A ticket's lifecycle. `updated`: the last change of any kind (RFC 3339
-- seconds, like `created`); `last_message_at`: the user's last message;
-- `status_changed`: when it was last resolved, closed or reopened;
-- `entries`: thread length; `version`: bumped by every change (ETag).
ALTER TABLE tickets ADD COLUMN assignee_id BIGINT REFERENCES agents(id);
ALTER TABLE tickets ADD COLUMN updated TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN last_message_at TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN status_changed TEXT;
ALTER TABLE tickets ADD COLUMN entries BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tickets ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
UPDATE tickets SET
    updated = coalesce((SELECT max(created) FROM thread_entries e WHERE e.ticket_id = tickets.id), created),
    last_message_at = coalesce((SELECT max(created) FROM thread_entries e
                                WHERE e.ticket_id = tickets.id AND e.kind = 'message'), created),
    entries = (SELECT count(*) FROM thread_entries e WHERE e.ticket_id = tickets.id);

-- The queue: by status (and department), newest change first.
CREATE INDEX tickets_queue ON tickets(status, updated);
CREATE INDEX tickets_dept_queue ON tickets(dept_id, status, updated);
CREATE INDEX tickets_assignee ON tickets(assignee_id, status, updated) WHERE assignee_id IS NOT NULL;

-- Responses and notes are written by an agent.
ALTER TABLE thread_entries ADD COLUMN agent_id BIGINT REFERENCES agents(id);

-- Changes made to a ticket (assigned, transferred, status, priority,
-- topic). Creation, replies, notes and mail are events read from the
-- ticket, its entries and its outbox rows: intake writes no event row.
CREATE TABLE ticket_events (
    id          BIGSERIAL PRIMARY KEY,
    ticket_id   BIGINT NOT NULL REFERENCES tickets(id),
    created     TEXT NOT NULL,
    actor_kind  TEXT NOT NULL,      -- agent | user | system
    actor_id    BIGINT,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL       -- JSON object
);
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id);
