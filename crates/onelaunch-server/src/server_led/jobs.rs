//! Job configuration: can-run flag, integration settings, write-only credential
//! (sealed before storage), parameters, and the prerequisites a job must meet
//! before a run.

use onelaunch_api::{self as api, Id};

use super::*;
use crate::access::Scope;
use crate::db::job_configs::*;
use crate::db::{clip, Db};
use crate::error::{ServerError, ServerResult};
use crate::integrations::{refused_var_name, requested_kind, url_approved, Integration};
use crate::AppState;

/// The configuration of a job, its credential opened (`Debug` never shows it).
#[derive(Debug, Clone, Default)]
pub(crate) struct JobConfig {
    pub(crate) can_run: bool,
    pub(crate) integration: Option<Integration>,
    pub(crate) parameters: Vec<api::ParameterDto>,
    /// The provider URL an admin set; see [`url_approved`].
    pub(crate) approved_url: Option<String>,
}

impl JobConfig {
    /// Whether the integration runs a command on the server host.
    pub(crate) fn runs_command(&self) -> bool {
        matches!(self.integration, Some(Integration::Command(_)))
    }
}

pub(crate) async fn job_config(db: &Db, job_id: Id) -> ServerResult<JobConfig> {
    let Some(row) = get_job_config(db, job_id).await? else {
        return Ok(JobConfig::default());
    };
    let credential = row
        .sealed_credential
        .as_deref()
        .map(|c| db.open(c))
        .transpose()?;
    Ok(JobConfig {
        can_run: row.can_run,
        integration: row
            .settings
            .as_deref()
            .and_then(Integration::from_settings_json)
            .map(|i| i.with_credential(credential)),
        parameters: row.parameters,
        approved_url: row.approved_url,
    })
}

// Prerequisite messages (sent with the code `prerequisite_missing`).
pub(crate) fn problem_never(who: &str) -> String {
    format!(
        "{who} has never uploaded results from its pipeline: run the pipeline once \
         with `onelaunch upload` so the server knows the job works"
    )
}

pub(crate) fn problem_open(who: &str, launch_id: Id) -> String {
    format!(
        "{who} has uploaded results only into launches that are still open: finish launch \
         {launch_id} (`onelaunch launch close {launch_id}`) so the job counts as proven"
    )
}

pub(crate) fn problem_no_integration(job_id: Id, who: &str) -> String {
    format!(
        "{who} has no build-server integration: configure one with `onelaunch job configure \
         {job_id} --integration github|gitlab|jenkins|command …` (PATCH /api/job/{job_id})"
    )
}

pub(crate) fn problem_cannot_run(job_id: Id, who: &str) -> String {
    format!(
        "{who} is not allowed to run tests: enable it with \
         `onelaunch job configure {job_id} --can-run-tests true`"
    )
}

/// Why the server cannot trigger a job now; one distinct message per missing
/// prerequisite, each naming the job and how to fix it.
pub(crate) async fn job_problems(
    db: &Db,
    job: &crate::db::job_runs::JobRow,
    cfg: &JobConfig,
) -> ServerResult<Vec<String>> {
    let who = format!("job {} ({})", job.id, job.name);
    let mut out = Vec::new();
    if confirmed_runs(db, job.id).await? == 0 {
        out.push(match latest_launch_with_results(db, job.id).await? {
            Some(launch_id) => problem_open(&who, launch_id),
            None => problem_never(&who),
        });
    }
    out.extend(config_problems(job, cfg));
    Ok(out)
}

/// The prerequisites the job's configuration misses (integration, can run).
pub(crate) fn config_problems(job: &crate::db::job_runs::JobRow, cfg: &JobConfig) -> Vec<String> {
    let who = format!("job {} ({})", job.id, job.name);
    let mut out = Vec::new();
    if cfg.integration.is_none() {
        out.push(problem_no_integration(job.id, &who));
    }
    if !cfg.can_run {
        out.push(problem_cannot_run(job.id, &who));
    }
    out
}

pub(crate) async fn job_config_dto(
    db: &Db,
    job: &crate::db::job_runs::JobRow,
) -> ServerResult<api::JobConfigDto> {
    let cfg = job_config(db, job.id).await?;
    let problems = job_problems(db, job, &cfg).await?;
    Ok(api::JobConfigDto {
        id: job.id,
        external_id: job.uid.clone(),
        name: job.name.clone(),
        kind: job.ci_type.clone(),
        url: job.url.clone(),
        project_id: job.project_id,
        can_run_tests: cfg.can_run,
        integration: cfg.integration.as_ref().map(Integration::to_dto),
        parameters: cfg.parameters.clone(),
        problems,
    })
}

/// Checks a run variable or job parameter name: usable as a workflow input,
/// pipeline variable, build parameter and environment variable, and not one
/// that changes how a program runs (see `integrations::refused_var_name`).
/// The error names the field: `environment[2].key "LD_PRELOAD" is refused: …`.
pub(crate) fn check_var_name(field: &str, name: &str) -> ServerResult<()> {
    match refused_var_name(name) {
        None => Ok(()),
        Some(why) => Err(ServerError::bad(format!("{field} {name:?} {why}"))),
    }
}

