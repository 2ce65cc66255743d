//! Job configuration rows (`job_configs`: can-run flag, integration settings as
//! JSON, the credential sealed, parameters) and the evidence a job has run
//! before (its job runs with results).

use onelaunch_api::{self as api, Id};
use sqlx::Row;

use super::*;
use crate::error::ServerResult;

/// A stored job configuration. The credential stays sealed here: callers seal
/// and open it (`Db::seal`, `Db::open`).
#[derive(Clone, Default)]
pub(crate) struct JobConfigRow {
    pub(crate) can_run: bool,
    /// The settings JSON, when an integration is configured.
    pub(crate) settings: Option<String>,
    pub(crate) sealed_credential: Option<String>,
    pub(crate) parameters: Vec<api::ParameterDto>,
    /// The provider URL an admin set (see `integrations::url_approved`).
    pub(crate) approved_url: Option<String>,
}

/// What to store for a job (replacing its previous configuration).
pub(crate) struct JobConfigWrite<'a> {
    pub(crate) can_run: bool,
    /// The integration type and its settings JSON; `None` = no integration.
    pub(crate) integration: Option<(&'a str, String)>,
    pub(crate) sealed_credential: Option<String>,
    pub(crate) parameters: &'a [api::ParameterDto],
    pub(crate) approved_url: Option<&'a str>,
}

/// The configuration of a job; `None` when it was never configured.
pub(crate) async fn get_job_config(db: &Db, job_id: Id) -> ServerResult<Option<JobConfigRow>> {
    let r = sqlx::query(
        "SELECT can_run, integration, settings, credential, parameters, approved_url FROM job_configs \
         WHERE job_id = $1",
    )
    .bind(job_id)
    .fetch_optional(&db.read)
    .await?;
    let Some(r) = r else {
        return Ok(None);
    };
    let settings = match opt_str(&r, "integration") {
        Some(_) => Some(get_str(&r, "settings")?),
        None => None,
    };
    Ok(Some(JobConfigRow {
        can_run: get_i64(&r, "can_run")? != 0,
        settings,
        sealed_credential: opt_str(&r, "credential"),
        parameters: serde_json::from_str(&get_str(&r, "parameters")?).unwrap_or_default(),
        approved_url: opt_str(&r, "approved_url"),
    }))
}

/// Stores a job's configuration (insert or replace).
pub(crate) async fn put_job_config(
    db: &Db,
    job_id: Id,
    cfg: &JobConfigWrite<'_>,
) -> ServerResult<()> {
    let (kind, settings) = match &cfg.integration {
        Some((kind, settings)) => (Some(*kind), settings.as_str()),
        None => (None, "{}"),
    };
    sqlx::query(
        "INSERT INTO job_configs (job_id, can_run, integration, settings, credential, parameters, \
         approved_url, modified_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (job_id) \
         DO UPDATE SET can_run = excluded.can_run, integration = excluded.integration, \
         settings = excluded.settings, credential = excluded.credential, \
         parameters = excluded.parameters, approved_url = excluded.approved_url, \
         modified_ms = excluded.modified_ms",
    )
    .bind(job_id)
    .bind(cfg.can_run as i64)
    .bind(kind)
    .bind(settings)
    .bind(cfg.sealed_credential.as_deref())
    .bind(serde_json::to_string(cfg.parameters).unwrap_or_else(|_| "[]".into()))
    .bind(cfg.approved_url)
    .bind(now_ms())
    .execute(&db.write)
    .await?;
    // The key that sealed it, checked at the next start (`backup::load_key`).
    if let (Some(_), Some(key)) = (&cfg.sealed_credential, &db.secret_key) {
        super::backup::set_key_fingerprint(db, &key.fingerprint()).await?;
    }
    Ok(())
}

/// Job runs of the job that brought results into a launch since closed.
pub(crate) async fn confirmed_runs(db: &Db, job_id: Id) -> ServerResult<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM job_runs r JOIN launches l ON l.id = r.launch_id \
         WHERE r.job_id = $1 AND l.closed = 1 \
         AND EXISTS (SELECT 1 FROM test_results t WHERE t.job_run_id = r.id)",
    )
    .bind(job_id)
    .fetch_one(&db.read)
    .await?
    .try_get("n")?)
}

/// The launch of the job's latest job run that brought results, if any.
pub(crate) async fn latest_launch_with_results(db: &Db, job_id: Id) -> ServerResult<Option<Id>> {
    sqlx::query(
        "SELECT r.launch_id AS launch_id FROM job_runs r WHERE r.job_id = $1 \
         AND EXISTS (SELECT 1 FROM test_results t WHERE t.job_run_id = r.id) \
         ORDER BY r.id DESC LIMIT 1",
    )
    .bind(job_id)
    .fetch_optional(&db.read)
    .await?
    .map(|r| get_i64(&r, "launch_id"))
    .transpose()
}
