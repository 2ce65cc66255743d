//! Everything a client sends into a launch passes through here. Request bodies
//! are decoded and bounded first (`decode`, `limits`); then every write goes
//! through one of the functions below, which apply the rules every write must
//! follow inside the write's own transaction:
//!
//! * **New data needs an open launch.** Sessions, results (JSON or raw files)
//!   and manual results are refused with `launch_closed` when the launch is
//!   closed; the check runs in the same transaction as the insert, so a close
//!   that races with an upload either comes first (the upload is refused and
//!   the client keeps it: spool, exit 8) or after (the upload is in).
//! * **What completes an accepted result is never lost.** Attachments and
//!   fixtures of a result that was accepted (before the close) are stored even
//!   when the launch has been closed since: they are the rest of a result the
//!   launch already shows, not new results. The same holds for the non-result
//!   files of a raw upload (attachments, containers). A launch-level attachment
//!   is new data and needs an open launch.
//! * **Every write is launch activity.** It moves the launch's `modified_ms`
//!   (at most once a second) in the same transaction, so `--launch-idle-close`
//!   never closes a launch that is being written to, including by a tester
//!   recording manual results.

pub(crate) mod combine;
pub(crate) mod decode;
pub(crate) mod held;
pub(crate) mod limits;
pub(crate) mod test_cases;

use std::sync::Arc;

use futures::Stream;
use onelaunch_api::{self as api, Id};

use crate::blobs::BlobStore;
pub(crate) use crate::blobs::{Buffered, Sender, Share, Stored};
use crate::content;
use crate::db::results::{ResultOwner, SessionRow};
use crate::db::{self, Db};
use crate::error::{ServerError, ServerResult};

/// An attachment of the launch as a whole (`/api/launch/attachment`, the
/// Allure 3 plugin's global attachments): new data, so the launch must be
/// open (checked before the bytes are received and again when they are in).
/// Its bytes are stored (`content::keep` for a small body) and it is kept
/// with the launch's globals (errors and attachments outside tests), through
/// a session of its own (closed from the start); the same bytes under the
/// same name are kept once.
pub(crate) async fn launch_attachment<S, B, E>(
    db: &Db,
    blobs: &BlobStore,
    sender: Sender,
    launch: &db::launches::LaunchRow,
    name: &str,
    content_type: Option<&str>,
    chunks: S,
) -> ServerResult<()>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    ServerError: From<E>,
{
    limits::check_file_name(name).map_err(ServerError::bad)?;
    {
        // No write connection is held while the body streams in.
        let mut conn = db.write.acquire().await?;
        db::launches::ensure_open(&mut conn, launch.id).await?;
    }
    let stored = blobs.receive(sender, chunks).await?;
    let mut tx = db.write.begin().await?;
    db::launches::ensure_open(&mut tx, launch.id).await?;
    let session = launch_level_session(&mut tx, launch).await?;
    content::keep(&mut tx, [&stored]).await?;
    db::results::put_session_file(
        &mut tx,
        session.id,
        name,
        "file",
        &stored.sha256,
        stored.len as i64,
        content_type,
    )
    .await?;
    let globals = onelaunch_model::allure::Globals {
        errors: Vec::new(),
        attachments: vec![onelaunch_model::allure::GlobalAttachment {
            name: name.to_string(),
            source: name.to_string(),
            r#type: content_type.map(str::to_string),
            timestamp: Some(db::now_ms()),
            environment: None,
        }],
    };
    let key = format!("launch-attachment-{}.json", digest(&[name, &stored.sha256]));
    db::globals::insert(&mut tx, &session, &key, &globals).await?;
    db::globals::resolve_attachments(&mut tx, &session).await?;
    db::launches::touch(&mut tx, launch.id).await?;
    tx.commit().await?;
    crate::metrics::attachment_ingested(stored.len);
    Ok(())
}

