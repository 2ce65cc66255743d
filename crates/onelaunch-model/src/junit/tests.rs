//! Unit tests of the JUnit parser.

use super::*;

const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="all">
  <testsuite name="com.example.CalcTest" timestamp="2024-03-01T10:00:00" time="1.5">
<properties><property name="java" value="17"/></properties>
<testcase name="adds" classname="com.example.CalcTest" time="0.25"/>
<testcase name="divides" classname="com.example.CalcTest" time="0.5">
  <failure message="expected 2 but was 3" type="AssertionError">java.lang.AssertionError: expected 2
	at com.example.CalcTest.divides(CalcTest.java:12)</failure>
</testcase>
<testcase name="io" classname="com.example.CalcTest">
  <error type="java.io.IOException"><![CDATA[java.io.IOException: <disk>
	at x]]></error>
  <system-out>noise</system-out>
</testcase>
<testcase name="later" classname="com.example.CalcTest"><skipped message="not today"/></testcase>
  </testsuite>
  <testsuite name="outer">
<testsuite name="inner" timestamp="2024-03-01T12:00:00.500+02:00">
  <testcase name="nested" time="2"/>
</testsuite>
  </testsuite>
</testsuites>"#;

fn label_value<'a>(r: &'a TestResult, name: &str) -> Option<&'a str> {
    r.labels
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.value.as_str())
}

#[test]
fn statuses_details_and_names() {
    let results = parse_junit(REPORT.as_bytes(), "reports/TEST-calc.xml").unwrap();
    assert_eq!(results.len(), 5);
    let by_name = |n: &str| results.iter().find(|r| r.name == n).unwrap();

    let adds = by_name("adds");
    assert_eq!(adds.status.as_deref(), Some("passed"));
    assert_eq!(adds.status_details, None);
    assert_eq!(adds.full_name.as_deref(), Some("com.example.CalcTest.adds"));
    assert_eq!(adds.stage.as_deref(), Some("finished"));

    let divides = by_name("divides");
    assert_eq!(divides.status.as_deref(), Some("failed"));
    let details = divides.status_details.as_ref().unwrap();
    assert_eq!(details.message.as_deref(), Some("expected 2 but was 3"));
    assert_eq!(
        details.trace.as_deref(),
        Some("java.lang.AssertionError: expected 2\n\tat com.example.CalcTest.divides(CalcTest.java:12)")
    );

    let io = by_name("io");
    assert_eq!(io.status.as_deref(), Some("broken"));
    let details = io.status_details.as_ref().unwrap();
    assert_eq!(details.message.as_deref(), Some("java.io.IOException"));
    assert_eq!(
        details.trace.as_deref(),
        Some("java.io.IOException: <disk>\n\tat x")
    );

    let later = by_name("later");
    assert_eq!(later.status.as_deref(), Some("skipped"));
    assert_eq!(
        later.status_details.as_ref().unwrap().message.as_deref(),
        Some("not today")
    );
    assert_eq!(later.status_details.as_ref().unwrap().trace, None);
}

#[test]
fn labels_times_and_nested_suites() {
    let results = parse_junit(REPORT.as_bytes(), "calc.xml").unwrap();
    let adds = &results[0];
    assert_eq!(label_value(adds, "suite"), Some("com.example.CalcTest"));
    assert_eq!(label_value(adds, "testClass"), Some("com.example.CalcTest"));
    assert_eq!(label_value(adds, "framework"), Some("junit"));
    // 2024-03-01T10:00:00Z
    assert_eq!(adds.start, Some(1_709_287_200_000));
    assert_eq!(adds.stop, Some(1_709_287_200_250));
    assert_eq!(adds.title_path, vec!["com.example.CalcTest"]);
    // No time attribute: start known, stop unknown.
    assert_eq!(results[2].start, Some(1_709_287_200_000));
    assert_eq!(results[2].stop, None);

    let nested = &results[4];
    assert_eq!(nested.name, "nested");
    assert_eq!(nested.full_name.as_deref(), Some("nested"));
    assert_eq!(label_value(nested, "suite"), Some("inner"));
    assert_eq!(label_value(nested, "testClass"), None);
    assert_eq!(nested.title_path, vec!["outer", "inner"]);
    // 12:00:00.500+02:00 == 10:00:00.500Z
    assert_eq!(nested.start, Some(1_709_287_200_500));
    assert_eq!(nested.stop, Some(1_709_287_202_500));
}

