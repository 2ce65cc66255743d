//! Reruns into the same launch: the latest attempts a rerun selects from,
//! the transaction adding the rerun job runs and their plans to the launch,
//! and what reruns did (tests rerun, how many changed status).

use std::collections::BTreeMap;

use onelaunch_api::{self as api, Id};
use sqlx::Row;

use super::test_cases::{bind_all, case_from, Bind, CaseRow, CASE_SELECT};
use super::*;
use crate::error::{ServerError, ServerResult};

/// What SQL narrows before the rest of a selection is checked per test.
#[derive(Debug, Default)]
pub(crate) struct LatestFilter {
    pub(crate) statuses: Vec<String>,
    pub(crate) job_ids: Vec<Id>,
    /// Tests having an attempt among these results.
    pub(crate) result_ids: Vec<Id>,
    /// Results of this job run only.
    pub(crate) job_run_id: Option<Id>,
}

/// The latest attempt of a test in a launch.
#[derive(Debug, Clone)]
pub(crate) struct LatestResult {
    pub(crate) id: Id,
    pub(crate) name: String,
    pub(crate) manual: bool,
    pub(crate) job_id: Option<Id>,
    /// The stored upload (labels, identity), when it parses.
    pub(crate) body: Option<api::UploadTestResult>,
}

/// The latest attempts of a launch's tests passing `filter`, at most
/// `limit + 1` (the caller refuses more than `limit`), in result order.
pub(crate) async fn latest_results(
    db: &Db,
    launch_id: Id,
    filter: &LatestFilter,
    limit: usize,
) -> ServerResult<Vec<LatestResult>> {
    let mut binds = vec![Bind::Int(launch_id)];
    let mut conds = Vec::new();
    let list = |binds: &mut Vec<Bind>, values: Vec<Bind>| -> String {
        let start = binds.len();
        let n = values.len();
        binds.extend(values);
        (start + 1..=start + n)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !filter.statuses.is_empty() {
        let l = list(
            &mut binds,
            filter.statuses.iter().cloned().map(Bind::Text).collect(),
        );
        conds.push(format!("t.status IN ({l})"));
    }
    if !filter.job_ids.is_empty() {
        let l = list(
            &mut binds,
            filter.job_ids.iter().map(|i| Bind::Int(*i)).collect(),
        );
        conds.push(format!("r.job_id IN ({l})"));
    }
    if !filter.result_ids.is_empty() {
        let l = list(
            &mut binds,
            filter.result_ids.iter().map(|i| Bind::Int(*i)).collect(),
        );
        conds.push(format!(
            "t.test_key IN (SELECT s.test_key FROM test_results s WHERE s.launch_id = $1 AND s.id IN ({l}))"
        ));
    }
    if let Some(run) = filter.job_run_id {
        let l = list(&mut binds, vec![Bind::Int(run)]);
        conds.push(format!("t.job_run_id = {l}"));
    }
    let extra: String = conds.iter().map(|c| format!(" AND {c}")).collect();
    let sql = format!(
        "SELECT t.id AS id, t.name AS name, t.status AS status, t.manual AS manual, \
         r.job_id AS job_id, t.body AS body FROM test_results t \
         LEFT JOIN job_runs r ON r.id = t.job_run_id \
         WHERE t.launch_id = $1{extra} AND {} ORDER BY t.id LIMIT {}",
        super::launches::LATEST,
        limit + 1
    );
    let rows = bind_all(sqlx::query(&sql), &binds)
        .fetch_all(&db.read)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(LatestResult {
                id: get_i64(r, "id")?,
                name: get_str(r, "name")?,
                manual: get_i64(r, "manual")? != 0,
                job_id: opt_i64(r, "job_id"),
                body: opt_str(r, "body").and_then(|b| serde_json::from_str(&b).ok()),
            })
        })
        .collect()
}

/// The test cases of a project with these identities, by identity.
pub(crate) async fn cases_by_identity(
    db: &Db,
    project_id: Id,
    identities: &[String],
) -> ServerResult<BTreeMap<String, CaseRow>> {
    super::case_last::settled(db).await?;
    let mut out = BTreeMap::new();
    for chunk in identities.chunks(500) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let binds: Vec<Bind> = std::iter::once(Bind::Int(project_id))
            .chain(chunk.iter().cloned().map(Bind::Text))
            .collect();
        let sql = format!(
            "SELECT x.identity AS identity, y.* FROM test_cases x JOIN ({CASE_SELECT}) y ON y.id = x.id \
             WHERE x.project_id = $1 AND x.identity IN ({})",
            params.join(", ")
        );
        for r in bind_all(sqlx::query(&sql), &binds)
            .fetch_all(&db.read)
            .await?
        {
            out.insert(get_str(&r, "identity")?, case_from(&r)?);
        }
    }
    Ok(out)
}

/// One job run to add to a launch: its job, parameters and plan.
pub(crate) struct RerunJobRun {
    pub(crate) job_id: Id,
    pub(crate) parameters: Vec<api::ParameterDto>,
    /// `(test case id, ref id, selector, the result a rerun runs again)`, in
    /// plan order.
    pub(crate) items: Vec<(Id, i64, String, Option<Id>)>,
}

