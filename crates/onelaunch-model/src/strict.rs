//! The usual result file, read straight into its fields.
//!
//! [`crate::parse_result`] reads a document through a [`serde_json::Value`],
//! so that an error can name the field and the leniency rules live in one
//! place (`crate::allure`). That costs a tree of maps and a second copy of
//! every string, for every result of every upload. Nearly every file a
//! framework writes is plain: objects where objects belong, strings where
//! strings belong, whole-number timestamps, no `null` inside arrays. This
//! reader takes exactly those documents, decoding each field into its final
//! place in one pass, and gives up (`None`) on anything else, which then goes
//! through the full reader. It never accepts a document the full reader
//! refuses, and for a document it accepts it answers the same value: a
//! duplicate key keeps its last value as a JSON object does, unknown fields
//! are skipped, `null` is absent. Where the full reader is lenient (a number
//! where a string is expected, a fractional timestamp, a `null` element, a
//! key written with escapes) this one is not, and gives up instead.
//! `tests::strict_and_full_readers_agree` holds the two together.
//!
//! Objects are read only as JSON objects: serde's derived structs would also
//! take a JSON array as a struct, field by position, which the full reader
//! refuses.

use std::fmt;
use std::marker::PhantomData;

use onelaunch_api::CompactString;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::allure::{Attachment, Label, Link, Parameter, StatusDetails, StepResult, TestResult};

/// Reads `text` (already checked to be non-blank UTF-8 without a BOM) when
/// it is a plain result document; `None` sends it to the full reader.
pub(crate) fn test_result(text: &str) -> Option<TestResult> {
    let r: RawResult = serde_json::from_str(text).ok()?;
    let uuid = r.uuid.filter(|u| !u.trim().is_empty())?;
    Some(TestResult {
        uuid,
        history_id: r.history_id,
        test_case_id: r.test_case_id,
        full_name: r.full_name,
        name: r.name.unwrap_or_default(),
        title_path: r.title_path.unwrap_or_default(),
        description: r.description,
        description_html: r.description_html,
        status: r.status,
        status_details: r.status_details.map(RawDetails::into_details),
        stage: r.stage,
        start: r.start,
        stop: r.stop,
        steps: steps(r.steps),
        attachments: attachments(r.attachments),
        parameters: parameters(r.parameters),
        labels: r
            .labels
            .unwrap_or_default()
            .into_iter()
            .map(|l| Label {
                name: l.name.unwrap_or_default(),
                value: l.value.unwrap_or_default(),
            })
            .collect(),
        links: r
            .links
            .unwrap_or_default()
            .into_iter()
            .map(|l| Link {
                name: l.name,
                url: l.url.unwrap_or_default(),
                r#type: l.r#type,
            })
            .collect(),
        duration: None,
    })
}

fn steps(raw: Option<Vec<RawStep>>) -> Vec<StepResult> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|s| StepResult {
            name: s.name.unwrap_or_default(),
            status: s.status,
            status_details: s.status_details.map(RawDetails::into_details),
            stage: s.stage,
            description: s.description,
            steps: steps(s.steps),
            attachments: attachments(s.attachments),
            parameters: parameters(s.parameters),
            start: s.start,
            stop: s.stop,
        })
        .collect()
}

fn attachments(raw: Option<Vec<RawAttachment>>) -> Vec<Attachment> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|a| Attachment {
            name: a.name.unwrap_or_default(),
            source: a.source.unwrap_or_default(),
            r#type: a.r#type,
        })
        .collect()
}

fn parameters(raw: Option<Vec<RawParameter>>) -> Vec<Parameter> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|p| Parameter {
            name: p.name.unwrap_or_default(),
            value: p.value.unwrap_or_default(),
            excluded: p.excluded.unwrap_or(false),
            mode: p.mode,
        })
        .collect()
}

impl RawDetails {
    fn into_details(self) -> StatusDetails {
        StatusDetails {
            message: self.message,
            trace: self.trace,
            known: self.known.unwrap_or(false),
            muted: self.muted.unwrap_or(false),
            flaky: self.flaky.unwrap_or(false),
        }
    }
}

