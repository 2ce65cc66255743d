-- Facts about the server itself, one value per key. `secret_key_fingerprint`:
-- SHA-256 of a fixed label and the key that sealed the stored credentials
-- (never the key), checked at start so a server never runs with another key
-- than the one its credentials were sealed with.
CREATE TABLE server_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    modified_ms BIGINT NOT NULL
);
