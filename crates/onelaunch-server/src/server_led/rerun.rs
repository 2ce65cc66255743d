//! Reruns into the same launch. For each selected test (its latest attempt)
//! the server finds the job that produced it, checks the job can run tests
//! (the prerequisites of a plan run), and adds one job run per job to the
//! launch (stage `scheduled`, uid `rerun-<launch>-<n>`) whose test plan is
//! exactly that job's selected tests, then triggers it. The new results are
//! attempts of the same tests (`db::result_rows::attempt_key` keys them by job),
//! so the latest attempt decides and the earlier ones stay visible.
//!
//! A job is proven (the plan-run prerequisite) also by the launch being
//! rerun: when the launch is closed, or an earlier rerun (which reopened it)
//! ran that job.
//!
//! Tests no job can run again (manual results, results uploaded outside a
//! job run, jobs without an integration, results of no tracked test case)
//! are listed in the answer, never dropped silently. Reopening a closed
//! launch is the caller's step between [`prepare`] and [`start`] (`closing`
//! sits beside this module).
//!
//! The same transaction adds a plan run's scope to an open launch
//! (`plan run --launch-id`, [`add_to_launch`]).

use std::collections::{BTreeMap, BTreeSet};

use onelaunch_api::{self as api, Id};

use super::jobs::*;
use super::{at_most, check_command_variables, environment_params, params_of, validate_form};
use super::{trigger_job_runs, MAX_CASE_IDS};
use crate::access::Scope;
use crate::db::job_runs::{get_job, launch_job_runs, JobRow};
use crate::db::launches::LaunchRow;
use crate::db::reruns::*;
use crate::db::server_runs;
use crate::db::test_cases::{load_cases_by_ids, CaseRow};
use crate::error::{ServerError, ServerResult};
use crate::ingest::test_cases::identity_of;
use crate::AppState;

/// A job, its configuration, and the tests it runs again (`(case, result)`).
type JobTests = (JobRow, JobConfig, Vec<(CaseRow, Id)>);

/// A checked rerun, ready to store and trigger.
pub(crate) struct RerunPlan {
    pub(crate) launch: LaunchRow,
    jobs: Vec<JobTests>,
    not_rerunnable: Vec<api::NotRerunnable>,
    environment: Vec<api::ParameterDto>,
    request_id: Option<String>,
}

impl RerunPlan {
    /// Whether a job run will be created (else only the left-out tests are
    /// answered, and nothing changes).
    pub(crate) fn runs_anything(&self) -> bool {
        !self.jobs.is_empty()
    }
}

/// The statuses a selection asks for (`failed` means failed or broken).
fn statuses(sel: &api::RerunSelection) -> ServerResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    if sel.failed {
        out.extend(api::DEFAULT_FAILURE_STATUSES.iter().map(|s| s.to_string()));
    }
    for (i, s) in sel.status.iter().enumerate() {
        let s = s.trim().to_ascii_lowercase();
        if !api::STATUSES.contains(&s.as_str()) {
            return Err(ServerError::bad(format!(
                "status[{i}] {s:?} is not a status: use one of {}",
                api::STATUSES.join(", ")
            )));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

fn not_rerunnable(r: &LatestResult, case: Option<&CaseRow>, reason: String) -> api::NotRerunnable {
    api::NotRerunnable {
        test_result_id: r.id,
        name: r.name.clone(),
        test_case_id: case.map(|c| c.id),
        job_id: r.job_id,
        reason,
    }
}

/// Selects the tests, finds their jobs and checks them; nothing is stored.
/// `job_run` narrows the selection to one job run's results
/// (`POST /api/jobrun/{id}/rerun`).
/// The idempotency key of a rerun request, checked.
pub(crate) fn request_id(given: Option<&str>) -> ServerResult<Option<String>> {
    let Some(r) = given.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if r.len() > 64
        || !r
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ServerError::bad(
            "field `requestId` must be at most 64 characters of A-Z, a-z, 0-9, `-` and `_`",
        ));
    }
    Ok(Some(r.to_string()))
}

