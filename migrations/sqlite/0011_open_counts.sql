-- Schema version 11: the queue's side bar (open tickets per department,
-- mine, unassigned) counted as tickets change, not counted anew on every
-- page load (a count over 800k open tickets took over a second).
--
-- One row per (department, assignee) pair that has had open tickets;
-- 0 stands for no department and for nobody. Kept by triggers in the
-- transaction that inserts or changes the ticket, so the counts are
-- never out of step with the tickets.
CREATE TABLE open_counts (
    dept_id      INTEGER NOT NULL,
    assignee_id  INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (dept_id, assignee_id)
) WITHOUT ROWID;
INSERT INTO open_counts (dept_id, assignee_id, n)
    SELECT coalesce(dept_id, 0), coalesce(assignee_id, 0), count(*)
    FROM tickets WHERE status = 'open' GROUP BY 1, 2;

CREATE TRIGGER tickets_open_counts_insert AFTER INSERT ON tickets
WHEN NEW.status = 'open'
BEGIN
    INSERT INTO open_counts (dept_id, assignee_id, n)
        VALUES (coalesce(NEW.dept_id, 0), coalesce(NEW.assignee_id, 0), 1)
        ON CONFLICT (dept_id, assignee_id) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tickets_open_counts_update AFTER UPDATE OF status, dept_id, assignee_id ON tickets
WHEN OLD.status = 'open' OR NEW.status = 'open'
BEGIN
    UPDATE open_counts SET n = n - 1
        WHERE OLD.status = 'open'
          AND dept_id = coalesce(OLD.dept_id, 0) AND assignee_id = coalesce(OLD.assignee_id, 0);
    INSERT INTO open_counts (dept_id, assignee_id, n)
        SELECT coalesce(NEW.dept_id, 0), coalesce(NEW.assignee_id, 0), 1 WHERE NEW.status = 'open'
        ON CONFLICT (dept_id, assignee_id) DO UPDATE SET n = n + 1;
END;
