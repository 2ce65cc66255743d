-- `ui_results` gains each result's full name and test key, as on SQLite
-- (migration 0031 there), so that a results page and a text search read them
-- through the same view.
CREATE OR REPLACE VIEW ui_results AS
SELECT launch_id, manual, job_run_id, status, name, id AS result_id, start_ms, stop_ms, created_ms,
    full_name, test_key
FROM test_results;