/// The answer a rerun request with this key got, when it was already
/// stored (a retried request adds nothing).
pub(crate) async fn repeated(
    state: &AppState,
    launch: &LaunchRow,
    request_id: Option<&str>,
) -> ServerResult<Option<api::RerunDto>> {
    let Some(r) = request_id else {
        return Ok(None);
    };
    let ids = job_runs_by_uid(&state.db, launch.id, &rerun_uid(launch.id, r)).await?;
    if ids.is_empty() {
        return Ok(None);
    }
    Ok(Some(api::RerunDto {
        launch_id: launch.id,
        reopened: false,
        job_runs: planned_job_runs(state, launch.id, &ids).await?,
        not_rerunnable: Vec::new(),
    }))
}

pub(crate) async fn prepare(
    state: &AppState,
    scope: &Scope,
    launch: LaunchRow,
    sel: &api::RerunSelection,
    environment: &[api::KeyValue],
    job_run: Option<Id>,
    request_id: Option<String>,
) -> ServerResult<RerunPlan> {
    let db = &state.db;
    if sel.is_empty() && job_run.is_none() {
        return Err(ServerError::bad(
            "choose the tests to rerun: `failed`, `status`, `testCaseIds`, `testResultIds`, \
             `labels` or `jobIds` (CLI: --failed, --status, --case, --label, --job)",
        ));
    }
    let form = api::LaunchForm {
        launch_name: launch.name.clone(),
        environment: environment.to_vec(),
        ..Default::default()
    };
    validate_form(&form)?;
    let max = crate::ingest::limits::MAX_LIST;
    at_most("status", sel.status.len(), api::STATUSES.len() * 2)?;
    at_most("testCaseIds", sel.test_case_ids.len(), MAX_CASE_IDS)?;
    at_most("testResultIds", sel.test_result_ids.len(), MAX_CASE_IDS)?;
    at_most("labels", sel.labels.len(), max)?;
    at_most("jobIds", sel.job_ids.len(), max)?;
    for (i, l) in sel.labels.iter().enumerate() {
        if l.name.trim().is_empty() {
            return Err(ServerError::bad(format!(
                "labels[{i}].name must not be empty (expected NAME=VALUE)"
            )));
        }
    }
    for (i, id) in sel.test_result_ids.iter().enumerate() {
        let owner = scope.result(db, *id).await?;
        if owner.launch_id != launch.id {
            return Err(ServerError::bad(format!(
                "testResultIds[{i}]: test result {id} is not in launch {}",
                launch.id
            )));
        }
    }
    for id in &sel.job_ids {
        scope.job(db, *id).await?;
    }
    let wanted_cases: BTreeSet<Id> = if sel.test_case_ids.is_empty() {
        BTreeSet::new()
    } else {
        load_cases_by_ids(db, launch.project_id, &sel.test_case_ids, "testCaseIds")
            .await?
            .iter()
            .map(|c| c.id)
            .collect()
    };
    let filter = LatestFilter {
        statuses: statuses(sel)?,
        job_ids: sel.job_ids.clone(),
        result_ids: sel.test_result_ids.clone(),
        job_run_id: job_run,
    };
    let latest = latest_results(db, launch.id, &filter, MAX_CASE_IDS).await?;
    if latest.len() > MAX_CASE_IDS {
        return Err(ServerError::bad(format!(
            "the selection takes more than {MAX_CASE_IDS} tests of launch {}; narrow it",
            launch.id
        )));
    }
    let identities: Vec<String> = latest
        .iter()
        .filter_map(|r| r.body.as_ref().map(identity_of))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let cases = cases_by_identity(db, launch.project_id, &identities).await?;

    let mut by_job: BTreeMap<Id, Vec<(CaseRow, Id)>> = BTreeMap::new();
    let mut left_out = Vec::new();
    let mut matched = 0usize;
    for r in &latest {
        let case = r.body.as_ref().and_then(|b| cases.get(&identity_of(b)));
        if !wanted_cases.is_empty() && !case.is_some_and(|c| wanted_cases.contains(&c.id)) {
            continue;
        }
        if !sel.labels.is_empty() {
            let labels = r.body.as_ref().map(|b| b.labels.as_slice()).unwrap_or(&[]);
            let has = |want: &api::LabelDto| {
                labels.iter().any(|l| {
                    l.name.trim().eq_ignore_ascii_case(want.name.trim())
                        && l.value.trim() == want.value.trim()
                })
            };
            if !sel.labels.iter().all(has) {
                continue;
            }
        }
        matched += 1;
        match (r.manual, r.job_id, case) {
            (true, _, c) => left_out.push(not_rerunnable(
                r,
                c,
                format!(
                    "a manual result: no job runs it; record a new one by hand \
                     (`onelaunch result manual --launch-id {} …`)",
                    launch.id
                ),
            )),
            (false, None, c) => left_out.push(not_rerunnable(
                r,
                c,
                "uploaded outside a job run: no job is known to run it".to_string(),
            )),
            (false, Some(_), None) => left_out.push(not_rerunnable(
                r,
                None,
                "no test case is tracked for this result, so no test plan can select it"
                    .to_string(),
            )),
            (false, Some(job), Some(c)) => by_job.entry(job).or_default().push((c.clone(), r.id)),
        }
    }
    if matched == 0 {
        return Err(ServerError::bad(format!(
            "the selection matches no test of launch {}",
            launch.id
        )));
    }
    // Jobs without an integration cannot be triggered: their tests are
    // listed. Every other prerequisite fails the rerun, as for a plan run.
    let mut jobs = Vec::new();
    let mut problems = Vec::new();
    for (job_id, tests) in by_job {
        let job = get_job(db, job_id)
            .await?
            .ok_or_else(|| ServerError::not_found("job", job_id))?;
        let cfg = job_config(db, job.id).await?;
        if cfg.integration.is_none() {
            let who = format!("job {} ({})", job.id, job.name);
            let reason = problem_no_integration(job.id, &who);
            for (case, result) in &tests {
                if let Some(r) = latest.iter().find(|r| r.id == *result) {
                    left_out.push(not_rerunnable(r, Some(case), reason.clone()));
                }
            }
            continue;
        }
        check_command_variables(scope, &form, &job, &cfg)?;
        // The job is proven by the launch being rerun once that launch was
        // closed: when the rerun found it closed, or an earlier rerun of it
        // (which reopened it) ran this job.
        if launch.closed || job_rerun_in_launch(db, launch.id, job.id).await? {
            problems.extend(config_problems(&job, &cfg));
        } else {
            problems.extend(job_problems(db, &job, &cfg).await?);
        }
        jobs.push((job, cfg, tests));
    }
    if !problems.is_empty() {
        return Err(ServerError::PrerequisiteMissing(problems));
    }
    left_out.sort_by_key(|n| n.test_result_id);
    Ok(RerunPlan {
        launch,
        jobs,
        not_rerunnable: left_out,
        environment: environment_params(environment),
        request_id,
    })
}