/// Adds job runs (stage `scheduled`, uid `<prefix>-<launch>-<n>`) and their
/// plans to an existing launch, in one transaction (a rerun, or a run's scope
/// added with `--launch-id`); answers their ids in the order given.
pub(crate) async fn add_job_runs(
    db: &Db,
    launch_id: Id,
    project_id: Id,
    launch_name: &str,
    uid_prefix: &str,
    request_id: Option<&str>,
    jobs: &[RerunJobRun],
) -> ServerResult<Vec<Id>> {
    let now = now_ms();
    let mut tx = db.write.begin().await?;
    let uid = match request_id {
        Some(r) => rerun_uid(launch_id, r),
        None => {
            let n: i64 = sqlx::query(
                "SELECT COUNT(DISTINCT uid) AS n FROM job_runs WHERE launch_id = $1 AND uid LIKE $2",
            )
            .bind(launch_id)
            .bind(format!("{uid_prefix}-%"))
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            format!("{uid_prefix}-{launch_id}-{}", n + 1)
        }
    };
    let mut ids = Vec::with_capacity(jobs.len());
    for job in jobs {
        let row = sqlx::query(
            "INSERT INTO job_runs (job_id, launch_id, project_id, uid, name, url, stage, status, parameters, created_ms, modified_ms) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, 'unknown', $7, $8, $8) \
             ON CONFLICT (job_id, uid) DO NOTHING RETURNING id",
        )
        .bind(job.job_id)
        .bind(launch_id)
        .bind(project_id)
        .bind(&uid)
        .bind(clip(&format!("{launch_name} ({uid})"), MAX_NAME))
        .bind(api::stage::SCHEDULED)
        .bind(serde_json::to_string(&job.parameters).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(ServerError::Conflict(format!(
                "job runs are being added to launch {launch_id} by another request; retry"
            )));
        };
        let run_id: i64 = row.try_get("id")?;
        for (case_id, ref_id, selector, rerun_of) in &job.items {
            sqlx::query(
                "INSERT INTO job_run_plan_items (job_run_id, test_case_id, ref_id, selector, rerun_of) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_run_id, test_case_id) DO NOTHING",
            )
            .bind(run_id)
            .bind(*case_id)
            .bind(*ref_id)
            .bind(selector)
            .bind(*rerun_of)
            .execute(&mut *tx)
            .await?;
        }
        ids.push(run_id);
    }
    sqlx::query("UPDATE launches SET modified_ms = $2 WHERE id = $1")
        .bind(launch_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids)
}

/// The uid of the job runs a rerun request adds (idempotency key).
pub(crate) fn rerun_uid(launch_id: Id, request_id: &str) -> String {
    format!("rerun-{launch_id}-{request_id}")
}

/// The job runs of a launch with this uid, by id.
pub(crate) async fn job_runs_by_uid(db: &Db, launch_id: Id, uid: &str) -> ServerResult<Vec<Id>> {
    sqlx::query("SELECT id FROM job_runs WHERE launch_id = $1 AND uid = $2 ORDER BY id")
        .bind(launch_id)
        .bind(uid)
        .fetch_all(&db.write)
        .await?
        .iter()
        .map(|r| get_i64(r, "id"))
        .collect()
}

/// Whether a rerun of this launch already ran this job.
pub(crate) async fn job_rerun_in_launch(db: &Db, launch_id: Id, job_id: Id) -> ServerResult<bool> {
    Ok(sqlx::query(
        "SELECT 1 AS one FROM job_run_plan_items i JOIN job_runs r ON r.id = i.job_run_id \
         WHERE r.launch_id = $1 AND r.job_id = $2 AND i.rerun_of IS NOT NULL LIMIT 1",
    )
    .bind(launch_id)
    .bind(job_id)
    .fetch_optional(&db.read)
    .await?
    .is_some())
}

/// What reruns did to a launch; `None` before its first rerun. A test counts
/// once however often it was rerun; it changed status when its latest
/// attempt now has another status than the attempt its first rerun ran again.
pub(crate) async fn rerun_summary(
    db: &Db,
    launch_id: Id,
) -> ServerResult<Option<api::RerunSummary>> {
    let rows = sqlx::query(&format!(
        "SELECT o.test_key AS test_key, o.id AS before_id, o.status AS before, t.status AS now \
         FROM job_run_plan_items i JOIN job_runs r ON r.id = i.job_run_id \
         JOIN test_results o ON o.id = i.rerun_of \
         JOIN test_results t ON t.launch_id = o.launch_id AND t.test_key = o.test_key \
         WHERE r.launch_id = $1 AND {} ORDER BY o.id",
        super::launches::LATEST
    ))
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    // The first rerun of a test ran its earliest rerun attempt.
    let mut tests: BTreeMap<String, (String, String)> = BTreeMap::new();
    for r in &rows {
        tests
            .entry(get_str(r, "test_key")?)
            .or_insert((get_str(r, "before")?, get_str(r, "now")?));
    }
    Ok(Some(api::RerunSummary {
        rerun: tests.len() as i64,
        changed: tests.values().filter(|(b, n)| b != n).count() as i64,
    }))
}
