-- The web UI's order of a launch's results (automated or manual, job run,
-- status, name) moves out of the upload's path, into a table of its own.
--
-- Why: the index `test_results_ui` kept that order on `test_results` itself,
-- so every upload inserted into it at random (names come in no order) and
-- each group commit rewrote most of its pages: 11–18% of the time of a
-- 100,000-result upload and 13–18% of the server's CPU
-- (docs/ingest-profile.md, "What is left is the indexes' pages"). Now
-- `db::ui_order::settle` copies the results above a mark into `ui_results`,
-- sorted, when uploads pause (and during a long upload every
-- `db::ui_order::SETTLE_AT` results): a new launch's rows go at the end of
-- the b-tree, many results at a time. Readers use `ui_results` for a launch
-- whose results are all at or below the mark, and `test_results` as before
-- for a launch with newer ones, so a page never waits for the writer.
--
-- Results are only inserted and deleted with their launch (no statement
-- updates one), and on SQLite (one writer, AUTOINCREMENT) their ids follow
-- commit order, so "every result up to `ui_results_mark.through` is in
-- `ui_results`" stays true.
CREATE TABLE ui_results (
    launch_id INTEGER NOT NULL,
    manual INTEGER NOT NULL,
    job_run_id INTEGER NULL,
    status TEXT NOT NULL,
    name TEXT NOT NULL,
    result_id INTEGER NOT NULL,
    start_ms INTEGER NULL,
    stop_ms INTEGER NULL,
    created_ms INTEGER NOT NULL
);
INSERT INTO ui_results (launch_id, manual, job_run_id, status, name, result_id, start_ms, stop_ms, created_ms)
SELECT launch_id, manual, job_run_id, status, name, id, start_ms, stop_ms, created_ms FROM test_results
ORDER BY launch_id, manual, job_run_id, status, name, id;
CREATE INDEX ui_results_order ON ui_results(launch_id, manual, job_run_id, status, name, result_id, start_ms, stop_ms, created_ms);

-- The highest result id copied into `ui_results` (one row).
CREATE TABLE ui_results_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through INTEGER NOT NULL
);
INSERT INTO ui_results_mark (id, through) SELECT 1, COALESCE(MAX(id), 0) FROM test_results;

DROP INDEX test_results_ui;
