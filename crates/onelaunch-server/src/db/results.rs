//! Sessions, test results, attachments, fixtures and raw session files: rows in,
//! rows out. Results are unique by (launch, uuid); results sharing a test key are
//! attempts of one test.

use onelaunch_api::{self as api, Id};
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::launches::LATEST;
pub(crate) use super::result_rows::{insert_results, ResultBatch};
use super::*;
use crate::error::ServerResult;

#[derive(Debug, Clone)]
pub(crate) struct SessionRow {
    pub id: Id,
    pub project_id: Id,
    pub launch_id: Id,
    pub job_run_id: Option<Id>,
    /// The job of its job run (carried here so a batch needs no lookup).
    pub job_id: Option<Id>,
}

impl SessionRow {
    pub(crate) fn to_dto(&self, job_id: Option<Id>) -> api::SessionDto {
        api::SessionDto {
            id: self.id,
            job_id,
            job_run_id: self.job_run_id,
            launch_id: self.launch_id,
            project_id: self.project_id,
        }
    }
}

/// Creates a session. Environment entries whose names look secret are dropped.
/// `ci` is the CI identity of the pipeline that opened it (bounded by the
/// caller). A `track`ed session stays open until its client closes it
/// (`sessions::close_session`); any other is closed from the start.
pub(crate) async fn create_session(
    conn: &mut AnyConnection,
    project_id: Id,
    launch_id: Id,
    job_run_id: Option<Id>,
    environment: &[api::KeyValue],
    ci: Option<&api::SessionCi>,
    track: bool,
) -> ServerResult<SessionRow> {
    let now = now_ms();
    let env: Vec<&api::KeyValue> = environment
        .iter()
        .filter(|kv| !api::is_secret_name(&kv.key))
        .take(1000)
        .collect();
    let row = sqlx::query(
        "INSERT INTO sessions (project_id, launch_id, job_run_id, environment, created_ms, \
         ci_type, ci_job_name, ci_run_name, ci_run_url, closed_ms, last_seen_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $5) RETURNING id",
    )
    .bind(project_id)
    .bind(launch_id)
    .bind(job_run_id)
    .bind(serde_json::to_string(&env).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .bind(ci.and_then(|c| c.kind.clone()))
    .bind(ci.and_then(|c| c.job_name.clone()))
    .bind(ci.and_then(|c| c.run_name.clone()))
    .bind(ci.and_then(|c| c.run_url.clone()))
    .bind((!track).then_some(now))
    .fetch_one(&mut *conn)
    .await?;
    let job_id = match job_run_id {
        Some(run) => sqlx::query("SELECT job_id FROM job_runs WHERE id = $1")
            .bind(run)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| get_i64(&r, "job_id"))
            .transpose()?,
        None => None,
    };
    Ok(SessionRow {
        id: row.try_get("id")?,
        project_id,
        launch_id,
        job_run_id,
        job_id,
    })
}

/// One upload session of a job run, as its page lists them.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub id: Id,
    pub created_ms: i64,
    pub ci: api::SessionCi,
    /// Results stored through this session.
    pub results: i64,
    /// Its upload has not ended (the client did not close it yet).
    pub open: bool,
}

/// Most sessions a job-run page lists (the latest).
pub(crate) const MAX_LISTED_SESSIONS: i64 = 200;

/// The upload sessions of a job run, latest first, at most
/// [`MAX_LISTED_SESSIONS`].
pub(crate) async fn job_run_sessions(db: &Db, job_run_id: Id) -> ServerResult<Vec<SessionInfo>> {
    let rows = sqlx::query(
        "SELECT s.id AS id, s.created_ms AS created_ms, s.ci_type AS ci_type, \
         s.ci_job_name AS ci_job_name, s.ci_run_name AS ci_run_name, s.ci_run_url AS ci_run_url, \
         (SELECT COUNT(*) FROM test_results t WHERE t.session_id = s.id) AS results, \
         CASE WHEN s.closed_ms IS NULL THEN 1 ELSE 0 END AS open \
         FROM sessions s WHERE s.job_run_id = $1 ORDER BY s.id DESC LIMIT $2",
    )
    .bind(job_run_id)
    .bind(MAX_LISTED_SESSIONS)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SessionInfo {
                id: get_i64(r, "id")?,
                created_ms: get_i64(r, "created_ms")?,
                ci: api::SessionCi {
                    kind: opt_str(r, "ci_type"),
                    job_name: opt_str(r, "ci_job_name"),
                    run_name: opt_str(r, "ci_run_name"),
                    run_url: opt_str(r, "ci_run_url"),
                },
                results: get_i64(r, "results")?,
                open: get_i64(r, "open")? != 0,
            })
        })
        .collect()
}

