//! Where results go: which launch and job run a command creates or joins.
//!
//! 1. `ALLURE_JOB_RUN_ID` (set upstream by `job-run env`, or by the server when
//!    it triggered the job): that job run and its launch.
//! 2. In CI: this CI job's own job run, inside `ALLURE_LAUNCH_ID` when given,
//!    otherwise in a launch created for it (create-or-join on the server).
//! 3. Outside CI: `ALLURE_LAUNCH_ID`, or a new launch.

use anyhow::{Context, Result};
use onelaunch_api::{self as api, ExternalRunResponse, LaunchDto};
use onelaunch_ci::{CiContext, CiOverrides, ProcessEnv};
use onelaunch_client::ClientError;

use crate::cli::{CiArgs, LaunchArgs};
use crate::config::Conn;
use crate::exit::{self, Exit};

pub fn ci_context(ci: &CiArgs) -> Option<CiContext> {
    let overrides = CiOverrides {
        ci_type: ci.ci_type.clone(),
        ci_endpoint: ci.ci_endpoint.clone(),
        job_uid: ci.job_uid.clone(),
        job_name: ci.job_name.clone(),
        job_url: ci.job_url.clone(),
        job_run_uid: ci.job_run_uid.clone(),
        job_run_name: ci.job_run_name.clone(),
        job_run_url: ci.job_run_url.clone(),
        branch: ci.job_run_branch.clone(),
        execution: ci.ci_execution.clone(),
    };
    onelaunch_ci::resolve(&overrides, &ProcessEnv)
}

