-- Token lifecycle, PostgreSQL flavour. Keep in step with ../sqlite/0005_tokens.sql:
-- same columns; only the column types differ.

-- An API token may expire (NULL: never), records when it was last used
-- (written at most about once a minute per token) and can be revoked (NULL:
-- live). Every lookup of a token, an access token or a UI session checks the
-- first and the last in the database, so a revocation holds at once on every
-- replica. Rows are never deleted: a revoked init token keeps its row, so a
-- restart with the same --init-token does not bring it back.
ALTER TABLE api_tokens ADD COLUMN expires_ms BIGINT NULL;
ALTER TABLE api_tokens ADD COLUMN last_used_ms BIGINT NULL;
ALTER TABLE api_tokens ADD COLUMN revoked_ms BIGINT NULL;