pub(crate) async fn get_session(db: &Db, id: Id) -> ServerResult<Option<SessionRow>> {
    let r = sqlx::query(
        "SELECT s.id AS id, s.project_id AS project_id, s.launch_id AS launch_id, \
         s.job_run_id AS job_run_id, r.job_id AS job_id \
         FROM sessions s LEFT JOIN job_runs r ON r.id = s.job_run_id WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.read)
    .await?;
    Ok(match r {
        Some(r) => Some(SessionRow {
            id: get_i64(&r, "id")?,
            project_id: get_i64(&r, "project_id")?,
            launch_id: get_i64(&r, "launch_id")?,
            job_run_id: opt_i64(&r, "job_run_id"),
            job_id: opt_i64(&r, "job_id"),
        }),
        None => None,
    })
}

/// A stored result with the launch it belongs to (for access checks).
#[derive(Debug, Clone)]
pub(crate) struct ResultOwner {
    pub id: Id,
    pub project_id: Id,
    pub launch_id: Id,
}

pub(crate) async fn result_owner(db: &Db, id: Id) -> ServerResult<Option<ResultOwner>> {
    let r = sqlx::query("SELECT id, project_id, launch_id FROM test_results WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.read)
        .await?;
    Ok(match r {
        Some(r) => Some(ResultOwner {
            id: get_i64(&r, "id")?,
            project_id: get_i64(&r, "project_id")?,
            launch_id: get_i64(&r, "launch_id")?,
        }),
        None => None,
    })
}

pub(crate) async fn put_fixtures(
    conn: &mut AnyConnection,
    result_id: Id,
    fixtures: &[api::UploadFixture],
) -> ServerResult<Vec<Id>> {
    let now = now_ms();
    let mut ids = Vec::new();
    for (i, f) in fixtures.iter().enumerate() {
        let uuid = if f.uuid.is_empty() {
            format!("{}:{i}", f.kind)
        } else {
            clip(&f.uuid, 255)
        };
        let kind = if f.kind.eq_ignore_ascii_case("after") {
            "AFTER"
        } else {
            "BEFORE"
        };
        sqlx::query(
            "INSERT INTO fixtures (test_result_id, uuid, kind, name, status, body, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (test_result_id, uuid) DO NOTHING",
        )
        .bind(result_id)
        .bind(&uuid)
        .bind(kind)
        .bind(clip(&f.name, MAX_NAME))
        .bind(api::normalize_status(f.status.as_deref()))
        .bind(serde_json::to_string(f).unwrap_or_else(|_| "{}".into()))
        .bind(now)
        .execute(&mut *conn)
        .await?;
        let id: i64 =
            sqlx::query("SELECT id FROM fixtures WHERE test_result_id = $1 AND uuid = $2")
                .bind(result_id)
                .bind(&uuid)
                .fetch_one(&mut *conn)
                .await?
                .try_get("id")?;
        ids.push(id);
    }
    Ok(ids)
}

/// Raw files (`/api/upload/file`) that are not results: kept per session and
/// matched to attachment references by file name.
pub(crate) async fn put_session_file(
    conn: &mut AnyConnection,
    session_id: Id,
    file_name: &str,
    kind: &str,
    sha256: &str,
    size: i64,
    content_type: Option<&str>,
) -> ServerResult<()> {
    sqlx::query(
        "INSERT INTO session_files (session_id, file_name, kind, sha256, size, content_type, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session_id, file_name) DO UPDATE \
         SET sha256 = excluded.sha256, size = excluded.size",
    )
    .bind(session_id)
    .bind(clip(file_name, 1024))
    .bind(kind)
    .bind(sha256)
    .bind(size)
    .bind(content_type.map(|c| clip(c, 255)))
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Session files of a kind, as (file name, sha256).
pub(crate) async fn session_files(
    db: &Db,
    session_id: Id,
    kind: &str,
) -> ServerResult<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT file_name, sha256 FROM session_files WHERE session_id = $1 AND kind = $2 ORDER BY id",
    )
    .bind(session_id)
    .bind(kind)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| Ok((get_str(r, "file_name")?, get_str(r, "sha256")?)))
        .collect()
}

