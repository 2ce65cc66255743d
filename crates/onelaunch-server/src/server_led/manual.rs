//! Manual results: recorded into the launch outside any job run (`manual = 1`,
//! test key `manual:<case id>`), and the manual/automated statistic.

use std::collections::BTreeMap;

use onelaunch_api::{self as api, Id};

use super::cases::*;
use super::*;
use crate::db::manual::{plan_assignees, set_plan_assignee, MAX_ASSIGNEE};
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
        if let Some(a) = &r.assignee {
            check_assignee(&format!("results[{i}].assignee"), a)?;
        }
        if let Some(d) = r.duration_ms {
            if !(0..=MAX_DURATION_MS).contains(&d) {
                return Err(ServerError::bad(format!(
                    "results[{i}].durationMs: expected 0 to {MAX_DURATION_MS} milliseconds, got {d}"
                )));
            }
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
        let duration = r.duration_ms.unwrap_or(0);
        let recorded_by = r
            .assignee
            .as_deref()
            .and_then(trimmed)
            .map(|a| clip(a, MAX_ASSIGNEE));
        let uuid = format!("manual-{}-{:016x}", launch.id, rand::random::<u64>());
        let body = api::UploadTestResult {
            uuid: uuid.clone(),
            name: name.clone(),
            full_name: full_name.clone(),
            status: Some(status.into()),
            message: message.clone(),
            start: Some(now),
            stop: Some(now + duration),
            duration: Some(duration),
            labels,
            ..Default::default()
        };
        // The case: the given one, or the one named so (created when new).
        let case = match r.test_case_id {
            Some(id) => ManualCase::Known(id),
            None => ManualCase::Named(CaseFacts::new(
                clip(&format!("name:{name}"), 2048),
                None,
                name.clone(),
                None,
                &[] as &[api::LabelDto],
                status,
            )),
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
                duration_ms: duration,
                recorded_by,
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

/// The longest duration a manual result may state: a week.
const MAX_DURATION_MS: i64 = 7 * 24 * 3_600_000;

/// The text trimmed, `None` when blank.
fn trimmed(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// An assignee is free text of at most [`MAX_ASSIGNEE`] characters without
/// control characters.
fn check_assignee(field: &str, a: &str) -> ServerResult<()> {
    if a.chars().count() > MAX_ASSIGNEE {
        return Err(ServerError::bad(format!(
            "{field}: at most {MAX_ASSIGNEE} characters"
        )));
    }
    if a.chars().any(char::is_control) {
        return Err(ServerError::bad(format!(
            "{field}: control characters are not allowed"
        )));
    }
    Ok(())
}

/// Validates assignments (cases of the project, assignees) into
/// `(case, assignee)` pairs; an empty assignee takes the case back.
async fn validated(
    db: &Db,
    project_id: Id,
    field: &str,
    list: &[api::ManualAssignment],
) -> ServerResult<Vec<(Id, Option<String>)>> {
    at_most(field, list.len(), crate::ingest::limits::MAX_LIST)?;
    let ids: Vec<Id> = list.iter().map(|a| a.test_case_id).collect();
    cases_by_ids(db, project_id, &ids, &format!("{field}[].testCaseId")).await?;
    let mut out = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        check_assignee(&format!("{field}[{i}].assignee"), &a.assignee)?;
        out.push((a.test_case_id, trimmed(&a.assignee).map(str::to_string)));
    }
    Ok(out)
}

/// `POST /api/launch/{id}/manual/assignee`: gives manual cases of a launch
/// to people (any case of the project; an empty assignee takes one back).
pub(crate) async fn assign(
    db: &Db,
    launch: &crate::db::launches::LaunchRow,
    req: &api::ManualAssignments,
    by: &str,
) -> ServerResult<()> {
    if req.assignments.is_empty() {
        return Err(ServerError::bad("field `assignments` must not be empty"));
    }
    let list = validated(db, launch.project_id, "assignments", &req.assignments).await?;
    crate::ingest::manual_assign(db, launch.project_id, launch.id, &list, Some(by)).await
}

/// `PUT /api/testplan/{id}/manual-assignee`: a plan's default assignees,
/// copied into every launch the plan runs.
pub(crate) async fn set_plan_assignees(
    db: &Db,
    plan: &crate::db::plans::PlanRow,
    req: &api::ManualAssignments,
) -> ServerResult<api::ManualAssignments> {
    let list = validated(db, plan.project_id, "assignments", &req.assignments).await?;
    for (case_id, assignee) in &list {
        set_plan_assignee(db, plan.id, *case_id, assignee.as_deref()).await?;
    }
    plan_assignees_dto(db, plan.id).await
}

pub(crate) async fn plan_assignees_dto(
    db: &Db,
    plan_id: Id,
) -> ServerResult<api::ManualAssignments> {
    Ok(api::ManualAssignments {
        assignments: plan_assignees(db, plan_id)
            .await?
            .into_iter()
            .map(|(test_case_id, assignee)| api::ManualAssignment {
                test_case_id,
                assignee,
            })
            .collect(),
    })
}

/// The assignees a run starts with: the plan's defaults, then the run
/// form's `manualAssignees` over them (validated before anything is created).
pub(crate) async fn run_assignees(
    db: &Db,
    project_id: Id,
    plan: Option<&crate::db::plans::PlanRow>,
    form: &api::LaunchForm,
) -> ServerResult<Vec<(Id, Option<String>)>> {
    let mut out: BTreeMap<Id, Option<String>> = BTreeMap::new();
    if let Some(p) = plan {
        out.extend(
            plan_assignees(db, p.id)
                .await?
                .into_iter()
                .map(|(c, a)| (c, Some(a))),
        );
    }
    if !form.manual_assignees.is_empty() {
        out.extend(validated(db, project_id, "manualAssignees", &form.manual_assignees).await?);
    }
    Ok(out.into_iter().collect())
}

/// Stores a new run's assignees (see [`run_assignees`]).
pub(crate) async fn start_assignees(
    db: &Db,
    project_id: Id,
    launch_id: Id,
    list: &[(Id, Option<String>)],
) -> ServerResult<()> {
    if list.is_empty() {
        return Ok(());
    }
    crate::ingest::manual_assign(db, project_id, launch_id, list, Some("run")).await
}

/// `?assignee=` and `?state=left|done` of `GET /api/launch/{id}/manual`.
#[derive(Debug, Default, Clone)]
pub(crate) struct ManualFilter {
    pub(crate) assignee: Option<String>,
    /// `Some(true)`: only cases with a result; `Some(false)`: only cases left.
    pub(crate) done: Option<bool>,
}

impl ManualFilter {
    pub(crate) fn parse(assignee: Option<&str>, state: Option<&str>) -> ServerResult<Self> {
        let done = match state.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some("left") => Some(false),
            Some("done") => Some(true),
            Some(other) => {
                return Err(ServerError::bad(format!(
                    "state {other:?}: expected left or done"
                )))
            }
        };
        Ok(ManualFilter {
            assignee: assignee.and_then(trimmed).map(str::to_string),
            done,
        })
    }
}

/// The most manual cases a launch's manual view lists.
const MAX_MANUAL_CASES: usize = 2000;

/// Every manual case of a launch (planned by hand, assigned, or with a
/// manual result) with its assignee and latest result, and the progress per
/// assignee (unassigned last).
pub(crate) async fn manual_cases(
    db: &Db,
    launch_id: Id,
    planned: &[api::TestCaseDto],
    results: &[api::ManualResultDto],
) -> ServerResult<(Vec<api::ManualCaseState>, Vec<api::AssigneeProgress>)> {
    let assigned = crate::db::manual::assignments(db, launch_id).await?;
    let mut order: Vec<Id> = Vec::new();
    let mut states: BTreeMap<Id, api::ManualCaseState> = BTreeMap::new();
    let mut add = |id: Id, name: Option<String>, order: &mut Vec<Id>| {
        let e = states.entry(id).or_insert_with(|| {
            order.push(id);
            api::ManualCaseState {
                test_case_id: id,
                name: String::new(),
                assignee: None,
                status: None,
                result_id: None,
                attempts: 0,
            }
        });
        if let Some(n) = name {
            e.name = n;
        }
    };
    for c in planned {
        add(
            c.id,
            Some(c.full_name.clone().unwrap_or_else(|| c.name.clone())),
            &mut order,
        );
    }
    for id in assigned.keys() {
        add(*id, None, &mut order);
    }
    for r in results {
        add(r.test_case_id, None, &mut order);
    }
    for r in results {
        if let Some(s) = states.get_mut(&r.test_case_id) {
            s.status = Some(r.status.clone());
            s.result_id = Some(r.id);
            s.attempts += 1;
            if s.name.is_empty() {
                s.name = r.name.clone();
            }
        }
    }
    let mut out = Vec::with_capacity(order.len().min(MAX_MANUAL_CASES));
    for id in order.into_iter().take(MAX_MANUAL_CASES) {
        let mut s = states.remove(&id).unwrap_or_else(|| unreachable!());
        s.assignee = assigned.get(&id).cloned();
        if s.name.is_empty() {
            s.name = match get_case(db, id).await? {
                Some(c) => c.full_name.unwrap_or(c.name),
                None => format!("test case {id}"),
            };
        }
        out.push(s);
    }
    let mut progress: BTreeMap<(bool, Option<String>), (i64, i64)> = BTreeMap::new();
    for s in &out {
        let e = progress
            .entry((s.assignee.is_none(), s.assignee.clone()))
            .or_default();
        e.1 += 1;
        if s.status.is_some() {
            e.0 += 1;
        }
    }
    let progress = progress
        .into_iter()
        .map(|((_, assignee), (done, total))| api::AssigneeProgress {
            assignee,
            done,
            total,
        })
        .collect();
    Ok((out, progress))
}

pub(crate) async fn manual_dto(
    db: &Db,
    launch_id: Id,
    filter: &ManualFilter,
) -> ServerResult<api::LaunchManualDto> {
    let mut results = crate::db::results::manual_results(db, launch_id).await?;
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
    let (mut cases, progress) = manual_cases(db, launch_id, &planned, &results).await?;
    cases.retain(|c| {
        filter
            .assignee
            .as_ref()
            .is_none_or(|a| c.assignee.as_ref() == Some(a))
            && filter.done.is_none_or(|d| c.status.is_some() == d)
    });
    if filter.assignee.is_some() || filter.done.is_some() {
        let kept: std::collections::BTreeSet<Id> = cases.iter().map(|c| c.test_case_id).collect();
        results.retain(|r| kept.contains(&r.test_case_id));
        planned.retain(|c| kept.contains(&c.id));
    }
    Ok(api::LaunchManualDto {
        launch_id,
        planned,
        results,
        cases,
        progress,
        statistic: crate::db::launches::statistic(db, launch_id, Some(true)).await?,
    })
}
