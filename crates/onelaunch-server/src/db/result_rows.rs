//! A batch of uploaded results into `test_results` (and the attachment rows
//! they declare) in a few multi-row statements: one `INSERT … ON CONFLICT
//! (launch_id, uuid) DO NOTHING` per [`INSERT_ROWS`] results (`RETURNING id,
//! uuid` on PostgreSQL; on SQLite the rows inserted are read back as a range
//! of ids, see [`insert_results`]), one lookup for the uuids already stored
//! (a re-sent batch), one `INSERT` per [`ATTACHMENT_ROWS`] declared
//! attachments. Each statement's text depends only on how many rows it
//! carries, so full chunks reuse one prepared statement from the
//! connection's cache.

use std::collections::{HashMap, HashSet};

use onelaunch_api::{self as api, Id};
use sqlx::{AnyConnection, Row};

use super::results::SessionRow;
use super::*;
use crate::error::ServerResult;

/// Results written by one statement: 18 parameters each, 3,600 in all, well
/// under SQLite's 32,766 and PostgreSQL's 65,535.
pub(crate) const INSERT_ROWS: usize = 200;

/// Attachment rows written by one statement (6 parameters each).
pub(crate) const ATTACHMENT_ROWS: usize = 500;

/// Uuids looked up by one statement.
const LOOKUP_ROWS: usize = 500;

/// Moves the attachments of `steps` into `out`: each step's, then those of
/// its own steps.
fn take_step_attachments(steps: Vec<api::UploadStep>, out: &mut Vec<api::UploadAttachment>) {
    for s in steps {
        out.extend(s.attachment);
        take_step_attachments(s.steps, out);
    }
}

/// The key that makes results attempts of one test: the `historyId` (else the
/// uuid), within the job that ran it. The same test run by two jobs of a
/// launch (a Linux GitHub job and a Windows GitLab job) gives two results,
/// each with its own status; a re-run of the same job (a CI re-run, a
/// server-led rerun) adds attempts. Results outside job runs keep the bare key
/// (migration 0011 moved stored keys to this form).
pub(crate) fn attempt_key(job: Option<Id>, r: &api::UploadTestResult) -> String {
    let key = r
        .history_id
        .as_deref()
        .filter(|h| !h.is_empty())
        .unwrap_or(&r.uuid);
    match job {
        // Joined, not formatted: it runs once per result, and `format!`'s
        // machinery took about 1,200 instructions a call.
        Some(job) => ["job:", itoa::Buffer::new().format(job), "|", key].concat(),
        None => key.to_string(),
    }
}

