//! Test cases: identity rules (`ALLURE_ID`/`AS_ID`, else `testCaseId`, else
//! `fullName`, else name), tracking them from uploads inside the ingest
//! transaction, and filtering them.

use std::collections::{BTreeMap, BTreeSet};

use onelaunch_api::{self as api, Id};

use super::*;
use crate::db::test_cases::*;
use crate::db::{clip, now_ms, Db, MAX_NAME};
use crate::error::{ServerError, ServerResult};

/// Labels that change from run to run and say nothing about the test.
pub(crate) const VOLATILE_LABELS: [&str; 2] = ["host", "thread"];

/// The `ALLURE_ID` label value (allure-pytest writes it as `as_id`).
pub(crate) fn allure_id_of(labels: &[api::LabelDto]) -> Option<String> {
    ["ALLURE_ID", "AS_ID"].iter().find_map(|name| {
        labels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
            .map(|l| l.value.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

pub(crate) fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A result's test-case identity: `ALLURE_ID`, else `testCaseId`, else
/// `fullName`, else name.
pub fn identity_of(r: &api::UploadTestResult) -> String {
    let id = if let Some(a) = allure_id_of(&r.labels) {
        format!("allure:{a}")
    } else if let Some(t) = non_empty(&r.test_case_id) {
        format!("tcid:{t}")
    } else if let Some(f) = non_empty(&r.full_name) {
        format!("full:{f}")
    } else {
        format!("name:{}", r.name.trim())
    };
    clip(&id, 2048)
}

/// Labels worth keeping on a test case (for filters): trimmed, without the
/// volatile ones, without repeats.
pub(crate) fn case_labels(labels: &[api::LabelDto]) -> Vec<api::LabelDto> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for l in labels {
        let name = clip(l.name.trim(), 255);
        let value = clip(l.value.trim(), 1024);
        if name.is_empty()
            || VOLATILE_LABELS
                .iter()
                .any(|v| v.eq_ignore_ascii_case(&name))
        {
            continue;
        }
        if seen.insert((name.clone(), value.clone())) {
            out.push(api::LabelDto { name, value });
        }
    }
    out
}

/// Keeps the test cases of freshly stored results up to date: called by
/// `crate::db::results::ingest_results` inside its transaction with the results it
/// inserted (`(result id, result)`). A result uploaded through a job run makes
/// that run's job the case's default executor, and moves a `scheduled` job run
/// to `in_progress`.
pub async fn track_test_cases(
    conn: &mut Conn,
    session: &crate::db::results::SessionRow,
    results: &[(Id, &api::UploadTestResult)],
) -> ServerResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let job_id = match session.job_run_id {
        Some(run) => crate::db::job_runs::start_receiving(conn, run, now).await?,
        None => None,
    };
    // One update per test case: its latest attempt in this batch.
    let mut latest: BTreeMap<String, (i64, Id, &api::UploadTestResult)> = BTreeMap::new();
    for (id, r) in results {
        let start = r.start.or(r.stop).unwrap_or(now);
        let key = identity_of(r);
        match latest.get(&key) {
            Some((s, i, _)) if (*s, *i) > (start, *id) => {}
            _ => {
                latest.insert(key, (start, *id, r));
            }
        }
    }
    let mut updates = Vec::with_capacity(latest.len());
    for (identity, (start, result_id, r)) in latest {
        let name = clip(r.name.trim(), MAX_NAME);
        let full_name = non_empty(&r.full_name).map(|f| clip(f, 4096));
        updates.push(CaseUpdate {
            identity,
            allure_id: allure_id_of(&r.labels).map(|a| clip(&a, 255)),
            name: if name.is_empty() {
                full_name.clone().unwrap_or_else(|| r.uuid.clone())
            } else {
                name
            },
            full_name,
            labels: case_labels(&r.labels),
            status: api::normalize_status(r.status.as_deref()),
            start,
            result_id,
            job_id,
        });
    }
    upsert_cases(conn, session.project_id, &updates).await?;
    Ok(())
}

pub(crate) fn status_list() -> String {
    api::STATUSES.join(", ")
}

/// Checks a filter; `field` names it in messages (`filter`, `query`).
pub(crate) fn validate_filter(f: &api::TestCaseFilter, field: &str) -> ServerResult<()> {
    at_most(
        &format!("{field}.labels"),
        f.labels.len(),
        crate::ingest::limits::MAX_LIST,
    )?;
    at_most(
        &format!("{field}.status"),
        f.status.len(),
        api::STATUSES.len(),
    )?;
    for (i, l) in f.labels.iter().enumerate() {
        if l.name.trim().is_empty() {
            return Err(ServerError::bad(format!(
                "{field}.labels[{i}].name must not be empty (expected NAME=VALUE)"
            )));
        }
    }
    for s in &f.status {
        if !api::STATUSES.contains(&s.trim().to_ascii_lowercase().as_str()) {
            return Err(ServerError::bad(format!(
                "{field}.status: unknown status {s:?}; expected one of {}",
                status_list()
            )));
        }
    }
    Ok(())
}

/// The named cases of a project, in the order asked; an unknown or foreign id
/// is refused naming `field`.
pub(crate) async fn cases_by_ids(
    db: &Db,
    project_id: Id,
    ids: &[Id],
    field: &str,
) -> ServerResult<Vec<CaseRow>> {
    super::at_most(field, ids.len(), super::MAX_CASE_IDS)?;
    crate::db::test_cases::load_cases_by_ids(db, project_id, ids, field).await
}
