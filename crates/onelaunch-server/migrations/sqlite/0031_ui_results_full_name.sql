-- The web UI's order of a launch's results (`ui_results`, migration 0030)
-- also keeps each result's full name, so that a text search of a launch's
-- results (name or full name, `db::result_views::results`) tests the narrow
-- rows of `ui_results` first and reads the rows of `test_results`, which
-- hold each result's whole JSON, only for the results that match. On the
-- database of a 100,000-result upload a selective search read 200 ms of
-- `test_results` rows to count its matches (docs/ingest-profile.md, "A
-- text search through the UI order").
ALTER TABLE ui_results ADD COLUMN full_name TEXT NULL;
UPDATE ui_results SET full_name = (SELECT t.full_name FROM test_results t WHERE t.id = ui_results.result_id);
