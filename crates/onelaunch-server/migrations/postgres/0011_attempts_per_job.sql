-- Attempts belong to one job: results of the same test (same historyId) from
-- different jobs of a launch are separate results, each with its own status;
-- a re-run of the same job (a CI re-run, a server-led rerun) adds attempts.
-- The test key of a result uploaded in a job run becomes 'job:<job id>|<key>';
-- results outside job runs (no job run, manual results) keep their key.
UPDATE test_results
SET test_key = 'job:' || CAST((SELECT j.job_id FROM job_runs j WHERE j.id = test_results.job_run_id) AS TEXT) || '|' || test_key
WHERE job_run_id IS NOT NULL AND manual = 0;
