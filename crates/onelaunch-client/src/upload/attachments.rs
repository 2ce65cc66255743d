//! The attachments of acknowledged results. They are read in order and sent
//! several results per request (`POST /api/upload/attachment/bulk`: at most
//! [`MAX_PARTS_PER_REQUEST`] files and [`MAX_GROUP_BYTES`] bytes; a larger
//! file goes alone), up to `concurrency` requests at once, so memory holds
//! at most that many requests' bytes and the one being gathered (small
//! groups cost little: a request's own cost is small next to 2 MiB of
//! bytes). Requests in flight take permits from the uploader's
//! `concurrency`, shared with the next chunk's result batches, which go
//! meanwhile. A server without that route (an older onelaunch, another
//! TestOps server) gets one request per result
//! (`POST /api/upload/test-result/{id}/attachment`), as before.
//!
//! A file the server refuses (its result is gone, its name is not accepted)
//! is a [`FileProblem`] naming the result file that refers to it; the other
//! files of the same request are stored and acknowledged all the same.

use std::path::PathBuf;

use foldhash::HashMap;
use futures::stream::{FuturesUnordered, StreamExt};
use onelaunch_api::Id;

use super::{
    guess_content_type, read_inside_async, AckLog, AttachmentRef, FileProblem, ReadError, Reopener,
};
use crate::api::{ApiClient, ClientError, SharedPart, MAX_PARTS_PER_REQUEST};

/// Most bytes gathered into one request (a single larger file still goes
/// alone). Small, since `concurrency` requests and the one being gathered
/// are held in memory at once.
const MAX_GROUP_BYTES: usize = 2 * 1024 * 1024;

/// What sending attachments did.
#[derive(Default)]
pub(super) struct Sent {
    /// Files the server stored.
    pub(super) attachments: usize,
    pub(super) problems: Vec<FileProblem>,
}

/// The files of one result in a request, with the result files that refer
/// to them (named in problems).
struct ResultFiles {
    result_id: Id,
    parts: Vec<SharedPart>,
    origins: Vec<PathBuf>,
}

/// One request's worth of files.
#[derive(Default)]
struct Group {
    results: Vec<ResultFiles>,
    files: usize,
    bytes: usize,
}

impl Group {
    fn add(&mut self, result_id: Id, part: SharedPart, origin: PathBuf, len: usize) {
        match self.results.last_mut() {
            Some(r) if r.result_id == result_id => {
                r.parts.push(part);
                r.origins.push(origin);
            }
            _ => self.results.push(ResultFiles {
                result_id,
                parts: vec![part],
                origins: vec![origin],
            }),
        }
        self.files += 1;
        self.bytes += len;
    }

    /// Whether a file of `len` bytes goes into the next request instead (a
    /// single larger file still goes alone).
    fn full_for(&self, len: usize) -> bool {
        self.files > 0
            && (self.files >= MAX_PARTS_PER_REQUEST || self.bytes + len > MAX_GROUP_BYTES)
    }
}

