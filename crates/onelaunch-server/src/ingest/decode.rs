//! Decoding of what clients upload, as pure functions over bytes: the JSON
//! bodies of the API (`upload/test-result`, `upload/start`, ...) and the raw
//! files of `upload/file`. The handlers call these, and so do the fuzz
//! targets (`fuzz/`) and the bounded mutation tests, so what is fuzzed is
//! exactly what the server runs.

use axum::Json;
use onelaunch_api::UploadTestResult;
use onelaunch_model::FileKind;
use serde::de::DeserializeOwned;

use crate::error::{ServerError, ServerResult};
use crate::ingest::limits;

/// Decodes a JSON request body; malformed bodies (bad syntax, wrong types,
/// nesting deeper than 128 levels, invalid UTF-8) are a 400 naming the field.
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> ServerResult<T> {
    if bytes.is_empty() {
        return Err(ServerError::bad(
            "request body is empty; expected a JSON object",
        ));
    }
    // The plain decoder first (it does not track the path it is at, which
    // costs about as much as decoding); a body it refuses is decoded again
    // with the path tracked, for a message naming the field. The body is
    // checked as UTF-8 once, as a whole, so that the decoder does not check
    // each string on its own (`from_slice` does: 2 % of the server's
    // instructions per result); a body that is not UTF-8 goes straight to
    // the decoder that names where.
    if let Some(Ok(v)) = std::str::from_utf8(bytes)
        .ok()
        .map(serde_json::from_str::<T>)
    {
        return Ok(v);
    }
    match Json::<T>::from_bytes(bytes) {
        Ok(Json(v)) => Ok(v),
        Err(e) => Err(ServerError::bad(
            e.body_text()
                .replace(
                    "Failed to deserialize the JSON body into the target type: ",
                    "invalid JSON body: ",
                )
                .replace(
                    "Failed to parse the request body as JSON: ",
                    "invalid JSON body: ",
                )
                .replace("recursion limit exceeded", "nesting deeper than 128 levels"),
        )),
    }
}

/// The body of `POST /api/upload/test-result`, decoded and bounded.
pub(crate) fn upload_results(bytes: &[u8]) -> ServerResult<onelaunch_api::UploadResults> {
    let mut req: onelaunch_api::UploadResults = json_body(bytes)?;
    limits::bound_results(&mut req.results)?;
    Ok(req)
}

/// The body of `POST /api/upload/start`, decoded and bounded.
pub(crate) fn upload_start(bytes: &[u8]) -> ServerResult<onelaunch_api::ExternalRunStart> {
    let mut req: onelaunch_api::ExternalRunStart = json_body(bytes)?;
    limits::bound_start(&mut req)?;
    Ok(req)
}

/// What a raw file of `POST /api/upload/file` is.
#[derive(Debug)]
pub(crate) enum RawFile {
    /// A result file or JUnit report: its results, bounded, and the text
    /// attachments made from a report's captured output (which its results
    /// refer to by name).
    Results(
        Vec<UploadTestResult>,
        Vec<onelaunch_model::GeneratedAttachment>,
    ),
    /// A container file that parsed (its fixtures are applied later).
    Container,
    /// An Allure 3 `*-globals.json` file: errors and attachments outside any
    /// test, at most [`MAX_GLOBALS_ENTRIES`] entries.
    Globals(Box<onelaunch_model::allure::Globals>),
    /// Anything else: kept as a file (an attachment, by name).
    Other,
}

/// Most entries (errors and attachments) one globals file may hold; real
/// adapters write one per file.
pub(crate) const MAX_GLOBALS_ENTRIES: usize = 1_000;

/// Classifies a raw file by name and parses it; the error names the file
/// (escaped, since a name may hold control characters) and what is wrong.
pub(crate) fn raw_file(name: &str, bytes: &[u8]) -> Result<RawFile, String> {
    limits::check_file_name(name)?;
    let bounded = |mut results: Vec<UploadTestResult>, generated| {
        if let Some(r) = results.iter().find(|r| r.uuid.len() > 255) {
            return Err(format!(
                "{name}: uuid {:?}… is longer than 255 bytes",
                crate::db::clip(&r.uuid, 32)
            ));
        }
        match limits::bound_results(&mut results) {
            Ok(()) => Ok(RawFile::Results(results, generated)),
            Err(e) => Err(format!("{name}: {e}")),
        }
    };
    match onelaunch_model::classify(name) {
        FileKind::Result => match onelaunch_model::parse_result(bytes) {
            Ok(r) => bounded(vec![onelaunch_model::into_upload(r)], Vec::new()),
            Err(e) => Err(format!("{name}: {e}")),
        },
        FileKind::JUnit => match onelaunch_model::parse_junit_report(bytes, name) {
            Ok(report) => bounded(
                report
                    .results
                    .into_iter()
                    .map(onelaunch_model::into_upload)
                    .collect(),
                report.generated,
            ),
            Err(e) => Err(format!("{name}: {e}")),
        },
        FileKind::Container => match onelaunch_model::parse_container(bytes) {
            Ok(_) => Ok(RawFile::Container),
            Err(e) => Err(format!("{name}: {e}")),
        },
        FileKind::Globals => match onelaunch_model::parse_globals(bytes) {
            Ok(g) if g.errors.len() + g.attachments.len() > MAX_GLOBALS_ENTRIES => Err(format!(
                "{name}: more than {MAX_GLOBALS_ENTRIES} errors and attachments"
            )),
            Ok(g) => Ok(RawFile::Globals(Box::new(g))),
            Err(e) => Err(format!("{name}: {e}")),
        },
        _ => Ok(RawFile::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_a_bad_request() {
        let depth = 100_000;
        let mut body = String::from(r#"{"testSessionId":1,"results":[{"uuid":"d","steps":["#);
        for _ in 0..depth {
            body.push_str(r#"{"steps":["#);
        }
        for _ in 0..depth {
            body.push_str("]}");
        }
        body.push_str("]}]}");
        let e = upload_results(body.as_bytes()).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("nesting"), "{e}");
    }

    #[test]
    fn wrong_types_and_bad_utf8_are_bad_requests() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"testSessionId":"x"}"#,
            br#"{"testSessionId":1,"results":[{"uuid":5}]}"#,
            b"{\"testSessionId\":1,\"results\":[{\"uuid\":\"\xff\"}]}",
        ] {
            let e = upload_results(body).unwrap_err();
            assert_eq!(e.status(), 400, "{e}");
        }
    }

    #[test]
    fn raw_files_are_named_in_errors() {
        let e = raw_file("bad\nname-result.json", b"{}").unwrap_err();
        assert!(e.contains("bad\\nname"), "{e}");
        let e = raw_file("x-result.json", b"{\"uuid\":").unwrap_err();
        assert!(e.starts_with("x-result.json: "), "{e}");
        assert!(matches!(
            raw_file("x-result.json", br#"{"uuid":"a","name":"n"}"#),
            Ok(RawFile::Results(r, _)) if r.len() == 1
        ));
        assert!(matches!(raw_file("a.png", b"\x89PNG"), Ok(RawFile::Other)));
        let e = raw_file("g-globals.json", br#"{"errors":[{"message":1}]}"#).unwrap_err();
        assert!(
            e.starts_with("g-globals.json: invalid type for field `errors[0].message`"),
            "{e}"
        );
        assert!(matches!(
            raw_file("g-globals.json", br#"{"errors":[{"message":"hook failed"}]}"#),
            Ok(RawFile::Globals(g)) if g.errors.len() == 1
        ));
    }
}
