-- Server-led launches, SQLite flavour. Keep in step with ../postgres/0002_server_led.sql:
-- same tables, columns, constraints and indexes; only the column types differ.

-- Test cases of a project, created and updated by uploaded results. `identity` is
-- 'allure:<ALLURE_ID>', 'tcid:<testCaseId>', 'full:<fullName>' or 'name:<name>'.
-- `job_id` is the default executor: the last job whose job run uploaded a result.
CREATE TABLE test_cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    identity TEXT NOT NULL,
    allure_id TEXT NULL,
    name TEXT NOT NULL,
    full_name TEXT NULL,
    labels TEXT NOT NULL DEFAULT '[]',
    last_status TEXT NULL,
    last_start_ms INTEGER NULL,
    last_result_id INTEGER NULL,
    job_id INTEGER NULL REFERENCES jobs(id),
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    UNIQUE (project_id, identity)
);
CREATE INDEX test_cases_job ON test_cases(job_id);

CREATE TABLE test_case_labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    test_case_id INTEGER NOT NULL REFERENCES test_cases(id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    UNIQUE (test_case_id, name, value)
);
CREATE INDEX test_case_labels_value ON test_case_labels(name, value);

-- How the server triggers a job. `credential` is write-only: never returned.
CREATE TABLE job_configs (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
    can_run INTEGER NOT NULL DEFAULT 0,
    integration TEXT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    credential TEXT NULL,
    parameters TEXT NOT NULL DEFAULT '[]',
    modified_ms INTEGER NOT NULL
);

-- A test plan: explicit test cases (test_plan_cases) and/or a filter (JSON).
CREATE TABLE test_plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    filter TEXT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL
);
CREATE INDEX test_plans_project ON test_plans(project_id, id);

CREATE TABLE test_plan_cases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id INTEGER NOT NULL REFERENCES test_plans(id),
    test_case_id INTEGER NOT NULL REFERENCES test_cases(id),
    UNIQUE (plan_id, test_case_id)
);

-- Executor overrides of a plan; job_id NULL means "run manually".
CREATE TABLE test_plan_executors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id INTEGER NOT NULL REFERENCES test_plans(id),
    test_case_id INTEGER NOT NULL REFERENCES test_cases(id),
    job_id INTEGER NULL REFERENCES jobs(id),
    modified_ms INTEGER NOT NULL,
    UNIQUE (plan_id, test_case_id)
);

-- One row per launch the server created from a plan or a selection.
-- `request_id` makes a retried run request return the same launch.
CREATE TABLE server_runs (
    launch_id INTEGER PRIMARY KEY REFERENCES launches(id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    plan_id INTEGER NULL REFERENCES test_plans(id),
    request_id TEXT NULL,
    environment TEXT NOT NULL DEFAULT '[]',
    manual_cases TEXT NOT NULL DEFAULT '[]',
    created_ms INTEGER NOT NULL,
    UNIQUE (project_id, request_id)
);

-- The test plan of a server-led job run (GET /api/jobrun/{id}/plan).
CREATE TABLE job_run_plan_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_run_id INTEGER NOT NULL REFERENCES job_runs(id) ON DELETE CASCADE,
    test_case_id INTEGER NOT NULL REFERENCES test_cases(id),
    ref_id INTEGER NOT NULL,
    selector TEXT NOT NULL,
    UNIQUE (job_run_id, test_case_id)
);

-- Results recorded by hand into a launch (outside any job run).
ALTER TABLE test_results ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
