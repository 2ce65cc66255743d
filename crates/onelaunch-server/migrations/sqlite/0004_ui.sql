-- Web UI sessions, SQLite flavour. Keep in step with ../postgres/0004_ui.sql:
-- same tables, columns, constraints and indexes; only the column types differ.

-- A browser session opened by logging in with an API token. Only the SHA-256
-- of the session cookie is stored, so any replica can check a cookie and a
-- leaked database does not hand out sessions. A session is valid only while
-- its API token exists (it is looked up through it).
CREATE TABLE ui_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    api_token_id INTEGER NOT NULL REFERENCES api_tokens(id),
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions(expires_ms);

-- What the launch list and the launch page say about a launch's results
-- (counts by status, per job run, time span; JSON), computed once per state of
-- its results: results are only ever added to a launch (or the whole launch
-- deleted), so (number of results, highest result id) tells whether the
-- stored figures are still those of the launch.
CREATE TABLE ui_launch_stats (
    launch_id INTEGER PRIMARY KEY,
    results INTEGER NOT NULL,
    max_result_id INTEGER NOT NULL,
    overview TEXT NOT NULL,
    computed_ms INTEGER NOT NULL
);

-- Both figures above, from the index alone.
CREATE INDEX test_results_launch_id ON test_results(launch_id, id);