/// Fills attachment rows of the session's results from the session's raw files.
pub(crate) async fn resolve_session_attachments(
    conn: &mut AnyConnection,
    session_id: Id,
) -> ServerResult<()> {
    sqlx::query(
        "UPDATE attachments SET \
         sha256 = (SELECT sf.sha256 FROM session_files sf WHERE sf.session_id = $1 AND sf.file_name = attachments.file_name), \
         size = (SELECT sf.size FROM session_files sf WHERE sf.session_id = $1 AND sf.file_name = attachments.file_name) \
         WHERE sha256 IS NULL \
         AND test_result_id IN (SELECT id FROM test_results WHERE session_id = $1) \
         AND EXISTS (SELECT 1 FROM session_files sf WHERE sf.session_id = $1 AND sf.file_name = attachments.file_name)",
    )
    .bind(session_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ids of results in a launch by uuid.
pub(crate) async fn result_ids_by_uuid(
    db: &Db,
    launch_id: Id,
    uuids: &[String],
) -> ServerResult<Vec<(String, Id)>> {
    let mut out = Vec::new();
    for u in uuids {
        if let Some(r) =
            sqlx::query("SELECT id FROM test_results WHERE launch_id = $1 AND uuid = $2")
                .bind(launch_id)
                .bind(u)
                .fetch_optional(&db.write)
                .await?
        {
            out.push((u.clone(), r.try_get("id")?));
        }
    }
    Ok(out)
}

pub(crate) async fn list_results(
    db: &Db,
    launch_id: Id,
    job_run_id: Option<Id>,
    page: i64,
    size: i64,
) -> ServerResult<(Vec<api::TestResultDto>, i64)> {
    let filter = if job_run_id.is_some() {
        "t.launch_id = $1 AND t.job_run_id = $2"
    } else {
        "t.launch_id = $1 AND $2 = $2"
    };
    let total: i64 = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM test_results t WHERE {filter}"
    ))
    .bind(launch_id)
    .bind(job_run_id.unwrap_or(0))
    .fetch_one(&db.read)
    .await?
    .try_get("n")?;
    let rows = sqlx::query(&format!(
        "SELECT t.id AS id, t.uuid AS uuid, t.launch_id AS launch_id, t.job_run_id AS job_run_id, \
         t.name AS name, t.full_name AS full_name, t.history_id AS history_id, t.status AS status, \
         t.message AS message, t.start_ms AS start_ms, t.stop_ms AS stop_ms, \
         CASE WHEN {LATEST} THEN 0 ELSE 1 END AS retry, \
         (SELECT COUNT(*) FROM attachments a WHERE a.test_result_id = t.id) AS attachment_count, \
         (SELECT COUNT(*) FROM fixtures f WHERE f.test_result_id = t.id) AS fixture_count \
         FROM test_results t WHERE {filter} ORDER BY t.id LIMIT $3 OFFSET $4"
    ))
    .bind(launch_id)
    .bind(job_run_id.unwrap_or(0))
    .bind(size)
    .bind(page * size)
    .fetch_all(&db.read)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(api::TestResultDto {
            id: get_i64(r, "id")?,
            uuid: get_str(r, "uuid")?,
            launch_id: get_i64(r, "launch_id")?,
            job_run_id: opt_i64(r, "job_run_id"),
            name: get_str(r, "name")?,
            full_name: opt_str(r, "full_name"),
            history_id: opt_str(r, "history_id"),
            status: get_str(r, "status")?,
            message: opt_str(r, "message"),
            start: opt_i64(r, "start_ms"),
            stop: opt_i64(r, "stop_ms"),
            retry: get_i64(r, "retry")? != 0,
            attachment_count: get_i64(r, "attachment_count")?,
            fixture_count: get_i64(r, "fixture_count")?,
        });
    }
    Ok((out, total))
}

