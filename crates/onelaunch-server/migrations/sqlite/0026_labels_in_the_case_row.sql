-- A test case's labels were stored twice: as JSON in `test_cases.labels`
-- (what every reader of a case gets) and as one row per label here, which
-- only the case filter read, one case at a time. A first upload wrote six
-- such rows per new case (allure-pytest's labels without host and thread),
-- 600,000 rows and a seventh of the upload's time for 100,000 results. The
-- filter now reads the JSON of the case row it is looking at
-- (`db::test_cases::filter_sql`), which holds the same labels: both were
-- always written together, from the same list.
DROP TABLE test_case_labels;