/// Errors of the launch as a whole (`/api/launch/error/bulk`, the Allure 3
/// plugin's global errors), kept with the launch's globals; the same error
/// sent again is kept once. Answers how many were new.
pub(crate) async fn launch_errors(
    db: &Db,
    launch: &db::launches::LaunchRow,
    errors: &[onelaunch_model::allure::GlobalError],
) -> ServerResult<usize> {
    let mut tx = db.write.begin().await?;
    db::launches::ensure_open(&mut tx, launch.id).await?;
    let session = launch_level_session(&mut tx, launch).await?;
    let mut new = 0;
    for e in errors {
        let key = format!(
            "launch-error-{}.json",
            digest(&[
                e.message.as_deref().unwrap_or(""),
                e.trace.as_deref().unwrap_or(""),
                &e.timestamp.unwrap_or(0).to_string(),
            ])
        );
        let one = onelaunch_model::allure::Globals {
            errors: vec![e.clone()],
            attachments: Vec::new(),
        };
        new += db::globals::insert(&mut tx, &session, &key, &one).await?;
    }
    db::launches::touch(&mut tx, launch.id).await?;
    tx.commit().await?;
    Ok(new)
}

/// A session for what a client sends about the launch as a whole: in no job
/// run, closed from the start (nothing is in flight).
async fn launch_level_session(
    conn: &mut sqlx::AnyConnection,
    launch: &db::launches::LaunchRow,
) -> ServerResult<SessionRow> {
    db::results::create_session(conn, launch.project_id, launch.id, None, &[], None, false).await
}