/// Attachments of a result: (id, file name, name, content type, size, sha256).
pub(crate) type AttachmentRow = (
    Id,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
);

pub(crate) async fn result_attachments(db: &Db, result_id: Id) -> ServerResult<Vec<AttachmentRow>> {
    let rows = sqlx::query(
        "SELECT id, file_name, name, content_type, size, sha256 FROM attachments WHERE test_result_id = $1 ORDER BY id",
    )
    .bind(result_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                get_i64(r, "id")?,
                get_str(r, "file_name")?,
                get_str(r, "name")?,
                opt_str(r, "content_type"),
                opt_i64(r, "size"),
                opt_str(r, "sha256"),
            ))
        })
        .collect()
}

/// The full stored body of a result.
pub(crate) async fn result_body(db: &Db, result_id: Id) -> ServerResult<Option<Value>> {
    let r = sqlx::query("SELECT body FROM test_results WHERE id = $1")
        .bind(result_id)
        .fetch_optional(&db.read)
        .await?;
    Ok(match r {
        Some(r) => Some(serde_json::from_str(&get_str(&r, "body")?).unwrap_or(Value::Null)),
        None => None,
    })
}

/// Fixture bodies of a result.
pub(crate) async fn result_fixtures(db: &Db, result_id: Id) -> ServerResult<Vec<Value>> {
    let rows = sqlx::query("SELECT body FROM fixtures WHERE test_result_id = $1 ORDER BY id")
        .bind(result_id)
        .fetch_all(&db.read)
        .await?;
    rows.iter()
        .map(|r| Ok(serde_json::from_str(&get_str(r, "body")?).unwrap_or(Value::Null)))
        .collect()
}

/// Declares an attachment file name on a result without bytes (yet).
pub(crate) async fn put_attachment_ref(
    conn: &mut AnyConnection,
    result_id: Id,
    file_name: &str,
) -> ServerResult<()> {
    sqlx::query(
        "INSERT INTO attachments (test_result_id, file_name, name, content_type, size, sha256, created_ms) \
         VALUES ($1, $2, $2, NULL, NULL, NULL, $3) ON CONFLICT (test_result_id, file_name) DO NOTHING",
    )
    .bind(result_id)
    .bind(clip(file_name, 1024))
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The result a fixture belongs to.
pub(crate) async fn fixture_result_id(db: &Db, fixture_id: Id) -> ServerResult<Option<Id>> {
    let r = sqlx::query("SELECT test_result_id FROM fixtures WHERE id = $1")
        .bind(fixture_id)
        .fetch_optional(&db.read)
        .await?;
    Ok(match r {
        Some(r) => Some(get_i64(&r, "test_result_id")?),
        None => None,
    })
}

/// A manual result as stored (no job run; test key `manual:<case id>`).
#[derive(Debug)]
pub(crate) struct ManualResultRow {
    pub(crate) uuid: String,
    pub(crate) name: String,
    pub(crate) full_name: Option<String>,
    pub(crate) status: &'static str,
    pub(crate) message: Option<String>,
    pub(crate) at_ms: i64,
    pub(crate) duration_ms: i64,
    pub(crate) recorded_by: Option<String>,
    /// The stored body, shaped like an uploaded result.
    pub(crate) body: api::UploadTestResult,
}

/// Inserts a manual result of a case into a session (the caller's transaction).
pub(crate) async fn insert_manual_result(
    conn: &mut AnyConnection,
    session: &SessionRow,
    case_id: Id,
    r: &ManualResultRow,
) -> ServerResult<Id> {
    super::result_rows::hold_owners(conn, session).await?;
    let row = sqlx::query(
        "INSERT INTO test_results (project_id, launch_id, job_run_id, session_id, uuid, test_key, history_id, \
         test_case_id, name, full_name, status, message, trace, start_ms, stop_ms, duration_ms, body, created_ms, manual, recorded_by) \
         VALUES ($1, $2, NULL, $3, $4, $5, NULL, NULL, $6, $7, $8, $9, NULL, $10, $14, $12, $11, $10, 1, $13) RETURNING id",
    )
    .bind(session.project_id)
    .bind(session.launch_id)
    .bind(session.id)
    .bind(&r.uuid)
    .bind(format!("manual:{case_id}"))
    .bind(&r.name)
    .bind(&r.full_name)
    .bind(r.status)
    .bind(&r.message)
    .bind(r.at_ms)
    .bind(serde_json::to_string(&r.body).unwrap_or_else(|_| "{}".into()))
    .bind(r.duration_ms)
    .bind(&r.recorded_by)
    .bind(r.at_ms.saturating_add(r.duration_ms))
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("id")?)
}