/// Inserts results of a session (inside the caller's transaction). A uuid already
/// stored in the launch is not inserted again: its id is returned, so a
/// re-sent batch answers the same ids and adds nothing; a uuid repeated within
/// the batch is stored once, by its first occurrence. Returns the references
/// in the order given and `(id, index)` of the results that are new.
///
/// Rows go in uuid order so concurrent batches (other replicas) take row
/// locks in the same order and cannot deadlock.
///
/// PostgreSQL: `INSERT … ON CONFLICT DO NOTHING RETURNING id, uuid` says
/// which rows the statement stored, whatever other replicas insert
/// concurrently. SQLite runs a `RETURNING` clause as a trigger program per
/// row; there the rows go in without it, and the rows inserted are those
/// with an id above the table's last id before the insert ([`last_id`]),
/// read back as a range of ids; when every row sent was inserted (all of
/// them new), nothing is read back: an `AUTOINCREMENT` insert numbers its
/// rows in the order its `VALUES` lists them (a row left out by the conflict
/// clause still takes a number, so only then is the range without gaps). Either way the
/// uuids not inserted (already in the launch) are then looked up.
pub(crate) async fn insert_results(
    conn: &mut AnyConnection,
    session: &SessionRow,
    batch: &ResultBatch,
) -> ServerResult<(Vec<api::ResultRef>, Vec<(Id, usize)>)> {
    let sqlite = conn.backend_name() == "SQLite";
    hold_owners(conn, session).await?;
    let now = now_ms();
    let (results, order) = (batch.results.as_slice(), &batch.order);
    // uuid -> (id, inserted by this call)
    let mut ids: HashMap<&str, (Id, bool)> = HashMap::with_capacity(order.len());
    if sqlite {
        let before = last_id(conn, "test_results").await?;
        let inserted = insert_rows(conn, session, batch, false, &mut ids).await?;
        if inserted == order.len() {
            // Every row sent was new (the usual batch): SQLite numbered them
            // after `before`, without gaps, in the order the statements
            // listed them. (A row not inserted still takes a number, so
            // this holds only when none was left out.)
            for (k, &i) in order.iter().enumerate() {
                ids.insert(results[i].uuid.as_str(), (before + 1 + k as Id, true));
            }
        } else {
            // The rows this call inserted: the ids after `before`, a range.
            let sent: HashSet<&str> = order.iter().map(|&i| results[i].uuid.as_str()).collect();
            for row in sqlx::query("SELECT id, uuid FROM test_results WHERE id > $1")
                .bind(before)
                .fetch_all(&mut *conn)
                .await?
            {
                let uuid: String = row.try_get("uuid")?;
                if let Some(u) = sent.get(uuid.as_str()) {
                    ids.insert(u, (row.try_get("id")?, true));
                }
            }
        }
    } else {
        insert_rows(conn, session, batch, true, &mut ids).await?;
    }
    // Uuids already in the launch: their stored ids.
    let known: Vec<&str> = order
        .iter()
        .map(|&i| results[i].uuid.as_str())
        .filter(|u| !ids.contains_key(u))
        .collect();
    lookup_uuids(conn, session.launch_id, &known, &mut ids).await?;
    let mut new: Vec<(Id, usize)> = Vec::new();
    for &i in order {
        if let Some(&(id, true)) = ids.get(results[i].uuid.as_str()) {
            new.push((id, i));
        }
    }
    insert_declared_attachments(conn, results, &new, now).await?;
    let mut refs = Vec::with_capacity(results.len());
    for r in results {
        let (id, _) = ids.get(r.uuid.as_str()).copied().ok_or_else(|| {
            crate::error::ServerError::Conflict(format!(
                "result {:?} changed concurrently; retry",
                r.uuid
            ))
        })?;
        refs.push(api::ResultRef {
            id,
            uuid: r.uuid.clone(),
        });
    }
    Ok((refs, new))
}

/// Makes sure the rows a result of `session` points at exist and stay until
/// the caller's transaction ends: its launch, session and job run (inside
/// the caller's transaction, before the results go in).
///
/// `test_results` has no foreign keys to them (migration 0023 on
/// PostgreSQL, 0028 on SQLite): checked per row, they were about half of
/// PostgreSQL's work for a batch of results (a trigger per row and per key,
/// each a `SELECT … FOR KEY SHARE` of the parent), and on SQLite a lookup per
/// row and key plus a statement journal for every multi-row insert. These two
/// statements per batch take their place. On PostgreSQL they lock the rows
/// `FOR KEY SHARE` (what each key's trigger took), the launch first. A launch
/// deletion locks the launch `FOR UPDATE` before anything else
/// ([`super::launches::lock_for_delete`]), so whichever comes second waits
/// for the other at the launch, holding nothing the other needs (no
/// deadlock): the deletion then deletes these results too, or this finds no
/// launch. On SQLite the transaction holds the database's one write lock, so
/// nothing can delete them before it ends. The project needs no check of its
/// own: the session must be of the launch's project, and the launch keeps
/// its own key to its project.
pub(crate) async fn hold_owners(
    conn: &mut AnyConnection,
    session: &SessionRow,
) -> ServerResult<()> {
    // SQLite has no row locks (nor this clause): its transaction holds the
    // one write lock.
    let lock = if conn.backend_name() == "SQLite" {
        ""
    } else {
        " FOR KEY SHARE"
    };
    let launch = sqlx::query(&format!(
        "SELECT id FROM launches WHERE id = $1 AND project_id = $2{lock}"
    ))
    .bind(session.launch_id)
    .bind(session.project_id)
    .fetch_optional(&mut *conn)
    .await?;
    if launch.is_none() {
        return Err(crate::error::ServerError::not_found(
            "launch",
            session.launch_id,
        ));
    }
    let sql = match session.job_run_id {
        None => format!(
            "SELECT s.id FROM sessions s \
             WHERE s.id = $1 AND s.launch_id = $2 AND s.project_id = $3 AND s.job_run_id IS NULL{lock}"
        ),
        Some(_) => format!(
            "SELECT s.id FROM sessions s JOIN job_runs r ON r.id = s.job_run_id \
             AND r.launch_id = s.launch_id \
             WHERE s.id = $1 AND s.launch_id = $2 AND s.project_id = $3 AND r.id = $4{lock}"
        ),
    };
    let mut q = sqlx::query(&sql)
        .bind(session.id)
        .bind(session.launch_id)
        .bind(session.project_id);
    if let Some(run) = session.job_run_id {
        q = q.bind(run);
    }
    match q.fetch_optional(&mut *conn).await? {
        Some(_) => Ok(()),
        None => Err(crate::error::ServerError::not_found("session", session.id)),
    }
}

