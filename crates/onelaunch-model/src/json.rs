//! Decoding of input bytes and a small path-aware reader over `serde_json::Value`.
//!
//! Documents are first parsed into a [`Value`] (which keeps serde_json's recursion
//! limit of 128 levels, so hostile nesting is refused instead of overflowing the
//! stack), then read field by field. Reading by hand instead of deriving
//! `Deserialize` lets errors name the offending field (`steps[0].start`) and say what
//! was expected, and keeps the leniency rules in one place: unknown fields are
//! ignored and `null` means absent everywhere.

use std::fmt;

use serde_json::{Map, Value};

use crate::ModelError;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Checks that `bytes` hold non-blank UTF-8 text and returns it without a leading BOM.
pub(crate) fn text(bytes: &[u8]) -> Result<&str, ModelError> {
    let (bytes, skipped) = match bytes.strip_prefix(UTF8_BOM) {
        Some(rest) => (rest, UTF8_BOM.len()),
        None => (bytes, 0),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ModelError::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ModelError::NotUtf8 {
        offset: skipped + e.valid_up_to(),
    })?;
    if text.trim().is_empty() {
        return Err(ModelError::Empty);
    }
    Ok(text)
}

/// Parses bytes into a JSON value, mapping every failure to a [`ModelError`].
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, ModelError> {
    parse_text(text(bytes)?)
}

/// Parses text already checked by [`text`] into a JSON value.
pub(crate) fn parse_text(text: &str) -> Result<Value, ModelError> {
    serde_json::from_str(text).map_err(syntax_error)
}

/// Converts a serde_json error into [`ModelError::Json`] with a readable message.
pub(crate) fn syntax_error(e: serde_json::Error) -> ModelError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    let message = if message == "recursion limit exceeded" {
        "nesting too deep (more than 128 levels)".to_string()
    } else if let Some(rest) = message.strip_prefix("EOF while parsing") {
        format!("unexpected end of input while parsing{rest}")
    } else {
        message.to_string()
    };
    ModelError::Json {
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// Where a value sits in a document, printed as `steps[0].attachments[2].source`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// The JSON type of a value, with its article, for error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid(path: &Path<'_>, expected: &'static str, found: &Value) -> ModelError {
    match path {
        Path::Root => ModelError::WrongRoot {
            expected: expected
                .strip_prefix("an ")
                .or_else(|| expected.strip_prefix("a "))
                .unwrap_or(expected),
            found: kind(found),
        },
        _ => ModelError::InvalidType {
            field: path.to_string(),
            expected,
            found: kind(found),
        },
    }
}

/// Reads an integer, accepting any finite number (rounded to the nearest integer).
pub(crate) fn integer(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    // `i64::MAX as f64` rounds up to 2^63, which is itself out of range.
    let rounded = f.round();
    (rounded.is_finite() && rounded >= i64::MIN as f64 && rounded < i64::MAX as f64)
        .then_some(rounded as i64)
}

/// A JSON object being read, together with its position in the document.
pub(crate) struct Obj<'v, 'p> {
    map: &'v Map<String, Value>,
    path: &'p Path<'p>,
}

