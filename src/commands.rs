//! Command implementations.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use onelaunch_api as api;
use onelaunch_client::upload::{SessionTarget, UploadOptions, Uploader};
use serde_json::json;

use crate::cli::{
    Cli, Command, EnvFormat, Global, JobRunCmd, LaunchCmd, Output, ProjectCmd, ServerAction,
    ServerArgs,
};
use crate::config::{connect, Conn};
use crate::exit::{self, Exit};
use crate::output::{format_stats, launch_url, markdown_summary, md_escape, print_json};
use crate::settings::{self, LaunchChoice, UploadSettings};
use crate::target;

pub async fn run(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Server(args) => server(args).await,
        Command::Launch(cmd) => launch(g, cmd).await,
        Command::JobRun(cmd) => job_run(g, cmd).await,
        Command::Upload(args) => {
            let mut paths = args.paths;
            if paths.is_empty() {
                match args.results_env {
                    Some(p) => paths.push(p),
                    None if args.resume && args.opts.spool.is_some() => {}
                    None => bail!(Exit::new(
                        exit::USAGE,
                        "no results to upload: pass a directory or set ALLURE_RESULTS"
                    )),
                }
            }
            upload(g, &UploadSettings::of(&args.opts), paths, args.resume).await
        }
        Command::Watch(args) => crate::spooling::watch(g, args).await,
        Command::Project(cmd) => project(g, cmd).await,
        Command::Testcase(cmd) => crate::server_led::testcase(g, cmd).await,
        Command::Job(cmd) => crate::server_led::job(g, cmd).await,
        Command::Plan(cmd) => crate::server_led::plan(g, cmd).await,
        Command::Result(cmd) => crate::server_led::result(g, cmd).await,
    }
}

// ---------------------------------------------------------------- server

async fn server(args: ServerArgs) -> Result<u8> {
    if let Some(ServerAction::Migrate { from, to }) = args.action {
        let report = onelaunch_server::migrate::copy_database(&from, &to)
            .await
            .context("migration failed")?;
        for (table, rows) in &report.tables {
            println!("{table}: {rows} rows");
        }
        println!(
            "Copied every table; start the servers with --database-url pointing at the target."
        );
        return Ok(exit::OK);
    }
    let config = onelaunch_server::ServerConfig {
        listen: args.listen,
        data_dir: args.data,
        database_url: args.database_url,
        public_url: args.public_url,
        init_token: args.init_token,
        launch_idle_close: args.launch_idle_close,
        secret_key_file: args.secret_key_file,
    };
    let server = onelaunch_server::Server::start(&config)
        .await
        .context("cannot start the server")?;
    println!("onelaunch server listening on http://{}", server.addr);
    println!("public URL {}", server.public_url);
    if let Some(token) = &server.generated_token {
        println!("Admin API token (shown once; store it now): {token}");
    }
    let _ = std::io::stdout().flush();
    server.serve(shutdown_signal()).await?;
    Ok(exit::OK)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

// ---------------------------------------------------------------- launch

async fn launch(g: &Global, cmd: LaunchCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        LaunchCmd::Create(a) => {
            let l = conn
                .client
                .create_launch(&api::LaunchCreate {
                    name: a.launch_name,
                    project_id: conn.project_id,
                    tags: settings::split_tags(a.launch_tags.as_deref()),
                    ..Default::default()
                })
                .await?;
            if a.format.is_some() {
                println!("{}", l.id);
            } else if g.output == Output::Json {
                print_json(&vec![&l])?;
            } else {
                if !a.no_header {
                    println!("ID\tNAME\tURL");
                }
                println!("{}\t{}\t{}", l.id, l.name, launch_url(&conn, &l));
            }
        }
        LaunchCmd::Close { id, wait, timeout } => {
            return crate::closing::close(g, &conn, id, wait.then_some(timeout)).await;
        }
        LaunchCmd::Reopen { id } => {
            conn.client.reopen_launch(id).await?;
            if g.output == Output::Json {
                print_json(&json!({"id": id, "closed": false}))?;
            } else {
                println!("Launch [{id}] reopened");
            }
        }
        LaunchCmd::List {
            size,
            page,
            no_header,
        } => {
            let p = conn
                .client
                .list_launches(conn.project_id, page, size)
                .await?;
            if g.output == Output::Json {
                print_json(&p.content)?;
            } else {
                if !no_header {
                    println!("ID\tSTATE\tNAME");
                }
                for l in &p.content {
                    let state = if l.closed { "closed" } else { "open" };
                    println!("{}\t{state}\t{}", l.id, l.name);
                }
            }
        }
        LaunchCmd::Show { id } => {
            let l = conn.client.get_launch(id).await?;
            let stats = conn.client.launch_statistic(id).await?;
            let runs = conn.client.launch_job_runs(id).await?;
            let participants = crate::closing::participants(&conn, &l).await?;
            if g.output == Output::Json {
                print_json(&json!({"launch": l, "statistic": stats, "jobRuns": runs,
                    "participants": participants}))?;
            } else if g.output == Output::Markdown {
                print!("{}", markdown_summary(&conn, &l, &stats, &runs));
                if !participants.complete() {
                    println!(
                        "\n**Not reported yet:** {}",
                        md_escape(&crate::closing::describe_waiting(&participants))
                    );
                }
            } else {
                let state = if l.closed { "closed" } else { "open" };
                println!("Launch [{}] {} ({state})", l.id, l.name);
                println!("URL: {}", launch_url(&conn, &l));
                if !l.tags.is_empty() {
                    let tags: Vec<&str> = l.tags.iter().map(|t| t.name.as_str()).collect();
                    println!("Tags: {}", tags.join(", "));
                }
                let total: i64 = stats.iter().map(|s| s.count).sum();
                println!("Results: {total} ({})", format_stats(&stats));
                println!("{}", crate::closing::summary_line(&participants));
                if !participants.complete() {
                    println!(
                        "Not reported yet: {}",
                        crate::closing::describe_waiting(&participants)
                    );
                }
                for r in &runs {
                    println!(
                        "  [{}] {} / {}  {} {}  {} results",
                        r.id, r.job.name, r.name, r.stage, r.status, r.result_count
                    );
                }
            }
        }
    }
    Ok(exit::OK)
}

