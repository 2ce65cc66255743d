//! Server-led launch commands: `testcase`, `job`, `plan` and `result`.
//!
//! The server defines the scope (a test plan or a selection of test cases),
//! creates one launch with one job run per executor job and triggers the jobs;
//! these commands drive that through the API (`onelaunch-server::server_led`).

use anyhow::{bail, Context, Result};
use onelaunch_api::{self as api, Id};

use crate::cli::{Global, JobCmd, JobConfigureArgs, Output, PlanCmd, ResultCmd, TestcaseCmd};
use crate::config::{connect, Conn};
use crate::exit::{self, Exit};
use crate::output::{format_stats, print_json};
use crate::settings::{filter_of, launch_form, pair};

fn executor_name(c: &api::TestCaseDto) -> String {
    match &c.job {
        Some(j) => format!("[{}] {}", j.id, j.name),
        None => "manual".into(),
    }
}

fn case_line(c: &api::TestCaseDto) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        c.id,
        c.allure_id.as_deref().unwrap_or("-"),
        c.last_status.as_deref().unwrap_or("-"),
        executor_name(c),
        c.full_name.as_deref().unwrap_or(&c.name)
    )
}

const CASE_HEADER: &str = "ID\tALLURE_ID\tSTATUS\tEXECUTOR\tNAME";

// ---------------------------------------------------------------- testcase

pub async fn testcase(g: &Global, cmd: TestcaseCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        TestcaseCmd::List {
            filter,
            size,
            page,
            no_header,
        } => {
            let f = filter_of(&filter)?;
            let p = conn
                .client
                .list_test_cases(conn.project_id, &f, page, size.clamp(1, 1000))
                .await?;
            if g.output == Output::Json {
                print_json(&p.content)?;
            } else {
                if !no_header {
                    println!("{CASE_HEADER}");
                }
                for c in &p.content {
                    println!("{}", case_line(c));
                }
                if p.total_elements > p.content.len() as i64 {
                    eprintln!(
                        "{} of {} test cases shown (--page, --size)",
                        p.content.len(),
                        p.total_elements
                    );
                }
            }
        }
        TestcaseCmd::Run { cases, launch } => {
            let run = conn
                .client
                .run_test_cases(&api::TestCaseRun {
                    project_id: conn.project_id,
                    test_case_ids: cases,
                    launch: launch_form(&launch)?,
                })
                .await?;
            print_run(g, &run)?;
        }
    }
    Ok(exit::OK)
}

// ---------------------------------------------------------------- job

fn describe_integration(i: &Option<api::IntegrationDto>) -> String {
    let Some(i) = i else {
        return "none".into();
    };
    let what = match i.kind.as_str() {
        "github" => format!(
            "{} {}@{}",
            i.repository.as_deref().unwrap_or("?"),
            i.workflow.as_deref().unwrap_or("?"),
            i.git_ref.as_deref().unwrap_or("?")
        ),
        "gitlab" => format!(
            "project {}@{}",
            i.project.as_deref().unwrap_or("?"),
            i.git_ref.as_deref().unwrap_or("?")
        ),
        "jenkins" => format!(
            "{}/job/{}",
            i.url.as_deref().unwrap_or("?"),
            i.job_path.as_deref().unwrap_or("?")
        ),
        "command" => format!("`{}`", i.command.as_deref().unwrap_or("")),
        _ => String::new(),
    };
    let url = match (&i.url, i.kind.as_str()) {
        (Some(u), "github" | "gitlab") => format!(" via {u}"),
        _ => String::new(),
    };
    let cred = if i.has_credential {
        ", credential stored"
    } else {
        ""
    };
    format!("{} {what}{url}{cred}", i.kind)
}

fn print_job(j: &api::JobConfigDto) {
    println!(
        "Job [{}] {} (uid {}, {})",
        j.id,
        j.name,
        j.external_id,
        j.kind.as_deref().unwrap_or("unknown CI")
    );
    println!(
        "  can run tests: {}",
        if j.can_run_tests { "yes" } else { "no" }
    );
    println!("  integration: {}", describe_integration(&j.integration));
    if !j.parameters.is_empty() {
        let params: Vec<String> = j
            .parameters
            .iter()
            .map(|p| format!("{}={}", p.name, p.value.as_deref().unwrap_or("")))
            .collect();
        println!("  parameters: {}", params.join(", "));
    }
    if j.problems.is_empty() {
        println!("  ready: the server can trigger it");
    }
    for p in &j.problems {
        println!("  not ready: {p}");
    }
}