#[test]
fn history_id_is_truncated_hash_of_full_name() {
    let results = parse_junit(REPORT.as_bytes(), "calc.xml").unwrap();
    let adds = &results[0];
    let expected = hex::encode(Sha256::digest(b"com.example.CalcTest.adds"));
    assert_eq!(adds.history_id.as_deref(), Some(&expected[..32]));
}

#[test]
fn uuids_are_deterministic_and_distinct() {
    let xml = br#"<testsuite name="s">
        <testcase classname="C" name="t"/>
        <testcase classname="C" name="t"/>
        <testcase classname="C" name="u"/>
    </testsuite>"#;
    let a = parse_junit(xml, "a.xml").unwrap();
    let again = parse_junit(xml, "a.xml").unwrap();
    let other_origin = parse_junit(xml, "b.xml").unwrap();
    let uuids = |rs: &[TestResult]| rs.iter().map(|r| r.uuid.clone()).collect::<Vec<_>>();
    assert_eq!(uuids(&a), uuids(&again));
    assert_eq!(a[0].uuid.len(), 64);
    assert!(a[0].uuid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(
        a[0].uuid, a[1].uuid,
        "repeated test cases get distinct uuids"
    );
    assert_ne!(a[0].uuid, a[2].uuid);
    for (x, y) in a.iter().zip(&other_origin) {
        assert_ne!(x.uuid, y.uuid, "the origin is part of the uuid");
    }
    assert_eq!(a[0].history_id, a[1].history_id, "retries share history");

    // The same tests run at another time, written to a file of the same name.
    let stamped = |t: &str| {
        let xml = format!(
            r#"<testsuite name="s" timestamp="{t}"><testcase classname="C" name="t"/></testsuite>"#
        );
        parse_junit(xml.as_bytes(), "a.xml").unwrap()[0]
            .uuid
            .clone()
    };
    assert_eq!(
        stamped("2024-05-01T10:00:00"),
        stamped("2024-05-01T10:00:00")
    );
    assert_ne!(
        stamped("2024-05-01T10:00:00"),
        stamped("2024-05-01T10:00:01")
    );
    assert_ne!(stamped("2024-05-01T10:00:00"), a[0].uuid);
}

#[test]
fn failure_wins_over_skip_and_first_failure_wins() {
    let xml = br#"<testsuite name="s">
        <testcase name="a"><skipped/><failure message="boom"/></testcase>
        <testcase name="b"><error message="first"/><failure message="second"/></testcase>
        <testcase name="c"><skipped/></testcase>
        <testcase name="d"><flakyFailure message="once"/></testcase>
    </testsuite>"#;
    let r = parse_junit(xml, "x").unwrap();
    assert_eq!(r[0].status.as_deref(), Some("failed"));
    assert_eq!(
        r[0].status_details.as_ref().unwrap().message.as_deref(),
        Some("boom")
    );
    assert_eq!(r[1].status.as_deref(), Some("broken"));
    assert_eq!(
        r[1].status_details.as_ref().unwrap().message.as_deref(),
        Some("first")
    );
    assert_eq!(r[2].status.as_deref(), Some("skipped"));
    assert_eq!(r[2].status_details.as_ref().unwrap().message, None);
    // The flaky failure is an earlier attempt; the test case itself passed.
    assert_eq!(r[3].status.as_deref(), Some("failed"));
    assert_eq!(r[4].status.as_deref(), Some("passed"));
    assert!(r[4].status_details.as_ref().unwrap().flaky);
}

const SUREFIRE_RERUNS: &str = r#"<testsuite name="com.example.RetryTest">
  <testcase name="flaky" classname="com.example.RetryTest" time="0.3">
<flakyFailure message="first" type="java.lang.AssertionError">
  <stackTrace>java.lang.AssertionError: first
	at com.example.RetryTest.flaky(RetryTest.java:9)</stackTrace>
  <system-out>out of run 1</system-out>
</flakyFailure>
<flakyError message="second" type="java.io.IOException"><stackTrace>io</stackTrace></flakyError>
<system-out>out of the final run</system-out>
  </testcase>
  <testcase name="broken" classname="com.example.RetryTest" time="0.2">
<failure message="run 1" type="java.lang.AssertionError">trace 1</failure>
<rerunFailure message="run 2" type="java.lang.AssertionError"><stackTrace>trace 2</stackTrace></rerunFailure>
<rerunFailure type="java.lang.AssertionError"><stackTrace>trace 3</stackTrace></rerunFailure>
  </testcase>
</testsuite>"#;

#[test]
fn surefire_rerun_elements_are_earlier_attempts() {
    let report = parse_junit_report(SUREFIRE_RERUNS.as_bytes(), "TEST-x.xml").unwrap();
    let r = &report.results;
    let summary: Vec<(&str, &str, Option<&str>)> = r
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.status.as_deref().unwrap(),
                r.status_details.as_ref().and_then(|d| d.message.as_deref()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("flaky", "failed", Some("first")),
            ("flaky", "broken", Some("second")),
            ("flaky", "passed", None),
            ("broken", "failed", Some("run 2")),
            ("broken", "failed", Some("java.lang.AssertionError")),
            ("broken", "failed", Some("run 1")),
        ]
    );
    let trace = |i: usize| r[i].status_details.as_ref().unwrap().trace.as_deref();
    assert_eq!(
        trace(0),
        Some("java.lang.AssertionError: first\n\tat com.example.RetryTest.flaky(RetryTest.java:9)")
    );
    assert_eq!(trace(1), Some("io"));
    assert_eq!(trace(3), Some("trace 2"));
    assert!(r[2].status_details.as_ref().unwrap().flaky);
    assert!(!r[5].status_details.as_ref().unwrap().flaky);
    // One test, attempts in document order by uuid; no timestamp, so no start.
    assert!(r[..3].iter().all(|x| x.history_id == r[0].history_id));
    assert!(r[0].uuid < r[1].uuid && r[1].uuid < r[2].uuid);
    assert!(r[3].uuid < r[4].uuid && r[4].uuid < r[5].uuid);
    assert!(r.iter().all(|x| x.start.is_none() && x.stop.is_none()));
    assert_eq!(r[0].duration, None);
    assert_eq!(r[2].duration, Some(300));
    // Output of the rerun and of the final run.
    let content = |r: &TestResult| -> Vec<String> {
        r.attachments
            .iter()
            .map(|a| {
                let g = report
                    .generated
                    .iter()
                    .find(|g| g.source == a.source)
                    .unwrap();
                format!("{}={}", a.name, g.content)
            })
            .collect()
    };
    assert_eq!(content(&r[0]), vec!["system-out=out of run 1"]);
    assert_eq!(content(&r[2]), vec!["system-out=out of the final run"]);
    assert!(r[1].attachments.is_empty());
    // parse_junit drops the output.
    let plain = parse_junit(SUREFIRE_RERUNS.as_bytes(), "TEST-x.xml").unwrap();
    assert!(plain.iter().all(|r| r.attachments.is_empty()));
}

