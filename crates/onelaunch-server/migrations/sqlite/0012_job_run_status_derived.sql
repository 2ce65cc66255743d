-- Whether a finished job run's status was derived from its results (1) or
-- given by `job-run stop --status` (0). A derived status is derived again when
-- results arrive after the stop (a slow shard of the same CI run).
ALTER TABLE job_runs ADD COLUMN status_derived INTEGER NOT NULL DEFAULT 0;
