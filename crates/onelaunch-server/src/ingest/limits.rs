//! Bounds on what a client may send. Nothing a client sends can make the
//! server answer 5xx, run out of stack, or store unbounded text:
//!
//! * request bodies: [`MAX_JSON_BODY`] for JSON endpoints and
//!   [`MAX_MULTIPART_BODY`] for multipart uploads, answered with 413; multipart
//!   parts stream to disk (`blobs.rs`), except the result files of
//!   `/upload/file`, which are read into memory within the server's budget
//!   for buffered bodies (`blobs::MAX_BUFFERED`, 503 `busy` when spent);
//! * JSON bodies in memory: at most [`JSON_BODIES_BUDGET`] bytes at once, one
//!   project's at most half ([`Room::json_bodies`]; 503 `busy` past
//!   `blobs::INTAKE_WAIT`);
//! * result batches in decoded form: at most [`DECODE_BUDGET`] bytes of
//!   `test-result` bodies at once, one project's at most half, from their
//!   decoding to their answer ([`Room::decoding`]; 503 `busy` likewise);
//! * JSON nesting: serde_json's recursion limit (128 levels) answers 400;
//! * text fields: cut to a per-field bound (see [`bound_result`]), never refused;
//! * a result's or fixture's stored JSON: at most [`MAX_STORED_JSON`] after the
//!   cut, else 400 naming the result;
//! * lists that are not results (tags, links, issues, parameters, bulk items,
//!   environment entries): a count bound, 400 naming the field;
//! * multipart file names: non-empty, at most [`MAX_FILE_NAME`] bytes, no
//!   control characters (a newline in a name would corrupt logs and listings);
//!   attachment names declared inside results get `_` for control characters.

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use onelaunch_api::{
    ExternalRunStart, KeyValue, LabelDto, LaunchCreate, LinkDto, ParameterDto, UploadAttachment,
    UploadFixture, UploadParameter, UploadStep, UploadTestResult,
};
use serde::Serialize;

use crate::db::{clip, cut_in_place as cut, OwnedText, MAX_NAME, MAX_TEXT};
use crate::error::{ServerError, ServerResult};

/// Largest JSON request body (413 above).
pub(crate) const MAX_JSON_BODY: usize = 64 * 1024 * 1024;
/// Largest multipart request body (attachments, raw result files; 413 above).
pub(crate) const MAX_MULTIPART_BODY: usize = 256 * 1024 * 1024;
/// Largest body of a login (`POST /api/uaa/oauth/token`: 413 above; the web
/// UI's `POST /login`, whose form the CSRF guard reads: 400 above): it is
/// read before the token in it is known, so anyone can send it, and it holds
/// a token and a few short fields.
pub(crate) const MAX_LOGIN_BODY: usize = 16 * 1024;
pub(crate) use crate::db::MAX_STORED_JSON;
/// Longest file name of an attachment or raw file, in bytes.
pub(crate) const MAX_FILE_NAME: usize = 1024;
/// Most entries of a list that is not results (tags, links, parameters, ...).
pub(crate) const MAX_LIST: usize = 1000;

/// Short identifiers and labels (label names, content types, thread ids).
const MAX_SHORT: usize = 255;
/// URLs, full names, label values, parameter values.
const MAX_LONG: usize = 4096;
/// A step title.
const MAX_STEP_BODY: usize = 64 * 1024;
/// One launch issue (free JSON), serialised.
const MAX_ISSUE_JSON: usize = 4096;
/// The ignored `namedEnv` of a result, serialised; dropped when larger.
const MAX_NAMED_ENV_JSON: usize = 64 * 1024;

/// Most bytes of `test-result` request bodies in decoded form at once, all
/// requests together ([`Room::decoding`]); one project's requests hold at most
/// half.
pub(crate) const DECODE_BUDGET: usize = 12 * 1024 * 1024;

/// Most bytes of JSON request bodies held in memory at once, all requests
/// together ([`Room::json_bodies`]); one project's requests hold at most half,
/// which is [`MAX_JSON_BODY`].
pub(crate) const JSON_BODIES_BUDGET: usize = 2 * MAX_JSON_BODY;