async fn job_id(conn: &Conn, a: &JobConfigureArgs) -> Result<Id> {
    if let Some(id) = a.id {
        return Ok(id);
    }
    let uid = a.uid.clone().unwrap_or_default();
    match conn.client.find_job(conn.project_id, &uid).await? {
        Some(j) => Ok(j.id),
        None => Err(Exit::new(
            exit::NOT_FOUND,
            format!("no job with uid {uid:?} in project {}", conn.project_id),
        )
        .into()),
    }
}

fn some(s: &Option<String>) -> Option<String> {
    s.clone().filter(|v| !v.trim().is_empty())
}

/// The integration change asked for: `None` = unchanged, `Some(None)` = remove.
fn integration_update(
    a: &JobConfigureArgs,
    current: &Option<api::IntegrationDto>,
) -> Result<Option<Option<api::IntegrationSettings>>> {
    let touched = a.url.is_some()
        || a.repository.is_some()
        || a.workflow.is_some()
        || a.git_ref.is_some()
        || a.gitlab_project.is_some()
        || a.job_path.is_some()
        || a.username.is_some()
        || a.command.is_some()
        || a.credential_env.is_some();
    if a.integration.as_deref() == Some("none") {
        return Ok(Some(None));
    }
    if a.integration.is_none() && !touched {
        return Ok(None);
    }
    let kind = match (&a.integration, current) {
        (Some(k), _) => k.clone(),
        (None, Some(c)) => c.kind.clone(),
        (None, None) => bail!(Exit::new(
            exit::USAGE,
            "the job has no integration yet: pass --integration github|gitlab|jenkins|command"
        )),
    };
    // Start from the current settings when the type stays the same.
    let base = current
        .clone()
        .filter(|c| c.kind == kind)
        .unwrap_or_default();
    let credential = match &a.credential_env {
        Some(var) => {
            let v = std::env::var(var).map_err(|_| {
                Exit::new(
                    exit::USAGE,
                    format!("--credential-env {var}: the environment variable is not set"),
                )
            })?;
            if v.trim().is_empty() {
                bail!(Exit::new(
                    exit::USAGE,
                    format!("--credential-env {var}: the environment variable is empty")
                ));
            }
            Some(v.trim().to_string())
        }
        None => None,
    };
    Ok(Some(Some(api::IntegrationSettings {
        kind,
        url: some(&a.url).or(base.url),
        repository: some(&a.repository).or(base.repository),
        workflow: some(&a.workflow).or(base.workflow),
        git_ref: some(&a.git_ref).or(base.git_ref),
        project: some(&a.gitlab_project).or(base.project),
        job_path: some(&a.job_path).or(base.job_path),
        username: some(&a.username).or(base.username),
        command: some(&a.command).or(base.command),
        credential,
    })))
}

pub async fn job(g: &Global, cmd: JobCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        JobCmd::List { no_header } => {
            let jobs = conn.client.list_job_configs(conn.project_id).await?;
            if g.output == Output::Json {
                print_json(&jobs)?;
            } else {
                if !no_header {
                    println!("ID\tTYPE\tCAN_RUN\tREADY\tINTEGRATION\tUID\tNAME");
                }
                for j in &jobs {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        j.id,
                        j.kind.as_deref().unwrap_or("-"),
                        if j.can_run_tests { "yes" } else { "no" },
                        if j.problems.is_empty() { "yes" } else { "no" },
                        j.integration
                            .as_ref()
                            .map(|i| i.kind.as_str())
                            .unwrap_or("-"),
                        j.external_id,
                        j.name
                    );
                }
            }
        }
        JobCmd::Configure(a) => {
            let id = job_id(&conn, &a).await?;
            let current = conn.client.get_job_config(id).await?;
            let parameters = if a.clear_params {
                Some(Vec::new())
            } else if a.params.is_empty() {
                None
            } else {
                let mut out = Vec::new();
                for p in &a.params {
                    let (name, value) = pair(p, "--param")?;
                    out.push(api::ParameterDto {
                        name,
                        value: Some(value),
                        default_value: None,
                    });
                }
                Some(out)
            };
            let update = api::JobConfigUpdate {
                can_run_tests: a.can_run_tests,
                integration: integration_update(&a, &current.integration)?,
                parameters,
            };
            let j = conn
                .client
                .configure_job(id, &update)
                .await
                .with_context(|| format!("cannot configure job {id}"))?;
            if g.output == Output::Json {
                print_json(&j)?;
            } else {
                print_job(&j);
            }
        }
    }
    Ok(exit::OK)
}

