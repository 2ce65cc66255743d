//! The attachments of acknowledged results. They are read in order (up to
//! [`READ_BATCH`] to a reader thread, names looked up relative to the results
//! directory held open) and sent
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

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use foldhash::HashMap;
use futures::stream::{FuturesUnordered, StreamExt};
use onelaunch_api::Id;

use super::dir_reader::ResultsDir;
use super::{
    guess_content_type, read_inside, AckLog, AttachmentRef, FileProblem, ReadError, Reopener,
};
use crate::api::{ApiClient, ClientError, SharedPart, MAX_PARTS_PER_REQUEST};

/// Most bytes gathered into one request (a single larger file still goes
/// alone). Small, since `concurrency` requests and the one being gathered
/// are held in memory at once.
const MAX_GROUP_BYTES: usize = 2 * 1024 * 1024;

/// Most attachments read in one blocking task ([`Sender::read_batch`]).
const READ_BATCH: usize = 64;

/// Bytes after which the rest of a batch is read in the next one: about one
/// group, so reading ahead holds at most that much more.
const READ_BATCH_BYTES: usize = MAX_GROUP_BYTES;

/// What reading an attachment gave.
enum Read {
    Bytes(Arc<Vec<u8>>),
    /// The problem that keeps it from going.
    Problem(String),
    /// Not read: its batch had read enough.
    Later,
}

/// The bytes of one attachment, or the problem that keeps it from going;
/// read through `dir` (the results directory held open) when there is one.
fn read_one(att: &AttachmentRef, dir: Option<&ResultsDir>, max: u64) -> Read {
    if !onelaunch_model::is_safe_source(&att.source) {
        return Read::Problem(format!(
            "attachment {:?} refused: its source must name a file inside the results directory",
            att.source
        ));
    }
    if let Some(bytes) = &att.inline {
        return Read::Bytes(bytes.clone());
    }
    let read = match dir {
        Some(dir) => dir.read(&att.source, max),
        None => read_inside(&att.dir, &att.source, max),
    };
    match read {
        Ok(bytes) => Read::Bytes(Arc::new(bytes)),
        Err(ReadError::Missing) => Read::Problem(format!(
            "attachment {:?} not found in {}",
            att.source,
            att.dir.display()
        )),
        Err(e) => Read::Problem(format!("attachment {:?}: {}", att.source, e.message())),
    }
}

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
        let mut pending: VecDeque<(Id, AttachmentRef)> = items.into();
        let mut read: VecDeque<(Id, AttachmentRef, Read)> = VecDeque::new();
        loop {
            if failure.is_some() {
                break;
            }
            if read.is_empty() {
                if pending.is_empty() {
                    break;
                }
                let batch: Vec<_> = pending.drain(..pending.len().min(READ_BATCH)).collect();
                read = self.read_batch(batch).await.into();
            }
            let Some((result_id, att, outcome)) = read.pop_front() else {
                continue;
            };
            let bytes = match outcome {
                Read::Bytes(bytes) => bytes,
                Read::Problem(message) => {
                    sent.problems.push(FileProblem {
                        path: att.origin,
                        message,
                    });
                    continue;
                }
                Read::Later => {
                    // Past the batch's bytes: this one and the rest of the
                    // batch are read in the next one, in order.
                    let mut rest = vec![(result_id, att)];
                    rest.extend(read.drain(..).map(|(id, a, _)| (id, a)));
                    for item in rest.into_iter().rev() {
                        pending.push_front(item);
                    }
                    continue;
                }
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

    /// Reads a batch of attachments in one blocking task (one hand-over to
    /// a reader thread per [`READ_BATCH`] files instead of one per file, and
    /// names looked up relative to the results directory held open): each
    /// item's bytes or the problem that keeps it from going, in order. Once
    /// [`READ_BATCH_BYTES`] are read, the rest of the batch is left for the
    /// next ([`Read::Later`]), so memory holds at most about one more group.
    async fn read_batch(&self, batch: Vec<(Id, AttachmentRef)>) -> Vec<(Id, AttachmentRef, Read)> {
        let max = self.max_file_bytes;
        let len = batch.len();
        let batch = Arc::new(batch);
        let shared = batch.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut dirs: Vec<&Arc<PathBuf>> = Vec::new();
            for (_, att) in shared.iter() {
                if !dirs.contains(&&att.dir) {
                    dirs.push(&att.dir);
                }
            }
            let opened: Vec<ResultsDir> = dirs.iter().map(|d| ResultsDir::open(d)).collect();
            let mut spent = 0usize;
            shared
                .iter()
                .map(|(_, att)| {
                    if spent >= READ_BATCH_BYTES {
                        return Read::Later;
                    }
                    let dir = dirs.iter().position(|d| *d == &att.dir);
                    let read = read_one(att, dir.map(|i| &opened[i]), max);
                    if let Read::Bytes(b) = &read {
                        spent += b.len();
                    }
                    read
                })
                .collect::<Vec<_>>()
        });
        let outcomes = match task.await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                let message = format!("reading failed: {e}");
                (0..len).map(|_| Read::Problem(message.clone())).collect()
            }
        };
        // The task is over: its reference is gone.
        let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
        batch
            .into_iter()
            .zip(outcomes)
            .map(|((id, att), read)| (id, att, read))
            .collect()
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
