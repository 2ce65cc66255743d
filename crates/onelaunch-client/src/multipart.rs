//! Multipart request bodies (attachments, raw result files) as one flat list
//! of byte segments. reqwest's `Form` chains each part's stream onto the
//! streams of the parts before it, so every poll of a body of N parts goes
//! down through as many streams as there are parts before the one being
//! sent: a bulk request of 100 results' attachments (200 parts) cost the
//! client about 4% of its instructions in an upload with an attachment per
//! tenth result (docs/ingest-profile.md, "The client's share"). The bytes
//! and the headers are the ones reqwest writes for the same parts
//! (`tests::bodies_are_reqwests`), and a part's content is shared with the
//! part, not copied.

use std::sync::Arc;

use bytes::Bytes;
use onelaunch_api::Id;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::api::SharedPart;

/// The bytes of a part, shared with it.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// A new random boundary, in reqwest's shape.
pub(crate) fn boundary() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    format!(
        "{:016x}-{:016x}-{:016x}-{:016x}",
        rng.gen::<u64>(),
        rng.gen::<u64>(),
        rng.gen::<u64>(),
        rng.gen::<u64>()
    )
}

/// `req` with `body` (written with `boundary`) and the headers reqwest's
/// `RequestBuilder::multipart` sets: the content type with the boundary, and
/// the length.
pub(crate) fn attach(
    req: reqwest::RequestBuilder,
    boundary: &str,
    body: Vec<Bytes>,
) -> reqwest::RequestBuilder {
    let len: usize = body.iter().map(Bytes::len).sum();
    req.header(
        CONTENT_TYPE,
        format!("multipart/form-data; boundary={boundary}"),
    )
    .header(CONTENT_LENGTH, len)
    .body(reqwest::Body::wrap_stream(futures::stream::iter(
        body.into_iter().map(Ok::<_, std::io::Error>),
    )))
}

/// A body of `file` parts.
pub(crate) fn files(boundary: &str, parts: &[SharedPart]) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(1 + 3 * parts.len());
    for part in parts {
        push_file(&mut out, boundary, part);
    }
    push_end(&mut out, boundary);
    out
}

/// The body of `POST /api/upload/attachment/bulk`: per result, a `result`
/// part holding its id, then a `file` part per attachment.
pub(crate) fn bulk(boundary: &str, groups: &[(Id, Vec<SharedPart>)]) -> Vec<Bytes> {
    let mut out =
        Vec::with_capacity(1 + groups.iter().map(|(_, p)| 1 + 3 * p.len()).sum::<usize>());
    for (result_id, parts) in groups {
        out.push(Bytes::from(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"result\"\r\n\r\n{result_id}\r\n"
        )));
        for part in parts {
            push_file(&mut out, boundary, part);
        }
    }
    push_end(&mut out, boundary);
    out
}

fn push_file(out: &mut Vec<Bytes>, boundary: &str, part: &SharedPart) {
    out.push(Bytes::from(format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
        quoted(&part.file_name),
        content_type(&part.content_type)
    )));
    if !part.data.is_empty() {
        out.push(Bytes::from_owner(Shared(part.data.clone())));
    }
    out.push(Bytes::from_static(b"\r\n"));
}

fn push_end(out: &mut Vec<Bytes>, boundary: &str) {
    out.push(Bytes::from(format!("--{boundary}--\r\n")));
}

/// A file name inside the quotes of `filename="…"`, escaped as reqwest
/// escapes it.
fn quoted(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\r', "\\\r")
        .replace('\n', "\\\n")
}

/// The content type as reqwest writes it: the media type as parsed, or
/// `application/octet-stream` when it does not parse.
fn content_type(given: &str) -> String {
    match given.parse::<mime::Mime>() {
        Ok(m) => m.as_ref().to_string(),
        Err(_) => "application/octet-stream".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    /// A part as reqwest's `Form` took it before (`file_part` in api.rs):
    /// its name, and its content type, or `application/octet-stream` when
    /// that does not parse.
    fn reqwest_part(p: &SharedPart) -> reqwest::multipart::Part {
        let make =
            || reqwest::multipart::Part::bytes(p.data.to_vec()).file_name(p.file_name.clone());
        make()
            .mime_str(&p.content_type)
            .or_else(|_| make().mime_str("application/octet-stream"))
            .unwrap()
    }

    /// The body reqwest's `Form` writes for `groups` (a `result` part per
    /// group with an id, then its files), and its boundary.
    async fn reqwest_body(groups: &[(Option<Id>, Vec<SharedPart>)]) -> (String, Vec<u8>) {
        let mut form = reqwest::multipart::Form::new();
        for (result_id, parts) in groups {
            if let Some(id) = result_id {
                form = form.text("result", id.to_string());
            }
            for p in parts {
                form = form.part("file", reqwest_part(p));
            }
        }
        let boundary = form.boundary().to_string();
        let mut body = Vec::new();
        let mut stream = form.into_stream();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.unwrap());
        }
        (boundary, body)
    }

    /// The flat bodies hold the very bytes reqwest's `Form` writes for the
    /// same parts: names to escape, a name that is not ASCII, a content type
    /// that does not parse (sent as `application/octet-stream`), one with
    /// parameters, an empty file, a file larger than a stream chunk; in bulk,
    /// several results each with its files and one with none.
    #[tokio::test]
    async fn bodies_are_reqwests() {
        let part = |name: &str, ty: &str, len: usize| {
            SharedPart::new(
                name.to_string(),
                ty.to_string(),
                (0..len).map(|i| (i % 251) as u8).collect(),
            )
        };
        let named = vec![
            part("log.txt", "text/plain", 10),
            part("a \"quoted\" \\ name", "text/plain; charset=utf-8", 3),
            part("line\r\nbreak.bin", "not a type", 0),
            part("Überblick-ß.png", "IMAGE/PNG", 200_000),
        ];
        let groups = vec![
            (7, named.clone()),
            (8, vec![]),
            (9, vec![part("trace.json", "application/json", 4096)]),
        ];
        let as_reqwest: Vec<_> = groups
            .iter()
            .map(|(id, p)| (Some(*id), p.clone()))
            .collect();
        let (given, expected) = reqwest_body(&as_reqwest).await;
        let flat: Vec<u8> = bulk(&given, &groups).concat();
        assert_eq!(
            String::from_utf8_lossy(&flat),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(flat, expected);

        let (given, expected) = reqwest_body(&[(None, named.clone())]).await;
        assert_eq!(files(&given, &named).concat(), expected);

        let (fresh, other) = (boundary(), boundary());
        assert_ne!(fresh, other);
        assert_eq!(fresh.len(), given.len());
    }
}
