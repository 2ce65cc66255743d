//! JUnit XML reports (`<testsuites>` / `<testsuite>`, as written by Surefire, Gradle,
//! pytest, Jest, go-junit-report, …) converted to Allure results.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::allure::{Label, StatusDetails, TestResult};
use crate::xml::{attr, Node, Walker};
use crate::ModelError;

/// Parses a JUnit XML report into one [`TestResult`] per `<testcase>`.
///
/// * `name` is the test case name (falling back to its class name, then
///   `"unnamed"`); `full_name` is `classname.name`, or just the name without a class.
/// * `history_id` is the first 32 hex digits of SHA-256 of `full_name`, so the same
///   test keeps its history across reports.
/// * `uuid` is the hex SHA-256 of `origin`, the suite name, the class name, the test
///   name, the occurrence index of that (class name, name) pair in this file and the
///   start time (below), so reading the same file again yields the same uuids
///   (re-uploads are idempotent) while another run of the same tests, written at
///   another time into a file of the same name, does not collide with it.
/// * `status`: `<failure>` ⇒ `failed`, `<error>` ⇒ `broken`, `<skipped>` ⇒
///   `skipped`, otherwise `passed`. When several are present, the first failure or
///   error wins over a skip. `status_details.message` comes from the `message`
///   attribute (or `type` when there is no message) and `trace` from the element
///   text. Surefire's `<flakyFailure>`/`<flakyError>` set `status_details.flaky`.
/// * `start` is the `timestamp` of the test case or of its nearest suite
///   (ISO 8601; without a zone it is UTC), `stop` is `start + time` (`time` in
///   seconds, fractional); both are `None` without a usable timestamp.
/// * Labels: `suite` (innermost named `<testsuite>`), `testClass` (class name) and
///   `framework=junit`. `title_path` lists the names of the enclosing suites.
///
/// Suites may nest. Fails on empty input, text that is not UTF-8, malformed XML
/// (with its line and column) or a root element other than `<testsuite>` or
/// `<testsuites>`.
pub fn parse_junit(bytes: &[u8], origin: &str) -> Result<Vec<TestResult>, ModelError> {
    let text = crate::json::text(bytes)?;
    let mut walker = Walker::new(text);
    let mut parser = Parser {
        origin,
        suites: Vec::new(),
        case: None,
        roles: Vec::new(),
        occurrences: HashMap::new(),
        results: Vec::new(),
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
    Ok(parser.results)
}

/// What an open element means to the parser, so its end tag can be handled.
enum Role {
    Suite,
    Case,
    /// The `<failure>`, `<error>` or `<skipped>` that decides the status.
    Outcome,
    Other,
}

struct Suite {
    name: String,
    /// `<testsuite>` rather than `<testsuites>`.
    is_testsuite: bool,
    timestamp: Option<i64>,
}

struct Case {
    name: String,
    classname: String,
    time: Option<f64>,
    timestamp: Option<i64>,
    outcome: Option<Outcome>,
    flaky: bool,
}

struct Outcome {
    status: &'static str,
    message: Option<String>,
    trace: String,
}

struct Parser<'o> {
    origin: &'o str,
    suites: Vec<Suite>,
    case: Option<Case>,
    roles: Vec<Role>,
    occurrences: HashMap<(String, String), usize>,
    results: Vec<TestResult>,
}

