//! Launches analysed together: the rows a comparison reads (every attempt of
//! a launch, with the labels its test-case identity needs), the copy that
//! combines launches into a new one, and the links between a combined launch
//! and its sources (`launch_sources`, migration 0016).

use futures::TryStreamExt;
use onelaunch_api::{self as api, Id};
use serde::Deserialize;

use super::*;
use crate::error::{ServerError, ServerResult};

/// One attempt of a test in a launch, as a comparison needs it.
#[derive(Debug, Clone)]
pub(crate) struct AttemptRow {
    pub id: Id,
    pub job_id: Option<Id>,
    pub job_name: Option<String>,
    pub test_key: String,
    pub uuid: String,
    pub test_case_id: Option<String>,
    pub name: String,
    pub full_name: Option<String>,
    pub status: String,
    pub labels: Vec<api::LabelDto>,
}

/// Only the labels of a stored result body (the rest is not kept in memory).
#[derive(Deserialize, Default)]
struct LabelsOnly {
    #[serde(default)]
    labels: Vec<api::LabelDto>,
}

/// Every attempt of a launch, in attempt order (by key, then start, then id:
/// the last of a key is its latest attempt, as in `launches::LATEST`). Rows
/// are streamed; of each body only the labels are kept.
pub(crate) async fn launch_attempts(db: &Db, launch_id: Id) -> ServerResult<Vec<AttemptRow>> {
    let mut rows = sqlx::query(
        "SELECT t.id AS id, r.job_id AS job_id, j.name AS job_name, t.test_key AS test_key, \
         t.uuid AS uuid, t.test_case_id AS test_case_id, t.name AS name, t.full_name AS full_name, \
         t.status AS status, t.body AS body \
         FROM test_results t LEFT JOIN job_runs r ON r.id = t.job_run_id \
         LEFT JOIN jobs j ON j.id = r.job_id WHERE t.launch_id = $1 \
         ORDER BY t.test_key, COALESCE(t.start_ms, 0), t.id",
    )
    .bind(launch_id)
    .fetch(&db.read);
    let mut out = Vec::new();
    while let Some(r) = rows.try_next().await? {
        let body = opt_str(&r, "body").unwrap_or_default();
        let labels = serde_json::from_str::<LabelsOnly>(&body)
            .unwrap_or_default()
            .labels;
        out.push(AttemptRow {
            id: get_i64(&r, "id")?,
            job_id: opt_i64(&r, "job_id"),
            job_name: opt_str(&r, "job_name"),
            test_key: get_str(&r, "test_key")?,
            uuid: get_str(&r, "uuid")?,
            test_case_id: opt_str(&r, "test_case_id"),
            name: get_str(&r, "name")?,
            full_name: opt_str(&r, "full_name"),
            status: get_str(&r, "status")?,
            labels,
        });
    }
    Ok(out)
}

/// `(combined into, combined from)`: the launches combined from this one and
/// the launches this one was combined from.
pub(crate) async fn links(db: &Db, launch_id: Id) -> ServerResult<(Vec<Id>, Vec<Id>)> {
    let into = sqlx::query(
        "SELECT combined_id AS id FROM launch_sources WHERE source_id = $1 ORDER BY combined_id",
    )
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    let from = sqlx::query(
        "SELECT source_id AS id FROM launch_sources WHERE combined_id = $1 ORDER BY source_id",
    )
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    let ids = |rows: &[sqlx::any::AnyRow]| -> ServerResult<Vec<Id>> {
        rows.iter().map(|r| get_i64(r, "id")).collect()
    };
    Ok((ids(&into)?, ids(&from)?))
}

