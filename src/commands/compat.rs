//! allurectl spellings that onelaunch answers with its own commands: `ci env`
//! (`job-run env`, or the launch's variables before any job run exists),
//! `auth login` (a connection check), and the one-line notices for upload
//! flags onelaunch has no equivalent for.

use anyhow::Result;

use super::job_run;
use crate::cli::{AuthCmd, CiCmd, Global, UploadOpts};
use crate::config::connect;
use crate::exit;
use crate::output::launch_url;
use crate::{settings, target};

/// One line on stderr saying what onelaunch does instead (left out with
/// `--silent`).
pub(crate) fn notice(text: &str) {
    eprintln!("note: {text}");
}

/// Notices for the allurectl upload flags that change nothing here.
pub(crate) fn upload_notices(opts: &UploadOpts) {
    if opts.timeout.is_some() {
        notice("--timeout: onelaunch stores results as they arrive, there is no processing to wait for (each request keeps --http-timeout)");
    }
    if opts.ignore_passed_test_attachments {
        notice("--ignore-passed-test-attachments is not supported: every attachment is uploaded");
    }
    if opts.skip_too_big {
        notice("--skip-too-big: files the server refuses are always skipped and named; the rest is uploaded (exit 3)");
    }
}

/// `ci env [set]`: the job run's variables when this CI job has one (or
/// `--job-run-id` names one), else those of `ALLURE_LAUNCH_ID`'s launch.
pub(crate) async fn ci(g: &Global, cmd: CiCmd) -> Result<u8> {
    let CiCmd::Env { set: _, args } = cmd;
    let conn = connect(g)?;
    let launch_id = std::env::var("ALLURE_LAUNCH_ID")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok());
    let ctx = settings::ci_context(&args.ci);
    let found = if args.job_run_id.is_some() || ctx.is_some() {
        target::find_job_run(&conn, args.job_run_id, ctx.as_ref())
            .await
            .map(|_| ())
    } else {
        Err(anyhow::anyhow!(
            "no job run: pass --job-run-id, run inside a detected CI, or set ALLURE_LAUNCH_ID"
        ))
    };
    match (found, launch_id) {
        (Ok(()), _) => job_run::env(&conn, args).await,
        (Err(e), None) => Err(e),
        (Err(_), Some(id)) => {
            let l = conn.client.get_launch(id).await?;
            let vars: Vec<(&str, String)> = vec![
                ("ALLURE_ENDPOINT", conn.endpoint.clone()),
                ("ALLURE_PROJECT_ID", conn.project_id.to_string()),
                ("ALLURE_LAUNCH_ID", l.id.to_string()),
                ("ALLURE_LAUNCH_NAME", l.name.clone()),
                ("ALLURE_LAUNCH_URL", launch_url(&conn, &l)),
            ];
            job_run::emit(&vars, args.format, args.output_file)?;
            Ok(exit::OK)
        }
    }
}

/// `auth login`: checks the endpoint and token with one authenticated call.
/// onelaunch keeps no login: the same endpoint and token are needed by every
/// later command (ALLURE_ENDPOINT/ALLURE_TOKEN, flags or the config file).
pub(crate) async fn auth(g: &Global, cmd: AuthCmd) -> Result<u8> {
    let AuthCmd::Login = cmd;
    let conn = connect(g)?;
    conn.client.list_launches(conn.project_id, 0, 1).await?;
    println!(
        "Successfully authorized at {} (project {})",
        conn.endpoint, conn.project_id
    );
    notice("onelaunch stores no login: keep ALLURE_ENDPOINT and ALLURE_TOKEN set (or use --config) for later commands");
    Ok(exit::OK)
}
