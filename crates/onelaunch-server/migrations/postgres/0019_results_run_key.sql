-- A job run's latest attempt per test (derived job-run status at session
-- close and job-run stop) looks results up by (job_run_id, test_key): without
-- this index SQLite read the whole job run once per result, so closing one
-- large job run grew with the square of its size.
CREATE INDEX test_results_run_key ON test_results(job_run_id, test_key);
