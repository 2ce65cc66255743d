-- The provider URL an admin set for a job's integration. A URL set with a
-- project token is called only when it equals this one or its host is on the
-- server's --allow-integration-host list. Rows from before this column have
-- none: their custom URLs must be saved again by an admin (or their hosts
-- allowed) before the server calls them again.
ALTER TABLE job_configs ADD COLUMN approved_url TEXT NULL;
