//! `job-run start|env|stop|plan`: the job run of this CI job.

use std::io::Write;

use anyhow::{Context, Result};
use onelaunch_api as api;
use serde_json::json;

use crate::cli::{EnvFormat, Global, JobRunCmd, JobRunEnvArgs, Output};
use crate::config::connect;
use crate::exit::{self, Exit};
use crate::output::{launch_url, print_json};
use crate::settings::{self, LaunchChoice};
use crate::target;

pub(crate) async fn run(g: &Global, cmd: JobRunCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        JobRunCmd::Start { ci, launch, expect } => {
            let ctx = settings::ci_context(&ci).ok_or_else(|| {
                Exit::new(
                    exit::USAGE,
                    "no CI detected: run inside a supported CI (GitHub Actions, GitLab CI, Jenkins, Azure Pipelines, CircleCI, Bitbucket, Buildkite, TeamCity, Bamboo, Tekton), or pass --ci-type, --job-uid and --job-run-uid",
                )
            })?;
            let r =
                target::start_ci_job_run(&conn, &ctx, &LaunchChoice::of(&launch), false).await?;
            if let Some(n) = expect {
                conn.client
                    .set_expected_job_runs(r.launch_id, i64::from(n))
                    .await?;
            }
            let l = target::started_launch(&conn, &r).await?;
            if g.output == Output::Json {
                print_json(&json!({
                    "launchId": r.launch_id, "jobRunId": r.job_run_id, "jobId": r.job_id,
                    "projectId": r.project_id, "launchName": l.name, "launchUrl": launch_url(&conn, &l),
                    "jobRunUrl": format!("{}/jobrun/{}", conn.endpoint, r.job_run_id),
                }))?;
            } else {
                println!("Job uid [{}], name [{}]", ctx.job_uid, ctx.job_name);
                println!(
                    "Job Run uid [{}], name [{}]",
                    ctx.job_run_uid, ctx.job_run_name
                );
                println!("Launch [{}] name [{}]", l.id, l.name);
                println!("Jobrun[{}] started", r.job_run_id);
                println!("Launch link: {}", launch_url(&conn, &l));
            }
        }
        JobRunCmd::Env(args) => return env(&conn, args).await,
        JobRunCmd::Stop {
            job_run_id,
            ci,
            status,
        } => {
            let ci = settings::ci_context(&ci);
            let id = target::find_job_run(&conn, job_run_id, ci.as_ref()).await?;
            conn.client
                .upload_stop(&api::ExternalRunStop {
                    project_id: conn.project_id,
                    job_run_id: Some(id),
                    status,
                    ..Default::default()
                })
                .await?;
            let run = conn.client.get_job_run(id).await?;
            if g.output == Output::Json {
                print_json(&run)?;
            } else {
                println!("Job Run [{id}] stopped: {}", run.status);
            }
        }
        JobRunCmd::Plan {
            job_run_id,
            ci,
            output_file,
        } => {
            // allurectl finds this CI job's job run when no id is given.
            let ci = settings::ci_context(&ci);
            let id = target::find_job_run(&conn, job_run_id, ci.as_ref()).await?;
            let items = conn.client.job_run_plan(id).await?;
            let plan = onelaunch_model::testplan::TestPlan::new(
                items
                    .into_iter()
                    .map(|i| onelaunch_model::testplan::TestPlanEntry {
                        id: i.id.map(|id| id.to_string()),
                        selector: Some(i.selector),
                    })
                    .collect(),
            );
            std::fs::write(&output_file, plan.to_json() + "\n")
                .with_context(|| format!("cannot write {}", output_file.display()))?;
            println!(
                "Test plan of job run [{id}] written to {} ({} tests)",
                output_file.display(),
                plan.tests.len()
            );
        }
    }
    Ok(exit::OK)
}

/// `job-run env` (and allurectl's `ci env`): the job run's variables.
pub(crate) async fn env(conn: &crate::config::Conn, args: JobRunEnvArgs) -> Result<u8> {
    let JobRunEnvArgs {
        job_run_id,
        ci,
        format,
        output_file,
    } = args;
    let ci = settings::ci_context(&ci);
    let id = target::find_job_run(conn, job_run_id, ci.as_ref()).await?;
    let run = conn.client.get_job_run(id).await?;
    let l = conn.client.get_launch(run.launch_id).await?;
    let vars: Vec<(&str, String)> = vec![
        ("ALLURE_ENDPOINT", conn.endpoint.clone()),
        ("ALLURE_PROJECT_ID", conn.project_id.to_string()),
        ("ALLURE_LAUNCH_ID", l.id.to_string()),
        ("ALLURE_LAUNCH_NAME", l.name.clone()),
        ("ALLURE_LAUNCH_URL", launch_url(conn, &l)),
        ("ALLURE_JOB_RUN_ID", run.id.to_string()),
        (
            "ALLURE_JOB_RUN_URL",
            run.web_url
                .clone()
                .unwrap_or_else(|| format!("{}/jobrun/{}", conn.endpoint, run.id)),
        ),
    ];
    emit(&vars, format, output_file)?;
    Ok(exit::OK)
}

/// Prints (or appends to `output_file`) variables in the given format.
pub(crate) fn emit(
    vars: &[(&str, String)],
    format: EnvFormat,
    output_file: Option<std::path::PathBuf>,
) -> Result<()> {
    let vars = vars.to_vec();
    let text = match format {
        EnvFormat::Export => onelaunch_ci::sink::export_safe(&vars),
        EnvFormat::Shell => onelaunch_ci::sink::shell(&vars),
        EnvFormat::Dotenv => {
            onelaunch_ci::sink::dotenv(&vars).context("cannot write a GitLab dotenv report")?
        }
        EnvFormat::Github => onelaunch_ci::sink::github(&vars),
        EnvFormat::GithubOutput => {
            let outputs: Vec<(&str, String)> = vars
                .iter()
                .filter_map(|(k, v)| {
                    let name = match *k {
                        "ALLURE_LAUNCH_ID" => "launch-id",
                        "ALLURE_LAUNCH_NAME" => "launch-name",
                        "ALLURE_LAUNCH_URL" => "launch-url",
                        "ALLURE_JOB_RUN_ID" => "job-run-id",
                        "ALLURE_JOB_RUN_URL" => "job-run-url",
                        _ => return None,
                    };
                    Some((name, v.clone()))
                })
                .collect();
            onelaunch_ci::sink::github(&outputs)
        }
        EnvFormat::Json => onelaunch_ci::sink::json(&vars),
    };
    match output_file {
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            f.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                f.write_all(b"\n")?;
            }
        }
        None => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
        }
    }
    Ok(())
}
