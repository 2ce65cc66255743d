//! A result's request JSON, written by the reader thread that parsed its file.
//!
//! A parsed result (`allure::TestResult`) is converted to its request shape
//! (`UploadTestResult`) and written as JSON in the thread that read it, into
//! one buffer for the thread's part of the chunk. What leaves the thread is
//! that buffer, shared, and per result a slice of it and the few facts the
//! uploader keeps ([`Encoded`]). The many small strings of a parsed result
//! are made and freed in one thread (an allocator frees them cheaply there),
//! and a batch's request body is the slices of its results put together
//! ([`batch_body`]), not a second walk through their fields.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use foldhash::{HashMap, HashMapExt};
use onelaunch_api::{normalize_status, Id, UploadTestResult};
use onelaunch_model::allure;

/// An attachment a result refers to, as found in its file.
#[derive(Debug)]
pub(super) struct Attached {
    /// The file name inside the results directory.
    pub(super) source: String,
    pub(super) content_type: Option<String>,
    /// The content, when it was made from the result file (JUnit output).
    pub(super) inline: Option<Arc<Vec<u8>>>,
}

/// One result of a result file, its request written.
#[derive(Debug)]
pub(super) struct Encoded {
    pub(super) uuid: String,
    pub(super) history_id: Option<String>,
    /// The JSON of its `UploadTestResult` (see [`share`]).
    pub(super) json: Bytes,
    /// Where `json` lies in its part's buffer, until [`share`].
    range: Range<usize>,
    pub(super) status: &'static str,
    pub(super) attachments: Vec<Attached>,
}

/// Attachments made from a result file, by source: see [`onelaunch_model::JUnitReport`].
pub(super) type Generated = HashMap<String, Arc<Vec<u8>>>;

/// Converts `result` and appends its request JSON to `out`.
pub(super) fn encode(
    result: allure::TestResult,
    generated: &Generated,
    out: &mut Vec<u8>,
) -> Result<Encoded, String> {
    let attachments = attached(&result, generated);
    let status = normalize_status(result.status.as_deref());
    let upload = onelaunch_model::into_upload(result);
    let start = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, &upload) {
        out.truncate(start);
        return Err(format!("result {}: cannot encode it: {e}", upload.uuid));
    }
    let UploadTestResult {
        uuid, history_id, ..
    } = upload;
    Ok(Encoded {
        uuid,
        history_id,
        json: Bytes::new(),
        range: start..out.len(),
        status,
        attachments,
    })
}

/// Gives each result of a part its slice of the part's buffer `out`.
pub(super) fn share<'a>(out: Vec<u8>, results: impl Iterator<Item = &'a mut Encoded>) {
    let out = Bytes::from(out);
    for r in results {
        r.json = out.slice(r.range.clone());
    }
}

/// The attachment files `result` refers to, each once
/// ([`onelaunch_model::attachment_sources`]), with the content type its file
/// gave and, for a JUnit report's output, the content.
fn attached(result: &allure::TestResult, generated: &Generated) -> Vec<Attached> {
    let sources = onelaunch_model::attachment_sources(result);
    if sources.is_empty() {
        return Vec::new();
    }
    let mut types = HashMap::new();
    collect_types(&result.attachments, &mut types);
    collect_step_types(&result.steps, &mut types);
    sources
        .into_iter()
        .map(|source| Attached {
            content_type: types.get(source.as_str()).map(|t| t.to_string()),
            inline: generated.get(&source).cloned(),
            source,
        })
        .collect()
}

fn collect_step_types<'r>(steps: &'r [allure::StepResult], out: &mut HashMap<&'r str, &'r str>) {
    for s in steps {
        collect_types(&s.attachments, out);
        collect_step_types(&s.steps, out);
    }
}

fn collect_types<'r>(atts: &'r [allure::Attachment], out: &mut HashMap<&'r str, &'r str>) {
    for a in atts {
        if let Some(t) = a.r#type.as_deref().filter(|t| !t.trim().is_empty()) {
            out.entry(a.source.as_str()).or_insert(t);
        }
    }
}

/// A result on its way: what a batch sends of it.
#[derive(Debug)]
pub(super) struct Sendable {
    pub(super) uuid: String,
    pub(super) history_id: Option<String>,
    pub(super) json: Bytes,
}

/// The body of `POST /api/upload/test-result` for `results`: the JSON of
/// an `UploadResults`, byte for byte what serde writes for it.
pub(super) fn batch_body(session_id: Id, results: &[Sendable]) -> Bytes {
    let head = format!("{{\"testSessionId\":{session_id},\"results\":[");
    let len = head.len() + results.iter().map(|r| r.json.len() + 1).sum::<usize>() + 2;
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(head.as_bytes());
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&r.json);
    }
    body.extend_from_slice(b"]}");
    body.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use onelaunch_api::UploadResults;

    fn parsed(json: &str) -> allure::TestResult {
        onelaunch_model::parse_result(json.as_bytes()).expect("a valid result")
    }

    #[test]
    fn a_batch_body_is_what_serde_writes_for_its_results() {
        let files = [
            r#"{"uuid":"a","historyId":"h1","name":"first \"quoted\" \u00e9","status":"passed",
                "start":1,"stop":5,"labels":[{"name":"host","value":"h"},{"name":"suite","value":"s"}],
                "steps":[{"name":"s1","status":"failed","attachments":[{"name":"log","source":"a-attachment.txt","type":"text/plain"}]}],
                "attachments":[{"name":"shot","source":"b-attachment.png"},{"name":"again","source":"a-attachment.txt"}],
                "parameters":[{"name":"p","value":"1"}],"links":[{"type":"issue","url":"https://x/1"}],
                "statusDetails":{"message":"m\nline","trace":"t","flaky":true}}"#,
            r#"{"uuid":"b","name":"second","status":"weird"}"#,
            r#"{"uuid":"c","name":"","status":"broken","description":"<b>\u0000</b>"}"#,
        ];
        let mut out = Vec::new();
        let generated = Generated::new();
        let mut encoded: Vec<Encoded> = files
            .iter()
            .map(|f| encode(parsed(f), &generated, &mut out).expect("encodes"))
            .collect();
        share(out, encoded.iter_mut());
        let sendable: Vec<Sendable> = encoded
            .iter()
            .map(|e| Sendable {
                uuid: e.uuid.clone(),
                history_id: e.history_id.clone(),
                json: e.json.clone(),
            })
            .collect();
        let expected = UploadResults {
            test_session_id: 42,
            results: files
                .iter()
                .map(|f| onelaunch_model::into_upload(parsed(f)))
                .collect(),
        };
        let body = batch_body(42, &sendable);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        assert_eq!(
            std::str::from_utf8(&batch_body(7, &[])).unwrap(),
            serde_json::to_string(&UploadResults {
                test_session_id: 7,
                results: Vec::new()
            })
            .unwrap()
        );

        // What the uploader keeps of each result.
        assert_eq!(encoded[0].uuid, "a");
        assert_eq!(encoded[0].history_id.as_deref(), Some("h1"));
        assert_eq!(encoded[0].status, "passed");
        assert_eq!(encoded[1].status, normalize_status(Some("weird")));
        let sources: Vec<(&str, Option<&str>)> = encoded[0]
            .attachments
            .iter()
            .map(|a| (a.source.as_str(), a.content_type.as_deref()))
            .collect();
        assert_eq!(
            sources,
            [
                ("b-attachment.png", None),
                ("a-attachment.txt", Some("text/plain"))
            ]
        );
        assert!(encoded[1].attachments.is_empty());
    }
}
