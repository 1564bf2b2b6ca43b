-- Schema version 20: `open_counts` (migration 11) is kept by a trigger
-- that, for a ticket leaving one department or assignee for another,
-- took away from the old row, then added to the new one. Two tickets of
-- the same shard (id mod 16) moved at once in opposite directions
-- (department 1 to 2, and 2 to 1) each held the row the other wanted
-- next, and PostgreSQL aborted one of them as a deadlock. Now the two
-- rows are always changed in one order, the lower (dept_id,
-- assignee_id) first, so concurrent moves wait for each other instead;
-- a ticket that stays open where it was changes no row at all.
CREATE OR REPLACE FUNCTION tickets_open_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    id_shard INTEGER := (NEW.id % 16)::int;
    old_dept BIGINT;
    old_assignee BIGINT;
    new_dept BIGINT;
    new_assignee BIGINT;
    old_first BOOLEAN;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'open' THEN
        old_dept := coalesce(OLD.dept_id, 0);
        old_assignee := coalesce(OLD.assignee_id, 0);
    END IF;
    IF NEW.status = 'open' THEN
        new_dept := coalesce(NEW.dept_id, 0);
        new_assignee := coalesce(NEW.assignee_id, 0);
    END IF;
    IF old_dept IS NOT NULL AND new_dept IS NOT NULL
        AND (old_dept, old_assignee) = (new_dept, new_assignee) THEN
        RETURN NULL;
    END IF;
    old_first := old_dept IS NOT NULL
        AND (new_dept IS NULL OR (old_dept, old_assignee) < (new_dept, new_assignee));
    IF old_first THEN
        INSERT INTO open_counts AS c (dept_id, assignee_id, shard, n)
            VALUES (old_dept, old_assignee, id_shard, -1)
            ON CONFLICT (dept_id, assignee_id, shard) DO UPDATE SET n = c.n - 1;
    END IF;
    IF new_dept IS NOT NULL THEN
        INSERT INTO open_counts AS c (dept_id, assignee_id, shard, n)
            VALUES (new_dept, new_assignee, id_shard, 1)
            ON CONFLICT (dept_id, assignee_id, shard) DO UPDATE SET n = c.n + 1;
    END IF;
    IF old_dept IS NOT NULL AND NOT old_first THEN
        INSERT INTO open_counts AS c (dept_id, assignee_id, shard, n)
            VALUES (old_dept, old_assignee, id_shard, -1)
            ON CONFLICT (dept_id, assignee_id, shard) DO UPDATE SET n = c.n - 1;
    END IF;
    RETURN NULL;
END
$$;
