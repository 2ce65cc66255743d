//! JUnit XML reports (`<testsuites>` / `<testsuite>`, as written by Surefire, Gradle,
//! pytest, Jest, go-junit-report, …) converted to Allure results.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::allure::{Attachment, Label, StatusDetails, TestResult};
use crate::timestamp::parse_timestamp;
use crate::xml::{attr, Node, Walker};
use crate::ModelError;

/// A JUnit report read by [`parse_junit_report`]: its results and the text
/// attachments made from its captured output, which the results refer to by
/// [`GeneratedAttachment::source`] and which exist in no file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JUnitReport {
    pub results: Vec<TestResult>,
    /// Each one once, however many results refer to it.
    pub generated: Vec<GeneratedAttachment>,
}

/// A `text/plain` attachment made from `<system-out>` or `<system-err>`.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedAttachment {
    /// A synthetic file name (hex digits, a suffix and `.txt`; always a safe source),
    /// unique for the origin, suite or test case and stream.
    pub source: String,
    pub content: String,
}

/// [`parse_junit_report`] without the captured output: the results refer to no
/// attachment. For callers that cannot send generated attachments.
pub fn parse_junit(bytes: &[u8], origin: &str) -> Result<Vec<TestResult>, ModelError> {
    let mut results = parse_junit_report(bytes, origin)?.results;
    for r in &mut results {
        r.attachments.clear();
    }
    Ok(results)
}

/// Parses a JUnit XML report into one [`TestResult`] per attempt of a test: each
/// `<testcase>`, and each Surefire rerun element inside one.
///
/// * `name` is the test case name (falling back to its class name, then
///   `"unnamed"`); `full_name` is `classname.name`, or just the name without a class.
/// * `history_id` is the first 32 hex digits of SHA-256 of `full_name`, so the same
///   test keeps its history across reports, and all attempts of a test share it.
/// * `status`: `<failure>` ⇒ `failed`, `<error>` ⇒ `broken`, `<skipped>` ⇒
///   `skipped`, otherwise `passed`. When several are present, the first failure or
///   error wins over a skip. `status_details.message` comes from the `message`
///   attribute (or `type` when there is no message, or else the first non-empty line
///   of the element text, as jest-junit writes it) and `trace` from the element text.
/// * Attempts. The order of elements in the document is the order of execution:
///   the last attempt of a test (same `full_name`) in a report is its outcome.
///   - pytest-rerunfailures writes each rerun as an earlier `<testcase>` with the
///     same name; each becomes a result.
///   - Surefire's `<flakyFailure>`, `<flakyError>`, `<rerunFailure>` and
///     `<rerunError>` children of a `<testcase>` become earlier attempts (status
///     `failed` for the failures, `broken` for the errors; message from `message`
///     or `type`, trace from their `<stackTrace>` child or text, their own
///     `<system-out>`/`<system-err>` as attachments), in document order. The
///     `<testcase>` itself is the final attempt with its own outcome: passed after
///     `flaky*` elements (with `status_details.flaky`), failed or broken with
///     `rerun*` elements (Surefire writes the first run's `<failure>` plus one
///     `rerun*` element per failed rerun).
/// * `start` and `stop`. The base time is the `timestamp` of the test case or of its
///   nearest suite (ISO 8601; without a zone it is UTC). The first `<testcase>` of a
///   test starts at the base time; each later `<testcase>` of the same test (with the
///   same base) starts when the earlier ones ended, i.e. the base plus their `time`s,
///   and at least 1 ms after the previous one, so the server's latest attempt (latest
///   `start`) is the last one in the document. `stop` is `start + time` (`time` in
///   seconds, fractional). Rerun children carry no time: their `start`/`stop` are
///   unknown (`None`), so the `<testcase>` (with a known start) is the latest.
///   Without a base time `start`/`stop` are `None`; `duration` (not part of the
///   Allure format) keeps `time` whenever it is present.
/// * `uuid`: 64 hex digits: the first 56 of the SHA-256 of `origin`, the suite name,
///   the class name, the test name and the base time, then the attempt index of the
///   test in this file as 8 hex digits. Reading the same file again yields the same
///   uuids (re-uploads are idempotent); another run of the same tests, written at
///   another time into a file of the same name, does not collide with it; and the
///   attempts of a test sort by uuid in document order. The server breaks ties of
///   `start` (e.g. without timestamps) by row id and inserts the results of one
///   request in uuid order, so the document's last attempt is the latest when the
///   attempts of a test arrive in one request (the CLI keeps them together).
/// * Output: the `<system-out>` and `<system-err>` of a test case (or rerun element)
///   become `text/plain` attachments of its result, those of a suite attachments of
///   every result inside the suite (jest-junit's console output), as Allure's own
///   JUnit converters do. Their contents are in [`JUnitReport::generated`].
///   Whitespace-only output is dropped.
/// * Labels: `suite` (innermost named `<testsuite>`), `testClass` (class name) and
///   `framework=junit`. `title_path` lists the names of the enclosing suites.
///
/// Suites may nest. Fails on empty input, text that is not UTF-8, malformed XML
/// (with its line and column) or a root element other than `<testsuite>` or
/// `<testsuites>`.
pub fn parse_junit_report(bytes: &[u8], origin: &str) -> Result<JUnitReport, ModelError> {
    let text = crate::json::text(bytes)?;
    let mut walker = Walker::new(text);
    let mut parser = Parser {
        origin,
        suites: Vec::new(),
        suite_count: 0,
        case: None,
        roles: Vec::new(),
        attempts: HashMap::new(),
        report: JUnitReport::default(),
    };
    let mut seen_root = false;
    while let Some(node) = walker.next_node()? {
        match node {
            Node::Open { name, attrs } => {
                if !seen_root {
                    if name != "testsuites" && name != "testsuite" {
                        return Err(ModelError::NotJUnit { root: Some(name) });
                    }
                    seen_root = true;
                }
                parser.open(&name, &attrs);
            }
            Node::Close => parser.close(),
            Node::Text(text) => parser.text(&text),
        }
    }
    if !seen_root {
        return Err(ModelError::NotJUnit { root: None });
    }
    Ok(parser.report)
}

