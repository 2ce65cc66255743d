-- PostgreSQL checks a foreign key with a trigger per inserted row: a
-- `SELECT … FOR KEY SHARE` of the parent row, for each of the four keys of
-- `test_results` (project, launch, job run, session). With results inserted
-- hundreds to a statement, all of them pointing at the same four rows, those
-- checks were about half of the database's work for a batch of results
-- (docs/ingest-profile.md, "PostgreSQL's own CPU").
--
-- The data layer now does once per batch what the triggers did per row:
-- `db::result_rows::hold_owners` locks the batch's session, launch and job
-- run `FOR KEY SHARE` (and checks that they belong together) before the
-- results go in, and a launch deletion locks the launch `FOR UPDATE` before
-- it deletes anything (`db::launches::lock_for_delete`), so it waits for
-- results being written and deletes them too. Uploaded and manual results
-- go in through `hold_owners`; a combined launch's copies point at the
-- launch, sessions and job runs its own transaction creates; results are
-- deleted only with their launch.
--
-- SQLite keeps the keys (migration 0023 there changes nothing): its checks
-- are index lookups in the same process, cheap next to the insert, and
-- dropping a constraint there means rebuilding the table.
ALTER TABLE test_results
    DROP CONSTRAINT test_results_project_id_fkey,
    DROP CONSTRAINT test_results_launch_id_fkey,
    DROP CONSTRAINT test_results_job_run_id_fkey,
    DROP CONSTRAINT test_results_session_id_fkey;
