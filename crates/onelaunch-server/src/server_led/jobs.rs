//! Job configuration: can-run flag, integration settings, write-only credential
//! (sealed before storage), parameters, and the prerequisites a job must meet
//! before a run.

use onelaunch_api::{self as api, Id};
use sqlx::Row;

use super::cases::*;
use super::*;
use crate::access::Scope;
use crate::db::{clip, get_i64, get_str, now_ms, opt_str, Db};
use crate::error::{ServerError, ServerResult};

/// The stored configuration of a job.
#[derive(Clone, Default)]
pub(crate) struct JobConfig {
    pub(crate) can_run: bool,
    pub(crate) integration: Option<api::IntegrationSettings>,
    pub(crate) credential: Option<String>,
    pub(crate) parameters: Vec<api::ParameterDto>,
}

impl std::fmt::Debug for JobConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobConfig")
            .field("can_run", &self.can_run)
            .field("integration", &self.integration)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .field("parameters", &self.parameters)
            .finish()
    }
}

impl JobConfig {
    fn integration_dto(&self) -> Option<api::IntegrationDto> {
        self.integration.as_ref().map(|s| api::IntegrationDto {
            kind: s.kind.clone(),
            url: s.url.clone(),
            repository: s.repository.clone(),
            workflow: s.workflow.clone(),
            git_ref: s.git_ref.clone(),
            project: s.project.clone(),
            job_path: s.job_path.clone(),
            username: s.username.clone(),
            command: s.command.clone(),
            has_credential: self.credential.is_some(),
        })
    }
}

pub(crate) async fn job_config(db: &Db, job_id: Id) -> ServerResult<JobConfig> {
    let r = sqlx::query(
        "SELECT can_run, integration, settings, credential, parameters FROM job_configs WHERE job_id = $1",
    )
    .bind(job_id)
    .fetch_optional(&db.read)
    .await?;
    let Some(r) = r else {
        return Ok(JobConfig::default());
    };
    let integration = match opt_str(&r, "integration") {
        Some(_) => serde_json::from_str(&get_str(&r, "settings")?).ok(),
        None => None,
    };
    Ok(JobConfig {
        can_run: get_i64(&r, "can_run")? != 0,
        integration,
        credential: opt_str(&r, "credential").map(|c| db.open(&c)).transpose()?,
        parameters: serde_json::from_str(&get_str(&r, "parameters")?).unwrap_or_default(),
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
    let confirmed: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM job_runs r JOIN launches l ON l.id = r.launch_id \
         WHERE r.job_id = $1 AND l.closed = 1 \
         AND EXISTS (SELECT 1 FROM test_results t WHERE t.job_run_id = r.id)",
    )
    .bind(job.id)
    .fetch_one(&db.read)
    .await?
    .try_get("n")?;
    if confirmed == 0 {
        let open = sqlx::query(
            "SELECT r.launch_id AS launch_id FROM job_runs r WHERE r.job_id = $1 \
             AND EXISTS (SELECT 1 FROM test_results t WHERE t.job_run_id = r.id) \
             ORDER BY r.id DESC LIMIT 1",
        )
        .bind(job.id)
        .fetch_optional(&db.read)
        .await?;
        out.push(match open {
            Some(r) => problem_open(&who, get_i64(&r, "launch_id")?),
            None => problem_never(&who),
        });
    }
    if cfg.integration.is_none() {
        out.push(problem_no_integration(job.id, &who));
    }
    if !cfg.can_run {
        out.push(problem_cannot_run(job.id, &who));
    }
    Ok(out)
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
        integration: cfg.integration_dto(),
        parameters: cfg.parameters.clone(),
        problems,
    })
}

/// A variable name usable as a workflow input, pipeline variable, build
/// parameter and environment variable.
pub(crate) fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 255
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
        if !valid_var_name(name) {
            return Err(ServerError::bad(format!(
                "{field}[{i}].name {name:?} is not a valid variable name (letters, digits and _, not starting with a digit)"
            )));
        }
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

/// A trimmed, non-empty setting, cut to 16 KiB.
pub(crate) fn opt_trim(s: &Option<String>) -> Option<String> {
    non_empty(s).map(|v| clip(v, 16 * 1024))
}

pub(crate) fn require(s: &Option<String>, field: &str, kind: &str) -> ServerResult<String> {
    opt_trim(s).ok_or_else(|| {
        ServerError::bad(format!(
            "field `integration.{field}` is required for a {kind} integration"
        ))
    })
}

pub(crate) fn check_url(
    url: &Option<String>,
    required: bool,
    kind: &str,
) -> ServerResult<Option<String>> {
    match opt_trim(url) {
        None if required => Err(ServerError::bad(format!(
            "field `integration.url` is required for a {kind} integration"
        ))),
        None => Ok(None),
        Some(u) => match url::Url::parse(&u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") && !p.cannot_be_a_base() => {
                Ok(Some(u.trim_end_matches('/').to_string()))
            }
            _ => Err(ServerError::bad(format!(
                "field `integration.url`: expected an http(s) base URL, got {u:?}"
            ))),
        },
    }
}