impl Parser<'_> {
    fn open(&mut self, name: &str, attrs: &[(String, String)]) {
        let role = match (&mut self.case, name) {
            (Some(case), "failure" | "error" | "skipped")
                if matches!(self.roles.last(), Some(Role::Case)) =>
            {
                let status = match name {
                    "failure" => "failed",
                    "error" => "broken",
                    _ => "skipped",
                };
                let decides = match &case.outcome {
                    None => true,
                    Some(current) => current.status == "skipped" && status != "skipped",
                };
                if decides {
                    let message = attr(attrs, "message")
                        .or_else(|| attr(attrs, "type"))
                        .filter(|m| !m.trim().is_empty())
                        .map(str::to_string);
                    case.outcome = Some(Outcome {
                        status,
                        message,
                        trace: String::new(),
                    });
                    Role::Outcome
                } else {
                    Role::Other
                }
            }
            (Some(case), "flakyFailure" | "flakyError") => {
                case.flaky = true;
                Role::Other
            }
            (Some(_), _) => Role::Other,
            (None, "testsuite" | "testsuites") => {
                self.suites.push(Suite {
                    name: attr(attrs, "name").unwrap_or_default().trim().to_string(),
                    is_testsuite: name == "testsuite",
                    timestamp: attr(attrs, "timestamp").and_then(parse_timestamp),
                });
                Role::Suite
            }
            (None, "testcase") => {
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
                });
                Role::Case
            }
            (None, _) => Role::Other,
        };
        self.roles.push(role);
    }

    fn text(&mut self, text: &str) {
        let capturing = self.roles.iter().any(|r| matches!(r, Role::Outcome));
        if let (
            true,
            Some(Case {
                outcome: Some(outcome),
                ..
            }),
        ) = (capturing, &mut self.case)
        {
            outcome.trace.push_str(text);
        }
    }

    fn close(&mut self) {
        match self.roles.pop() {
            Some(Role::Suite) => {
                self.suites.pop();
            }
            Some(Role::Case) => {
                if let Some(case) = self.case.take() {
                    let result = self.build(case);
                    self.results.push(result);
                }
            }
            Some(Role::Outcome | Role::Other) | None => {}
        }
    }

    fn build(&mut self, case: Case) -> TestResult {
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
        let occurrence = {
            let counter = self
                .occurrences
                .entry((case.classname.clone(), name.clone()))
                .or_insert(0);
            let index = *counter;
            *counter += 1;
            index
        };
        let start = case
            .timestamp
            .or_else(|| self.suites.iter().rev().find_map(|s| s.timestamp));
        let uuid = hash_parts(&[
            self.origin,
            &suite_name,
            &case.classname,
            &name,
            &occurrence.to_string(),
            &start.map(|s| s.to_string()).unwrap_or_default(),
        ]);
        let history_id = hex::encode(Sha256::digest(full_name.as_bytes()))[..32].to_string();

        let stop = start.zip(case.time).map(|(start, seconds)| {
            // `as` saturates, so absurd durations cannot overflow.
            start.saturating_add((seconds * 1000.0).round() as i64)
        });

        let status = case.outcome.as_ref().map_or("passed", |o| o.status);
        let status_details = match case.outcome {
            Some(outcome) => Some(StatusDetails {
                message: outcome.message,
                trace: Some(outcome.trace.trim().to_string()).filter(|t| !t.is_empty()),
                flaky: case.flaky,
                ..StatusDetails::default()
            }),
            None if case.flaky => Some(StatusDetails {
                flaky: true,
                ..StatusDetails::default()
            }),
            None => None,
        };

        let mut labels = Vec::new();
        if !suite_name.is_empty() {
            labels.push(label("suite", &suite_name));
        }
        if !case.classname.is_empty() {
            labels.push(label("testClass", &case.classname));
        }
        labels.push(label("framework", "junit"));

        TestResult {
            uuid,
            history_id: Some(history_id),
            full_name: Some(full_name),
            name,
            title_path: self
                .suites
                .iter()
                .filter(|s| s.is_testsuite && !s.name.is_empty())
                .map(|s| s.name.clone())
                .collect(),
            status: Some(status.to_string()),
            status_details,
            stage: Some("finished".to_string()),
            start,
            stop,
            labels,
            ..TestResult::default()
        }
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

/// Parses an ISO 8601 date-time into epoch milliseconds: `YYYY-MM-DDThh:mm[:ss[.fff]]`
/// (a space may replace the `T`), then `Z`, `±hh:mm`, `±hhmm`, `±hh` or nothing (UTC).
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let year = digits(0, 4)?;
    (b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-')).then_some(())?;
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    matches!(b.get(10), Some(b'T' | b't' | b' ')).then_some(())?;
    let hour = digits(11, 2)?;
    (b.get(13) == Some(&b':')).then_some(())?;
    let minute = digits(14, 2)?;
    let mut pos = 16;
    let mut second = 0;
    let mut millis = 0;
    if b.get(pos) == Some(&b':') {
        second = digits(pos + 1, 2)?;
        pos += 3;
        if matches!(b.get(pos), Some(b'.' | b',')) {
            pos += 1;
            let frac_len = b[pos..].iter().take_while(|d| d.is_ascii_digit()).count();
            if frac_len == 0 {
                return None;
            }
            let frac = &b[pos..pos + frac_len];
            millis = (0..3).fold(0, |n, i| {
                n * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'))
            });
            pos += frac_len;
        }
    }
    let offset_minutes = match &b[pos..] {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hours, minutes) = match rest {
                [h1, h2] => (zone_part(*h1, *h2)?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (zone_part(*h1, *h2)?, zone_part(*m1, *m2)?)
                }
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn zone_part(a: u8, b: u8) -> Option<i64> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        assert_eq!(r[3].status.as_deref(), Some("passed"));
        assert!(r[3].status_details.as_ref().unwrap().flaky);
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

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00"), Some(0));
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5"), Some(1_500));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.123456Z"), Some(123));
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00-0130"), Some(5_400_000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00+01"), Some(-3_600_000));
        assert_eq!(parse_timestamp("2000-02-29T12:30"), Some(951_827_400_000));
        assert_eq!(
            parse_timestamp("2024-03-01T10:00:00"),
            Some(1_709_287_200_000)
        );
        for bad in [
            "",
            "yesterday",
            "2023-02-29T00:00:00",
            "2024-13-01T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01",
            "2024-01-01T00:00:00.",
            "2024-01-01T00:00:00+1",
            "2024-01-01T00:00:00 UTC",
            "1710000000",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }
}
