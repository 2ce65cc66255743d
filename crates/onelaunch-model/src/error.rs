//! The error type shared by every parser of this crate.

/// Why a file could not be read as what it claims to be.
///
/// Messages say what was expected, so they can be shown to users as they are
/// (callers add the file name).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// The file holds no bytes, or only whitespace.
    #[error("empty file")]
    Empty,

    /// The bytes are not valid UTF-8.
    #[error("not UTF-8 text: invalid byte sequence at offset {offset}")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },

    /// The text is not well-formed JSON (syntax error, truncation, nesting too deep).
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },

    /// The top-level JSON value has the wrong kind.
    #[error("expected a JSON {expected}, found {found}")]
    WrongRoot {
        /// `object` or `array`.
        expected: &'static str,
        /// What was found, with its article (`an array`, `a string`, …).
        found: &'static str,
    },

    /// A required field is absent or `null`.
    #[error("missing field `{field}`")]
    MissingField {
        /// Path of the field, e.g. `uuid` or `steps[2].name`.
        field: String,
    },

    /// A required field is present but blank.
    #[error("field `{field}` must not be empty")]
    EmptyField { field: String },

    /// A field holds a value of the wrong JSON type.
    #[error("invalid type for field `{field}`: expected {expected}, found {found}")]
    InvalidType {
        /// Path of the field, e.g. `start` or `steps[0].attachments[1].source`.
        field: String,
        /// What the field must hold, e.g. `an integer (epoch ms)`.
        expected: &'static str,
        /// What it holds, e.g. `a string`.
        found: &'static str,
    },

    /// The text is not well-formed XML.
    #[error("invalid XML at line {line}, column {column}: {message}")]
    Xml {
        line: usize,
        column: usize,
        message: String,
    },

    /// Well-formed XML whose root element is not a JUnit report.
    #[error(
        "not a JUnit XML report: {}, expected <testsuite> or <testsuites>",
        describe_root(.root)
    )]
    NotJUnit {
        /// Name of the root element; `None` when the document has none.
        root: Option<String>,
    },

    /// Well-formed XML whose root element is not `<environment>`.
    #[error("not an Allure environment file: {}, expected <environment>", describe_root(.root))]
    NotEnvironment {
        /// Name of the root element; `None` when the document has none.
        root: Option<String>,
    },

    /// A test plan whose content does not match the test plan format.
    #[error("invalid test plan: {message}")]
    TestPlan { message: String },
}

fn describe_root(root: &Option<String>) -> String {
    match root {
        Some(name) => format!("root element is <{name}>"),
        None => "the document has no root element".to_string(),
    }
}
