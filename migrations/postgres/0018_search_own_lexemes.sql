-- Schema version 18: each `ticket_search` row also holds lexemes of the
-- index's own, which no typed word can be (they start with `~`): the
-- ticket's scope terms (`~d3`, `~a17`: who may see it), a marked copy
-- of its subject's and names' words (`~s_printer`, `~m_bob`: ranking),
-- and its id range (`~b244`: ids 244 * 4096 up). Every ticket is
-- indexed again after this runs (storage/postgres/search.rs).
SELECT 1;
