-- Only results copied into a combined launch have `copied_from`; every
-- uploaded result left a (launch_id, NULL) entry in the index that finds the
-- copies, one b-tree insert per result for nothing. The index now holds the
-- copies alone; the lookups that use it (`copied_from = …`,
-- `copied_from IS NOT NULL`) imply its condition.
DROP INDEX test_results_copied;
CREATE INDEX test_results_copied ON test_results(launch_id, copied_from) WHERE copied_from IS NOT NULL;
