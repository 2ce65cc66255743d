//! Real JUnit reports of real frameworks (`tests/fixtures/frameworks/`, see its
//! README): after taking the latest attempt of each test the way the server does,
//! the counts per status are the framework's own, and durations, captured output
//! and rerun attempts are kept.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use onelaunch_model::allure::TestResult;
use onelaunch_model::{parse_junit_report, to_upload, JUnitReport};

fn fixture(dir: &str, report: &str) -> (JUnitReport, BTreeMap<String, usize>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/frameworks");
    let bytes = std::fs::read(root.join(dir).join(report)).unwrap();
    let parsed = parse_junit_report(&bytes, &format!("ci-1/{report}")).unwrap();
    let expected = std::fs::read_to_string(root.join(dir).join("expected.txt")).unwrap();
    let expected = expected
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().parse().unwrap()))
        .collect();
    (parsed, expected)
}

/// The server's `LATEST`: per history id the attempt with the latest start
/// (unknown = 0); ties go to the highest row id, and the server inserts the
/// results of one request in uuid order.
fn latest(results: &[TestResult]) -> Vec<&TestResult> {
    let mut by_key: HashMap<&str, &TestResult> = HashMap::new();
    for r in results {
        let key = r.history_id.as_deref().unwrap();
        let rank = |r: &TestResult| (r.start.unwrap_or(0), r.uuid.clone());
        match by_key.get(key) {
            Some(current) if rank(current) > rank(r) => {}
            _ => {
                by_key.insert(key, r);
            }
        }
    }
    by_key.into_values().collect()
}

fn counts(results: &[&TestResult]) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = ["passed", "failed", "broken", "skipped"]
        .into_iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    for r in results {
        *counts.entry(r.status.clone().unwrap()).or_default() += 1;
    }
    counts
}

fn check_counts(report: &JUnitReport, expected: &BTreeMap<String, usize>) {
    assert_eq!(
        report.results.len(),
        expected["attempts"],
        "every attempt is a result"
    );
    let mut want = expected.clone();
    want.remove("attempts");
    assert_eq!(counts(&latest(&report.results)), want);
}

fn output<'a>(report: &'a JUnitReport, r: &TestResult, name: &str) -> Option<&'a str> {
    let a = r.attachments.iter().find(|a| a.name == name)?;
    let g = report.generated.iter().find(|g| g.source == a.source);
    Some(g.expect("every attachment is generated").content.as_str())
}

fn by_name<'a>(report: &'a JUnitReport, name: &str) -> Vec<&'a TestResult> {
    report.results.iter().filter(|r| r.name == name).collect()
}

#[test]
fn pytest_reruns_in_both_families() {
    for family in ["pytest-xunit1", "pytest-xunit2"] {
        let (report, expected) = fixture(family, "report.xml");
        check_counts(&report, &expected);
        // Durations: every test case has a `time`, and the suite a timestamp.
        for r in &report.results {
            let up = to_upload(r);
            assert!(up.duration.is_some(), "{family}: {}", r.name);
            assert!(
                up.start.is_some() && up.stop.is_some(),
                "{family}: {}",
                r.name
            );
        }
        // Three runs of the always failing test, starting in document order.
        let fails = by_name(&report, "test_always_fails");
        assert_eq!(fails.len(), 3, "{family}");
        assert!(
            fails.windows(2).all(|w| w[0].start < w[1].start),
            "{family}"
        );
        let last = fails[2];
        assert_eq!(last.status.as_deref(), Some("failed"));
        assert!(last
            .status_details
            .as_ref()
            .unwrap()
            .message
            .as_deref()
            .unwrap()
            .contains("arithmetic is broken"));
        let flaky = by_name(&report, "test_flaky");
        assert_eq!(flaky.len(), 2);
        assert_eq!(flaky[1].status.as_deref(), Some("passed"));
        // Captured output of each run.
        let out = output(&report, by_name(&report, "test_passes")[0], "system-out").unwrap();
        assert!(out.contains("stdout of test_passes"), "{family}: {out}");
        let err = output(&report, by_name(&report, "test_passes")[0], "system-err").unwrap();
        assert!(err.contains("stderr of test_passes"), "{family}: {err}");
        assert!(output(&report, flaky[1], "system-out")
            .unwrap()
            .contains("flaky run 2"));
    }
}

#[test]
fn jest_junit_console_output_and_body_messages() {
    let (report, expected) = fixture("jest-junit", "junit.xml");
    check_counts(&report, &expected);
    for r in &report.results {
        assert!(to_upload(r).duration.is_some(), "{}", r.name);
        let console = output(&report, r, "suite system-out").expect("suite output on every result");
        assert!(console.contains("console output of adds"), "{console}");
    }
    assert_eq!(report.generated.len(), 1, "the suite output is kept once");
    let divides = by_name(&report, "calculator divides")[0];
    let details = divides.status_details.as_ref().unwrap();
    assert_eq!(
        details.message.as_deref(),
        Some("Error: expect(received).toBe(expected) // Object.is equality")
    );
    assert!(details.trace.as_deref().unwrap().contains("Received: 2"));
}

#[test]
fn surefire_rerun_elements_without_timestamps() {
    let (report, expected) = fixture("surefire", "TEST-com.example.SampleTest.xml");
    check_counts(&report, &expected);
    // No timestamps: durations only.
    for r in report.results.iter() {
        assert_eq!(r.start, None);
    }
    let finals = latest(&report.results);
    assert_eq!(finals.len(), 6);
    for r in &finals {
        assert!(to_upload(r).duration.is_some(), "{}", r.name);
    }
    // Reruns with their own message, trace and output.
    let fails = by_name(&report, "alwaysFails");
    assert_eq!(fails.len(), 3);
    for r in &fails {
        assert_eq!(r.status.as_deref(), Some("failed"));
        let d = r.status_details.as_ref().unwrap();
        assert_eq!(
            d.message.as_deref(),
            Some("arithmetic is broken expected:<5> but was:<4>")
        );
        assert!(d.trace.as_deref().unwrap().contains("SampleTest.java:23"));
        assert!(output(&report, r, "system-out")
            .unwrap()
            .contains("stdout of alwaysFails"));
    }
    let errors = by_name(&report, "alwaysErrors");
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|r| r.status.as_deref() == Some("broken")));
    let flaky = by_name(&report, "flaky");
    assert_eq!(flaky.len(), 2);
    assert_eq!(flaky[0].status.as_deref(), Some("failed"));
    assert!(flaky[0]
        .status_details
        .as_ref()
        .unwrap()
        .message
        .as_deref()
        .unwrap()
        .starts_with("first run fails"));
    assert!(output(&report, flaky[0], "system-out")
        .unwrap()
        .contains("flaky run 1"));
    assert_eq!(flaky[1].status.as_deref(), Some("passed"));
    assert!(flaky[1].status_details.as_ref().unwrap().flaky);
    assert!(
        flaky[0].uuid < flaky[1].uuid,
        "attempts sort in document order"
    );
}