// ---------------------------------------------------------------- plan

fn describe_filter(f: &api::TestCaseFilter) -> String {
    let mut parts = Vec::new();
    for l in &f.labels {
        parts.push(format!("label {}={}", l.name, l.value));
    }
    if let Some(p) = &f.name_pattern {
        parts.push(format!("name ~ {p:?}"));
    }
    if !f.status.is_empty() {
        parts.push(format!("last status {}", f.status.join("|")));
    }
    parts.join(", ")
}

fn print_plan(p: &api::TestPlanDto) {
    println!("Test plan [{}] {}", p.id, p.name);
    if !p.test_case_ids.is_empty() {
        let ids: Vec<String> = p.test_case_ids.iter().map(|i| i.to_string()).collect();
        println!("Test cases chosen: {}", ids.join(", "));
    }
    if let Some(f) = p.filter.as_ref().filter(|f| !f.is_empty()) {
        println!("Filter: {}", describe_filter(f));
    }
    println!("Selects {} test cases:", p.test_cases.len());
    println!("  {CASE_HEADER}");
    for c in &p.test_cases {
        println!("  {}", case_line(c));
    }
}

fn executor_line(c: &api::ExecutorCase) -> String {
    format!(
        "    [{}] {}  {}{}",
        c.id,
        c.allure_id.as_deref().unwrap_or("-"),
        c.full_name.as_deref().unwrap_or(&c.name),
        if c.source == "override" {
            "  (override)"
        } else {
            ""
        }
    )
}

fn print_executors(e: &api::ExecutorsDto) {
    println!("Executors of test plan [{}]", e.plan_id);
    for group in &e.jobs {
        println!(
            "  Job [{}] {} ({}): {} test cases",
            group.job.id,
            group.job.name,
            group.job.kind.as_deref().unwrap_or("unknown CI"),
            group.test_cases.len()
        );
        for c in &group.test_cases {
            println!("{}", executor_line(c));
        }
    }
    println!("  Manual: {} test cases", e.manual.len());
    for c in &e.manual {
        println!("{}", executor_line(c));
    }
}

/// Prints a run: the launch id alone on stdout (for `id=$(onelaunch plan run …)`),
/// the details on stderr; `-o json` prints everything on stdout.
fn print_run(g: &Global, run: &api::ServerRunDto) -> Result<()> {
    if g.output == Output::Json {
        return print_json(run);
    }
    println!("{}", run.launch.id);
    eprintln!(
        "Launch [{}] {} created{}",
        run.launch.id,
        run.launch.name,
        run.launch
            .url
            .as_deref()
            .map(|u| format!(": {u}"))
            .unwrap_or_default()
    );
    for p in &run.job_runs {
        let r = &p.job_run;
        let error = r
            .error_message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        eprintln!(
            "  Job run [{}] of job [{}] {}: {} test cases, {}{error}",
            r.id,
            r.job.id,
            r.job.name,
            p.test_case_ids.len(),
            r.stage
        );
    }
    if !run.manual.is_empty() {
        let ids: Vec<String> = run.manual.iter().map(|c| c.id.to_string()).collect();
        eprintln!(
            "  Manual: {} test cases ({}); record them with `onelaunch result manual --launch-id {} --case ID --status S`",
            run.manual.len(),
            ids.join(", "),
            run.launch.id
        );
    }
    let failed = run
        .job_runs
        .iter()
        .filter(|p| p.job_run.stage == api::stage::RUN_FAILURE)
        .count();
    if failed > 0 {
        eprintln!("warning: {failed} job run(s) could not be triggered (see above)");
    }
    Ok(())
}

