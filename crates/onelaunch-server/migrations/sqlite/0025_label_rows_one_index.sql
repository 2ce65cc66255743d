-- Every label row of a new test case went into three b-trees: the table,
-- its unique (test_case_id, name, value) and `test_case_labels_value`
-- (name, value). No query can use the last one: the case filter matches
-- `LOWER(l.name)` (an expression the index does not hold) for one case at
-- a time (`l.test_case_id = c.id`, the unique index's first column), and
-- nothing else reads label rows by name. A first upload writes six label
-- rows per result (allure-pytest's labels without host and thread), so
-- that index was a tenth of the time of uploading 100,000 such results.
DROP INDEX test_case_labels_value;
