-- Nothing changes on SQLite. On PostgreSQL this migration drops the four
-- foreign keys of `test_results` (project, launch, job run, session), whose
-- per-row trigger checks were about half of that database's work for a batch
-- of results; the data layer locks those rows once per batch instead
-- (`db::result_rows::hold_owners`, `db::launches::lock_for_delete`). Here the
-- keys stay: their checks are index lookups in the same process, one writer
-- at a time rules out a concurrent delete, and dropping a constraint means
-- rebuilding the table. The number is kept so that both backends' migration
-- histories stay in step.
SELECT 1;
