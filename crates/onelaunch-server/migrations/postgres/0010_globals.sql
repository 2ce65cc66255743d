-- Errors and attachments that belong to no test (Allure 3 `*-globals.json`,
-- e.g. a failing mocha `beforeEach` hook), kept on the launch, the job run of
-- the session that sent them (NULL for a session directly in a launch) and
-- that session. One row per entry of a globals file: `kind` is `error`
-- (message, trace) or `attachment` (name, source; sha256/size once the file
-- named by `source` arrived in the same session). Resending the same file in
-- the same session adds nothing: (session_id, file_name, kind, entry_index).
CREATE TABLE launch_globals (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    launch_id BIGINT NOT NULL REFERENCES launches(id),
    job_run_id BIGINT NULL REFERENCES job_runs(id),
    session_id BIGINT NOT NULL REFERENCES sessions(id),
    file_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    entry_index BIGINT NOT NULL,
    message TEXT NULL,
    trace TEXT NULL,
    name TEXT NULL,
    source TEXT NULL,
    content_type TEXT NULL,
    size BIGINT NULL,
    sha256 TEXT NULL,
    at_ms BIGINT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (launch_id, file_name, kind, entry_index)
);
CREATE INDEX launch_globals_launch ON launch_globals(launch_id);
CREATE INDEX launch_globals_job_run ON launch_globals(job_run_id);
