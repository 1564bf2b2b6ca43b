-- Notifications (schema version 3): the durable outbox.
CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    ticket_id        BIGINT NOT NULL REFERENCES tickets(id),
    entry_id         BIGINT REFERENCES thread_entries(id),
    kind             TEXT NOT NULL,
    event            TEXT NOT NULL,
    recipients       TEXT NOT NULL,
    message_id       TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_ticket ON outbox(ticket_id);

ALTER TABLE users ADD COLUMN autoresponse_window_start BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN autoresponses_in_window BIGINT NOT NULL DEFAULT 0;
