//! Real JUnit reports of real frameworks (`tests/fixtures/frameworks/`, see its
//! README): after taking the latest attempt of each test the way the server does,
//! the counts per status are the framework's own, and durations, captured output
//! and rerun attempts are kept.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use onelaunch_model::allure::TestResult;
use onelaunch_model::{
    fixtures_by_result, parse_container, parse_junit_report, parse_result, to_upload, JUnitReport,
};
use serde_json::Value;

fn fixture(dir: &str, report: &str) -> (JUnitReport, BTreeMap<String, usize>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/frameworks");
    let bytes = std::fs::read(root.join(dir).join(report)).unwrap();
    let parsed = parse_junit_report(&bytes, &format!("ci-1/{report}")).unwrap();
    (parsed, fixture_counts(dir))
}

/// `expected.txt` of a fixture directory.
fn fixture_counts(dir: &str) -> BTreeMap<String, usize> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/frameworks");
    std::fs::read_to_string(root.join(dir).join("expected.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().parse().unwrap()))
        .collect()
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
        *counts
            .entry(r.status.as_deref().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

fn check_counts(report: &JUnitReport, expected: &BTreeMap<String, usize>) {
    check_result_counts(&report.results, expected)
}

fn check_result_counts(results: &[TestResult], expected: &BTreeMap<String, usize>) {
    assert_eq!(
        results.len(),
        expected["attempts"],
        "every attempt is a result"
    );
    let mut want = expected.clone();
    want.remove("attempts");
    assert_eq!(counts(&latest(results)), want);
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

/// The lines of a framework's console output that contain `needle`.
fn console_lines(dir: &str, needle: &str) -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/frameworks");
    std::fs::read_to_string(root.join(dir).join("console.txt"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn gotestsum_reruns_subtests_and_output_in_the_failure_body() {
    let (report, expected) = fixture("gotestsum", "junit.xml");
    check_counts(&report, &expected);
    // One suite per package, named after it; the package is the class name.
    for r in &report.results {
        assert_eq!(
            r.full_name.as_deref(),
            Some(&*format!("example.com/sample.{}", r.name))
        );
        let up = to_upload(r);
        assert!(up.duration.is_some() && up.start.is_some(), "{}", r.name);
    }
    // go test's own line `--- PASS: TestPasses (0.02s)` is the duration.
    let line = &console_lines("gotestsum", "--- PASS: TestPasses")[0];
    let seconds: f64 = line
        .rsplit_once('(')
        .unwrap()
        .1
        .trim_end_matches("s)")
        .parse()
        .unwrap();
    let passes = by_name(&report, "TestPasses");
    assert_eq!(passes.len(), 1);
    assert_eq!(
        to_upload(passes[0]).duration,
        Some((seconds * 1000.0).round() as i64)
    );
    // The failure's text is the test's own output, t.Log lines included; gotestsum's
    // `message` is always "Failed".
    let fails = by_name(&report, "TestFails");
    assert_eq!(fails.len(), 3, "the first run and two reruns");
    let error = console_lines("gotestsum", "arithmetic is broken")[0]
        .trim()
        .to_string();
    let log = console_lines("gotestsum", "log of TestFails")[0]
        .trim()
        .to_string();
    for r in &fails {
        assert_eq!(r.status.as_deref(), Some("failed"));
        let d = r.status_details.as_ref().unwrap();
        assert_eq!(d.message.as_deref(), Some("Failed"));
        let trace = d.trace.as_deref().unwrap();
        assert!(trace.contains(&error), "{trace}");
        assert!(trace.contains(&log), "{trace}");
    }
    // The flaky test: failed, then passed on gotestsum's rerun.
    let flaky = by_name(&report, "TestFlaky");
    assert_eq!(flaky.len(), 2);
    assert_eq!(flaky[0].status.as_deref(), Some("failed"));
    let first = console_lines("gotestsum", "first run fails")[0]
        .trim()
        .to_string();
    assert!(flaky[0]
        .status_details
        .as_ref()
        .unwrap()
        .trace
        .as_deref()
        .unwrap()
        .contains(&first));
    let last = latest(&report.results);
    let flaky_last = last.iter().find(|r| r.name == "TestFlaky").unwrap();
    assert_eq!(flaky_last.status.as_deref(), Some("passed"));
    assert_eq!(flaky_last.uuid, flaky[1].uuid);
    // Subtests are tests of their own, and so is their parent.
    let sub = by_name(&report, "TestSubtests/divides");
    assert_eq!(sub.len(), 3);
    assert_eq!(
        by_name(&report, "TestSubtests/adds")[0].status.as_deref(),
        Some("passed")
    );
    // The skip reason is in the message.
    let skipped = by_name(&report, "TestSkipped");
    let reason = console_lines("gotestsum", "not today")[0]
        .trim()
        .to_string();
    assert_eq!(skipped[0].status.as_deref(), Some("skipped"));
    assert!(skipped[0]
        .status_details
        .as_ref()
        .unwrap()
        .message
        .as_deref()
        .unwrap()
        .contains(&reason));
}

#[test]
fn allure_pytest_results_as_allure_pytest_wrote_them() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/frameworks/allure-pytest");
    let expected = fixture_counts("allure-pytest");
    let mut results = Vec::new();
    let mut raw: HashMap<String, Value> = HashMap::new();
    let mut containers = Vec::new();
    for entry in std::fs::read_dir(root.join("results")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        if name.ends_with("-result.json") {
            let r = parse_result(&bytes).unwrap();
            raw.insert(r.uuid.clone(), serde_json::from_slice(&bytes).unwrap());
            results.push(r);
        } else if name.ends_with("-container.json") {
            containers.push(parse_container(&bytes).unwrap());
        }
    }
    results.sort_by(|a, b| (a.start, &a.uuid).cmp(&(b.start, &b.uuid)));
    check_result_counts(&results, &expected);
    let named =
        |name: &str| -> Vec<&TestResult> { results.iter().filter(|r| r.name == name).collect() };

    // Every field the parser keeps is the one in allure-pytest's file.
    for r in &results {
        let file = &raw[&r.uuid];
        let up = to_upload(r);
        assert_eq!(up.history_id.as_deref(), file["historyId"].as_str());
        assert_eq!(up.full_name.as_deref(), file["fullName"].as_str());
        assert_eq!(up.status.as_deref(), file["status"].as_str(), "{}", r.name);
        assert_eq!(
            up.message.as_deref(),
            file["statusDetails"]["message"].as_str(),
            "{}",
            r.name
        );
        let (start, stop) = (
            file["start"].as_i64().unwrap(),
            file["stop"].as_i64().unwrap(),
        );
        assert_eq!(up.duration, Some(stop - start), "{}", r.name);
        let params: Vec<(String, String)> = up
            .parameters
            .iter()
            .map(|p| (p.name.to_string(), p.value.to_string()))
            .collect();
        let file_params: Vec<(String, String)> = file["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap().into(),
                            p["value"].as_str().unwrap().into(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(params, file_params, "{}", r.name);
    }

    // pytest's own summary names the failures and their messages.
    for (test, status) in [
        ("test_always_fails", "failed"),
        ("test_breaks", "broken"),
        ("test_adds[2-2-5]", "failed"),
    ] {
        let line = &console_lines(
            "allure-pytest",
            &format!("FAILED test_sample.py::{test} - "),
        )[0];
        let message = line.split_once(" - ").unwrap().1;
        let last = *latest(&results).iter().find(|r| r.name == test).unwrap();
        assert_eq!(last.status.as_deref(), Some(status), "{test}");
        let got = last
            .status_details
            .as_ref()
            .unwrap()
            .message
            .as_deref()
            .unwrap();
        assert!(got.contains(message), "{test}: {got:?} vs {message:?}");
    }
    // pytest-rerunfailures: "--reruns 2" gives the always failing test three
    // results, the flaky one two (failed, then passed).
    assert_eq!(named("test_always_fails").len(), 3);
    let flaky = named("test_flaky");
    assert_eq!(flaky.len(), 2);
    assert_eq!(flaky[0].status.as_deref(), Some("failed"));
    assert_eq!(flaky[1].status.as_deref(), Some("passed"));
    // xfail is reported as skipped with pytest's reason.
    let xfail = named("test_expected_to_fail");
    assert_eq!(xfail[0].status.as_deref(), Some("skipped"));
    assert!(xfail[0]
        .status_details
        .as_ref()
        .unwrap()
        .message
        .as_deref()
        .unwrap()
        .contains("known bug 42"));
    // Parameters of the parametrized test.
    let adds = to_upload(named("test_adds[2-2-5]")[0]);
    let params: Vec<(&str, &str)> = adds
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(params, [("a", "2"), ("b", "2"), ("total", "5")]);

    // The titled test: steps, attachments, labels, links, its fixture.
    let cart = named("The cart holds what was put in it");
    assert_eq!(cart.len(), 1);
    let up = to_upload(cart[0]);
    assert_eq!(up.full_name.as_deref(), Some("test_sample#test_passes"));
    let steps: Vec<&str> = up.steps.iter().filter_map(|s| s.body.as_deref()).collect();
    assert_eq!(steps, ["put a pear in the cart", "count the items"]);
    assert!(up.duration.unwrap() >= 50, "time.sleep(0.05) in a step");
    let attachment = cart[0]
        .attachments
        .iter()
        .find(|a| a.name == "cart contents")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("results").join(&attachment.source)).unwrap(),
        "apple, pear"
    );
    let stdout = cart[0]
        .attachments
        .iter()
        .find(|a| a.name == "stdout")
        .unwrap();
    assert!(
        std::fs::read_to_string(root.join("results").join(&stdout.source))
            .unwrap()
            .contains("stdout of test_passes")
    );
    let label = |name: &str| {
        up.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    };
    assert_eq!(label("feature"), Some("checkout"));
    assert_eq!(label("story"), Some("cart"));
    assert_eq!(label("severity"), Some("critical"));
    assert!(up.links.iter().any(|l| l.name == "ISSUE-17"
        && l.url == "https://example.com/issues/17"
        && l.kind.as_deref() == Some("issue")));
    let fixtures = fixtures_by_result(&containers);
    let kinds: Vec<(&str, &str)> = fixtures[&cart[0].uuid]
        .iter()
        .map(|f| (f.kind.as_str(), f.name.as_str()))
        .collect();
    assert!(kinds.contains(&("BEFORE", "cart")), "{kinds:?}");
    assert!(
        kinds
            .iter()
            .any(|(k, n)| *k == "AFTER" && n.starts_with("cart")),
        "{kinds:?}"
    );
}