/// Stores the rerun job runs and their plans in the (open) launch, triggers
/// them, and answers what was done.
pub(crate) async fn start(
    state: &AppState,
    plan: RerunPlan,
    reopened: bool,
) -> ServerResult<api::RerunDto> {
    let db = &state.db;
    let launch = &plan.launch;
    let mut ids = Vec::new();
    if plan.runs_anything() {
        let new: Vec<RerunJobRun> = plan
            .jobs
            .iter()
            .map(|(job, cfg, tests)| RerunJobRun {
                job_id: job.id,
                parameters: params_of(cfg, &plan.environment),
                items: tests
                    .iter()
                    .map(|(case, result)| {
                        let (ref_id, selector) = case.plan_entry();
                        (case.id, ref_id, selector, Some(*result))
                    })
                    .collect(),
            })
            .collect();
        ids = add_job_runs(
            db,
            launch.id,
            launch.project_id,
            &launch.name,
            "rerun",
            plan.request_id.as_deref(),
            &new,
        )
        .await?;
        tracing::info!(
            launch = launch.id,
            job_runs = ids.len(),
            tests = plan.jobs.iter().map(|j| j.2.len()).sum::<usize>(),
            not_rerunnable = plan.not_rerunnable.len(),
            "rerun created"
        );
        let runs: Vec<(Id, &JobConfig)> = ids
            .iter()
            .copied()
            .zip(plan.jobs.iter().map(|(_, cfg, _)| cfg))
            .collect();
        trigger_job_runs(
            state,
            launch.id,
            launch.project_id,
            &runs,
            &plan.environment,
        )
        .await?;
    }
    Ok(api::RerunDto {
        launch_id: launch.id,
        reopened,
        job_runs: planned_job_runs(state, launch.id, &ids).await?,
        not_rerunnable: plan.not_rerunnable,
    })
}

