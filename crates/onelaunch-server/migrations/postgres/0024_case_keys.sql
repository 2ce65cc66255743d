-- Every new test case checked two foreign keys (its project and its job) and
-- each of its label rows one (its case), with a trigger and a `SELECT … FOR
-- KEY SHARE` per row, as migration 0023 describes for results. A first
-- upload of a project creates a case and its labels for every result, so
-- those checks were a sixth of PostgreSQL's work for a batch.
--
-- The rows they pointed at are never deleted: projects, jobs and test cases
-- have no deletion at all (`tests::layering` fails if one appears), and the
-- ids written come from rows read or returned in the same transaction (the
-- session's project and job, the case the upsert returned). The keys could
-- never fire, and are dropped. Label rows are deleted and re-inserted when a
-- case's labels change; that is the child side, which a key never guarded.
--
-- SQLite keeps the keys (migration 0024 there changes nothing).
ALTER TABLE test_cases
    DROP CONSTRAINT test_cases_project_id_fkey,
    DROP CONSTRAINT test_cases_job_id_fkey;
ALTER TABLE test_case_labels
    DROP CONSTRAINT test_case_labels_test_case_id_fkey;
