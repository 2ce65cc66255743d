-- Nothing changes on SQLite: 0026 dropped `test_case_labels` and 0027
-- `test_results_run_key` here already (SQLite has one server, so no rolling
-- upgrade needed them kept). PostgreSQL drops them in this migration (see its
-- comment). The number is kept so that both backends' migration histories
-- stay in step.
SELECT 1;