/// `bytes` in KiB of a [`Room`], rounded up, at least one.
fn kib_of(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

/// Room in memory for what requests hold while they are in flight, in KiB of
/// a [`crate::blobs::Budget`] (one project's requests at most half; waiting
/// longer than `blobs::INTAKE_WAIT` answers 503 `busy` with `Retry-After`).
/// Two are kept:
///
/// * [`Room::json_bodies`], [`JSON_BODIES_BUDGET`]: JSON request bodies.
///   Each body was read whole before it was decoded, with nothing bounding
///   how many were at once: a token that sent many large bodies at once grew
///   the server's memory by all of them. A body now takes its share before it
///   is read (as it arrives when its length is not announced) and its request
///   keeps the share until it is answered (`api::extract`), so what a body
///   decodes into is bounded with it.
/// * [`Room::decoding`], [`DECODE_BUDGET`]: result batches in decoded form. A
///   batch waiting for the writer holds its decoded results and the JSON each
///   one is stored as, several times the bytes it came as; twenty job runs
///   whose batches arrived at once held all of them (docs/ingest-profile.md,
///   "A budget for decoded batches"). A request takes its share before its
///   body is read when it announces its length (`api::uploads`: batches the
///   writer is not ready for wait unread in their connections), else once
///   the body is read, and keeps it until it is answered. A project's half is more than
///   one client's batches in flight (eight of 500 results, about 4.8 MB), so
///   a lone upload never waits here.
#[derive(Debug, Clone)]
pub(crate) struct Room {
    kib: crate::blobs::Budget,
    wait: Duration,
}

impl Room {
    /// The room for JSON request bodies.
    pub(crate) fn json_bodies(wait: Duration) -> Self {
        Self::new(JSON_BODIES_BUDGET, wait)
    }

    /// The room for result batches in decoded form.
    pub(crate) fn decoding(wait: Duration) -> Self {
        Self::new(DECODE_BUDGET, wait)
    }

    fn new(bytes: usize, wait: Duration) -> Self {
        Room {
            kib: crate::blobs::Budget::new(bytes / 1024),
            wait,
        }
    }

    /// `bytes` more for a request that already holds a share of this room
    /// and cannot say how much it will need (a body of unknown length): only
    /// one such request at a time waits for them (`blobs::Budget::grow`);
    /// another that finds no room is refused at once with 503 `busy`.
    pub(crate) async fn grow(
        &self,
        sender: crate::blobs::Sender,
        bytes: usize,
    ) -> ServerResult<crate::blobs::Share> {
        self.kib
            .grow(
                sender,
                kib_of(bytes),
                self.wait,
                "the server is busy with other request bodies of unknown length: send this \
                 one again, or send its length (Content-Length)",
            )
            .await
    }

    /// The share of `bytes` (in KiB, rounded up) for `sender`, held until
    /// dropped; more than a sender's half takes the half.
    pub(crate) async fn share(
        &self,
        sender: crate::blobs::Sender,
        bytes: usize,
    ) -> ServerResult<crate::blobs::Share> {
        self.kib.share(sender, kib_of(bytes), self.wait).await
    }

    /// KiB of the whole room not held now.
    #[cfg(test)]
    pub(crate) fn available_kib(&self) -> usize {
        self.kib.available()
    }
}

/// Why [`short_text`] refused a part.
pub(crate) enum TextRefused<E> {
    /// The part could not be read.
    Read(E),
    /// It is longer than its bound.
    TooLong,
    /// It is not UTF-8 text.
    NotUtf8,
}

/// A short text part (a form field, a result id) read a piece at a time and
/// refused once it passes `max` bytes, before the rest of it is held.
pub(crate) async fn short_text<S, B, E>(mut chunks: S, max: usize) -> Result<String, TextRefused<E>>
where
    S: futures::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    use futures::StreamExt;
    let mut text = Vec::new();
    while let Some(piece) = chunks.next().await {
        let piece = piece.map_err(TextRefused::Read)?;
        let piece = piece.as_ref();
        if text.len() + piece.len() > max {
            return Err(TextRefused::TooLong);
        }
        text.extend_from_slice(piece);
    }
    String::from_utf8(text).map_err(|_| TextRefused::NotUtf8)
}

/// The body limit of the multipart routes (the JSON limit is the default).
pub(crate) fn multipart_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_MULTIPART_BODY)
}

