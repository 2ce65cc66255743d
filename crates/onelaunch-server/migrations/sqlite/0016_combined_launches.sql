-- Combined launches (`launch combine`): which launches a combined launch
-- holds the results of, and where each copied row came from (job runs,
-- sessions, results; attachments share the blobs by sha256, nothing is
-- copied on disk).
CREATE TABLE launch_sources (
    combined_id INTEGER NOT NULL REFERENCES launches(id),
    source_id INTEGER NOT NULL REFERENCES launches(id),
    PRIMARY KEY (combined_id, source_id)
);
CREATE INDEX launch_sources_source ON launch_sources(source_id);
ALTER TABLE job_runs ADD COLUMN copied_from INTEGER NULL;
ALTER TABLE sessions ADD COLUMN copied_from INTEGER NULL;
ALTER TABLE test_results ADD COLUMN copied_from INTEGER NULL;
CREATE INDEX test_results_copied ON test_results(launch_id, copied_from);