/// The multi-row inserts of [`insert_results`] (`order`: indexes into
/// `results`, in uuid order); with `returning`, the rows stored are entered
/// in `ids` as new. Answers how many rows were inserted.
async fn insert_rows<'r>(
    conn: &mut AnyConnection,
    session: &SessionRow,
    batch: &'r ResultBatch,
    returning: bool,
    ids: &mut HashMap<&'r str, (Id, bool)>,
) -> ServerResult<usize> {
    let results = batch.results.as_slice();
    // Per row: the session's four columns, uuid … body, the time.
    const COLS: usize = 18;
    let now = now_ms();
    let mut inserted = 0;
    let name = if returning {
        "insert_results_returning"
    } else {
        "insert_results"
    };
    // The test keys, prepared with the batch for this session's job.
    let rekeyed: Vec<String>;
    let keys = if batch.job == session.job_id {
        &batch.keys
    } else {
        rekeyed = ResultBatch::keys(results, &batch.order, session.job_id);
        &rekeyed
    };
    for (c, chunk) in batch.order.chunks(INSERT_ROWS).enumerate() {
        let sql = shaped(conn, name, chunk.len(), |mut p, n| {
            format!(
                "{} INTO test_results (project_id, launch_id, job_run_id, session_id, uuid, test_key, \
                 history_id, test_case_id, name, full_name, status, message, trace, start_ms, stop_ms, \
                 duration_ms, body, created_ms) VALUES {} \
                 ON CONFLICT (launch_id, uuid) DO NOTHING{}",
                insert_or_fail(p.sqlite),
                p.rows(n, COLS),
                if returning { " RETURNING id, uuid" } else { "" }
            )
        });
        let mut q = with_room(&sql, chunk.len() * COLS);
        // `row`: the row's place in `order`, where its key and stored JSON are.
        for (&i, row) in chunk.iter().zip(c * INSERT_ROWS..) {
            let r = &results[i];
            let duration = r.duration.or(match (r.start, r.stop) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            });
            q = q
                .bind(session.project_id)
                .bind(session.launch_id)
                .bind(session.job_run_id)
                .bind(session.id)
                .bind(r.uuid.as_str())
                .bind(keys[row].as_str())
                .bind(cut_opt(&r.history_id, 1024))
                .bind(cut_opt(&r.test_case_id, 1024))
                .bind(cut(&r.name, MAX_NAME))
                .bind(cut_opt(&r.full_name, 4096))
                .bind(api::normalize_status(r.status.as_deref()))
                .bind(cut_opt(&r.message, MAX_TEXT))
                .bind(cut_opt(&r.trace, MAX_TEXT))
                .bind(r.start)
                .bind(r.stop)
                .bind(duration)
                .bind(batch.body(row))
                .bind(now);
        }
        if !returning {
            inserted += q.execute(&mut *conn).await?.rows_affected() as usize;
            continue;
        }
        let sent: HashSet<&'r str> = chunk.iter().map(|&i| results[i].uuid.as_str()).collect();
        for row in q.fetch_all(&mut *conn).await? {
            let uuid: String = row.try_get("uuid")?;
            let id: i64 = row.try_get("id")?;
            if let Some(u) = sent.get(uuid.as_str()) {
                ids.insert(u, (id, true));
                inserted += 1;
            }
        }
    }
    Ok(inserted)
}

/// A batch of results with what its rows need that the database has no say
/// in: the order they go in (by uuid, each uuid once, its first occurrence)
/// and each one's stored JSON. Prepared before the transaction, in the
/// request's own task, so the writer's turn (one at a time on SQLite) goes
/// to the statements.
///
/// Once each result's stored JSON is written, a result keeps only what the
/// writer's turn reads ([`shed`]): a batch waits for that turn holding its
/// bodies, not its results twice.
pub(crate) struct ResultBatch {
    /// The results, shed to their columns and declared attachments.
    results: Vec<api::UploadTestResult>,
    /// Indexes into `results`.
    order: Vec<usize>,
    /// The stored JSON of every row of `order`, one after another
    /// ([`ResultBatch::body`]). One buffer for the batch, not one `String`
    /// per row: a row's JSON grew through four or five reallocations
    /// (serde_json starts at 128 bytes) and kept up to twice its length in
    /// capacity while the batch waited for the writer.
    bodies: String,
    /// Where each row's stored JSON lies in `bodies`: row `k`'s is
    /// `body_bounds[k]..body_bounds[k + 1]` (the first bound is 0).
    body_bounds: Vec<usize>,
    /// The test key of each row of `order` ([`attempt_key`], for `job`).
    keys: Vec<String>,
    /// The job of the session the batch is prepared for.
    job: Option<Id>,
}