/// API requests in flight, counted by who sends them: one project's requests
/// (all its tokens together) are at most half of the server's connections
/// (`--max-connections`), and so are the admins'; logins, which anyone can
/// send, at most a quarter (a hostile project token and strangers together
/// leave a quarter to the others). A request
/// takes its place once its token is known (or, for a login, before its body
/// is read) and keeps it until it is answered. Without it, one project token
/// that opened as many requests as the server has connections, each sending
/// its body at the slowest pace allowed (`listen::pace`), left no connection
/// for any other project. A request past the half is refused at once with 503
/// `busy` (the client retries it), never queued: a queued request would hold
/// its connection all the same.
#[derive(Debug, Clone)]
pub(crate) struct Requests(crate::blobs::Budget);

impl Requests {
    /// Room for `connections` requests in flight.
    pub(crate) fn new(connections: usize) -> Self {
        Requests(crate::blobs::Budget::strangers_quarter(connections.max(4)))
    }

    /// Places not held now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.0.available()
    }

    /// A place for a request of `sender`, held until dropped.
    pub(crate) fn enter(&self, sender: crate::blobs::Sender) -> ServerResult<crate::blobs::Share> {
        self.0.try_share(sender, 1).ok_or_else(|| {
            ServerError::Busy(
                "this token's project has as many requests in flight as it may (half of the \
                 server's connections): retry once some are answered"
                    .into(),
            )
        })
    }
}

/// The body limit of the login routes ([`MAX_LOGIN_BODY`]).
pub(crate) fn login_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_LOGIN_BODY)
}

fn cut_opt(s: &mut Option<impl OwnedText>, max: usize) {
    if let Some(v) = s {
        cut(v, max);
    }
}

