-- Notifications (schema version 3): the durable outbox.
-- Rows are written in the same transaction as the ticket or entry that
-- causes them; the sender claims due rows with a lease, sends, and marks
-- them sent. The mail is rendered from the ticket when it is sent.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    ticket_id        INTEGER NOT NULL REFERENCES tickets(id),
    entry_id         INTEGER REFERENCES thread_entries(id),
    kind             TEXT NOT NULL,          -- autoresponse | alert
    event            TEXT NOT NULL,          -- new | reply
    recipients       TEXT NOT NULL,          -- JSON array
    message_id       TEXT NOT NULL,          -- oxidesk.<kind>.<ticket_id>.<token>@<domain>
    state            TEXT NOT NULL,          -- queued | sending | sent | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,       -- unix seconds
    lease_until      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,       -- unix seconds
    sent_at          INTEGER
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_ticket ON outbox(ticket_id);

-- The hourly autoresponse cap, per user (a counter on the row the ticket
-- reads anyway, rather than an index of every autoresponse by address).
ALTER TABLE users ADD COLUMN autoresponse_window_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN autoresponses_in_window INTEGER NOT NULL DEFAULT 0;
