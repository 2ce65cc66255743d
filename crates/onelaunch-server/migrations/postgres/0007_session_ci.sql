-- The CI identity of the pipeline that opened an upload session. A job run
-- is shared: a pipeline of another CI system may upload into it (through
-- ALLURE_JOB_RUN_ID), and then its own system, run name and link are kept
-- here, per session, instead of being lost or mistaken for the job run's.
ALTER TABLE sessions ADD COLUMN ci_type TEXT NULL;
ALTER TABLE sessions ADD COLUMN ci_job_name TEXT NULL;
ALTER TABLE sessions ADD COLUMN ci_run_name TEXT NULL;
ALTER TABLE sessions ADD COLUMN ci_run_url TEXT NULL;