/// The statements that copy one source launch (`$2`) into the combined
/// launch (`$1`), in dependency order: job runs, sessions, results, then what
/// hangs off them. Copied rows remember where they came from
/// (`copied_from`), which maps the references of the later statements.
/// Attachments and files keep their sha256: the blob is shared, not copied.
/// A uuid (globals file name) the combined launch already holds from an
/// earlier source gets the source's id appended; so does an attempt key (the
/// same job's tests in two sources stay two tests: the counts of the sources
/// add up; attempts within one source stay attempts).
const COPY: &[&str] = &[
    "INSERT INTO job_runs (job_id, launch_id, project_id, uid, name, url, stage, status, \
     error_message, parameters, created_ms, modified_ms, implicit, status_derived, copied_from) \
     SELECT r.job_id, $1, r.project_id, r.uid || '@combined-' || CAST($1 AS TEXT), r.name, r.url, \
     r.stage, r.status, r.error_message, r.parameters, r.created_ms, r.modified_ms, r.implicit, \
     r.status_derived, r.id FROM job_runs r WHERE r.launch_id = $2",
    "INSERT INTO sessions (project_id, launch_id, job_run_id, environment, created_ms, ci_type, \
     ci_job_name, ci_run_name, ci_run_url, closed_ms, last_seen_ms, copied_from) \
     SELECT s.project_id, $1, \
     (SELECT c.id FROM job_runs c WHERE c.launch_id = $1 AND c.copied_from = s.job_run_id), \
     s.environment, s.created_ms, s.ci_type, s.ci_job_name, s.ci_run_name, s.ci_run_url, \
     COALESCE(s.closed_ms, s.last_seen_ms, s.created_ms), s.last_seen_ms, s.id \
     FROM sessions s WHERE s.launch_id = $2",
    "INSERT INTO test_results (project_id, launch_id, job_run_id, session_id, uuid, test_key, \
     history_id, test_case_id, name, full_name, status, message, trace, start_ms, stop_ms, \
     duration_ms, body, created_ms, manual, copied_from) \
     SELECT t.project_id, $1, \
     (SELECT c.id FROM job_runs c WHERE c.launch_id = $1 AND c.copied_from = t.job_run_id), \
     (SELECT c.id FROM sessions c WHERE c.launch_id = $1 AND c.copied_from = t.session_id), \
     CASE WHEN EXISTS (SELECT 1 FROM test_results d WHERE d.launch_id = $1 AND d.uuid = t.uuid) \
     THEN t.uuid || '@' || CAST($2 AS TEXT) ELSE t.uuid END, \
     CASE WHEN t.manual = 0 AND EXISTS (SELECT 1 FROM test_results k WHERE k.launch_id = $1 \
     AND k.test_key = t.test_key) THEN t.test_key || '@' || CAST($2 AS TEXT) ELSE t.test_key END, \
     t.history_id, t.test_case_id, t.name, t.full_name, t.status, t.message, t.trace, \
     t.start_ms, t.stop_ms, t.duration_ms, t.body, t.created_ms, t.manual, t.id \
     FROM test_results t WHERE t.launch_id = $2",
    "INSERT INTO attachments (test_result_id, file_name, name, content_type, size, sha256, created_ms) \
     SELECT n.id, a.file_name, a.name, a.content_type, a.size, a.sha256, a.created_ms \
     FROM attachments a JOIN test_results o ON o.id = a.test_result_id \
     JOIN test_results n ON n.launch_id = $1 AND n.copied_from = o.id WHERE o.launch_id = $2",
    "INSERT INTO fixtures (test_result_id, uuid, kind, name, status, body, created_ms) \
     SELECT n.id, f.uuid, f.kind, f.name, f.status, f.body, f.created_ms \
     FROM fixtures f JOIN test_results o ON o.id = f.test_result_id \
     JOIN test_results n ON n.launch_id = $1 AND n.copied_from = o.id WHERE o.launch_id = $2",
    "INSERT INTO session_files (session_id, file_name, kind, sha256, size, content_type, created_ms) \
     SELECT n.id, f.file_name, f.kind, f.sha256, f.size, f.content_type, f.created_ms \
     FROM session_files f JOIN sessions o ON o.id = f.session_id \
     JOIN sessions n ON n.launch_id = $1 AND n.copied_from = o.id WHERE o.launch_id = $2",
    "INSERT INTO launch_globals (project_id, launch_id, job_run_id, session_id, file_name, kind, \
     entry_index, message, trace, name, source, content_type, size, sha256, at_ms, created_ms) \
     SELECT g.project_id, $1, \
     (SELECT c.id FROM job_runs c WHERE c.launch_id = $1 AND c.copied_from = g.job_run_id), \
     (SELECT c.id FROM sessions c WHERE c.launch_id = $1 AND c.copied_from = g.session_id), \
     CASE WHEN EXISTS (SELECT 1 FROM launch_globals d WHERE d.launch_id = $1 \
     AND d.file_name = g.file_name AND d.kind = g.kind AND d.entry_index = g.entry_index) \
     THEN g.file_name || '@' || CAST($2 AS TEXT) ELSE g.file_name END, \
     g.kind, g.entry_index, g.message, g.trace, g.name, g.source, g.content_type, g.size, \
     g.sha256, g.at_ms, g.created_ms FROM launch_globals g WHERE g.launch_id = $2",
    "INSERT INTO launch_sources (combined_id, source_id) VALUES ($1, $2)",
];

/// Creates the combined launch (closed: nothing uploads into a copy) and
/// copies every source into it, in one transaction. The sources are read,
/// never written.
pub(crate) async fn combine(
    db: &Db,
    project_id: Id,
    name: &str,
    tags: &[String],
    sources: &[Id],
) -> ServerResult<Id> {
    let mut tx = db.write.begin().await?;
    let req = api::LaunchCreate {
        name: name.to_string(),
        project_id,
        tags: tags.to_vec(),
        ..Default::default()
    };
    let id = super::launches::insert_launch(&mut *tx, project_id, &req).await?;
    for &source in sources {
        let found = sqlx::query("SELECT id FROM launches WHERE id = $1 AND project_id = $2")
            .bind(source)
            .bind(project_id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(ServerError::not_found("launch", source));
        }
        for sql in COPY {
            sqlx::query(sql)
                .bind(id)
                .bind(source)
                .execute(&mut *tx)
                .await?;
        }
    }
    let now = now_ms();
    sqlx::query("UPDATE launches SET closed = 1, closed_ms = $1, modified_ms = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// Removes the links of a launch being deleted (inside its transaction).
pub(crate) async fn unlink(conn: &mut sqlx::AnyConnection, launch_id: Id) -> ServerResult<()> {
    sqlx::query("DELETE FROM launch_sources WHERE combined_id = $1 OR source_id = $1")
        .bind(launch_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
