-- The manual half of a launch: who does which manual case. A free-text
-- assignee per (launch, test case), set at run time or copied from the plan's
-- default assignees (`plan_manual_assignees`) when a plan runs. A manual
-- result records who recorded it (`test_results.recorded_by`).
CREATE TABLE manual_assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    launch_id INTEGER NOT NULL REFERENCES launches(id),
    test_case_id INTEGER NOT NULL REFERENCES test_cases(id),
    assignee TEXT NOT NULL,
    assigned_ms INTEGER NOT NULL,
    assigned_by TEXT NULL,
    UNIQUE (launch_id, test_case_id)
);
CREATE TABLE plan_manual_assignees (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id INTEGER NOT NULL REFERENCES test_plans(id),
    test_case_id INTEGER NOT NULL REFERENCES test_cases(id),
    assignee TEXT NOT NULL,
    UNIQUE (plan_id, test_case_id)
);
ALTER TABLE test_results ADD COLUMN recorded_by TEXT NULL;