/// Everything a send needs, shared by the requests in flight.
#[derive(Clone)]
pub(super) struct Sender {
    pub(super) client: ApiClient,
    pub(super) reopener: Reopener,
    pub(super) acks: std::sync::Arc<AckLog>,
    pub(super) max_file_bytes: u64,
    pub(super) concurrency: usize,
    /// The uploader's permits for requests in flight.
    pub(super) in_flight: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Sender {
    /// Reads and sends `items` (result id, attachment), in order. Every request
    /// started runs to its end, so each acknowledgement is recorded even when
    /// another request fails; the first failure is returned after them.
    pub(super) async fn send(
        &self,
        items: Vec<(Id, AttachmentRef)>,
    ) -> (Sent, Option<ClientError>) {
        let mut sent = Sent::default();
        let mut failure: Option<ClientError> = None;
        let mut in_flight = FuturesUnordered::new();
        let mut group = Group::default();
        let limit = self.concurrency.max(1);
        for (result_id, att) in items {
            if failure.is_some() {
                break;
            }
            let Some(bytes) = self.read(&att, &mut sent.problems).await else {
                continue;
            };
            if group.full_for(bytes.len()) {
                let full = std::mem::take(&mut group);
                in_flight.push(self.spawn(full).await);
                while in_flight.len() >= limit {
                    if let Some(done) = in_flight.next().await {
                        collect(done, &mut sent, &mut failure);
                    }
                }
            }
            let content_type = att
                .content_type
                .clone()
                .unwrap_or_else(|| guess_content_type(&att.source).to_string());
            let len = bytes.len();
            group.add(
                result_id,
                SharedPart::shared(att.source, content_type, bytes),
                att.origin,
                len,
            );
        }
        if group.files > 0 && failure.is_none() {
            in_flight.push(self.spawn(group).await);
        }
        while let Some(done) = in_flight.next().await {
            collect(done, &mut sent, &mut failure);
        }
        (sent, failure)
    }

    /// Sends a group in a task of its own once a request permit is free.
    async fn spawn(&self, group: Group) -> tokio::task::JoinHandle<Result<Sent, ClientError>> {
        let permit = self.in_flight.clone().acquire_owned().await;
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            this.request(group).await
        })
    }

    /// The bytes of one attachment, or the problem that keeps it from going.
    async fn read(
        &self,
        att: &AttachmentRef,
        problems: &mut Vec<FileProblem>,
    ) -> Option<std::sync::Arc<Vec<u8>>> {
        if !onelaunch_model::is_safe_source(&att.source) {
            problems.push(FileProblem {
                path: att.origin.clone(),
                message: format!(
                    "attachment {:?} refused: its source must name a file inside the results directory",
                    att.source
                ),
            });
            return None;
        }
        if let Some(bytes) = &att.inline {
            return Some(bytes.clone());
        }
        match read_inside_async(att.dir.clone(), att.source.clone(), self.max_file_bytes).await {
            Ok(bytes) => Some(std::sync::Arc::new(bytes)),
            Err(ReadError::Missing) => {
                problems.push(FileProblem {
                    path: att.origin.clone(),
                    message: format!(
                        "attachment {:?} not found in {}",
                        att.source,
                        att.dir.display()
                    ),
                });
                None
            }
            Err(e) => {
                problems.push(FileProblem {
                    path: att.origin.clone(),
                    message: format!("attachment {:?}: {}", att.source, e.message()),
                });
                None
            }
        }
    }

    /// Sends one request's files: in bulk, or one result per request when
    /// the server has no bulk route.
    async fn request(self, group: Group) -> Result<Sent, ClientError> {
        let wire: Vec<(Id, Vec<SharedPart>)> = group
            .results
            .iter()
            .map(|r| (r.result_id, r.parts.clone()))
            .collect();
        let answer = self
            .reopener
            .run(|| self.client.upload_attachments_bulk(&wire))
            .await;
        let mut sent = Sent::default();
        match answer {
            Ok(Some(answer)) => {
                let refused: HashMap<(Id, &str), &str> = answer
                    .refused
                    .iter()
                    .map(|r| ((r.result_id, r.file_name.as_str()), r.message.as_str()))
                    .collect();
                for r in &group.results {
                    let mut stored = Vec::new();
                    for (part, origin) in r.parts.iter().zip(&r.origins) {
                        match refused.get(&(r.result_id, part.file_name.as_str())) {
                            Some(message) => sent.problems.push(refused_problem(
                                origin.clone(),
                                &part.file_name,
                                message,
                            )),
                            None => stored.push(part.file_name.clone()),
                        }
                    }
                    self.acks.attachments(r.result_id, &stored);
                    sent.attachments += stored.len();
                }
                if sent.attachments != answer.files_count {
                    tracing::warn!(
                        "the server stored {} attachment(s) of a request that sent {} it did not refuse",
                        answer.files_count,
                        sent.attachments
                    );
                }
            }
            Ok(None) => {
                for r in group.results {
                    self.one_result(r, &mut sent).await?;
                }
            }
            Err(ClientError::BadRequest { message, .. }) => {
                for r in &group.results {
                    for (part, origin) in r.parts.iter().zip(&r.origins) {
                        sent.problems.push(refused_problem(
                            origin.clone(),
                            &part.file_name,
                            &message,
                        ));
                    }
                }
            }
            Err(e) => return Err(e),
        }
        Ok(sent)
    }

    /// The files of one result by `POST /api/upload/test-result/{id}/attachment`.
    async fn one_result(&self, r: ResultFiles, sent: &mut Sent) -> Result<(), ClientError> {
        match self
            .reopener
            .run(|| self.client.upload_shared_attachments(r.result_id, &r.parts))
            .await
        {
            Ok(()) => {
                let names: Vec<String> = r.parts.iter().map(|p| p.file_name.clone()).collect();
                self.acks.attachments(r.result_id, &names);
                sent.attachments += names.len();
            }
            Err(ClientError::BadRequest { message, .. } | ClientError::NotFound(message)) => {
                for (part, origin) in r.parts.iter().zip(r.origins) {
                    sent.problems
                        .push(refused_problem(origin, &part.file_name, &message));
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

fn refused_problem(path: PathBuf, file_name: &str, message: &str) -> FileProblem {
    FileProblem {
        path,
        message: format!("the server refused attachment {file_name:?}: {message}"),
    }
}

fn collect(
    done: Result<Result<Sent, ClientError>, tokio::task::JoinError>,
    sent: &mut Sent,
    failure: &mut Option<ClientError>,
) {
    match done {
        Ok(Ok(s)) => {
            sent.attachments += s.attachments;
            sent.problems.extend(s.problems);
        }
        Ok(Err(e)) => {
            failure.get_or_insert(e);
        }
        Err(e) => {
            failure.get_or_insert(ClientError::Config(format!(
                "sending attachments stopped: {e}"
            )));
        }
    }
}
