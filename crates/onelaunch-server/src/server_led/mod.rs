//! Server-led launches: the server defines the scope, creates one launch with
//! one job run per executor job, triggers the jobs on their build servers, and
//! each job reports back into its job run (`ALLURE_JOB_RUN_ID`).
//!
//! A run checks every executor job's prerequisites, then creates the launch, the
//! job runs (stage `scheduled`, uid `plan-<launch id>`) and their test plans in
//! one transaction, and triggers the jobs. A failed trigger marks its job run
//! `run_failure` with the provider's answer; the others go on.

pub(crate) mod cases;
pub(crate) mod jobs;
pub(crate) mod manual;
pub(crate) mod plans;
pub(crate) mod rerun;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use onelaunch_api::{self as api, Id};
use serde_json::{json, Value};

use self::{jobs::*, plans::*};
use crate::access::Scope;
use crate::db::server_runs::{self, CreatedRun, NewJobRun, NewRun};
use crate::db::{clip, now_ms, MAX_NAME};
use crate::db::{job_runs::*, plans::*, test_cases::*};
use crate::error::{ServerError, ServerResult};
use crate::ingest::test_cases::non_empty;
use crate::integrations::{refused_var_name, trigger, url_approved, Trigger};
use crate::AppState;

/// Most test cases one request may name.
pub(crate) const MAX_CASE_IDS: usize = 10 * crate::ingest::limits::MAX_LIST;

/// Refuses a list longer than `max`, naming the field.
pub(crate) fn at_most(field: &str, len: usize, max: usize) -> ServerResult<()> {
    if len > max {
        return Err(ServerError::bad(format!(
            "field `{field}` has {len} entries; at most {max} are accepted"
        )));
    }
    Ok(())
}

pub(crate) fn validate_form(form: &api::LaunchForm) -> ServerResult<()> {
    if form.launch_id.is_none() && form.launch_name.trim().is_empty() {
        return Err(ServerError::bad("field `launchName` must not be empty"));
    }
    at_most("tags", form.tags.len(), crate::ingest::limits::MAX_LIST)?;
    at_most("issues", form.issues.len(), crate::ingest::limits::MAX_LIST)?;
    at_most(
        "environment",
        form.environment.len(),
        crate::ingest::limits::MAX_LIST,
    )?;
    for (i, kv) in form.environment.iter().enumerate() {
        let field = format!("environment[{i}].key");
        if api::is_secret_name(kv.key.trim()) {
            return Err(secret_refused(&field, &kv.key));
        }
        check_var_name(&field, kv.key.trim())?;
    }
    for (i, issue) in form.issues.iter().enumerate() {
        if issue.trim().is_empty() {
            return Err(ServerError::bad(format!("issues[{i}] must not be empty")));
        }
    }
    Ok(())
}

pub(crate) fn issue_value(issue: &str) -> Value {
    let issue = clip(issue.trim(), 2048);
    if issue.starts_with("http://") || issue.starts_with("https://") {
        let name = issue
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(&issue)
            .to_string();
        json!({ "name": name, "url": issue })
    } else {
        json!({ "name": issue })
    }
}

/// A project token's run variables reach a job that runs a command on the
/// server host only under names an admin declared as the job's parameters:
/// the admin decides what the command may be given, as GitHub refuses
/// undeclared workflow inputs and Jenkins ignores undeclared parameters.
pub(crate) fn check_command_variables(
    scope: &Scope,
    form: &api::LaunchForm,
    job: &JobRow,
    cfg: &JobConfig,
) -> ServerResult<()> {
    if scope.is_admin() || !cfg.runs_command() {
        return Ok(());
    }
    for (i, kv) in form.environment.iter().enumerate() {
        let name = kv.key.trim();
        if !cfg.parameters.iter().any(|p| p.name == name) {
            let declared: Vec<&str> = cfg.parameters.iter().map(|p| p.name.as_str()).collect();
            return Err(ServerError::bad(format!(
                "environment[{i}].key {name:?} is not a parameter of job {} ({}), which runs a \
                 command on the server host: a project token may set only its declared parameters \
                 ({}); an admin declares more with `onelaunch job configure {} --param NAME=DEFAULT`",
                job.id,
                job.name,
                if declared.is_empty() { "none".to_string() } else { declared.join(", ") },
                job.id
            )));
        }
    }
    Ok(())
}

