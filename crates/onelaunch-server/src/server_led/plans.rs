//! Test plans (explicit cases and/or a filter) and executors: the default
//! executor of a case and per-plan overrides.

use std::collections::{BTreeMap, BTreeSet};

use onelaunch_api::{self as api, Id};

use super::cases::*;
use super::*;
use crate::db::{clip, now_ms, Db, MAX_NAME};
use crate::db::{job_runs::*, plans::*, test_cases::*};
use crate::error::{ServerError, ServerResult};

/// The cases a plan selects now: its explicit cases and its filter's matches.
pub(crate) async fn plan_members(db: &Db, plan: &PlanRow) -> ServerResult<Vec<CaseRow>> {
    let mut out: BTreeMap<Id, CaseRow> = BTreeMap::new();
    for c in plan_explicit_cases(db, plan.id).await? {
        out.insert(c.id, c);
    }
    if let Some(f) = plan.filter.as_ref().filter(|f| !f.is_empty()) {
        for c in list_cases(db, plan.project_id, f, None).await?.0 {
            out.insert(c.id, c);
        }
    }
    Ok(out.into_values().collect())
}

pub(crate) async fn plan_dto(
    db: &Db,
    plan: &PlanRow,
    with_cases: bool,
) -> ServerResult<api::TestPlanDto> {
    let cases = if with_cases {
        plan_members(db, plan)
            .await?
            .iter()
            .map(CaseRow::to_dto)
            .collect()
    } else {
        Vec::new()
    };
    Ok(api::TestPlanDto {
        id: plan.id,
        project_id: plan.project_id,
        name: plan.name.clone(),
        test_case_ids: plan_case_ids(db, plan.id).await?,
        filter: plan.filter.clone(),
        test_cases: cases,
        created_date: plan.created_ms,
    })
}

pub(crate) async fn create_plan(db: &Db, req: &api::TestPlanCreate) -> ServerResult<PlanRow> {
    let name = clip(req.name.trim(), MAX_NAME);
    if name.is_empty() {
        return Err(ServerError::bad("field `name` must not be empty"));
    }
    let filter = req.filter.clone().filter(|f| !f.is_empty());
    if let Some(f) = &filter {
        validate_filter(f, "filter")?;
    }
    if req.test_case_ids.is_empty() && filter.is_none() {
        return Err(ServerError::bad(
            "a test plan needs `testCaseIds` and/or a `filter` (labels, namePattern, status)",
        ));
    }
    cases_by_ids(db, req.project_id, &req.test_case_ids, "testCaseIds").await?;
    let now = now_ms();
    let id = insert_plan(
        db,
        req.project_id,
        &name,
        filter.as_ref(),
        &req.test_case_ids,
        now,
    )
    .await?;
    tracing::info!(plan = id, project = req.project_id, "test plan created");
    Ok(PlanRow {
        id,
        project_id: req.project_id,
        name,
        filter,
        created_ms: now,
    })
}

/// Who runs a case in a run: a job, or nobody (manual).
pub(crate) struct Assignment {
    pub(crate) case: CaseRow,
    pub(crate) job_id: Option<Id>,
    pub(crate) source: &'static str,
}

pub(crate) async fn assignments(
    db: &Db,
    plan_id: Option<Id>,
    cases: Vec<CaseRow>,
) -> ServerResult<Vec<Assignment>> {
    let overrides = match plan_id {
        Some(p) => plan_executors(db, p).await?,
        None => Default::default(),
    };
    Ok(cases
        .into_iter()
        .map(|case| match overrides.get(&case.id) {
            Some(job) => Assignment {
                job_id: *job,
                case,
                source: "override",
            },
            None => Assignment {
                job_id: case.job_id,
                case,
                source: "default",
            },
        })
        .collect())
}

pub(crate) fn job_summary(job: &crate::db::job_runs::JobRow) -> api::JobSummary {
    api::JobSummary {
        id: job.id,
        name: job.name.clone(),
        kind: job.ci_type.clone(),
        url: job.url.clone(),
    }
}

pub(crate) async fn executors_dto(db: &Db, plan: &PlanRow) -> ServerResult<api::ExecutorsDto> {
    let members = plan_members(db, plan).await?;
    let mut groups: BTreeMap<Id, Vec<api::ExecutorCase>> = BTreeMap::new();
    let mut manual = Vec::new();
    for a in assignments(db, Some(plan.id), members).await? {
        match a.job_id {
            Some(j) => groups
                .entry(j)
                .or_default()
                .push(a.case.executor_case(a.source)),
            None => manual.push(a.case.executor_case(a.source)),
        }
    }
    let mut jobs = Vec::new();
    for (job_id, test_cases) in groups {
        let job = get_job(db, job_id)
            .await?
            .map(|j| job_summary(&j))
            .unwrap_or(api::JobSummary {
                id: job_id,
                name: String::new(),
                kind: None,
                url: None,
            });
        jobs.push(api::ExecutorGroup { job, test_cases });
    }
    Ok(api::ExecutorsDto {
        plan_id: plan.id,
        jobs,
        manual,
    })
}

pub(crate) async fn override_executors(
    db: &Db,
    plan: &PlanRow,
    req: &api::ExecutorOverride,
) -> ServerResult<()> {
    let modes = [req.job_id.is_some(), req.manual, req.reset];
    if modes.iter().filter(|m| **m).count() != 1 {
        return Err(ServerError::bad(
            "set exactly one of `jobId` (run by that job), `manual: true` or `reset: true` (back to the default executor)",
        ));
    }
    if let Some(j) = req.job_id {
        match get_job(db, j).await? {
            Some(job) if job.project_id == plan.project_id => {}
            _ => {
                return Err(ServerError::bad(format!(
                    "field `jobId`: job {j} not found in project {}",
                    plan.project_id
                )))
            }
        }
    }
    let members: BTreeSet<Id> = plan_members(db, plan).await?.iter().map(|c| c.id).collect();
    let mut targets: BTreeSet<Id> = BTreeSet::new();
    at_most("testCaseIds", req.test_case_ids.len(), MAX_CASE_IDS)?;
    for id in &req.test_case_ids {
        if !members.contains(id) {
            return Err(ServerError::bad(format!(
                "testCaseIds: test case {id} is not in test plan {}",
                plan.id
            )));
        }
        targets.insert(*id);
    }
    if let Some(f) = req.filter.as_ref().filter(|f| !f.is_empty()) {
        validate_filter(f, "filter")?;
        for c in list_cases(db, plan.project_id, f, None).await?.0 {
            if members.contains(&c.id) {
                targets.insert(c.id);
            }
        }
    }
    if targets.is_empty() {
        return Err(ServerError::bad(
            "no test cases of the plan selected: give `testCaseIds` and/or a `filter` that matches some of them",
        ));
    }
    let change = if req.reset {
        ExecutorChange::Reset
    } else {
        ExecutorChange::Assign(req.job_id)
    };
    set_executors(db, plan.id, targets.iter().copied(), change, now_ms()).await?;
    tracing::info!(
        plan = plan.id,
        cases = targets.len(),
        "executors overridden"
    );
    Ok(())
}
