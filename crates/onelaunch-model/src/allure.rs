//! Serde model of the Allure 2 results directory format (as written by every
//! Allure adapter and read by Allure 2 and Allure 3).
//!
//! Reading is lenient in the ways real adapters differ: unknown fields are ignored,
//! `null` means absent, missing arrays are empty and `null` array elements are
//! skipped. Values of the wrong JSON type are refused with an error naming the field,
//! with two exceptions: timestamps accept any finite number (rounded to whole
//! milliseconds), and parameter and label values accept numbers and booleans.
//!
//! Serialisation writes the same camelCase layout, so a value read from a file can be
//! written back as a valid Allure 2 file.

use onelaunch_api::CompactString;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::json::{Obj, Path};
use crate::ModelError;

/// One `*-result.json` file: the outcome of one test execution.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// Identifier of this execution; required and never empty.
    pub uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_case_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub title_path: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description_html: Option<String>,
    /// `passed`, `failed`, `broken`, `skipped`, or anything else (read as unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<CompactString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_details: Option<StatusDetails>,
    /// `scheduled`, `running`, `finished`, `pending` or `interrupted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Epoch milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// Epoch milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<i64>,
    pub steps: Vec<StepResult>,
    pub attachments: Vec<Attachment>,
    pub parameters: Vec<Parameter>,
    pub labels: Vec<Label>,
    pub links: Vec<Link>,
    /// Milliseconds the test took, when known without `start` and `stop` (a JUnit
    /// `time` without a timestamp). Not part of the Allure format: never read from
    /// or written to JSON.
    #[serde(skip)]
    pub duration: Option<i64>,
}

/// Failure details of a result, step or fixture.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    pub known: bool,
    pub muted: bool,
    pub flaky: bool,
}

/// A step of a test, or a fixture of a container (Allure's "ExecutableItem").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<CompactString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_details: Option<StatusDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub steps: Vec<StepResult>,
    pub attachments: Vec<Attachment>,
    pub parameters: Vec<Parameter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<i64>,
}

/// A reference to an attachment file stored next to the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attachment {
    pub name: String,
    /// File name inside the results directory (see [`crate::is_safe_source`]).
    pub source: String,
    /// MIME type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// A test or step parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Parameter {
    pub name: CompactString,
    pub value: CompactString,
    /// Excluded from the history id.
    pub excluded: bool,
    /// `default`, `hidden` or `masked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// A label (`suite`, `owner`, `ALLURE_ID`, `host`, `thread`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Label {
    pub name: CompactString,
    pub value: CompactString,
}

/// A link (issue tracker, TMS, any URL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Link {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub url: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// One `*-container.json` file: fixtures wrapped around its children.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Container {
    /// Identifier of the container; required and never empty.
    pub uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Uuids of test results or of other containers.
    pub children: Vec<String>,
    pub befores: Vec<StepResult>,
    pub afters: Vec<StepResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<i64>,
}

/// `executor.json`: the CI build that produced the results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Executor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Build number; also accepted when written as a string of digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_order: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
}

/// One entry of `categories.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_regex: Option<String>,
    pub matched_statuses: Vec<String>,
    pub flaky: bool,
}

/// One `*-globals.json` file (Allure 3 adapters): errors and attachments that
/// belong to no test, e.g. the error of a failing `beforeEach` hook (allure-mocha
/// writes `"\"before each\" hook: connect failed: …"`) or an attachment added
/// with `allure.globalAttachment(…)`. Each file usually holds one entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Globals {
    pub errors: Vec<GlobalError>,
    pub attachments: Vec<GlobalAttachment>,
}

/// An error outside any test (`errors[]` of a globals file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GlobalError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Epoch milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// The Allure 3 environment the error belongs to, when the adapter says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// An attachment outside any test (`attachments[]` of a globals file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GlobalAttachment {
    pub name: String,
    /// File name inside the results directory (see [`crate::is_safe_source`]).
    pub source: String,
    /// MIME type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// Epoch milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

// ---------------------------------------------------------------- readers

pub(crate) fn read_globals(v: &Value, path: &Path<'_>) -> Result<Globals, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(Globals {
        errors: o.list("errors", read_global_error)?,
        attachments: o.list("attachments", read_global_attachment)?,
    })
}

fn read_global_error(v: &Value, path: &Path<'_>) -> Result<GlobalError, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(GlobalError {
        message: o.opt_string("message")?,
        trace: o.opt_string("trace")?,
        timestamp: o.millis("timestamp")?,
        environment: o.opt_string("environment")?,
    })
}

fn read_global_attachment(v: &Value, path: &Path<'_>) -> Result<GlobalAttachment, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(GlobalAttachment {
        name: o.string("name")?,
        source: o.required_string("source")?,
        r#type: o.opt_string("type")?,
        timestamp: o.millis("timestamp")?,
        environment: o.opt_string("environment")?,
    })
}

