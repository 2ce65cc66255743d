//! The bulk attachment request's multipart body as one flat list of byte
//! segments. reqwest's `Form` chains each part's stream onto the streams of
//! the parts before it, so every poll of a body of N parts goes down through
//! as many streams as there are parts before the one being sent: a bulk
//! request of 100 results' attachments (200 parts) cost the client about 4%
//! of its instructions in an upload with an attachment per tenth result
//! (docs/ingest-profile.md, "The client's share"). The bytes are the ones
//! reqwest writes for the same parts (`tests::bulk_bodies_are_reqwests`),
//! and a part's content is shared with the part, not copied.

use std::sync::Arc;

use bytes::Bytes;
use onelaunch_api::Id;

use crate::api::SharedPart;

/// The bytes of a part, shared with it.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// `data` as [`Bytes`] without a copy (slices of it are not copied either).
pub(crate) fn shared_bytes(data: Arc<Vec<u8>>) -> Bytes {
    Bytes::from_owner(Shared(data))
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
            out.push(Bytes::from(format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                quoted(&part.file_name),
                content_type(&part.content_type)
            )));
            if !part.data.is_empty() {
                out.push(shared_bytes(part.data.clone()));
            }
            out.push(Bytes::from_static(b"\r\n"));
        }
    }
    out.push(Bytes::from(format!("--{boundary}--\r\n")));
    out
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

    /// The body reqwest's `Form` writes for `groups` (what the bulk request
    /// sent before), and its boundary.
    async fn reqwest_body(groups: &[(Id, Vec<SharedPart>)]) -> (String, Vec<u8>) {
        let mut form = reqwest::multipart::Form::new();
        for (result_id, parts) in groups {
            form = form.text("result", result_id.to_string());
            for p in parts {
                form = form.part("file", crate::api::file_part(p));
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

    /// The flat body holds the very bytes reqwest's `Form` writes for the
    /// same parts: names to escape, a name that is not ASCII, a content type
    /// that does not parse (sent as `application/octet-stream`), one with
    /// parameters, an empty file, a file larger than a stream chunk, several
    /// results each with its files and one with none.
    #[tokio::test]
    async fn bulk_bodies_are_reqwests() {
        let part = |name: &str, ty: &str, len: usize| {
            SharedPart::new(
                name.to_string(),
                ty.to_string(),
                (0..len).map(|i| (i % 251) as u8).collect(),
            )
        };
        let groups = vec![
            (
                7,
                vec![
                    part("log.txt", "text/plain", 10),
                    part("a \"quoted\" \\ name", "text/plain; charset=utf-8", 3),
                    part("line\r\nbreak.bin", "not a type", 0),
                    part("Überblick-ß.png", "IMAGE/PNG", 200_000),
                ],
            ),
            (8, vec![]),
            (9, vec![part("trace.json", "application/json", 4096)]),
        ];
        let (given, expected) = reqwest_body(&groups).await;
        let flat: Vec<u8> = bulk(&given, &groups).concat();
        assert_eq!(
            String::from_utf8_lossy(&flat),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(flat, expected);
        let (fresh, other) = (boundary(), boundary());
        assert_ne!(fresh, other);
        assert_eq!(fresh.len(), given.len());
    }
}