impl ResultBatch {
    /// Prepares `results` for a session of `job` (none: outside job runs);
    /// a 413 when a result's stored JSON is too large.
    pub(crate) fn prepare(
        results: Vec<api::UploadTestResult>,
        job: Option<Id>,
    ) -> ServerResult<Self> {
        let mut order: Vec<usize> = (0..results.len()).collect();
        order.sort_by(|a, b| results[*a].uuid.cmp(&results[*b].uuid));
        order.dedup_by(|a, b| results[*a].uuid == results[*b].uuid);
        let (bodies, body_bounds) = bodies(&results, &order)?;
        let keys = Self::keys(&results, &order, job);
        let results = results.into_iter().map(shed).collect();
        Ok(ResultBatch {
            results,
            order,
            bodies,
            body_bounds,
            keys,
            job,
        })
    }

    /// The stored JSON of row `k` of `order`.
    fn body(&self, k: usize) -> &str {
        &self.bodies[self.body_bounds[k]..self.body_bounds[k + 1]]
    }

    /// The test key of each row of `order`, for a session of `job`.
    fn keys(results: &[api::UploadTestResult], order: &[usize], job: Option<Id>) -> Vec<String> {
        order
            .iter()
            .map(|&i| clipped(attempt_key(job, &results[i]), 1024))
            .collect()
    }

    /// The results in the order sent (the indexes [`insert_results`] answers
    /// point here), [`shed`].
    pub(crate) fn results(&self) -> &[api::UploadTestResult] {
        &self.results
    }
}

/// A result reduced to what [`insert_results`] and the test cases' tracking
/// read once its stored JSON is written: its columns, and every attachment it
/// declares at the top level (its own, then those of its steps, in order).
/// Its steps, parameters, links, labels and descriptions are in the stored
/// JSON; the test case's labels in its `CaseFacts`, worked out before.
fn shed(r: api::UploadTestResult) -> api::UploadTestResult {
    let mut attachments = r.attachments;
    take_step_attachments(r.steps, &mut attachments);
    api::UploadTestResult {
        uuid: r.uuid,
        history_id: r.history_id,
        test_case_id: r.test_case_id,
        name: r.name,
        full_name: r.full_name,
        start: r.start,
        stop: r.stop,
        duration: r.duration,
        status: r.status,
        message: r.message,
        trace: r.trace,
        attachments,
        ..Default::default()
    }
}

/// The stored JSON of the rows of `order`, one after another, and the
/// bounds between them (0 first, then where each ends); a 413 naming a result (`results[i]`, its uuid) whose JSON is
/// over [`MAX_STORED_JSON`] (the caller cut its texts to their bounds).
fn bodies(
    results: &[api::UploadTestResult],
    order: &[usize],
) -> ServerResult<(String, Vec<usize>)> {
    let mut buf: Vec<u8> = Vec::new();
    let mut bounds = Vec::with_capacity(order.len() + 1);
    bounds.push(0);
    for (k, &i) in order.iter().enumerate() {
        let r = &results[i];
        let start = buf.len();
        if serde_json::to_writer(&mut buf, r).is_err() {
            buf.truncate(start);
            buf.extend_from_slice(b"{}");
        }
        let len = buf.len() - start;
        if len > MAX_STORED_JSON {
            return Err(result_too_large(i, &r.uuid, len));
        }
        bounds.push(buf.len());
        if k == 0 {
            buf.reserve(room_for_the_rest(len, order.len() - 1));
        }
    }
    buf.shrink_to_fit();
    // serde_json writes UTF-8; the check costs a fraction of a byte's copy.
    let bodies = String::from_utf8(buf).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a result's stored JSON is not UTF-8: {e}"),
        )
    })?;
    Ok((bodies, bounds))
}

/// Most room reserved at once for a batch's stored JSON ([`bodies`]); a
/// larger batch grows past it as it is written.
const BODIES_RESERVE: usize = 4 << 20;