/// Runs cases: checks prerequisites, stores the launch, job runs and their
/// plans in one transaction, then triggers the jobs.
pub(crate) async fn run_cases(
    state: &AppState,
    scope: &Scope,
    project_id: Id,
    plan: Option<&PlanRow>,
    cases: Vec<CaseRow>,
    form: &api::LaunchForm,
) -> ServerResult<api::ServerRunDto> {
    validate_form(form)?;
    let db = &state.db;
    let request_id = non_empty(&form.request_id).map(|r| clip(r, 255));
    if let (Some(rid), None) = (&request_id, form.launch_id) {
        if let Some(launch) = server_runs::run_by_request(db, project_id, rid).await? {
            return run_dto(state, launch).await;
        }
    }
    if cases.is_empty() {
        return Err(ServerError::bad(match plan {
            Some(p) => format!("test plan {} selects no test cases", p.id),
            None => "field `testCaseIds` must not be empty".to_string(),
        }));
    }
    let mut by_job: BTreeMap<Id, Vec<CaseRow>> = BTreeMap::new();
    let mut manual: Vec<Id> = Vec::new();
    for a in assignments(db, plan.map(|p| p.id), cases).await? {
        match a.job_id {
            Some(j) => by_job.entry(j).or_default().push(a.case),
            None => manual.push(a.case.id),
        }
    }
    // Prerequisites of every executor job; nothing is created when one fails.
    let mut jobs = Vec::new();
    let mut problems = Vec::new();
    for job_id in by_job.keys() {
        let job = get_job(db, *job_id)
            .await?
            .ok_or_else(|| ServerError::not_found("job", job_id))?;
        let cfg = job_config(db, job.id).await?;
        check_command_variables(scope, form, &job, &cfg)?;
        problems.extend(job_problems(db, &job, &cfg).await?);
        jobs.push((job, cfg));
    }
    if !problems.is_empty() {
        return Err(ServerError::PrerequisiteMissing(problems));
    }
    let environment = environment_params(&form.environment);
    if let Some(launch_id) = form.launch_id {
        let runs = rerun::added_scope(&by_job, &jobs);
        return rerun::add_to_launch(
            state,
            scope,
            project_id,
            launch_id,
            runs,
            manual,
            &environment,
        )
        .await;
    }
    let tags: Vec<String> = form
        .tags
        .iter()
        .map(|t| clip(t.trim(), 255))
        .filter(|t| !t.is_empty())
        .collect();
    let issues: Vec<Value> = form.issues.iter().map(|i| issue_value(i)).collect();
    let name = clip(form.launch_name.trim(), MAX_NAME);
    let now = now_ms();

    let assignees = manual::run_assignees(db, project_id, plan, form).await?;
    let created = server_runs::create_run(
        db,
        &NewRun {
            project_id,
            plan_id: plan.map(|p| p.id),
            request_id: request_id.as_deref(),
            name: &name,
            tags: &tags,
            issues: &issues,
            environment: &form.environment,
            manual: &manual,
            job_run_uid: planned_uid,
            jobs: jobs
                .iter()
                .map(|(job, cfg)| NewJobRun {
                    job_id: job.id,
                    parameters: params_of(cfg, &environment),
                    items: by_job
                        .get(&job.id)
                        .into_iter()
                        .flatten()
                        .map(|case| {
                            let (ref_id, selector) = case.plan_entry();
                            (case.id, ref_id, selector)
                        })
                        .collect(),
                })
                .collect(),
            now,
        },
    )
    .await?;
    let (launch_id, job_runs) = match created {
        CreatedRun::Created {
            launch_id,
            job_runs,
        } => (launch_id, job_runs),
        CreatedRun::Duplicate => {
            // A concurrent request with the same request id won: answer its launch.
            let rid = request_id.unwrap_or_default();
            let launch = server_runs::run_by_request(db, project_id, &rid)
                .await?
                .ok_or_else(|| {
                    ServerError::Conflict("the same run request is being processed; retry".into())
                })?;
            return run_dto(state, launch).await;
        }
    };
    manual::start_assignees(db, project_id, launch_id, &assignees).await?;
    tracing::info!(
        launch = launch_id,
        plan = plan.map(|p| p.id),
        job_runs = job_runs.len(),
        manual = manual.len(),
        "server-led launch created"
    );
    let runs: Vec<(Id, &JobConfig)> = job_runs
        .iter()
        .copied()
        .zip(jobs.iter().map(|(_, cfg)| cfg))
        .collect();
    trigger_job_runs(state, launch_id, project_id, &runs, &environment).await?;
    run_dto(state, launch_id).await
}