pub async fn plan(g: &Global, cmd: PlanCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        PlanCmd::Create {
            name,
            cases,
            filter,
        } => {
            let f = filter_of(&filter)?;
            let p = conn
                .client
                .create_test_plan(&api::TestPlanCreate {
                    project_id: conn.project_id,
                    name,
                    test_case_ids: cases,
                    filter: (!f.is_empty()).then_some(f),
                })
                .await?;
            if g.output == Output::Json {
                print_json(&p)?;
            } else {
                print_plan(&p);
            }
        }
        PlanCmd::List => {
            let plans = conn.client.list_test_plans(conn.project_id).await?;
            if g.output == Output::Json {
                print_json(&plans)?;
            } else {
                for p in &plans {
                    println!("{}\t{}", p.id, p.name);
                }
            }
        }
        PlanCmd::Show { id } => {
            let p = conn.client.get_test_plan(id).await?;
            if g.output == Output::Json {
                print_json(&p)?;
            } else {
                print_plan(&p);
            }
        }
        PlanCmd::Executors {
            id,
            cases,
            filter,
            job,
            manual,
            default,
        } => {
            let f = filter_of(&filter)?;
            let change = job.is_some() || manual || default;
            if !change && (!cases.is_empty() || !f.is_empty()) {
                bail!(Exit::new(
                    exit::USAGE,
                    "--case/--label/--name-pattern/--status choose cases to change: add --job ID, --manual or --default"
                ));
            }
            let e = if change {
                conn.client
                    .override_executors(
                        id,
                        &api::ExecutorOverride {
                            test_case_ids: cases,
                            filter: (!f.is_empty()).then_some(f),
                            job_id: job,
                            manual,
                            reset: default,
                        },
                    )
                    .await?
            } else {
                conn.client.plan_executors(id).await?
            };
            if g.output == Output::Json {
                print_json(&e)?;
            } else {
                print_executors(&e);
            }
        }
        PlanCmd::Run { id, launch } => {
            let run = conn
                .client
                .run_test_plan(id, &launch_form(&launch)?)
                .await?;
            print_run(g, &run)?;
        }
    }
    Ok(exit::OK)
}

// ---------------------------------------------------------------- result

pub async fn result(g: &Global, cmd: ResultCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        ResultCmd::Manual {
            launch_id,
            case,
            name,
            status,
            message,
        } => {
            let recorded = conn
                .client
                .record_manual_results(
                    launch_id,
                    &api::ManualResults {
                        results: vec![api::ManualResult {
                            test_case_id: case,
                            name,
                            status,
                            message,
                        }],
                    },
                )
                .await?;
            if g.output == Output::Json {
                print_json(&recorded)?;
            } else {
                for r in &recorded {
                    println!(
                        "Manual result [{}] of test case [{}] {}: {} (launch [{launch_id}])",
                        r.id, r.test_case_id, r.name, r.status
                    );
                }
            }
        }
        ResultCmd::Summary { launch_id } => {
            let automated = conn.client.launch_statistic_of(launch_id, false).await?;
            let manual = conn.client.launch_manual(launch_id).await?;
            if g.output == Output::Json {
                print_json(&serde_json::json!({
                    "launchId": launch_id,
                    "automated": automated,
                    "manual": manual,
                }))?;
            } else {
                println!("Launch [{launch_id}]");
                println!("Automated: {}", format_stats(&automated));
                println!("Manual: {}", format_stats(&manual.statistic));
                for r in &manual.results {
                    println!(
                        "  [{}] case [{}] {}: {}",
                        r.id, r.test_case_id, r.name, r.status
                    );
                }
                let recorded: std::collections::BTreeSet<Id> =
                    manual.results.iter().map(|r| r.test_case_id).collect();
                let todo: Vec<&api::TestCaseDto> = manual
                    .planned
                    .iter()
                    .filter(|c| !recorded.contains(&c.id))
                    .collect();
                if !todo.is_empty() {
                    println!("Manual cases without a result yet:");
                    for c in todo {
                        println!("  [{}] {}", c.id, c.full_name.as_deref().unwrap_or(&c.name));
                    }
                }
            }
        }
    }
    Ok(exit::OK)
}
