-- Whether a planned test of a server-led job run was reported: set when a
-- result of the item's test case (by the identity ingest computes) arrives in
-- that job run. Results do not store their test case, so the mark is made at
-- ingest time; job runs planned before this column show their items as not
-- reported until a result arrives again.
ALTER TABLE job_run_plan_items ADD COLUMN reported INTEGER NOT NULL DEFAULT 0;
