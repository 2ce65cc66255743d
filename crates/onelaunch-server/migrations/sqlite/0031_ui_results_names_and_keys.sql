-- The web UI's order of a launch's results (`ui_results`, migration 0030)
-- also keeps each result's full name and test key, so that a results page
-- tests the results it skips, and a text search (name or full name,
-- `db::result_views::results`) the results it counts, on the narrow rows of
-- `ui_results`: whether a name matches, and whether a later attempt of the
-- same test exists (through `test_results_key`). The rows of `test_results`,
-- which hold each result's whole JSON, are then read only for the page's
-- results. On the database of a 100,000-result upload a selective search
-- read 200 ms of those rows to count its matches, and a page at offset
-- 60,000 of one group 185 ms to skip its way there (docs/ingest-profile.md,
-- "Searches and deep pages through the UI order").
ALTER TABLE ui_results ADD COLUMN full_name TEXT NULL;
ALTER TABLE ui_results ADD COLUMN test_key TEXT NULL;
UPDATE ui_results SET (full_name, test_key) =
    (SELECT t.full_name, t.test_key FROM test_results t WHERE t.id = ui_results.result_id);
