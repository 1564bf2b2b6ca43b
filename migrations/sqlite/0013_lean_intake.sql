-- Lean intake (issue 17).
--
-- API keys are cached in memory (storage/sqlite/keys.rs) and trusted
-- while this version stays the same; any change to api_keys, by oxidesk,
-- another process or by hand in SQL, moves it.
CREATE TABLE api_keys_version (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    n   INTEGER NOT NULL
);
INSERT INTO api_keys_version (id, n) VALUES (1, 0);
CREATE TRIGGER api_keys_version_insert AFTER INSERT ON api_keys
BEGIN
    UPDATE api_keys_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER api_keys_version_update AFTER UPDATE ON api_keys
BEGIN
    UPDATE api_keys_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER api_keys_version_delete AFTER DELETE ON api_keys
BEGIN
    UPDATE api_keys_version SET n = n + 1 WHERE id = 1;
END;
