-- Safe closing, SQLite flavour. Keep in step with ../postgres/0003_reliability.sql.

-- How many job runs the launch expects (`job-run start --expect N`); NULL when
-- nobody declared it. `launches.modified_ms` doubles as the time of the last
-- activity (start, stop, session, result batch) for `--launch-idle-close`.
ALTER TABLE launches ADD COLUMN expected_job_runs INTEGER NULL;
CREATE INDEX launches_open_activity ON launches(closed, modified_ms);
