//! Errors and attachments that belong to no test (Allure 3 `*-globals.json`),
//! kept per launch, job run and session in `launch_globals` (migration 0010).
//! One row per entry of a globals file; like a result's uuid, the file's name
//! (`<uuid>-globals.json`) identifies it in its launch, so sending the same
//! file again (in the same or another session) adds nothing.

use onelaunch_api::{GlobalAttachmentDto, GlobalErrorDto, Id};
use onelaunch_model::allure::Globals;
use sqlx::AnyConnection;

use super::results::{AttachmentMeta, SessionRow};
use super::{clip, clip_opt, get_i64, get_str, now_ms, opt_i64, opt_str, Db, MAX_NAME, MAX_TEXT};
use crate::error::ServerResult;

/// Most rows of each kind a listing returns (the counts are exact).
pub(crate) const MAX_LISTED: i64 = 500;

/// Stores the entries of one globals file of a session; answers how many
/// errors were new (0 when the file was stored before).
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    session: &SessionRow,
    file_name: &str,
    globals: &Globals,
) -> ServerResult<usize> {
    const SQL: &str = "INSERT INTO launch_globals (project_id, launch_id, job_run_id, session_id, \
         file_name, kind, entry_index, message, trace, name, source, content_type, at_ms, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (launch_id, file_name, kind, entry_index) DO NOTHING";
    let file_name = clip(file_name, 1024);
    let now = now_ms();
    let mut new_errors = 0;
    for (i, e) in globals.errors.iter().enumerate() {
        let done = sqlx::query(SQL)
            .bind(session.project_id)
            .bind(session.launch_id)
            .bind(session.job_run_id)
            .bind(session.id)
            .bind(&file_name)
            .bind("error")
            .bind(i as i64)
            .bind(clip_opt(&e.message, MAX_TEXT))
            .bind(clip_opt(&e.trace, MAX_TEXT))
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(e.timestamp)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        new_errors += done.rows_affected() as usize;
    }
    for (i, a) in globals.attachments.iter().enumerate() {
        sqlx::query(SQL)
            .bind(session.project_id)
            .bind(session.launch_id)
            .bind(session.job_run_id)
            .bind(session.id)
            .bind(&file_name)
            .bind("attachment")
            .bind(i as i64)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(clip(&a.name, MAX_NAME))
            .bind(clip(&a.source, 1024))
            .bind(clip_opt(&a.r#type, 255))
            .bind(a.timestamp)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(new_errors)
}

/// Links the launch's global attachments still without bytes to the files of
/// the session named by their `source` (sent in the same or an earlier raw
/// upload of that session).
pub(crate) async fn resolve_attachments(
    conn: &mut AnyConnection,
    session: &SessionRow,
) -> ServerResult<()> {
    sqlx::query(
        "UPDATE launch_globals SET \
         sha256 = (SELECT sf.sha256 FROM session_files sf WHERE sf.session_id = $1 AND sf.file_name = launch_globals.source), \
         size = (SELECT sf.size FROM session_files sf WHERE sf.session_id = $1 AND sf.file_name = launch_globals.source), \
         content_type = COALESCE(content_type, (SELECT sf.content_type FROM session_files sf WHERE sf.session_id = $1 AND sf.file_name = launch_globals.source)) \
         WHERE launch_id = $2 AND kind = 'attachment' AND sha256 IS NULL \
         AND EXISTS (SELECT 1 FROM session_files sf WHERE sf.session_id = $1 AND sf.file_name = launch_globals.source)",
    )
    .bind(session.id)
    .bind(session.launch_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The globals of a launch, or of one of its job runs.
#[derive(Debug, Default)]
pub(crate) struct GlobalsList {
    pub errors: Vec<GlobalErrorDto>,
    pub attachments: Vec<GlobalAttachmentDto>,
    pub error_count: i64,
    pub attachment_count: i64,
}

/// Lists the globals of a launch (`job_run_id` `None`) or of one job run,
/// oldest first, at most [`MAX_LISTED`] of each kind.
pub(crate) async fn list(
    db: &Db,
    launch_id: Id,
    job_run_id: Option<Id>,
) -> ServerResult<GlobalsList> {
    // `kind` is $2; the job run, when given, $3.
    let filter = if job_run_id.is_some() {
        "launch_id = $1 AND kind = $2 AND job_run_id = $3"
    } else {
        "launch_id = $1 AND kind = $2"
    };
    let mut out = GlobalsList::default();
    for kind in ["error", "attachment"] {
        let list_sql = format!(
            "SELECT id, job_run_id, session_id, file_name, message, trace, name, source, \
             content_type, size, sha256, at_ms FROM launch_globals \
             WHERE {filter} ORDER BY id LIMIT {MAX_LISTED}"
        );
        let count_sql = format!("SELECT COUNT(*) AS n FROM launch_globals WHERE {filter}");
        let mut rows = sqlx::query(&list_sql).bind(launch_id).bind(kind);
        let mut count = sqlx::query(&count_sql).bind(launch_id).bind(kind);
        if let Some(jr) = job_run_id {
            rows = rows.bind(jr);
            count = count.bind(jr);
        }
        let rows = rows.fetch_all(&db.read).await?;
        let count = count.fetch_one(&db.read).await?;
        let count = get_i64(&count, "n")?;
        for r in &rows {
            let id = get_i64(r, "id")?;
            let job_run_id = opt_i64(r, "job_run_id");
            let session_id = get_i64(r, "session_id")?;
            let file_name = get_str(r, "file_name")?;
            let timestamp = opt_i64(r, "at_ms");
            if kind == "error" {
                out.errors.push(GlobalErrorDto {
                    id,
                    job_run_id,
                    session_id,
                    file_name,
                    message: opt_str(r, "message"),
                    trace: opt_str(r, "trace"),
                    timestamp,
                });
            } else {
                let stored = opt_str(r, "sha256").is_some();
                out.attachments.push(GlobalAttachmentDto {
                    id,
                    job_run_id,
                    session_id,
                    file_name,
                    name: opt_str(r, "name").unwrap_or_default(),
                    source: opt_str(r, "source").unwrap_or_default(),
                    content_type: opt_str(r, "content_type"),
                    content_length: opt_i64(r, "size"),
                    timestamp,
                    content_url: stored.then(|| format!("/api/globals/attachment/{id}/content")),
                });
            }
        }
        if kind == "error" {
            out.error_count = count;
        } else {
            out.attachment_count = count;
        }
    }
    Ok(out)
}

/// A global attachment: its project (for the access check) and
/// where its bytes are.
pub(crate) struct GlobalAttachmentRow {
    pub project_id: Id,
    pub meta: AttachmentMeta,
}

pub(crate) async fn attachment(db: &Db, id: Id) -> ServerResult<Option<GlobalAttachmentRow>> {
    let r = sqlx::query(
        "SELECT project_id, name, source, content_type, sha256 FROM launch_globals \
         WHERE id = $1 AND kind = 'attachment'",
    )
    .bind(id)
    .fetch_optional(&db.read)
    .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(GlobalAttachmentRow {
        project_id: get_i64(&r, "project_id")?,
        meta: AttachmentMeta {
            result_id: 0,
            file_name: opt_str(&r, "source").unwrap_or_default(),
            name: opt_str(&r, "name").unwrap_or_default(),
            content_type: opt_str(&r, "content_type"),
            sha256: opt_str(&r, "sha256"),
        },
    }))
}
