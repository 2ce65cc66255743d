-- Nothing changes on PostgreSQL: 0023 and 0024 dropped these keys here. On
-- SQLite this migration drops them too (see its comment). The number is kept
-- so that both backends' migration histories stay in step.
SELECT 1;
