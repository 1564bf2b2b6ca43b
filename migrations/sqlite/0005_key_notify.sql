-- Schema version 5 is PostgreSQL's key-change trigger (its instances
-- cache API keys). SQLite looks keys up in process, uncached: nothing to
-- change here; the number is kept so both trees count alike.
SELECT 1;