#[test]
fn repeated_test_cases_start_in_document_order() {
    let xml = br#"<testsuite name="s" timestamp="2024-03-01T10:00:00Z">
        <testcase classname="C" name="t" time="0.5"/>
        <testcase classname="C" name="t" time="0"/>
        <testcase classname="C" name="t" time="0.25"><failure message="no"/></testcase>
        <testcase classname="C" name="u"/>
    </testsuite>"#;
    let r = parse_junit(xml, "x").unwrap();
    let base = 1_709_287_200_000;
    let times: Vec<_> = r.iter().map(|r| (r.start, r.stop, r.duration)).collect();
    assert_eq!(
        times,
        vec![
            (Some(base), Some(base + 500), Some(500)),
            (Some(base + 500), Some(base + 500), Some(0)),
            // At least 1 ms after the previous attempt.
            (Some(base + 501), Some(base + 751), Some(250)),
            (Some(base), None, None),
        ]
    );
}

#[test]
fn output_of_cases_and_suites_and_first_line_messages() {
    let xml = br#"<testsuites><testsuite name="jest" timestamp="2024-03-01T10:00:00">
        <testcase classname="a" name="a" time="0.1">
          <failure>
Error: expected 3
at x</failure>
          <system-err>  </system-err>
        </testcase>
        <testcase classname="b" name="b" time="0.1"><system-err>warn</system-err></testcase>
        <system-out>console of the suite</system-out>
    </testsuite>
    <testsuite name="other"><testcase name="c"/></testsuite></testsuites>"#;
    let report = parse_junit_report(xml, "x").unwrap();
    let r = &report.results;
    assert_eq!(
        r[0].status_details.as_ref().unwrap().message.as_deref(),
        Some("Error: expected 3")
    );
    let names = |r: &TestResult| {
        r.attachments
            .iter()
            .map(|a| a.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&r[0]), vec!["suite system-out"]);
    assert_eq!(names(&r[1]), vec!["system-err", "suite system-out"]);
    assert!(r[2].attachments.is_empty());
    assert_eq!(r[0].attachments[0].source, r[1].attachments[1].source);
    assert_eq!(report.generated.len(), 2, "the suite output is kept once");
    for g in &report.generated {
        assert!(crate::is_safe_source(&g.source), "{}", g.source);
    }
    assert_eq!(r[0].attachments[0].r#type.as_deref(), Some("text/plain"));
}

#[test]
fn single_testsuite_root_without_timestamp() {
    let xml = br#"<testsuite name="pytest" time="0.1"><testcase classname="tests.test_x" name="test_y" time="0.1"/></testsuite>"#;
    let r = parse_junit(xml, "x").unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].start, None);
    assert_eq!(r[0].stop, None);
    assert_eq!(r[0].full_name.as_deref(), Some("tests.test_x.test_y"));
    assert!(parse_junit(b"<testsuites/>", "x").unwrap().is_empty());
}