/// Validates integration settings; returns them normalised (only the fields of
/// the type) and the credential to store.
pub(crate) fn validate_integration(
    scope: &Scope,
    s: &api::IntegrationSettings,
    current: &JobConfig,
) -> ServerResult<(api::IntegrationSettings, Option<String>)> {
    let kind = s.kind.trim().to_ascii_lowercase();
    let given = opt_trim(&s.credential);
    let kept = match &current.integration {
        Some(c) if c.kind == kind => current.credential.clone(),
        _ => None,
    };
    let credential = given.or(kept);
    let need_credential = |what: &str| -> ServerResult<String> {
        credential.clone().ok_or_else(|| {
            ServerError::bad(format!(
                "field `integration.credential` ({what}) is required for a {kind} integration"
            ))
        })
    };
    let mut out = api::IntegrationSettings {
        kind: kind.clone(),
        ..Default::default()
    };
    match kind.as_str() {
        "github" => {
            let repo = require(&s.repository, "repository", &kind)?;
            let ok = repo.split('/').count() == 2
                && repo.split('/').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                });
            if !ok {
                return Err(ServerError::bad(format!(
                    "field `integration.repository`: expected owner/repo, got {repo:?}"
                )));
            }
            out.repository = Some(repo);
            out.workflow = Some(require(&s.workflow, "workflow", &kind)?);
            out.git_ref = Some(require(&s.git_ref, "ref", &kind)?);
            out.url = check_url(&s.url, false, &kind)?;
            let c = need_credential("a GitHub token allowed to dispatch workflows")?;
            return Ok((out, Some(c)));
        }
        "gitlab" => {
            out.project = Some(require(&s.project, "project", &kind)?);
            out.git_ref = Some(require(&s.git_ref, "ref", &kind)?);
            out.url = check_url(&s.url, false, &kind)?;
            let c = need_credential("a pipeline trigger token")?;
            return Ok((out, Some(c)));
        }
        "jenkins" => {
            out.url = check_url(&s.url, true, &kind)?;
            let path = require(&s.job_path, "jobPath", &kind)?;
            if path.split('/').all(|p| p.trim().is_empty()) {
                return Err(ServerError::bad(
                    "field `integration.jobPath`: expected folder/job names separated by /",
                ));
            }
            out.job_path = Some(path.trim_matches('/').to_string());
            out.username = opt_trim(&s.username);
            if out.username.is_some() {
                let c = need_credential("the Jenkins user's API token")?;
                return Ok((out, Some(c)));
            }
            return Ok((out, credential));
        }
        "command" => {
            scope.require_admin().map_err(|_| {
                ServerError::Forbidden(
                    "a `command` integration runs a command on the server host: it needs an admin token"
                        .into(),
                )
            })?;
            out.command = Some(require(&s.command, "command", &kind)?);
        }
        _ => {
            return Err(ServerError::bad(format!(
                "field `integration.type`: expected github, gitlab, jenkins or command, got {:?}",
                s.kind
            )))
        }
    }
    Ok((out, credential))
}

/// Applies a `PATCH` (absent = unchanged) or `PUT` (absent = unset).
pub(crate) async fn configure_job(
    db: &Db,
    scope: &Scope,
    job: &crate::db::job_runs::JobRow,
    update: &api::JobConfigUpdate,
    replace: bool,
) -> ServerResult<()> {
    let current = job_config(db, job.id).await?;
    let mut next = if replace {
        JobConfig::default()
    } else {
        current.clone()
    };
    if let Some(c) = update.can_run_tests {
        next.can_run = c;
    }
    match &update.integration {
        None => {}
        Some(None) => {
            next.integration = None;
            next.credential = None;
        }
        Some(Some(s)) => {
            let (settings, credential) = validate_integration(scope, s, &current)?;
            next.integration = Some(settings);
            next.credential = credential;
        }
    }
    if let Some(p) = &update.parameters {
        next.parameters = validate_parameters(p, "parameters")?;
    }
    let settings = next
        .integration
        .as_ref()
        .map(|s| serde_json::to_string(s).unwrap_or_else(|_| "{}".into()))
        .unwrap_or_else(|| "{}".into());
    sqlx::query(
        "INSERT INTO job_configs (job_id, can_run, integration, settings, credential, parameters, modified_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job_id) DO UPDATE SET \
         can_run = excluded.can_run, integration = excluded.integration, settings = excluded.settings, \
         credential = excluded.credential, parameters = excluded.parameters, modified_ms = excluded.modified_ms",
    )
    .bind(job.id)
    .bind(next.can_run as i64)
    .bind(next.integration.as_ref().map(|s| s.kind.clone()))
    .bind(settings)
    .bind(next.credential.as_deref().map(|c| db.seal(c)).transpose()?)
    .bind(serde_json::to_string(&next.parameters).unwrap_or_else(|_| "[]".into()))
    .bind(now_ms())
    .execute(&db.write)
    .await?;
    tracing::info!(
        job = job.id,
        integration = next
            .integration
            .as_ref()
            .map(|s| s.kind.as_str())
            .unwrap_or("none"),
        can_run = next.can_run,
        "job configured"
    );
    Ok(())
}
