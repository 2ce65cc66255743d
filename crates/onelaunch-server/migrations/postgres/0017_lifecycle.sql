-- Data lifecycle: retention per project (NULL = keep), a lease so only one
-- replica runs the retention pass at a time, and indexes for counting the
-- rows that still reference a blob (content-addressed, shared by sha256).
ALTER TABLE projects ADD COLUMN retain_days BIGINT NULL;
ALTER TABLE projects ADD COLUMN retain_launches BIGINT NULL;
CREATE TABLE lifecycle_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
CREATE INDEX attachments_sha256 ON attachments (sha256);
CREATE INDEX session_files_sha256 ON session_files (sha256);
CREATE INDEX launch_globals_sha256 ON launch_globals (sha256);
