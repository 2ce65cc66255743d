-- A job run's results were indexed by (job_run_id, test_key), for its latest
-- attempts (`db::job_runs::LATEST_IN_RUN`, migration 0019). Test keys are
-- random, so every commit of an upload rewrote pages all over that index, as
-- it does for the launch's (launch_id, test_key, start_ms, id): one of the
-- five random indexes a result is written into. The latest-attempt lookup now
-- goes through the launch's key index (a job run's results are in its
-- launch) and checks the job run there; what looks results up by job run
-- alone (its results, their count, whether it has any) reads this index,
-- whose entries for a job run come in the order its results arrive.
DROP INDEX test_results_run_key;
CREATE INDEX test_results_run ON test_results(job_run_id, id);