/// These job runs of a launch with their planned cases and scopes.
async fn planned_job_runs(
    state: &AppState,
    launch_id: Id,
    ids: &[Id],
) -> ServerResult<Vec<api::PlannedJobRun>> {
    let db = &state.db;
    let mut items = server_runs::launch_plan_items(db, launch_id).await?;
    let mut planned = server_runs::planned_scopes(db, launch_id).await?;
    Ok(launch_job_runs(db, launch_id)
        .await?
        .iter()
        .filter(|r| ids.contains(&r.id))
        .map(|r| {
            let mut job_run = r.to_dto(&state.public_url);
            job_run.planned = planned.remove(&r.id);
            api::PlannedJobRun {
                job_run,
                test_case_ids: items.remove(&r.id).unwrap_or_default(),
            }
        })
        .collect())
}

/// A run's executor jobs and their cases as job runs to add.
pub(crate) fn added_scope(
    by_job: &BTreeMap<Id, Vec<CaseRow>>,
    jobs: &[(JobRow, JobConfig)],
) -> Vec<(JobRow, JobConfig, Vec<CaseRow>)> {
    jobs.iter()
        .map(|(job, cfg)| {
            (
                job.clone(),
                cfg.clone(),
                by_job.get(&job.id).cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// `plan run --launch-id`: adds a run's job runs (uid `plan-<launch>-<n>`)
/// to an open launch of the same project instead of creating a launch, and
/// triggers them. Manual cases are answered, not stored with the launch.
pub(crate) async fn add_to_launch(
    state: &AppState,
    scope: &Scope,
    project_id: Id,
    launch_id: Id,
    jobs: Vec<(JobRow, JobConfig, Vec<CaseRow>)>,
    manual: Vec<Id>,
    environment: &[api::ParameterDto],
) -> ServerResult<api::ServerRunDto> {
    let db = &state.db;
    let launch = scope.launch(db, launch_id).await?;
    if launch.project_id != project_id {
        return Err(ServerError::bad(format!(
            "field `launchId`: launch {launch_id} belongs to another project than {project_id}"
        )));
    }
    if launch.closed {
        return Err(ServerError::LaunchClosed(launch_id));
    }
    let new: Vec<RerunJobRun> = jobs
        .iter()
        .map(|(job, cfg, cases)| RerunJobRun {
            job_id: job.id,
            parameters: params_of(cfg, environment),
            items: cases
                .iter()
                .map(|c| {
                    let (ref_id, selector) = c.plan_entry();
                    (c.id, ref_id, selector, None)
                })
                .collect(),
        })
        .collect();
    let ids = add_job_runs(db, launch.id, project_id, &launch.name, "plan", None, &new).await?;
    let runs: Vec<(Id, &JobConfig)> = ids
        .iter()
        .copied()
        .zip(jobs.iter().map(|(_, cfg, _)| cfg))
        .collect();
    trigger_job_runs(state, launch.id, project_id, &runs, environment).await?;
    let mut dto = super::run_dto(state, launch.id).await?;
    dto.job_runs.retain(|r| ids.contains(&r.job_run.id));
    dto.manual.clear();
    for id in manual {
        if let Some(c) = crate::db::test_cases::get_case(db, id).await? {
            dto.manual.push(c.to_dto());
        }
    }
    Ok(dto)
}