impl<'v, 'p> Obj<'v, 'p> {
    /// Wraps `value`, failing unless it is an object.
    pub(crate) fn new(value: &'v Value, path: &'p Path<'p>) -> Result<Self, ModelError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(invalid(path, "an object", other)),
        }
    }

    /// The value of `key`; `None` when absent or `null`.
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn error(&self, key: &str, expected: &'static str, found: &Value) -> ModelError {
        invalid(&Path::Key(self.path, key), expected, found)
    }

    /// An optional string field.
    pub(crate) fn opt_string(&self, key: &str) -> Result<Option<String>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.error(key, "a string", other)),
        }
    }

    /// A string field that defaults to `""`.
    pub(crate) fn string(&self, key: &str) -> Result<String, ModelError> {
        Ok(self.opt_string(key)?.unwrap_or_default())
    }

    /// A string field that must be present and not blank.
    pub(crate) fn required_string(&self, key: &str) -> Result<String, ModelError> {
        let field = || Path::Key(self.path, key).to_string();
        match self.opt_string(key)? {
            None => Err(ModelError::MissingField { field: field() }),
            Some(s) if s.trim().is_empty() => Err(ModelError::EmptyField { field: field() }),
            Some(s) => Ok(s),
        }
    }

    /// A string field that also accepts numbers and booleans (written as JSON
    /// would print them); defaults to `""`.
    pub(crate) fn scalar_string(&self, key: &str) -> Result<String, ModelError> {
        match self.get(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
            Some(other) => Err(self.error(key, "a string", other)),
        }
    }

    /// An optional timestamp in epoch milliseconds.
    pub(crate) fn millis(&self, key: &str) -> Result<Option<i64>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => integer(v)
                .map(Some)
                .ok_or_else(|| self.error(key, "an integer (epoch ms)", v)),
        }
    }

    /// An optional integer that may also be written as a string of digits.
    pub(crate) fn lenient_integer(&self, key: &str) -> Result<Option<i64>, ModelError> {
        const EXPECTED: &str = "an integer";
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(v @ Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.error(key, EXPECTED, v)),
            Some(v) => integer(v)
                .map(Some)
                .ok_or_else(|| self.error(key, EXPECTED, v)),
        }
    }

    /// A boolean field that defaults to `false`.
    pub(crate) fn flag(&self, key: &str) -> Result<bool, ModelError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.error(key, "a boolean", other)),
        }
    }

    /// An array field read element by element; absent means empty and `null`
    /// elements are skipped.
    pub(crate) fn list<T>(
        &self,
        key: &str,
        read: impl Fn(&'v Value, &Path<'_>) -> Result<T, ModelError>,
    ) -> Result<Vec<T>, ModelError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                let field = Path::Key(self.path, key);
                items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| !item.is_null())
                    .map(|(i, item)| read(item, &Path::Index(&field, i)))
                    .collect()
            }
            Some(other) => Err(self.error(key, "an array", other)),
        }
    }

    /// An array of strings.
    pub(crate) fn strings(&self, key: &str) -> Result<Vec<String>, ModelError> {
        self.list(key, |v, path| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(invalid(path, "a string", other)),
        })
    }

    /// An optional nested object.
    pub(crate) fn object<T>(
        &self,
        key: &str,
        read: impl FnOnce(Obj<'v, '_>) -> Result<T, ModelError>,
    ) -> Result<Option<T>, ModelError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => read(Obj::new(v, &Path::Key(self.path, key))?).map(Some),
        }
    }
}

/// Reads the elements of a top-level JSON array.
pub(crate) fn root_list<T>(
    value: &Value,
    read: impl Fn(&Value, &Path<'_>) -> Result<T, ModelError>,
) -> Result<Vec<T>, ModelError> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter(|(_, item)| !item.is_null())
            .map(|(i, item)| read(item, &Path::Index(&Path::Root, i)))
            .collect(),
        other => Err(invalid(&Path::Root, "an array", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_print_like_accessors() {
        let root = Path::Root;
        let steps = Path::Key(&root, "steps");
        let first = Path::Index(&steps, 0);
        let start = Path::Key(&first, "start");
        assert_eq!(start.to_string(), "steps[0].start");
        assert_eq!(Path::Index(&root, 3).to_string(), "[3]");
    }

    #[test]
    fn text_strips_bom_and_rejects_blank_or_invalid() {
        assert_eq!(text(b"\xEF\xBB\xBF{}").unwrap(), "{}");
        assert_eq!(text(b"").unwrap_err(), ModelError::Empty);
        assert_eq!(text(b" \n\t").unwrap_err(), ModelError::Empty);
        assert_eq!(
            text(b"ab\xFFcd").unwrap_err(),
            ModelError::NotUtf8 { offset: 2 }
        );
    }

    #[test]
    fn integers_accept_whole_and_fractional_numbers_only() {
        assert_eq!(integer(&json!(5)), Some(5));
        assert_eq!(integer(&json!(1.7e12)), Some(1_700_000_000_000));
        assert_eq!(integer(&json!(2.6)), Some(3));
        assert_eq!(integer(&json!(1e300)), None);
        assert_eq!(integer(&json!("5")), None);
    }

    #[test]
    fn syntax_errors_keep_position_and_drop_duplicate_suffix() {
        let e = serde_json::from_str::<Value>("{\"a\":1\n\"b\"").unwrap_err();
        let ModelError::Json {
            line,
            column,
            message,
        } = syntax_error(e)
        else {
            panic!("expected a JSON error");
        };
        assert_eq!((line, column), (2, 1));
        assert_eq!(message, "expected `,` or `}`");
    }
}
