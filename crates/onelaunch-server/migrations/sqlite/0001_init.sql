-- onelaunch schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql:
-- same tables, columns, constraints and indexes; only the column types differ.
CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    project_id INTEGER NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    api_token_id INTEGER NOT NULL REFERENCES api_tokens(id),
    expires_ms INTEGER NOT NULL
);

CREATE TABLE launches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    external INTEGER NOT NULL DEFAULT 0,
    autoclose INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    links TEXT NOT NULL DEFAULT '[]',
    issues TEXT NOT NULL DEFAULT '[]',
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    closed_ms INTEGER NULL
);
CREATE INDEX launches_project ON launches(project_id, id);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    uid TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT NULL,
    ci_type TEXT NULL,
    parameters TEXT NOT NULL DEFAULT '[]',
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    UNIQUE (project_id, uid)
);

CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    launch_id INTEGER NOT NULL REFERENCES launches(id),
    project_id INTEGER NOT NULL REFERENCES projects(id),
    uid TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    error_message TEXT NULL,
    parameters TEXT NOT NULL DEFAULT '[]',
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    UNIQUE (job_id, uid)
);
CREATE INDEX job_runs_launch ON job_runs(launch_id);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    launch_id INTEGER NOT NULL REFERENCES launches(id),
    job_run_id INTEGER NULL REFERENCES job_runs(id),
    environment TEXT NOT NULL DEFAULT '[]',
    created_ms INTEGER NOT NULL
);

CREATE TABLE test_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    launch_id INTEGER NOT NULL REFERENCES launches(id),
    job_run_id INTEGER NULL REFERENCES job_runs(id),
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    uuid TEXT NOT NULL,
    test_key TEXT NOT NULL,
    history_id TEXT NULL,
    test_case_id TEXT NULL,
    name TEXT NOT NULL,
    full_name TEXT NULL,
    status TEXT NOT NULL,
    message TEXT NULL,
    trace TEXT NULL,
    start_ms INTEGER NULL,
    stop_ms INTEGER NULL,
    duration_ms INTEGER NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (launch_id, uuid)
);
CREATE INDEX test_results_key ON test_results(launch_id, test_key);
CREATE INDEX test_results_job_run ON test_results(job_run_id);

CREATE TABLE attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    test_result_id INTEGER NOT NULL REFERENCES test_results(id),
    file_name TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NULL,
    size INTEGER NULL,
    sha256 TEXT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (test_result_id, file_name)
);

CREATE TABLE fixtures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    test_result_id INTEGER NOT NULL REFERENCES test_results(id),
    uuid TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (test_result_id, uuid)
);

CREATE TABLE session_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    file_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (session_id, file_name)
);

CREATE TABLE launch_refs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    launch_id INTEGER NOT NULL REFERENCES launches(id),
    kind TEXT NOT NULL,
    external_id TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (launch_id, kind, external_id)
);