/// The room [`bodies`] reserves for `rest` more rows after a first of
/// `first` bytes: as much again for each, for one more besides, at most
/// [`BODIES_RESERVE`] (a first row near the stored limit must not reserve
/// hundreds of times that).
fn room_for_the_rest(first: usize, rest: usize) -> usize {
    first
        .saturating_mul(rest.saturating_add(1))
        .min(BODIES_RESERVE)
}

/// The stored ids of `uuids` (results already in the launch), entered in `ids`.
async fn lookup_uuids<'r>(
    conn: &mut AnyConnection,
    launch_id: Id,
    uuids: &[&'r str],
    ids: &mut HashMap<&'r str, (Id, bool)>,
) -> ServerResult<()> {
    let sent: HashSet<&'r str> = uuids.iter().copied().collect();
    for chunk in uuids.chunks(LOOKUP_ROWS) {
        let sql = shaped(conn, "known_uuids", chunk.len(), |mut p, n| {
            format!(
                "SELECT id, uuid FROM test_results WHERE launch_id = {} AND uuid IN ({})",
                p.next(),
                p.list(n)
            )
        });
        let mut q = with_room(&sql, 1 + chunk.len()).bind(launch_id);
        for u in chunk {
            q = q.bind(*u);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let uuid: String = row.try_get("uuid")?;
            if let Some(u) = sent.get(uuid.as_str()) {
                ids.insert(u, (row.try_get("id")?, false));
            }
        }
    }
    Ok(())
}

