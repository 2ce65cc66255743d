//! Manual results: recorded into the launch outside any job run (`manual = 1`,
//! test key `manual:<case id>`), and the manual/automated statistic.

use std::collections::BTreeMap;

use onelaunch_api::{self as api, Id};

use super::cases::*;
use super::*;
use crate::db::test_cases::*;
use crate::db::{clip, now_ms, Db, MAX_NAME};
use crate::error::{ServerError, ServerResult};
use crate::ingest::test_cases::non_empty;
use crate::ingest::{ManualCase, ManualEntry};

/// Records manual results into a launch, outside any job run, in one
/// transaction (`ingest::manual_results`). Each gets its own test key (`manual:<case id>`), so a case's
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
    let mut entries = Vec::with_capacity(req.results.len());
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
            labels,
            ..Default::default()
        };
        // The case: the given one, or the one named so (created when new).
        let case = match r.test_case_id {
            Some(id) => ManualCase::Known(id),
            None => ManualCase::Named(CaseUpdate {
                identity: clip(&format!("name:{name}"), 2048),
                allure_id: None,
                name: name.clone(),
                full_name: None,
                labels: Vec::new(),
                status,
                start: now,
                result_id: 0,
                job_id: None,
            }),
        };
        entries.push(ManualEntry {
            case,
            result: crate::db::results::ManualResultRow {
                uuid,
                name,
                full_name,
                status,
                message,
                at_ms: now,
                body,
            },
        });
    }
    let out = crate::ingest::manual_results(db, launch, &entries).await?;
    tracing::info!(
        launch = launch.id,
        results = out.len(),
        "manual results recorded"
    );
    Ok(out)
}

pub(crate) async fn manual_dto(db: &Db, launch_id: Id) -> ServerResult<api::LaunchManualDto> {
    let results = crate::db::results::manual_results(db, launch_id).await?;
    let mut planned = Vec::new();
    let planned_ids = crate::db::server_runs::get_run(db, launch_id)
        .await?
        .map(|run| run.manual_cases)
        .unwrap_or_default();
    for id in planned_ids {
        if let Some(c) = get_case(db, id).await? {
            planned.push(c.to_dto());
        }
    }
    Ok(api::LaunchManualDto {
        launch_id,
        planned,
        results,
        statistic: crate::db::launches::statistic(db, launch_id, Some(true)).await?,
    })
}
