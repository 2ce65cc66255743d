-- Two things migrations 0026 and 0027 kept on PostgreSQL only so that
-- replicas of an earlier version could keep running during a rolling
-- upgrade, both promised to a later migration:
--
-- * `test_results_run_key` (job_run_id, test_key): 0027 moved the one lookup
--   that used it (a job run's latest attempts, `db::job_runs::LATEST_IN_RUN`)
--   to the launch's key index. Its keys are random, so every inserted result
--   descended and dirtied a page of it: one of the five random indexes of
--   `test_results`, read by nothing since 0027.
-- * `test_case_labels`: no version since 0026 writes or reads it.
--
-- Replicas of a version before 0027 must not run beside this one: upgrade
-- through a version with migrations 0027–0031 first (docs/deploy.md, "Upgrades").
DROP INDEX IF EXISTS test_results_run_key;
DROP TABLE IF EXISTS test_case_labels;
