-- onelaunch schema, PostgreSQL flavour. Keep in step with ../sqlite/0001_init.sql:
-- same tables, columns, constraints and indexes; only the column types differ.
CREATE TABLE projects (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    project_id BIGINT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    api_token_id BIGINT NOT NULL REFERENCES api_tokens(id),
    expires_ms BIGINT NOT NULL
);

CREATE TABLE launches (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    closed BIGINT NOT NULL DEFAULT 0,
    external BIGINT NOT NULL DEFAULT 0,
    autoclose BIGINT NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    links TEXT NOT NULL DEFAULT '[]',
    issues TEXT NOT NULL DEFAULT '[]',
    created_ms BIGINT NOT NULL,
    modified_ms BIGINT NOT NULL,
    closed_ms BIGINT NULL
);
CREATE INDEX launches_project ON launches(project_id, id);

CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    uid TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT NULL,
    ci_type TEXT NULL,
    parameters TEXT NOT NULL DEFAULT '[]',
    created_ms BIGINT NOT NULL,
    modified_ms BIGINT NOT NULL,
    UNIQUE (project_id, uid)
);

CREATE TABLE job_runs (
    id BIGSERIAL PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES jobs(id),
    launch_id BIGINT NOT NULL REFERENCES launches(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    uid TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    error_message TEXT NULL,
    parameters TEXT NOT NULL DEFAULT '[]',
    created_ms BIGINT NOT NULL,
    modified_ms BIGINT NOT NULL,
    UNIQUE (job_id, uid)
);
CREATE INDEX job_runs_launch ON job_runs(launch_id);

CREATE TABLE sessions (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    launch_id BIGINT NOT NULL REFERENCES launches(id),
    job_run_id BIGINT NULL REFERENCES job_runs(id),
    environment TEXT NOT NULL DEFAULT '[]',
    created_ms BIGINT NOT NULL
);

CREATE TABLE test_results (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    launch_id BIGINT NOT NULL REFERENCES launches(id),
    job_run_id BIGINT NULL REFERENCES job_runs(id),
    session_id BIGINT NOT NULL REFERENCES sessions(id),
    uuid TEXT NOT NULL,
    test_key TEXT NOT NULL,
    history_id TEXT NULL,
    test_case_id TEXT NULL,
    name TEXT NOT NULL,
    full_name TEXT NULL,
    status TEXT NOT NULL,
    message TEXT NULL,
    trace TEXT NULL,
    start_ms BIGINT NULL,
    stop_ms BIGINT NULL,
    duration_ms BIGINT NULL,
    body TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (launch_id, uuid)
);
CREATE INDEX test_results_key ON test_results(launch_id, test_key);
CREATE INDEX test_results_job_run ON test_results(job_run_id);

CREATE TABLE attachments (
    id BIGSERIAL PRIMARY KEY,
    test_result_id BIGINT NOT NULL REFERENCES test_results(id),
    file_name TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NULL,
    size BIGINT NULL,
    sha256 TEXT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (test_result_id, file_name)
);

CREATE TABLE fixtures (
    id BIGSERIAL PRIMARY KEY,
    test_result_id BIGINT NOT NULL REFERENCES test_results(id),
    uuid TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (test_result_id, uuid)
);

CREATE TABLE session_files (
    id BIGSERIAL PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES sessions(id),
    file_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (session_id, file_name)
);

CREATE TABLE launch_refs (
    id BIGSERIAL PRIMARY KEY,
    launch_id BIGINT NOT NULL REFERENCES launches(id),
    kind TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (launch_id, kind, external_id)
);
