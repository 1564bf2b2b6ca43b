-- Schema version 12: `Idempotency-Key` on ticket creation. One row per
-- (API key, key), written in the transaction that stores the ticket:
-- `scope` is SHA-256 of the API key's id and the client's key (the key
-- itself is not kept), `fingerprint` SHA-256 of the request's format and
-- body, `answer` the 201's body (the ticket number; empty for a logged
-- bounce), `created` unix seconds. Rows older than 24 hours are
-- forgotten: replaced by a new claim of the same key, and deleted a few
-- at a time as new claims come.
CREATE TABLE idempotency_keys (
    scope        BYTEA PRIMARY KEY,
    fingerprint  BYTEA NOT NULL,
    answer       TEXT NOT NULL,
    created      BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created);
