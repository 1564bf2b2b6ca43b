-- Instances cache API keys; any change to the table, by oxidesk or by
-- hand, tells every instance to forget them (channel oxidesk_keys).
CREATE FUNCTION oxidesk_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('oxidesk_keys', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION oxidesk_keys_changed();