/// What an open element means to the parser, so its text and end tag can be handled.
enum Role {
    Suite,
    Case,
    /// The `<failure>`, `<error>` or `<skipped>` that decides the status.
    Outcome,
    /// A Surefire rerun element: the last of `Case::reruns`.
    Rerun,
    /// `<stackTrace>` of a rerun element.
    RerunTrace,
    /// `<system-out>` (`false`) or `<system-err>` (`true`) of the suite, case or rerun.
    SuiteOutput(bool),
    CaseOutput(bool),
    RerunOutput(bool),
    Other,
}

struct Suite {
    name: String,
    /// `<testsuite>` rather than `<testsuites>`.
    is_testsuite: bool,
    timestamp: Option<i64>,
    /// Index of its first result in `JUnitReport::results`.
    first_result: usize,
    /// Its position among all suites of the file.
    index: usize,
    output: Output,
}

#[derive(Default)]
struct Output {
    out: String,
    err: String,
}

impl Output {
    fn push(&mut self, err: bool, text: &str) {
        if err {
            self.err.push_str(text)
        } else {
            self.out.push_str(text)
        }
    }
}

struct Case {
    name: String,
    classname: String,
    time: Option<f64>,
    timestamp: Option<i64>,
    outcome: Option<Outcome>,
    flaky: bool,
    output: Output,
    reruns: Vec<Rerun>,
}

struct Outcome {
    status: &'static str,
    message: Option<String>,
    trace: String,
}

struct Rerun {
    outcome: Outcome,
    output: Output,
}

/// Per test (class name, name): the attempts seen so far in the file.
#[derive(Default)]
struct Attempts {
    count: u64,
    /// Base time of the `<testcase>` attempts so far, the time they took, the start
    /// of the last one.
    base: Option<i64>,
    elapsed: i64,
    last_start: Option<i64>,
}

struct Parser<'o> {
    origin: &'o str,
    suites: Vec<Suite>,
    suite_count: usize,
    case: Option<Case>,
    roles: Vec<Role>,
    attempts: HashMap<(String, String), Attempts>,
    report: JUnitReport,
}

fn outcome(name: &str, attrs: &[(String, String)]) -> Outcome {
    let status = match name {
        "failure" | "flakyFailure" | "rerunFailure" => "failed",
        "error" | "flakyError" | "rerunError" => "broken",
        _ => "skipped",
    };
    let message = attr(attrs, "message")
        .or_else(|| attr(attrs, "type"))
        .filter(|m| !m.trim().is_empty())
        .map(str::to_string);
    Outcome {
        status,
        message,
        trace: String::new(),
    }
}