/// A struct of optional fields read from a JSON object only: each listed key
/// sets its field (a later duplicate replaces it, `null` leaves it `None`),
/// any other key is skipped. A key that cannot be borrowed from the text (it
/// holds an escape) fails the read, which sends the document to the full
/// reader.
macro_rules! object {
    ($name:ident { $($field:ident: $ty:ty = $key:literal),* $(,)? }) => {
        #[derive(Default)]
        struct $name {
            $($field: Option<$ty>,)*
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map(ObjectVisitor::<$name>(PhantomData))
            }
        }

        impl<'de> Visitor<'de> for ObjectVisitor<$name> {
            type Value = $name;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                let mut out = $name::default();
                while let Some(key) = map.next_key::<&'de str>()? {
                    match key {
                        $($key => out.$field = map.next_value()?,)*
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
    };
}

struct ObjectVisitor<T>(PhantomData<T>);

object!(RawResult {
    uuid: String = "uuid",
    history_id: String = "historyId",
    test_case_id: String = "testCaseId",
    full_name: String = "fullName",
    name: String = "name",
    title_path: Vec<String> = "titlePath",
    description: String = "description",
    description_html: String = "descriptionHtml",
    status: CompactString = "status",
    status_details: RawDetails = "statusDetails",
    stage: String = "stage",
    start: i64 = "start",
    stop: i64 = "stop",
    steps: Vec<RawStep> = "steps",
    attachments: Vec<RawAttachment> = "attachments",
    parameters: Vec<RawParameter> = "parameters",
    labels: Vec<RawLabel> = "labels",
    links: Vec<RawLink> = "links",
});

object!(RawDetails {
    message: String = "message",
    trace: String = "trace",
    known: bool = "known",
    muted: bool = "muted",
    flaky: bool = "flaky",
});

object!(RawStep {
    name: String = "name",
    status: CompactString = "status",
    status_details: RawDetails = "statusDetails",
    stage: String = "stage",
    description: String = "description",
    steps: Vec<RawStep> = "steps",
    attachments: Vec<RawAttachment> = "attachments",
    parameters: Vec<RawParameter> = "parameters",
    start: i64 = "start",
    stop: i64 = "stop",
});

object!(RawAttachment {
    name: String = "name",
    source: String = "source",
    r#type: String = "type",
});

object!(RawParameter {
    name: CompactString = "name",
    value: CompactString = "value",
    excluded: bool = "excluded",
    mode: String = "mode",
});

object!(RawLabel {
    name: CompactString = "name",
    value: CompactString = "value",
});

object!(RawLink {
    name: String = "name",
    url: String = "url",
    r#type: String = "type",
});

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::{json, Value};

    use super::*;
    use crate::allure::read_test_result;
    use crate::json::{parse_text, Path};

    /// The full reader's answer: the value, or `None` when it refuses.
    fn full(text: &str) -> Option<TestResult> {
        read_test_result(&parse_text(text).ok()?, &Path::Root).ok()
    }

    /// Whatever the strict reader accepts, the full reader accepts the same way.
    fn agree(text: &str) -> Option<TestResult> {
        let strict = test_result(text);
        if let Some(r) = &strict {
            assert_eq!(Some(r), full(text).as_ref(), "{text}");
        }
        strict
    }

    fn real_results() -> Vec<(PathBuf, String)> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let dirs = [
            "frameworks/allure-pytest/results",
            "frameworks/allure-mocha/allure-results",
            "allure-pytest",
        ];
        let mut files = Vec::new();
        for dir in dirs {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.to_string_lossy().ends_with("-result.json") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    files.push((path, text));
                }
            }
        }
        assert!(files.len() >= 30, "{} result files", files.len());
        files
    }

    #[test]
    fn real_framework_results_take_the_strict_path_and_read_the_same() {
        for (path, text) in real_results() {
            let strict = agree(&text);
            assert!(strict.is_some(), "{}: not read strictly", path.display());
        }
    }

    /// Each field of a real result set, in turn, to every kind of JSON value
    /// (and arrays of them): the strict reader accepts only what the full
    /// reader reads the same, and gives up on every document the full reader
    /// refuses.
    #[test]
    fn strict_and_full_readers_agree() {
        let kinds = [
            json!(null),
            json!(true),
            json!(7),
            json!(-3),
            json!(2.6),
            json!(1e300),
            json!(18_446_744_073_709_551_615u64),
            json!(""),
            json!("  "),
            json!("text"),
            json!({}),
            json!({"name": "n", "value": "v", "source": "s", "url": "u"}),
            json!([]),
            json!([null]),
            json!(["a", "b"]),
            json!([{"name": "n"}]),
            json!([{"name": 5}]),
            json!([["n", "v"]]),
        ];
        let (mut strict, mut total) = (0, 0);
        for (_, text) in real_results() {
            let base: Value = serde_json::from_str(&text).unwrap();
            let mut docs = Vec::new();
            collect_variants(&base, &kinds, &mut |v| docs.push(v));
            for doc in docs {
                let text = doc.to_string();
                total += 1;
                if agree(&text).is_some() {
                    strict += 1;
                }
                assert!(full(&text).is_some() || test_result(&text).is_none());
            }
        }
        // Both outcomes happen, so the comparison compared something.
        assert!(
            strict > 100 && strict < total,
            "{strict} of {total} read strictly"
        );
    }

    /// Calls `each` with `doc` where one value at a time (at any depth) is
    /// replaced by each of `kinds`.
    fn collect_variants(doc: &Value, kinds: &[Value], each: &mut dyn FnMut(Value)) {
        let mut paths = Vec::new();
        value_paths(doc, &mut Vec::new(), &mut paths);
        for path in paths {
            for kind in kinds {
                let mut variant = doc.clone();
                *pointer(&mut variant, &path) = kind.clone();
                each(variant);
            }
        }
    }

    enum Step {
        Key(String),
        Index(usize),
    }

    fn value_paths(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        let copy = |at: &Vec<Step>| {
            at.iter()
                .map(|s| match s {
                    Step::Key(k) => Step::Key(k.clone()),
                    Step::Index(i) => Step::Index(*i),
                })
                .collect::<Vec<_>>()
        };
        out.push(copy(at));
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    at.push(Step::Key(k.clone()));
                    value_paths(child, at, out);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    at.push(Step::Index(i));
                    value_paths(child, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }

    fn pointer<'v>(v: &'v mut Value, path: &[Step]) -> &'v mut Value {
        path.iter().fold(v, |v, step| match step {
            Step::Key(k) => &mut v[k.as_str()],
            Step::Index(i) => &mut v[*i],
        })
    }

    #[test]
    fn what_only_the_full_reader_reads_is_given_up() {
        let lenient = [
            r#"{"uuid":"u","labels":[{"name":"n","value":5}]}"#,
            r#"{"uuid":"u","start":1.5e12}"#,
            r#"{"uuid":"u","steps":[null,{"name":"s"}]}"#,
            r#"{"uuid":"u","na\u006de":"x"}"#,
        ];
        for text in lenient {
            assert!(test_result(text).is_none(), "{text}");
            assert!(full(text).is_some(), "{text}");
        }
        let refused = [
            r#"["u"]"#,
            r#"{"uuid":"u","statusDetails":["m","t"]}"#,
            r#"{"uuid":"u","labels":[["suite","p"]]}"#,
            r#"{"uuid":"  "}"#,
            r#"{"name":"no uuid"}"#,
            r#"{"uuid":"u"} x"#,
        ];
        for text in refused {
            assert!(test_result(text).is_none(), "{text}");
            assert!(full(text).is_none(), "{text}");
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_in_the_full_reader() {
        for text in [
            r#"{"uuid":"u","name":"a","name":"b"}"#,
            r#"{"uuid":"u","name":"a","name":null}"#,
            r#"{"uuid":"x","uuid":"u","start":1,"start":2}"#,
        ] {
            let strict = agree(text).expect(text);
            assert_eq!(strict.uuid, "u");
        }
    }

    #[test]
    fn nesting_past_the_limit_is_given_up() {
        let mut text = String::from(r#"{"uuid":"u","steps":"#);
        for _ in 0..200 {
            text.push_str(r#"[{"steps":"#);
        }
        text.push_str("[]");
        for _ in 0..200 {
            text.push_str("}]");
        }
        text.push('}');
        assert!(test_result(&text).is_none());
        assert!(full(&text).is_none());
    }
}