/// Size of a value's JSON without building it.
pub(crate) fn json_len(v: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// Replaces control characters (a newline in a name would corrupt logs and
/// listings) with `_`.
fn no_controls(s: &mut String) {
    if s.chars().any(char::is_control) {
        *s = s
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect();
    }
}

fn bound_attachment(a: &mut UploadAttachment) {
    cut(&mut a.name, MAX_NAME);
    no_controls(&mut a.name);
    cut(&mut a.original_file_name, MAX_FILE_NAME);
    no_controls(&mut a.original_file_name);
    cut_opt(&mut a.content_type, MAX_SHORT);
}

fn bound_parameter(p: &mut UploadParameter) {
    cut(&mut p.name, MAX_NAME);
    cut(&mut p.value, MAX_LONG);
}

fn bound_label(l: &mut LabelDto) {
    cut(&mut l.name, MAX_SHORT);
    cut(&mut l.value, MAX_LONG);
}

fn bound_link(l: &mut LinkDto) {
    cut(&mut l.name, MAX_LONG);
    cut(&mut l.url, MAX_LONG);
    cut_opt(&mut l.kind, MAX_SHORT);
}

/// Cuts the texts of steps, iteratively (depth is already bounded by the JSON
/// parser, but nothing here relies on it).
fn bound_steps(steps: &mut [UploadStep]) {
    // Only nested steps wait on the stack: most results' steps have none,
    // and then nothing is allocated.
    let mut stack: Vec<&mut UploadStep> = Vec::new();
    let mut next = steps.iter_mut();
    while let Some(s) = next.next().or_else(|| stack.pop()) {
        cut(&mut s.kind, MAX_SHORT);
        cut_opt(&mut s.body, MAX_STEP_BODY);
        cut_opt(&mut s.status, MAX_SHORT);
        cut_opt(&mut s.message, MAX_TEXT);
        cut_opt(&mut s.trace, MAX_TEXT);
        s.parameters.iter_mut().for_each(bound_parameter);
        if let Some(a) = &mut s.attachment {
            bound_attachment(a);
        }
        stack.extend(s.steps.iter_mut());
    }
}

use crate::db::too_large;

/// Cuts every text of a result to its bound and refuses a result whose stored
/// JSON would still exceed [`MAX_STORED_JSON`] (413 naming it by index and uuid).
pub(crate) fn bound_result(index: usize, r: &mut UploadTestResult) -> ServerResult<()> {
    cut_result(r);
    let len = json_len(r);
    if len > MAX_STORED_JSON {
        return Err(crate::db::result_too_large(index, &r.uuid, len));
    }
    Ok(())
}

/// The cuts of [`bound_result`] without its size check, for callers that
/// hand the results to `ingest::results` at once: the insert
/// (`db::result_rows`) refuses a stored JSON over [`MAX_STORED_JSON`] with
/// the same 413 as it builds it, so the JSON is not built twice (once to
/// measure it, once to store it: 3% of the server's instructions per result).
pub(crate) fn cut_results(results: &mut [UploadTestResult]) {
    results.iter_mut().for_each(cut_result);
}

fn cut_result(r: &mut UploadTestResult) {
    cut_opt(&mut r.history_id, 1024);
    cut_opt(&mut r.test_case_id, 1024);
    cut(&mut r.name, MAX_NAME);
    cut_opt(&mut r.full_name, MAX_LONG);
    cut_opt(&mut r.description, MAX_TEXT);
    cut_opt(&mut r.description_html, MAX_TEXT);
    cut_opt(&mut r.status, MAX_SHORT);
    cut_opt(&mut r.message, MAX_TEXT);
    cut_opt(&mut r.trace, MAX_TEXT);
    cut_opt(&mut r.host_id, MAX_SHORT);
    cut_opt(&mut r.thread_id, MAX_SHORT);
    bound_steps(&mut r.steps);
    r.attachments.iter_mut().for_each(bound_attachment);
    r.parameters.iter_mut().for_each(bound_parameter);
    r.links.iter_mut().for_each(bound_link);
    r.labels.iter_mut().for_each(bound_label);
    if r.named_env
        .as_ref()
        .is_some_and(|v| json_len(v) > MAX_NAMED_ENV_JSON)
    {
        r.named_env = None;
    }
}

/// [`bound_result`] for every result of a batch.
pub(crate) fn bound_results(results: &mut [UploadTestResult]) -> ServerResult<()> {
    results
        .iter_mut()
        .enumerate()
        .try_for_each(|(i, r)| bound_result(i, r))
}

/// Cuts the texts of fixtures; refuses one whose JSON stays too large.
pub(crate) fn bound_fixtures(fixtures: &mut [UploadFixture]) -> ServerResult<()> {
    for (i, f) in fixtures.iter_mut().enumerate() {
        cut(&mut f.kind, MAX_SHORT);
        cut(&mut f.uuid, MAX_SHORT);
        cut(&mut f.name, MAX_NAME);
        cut_opt(&mut f.status, MAX_SHORT);
        cut_opt(&mut f.message, MAX_TEXT);
        cut_opt(&mut f.trace, MAX_TEXT);
        bound_steps(&mut f.steps);
        f.attachments.iter_mut().for_each(bound_attachment);
        let len = json_len(f);
        if len > MAX_STORED_JSON {
            return Err(too_large(format!("fixtures[{i}]"), len));
        }
    }
    Ok(())
}

fn count(field: &str, n: usize, max: usize) -> ServerResult<()> {
    if n > max {
        return Err(ServerError::bad(format!(
            "field `{field}` has {n} entries; at most {max} are accepted"
        )));
    }
    Ok(())
}

fn bound_parameters(field: &str, ps: &mut [ParameterDto]) -> ServerResult<()> {
    count(field, ps.len(), MAX_LIST)?;
    for p in ps {
        cut(&mut p.name, MAX_NAME);
        cut_opt(&mut p.value, MAX_LONG);
        cut_opt(&mut p.default_value, MAX_LONG);
    }
    Ok(())
}

/// Bounds of `POST /api/upload/start`.
pub(crate) fn bound_start(req: &mut ExternalRunStart) -> ServerResult<()> {
    if let Some(ci) = &mut req.ci {
        cut_opt(&mut ci.kind, MAX_SHORT);
        cut_opt(&mut ci.name, MAX_SHORT);
        cut_opt(&mut ci.endpoint, MAX_LONG);
    }
    for (field, job) in [("job", &mut req.job), ("jobRun", &mut req.job_run)] {
        cut_opt(&mut job.name, MAX_NAME);
        cut_opt(&mut job.url, MAX_LONG);
        if job.uid.len() > 1024 {
            return Err(ServerError::bad(format!(
                "field `{field}.uid` is longer than 1024 bytes"
            )));
        }
        bound_parameters(&format!("{field}.parameters"), &mut job.parameters)?;
    }
    if let Some(l) = &mut req.launch {
        cut_opt(&mut l.name, MAX_NAME);
        count("launch.tags", l.tags.len(), MAX_LIST)?;
        l.tags.iter_mut().for_each(|t| cut(t, MAX_SHORT));
    }
    Ok(())
}

/// Bounds of `POST /api/launch`.
pub(crate) fn bound_launch(req: &mut LaunchCreate) -> ServerResult<()> {
    cut(&mut req.name, MAX_NAME);
    count("tags", req.tags.len(), MAX_LIST)?;
    req.tags.iter_mut().for_each(|t| cut(t, MAX_SHORT));
    count("links", req.links.len(), MAX_LIST)?;
    req.links.iter_mut().for_each(bound_link);
    count("issues", req.issues.len(), MAX_LIST)?;
    for (i, issue) in req.issues.iter().enumerate() {
        let len = json_len(issue);
        if len > MAX_ISSUE_JSON {
            return Err(ServerError::bad(format!(
                "field `issues[{i}]` is {len} bytes of JSON; at most {MAX_ISSUE_JSON} are accepted"
            )));
        }
    }
    Ok(())
}

/// Bounds of a session environment: at most [`MAX_LIST`] entries are kept,
/// keys and values are cut.
/// Bounds the CI identity of a session; its run link must be an `http(s)` URL.
pub(crate) fn bound_session_ci(ci: &mut Option<onelaunch_api::SessionCi>) -> ServerResult<()> {
    let Some(c) = ci else { return Ok(()) };
    cut_opt(&mut c.kind, MAX_SHORT);
    cut_opt(&mut c.job_name, MAX_LONG);
    cut_opt(&mut c.run_name, MAX_LONG);
    cut_opt(&mut c.run_url, MAX_LONG);
    if let Some(u) = &c.run_url {
        let lower = u.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(ServerError::bad(
                "field `ci.runUrl`: expected an http:// or https:// URL",
            ));
        }
    }
    Ok(())
}

