-- The launch page of a large launch (100,000 tests) reads only what it shows.
--
-- The latest attempt of a test (`launches::LATEST`: no later attempt with the
-- same key) is answered from this index alone: start_ms and id are in it.
DROP INDEX test_results_key;
CREATE INDEX test_results_key ON test_results(launch_id, test_key, start_ms, id);
-- Lookups by job run use test_results_run_key (job_run_id, test_key).
DROP INDEX test_results_job_run;
-- A launch's results in the order the web UI lists them (automated or manual,
-- job run, status, name), with what the launch overview adds up: one page of
-- one job run and status is an index range, the overview one pass over the
-- index without reading the results themselves.
CREATE INDEX test_results_ui ON test_results(launch_id, manual, job_run_id, status, name, id, start_ms, stop_ms, created_ms);
