-- Reruns into the same launch: a plan item of a rerun job run names the
-- result it runs again (the latest attempt when the rerun was asked for), so
-- the launch can tell how many tests were rerun and how many changed status.
ALTER TABLE job_run_plan_items ADD COLUMN rerun_of BIGINT NULL;