pub(crate) fn read_test_result(v: &Value, path: &Path<'_>) -> Result<TestResult, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(TestResult {
        uuid: o.required_string("uuid")?,
        history_id: o.opt_string("historyId")?,
        test_case_id: o.opt_string("testCaseId")?,
        full_name: o.opt_string("fullName")?,
        name: o.string("name")?,
        title_path: o.strings("titlePath")?,
        description: o.opt_string("description")?,
        description_html: o.opt_string("descriptionHtml")?,
        status: o.opt_string("status")?.map(Into::into),
        status_details: o.object("statusDetails", status_details)?,
        stage: o.opt_string("stage")?,
        start: o.millis("start")?,
        stop: o.millis("stop")?,
        steps: o.list("steps", read_step)?,
        attachments: o.list("attachments", read_attachment)?,
        parameters: o.list("parameters", read_parameter)?,
        labels: o.list("labels", read_label)?,
        links: o.list("links", read_link)?,
        duration: None,
    })
}

fn status_details(o: Obj<'_, '_>) -> Result<StatusDetails, ModelError> {
    Ok(StatusDetails {
        message: o.opt_string("message")?,
        trace: o.opt_string("trace")?,
        known: o.flag("known")?,
        muted: o.flag("muted")?,
        flaky: o.flag("flaky")?,
    })
}

fn read_status_details(v: &Value, path: &Path<'_>) -> Result<StatusDetails, ModelError> {
    status_details(Obj::new(v, path)?)
}

pub(crate) fn read_step(v: &Value, path: &Path<'_>) -> Result<StepResult, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(StepResult {
        name: o.string("name")?,
        status: o.opt_string("status")?.map(Into::into),
        status_details: o.object("statusDetails", status_details)?,
        stage: o.opt_string("stage")?,
        description: o.opt_string("description")?,
        steps: o.list("steps", read_step)?,
        attachments: o.list("attachments", read_attachment)?,
        parameters: o.list("parameters", read_parameter)?,
        start: o.millis("start")?,
        stop: o.millis("stop")?,
    })
}

fn read_attachment(v: &Value, path: &Path<'_>) -> Result<Attachment, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(Attachment {
        name: o.string("name")?,
        source: o.string("source")?,
        r#type: o.opt_string("type")?,
    })
}

fn read_parameter(v: &Value, path: &Path<'_>) -> Result<Parameter, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(Parameter {
        name: o.string("name")?.into(),
        value: o.scalar_string("value")?.into(),
        excluded: o.flag("excluded")?,
        mode: o.opt_string("mode")?,
    })
}

fn read_label(v: &Value, path: &Path<'_>) -> Result<Label, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(Label {
        name: o.string("name")?.into(),
        value: o.scalar_string("value")?.into(),
    })
}

fn read_link(v: &Value, path: &Path<'_>) -> Result<Link, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(Link {
        name: o.opt_string("name")?,
        url: o.string("url")?,
        r#type: o.opt_string("type")?,
    })
}

pub(crate) fn read_container(v: &Value, path: &Path<'_>) -> Result<Container, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(Container {
        uuid: o.required_string("uuid")?,
        name: o.opt_string("name")?,
        children: o.strings("children")?,
        befores: o.list("befores", read_step)?,
        afters: o.list("afters", read_step)?,
        start: o.millis("start")?,
        stop: o.millis("stop")?,
    })
}

pub(crate) fn read_executor(v: &Value, path: &Path<'_>) -> Result<Executor, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(Executor {
        name: o.opt_string("name")?,
        r#type: o.opt_string("type")?,
        url: o.opt_string("url")?,
        build_order: o.lenient_integer("buildOrder")?,
        build_name: o.opt_string("buildName")?,
        build_url: o.opt_string("buildUrl")?,
        report_name: o.opt_string("reportName")?,
        report_url: o.opt_string("reportUrl")?,
    })
}

pub(crate) fn read_category(v: &Value, path: &Path<'_>) -> Result<Category, ModelError> {
    let o = Obj::new(v, path)?;
    Ok(Category {
        name: o.string("name")?,
        description: o.opt_string("description")?,
        message_regex: o.opt_string("messageRegex")?,
        trace_regex: o.opt_string("traceRegex")?,
        matched_statuses: o.strings("matchedStatuses")?,
        flaky: o.flag("flaky")?,
    })
}

/// `Deserialize` goes through the same readers as the `parse_*` functions, so both
/// accept and refuse exactly the same documents.
macro_rules! deserialize_with_reader {
    ($($ty:ty => $read:path),* $(,)?) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = Value::deserialize(deserializer)?;
                $read(&value, &Path::Root).map_err(serde::de::Error::custom)
            }
        }
    )*};
}

deserialize_with_reader! {
    TestResult => read_test_result,
    StatusDetails => read_status_details,
    StepResult => read_step,
    Attachment => read_attachment,
    Parameter => read_parameter,
    Label => read_label,
    Link => read_link,
    Container => read_container,
    Executor => read_executor,
    Category => read_category,
    Globals => read_globals,
}