/// Parameters and run variables are shown by the API: secrets belong in the CI
/// system's own secret store (or the integration's write-only credential).
pub(crate) fn secret_refused(field: &str, name: &str) -> ServerError {
    ServerError::bad(format!(
        "{field} {:?} looks like a secret; values here are stored and shown, so keep secrets \
         in the CI system's secret store",
        name.trim()
    ))
}

pub(crate) fn validate_parameters(
    params: &[api::ParameterDto],
    field: &str,
) -> ServerResult<Vec<api::ParameterDto>> {
    at_most(field, params.len(), crate::ingest::limits::MAX_LIST)?;
    let mut out: Vec<api::ParameterDto> = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let name = p.name.trim();
        if api::is_secret_name(name) {
            return Err(secret_refused(&format!("{field}[{i}].name"), name));
        }
        check_var_name(&format!("{field}[{i}].name"), name)?;
        let value = p
            .value
            .clone()
            .or_else(|| p.default_value.clone())
            .unwrap_or_default();
        out.retain(|o| o.name != name);
        out.push(api::ParameterDto {
            name: name.to_string(),
            value: Some(clip(&value, 4096)),
            default_value: None,
        });
    }
    Ok(out)
}

/// Validates integration settings (see [`Integration::validate`]); a `command`
/// runs on the server host, so configuring one needs an admin token, and a
/// project token may set a provider URL only when it is approved: the one an
/// admin set, or one whose host the admin allowed (`--allow-integration-host`).
pub(crate) fn validate_integration(
    state: &AppState,
    scope: &Scope,
    s: &api::IntegrationSettings,
    current: &JobConfig,
) -> ServerResult<Integration> {
    if requested_kind(s) == "command" {
        scope.require_admin().map_err(|_| {
            ServerError::Forbidden(
                "a `command` integration runs a command on the server host: it needs an admin token"
                    .into(),
            )
        })?;
    }
    let next = Integration::validate(s, current.integration.as_ref())?;
    if !scope.is_admin()
        && !url_approved(&next, current.approved_url.as_deref(), &state.allowed_hosts)
    {
        return Err(ServerError::Forbidden(format!(
            "field `integration.url`: {:?} is not an approved provider address; a project token may \
             set only URLs whose host an admin allowed (`onelaunch server --allow-integration-host`), \
             otherwise an admin token sets it",
            next.url().unwrap_or_default()
        )));
    }
    Ok(next)
}

/// Applies a `PATCH` (absent = unchanged) or `PUT` (absent = unset).
///
/// The parameters of a job that runs a `command` (before or after the
/// change) become that command's environment on the server host: changing
/// them needs an admin token. A URL set with an admin token is recorded as
/// approved; one set with a project token is not (it is called only while its
/// host stays allowed).
pub(crate) async fn configure_job(
    state: &AppState,
    scope: &Scope,
    job: &crate::db::job_runs::JobRow,
    update: &api::JobConfigUpdate,
    replace: bool,
) -> ServerResult<()> {
    let db = &state.db;
    let current = job_config(db, job.id).await?;
    let mut next = if replace {
        JobConfig {
            approved_url: current.approved_url.clone(),
            ..JobConfig::default()
        }
    } else {
        current.clone()
    };
    if let Some(c) = update.can_run_tests {
        next.can_run = c;
    }
    match &update.integration {
        None => {}
        Some(None) => next.integration = None,
        Some(Some(s)) => next.integration = Some(validate_integration(state, scope, s, &current)?),
    }
    if let Some(p) = &update.parameters {
        next.parameters = validate_parameters(p, "parameters")?;
    }
    if next.parameters != current.parameters
        && (current.runs_command() || next.runs_command())
        && !scope.is_admin()
    {
        return Err(ServerError::Forbidden(format!(
            "job {} runs a command on the server host and its parameters are that command's \
             environment: changing them needs an admin token",
            job.id
        )));
    }
    if scope.is_admin() {
        if let Some(url) = next.integration.as_ref().and_then(Integration::url) {
            next.approved_url = Some(url.to_string());
        }
    }
    let sealed_credential = next
        .integration
        .as_ref()
        .and_then(Integration::credential)
        .map(|c| db.seal(c))
        .transpose()?;
    put_job_config(
        db,
        job.id,
        &JobConfigWrite {
            can_run: next.can_run,
            integration: next
                .integration
                .as_ref()
                .map(|i| (i.kind(), i.settings_json())),
            sealed_credential,
            parameters: &next.parameters,
            approved_url: next.approved_url.as_deref(),
        },
    )
    .await?;
    tracing::info!(
        job = job.id,
        integration = next
            .integration
            .as_ref()
            .map(Integration::kind)
            .unwrap_or("none"),
        can_run = next.can_run,
        "job configured"
    );
    Ok(())
}
