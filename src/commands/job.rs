//! `job list|configure`: jobs and how the server triggers them (GitHub,
//! GitLab, Jenkins or a command) for server-led launches.

use anyhow::{bail, Context, Result};
use onelaunch_api::{self as api, Id};

use crate::cli::{Global, JobCmd, JobConfigureArgs, Output};
use crate::config::{connect, Conn};
use crate::exit::{self, Exit};
use crate::output::print_json;
use crate::settings::pair;

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

pub(crate) async fn run(g: &Global, cmd: JobCmd) -> Result<u8> {
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
