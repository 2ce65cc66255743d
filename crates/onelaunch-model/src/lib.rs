//! The Allure results model of onelaunch: bytes in, values out.
//!
//! Test frameworks write their outcomes into an Allure results directory
//! (`*-result.json`, `*-container.json`, attachment files, `environment.properties`,
//! `executor.json`, `categories.json`, …) or as JUnit XML reports. The CLI reads
//! those files and uploads them; the server accepts the same files when they are
//! uploaded raw. Both use this crate to
//!
//! * recognise what a file is ([`classify`]),
//! * parse it strictly enough to report a useful error and leniently enough to accept
//!   what real adapters write ([`parse_result`], [`parse_container`],
//!   [`parse_globals`], [`parse_environment_properties`], [`parse_environment_xml`], [`parse_executor`],
//!   [`parse_categories`], [`parse_junit_report`], [`testplan::parse`]),
//! * convert results and fixtures into the TestOps upload DTOs of `onelaunch-api`
//!   ([`to_upload`], [`fixtures_by_result`], [`fixture_to_upload`]),
//! * list the attachment files they reference and check that a referenced name stays
//!   inside the results directory ([`attachment_sources`],
//!   [`fixture_attachment_sources`], [`is_safe_source`]).
//!
//! The crate does no I/O. JSON is parsed with serde_json's recursion limit (128
//! levels), so hostile nesting is refused with an error rather than exhausting the
//! stack.

pub mod allure;
mod convert;
mod error;
mod json;
mod junit;
mod properties;
mod strict;
pub mod testplan;
mod timestamp;
mod xml;

pub use convert::{
    attachment_sources, fixture_attachment_sources, fixture_to_upload, fixtures_by_result,
    into_upload, to_upload,
};
pub use error::ModelError;
pub use junit::{parse_junit, parse_junit_report, GeneratedAttachment, JUnitReport};
pub use properties::parse_environment_properties;
pub use xml::parse_environment_xml;

use json::Path;

/// What a file in a results directory is, judged by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `*-result.json`
    Result,
    /// `*-container.json`
    Container,
    /// `environment.properties`
    Environment,
    /// `environment.xml`
    EnvironmentXml,
    /// `executor.json`
    Executor,
    /// `categories.json`
    Categories,
    /// `*-globals.json` (Allure 3)
    Globals,
    /// Any other `*.xml`, except attachments (`*-attachment.xml`).
    JUnit,
    /// Attachments and everything else.
    Other,
}

/// Classifies a file by its name. Only the last path component is looked at, so
/// both `x-result.json` and `results/x-result.json` are results.
pub fn classify(file_name: &str) -> FileKind {
    let name = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    match name {
        "environment.properties" => return FileKind::Environment,
        "environment.xml" => return FileKind::EnvironmentXml,
        "executor.json" => return FileKind::Executor,
        "categories.json" => return FileKind::Categories,
        _ => {}
    }
    if name.ends_with("-result.json") {
        FileKind::Result
    } else if name.ends_with("-container.json") {
        FileKind::Container
    } else if name.ends_with("-globals.json") {
        FileKind::Globals
    } else if let Some(stem) = strip_suffix_ignore_case(name, ".xml") {
        if stem.is_empty() || stem.ends_with("-attachment") {
            FileKind::Other
        } else {
            FileKind::JUnit
        }
    } else {
        FileKind::Other
    }
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(cut) && s[cut..].eq_ignore_ascii_case(suffix)).then(|| &s[..cut])
}

/// Parses a `*-result.json` file.
///
/// Fails on empty input, text that is not UTF-8, invalid or truncated JSON, nesting
/// deeper than 128 levels, a top level other than an object, a missing or blank
/// `uuid`, and fields of the wrong type; the error names the field:
///
/// ```text
/// invalid type for field `steps[0].start`: expected an integer (epoch ms), found a string
/// ```
///
/// See [`allure`] for the leniency rules.
pub fn parse_result(bytes: &[u8]) -> Result<allure::TestResult, ModelError> {
    let text = json::text(bytes)?;
    // Plain documents (nearly all) in one pass; the rest, and every error,
    // through the reader that names fields (see `strict`).
    if let Some(result) = strict::test_result(text) {
        return Ok(result);
    }
    allure::read_test_result(&json::parse_text(text)?, &Path::Root)
}

/// Parses a `*-container.json` file; same rules as [`parse_result`] (`uuid` is
/// required).
pub fn parse_container(bytes: &[u8]) -> Result<allure::Container, ModelError> {
    allure::read_container(&json::parse(bytes)?, &Path::Root)
}

/// Parses a `*-globals.json` file (Allure 3): `errors` (`message`, `trace`,
/// `timestamp`) and `attachments` (`name`, `source`, `type`, `timestamp`) that
/// belong to no test. Same rules as [`parse_result`]; both arrays are optional,
/// an attachment needs a non-empty `source`.
pub fn parse_globals(bytes: &[u8]) -> Result<allure::Globals, ModelError> {
    allure::read_globals(&json::parse(bytes)?, &Path::Root)
}

/// Parses `executor.json` (a JSON object; every field optional).
pub fn parse_executor(bytes: &[u8]) -> Result<allure::Executor, ModelError> {
    allure::read_executor(&json::parse(bytes)?, &Path::Root)
}

/// Parses `categories.json` (a JSON array of category objects; `null` items are
/// skipped).
pub fn parse_categories(bytes: &[u8]) -> Result<Vec<allure::Category>, ModelError> {
    json::root_list(&json::parse(bytes)?, allure::read_category)
}

/// Whether an attachment `source` is a plain file name that cannot point outside
/// the results directory.
///
/// Refused: empty names, `.` and `..`, anything containing a path separator (`/` or
/// `\`), a colon (drive prefixes such as `C:` and Windows alternate data streams), NUL
/// or any other control character, and Windows device names (`CON`, `NUL`, `COM1`,
/// …, with or without an extension).
pub fn is_safe_source(source: &str) -> bool {
    if source.is_empty() || source == "." || source == ".." {
        return false;
    }
    if source
        .chars()
        .any(|c| c == '/' || c == '\\' || c == ':' || c.is_control())
    {
        return false;
    }
    let stem = source.split('.').next().unwrap_or(source).trim_end();
    !is_windows_device(stem)
}

fn is_windows_device(stem: &str) -> bool {
    const DEVICES: [&str; 6] = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"];
    if DEVICES.iter().any(|d| stem.eq_ignore_ascii_case(d)) {
        return true;
    }
    let upper = stem.to_ascii_uppercase();
    ["COM", "LPT"].iter().any(|prefix| {
        upper.strip_prefix(prefix).is_some_and(|rest| {
            matches!(
                rest,
                "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"
            )
        })
    })
}