#[test]
fn missing_names_fall_back() {
    let xml = br#"<testsuite><testcase classname="OnlyClass"/><testcase/></testsuite>"#;
    let r = parse_junit(xml, "x").unwrap();
    assert_eq!(r[0].name, "OnlyClass");
    assert_eq!(r[0].full_name.as_deref(), Some("OnlyClass.OnlyClass"));
    assert_eq!(r[1].name, "unnamed");
    assert_eq!(label_value(&r[1], "suite"), None);
}

#[test]
fn namespaced_root_is_accepted() {
    let xml = br#"<j:testsuites xmlns:j="urn:x"><j:testsuite name="s"><j:testcase name="t"/></j:testsuite></j:testsuites>"#;
    assert_eq!(parse_junit(xml, "x").unwrap().len(), 1);
}

#[test]
fn rejects_non_junit_and_malformed() {
    assert_eq!(
        parse_junit(b"<foo/>", "x").unwrap_err().to_string(),
        "not a JUnit XML report: root element is <foo>, expected <testsuite> or <testsuites>"
    );
    assert_eq!(
        parse_junit(b"<?xml version=\"1.0\"?>", "x").unwrap_err(),
        ModelError::NotJUnit { root: None }
    );
    assert_eq!(parse_junit(b"", "x").unwrap_err(), ModelError::Empty);
    assert_eq!(
        parse_junit(b"<testsuite name=\"\xC3\x28\"/>", "x").unwrap_err(),
        ModelError::NotUtf8 { offset: 17 }
    );

    let truncated = &REPORT.as_bytes()[..REPORT.len() / 2];
    let err = parse_junit(truncated, "x").unwrap_err();
    assert!(matches!(err, ModelError::Xml { .. }), "{err}");

    let err = parse_junit(b"<testsuite>\n<testcase name=\"a\">\n</testsuite>", "x")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid XML at line 3, column"), "{err}");
    assert!(err.contains("expected `</testcase>`"), "{err}");
}
