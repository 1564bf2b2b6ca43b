-- Schema version 11: the queue's side bar (open tickets per department,
-- mine, unassigned) counted as tickets change, not counted anew on every
-- page load (a count over 800k open tickets took over a second).
--
-- Rows per (department, assignee) pair; 0 stands for no department and
-- for nobody. Kept by a trigger in the transaction that inserts or
-- changes the ticket. A pair's count is spread over 16 rows (`shard`,
-- the ticket id's remainder), summed when read: concurrent intakes into
-- one department would otherwise queue on one row's lock until each
-- other's commit.
CREATE TABLE open_counts (
    dept_id      BIGINT NOT NULL,
    assignee_id  BIGINT NOT NULL,
    shard        INTEGER NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (dept_id, assignee_id, shard)
);
INSERT INTO open_counts (dept_id, assignee_id, shard, n)
    SELECT coalesce(dept_id, 0), coalesce(assignee_id, 0), 0, count(*)
    FROM tickets WHERE status = 'open' GROUP BY 1, 2;

CREATE FUNCTION tickets_open_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'open' THEN
        INSERT INTO open_counts AS c (dept_id, assignee_id, shard, n)
            VALUES (coalesce(OLD.dept_id, 0), coalesce(OLD.assignee_id, 0), (OLD.id % 16)::int, -1)
            ON CONFLICT (dept_id, assignee_id, shard) DO UPDATE SET n = c.n - 1;
    END IF;
    IF NEW.status = 'open' THEN
        INSERT INTO open_counts AS c (dept_id, assignee_id, shard, n)
            VALUES (coalesce(NEW.dept_id, 0), coalesce(NEW.assignee_id, 0), (NEW.id % 16)::int, 1)
            ON CONFLICT (dept_id, assignee_id, shard) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tickets_open_counts AFTER INSERT OR UPDATE OF status, dept_id, assignee_id ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_open_counts();
