//! Where results go: which launch and job run a command creates or joins.
//!
//! 1. `ALLURE_JOB_RUN_ID` (set upstream by `job-run env`, or by the server when
//!    it triggered the job): that job run and its launch.
//! 2. In CI: this CI job's own job run, inside `ALLURE_LAUNCH_ID` when given,
//!    otherwise in a launch created for it (create-or-join on the server).
//! 3. Outside CI: `ALLURE_LAUNCH_ID`, or a new launch.
//!
//! It works on resolved settings (`settings.rs`), never on clap types.

use anyhow::{Context, Result};
use onelaunch_api::{self as api, ExternalRunResponse, LaunchDto};
use onelaunch_ci::CiContext;
use onelaunch_client::ClientError;

use crate::config::Conn;
use crate::exit::{self, Exit};
use crate::settings::LaunchChoice;

/// The current time as `2025-01-06 09:05 UTC`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    crate::output::utc_minutes(secs)
}

fn closed_exit(id: i64) -> Exit {
    Exit::new(
        exit::LAUNCH_CLOSED,
        format!("launch {id} is closed; pass --reopen-closed-launch (or set ALLURE_REOPEN_CLOSED_LAUNCH=true) to reopen it and upload"),
    )
}

/// Fetches a launch and makes sure it is open (reopening it when allowed).
pub(crate) async fn open_launch(conn: &Conn, id: i64, reopen: bool) -> Result<LaunchDto> {
    let launch = conn
        .client
        .get_launch(id)
        .await
        .with_context(|| format!("launch {id}"))?;
    if launch.closed {
        if !reopen {
            return Err(closed_exit(id).into());
        }
        reopen_launch(conn, id).await?;
    }
    Ok(launch)
}

/// Reopens a closed launch the user allowed to be reopened, and says so.
async fn reopen_launch(conn: &Conn, id: i64) -> Result<()> {
    conn.client.reopen_launch(id).await?;
    eprintln!("Launch [{id}] was closed and has been reopened");
    Ok(())
}

/// `upload/start` for this CI job: create-or-join the job and job run, in the
/// given launch or a new one. `implicit` when an upload starts it (not
/// `job-run start`): such a job run is done when its uploads' sessions are
/// all closed; one `job-run start` started is done when it is stopped.
pub(crate) async fn start_ci_job_run(
    conn: &Conn,
    ci: &CiContext,
    launch: &LaunchChoice,
    implicit: bool,
) -> Result<ExternalRunResponse> {
    // No look at the launch first: the start refuses a closed launch
    // (`LaunchClosed`, reopened below when allowed) and names a missing one.
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
            id: launch.id,
            name: Some(
                launch
                    .name
                    .clone()
                    .unwrap_or_else(|| ci.default_launch_name.clone()),
            ),
            tags: launch.tags.clone(),
            autoclose: None,
        }),
        implicit,
    };
    match conn.client.upload_start(&req).await {
        Ok(r) => Ok(r),
        Err(ClientError::LaunchClosed(_)) if launch.reopen_closed_launch => {
            if let Some(id) = launch.id {
                reopen_launch(conn, id).await?;
            }
            Ok(conn.client.upload_start(&req).await?)
        }
        Err(ClientError::LaunchClosed(_)) => Err(closed_exit(launch.id.unwrap_or_default()).into()),
        Err(e) => Err(e.into()),
    }
}

/// The launch a job-run start answered: a onelaunch server sends its name
/// and page with the answer; another server is asked for the launch.
pub(crate) async fn started_launch(conn: &Conn, r: &ExternalRunResponse) -> Result<LaunchDto> {
    match &r.launch_name {
        Some(name) => Ok(LaunchDto {
            id: r.launch_id,
            name: name.clone(),
            project_id: r.project_id,
            url: r.launch_url.clone(),
            ..Default::default()
        }),
        None => Ok(conn.client.get_launch(r.launch_id).await?),
    }
}

/// The launch and job run an upload goes into.
pub(crate) struct Target {
    pub(crate) launch: LaunchDto,
    pub(crate) job_run_id: Option<i64>,
}

/// The target of an upload: the explicit job run, else this CI job's job run
/// (`ci`, resolved from the flags or kept in a spool), else the chosen launch,
/// else a new one.
pub(crate) async fn upload_target(
    conn: &Conn,
    job_run_id: Option<i64>,
    launch: &LaunchChoice,
    ci: Option<&CiContext>,
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
        });
    }
    if let Some(ctx) = ci {
        let r = start_ci_job_run(conn, ctx, launch, true).await?;
        let l = started_launch(conn, &r).await?;
        return Ok(Target {
            launch: l,
            job_run_id: Some(r.job_run_id),
        });
    }
    if let Some(id) = launch.id {
        let l = open_launch(conn, id, launch.reopen_closed_launch).await?;
        return Ok(Target {
            launch: l,
            job_run_id: None,
        });
    }
    let l = conn
        .client
        .create_launch(&api::LaunchCreate {
            name: launch
                .name
                .clone()
                .unwrap_or_else(|| format!("Upload {}", utc_now())),
            project_id: conn.project_id,
            tags: launch.tags.clone(),
            ..Default::default()
        })
        .await?;
    Ok(Target {
        launch: l,
        job_run_id: None,
    })
}

/// Finds the job run of this CI job (for `job-run env` and `job-run stop`).
pub(crate) async fn find_job_run(
    conn: &Conn,
    job_run_id: Option<i64>,
    ci: Option<&CiContext>,
) -> Result<i64> {
    if let Some(id) = job_run_id {
        return Ok(id);
    }
    let ctx = ci.ok_or_else(|| {
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
