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
                status: Some(rerun.outcome.status.into()),
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
            status: Some(status.into()),
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
        name: name.into(),
        value: value.into(),
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
mod tests;
