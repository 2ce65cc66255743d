-- `test_results` and `test_cases` lose their foreign keys to the rows they
-- point at, as on PostgreSQL (0023, 0024): results to their project, launch,
-- job run and session; cases to their project and job.
--
-- Why here too: SQLite checks an immediate foreign key on every row a
-- statement inserts, and a statement that may fail halfway (a foreign key,
-- or a `NOT NULL` that aborts) keeps the first image of every page it changes
-- in a statement journal, so that it can be undone alone. The multi-row
-- inserts of an upload did both for every result: 6% of the server's
-- instructions per result (docs/ingest-profile.md, "Owner keys and
-- statement journals"). The data layer checks the owners once per batch
-- instead (`db::result_rows::hold_owners`, both backends), and the inserts
-- say `INSERT OR FAIL`, which leaves a failed statement's earlier rows to
-- the transaction, which is rolled back anyway (`db::group`).
--
-- Removing a foreign key does not change how rows are stored, so the tables
-- are not rebuilt: their schema text is edited in place, the procedure the
-- SQLite documentation gives for removing FOREIGN KEY constraints
-- (https://www.sqlite.org/lang_altertable.html#otheralter), and
-- `writable_schema=RESET` has this connection read the schema again. No
-- other connection is open while migrations run (`Db::connect`). The rows
-- these keys pointed at are deleted only where `tests::layering` expects.
PRAGMA writable_schema=ON;
UPDATE sqlite_schema
   SET sql = replace(replace(replace(replace(sql,
             ' REFERENCES projects(id)', ''),
             ' REFERENCES launches(id)', ''),
             ' REFERENCES job_runs(id)', ''),
             ' REFERENCES sessions(id)', '')
 WHERE type = 'table' AND name = 'test_results';
UPDATE sqlite_schema
   SET sql = replace(replace(sql,
             ' REFERENCES projects(id)', ''),
             ' REFERENCES jobs(id)', '')
 WHERE type = 'table' AND name = 'test_cases';
PRAGMA writable_schema=RESET;
