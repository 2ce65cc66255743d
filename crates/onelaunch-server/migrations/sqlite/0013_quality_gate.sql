-- The launch-wide quality gate. Rules (JSON, `api::GateRules`) per project
-- (defaults, set by an admin) and per plan; the verdict (JSON,
-- `api::GateReport`) stored on a launch when it closes, cleared when it
-- reopens; failed rules the Allure 3 TestOps plugin reports for a launch
-- (`quality-gate/bulk`, JSON list of `api::AllureGateItem`).
ALTER TABLE projects ADD COLUMN gate_rules TEXT NULL;
ALTER TABLE test_plans ADD COLUMN gate_rules TEXT NULL;
ALTER TABLE launches ADD COLUMN gate_report TEXT NULL;
ALTER TABLE launches ADD COLUMN allure_gate TEXT NOT NULL DEFAULT '[]';
