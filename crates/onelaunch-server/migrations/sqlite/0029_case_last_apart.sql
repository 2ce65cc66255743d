-- What a case's latest attempt says (its status, start, result, the job that
-- ran it) moves out of `test_cases` into a narrow table (`db::case_last`).
--
-- Why: a next run of a suite uploads the same cases again, in the order of
-- its result files (uuids, no order at all), so each batch updated case rows
-- all over `test_cases` (about 390 bytes a row, its labels' JSON included),
-- and a SQLite commit writes every page it changed whole: 2.5 GB for a
-- 100,000-test next run against 0.7 GB for a first one (docs/ingest-profile.md,
-- "A next run's cases apart"). Now a known case's row is left as it was
-- (SQLite does not write a row updated to the bytes it holds). On SQLite an
-- attempt at a known case is appended to `test_case_pending` (the end of one
-- b-tree) and `db::case_last::settle` folds the queue into `test_case_last`
-- in case order, many uploads at a time: in the background and before
-- anything reads a case's last status. PostgreSQL logs rows, not pages: there
-- an upload writes `test_case_last` at once and the queue stays empty (the
-- table is created on both backends to keep their schemas in step).
--
-- `test_cases.last_status`, `last_start_ms`, `last_result_id` and `job_id`
-- are no longer written or read (they stay for a server of an earlier
-- version sharing a PostgreSQL database during a rolling upgrade); the index
-- on `job_id` served no query.
CREATE TABLE test_case_last (
    test_case_id INTEGER PRIMARY KEY,
    status TEXT NULL,
    start_ms INTEGER NULL,
    result_id INTEGER NULL,
    job_id INTEGER NULL,
    modified_ms INTEGER NOT NULL
);
INSERT INTO test_case_last (test_case_id, status, start_ms, result_id, job_id, modified_ms)
SELECT id, last_status, last_start_ms, last_result_id, job_id, modified_ms FROM test_cases;

-- Attempts not yet folded into `test_case_last`.
CREATE TABLE test_case_pending (
    id INTEGER PRIMARY KEY,
    test_case_id INTEGER NOT NULL,
    status TEXT NULL,
    start_ms INTEGER NOT NULL,
    result_id INTEGER NOT NULL,
    job_id INTEGER NULL,
    at_ms INTEGER NOT NULL
);

DROP INDEX test_cases_job;