/// 32 hex digits identifying some parts (file keys of launch-level globals).
fn digest(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Receives a body (streamed to the blob store's disk, hashed on the
/// way; a small body stays in memory until it is recorded); the functions
/// below record what was received, and keep a small body's bytes in the
/// database in the same transaction (`content::keep`).
///
/// `sender` is who sends it: one project's requests hold at most half of the
/// store's intake (`blobs::intake`).
pub(crate) async fn receive<S, B, E>(
    blobs: &BlobStore,
    sender: Sender,
    chunks: S,
) -> ServerResult<Stored>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    ServerError: From<E>,
{
    blobs.receive(sender, chunks).await
}

/// The bytes of a body just [`receive`]d, before it is recorded (a container
/// checked for parsing): in memory when small, read back (verified) from its
/// file otherwise.
pub(crate) async fn received_bytes(blobs: &BlobStore, stored: &Stored) -> ServerResult<Vec<u8>> {
    match stored.inline() {
        Some(bytes) => Ok(bytes.to_vec()),
        None => Ok(blobs.get_file(&stored.sha256).await?.unwrap_or_default()),
    }
}

/// Reads a raw result file into memory, within the server's budget for
/// bodies held in memory (503 `busy` when it is spent); `holding`: its
/// request holds the shares of files read before it.
pub(crate) async fn buffer<S, B, E>(
    blobs: &BlobStore,
    sender: Sender,
    chunks: S,
    holding: bool,
) -> ServerResult<Buffered>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    ServerError: From<E>,
{
    blobs.buffer(sender, chunks, holding).await
}

/// Opens an upload session in a launch (and job run); `ci` is who opens it
/// (bounded by `limits::bound_session_ci`). A `track`ed session is in flight
/// until its client closes it ([`close_session`]).
pub(crate) async fn open_session(
    db: &Db,
    launch: &db::launches::LaunchRow,
    job_run_id: Option<Id>,
    environment: &[api::KeyValue],
    ci: Option<&api::SessionCi>,
    track: bool,
) -> ServerResult<SessionRow> {
    let mut tx = db.write.begin().await?;
    db::launches::ensure_open(&mut tx, launch.id).await?;
    let session = db::results::create_session(
        &mut tx,
        launch.project_id,
        launch.id,
        job_run_id,
        environment,
        ci,
        track,
    )
    .await?;
    db::launches::touch(&mut tx, launch.id).await?;
    tx.commit().await?;
    Ok(session)
}

/// Closes an upload session: its upload ended (idempotent; also on a closed
/// launch, since it adds nothing to it). A job run only uploads created
/// ([`db::job_runs::JobRunRow::implicit`]) is finished, its status derived
/// from its results, when its last open session closes; any other job run
/// is finished by `job-run stop`.
pub(crate) async fn close_session(db: &Db, session: &SessionRow) -> ServerResult<()> {
    let mut tx = db.write.begin().await?;
    let closed = db::sessions::close_session(&mut tx, session.id).await?;
    let others = match session.job_run_id {
        Some(run) if closed => db::sessions::open_sessions_of_job_run(&mut tx, run).await?,
        _ => 1,
    };
    db::launches::touch(&mut tx, session.launch_id).await?;
    tx.commit().await?;
    if others == 0 {
        if let Some(run) = session.job_run_id {
            if let Some(run) = db::job_runs::get_job_run(db, run).await? {
                if run.implicit && run.stage != api::stage::FINISHED {
                    db::job_runs::stop_job_run(db, &run, None).await?;
                }
            }
        }
    }
    Ok(())
}

/// Launch activity inside a write's transaction, skipped when this process
/// moved it within the last second ([`db::Recent`]).
async fn touch(db: &Db, conn: &mut sqlx::AnyConnection, launch_id: Id) -> ServerResult<()> {
    if db.recent.launch_due(launch_id) {
        db::launches::touch(conn, launch_id).await?;
    }
    Ok(())
}

/// Refuses a batch whose uuids cannot be stored, naming the result.
fn check_uuids(results: &[api::UploadTestResult]) -> ServerResult<()> {
    for (i, r) in results.iter().enumerate() {
        if r.uuid.trim().is_empty() {
            return Err(ServerError::bad(format!(
                "results[{i}].uuid must not be empty"
            )));
        }
        if r.uuid.len() > 255 {
            return Err(ServerError::bad(format!(
                "results[{i}].uuid is longer than 255 characters"
            )));
        }
    }
    Ok(())
}

/// Stores a batch of results of a session: idempotent by uuid (a re-sent batch
/// answers the same ids and adds nothing), test cases tracked from the new
/// ones, all in one transaction (on SQLite, shared with the other ingest
/// writes queued at the same time: [`db::group`]).
pub(crate) async fn results(
    db: &Db,
    session: &SessionRow,
    results: Vec<api::UploadTestResult>,
) -> ServerResult<Vec<api::ResultRef>> {
    Ok(results_counted(db, session, results).await?.0)
}

/// [`results`], also saying how many of them were new (stored by this call;
/// the others were already in the launch).
pub(crate) async fn results_counted(
    db: &Db,
    session: &SessionRow,
    results: Vec<api::UploadTestResult>,
) -> ServerResult<(Vec<api::ResultRef>, usize)> {
    check_uuids(&results)?;
    let weight = results.len();
    // Worked out here, in the request's task: the writer's turn is for the
    // statements (one writer at a time on SQLite). The facts first: the
    // prepared batch keeps only what its rows read (labels are not).
    let facts: Arc<Vec<_>> = Arc::new(results.iter().map(test_cases::case_facts).collect());
    let batch = Arc::new(db::results::ResultBatch::prepare(results, session.job_id)?);
    let (session, work_db) = (Arc::new(session.clone()), db.clone());
    // Run again from the start if its group is replayed (db::group).
    let (refs, new) = db::group::grouped(db, weight, move |conn| {
        let (db, session, batch, facts) = (
            work_db.clone(),
            session.clone(),
            batch.clone(),
            facts.clone(),
        );
        Box::pin(async move {
            let (db, session) = (&db, &*session);
            db::launches::ensure_open(conn, session.launch_id).await?;
            let (refs, new) = db::results::insert_results(conn, session, &batch).await?;
            let results = batch.results();
            if db.recent.session_due(session.id) {
                db::sessions::session_seen(conn, session.id).await?;
            }
            let tracked: Vec<(Id, &api::UploadTestResult, &db::test_cases::CaseFacts)> = new
                .iter()
                .map(|&(id, i)| (id, &results[i], &facts[i]))
                .collect();
            test_cases::track_test_cases(conn, session, &tracked).await?;
            if let (Some(run), false) = (session.job_run_id, new.is_empty()) {
                // A finished job run whose status its results gave (a shard's
                // results after the finish step, say) takes the status its
                // results give now.
                db::job_runs::rederive_finished(conn, run).await?;
            }
            touch(db, conn, session.launch_id).await?;
            Ok((refs, new.len()))
        })
    })
    .await?;
    db.settler.queued(new);
    crate::metrics::results_ingested(new);
    Ok((refs, new))
}

/// Records one attachment of an accepted result whose bytes were
/// [`receive`]d (content-addressed, idempotent): the row pointing at them.
/// Accepted after the launch closed (see the module documentation).
pub(crate) async fn attachment(
    db: &Db,
    owner: &ResultOwner,
    file_name: &str,
    content_type: Option<&str>,
    stored: &Stored,
) -> ServerResult<()> {
    limits::check_file_name(file_name).map_err(ServerError::bad)?;
    let row = [db::result_rows::AttachmentBytes {
        result_id: owner.id,
        file_name,
        content_type,
        size: stored.len as i64,
        sha256: &stored.sha256,
    }];
    let due = db.recent.launch_due(owner.launch_id);
    if due || stored.inline().is_some() {
        let mut tx = db.write.begin().await?;
        content::keep(&mut tx, [stored]).await?;
        db::result_rows::put_attachments(&mut tx, &row).await?;
        if due {
            db::launches::touch(&mut tx, owner.launch_id).await?;
        }
        tx.commit().await?;
    } else {
        // One statement: its own transaction.
        let mut conn = db.write.acquire().await?;
        db::result_rows::put_attachments(&mut conn, &row).await?;
    }
    crate::metrics::attachment_ingested(stored.len);
    Ok(())
}

/// An attachment of a bulk upload whose bytes were [`receive`]d, for
/// [`attachments`].
#[derive(Debug)]
pub(crate) struct ReceivedAttachment {
    pub(crate) owner: ResultOwner,
    pub(crate) file_name: String,
    pub(crate) content_type: Option<String>,
    pub(crate) stored: Stored,
}

/// Records the attachments of several accepted results in one transaction
/// (one multi-row statement per [`db::result_rows::ATTACHMENT_ROWS`]; on
/// SQLite shared with the other ingest writes queued at the same time:
/// [`db::group`]), as [`attachment`] does for one. The bytes stay held until
/// it is committed.
pub(crate) async fn attachments(db: &Db, received: Vec<ReceivedAttachment>) -> ServerResult<()> {
    if received.is_empty() {
        return Ok(());
    }
    let weight = received.len();
    let work_db = db.clone();
    // The work hands the attachments back: what holds their bytes is
    // dropped only after the commit (and kept for a replay, db::group).
    let received = Arc::new(received);
    let received = db::group::grouped(db, weight, move |conn| {
        let (work_db, received) = (work_db.clone(), received.clone());
        Box::pin(async move {
            let rows: Vec<db::result_rows::AttachmentBytes<'_>> = received
                .iter()
                .map(|a| db::result_rows::AttachmentBytes {
                    result_id: a.owner.id,
                    file_name: &a.file_name,
                    content_type: a.content_type.as_deref(),
                    size: a.stored.len as i64,
                    sha256: &a.stored.sha256,
                })
                .collect();
            let mut launches: Vec<Id> = received.iter().map(|a| a.owner.launch_id).collect();
            launches.sort_unstable();
            launches.dedup();
            content::keep(conn, received.iter().map(|a| &a.stored)).await?;
            db::result_rows::put_attachments(conn, &rows).await?;
            for launch in launches {
                touch(&work_db, conn, launch).await?;
            }
            drop(rows);
            Ok(received)
        })
    })
    .await?;
    for a in received.iter() {
        crate::metrics::attachment_ingested(a.stored.len);
    }
    Ok(())
}

/// Stores the fixtures of an accepted result (idempotent by fixture uuid).
/// Accepted after the launch closed (see the module documentation).
pub(crate) async fn fixtures(
    db: &Db,
    owner: &ResultOwner,
    fixtures: &[api::UploadFixture],
) -> ServerResult<Vec<Id>> {
    let mut tx = db.write.begin().await?;
    let ids = db::results::put_fixtures(&mut tx, owner.id, fixtures).await?;
    touch(db, &mut tx, owner.launch_id).await?;
    tx.commit().await?;
    Ok(ids)
}

/// Stores the errors and attachments of one `*-globals.json` file of a session
/// (idempotent by launch and file name, like results by uuid): new data, so the launch must be
/// open, like results. Attachments named by the file are linked to the
/// session's files of that name when they are (or once they are) stored.
/// Answers how many errors were new.
pub(crate) async fn globals(
    db: &Db,
    session: &SessionRow,
    file_name: &str,
    globals: &onelaunch_model::allure::Globals,
) -> ServerResult<usize> {
    limits::check_file_name(file_name).map_err(ServerError::bad)?;
    let mut tx = db.write.begin().await?;
    db::launches::ensure_open(&mut tx, session.launch_id).await?;
    let new = db::globals::insert(&mut tx, session, file_name, globals).await?;
    db::globals::resolve_attachments(&mut tx, session).await?;
    db::launches::touch(&mut tx, session.launch_id).await?;
    tx.commit().await?;
    Ok(new)
}

/// Kind of a raw upload file that is not a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionFileKind {
    /// An Allure container (fixtures of the session's results).
    Container,
    /// Anything else: matched to attachment references by file name.
    File,
}

/// Keeps a raw upload file that is not a result (an attachment or a
/// container), [`receive`]d into the blob store, in its session.
pub(crate) async fn session_file(
    db: &Db,
    session: &SessionRow,
    name: &str,
    kind: SessionFileKind,
    content_type: Option<&str>,
    stored: &Stored,
) -> ServerResult<()> {
    let (kind, content_type) = match kind {
        SessionFileKind::Container => ("container", None),
        SessionFileKind::File => ("file", content_type),
    };
    let mut tx = db.write.begin().await?;
    if db.recent.session_due(session.id) {
        db::sessions::session_seen(&mut tx, session.id).await?;
    }
    content::keep(&mut tx, [stored]).await?;
    db::results::put_session_file(
        &mut tx,
        session.id,
        name,
        kind,
        &stored.sha256,
        stored.len as i64,
        content_type,
    )
    .await?;
    tx.commit().await?;
    crate::metrics::session_file_ingested(kind, stored.len);
    Ok(())
}

/// Keeps a text attachment made from a JUnit report's captured output
/// (`<system-out>`, `<system-err>`) as a file of the session, under the
/// name its results refer to.
pub(crate) async fn generated_file(
    db: &Db,
    blobs: &BlobStore,
    sender: Sender,
    session: &SessionRow,
    g: &onelaunch_model::GeneratedAttachment,
) -> ServerResult<()> {
    let one = futures::stream::iter([Ok::<_, ServerError>(g.content.as_bytes())]);
    let stored = blobs.receive(sender, one).await?;
    session_file(
        db,
        session,
        &g.source,
        SessionFileKind::File,
        Some("text/plain"),
        &stored,
    )
    .await
}

/// Ends a raw upload: applies the session's containers (fixtures) to its
/// results, links declared attachments to the session's files by name, and
/// records activity — in one transaction.
pub(crate) async fn finish_raw_upload(
    db: &Db,
    blobs: &BlobStore,
    session: &SessionRow,
) -> ServerResult<()> {
    let mut containers = Vec::new();
    for (_, sha) in db::results::session_files(db, session.id, "container").await? {
        if let Some(bytes) = content::get(db, blobs, &sha).await? {
            if let Ok(c) = onelaunch_model::parse_container(&bytes) {
                containers.push(c);
            }
        }
    }
    let by_result = onelaunch_model::fixtures_by_result(&containers);
    let uuids: Vec<String> = by_result.keys().cloned().collect();
    let owners = db::results::result_ids_by_uuid(db, session.launch_id, &uuids).await?;
    let mut tx = db.write.begin().await?;
    for (uuid, id) in owners {
        if let Some(fx) = by_result.get(&uuid) {
            db::results::put_fixtures(&mut tx, id, fx).await?;
            for f in fx {
                for src in onelaunch_model::fixture_attachment_sources(f) {
                    db::results::put_attachment_ref(&mut tx, id, &src).await?;
                }
            }
        }
    }
    db::results::resolve_session_attachments(&mut tx, session.id).await?;
    db::globals::resolve_attachments(&mut tx, session).await?;
    db::launches::touch(&mut tx, session.launch_id).await?;
    tx.commit().await?;
    Ok(())
}

/// Records activity on a launch outside another write (a job run started,
/// joined or stopped).
pub(crate) async fn activity(db: &Db, launch_id: Id) -> ServerResult<()> {
    let mut conn = db.write.acquire().await?;
    db::launches::touch(&mut conn, launch_id).await
}

/// Which test case a manual result belongs to.
#[derive(Debug)]
pub(crate) enum ManualCase {
    /// A known case of the launch's project.
    Known(Id),
    /// A case named by the tester; created when new.
    Named(db::test_cases::CaseFacts),
}

/// One manual result, validated by `server_led::manual`, ready to store.
#[derive(Debug)]
pub(crate) struct ManualEntry {
    pub(crate) case: ManualCase,
    pub(crate) result: db::results::ManualResultRow,
}

/// Stores manual results (validated by `server_led::manual`) into a launch,
/// outside any job run, in one transaction: the launch must be open, the
/// results get a session of their own, each case's last status moves forward,
/// and the launch records activity (a tester at work keeps it from idle close).
pub(crate) async fn manual_results(
    db: &Db,
    launch: &db::launches::LaunchRow,
    entries: &[ManualEntry],
) -> ServerResult<Vec<api::ManualResultDto>> {
    let mut tx = db.write.begin().await?;
    db::launches::ensure_open(&mut tx, launch.id).await?;
    let session = db::results::create_session(
        &mut tx,
        launch.project_id,
        launch.id,
        None,
        &[],
        None,
        false,
    )
    .await?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let r = &e.result;
        let case_id = match &e.case {
            ManualCase::Known(id) => *id,
            ManualCase::Named(facts) => {
                db::test_cases::upsert_cases(&mut tx, launch.project_id, &[facts])
                    .await?
                    .ids[0]
            }
        };
        let id = db::results::insert_manual_result(&mut tx, &session, case_id, r).await?;
        // The case's last status moves forward (never back to an older
        // result); written at once (a tester's few results need no queue).
        let attempt = db::case_last::Attempt {
            case_id,
            status: r.status,
            start: r.at_ms,
            result_id: id,
            job_id: None,
        };
        db::case_last::note_attempts(&mut tx, &[attempt], None).await?;
        out.push(api::ManualResultDto {
            id,
            test_case_id: case_id,
            name: r.name.clone(),
            status: r.status.to_string(),
            message: r.message.clone(),
            created_date: r.at_ms,
            assignee: r.recorded_by.clone(),
            duration_ms: r.duration_ms,
        });
    }
    db::launches::touch(&mut tx, launch.id).await?;
    tx.commit().await?;
    db.settler.stored(out.len());
    Ok(out)
}

/// Gives manual cases of a launch to people (`None`: takes one back), cases
/// validated by `server_led::manual`, in one transaction: the launch must be
/// open, and assigning counts as activity.
pub(crate) async fn manual_assign(
    db: &Db,
    project_id: Id,
    launch_id: Id,
    assignments: &[(Id, Option<String>)],
    by: Option<&str>,
) -> ServerResult<()> {
    let mut tx = db.write.begin().await?;
    db::launches::ensure_open(&mut tx, launch_id).await?;
    for (case_id, assignee) in assignments {
        db::manual::set_assignment(
            &mut tx,
            project_id,
            launch_id,
            *case_id,
            assignee.as_deref(),
            by,
        )
        .await?;
    }
    db::launches::touch(&mut tx, launch_id).await?;
    tx.commit().await?;
    Ok(())
}