/// A job's parameters, overridden by the run variables.
pub(crate) fn params_of(
    cfg: &JobConfig,
    environment: &[api::ParameterDto],
) -> Vec<api::ParameterDto> {
    let mut params: Vec<api::ParameterDto> = cfg.parameters.clone();
    for e in environment {
        params.retain(|p| p.name != e.name);
        params.push(e.clone());
    }
    params
}

/// Run variables as job parameters (names already checked).
pub(crate) fn environment_params(environment: &[api::KeyValue]) -> Vec<api::ParameterDto> {
    environment
        .iter()
        .map(|kv| api::ParameterDto {
            name: kv.key.trim().to_string(),
            value: Some(clip(&kv.value, 4096)),
            default_value: None,
        })
        .collect()
}

/// Triggers stored job runs of a launch (`(job run, its job's configuration)`)
/// with the usual variables; a failed trigger marks its job run `run_failure`
/// with the provider's answer, the others go on.
pub(crate) async fn trigger_job_runs(
    state: &AppState,
    launch_id: Id,
    project_id: Id,
    runs: &[(Id, &JobConfig)],
    environment: &[api::ParameterDto],
) -> ServerResult<()> {
    let db = &state.db;
    let mut triggers = Vec::new();
    for (run_id, cfg) in runs {
        let run_id = *run_id;
        let mut variables: Vec<(String, String)> = vec![
            ("ALLURE_JOB_RUN_ID".into(), run_id.to_string()),
            ("ALLURE_LAUNCH_ID".into(), launch_id.to_string()),
            ("ALLURE_ENDPOINT".into(), state.public_url.clone()),
        ];
        for p in params_of(cfg, environment) {
            // Names stored before the variable rule are left out.
            if refused_var_name(&p.name).is_some() {
                tracing::warn!(job_run = run_id, variable = %p.name, "variable not passed to the job");
                continue;
            }
            if !variables.iter().any(|(k, _)| *k == p.name) {
                variables.push((p.name, p.value.unwrap_or_default()));
            }
        }
        if let Some(integration) = cfg.integration.clone() {
            let url_approved = url_approved(
                &integration,
                cfg.approved_url.as_deref(),
                &state.allowed_hosts,
            );
            triggers.push(Trigger {
                job_run_id: run_id,
                launch_id,
                project_id,
                integration,
                variables,
                url_approved,
            });
        }
    }
    let outcomes = futures::future::join_all(triggers.into_iter().map(|t| async move {
        let id = t.job_run_id;
        let kind = t.integration.kind();
        (id, kind, trigger(db, t).await)
    }))
    .await;
    for (id, kind, outcome) in outcomes {
        match outcome {
            Ok(()) => tracing::info!(job_run = id, integration = %kind, "job triggered"),
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(job_run = id, integration = %kind, error = %message, "trigger failed");
                mark_run_failure(db, id, &message, false).await?;
            }
        }
    }
    Ok(())
}

/// The uid of a run's job runs.
fn planned_uid(launch_id: Id) -> String {
    format!("plan-{launch_id}")
}

pub(crate) async fn run_dto(state: &AppState, launch_id: Id) -> ServerResult<api::ServerRunDto> {
    let db = &state.db;
    let launch = crate::db::launches::get_launch(db, launch_id)
        .await?
        .ok_or_else(|| ServerError::not_found("launch", launch_id))?;
    let (plan_id, manual_ids) = match server_runs::get_run(db, launch_id).await? {
        Some(r) => (r.plan_id, r.manual_cases),
        None => (None, Vec::new()),
    };
    let mut items = server_runs::launch_plan_items(db, launch_id).await?;
    let mut planned = server_runs::planned_scopes(db, launch_id).await?;
    let job_runs = crate::db::job_runs::launch_job_runs(db, launch_id)
        .await?
        .iter()
        .map(|r| {
            let mut job_run = r.to_dto(&state.public_url);
            job_run.planned = planned.remove(&r.id);
            api::PlannedJobRun {
                job_run,
                test_case_ids: items.remove(&r.id).unwrap_or_default(),
            }
        })
        .collect();
    let mut manual = Vec::new();
    for id in manual_ids {
        if let Some(c) = get_case(db, id).await? {
            manual.push(c.to_dto());
        }
    }
    let mut launch_dto = launch.to_dto(&state.public_url);
    launch_dto.planned = server_runs::launch_planned(db, launch_id).await?;
    Ok(api::ServerRunDto {
        launch: launch_dto,
        plan_id,
        job_runs,
        manual,
    })
}