pub(crate) fn bound_environment(env: &mut Vec<KeyValue>) {
    env.truncate(MAX_LIST * 4);
    for kv in env.iter_mut() {
        cut(&mut kv.key, MAX_SHORT);
        cut(&mut kv.value, MAX_LONG);
    }
}

/// Bounds of the bulk endpoints' items.
pub(crate) fn bound_bulk(items: &[serde_json::Value]) -> ServerResult<()> {
    count("items", items.len(), MAX_LIST)
}

/// Checks a multipart part's file name; the error says what is wrong and
/// shows the name escaped (it may hold a newline).
pub(crate) fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a multipart part needs a file name".into());
    }
    if name.len() > MAX_FILE_NAME {
        return Err(format!(
            "file name {:?}… is longer than {MAX_FILE_NAME} bytes",
            clip(name, 64)
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "file name {name:?} contains a control character (newline, tab, NUL, ...)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body larger than the budget takes all of it; the next one waits for
    /// room, and past its wait is a 503 `busy`, not an error of the body.
    #[tokio::test]
    async fn decoding_shares_wait_for_room_then_answer_busy() {
        use crate::blobs::Sender;
        let decoding = Room::decoding(Duration::from_millis(50));
        let total = DECODE_BUDGET / 1024;
        // A body larger than a project's half takes the half.
        let one = decoding
            .share(Sender::of(Some(1)), DECODE_BUDGET)
            .await
            .unwrap();
        assert_eq!(decoding.available_kib(), total / 2);
        let refused = decoding.share(Sender::of(Some(1)), 1).await.unwrap_err();
        assert!(matches!(refused, ServerError::Busy(_)), "{refused:?}");
        // Another project has the other half; then nobody has room.
        let two = decoding
            .share(Sender::of(Some(2)), DECODE_BUDGET / 2)
            .await
            .unwrap();
        assert_eq!(decoding.available_kib(), 0);
        let refused = decoding.share(Sender::of(Some(3)), 1).await.unwrap_err();
        assert!(matches!(refused, ServerError::Busy(_)), "{refused:?}");
        drop((one, two));
        // Admin tokens hold one half likewise.
        let admins = decoding
            .share(Sender::admin(), DECODE_BUDGET)
            .await
            .unwrap();
        assert_eq!(decoding.available_kib(), total / 2);
        let refused = decoding.share(Sender::admin(), 1).await.unwrap_err();
        assert!(matches!(refused, ServerError::Busy(_)), "{refused:?}");
        drop(admins);
        let small = decoding.share(Sender::of(Some(1)), 1).await.unwrap();
        assert_eq!(decoding.available_kib(), total - 1);
        drop(small);
    }

    #[test]
    fn short_texts_are_cut_on_character_boundaries_at_any_depth() {
        // Labels, statuses, step kinds and parameters are held inline when
        // short; long ones are cut as any other text, at a character boundary.
        let step = |steps| UploadStep {
            kind: "k".repeat(300).into(),
            status: Some("é".repeat(200).into()),
            parameters: vec![UploadParameter {
                name: "p".repeat(MAX_NAME + 1).into(),
                value: "v".into(),
                ..Default::default()
            }],
            steps,
            ..Default::default()
        };
        let mut r = UploadTestResult {
            uuid: "u".into(),
            status: Some("€".repeat(100).into()),
            labels: vec![
                LabelDto {
                    name: "suite".into(),
                    value: "é".repeat(MAX_LONG).into(),
                },
                LabelDto {
                    name: "host".into(),
                    value: "runner-1".into(),
                },
            ],
            steps: vec![step(vec![step(vec![step(Vec::new())])]), step(Vec::new())],
            ..Default::default()
        };
        bound_result(0, &mut r).unwrap();
        // 255 bytes of three-byte characters: 85 of them.
        assert_eq!(r.status.as_deref(), Some("€".repeat(85).as_str()));
        assert_eq!(r.labels[0].value, "é".repeat(MAX_LONG / 2));
        assert_eq!(r.labels[1].value, "runner-1");
        let mut depth = 0;
        let mut level = &r.steps;
        while let Some(s) = level.first() {
            assert_eq!(s.kind.len(), MAX_SHORT, "depth {depth}");
            assert_eq!(s.status.as_deref(), Some("é".repeat(127).as_str()));
            assert_eq!(s.parameters[0].name.len(), MAX_NAME);
            assert_eq!(s.parameters[0].value, "v");
            level = &s.steps;
            depth += 1;
        }
        assert_eq!(depth, 3);
        assert_eq!(r.steps[1].kind.len(), MAX_SHORT);
        assert_eq!(json_len(&r), serde_json::to_string(&r).unwrap().len());
    }

    #[test]
    fn long_texts_are_cut_and_huge_results_refused() {
        let mut r = UploadTestResult {
            uuid: "u".into(),
            name: "n".repeat(5000),
            message: Some("m".repeat(MAX_TEXT + 10)),
            labels: vec![LabelDto {
                name: "x".repeat(1000).into(),
                value: "v".into(),
            }],
            steps: vec![UploadStep {
                body: Some("s".repeat(MAX_STEP_BODY * 2)),
                steps: vec![UploadStep {
                    message: Some("é".repeat(MAX_TEXT)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        r.attachments = vec![UploadAttachment {
            name: "a\nb".into(),
            original_file_name: "x\r\ny.txt".into(),
            ..Default::default()
        }];
        bound_result(0, &mut r).unwrap();
        assert_eq!(r.attachments[0].name, "a_b");
        assert_eq!(r.attachments[0].original_file_name, "x__y.txt");
        assert_eq!(r.name.len(), MAX_NAME);
        assert_eq!(r.message.as_ref().unwrap().len(), MAX_TEXT);
        assert_eq!(r.labels[0].name.len(), MAX_SHORT);
        assert_eq!(r.steps[0].body.as_ref().unwrap().len(), MAX_STEP_BODY);
        assert!(r.steps[0].steps[0].message.as_ref().unwrap().len() <= MAX_TEXT);

        let mut big = UploadTestResult {
            uuid: "big".into(),
            labels: (0..MAX_STORED_JSON / 20)
                .map(|i| LabelDto {
                    name: format!("l{i}").into(),
                    value: "0123456789".into(),
                })
                .collect(),
            ..Default::default()
        };
        let e = bound_results(&mut [UploadTestResult::default(), big.clone()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("results[1]") && e.contains("\"big\""), "{e}");
        big.labels.truncate(10);
        bound_result(0, &mut big).unwrap();
    }

    #[test]
    fn file_names_with_control_characters_are_refused() {
        assert!(check_file_name("a-result.json").is_ok());
        assert!(check_file_name("../x.txt").is_ok());
        for bad in ["", "a\nb.txt", "a\rb", "nul\0.txt", "tab\t.txt"] {
            let e = check_file_name(bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(check_file_name(&"x".repeat(MAX_FILE_NAME + 1)).is_err());
    }

    #[test]
    fn json_len_matches_serialisation() {
        let r = UploadTestResult {
            uuid: "a\"b".into(),
            ..Default::default()
        };
        assert_eq!(json_len(&r), serde_json::to_vec(&r).unwrap().len());
    }
}
