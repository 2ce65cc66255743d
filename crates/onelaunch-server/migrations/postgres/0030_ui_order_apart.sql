-- The web UI's order of a launch's results, by the name SQLite gives its own
-- table (`ui_results`, migration 0030 there). PostgreSQL keeps the order on
-- `test_results` (index `test_results_ui`): it logs the rows an insert
-- changes, not its pages, and its sequence values do not follow commit order,
-- so a mark of the results copied so far could skip one. Here `ui_results`
-- is a view of every result, always complete (`db::ui_order`).
CREATE VIEW ui_results AS
SELECT launch_id, manual, job_run_id, status, name, id AS result_id, start_ms, stop_ms, created_ms
FROM test_results;
