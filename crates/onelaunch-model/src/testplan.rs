//! `testplan.json`: the list of tests a run should execute, read by Allure adapters
//! from the file named by `ALLURE_TESTPLAN_PATH`.
//!
//! Format: `{"version":"1.0","tests":[{"id":"<Allure ID>","selector":"<full name>"}]}`.
//! Adapters run a test when its Allure ID equals some `id` or its full name equals
//! some `selector`; an empty `tests` list means "run everything".

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::json::kind;
use crate::ModelError;

/// The version adapters require.
pub const VERSION: &str = "1.0";

/// A whole test plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestPlan {
    /// `"1.0"`; absent reads as `""`.
    #[serde(default, deserialize_with = "version")]
    pub version: String,
    /// Absent or `null` reads as empty; `null` entries are skipped.
    #[serde(default, deserialize_with = "tests")]
    pub tests: Vec<TestPlanEntry>,
}

/// One selected test.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TestPlanEntry {
    /// Allure ID (the `ALLURE_ID` label); integers are read as their decimal string.
    #[serde(
        default,
        deserialize_with = "id",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// Full name of the test.
    #[serde(
        default,
        deserialize_with = "selector",
        skip_serializing_if = "Option::is_none"
    )]
    pub selector: Option<String>,
}

impl TestPlan {
    /// A version `1.0` plan of `entries`, without repeated entries (first kept).
    pub fn new(entries: Vec<TestPlanEntry>) -> Self {
        let mut tests: Vec<TestPlanEntry> = Vec::with_capacity(entries.len());
        for entry in entries {
            if !tests.contains(&entry) {
                tests.push(entry);
            }
        }
        TestPlan {
            version: VERSION.to_string(),
            tests,
        }
    }

    /// Compact JSON, as adapters read it.
    pub fn to_json(&self) -> String {
        // Only strings, options and vectors: serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Parses `testplan.json`. Fails on empty input, text that is not UTF-8, invalid
/// JSON, a top level other than an object, or fields of the wrong type.
pub fn parse(bytes: &[u8]) -> Result<TestPlan, ModelError> {
    let value = crate::json::parse(bytes)?;
    if !value.is_object() {
        return Err(ModelError::WrongRoot {
            expected: "object",
            found: kind(&value),
        });
    }
    TestPlan::deserialize(value).map_err(|e| ModelError::TestPlan {
        message: e.to_string(),
    })
}

fn version<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(n @ Value::Number(_)) => Ok(n.to_string()),
        Some(other) => Err(D::Error::custom(format!(
            "`version` must be a string, found {}",
            kind(&other)
        ))),
    }
}

fn tests<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TestPlanEntry>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .filter(|(_, item)| !item.is_null())
            .map(|(i, item)| {
                if !item.is_object() {
                    return Err(D::Error::custom(format!(
                        "`tests[{i}]` must be an object, found {}",
                        kind(&item)
                    )));
                }
                TestPlanEntry::deserialize(item)
                    .map_err(|e| D::Error::custom(format!("`tests[{i}]`: {e}")))
            })
            .collect(),
        Some(other) => Err(D::Error::custom(format!(
            "`tests` must be an array, found {}",
            kind(&other)
        ))),
    }
}

fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s).filter(|s| !s.trim().is_empty())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(other) => Err(D::Error::custom(format!(
            "`id` must be a string or an integer, found {}",
            kind(&other)
        ))),
    }
}

fn selector<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s).filter(|s| !s.is_empty())),
        Some(other) => Err(D::Error::custom(format!(
            "`selector` must be a string, found {}",
            kind(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: Option<&str>, selector: Option<&str>) -> TestPlanEntry {
        TestPlanEntry {
            id: id.map(str::to_string),
            selector: selector.map(str::to_string),
        }
    }

    #[test]
    fn new_sets_version_and_drops_repeats() {
        let plan = TestPlan::new(vec![
            entry(Some("1"), Some("a.b")),
            entry(Some("1"), Some("a.b")),
            entry(None, Some("c.d")),
        ]);
        assert_eq!(plan.version, "1.0");
        assert_eq!(plan.tests.len(), 2);
        assert_eq!(
            plan.to_json(),
            r#"{"version":"1.0","tests":[{"id":"1","selector":"a.b"},{"selector":"c.d"}]}"#
        );
    }

    #[test]
    fn round_trip() {
        let plan = TestPlan::new(vec![entry(Some("42"), None), entry(None, Some("x"))]);
        assert_eq!(parse(plan.to_json().as_bytes()).unwrap(), plan);
    }

    #[test]
    fn lenient_reading() {
        let plan = parse(
            br#"{"version":"1.0","tests":[{"id":17,"selector":null},null,{"selector":"s","extra":true}],"x":1}"#,
        )
        .unwrap();
        assert_eq!(
            plan.tests,
            vec![entry(Some("17"), None), entry(None, Some("s"))]
        );
        let empty = parse(br#"{"tests":null}"#).unwrap();
        assert_eq!(empty.version, "");
        assert!(empty.tests.is_empty());
        // The derived Deserialize follows the same rules.
        let direct: TestPlan =
            serde_json::from_str(r#"{"version":"1.0","tests":[{"id":5}]}"#).unwrap();
        assert_eq!(direct.tests, vec![entry(Some("5"), None)]);
    }

    #[test]
    fn errors() {
        assert_eq!(parse(b"").unwrap_err(), ModelError::Empty);
        assert!(matches!(
            parse(b"\xFE\xFF").unwrap_err(),
            ModelError::NotUtf8 { offset: 0 }
        ));
        assert!(matches!(
            parse(br#"{"version":"1.0","tests":["#).unwrap_err(),
            ModelError::Json { .. }
        ));
        assert_eq!(
            parse(b"[]").unwrap_err().to_string(),
            "expected a JSON object, found an array"
        );
        assert_eq!(
            parse(br#"{"tests":{}}"#).unwrap_err().to_string(),
            "invalid test plan: `tests` must be an array, found an object"
        );
        assert_eq!(
            parse(br#"{"tests":[{"id":true}]}"#)
                .unwrap_err()
                .to_string(),
            "invalid test plan: `tests[0]`: `id` must be a string or an integer, found a boolean"
        );
        assert_eq!(
            parse(br#"{"tests":["a"]}"#).unwrap_err().to_string(),
            "invalid test plan: `tests[0]` must be an object, found a string"
        );
        assert_eq!(
            parse(br#"{"version":[],"tests":[]}"#)
                .unwrap_err()
                .to_string(),
            "invalid test plan: `version` must be a string, found an array"
        );
    }
}
