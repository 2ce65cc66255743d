-- Upload sessions end on their own (issue 13): a client that says it will
-- close its session (`track`) leaves it open (closed_ms NULL) until its upload
-- ends, so `launch close --wait` waits for it. last_seen_ms is its last
-- activity (created, results, files); an open session silent for longer than
-- the server's upload-session timeout counts as abandoned.
ALTER TABLE sessions ADD COLUMN closed_ms BIGINT NULL;
ALTER TABLE sessions ADD COLUMN last_seen_ms BIGINT NULL;
-- Sessions from before this migration are over.
UPDATE sessions SET closed_ms = created_ms, last_seen_ms = created_ms;
CREATE INDEX sessions_open ON sessions (launch_id, closed_ms);
-- A job run created by an upload (not by `job-run start`, a server-led run or
-- an unknown client) is done when its sessions are all closed; the others
-- are done when they are stopped.
ALTER TABLE job_runs ADD COLUMN implicit INTEGER NOT NULL DEFAULT 0;