pub fn split_tags(tags: Option<&str>) -> Vec<String> {
    tags.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// A readable UTC timestamp without a date library.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

fn closed_exit(id: i64) -> Exit {
    Exit::new(
        exit::LAUNCH_CLOSED,
        format!("launch {id} is closed; pass --reopen-closed-launch (or set ALLURE_REOPEN_CLOSED_LAUNCH=true) to reopen it and upload"),
    )
}

/// Fetches a launch and makes sure it is open (reopening it when allowed).
pub async fn open_launch(conn: &Conn, id: i64, reopen: bool) -> Result<LaunchDto> {
    let launch = conn
        .client
        .get_launch(id)
        .await
        .with_context(|| format!("launch {id}"))?;
    if launch.closed {
        if !reopen {
            return Err(closed_exit(id).into());
        }
        conn.client.reopen_launch(id).await?;
        eprintln!("Launch [{id}] was closed and has been reopened");
    }
    Ok(launch)
}

/// `upload/start` for this CI job: create-or-join the job and job run, in the
/// given launch or a new one.
pub async fn start_ci_job_run(
    conn: &Conn,
    ci: &CiContext,
    launch: &LaunchArgs,
) -> Result<ExternalRunResponse> {
    if let Some(id) = launch.launch_id {
        open_launch(conn, id, launch.reopen_closed_launch).await?;
    }
    let branch_param = |default: bool| -> Vec<api::ParameterDto> {
        ci.branch
            .iter()
            .map(|b| api::ParameterDto {
                name: "Branch".into(),
                value: (!default).then(|| b.clone()),
                default_value: default.then(|| b.clone()),
            })
            .collect()
    };
    let req = api::ExternalRunStart {
        project_id: conn.project_id,
        ci: Some(api::CiDto {
            kind: Some(ci.ci_type.clone()),
            name: None,
            endpoint: ci.endpoint.clone(),
        }),
        job: api::JobRef {
            id: None,
            uid: ci.job_uid.clone(),
            name: Some(ci.job_name.clone()),
            url: ci.job_url.clone(),
            parameters: branch_param(true),
        },
        job_run: api::JobRef {
            id: None,
            uid: ci.job_run_uid.clone(),
            name: Some(ci.job_run_name.clone()),
            url: ci.job_run_url.clone(),
            parameters: branch_param(false),
        },
        launch: Some(api::LaunchRef {
            id: launch.launch_id,
            name: Some(
                launch
                    .launch_name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| ci.default_launch_name.clone()),
            ),
            tags: split_tags(launch.launch_tags.as_deref()),
            autoclose: None,
        }),
    };
    match conn.client.upload_start(&req).await {
        Ok(r) => Ok(r),
        Err(ClientError::LaunchClosed(_)) if launch.reopen_closed_launch => {
            if let Some(id) = launch.launch_id {
                conn.client.reopen_launch(id).await?;
            }
            Ok(conn.client.upload_start(&req).await?)
        }
        Err(ClientError::LaunchClosed(_)) => {
            Err(closed_exit(launch.launch_id.unwrap_or_default()).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The launch and job run an upload goes into.
pub struct Target {
    pub launch: LaunchDto,
    pub job_run_id: Option<i64>,
    /// True when this command created or joined the job run itself (so it
    /// finishes it afterwards).
    pub own_job_run: bool,
}

pub async fn upload_target(
    conn: &Conn,
    job_run_id: Option<i64>,
    launch: &LaunchArgs,
    ci: &CiArgs,
) -> Result<Target> {
    upload_target_with(conn, job_run_id, launch, ci_context(ci)).await
}

/// [`upload_target`] with the CI identity already resolved (e.g. kept in a spool).
pub async fn upload_target_with(
    conn: &Conn,
    job_run_id: Option<i64>,
    launch: &LaunchArgs,
    ci: Option<CiContext>,
) -> Result<Target> {
    if let Some(id) = job_run_id {
        let run =
            conn.client.get_job_run(id).await.with_context(|| {
                format!("job run {id} (from ALLURE_JOB_RUN_ID or --job-run-id)")
            })?;
        let l = open_launch(conn, run.launch_id, launch.reopen_closed_launch).await?;
        return Ok(Target {
            launch: l,
            job_run_id: Some(id),
            own_job_run: false,
        });
    }
    if let Some(ctx) = ci {
        let r = start_ci_job_run(conn, &ctx, launch).await?;
        let l = conn.client.get_launch(r.launch_id).await?;
        return Ok(Target {
            launch: l,
            job_run_id: Some(r.job_run_id),
            own_job_run: true,
        });
    }
    if let Some(id) = launch.launch_id {
        let l = open_launch(conn, id, launch.reopen_closed_launch).await?;
        return Ok(Target {
            launch: l,
            job_run_id: None,
            own_job_run: false,
        });
    }
    let l = conn
        .client
        .create_launch(&api::LaunchCreate {
            name: launch
                .launch_name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| format!("Upload {}", utc_now())),
            project_id: conn.project_id,
            tags: split_tags(launch.launch_tags.as_deref()),
            ..Default::default()
        })
        .await?;
    Ok(Target {
        launch: l,
        job_run_id: None,
        own_job_run: false,
    })
}

/// Finds the job run of this CI job (for `job-run env` and `job-run stop`).
pub async fn find_job_run(conn: &Conn, job_run_id: Option<i64>, ci: &CiArgs) -> Result<i64> {
    if let Some(id) = job_run_id {
        return Ok(id);
    }
    let ctx = ci_context(ci).ok_or_else(|| {
        Exit::new(
            exit::NOT_FOUND,
            "no job run: set ALLURE_JOB_RUN_ID (or --job-run-id), or run inside CI after `onelaunch job-run start`",
        )
    })?;
    match conn
        .client
        .find_job_run(conn.project_id, &ctx.job_uid, &ctx.job_run_uid)
        .await?
    {
        Some(r) => Ok(r.job_run_id),
        None => Err(Exit::new(
            exit::NOT_FOUND,
            format!(
                "no job run for job {:?} run {:?} in project {}: run `onelaunch job-run start` first",
                ctx.job_uid, ctx.job_run_uid, conn.project_id
            ),
        )
        .into()),
    }
}
