-- Schema version 17: FTS5 no longer merges a level for its deleted rows
-- alone, and an index whose merging stalled is made one segment again.
--
-- With `contentless_delete`, FTS5 merges a level once 10% of its rows
-- are deleted (`deletemerge`), even a level of one segment, a few pages
-- per merge call. When a merge of the level below then adds a segment
-- to that level, the deleted share falls under 10% and FTS5 goes on
-- with the merge only in a call that finds every level below empty: a
-- group's own new segment is always below, so that merge never ended
-- and every later segment that reached the level stayed there, until
-- FTS5 refused to write at 2,000 segments ("database or disk is full":
-- every write of the helpdesk failed). A benchmark seed stopped so at
-- 575,000 tickets. Deleted rows are dropped by the ordinary merges (a
-- re-indexed ticket's old row is most often in a recent, small
-- segment). `optimize` rewrites the index as one segment: it ends a
-- stalled merge and drops what was deleted (~1 minute at 1,000,000
-- tickets).
INSERT INTO ticket_search (ticket_search, rank) VALUES ('deletemerge', 0);
INSERT INTO ticket_search (ticket_search) VALUES ('optimize');