impl Parser<'_> {
    fn open(&mut self, name: &str, attrs: &[(String, String)]) {
        let parent = self.roles.last();
        let is_err = name == "system-err";
        let role = match (&mut self.case, parent, name) {
            (Some(case), Some(Role::Case), "failure" | "error" | "skipped") => {
                let decides = match &case.outcome {
                    None => true,
                    Some(current) => current.status == "skipped" && name != "skipped",
                };
                if decides {
                    case.outcome = Some(outcome(name, attrs));
                    Role::Outcome
                } else {
                    Role::Other
                }
            }
            (
                Some(case),
                Some(Role::Case),
                "flakyFailure" | "flakyError" | "rerunFailure" | "rerunError",
            ) => {
                case.flaky |= name.starts_with("flaky");
                case.reruns.push(Rerun {
                    outcome: outcome(name, attrs),
                    output: Output::default(),
                });
                Role::Rerun
            }
            (Some(_), Some(Role::Rerun), "stackTrace") => Role::RerunTrace,
            (Some(_), Some(Role::Rerun), "system-out" | "system-err") => Role::RerunOutput(is_err),
            (Some(_), Some(Role::Case), "system-out" | "system-err") => Role::CaseOutput(is_err),
            (Some(_), _, _) => Role::Other,
            (None, Some(Role::Suite), "system-out" | "system-err") => Role::SuiteOutput(is_err),
            (None, _, "testsuite" | "testsuites") => {
                self.suites.push(Suite {
                    name: attr(attrs, "name").unwrap_or_default().trim().to_string(),
                    is_testsuite: name == "testsuite",
                    timestamp: attr(attrs, "timestamp").and_then(parse_timestamp),
                    first_result: self.report.results.len(),
                    index: self.suite_count,
                    output: Output::default(),
                });
                self.suite_count += 1;
                Role::Suite
            }
            (None, _, "testcase") => {
                self.case = Some(Case {
                    name: attr(attrs, "name").unwrap_or_default().trim().to_string(),
                    classname: attr(attrs, "classname")
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                    time: attr(attrs, "time").and_then(parse_seconds),
                    timestamp: attr(attrs, "timestamp").and_then(parse_timestamp),
                    outcome: None,
                    flaky: false,
                    output: Output::default(),
                    reruns: Vec::new(),
                });
                Role::Case
            }
            (None, _, _) => Role::Other,
        };
        self.roles.push(role);
    }

    fn text(&mut self, text: &str) {
        let case = self.case.as_mut();
        match (self.roles.last(), case) {
            (
                Some(Role::Outcome),
                Some(Case {
                    outcome: Some(o), ..
                }),
            ) => o.trace.push_str(text),
            (Some(Role::Rerun | Role::RerunTrace), Some(c)) => {
                if let Some(r) = c.reruns.last_mut() {
                    r.outcome.trace.push_str(text)
                }
            }
            (Some(Role::RerunOutput(err)), Some(c)) => {
                if let Some(r) = c.reruns.last_mut() {
                    r.output.push(*err, text)
                }
            }
            (Some(Role::CaseOutput(err)), Some(c)) => c.output.push(*err, text),
            (Some(Role::SuiteOutput(err)), _) => {
                if let Some(s) = self.suites.last_mut() {
                    s.output.push(*err, text)
                }
            }
            _ => {}
        }
    }

    fn close(&mut self) {
        match self.roles.pop() {
            Some(Role::Suite) => {
                if let Some(suite) = self.suites.pop() {
                    self.attach_suite_output(suite);
                }
            }
            Some(Role::Case) => {
                if let Some(case) = self.case.take() {
                    self.build(case);
                }
            }
            _ => {}
        }
    }

    /// Adds the output of a closing suite to every result built inside it.
    fn attach_suite_output(&mut self, suite: Suite) {
        let key = hash_parts(&[self.origin, &suite.index.to_string(), &suite.name]);
        let attachments = self.generate(&key[..56], "suite", suite.output);
        if attachments.is_empty() {
            return;
        }
        for r in &mut self.report.results[suite.first_result..] {
            r.attachments.extend(attachments.iter().cloned());
        }
    }

    /// Records the non-blank output streams and returns the attachments naming them.
    fn generate(&mut self, key: &str, kind: &str, output: Output) -> Vec<Attachment> {
        let mut attachments = Vec::new();
        for (stream, content) in [("system-out", output.out), ("system-err", output.err)] {
            if content.trim().is_empty() {
                continue;
            }
            let source = format!("{key}-{kind}-{stream}.txt");
            attachments.push(Attachment {
                name: if kind == "suite" {
                    format!("suite {stream}")
                } else {
                    stream.to_string()
                },
                source: source.clone(),
                r#type: Some("text/plain".to_string()),
            });
            self.report
                .generated
                .push(GeneratedAttachment { source, content });
        }
        attachments
    }

    fn build(&mut self, case: Case) {
        let name = [&case.name, &case.classname]
            .into_iter()
            .find(|s| !s.is_empty())
            .map_or_else(|| "unnamed".to_string(), |s| s.to_string());
        let full_name = if case.classname.is_empty() {
            name.clone()
        } else {
            format!("{}.{}", case.classname, name)
        };
        let suite_name = self
            .suites
            .iter()
            .rev()
            .find(|s| s.is_testsuite && !s.name.is_empty())
            .or_else(|| self.suites.iter().rev().find(|s| !s.name.is_empty()))
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let base = case
            .timestamp
            .or_else(|| self.suites.iter().rev().find_map(|s| s.timestamp));
        let key = hash_parts(&[
            self.origin,
            &suite_name,
            &case.classname,
            &name,
            &base.map(|s| s.to_string()).unwrap_or_default(),
        ]);
        let history_id = hex::encode(Sha256::digest(full_name.as_bytes()))[..32].to_string();
        let mut labels = Vec::new();
        if !suite_name.is_empty() {
            labels.push(label("suite", &suite_name));
        }
        if !case.classname.is_empty() {
            labels.push(label("testClass", &case.classname));
        }
        labels.push(label("framework", "junit"));
        let template = TestResult {
            history_id: Some(history_id),
            full_name: Some(full_name),
            name: name.clone(),
            title_path: self
                .suites
                .iter()
                .filter(|s| s.is_testsuite && !s.name.is_empty())
                .map(|s| s.name.clone())
                .collect(),
            stage: Some("finished".to_string()),
            labels,
            ..TestResult::default()
        };
        let test = (case.classname.clone(), name);

        for rerun in case.reruns {
            let uuid = self.next_uuid(&test, &key);
            let attachments = self.generate(&uuid, "rerun", rerun.output);
            self.report.results.push(TestResult {
                uuid,
                status: Some(rerun.outcome.status.to_string()),
                status_details: Some(details(rerun.outcome, false)),
                attachments,
                ..template.clone()
            });
        }

        let uuid = self.next_uuid(&test, &key);
        let millis = case.time.map(|seconds| (seconds * 1000.0).round() as i64);
        let start = base.map(|base| {
            let seen = self.attempts.entry(test).or_default();
            if seen.base != Some(base) {
                seen.base = Some(base);
                seen.elapsed = 0;
                seen.last_start = None;
            }
            let mut start = base.saturating_add(seen.elapsed);
            if let Some(last) = seen.last_start {
                start = start.max(last.saturating_add(1));
            }
            seen.elapsed = seen.elapsed.saturating_add(millis.unwrap_or(0));
            seen.last_start = Some(start);
            start
        });
        // `as` saturates, so absurd durations cannot overflow.
        let stop = start.zip(millis).map(|(s, ms)| s.saturating_add(ms));
        let status = case.outcome.as_ref().map_or("passed", |o| o.status);
        let status_details = match case.outcome {
            Some(outcome) => Some(details(outcome, case.flaky)),
            None if case.flaky => Some(StatusDetails {
                flaky: true,
                ..StatusDetails::default()
            }),
            None => None,
        };
        let attachments = self.generate(&uuid, "test", case.output);
        self.report.results.push(TestResult {
            uuid,
            status: Some(status.to_string()),
            status_details,
            start,
            stop,
            duration: millis,
            attachments,
            ..template
        });
    }

    /// The uuid of the next attempt of a test: `key`'s first 56 hex digits and the
    /// attempt index.
    fn next_uuid(&mut self, test: &(String, String), key: &str) -> String {
        let seen = self.attempts.entry(test.clone()).or_default();
        let index = seen.count;
        seen.count += 1;
        format!("{}{:08x}", &key[..56], index & 0xffff_ffff)
    }
}

fn details(outcome: Outcome, flaky: bool) -> StatusDetails {
    let trace = Some(outcome.trace.trim().to_string()).filter(|t| !t.is_empty());
    let message = outcome.message.or_else(|| {
        trace
            .as_deref()
            .and_then(|t| t.lines().map(str::trim).find(|l| !l.is_empty()))
            .map(str::to_string)
    });
    StatusDetails {
        message,
        trace,
        flaky,
        ..StatusDetails::default()
    }
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_string(),
        value: value.to_string(),
    }
}

/// Hex SHA-256 over length-prefixed parts, so no two part lists collide by
/// concatenation.
fn hash_parts(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// A JUnit `time` attribute: non-negative seconds, possibly fractional.
fn parse_seconds(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && *t >= 0.0)
}

#[cfg(test)]
mod tests {
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
}