/// The manual results of a launch, oldest first.
pub(crate) async fn manual_results(
    db: &Db,
    launch_id: Id,
) -> ServerResult<Vec<api::ManualResultDto>> {
    let rows = sqlx::query(
        "SELECT id, test_key, name, status, message, created_ms, duration_ms, recorded_by FROM test_results \
         WHERE launch_id = $1 AND manual = 1 ORDER BY id",
    )
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(api::ManualResultDto {
                id: get_i64(r, "id")?,
                test_case_id: get_str(r, "test_key")?
                    .strip_prefix("manual:")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_default(),
                name: get_str(r, "name")?,
                status: get_str(r, "status")?,
                message: opt_str(r, "message"),
                created_date: get_i64(r, "created_ms")?,
                assignee: opt_str(r, "recorded_by"),
                duration_ms: opt_i64(r, "duration_ms").unwrap_or(0),
            })
        })
        .collect()
}

/// An attachment row: where its bytes are and what they are.
pub(crate) struct AttachmentMeta {
    pub result_id: Id,
    pub file_name: String,
    pub name: String,
    pub content_type: Option<String>,
    pub sha256: Option<String>,
}

impl AttachmentMeta {
    /// The `Content-Disposition` the API and the UI send with the bytes
    /// (`attachment`, or `inline` for what the UI shows in the page): an ASCII
    /// `filename` (other characters as `_`) and the exact name as RFC 5987
    /// `filename*`, so no name can break out of the header.
    pub(crate) fn disposition(&self, inline: bool) -> String {
        let file = if self.file_name.is_empty() {
            &self.name
        } else {
            &self.file_name
        };
        let file = if file.is_empty() { "attachment" } else { file };
        let ascii: String = file
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut exact = String::with_capacity(file.len());
        for b in file.bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                exact.push(b as char);
            } else {
                exact.push_str(&format!("%{b:02X}"));
            }
        }
        let kind = if inline { "inline" } else { "attachment" };
        format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
    }
}

pub(crate) async fn attachment(db: &Db, id: Id) -> ServerResult<Option<AttachmentMeta>> {
    let r = sqlx::query(
        "SELECT test_result_id, file_name, name, content_type, sha256 FROM attachments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.read)
    .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(AttachmentMeta {
        result_id: get_i64(&r, "test_result_id")?,
        file_name: get_str(&r, "file_name")?,
        name: get_str(&r, "name")?,
        content_type: opt_str(&r, "content_type"),
        sha256: opt_str(&r, "sha256"),
    }))
}

#[cfg(test)]
mod tests {
    use super::AttachmentMeta;

    #[test]
    fn download_names_cannot_break_the_header() {
        let meta = |file_name: &str, name: &str| AttachmentMeta {
            result_id: 1,
            file_name: file_name.into(),
            name: name.into(),
            content_type: None,
            sha256: None,
        };
        assert_eq!(
            meta("r\u{e9}sum\u{e9} \"x\";\r\n.txt", "").disposition(false),
            "attachment; filename=\"r_sum___x____.txt\"; \
             filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22%3B%0D%0A.txt"
        );
        assert_eq!(
            meta("", "shot.png").disposition(true),
            "inline; filename=\"shot.png\"; filename*=UTF-8''shot.png"
        );
        assert_eq!(
            meta("", "").disposition(false),
            "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"
        );
    }
}
