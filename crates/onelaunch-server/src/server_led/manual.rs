//! Manual results: recorded into the launch outside any job run (`manual = 1`,
//! test key `manual:<case id>`), and the manual/automated statistic.

use std::collections::BTreeMap;

use onelaunch_api::{self as api, Id};
use sqlx::Row;

use super::cases::*;
use super::*;
use crate::db::test_cases::*;
use crate::db::{clip, get_i64, get_str, now_ms, opt_str, Db, MAX_NAME};
use crate::error::{ServerError, ServerResult};

/// Records manual results into a launch, outside any job run, in one
/// transaction. Each gets its own test key (`manual:<case id>`), so a case's
/// latest manual result counts once next to the automated results.
pub(crate) async fn record_manual(
    db: &Db,
    launch: &crate::db::launches::LaunchRow,
    req: &api::ManualResults,
) -> ServerResult<Vec<api::ManualResultDto>> {
    at_most(
        "results",
        req.results.len(),
        crate::ingest::limits::MAX_LIST,
    )?;
    if req.results.is_empty() {
        return Err(ServerError::bad("field `results` must not be empty"));
    }
    let mut by_id: BTreeMap<Id, CaseRow> = BTreeMap::new();
    for (i, r) in req.results.iter().enumerate() {
        let s = r.status.trim().to_ascii_lowercase();
        if !api::STATUSES.contains(&s.as_str()) {
            return Err(ServerError::bad(format!(
                "results[{i}].status: expected one of {}, got {:?}",
                status_list(),
                r.status
            )));
        }
        match (r.test_case_id, non_empty(&r.name)) {
            (Some(id), _) => {
                let c = cases_by_ids(
                    db,
                    launch.project_id,
                    &[id],
                    &format!("results[{i}].testCaseId"),
                )
                .await?
                .remove(0);
                by_id.insert(id, c);
            }
            (None, Some(_)) => {}
            (None, None) => {
                return Err(ServerError::bad(format!(
                    "results[{i}]: give `testCaseId` or `name`"
                )))
            }
        }
    }
    let now = now_ms();
    let mut tx = db.write.begin().await?;
    let closed: i64 = sqlx::query("SELECT closed FROM launches WHERE id = $1")
        .bind(launch.id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("closed")?;
    if closed != 0 {
        tx.rollback().await?;
        return Err(ServerError::launch_closed(launch.id));
    }
    let session: i64 = sqlx::query(
        "INSERT INTO sessions (project_id, launch_id, job_run_id, environment, created_ms) \
         VALUES ($1, $2, NULL, '[]', $3) RETURNING id",
    )
    .bind(launch.project_id)
    .bind(launch.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    let mut out = Vec::new();
    for r in &req.results {
        let status = api::normalize_status(Some(&r.status));
        let message = r.message.as_deref().map(|m| clip(m, crate::db::MAX_TEXT));
        let (name, full_name, labels) = match r.test_case_id.and_then(|id| by_id.get(&id)) {
            Some(c) => (c.name.clone(), c.full_name.clone(), c.labels.clone()),
            None => (
                clip(non_empty(&r.name).unwrap_or_default(), MAX_NAME),
                None,
                Vec::new(),
            ),
        };
        let uuid = format!("manual-{}-{:016x}", launch.id, rand::random::<u64>());
        let body = api::UploadTestResult {
            uuid: uuid.clone(),
            name: name.clone(),
            full_name: full_name.clone(),
            status: Some(status.to_string()),
            message: message.clone(),
            start: Some(now),
            stop: Some(now),
            duration: Some(0),
            labels: labels.clone(),
            ..Default::default()
        };
        // The case: the given one, or the one named so (created when new).
        let case_id = match r.test_case_id {
            Some(id) => {
                sqlx::query(
                    "UPDATE test_cases SET last_status = $1, last_start_ms = $2, modified_ms = $2 \
                     WHERE id = $3 AND COALESCE(last_start_ms, 0) <= $2",
                )
                .bind(status)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                let update = CaseUpdate {
                    identity: clip(&format!("name:{name}"), 2048),
                    allure_id: None,
                    name: name.clone(),
                    full_name: None,
                    labels: Vec::new(),
                    status,
                    start: now,
                    result_id: 0,
                    job_id: None,
                };
                upsert_cases(&mut tx, launch.project_id, std::slice::from_ref(&update))
                    .await?
                    .remove(0)
            }
        };
        let id: i64 = sqlx::query(
            "INSERT INTO test_results (project_id, launch_id, job_run_id, session_id, uuid, test_key, history_id, \
             test_case_id, name, full_name, status, message, trace, start_ms, stop_ms, duration_ms, body, created_ms, manual) \
             VALUES ($1, $2, NULL, $3, $4, $5, NULL, NULL, $6, $7, $8, $9, NULL, $10, $10, 0, $11, $10, 1) RETURNING id",
        )
        .bind(launch.project_id)
        .bind(launch.id)
        .bind(session)
        .bind(&uuid)
        .bind(format!("manual:{case_id}"))
        .bind(&name)
        .bind(&full_name)
        .bind(status)
        .bind(&message)
        .bind(now)
        .bind(serde_json::to_string(&body).unwrap_or_else(|_| "{}".into()))
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        sqlx::query(
            "UPDATE test_cases SET last_result_id = $1 WHERE id = $2 AND last_start_ms = $3",
        )
        .bind(id)
        .bind(case_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        out.push(api::ManualResultDto {
            id,
            test_case_id: case_id,
            name,
            status: status.to_string(),
            message,
            created_date: now,
        });
    }
    tx.commit().await?;
    tracing::info!(
        launch = launch.id,
        results = out.len(),
        "manual results recorded"
    );
    Ok(out)
}

/// Counts by status of a launch's manual (or automated) results, each test
/// counted once by its latest attempt (the same rule as the launch statistic).
pub(crate) async fn statistic_of(
    db: &Db,
    launch_id: Id,
    manual: bool,
) -> ServerResult<Vec<api::StatisticItem>> {
    let rows = sqlx::query(&format!(
        "SELECT t.status AS status, COUNT(*) AS n FROM test_results t \
         WHERE t.launch_id = $1 AND t.manual = $2 AND {} GROUP BY t.status",
        crate::db::launches::LATEST
    ))
    .bind(launch_id)
    .bind(manual as i64)
    .fetch_all(&db.read)
    .await?;
    crate::db::launches::statistic_items(&rows)
}

pub(crate) async fn manual_dto(db: &Db, launch_id: Id) -> ServerResult<api::LaunchManualDto> {
    let rows = sqlx::query(
        "SELECT id, test_key, name, status, message, created_ms FROM test_results \
         WHERE launch_id = $1 AND manual = 1 ORDER BY id",
    )
    .bind(launch_id)
    .fetch_all(&db.read)
    .await?;
    let mut results = Vec::new();
    for r in &rows {
        results.push(api::ManualResultDto {
            id: get_i64(r, "id")?,
            test_case_id: get_str(r, "test_key")?
                .strip_prefix("manual:")
                .and_then(|s| s.parse().ok())
                .unwrap_or_default(),
            name: get_str(r, "name")?,
            status: get_str(r, "status")?,
            message: opt_str(r, "message"),
            created_date: get_i64(r, "created_ms")?,
        });
    }
    let planned_ids: Vec<Id> =
        sqlx::query("SELECT manual_cases FROM server_runs WHERE launch_id = $1")
            .bind(launch_id)
            .fetch_optional(&db.read)
            .await?
            .map(|r| get_str(&r, "manual_cases"))
            .transpose()?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
    let mut planned = Vec::new();
    for id in planned_ids {
        if let Some(c) = get_case(db, id).await? {
            planned.push(c.to_dto());
        }
    }
    Ok(api::LaunchManualDto {
        launch_id,
        planned,
        results,
        statistic: statistic_of(db, launch_id, true).await?,
    })
}