/// The attachment rows (no bytes yet) the new results declare: [`shed`]
/// results, whose steps' attachments are at the top level.
async fn insert_declared_attachments(
    conn: &mut AnyConnection,
    results: &[api::UploadTestResult],
    new: &[(Id, usize)],
    now: i64,
) -> ServerResult<()> {
    const COLS: usize = 6;
    let rows: Vec<(Id, &api::UploadAttachment)> = new
        .iter()
        .flat_map(|&(id, i)| {
            results[i]
                .attachments
                .iter()
                .filter(|a| !a.original_file_name.is_empty())
                .map(move |a| (id, a))
        })
        .collect();
    for chunk in rows.chunks(ATTACHMENT_ROWS) {
        let sql = shaped(conn, "declared_attachments", chunk.len(), |mut p, n| {
            let values: Vec<String> = (0..n)
                .map(|_| format!("({}, NULL, {})", p.list(COLS - 1), p.next()))
                .collect();
            format!(
                "INSERT INTO attachments (test_result_id, file_name, name, content_type, size, sha256, created_ms) \
                 VALUES {} ON CONFLICT (test_result_id, file_name) DO NOTHING",
                values.join(", ")
            )
        });
        let mut q = with_room(&sql, chunk.len() * COLS);
        for (id, a) in chunk {
            q = q
                .bind(*id)
                .bind(cut(&a.original_file_name, 1024))
                .bind(cut(&a.name, MAX_NAME))
                .bind(cut_opt(&a.content_type, 255))
                .bind(a.content_length)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The owners of several results in one query (ids not stored are absent).
pub(crate) async fn result_owners(
    db: &Db,
    ids: &[Id],
) -> ServerResult<HashMap<Id, super::results::ResultOwner>> {
    let mut out = HashMap::with_capacity(ids.len());
    let mut conn = db.read.acquire().await?;
    for chunk in ids.chunks(LOOKUP_ROWS) {
        let mut p = Placeholders::of(&conn);
        let sql = format!(
            "SELECT id, project_id, launch_id FROM test_results WHERE id IN ({})",
            p.list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let owner = super::results::ResultOwner {
                id: get_i64(&r, "id")?,
                project_id: get_i64(&r, "project_id")?,
                launch_id: get_i64(&r, "launch_id")?,
            };
            out.insert(owner.id, owner);
        }
    }
    Ok(out)
}

/// An attachment whose bytes are stored, for [`put_attachments`].
#[derive(Debug)]
pub(crate) struct AttachmentBytes<'a> {
    pub(crate) result_id: Id,
    pub(crate) file_name: &'a str,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) size: i64,
    pub(crate) sha256: &'a str,
}

/// Records the bytes of several attachments (inside the caller's
/// transaction), as [`super::results::put_attachment`] does for one: a file
/// name a result already has (declared by the result, or sent before) points
/// at the new bytes. A file name given twice for one result counts once, by
/// its last occurrence (one statement may not update a row twice).
pub(crate) async fn put_attachments(
    conn: &mut AnyConnection,
    rows: &[AttachmentBytes<'_>],
) -> ServerResult<()> {
    const COLS: usize = 7;
    let mut last: HashMap<(Id, &str), usize> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        last.insert((r.result_id, r.file_name), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    // Key order, so concurrent writers (other replicas) lock rows in one order.
    keep.sort_by(|a, b| {
        (rows[*a].result_id, rows[*a].file_name).cmp(&(rows[*b].result_id, rows[*b].file_name))
    });
    let now = now_ms();
    for chunk in keep.chunks(ATTACHMENT_ROWS) {
        let sql = shaped(conn, "put_attachments", chunk.len(), |mut p, n| {
            format!(
                "INSERT INTO attachments (test_result_id, file_name, name, content_type, size, sha256, created_ms) \
                 VALUES {} ON CONFLICT (test_result_id, file_name) DO UPDATE \
                 SET sha256 = excluded.sha256, size = excluded.size, \
                 content_type = COALESCE(attachments.content_type, excluded.content_type)",
                p.rows(n, COLS)
            )
        });
        let mut q = with_room(&sql, chunk.len() * COLS);
        for &i in chunk {
            let r = &rows[i];
            let name = clip(r.file_name, 1024);
            q = q
                .bind(r.result_id)
                .bind(name.clone())
                .bind(name)
                .bind(r.content_type.map(|c| clip(c, 255)))
                .bind(r.size)
                .bind(r.sha256)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_key_is_the_history_id_or_uuid_under_its_job() {
        let r = |history: Option<&str>| api::UploadTestResult {
            uuid: "u-1".into(),
            history_id: history.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(attempt_key(Some(42), &r(Some("h"))), "job:42|h");
        assert_eq!(attempt_key(Some(42), &r(Some(""))), "job:42|u-1");
        assert_eq!(attempt_key(Some(42), &r(None)), "job:42|u-1");
        assert_eq!(
            attempt_key(Some(Id::MAX), &r(Some("h"))),
            format!("job:{}|h", Id::MAX)
        );
        assert_eq!(attempt_key(None, &r(Some("h"))), "h");
        assert_eq!(attempt_key(None, &r(None)), "u-1");
    }

    /// Each row's stored JSON, taken from the batch's one buffer, is what
    /// serde_json writes for its result alone, in uuid order, repeats once;
    /// a result over the limit is named by its index in the request.
    #[test]
    fn each_row_keeps_the_json_serde_json_writes_for_its_result() {
        let r = |uuid: &str, name: &str, trace: Option<&str>| api::UploadTestResult {
            uuid: uuid.into(),
            name: name.into(),
            status: Some("failed".into()),
            trace: trace.map(str::to_string),
            labels: vec![api::LabelDto {
                name: "suite".into(),
                value: "t\u{e9}st \"quoted\"\n".into(),
            }],
            ..Default::default()
        };
        let long = "x".repeat(5000);
        let results = vec![
            r("c", "third", None),
            r("a", "first \u{2028} \u{1F600}", Some(&long)),
            r("b", "second", Some("at line 1\r\n\tat line 2")),
            r("a", "a repeat, not stored", None),
        ];
        let batch = ResultBatch::prepare(results.clone(), Some(7)).unwrap();
        assert_eq!(batch.order, vec![1, 2, 0]);
        let stored: Vec<&str> = (0..batch.order.len()).map(|k| batch.body(k)).collect();
        let expected: Vec<String> = [1, 2, 0]
            .iter()
            .map(|&i| serde_json::to_string(&results[i]).unwrap())
            .collect();
        assert_eq!(stored, expected);
        assert_eq!(
            batch.bodies.len(),
            expected.iter().map(String::len).sum::<usize>()
        );

        // The room reserved after the first row is bounded whatever its size.
        assert_eq!(room_for_the_rest(1200, 499), 600_000);
        assert_eq!(room_for_the_rest(MAX_STORED_JSON, 499), BODIES_RESERVE);
        assert_eq!(room_for_the_rest(usize::MAX, usize::MAX), BODIES_RESERVE);

        let mut too_large = results;
        too_large[2].trace = Some("y".repeat(MAX_STORED_JSON));
        let Err(e) = ResultBatch::prepare(too_large, None) else {
            panic!("a result over the stored limit was accepted");
        };
        let message = e.to_string();
        assert!(
            message.contains("results[2]") && message.contains('b'),
            "{message}"
        );
    }
}