// ---------------------------------------------------------------- job-run

async fn job_run(g: &Global, cmd: JobRunCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        JobRunCmd::Start { ci, launch, expect } => {
            let ctx = settings::ci_context(&ci).ok_or_else(|| {
                Exit::new(
                    exit::USAGE,
                    "no CI detected: run inside GitHub Actions, GitLab CI or Jenkins, or pass --ci-type, --job-uid and --job-run-uid",
                )
            })?;
            let r = target::start_ci_job_run(&conn, &ctx, &LaunchChoice::of(&launch)).await?;
            if let Some(n) = expect {
                conn.client
                    .set_expected_job_runs(r.launch_id, i64::from(n))
                    .await?;
            }
            let l = conn.client.get_launch(r.launch_id).await?;
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
        JobRunCmd::Env {
            job_run_id,
            ci,
            format,
            output_file,
        } => {
            let ci = settings::ci_context(&ci);
            let id = target::find_job_run(&conn, job_run_id, ci.as_ref()).await?;
            let run = conn.client.get_job_run(id).await?;
            let l = conn.client.get_launch(run.launch_id).await?;
            let vars: Vec<(&str, String)> = vec![
                ("ALLURE_ENDPOINT", conn.endpoint.clone()),
                ("ALLURE_PROJECT_ID", conn.project_id.to_string()),
                ("ALLURE_LAUNCH_ID", l.id.to_string()),
                ("ALLURE_LAUNCH_NAME", l.name.clone()),
                ("ALLURE_LAUNCH_URL", launch_url(&conn, &l)),
                ("ALLURE_JOB_RUN_ID", run.id.to_string()),
                (
                    "ALLURE_JOB_RUN_URL",
                    run.web_url
                        .clone()
                        .unwrap_or_else(|| format!("{}/jobrun/{}", conn.endpoint, run.id)),
                ),
            ];
            let text = match format {
                EnvFormat::Export => onelaunch_ci::sink::export_safe(&vars),
                EnvFormat::Shell => onelaunch_ci::sink::shell(&vars),
                EnvFormat::Dotenv => onelaunch_ci::sink::dotenv(&vars)
                    .context("cannot write a GitLab dotenv report")?,
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
        }
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
            output_file,
        } => {
            let id = job_run_id.ok_or_else(|| {
                Exit::new(
                    exit::USAGE,
                    "no job run: set ALLURE_JOB_RUN_ID or pass --job-run-id",
                )
            })?;
            let items = conn.client.job_run_plan(id).await?;
            let plan = onelaunch_model::testplan::TestPlan::new(
                items
                    .into_iter()
                    .map(|i| onelaunch_model::testplan::TestPlanEntry {
                        id: Some(i.id.to_string()),
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

// ---------------------------------------------------------------- upload and watch

pub(crate) fn uploader(conn: &Conn, t: &target::Target, settings: &UploadSettings) -> Uploader {
    Uploader::new(
        conn.client.clone(),
        SessionTarget {
            launch_id: t.launch.id,
            job_run_id: t.job_run_id,
        },
        UploadOptions {
            concurrency: settings.concurrency,
            batch_size: settings.batch_size,
            reopen_closed_launch: settings.launch.reopen_closed_launch,
            attempt: settings.ci.as_ref().and_then(|c| c.attempt),
            execution: settings.ci.as_ref().and_then(|c| c.execution.clone()),
            ..UploadOptions::default()
        },
    )
}

async fn upload(
    g: &Global,
    settings: &UploadSettings,
    paths: Vec<PathBuf>,
    resume: bool,
) -> Result<u8> {
    for p in &paths {
        let s = p.to_string_lossy();
        if !s.contains(['*', '?', '[']) && !p.exists() {
            bail!(Exit::new(
                exit::USAGE,
                format!("{}: no such file or directory", p.display())
            ));
        }
    }
    crate::spooling::upload(g, settings, paths, resume).await
}

// ---------------------------------------------------------------- project

async fn project(g: &Global, cmd: ProjectCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        ProjectCmd::Create { name } => {
            let p = conn.client.create_project(&name).await?;
            if g.output == Output::Json {
                print_json(&p)?;
            } else {
                println!("Project [{}] {}", p.id, p.name);
            }
        }
        ProjectCmd::Token { id } => {
            let t = conn.client.create_project_token(id).await?;
            // The one place a token is printed, on purpose: it is shown once.
            println!("{}", t.token);
        }
    }
    Ok(exit::OK)
}
