//! Jobs: the list (with what keeps each from being run by the server) and the
//! configuration form: "can run tests", build-server integration with a
//! write-only credential, parameters.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup};
use onelaunch_api::{self as api, Id};
use serde::Deserialize;

use super::launches::project_param;
use super::layout::{self, Nav, Shell};
use super::session::Viewer;
use super::{UiError, UiResult};
use crate::db::now_ms;
use crate::db::{ui_views, views};
use crate::server_led;
use crate::AppState;

const JOBS_PER_PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    page: Option<i64>,
}

fn integration_text(i: &Option<api::IntegrationDto>) -> Markup {
    html! {
        @match i {
            None => span class="muted" { "none" },
            Some(i) => {
                strong { (i.kind) }
                @let target = i.repository.clone().or(i.project.clone()).or(i.job_path.clone()).or(i.command.clone());
                @if let Some(t) = target { " " span class="sub" { (t) } }
                @if i.has_credential { " " span class="badge" title="A credential is stored; it is never shown" { "credential stored" } }
            }
        }
    }
}

pub(super) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> UiResult<Html<String>> {
    let project = viewer
        .scope
        .list_project(&state.db, project_param(&q.project))
        .await?;
    let jobs = crate::db::job_runs::list_jobs(&state.db, project).await?;
    let total = jobs.len() as i64;
    let page = q.page.unwrap_or(0).max(0);
    let mut rows = Vec::new();
    for job in jobs
        .iter()
        .skip(page as usize * JOBS_PER_PAGE)
        .take(JOBS_PER_PAGE)
    {
        rows.push(server_led::jobs::job_config_dto(&state.db, job).await?);
    }
    let projects = views::projects(&state.db, viewer.scope.project_id).await?;
    let body = html! {
        h1 { "Jobs" }
        p class="muted" {
            "Jobs appear when a CI pipeline first reports. Configure one to let the server run tests with it (test plans)."
        }
        @if rows.is_empty() {
            p class="empty" { "No job has reported to this project yet." }
        } @else {
            table class="list" {
                thead {
                    tr {
                        th scope="col" { "Job" }
                        th scope="col" { "CI" }
                        th scope="col" { "Can run tests" }
                        th scope="col" { "Integration" }
                        th scope="col" class="num" { "Parameters" }
                        th scope="col" { "Ready" }
                    }
                }
                tbody {
                    @for j in &rows {
                        tr {
                            th scope="row" {
                                a href={ "/jobs/" (j.id) } { (j.name) }
                                div class="sub" { (j.external_id) }
                            }
                            td { (j.kind.as_deref().unwrap_or("—")) }
                            td { @if j.can_run_tests { "yes" } @else { span class="muted" { "no" } } }
                            td { (integration_text(&j.integration)) }
                            td class="num" { (j.parameters.len()) }
                            td {
                                @if j.problems.is_empty() { span class="status s-passed" { "ready" } }
                                @else {
                                    span class="status s-skipped" { "not ready" }
                                    ul class="plain sub" { @for p in &j.problems { li { (p) } } }
                                }
                            }
                        }
                    }
                }
            }
            (layout::pager(&format!("/jobs?project={project}&"), page, JOBS_PER_PAGE as i64, total))
        }
    };
    let shell = Shell {
        viewer: &viewer,
        project,
        projects: &projects,
        nav: Nav::Jobs,
    };
    Ok(layout::page(&shell, "Jobs", body))
}

/// What the form shows: the stored configuration or what was just submitted.
#[derive(Deserialize, Default, Clone)]
pub(super) struct JobForm {
    #[serde(default)]
    can_run: Option<String>,
    #[serde(default)]
    integration: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    repository: String,
    #[serde(default)]
    workflow: String,
    #[serde(default, rename = "ref")]
    git_ref: String,
    #[serde(default)]
    gl_project: String,
    #[serde(default)]
    job_path: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    parameters: String,
}

impl JobForm {
    fn from_dto(j: &api::JobConfigDto) -> JobForm {
        let i = j.integration.clone().unwrap_or_default();
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        JobForm {
            can_run: j.can_run_tests.then(|| "1".to_string()),
            integration: if j.integration.is_some() {
                i.kind.clone()
            } else {
                String::new()
            },
            url: s(&i.url),
            repository: s(&i.repository),
            workflow: s(&i.workflow),
            git_ref: s(&i.git_ref),
            gl_project: s(&i.project),
            job_path: s(&i.job_path),
            username: s(&i.username),
            command: s(&i.command),
            credential: String::new(),
            parameters: j
                .parameters
                .iter()
                .map(|p| format!("{}={}", p.name, p.value.as_deref().unwrap_or("")))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn update(&self) -> UiResult<api::JobConfigUpdate> {
        let opt = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
        let parameters: Vec<api::ParameterDto> =
            super::parse_pairs("parameters", &self.parameters)?
                .into_iter()
                .map(|(name, value)| api::ParameterDto {
                    name,
                    value: Some(value),
                    default_value: None,
                })
                .collect();
        let kind = self.integration.trim();
        let integration = if kind.is_empty() || kind == "none" {
            None
        } else {
            Some(api::IntegrationSettings {
                kind: kind.to_string(),
                url: opt(&self.url),
                repository: opt(&self.repository),
                workflow: opt(&self.workflow),
                git_ref: opt(&self.git_ref),
                project: opt(&self.gl_project),
                job_path: opt(&self.job_path),
                username: opt(&self.username),
                command: opt(&self.command),
                credential: opt(&self.credential),
            })
        };
        Ok(api::JobConfigUpdate {
            can_run_tests: Some(self.can_run.is_some()),
            integration: Some(integration),
            parameters: Some(parameters),
        })
    }
}

/// An input row of the integration fieldset, shown for the given types.
fn field(id: &str, label: &str, value: &str, types: &str, hint: &str) -> Markup {
    html! {
        div class="field" data-for=(types) {
            label for={ "j-" (id) } { (label) }
            input id={ "j-" (id) } name=(id) type="text" value=(value) autocomplete="off" spellcheck="false";
            @if !hint.is_empty() { div class="hint muted" { (hint) } }
        }
    }
}

async fn render_form(
    state: &AppState,
    viewer: &Viewer,
    job: &crate::db::job_runs::JobRow,
    form: &JobForm,
    error: Option<&str>,
    saved: bool,
) -> UiResult<Html<String>> {
    let dto = server_led::jobs::job_config_dto(&state.db, job).await?;
    let has_credential = dto.integration.as_ref().is_some_and(|i| i.has_credential);
    let runs = ui_views::recent_job_runs(&state.db, job.id).await?;
    let now = now_ms();
    let kind = form.integration.as_str();
    let body = html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href={ "/jobs?project=" (job.project_id) } { "Jobs" } " › " span aria-current="page" { (job.name) }
        }
        h1 { (job.name) }
        p class="muted" { (job.uid) @if let Some(t) = &job.ci_type { " · " (t) } @if let Some(u) = job.url.as_deref().filter(|u| u.starts_with("http")) { " · " a href=(u) rel="noopener noreferrer" { "pipeline" } } }
        @if saved { p class="notice" role="status" { "Saved." } }
        @if let Some(e) = error { p class="alert" role="alert" { (e) } }
        @if !dto.problems.is_empty() && error.is_none() {
            div class="card" {
                h2 { "Not ready to be run by the server" }
                ul class="plain" { @for p in &dto.problems { li { (p) } } }
            }
        }
        form method="post" action={ "/jobs/" (job.id) } class="card job-form" {
            (layout::csrf(viewer))
            div class="check" {
                input id="j-can-run" name="can_run" type="checkbox" value="1" checked[form.can_run.is_some()];
                label for="j-can-run" { "This job may be asked to run tests (test plans)" }
            }
            fieldset {
                legend { "Build-server integration" }
                div class="field" {
                    label for="j-integration" { "Type" }
                    select id="j-integration" name="integration" data-integration {
                        option value="" selected[kind.is_empty()] { "None" }
                        option value="github" selected[kind == "github"] { "GitHub Actions (workflow_dispatch)" }
                        option value="gitlab" selected[kind == "gitlab"] { "GitLab CI (pipeline trigger)" }
                        option value="jenkins" selected[kind == "jenkins"] { "Jenkins (buildWithParameters)" }
                        option value="command" selected[kind == "command"] { "Command on the server host (admin)" }
                    }
                }
                (field("url", "Provider URL", &form.url, "github gitlab jenkins", "GitHub default https://api.github.com, GitLab default https://gitlab.com; required for Jenkins"))
                (field("repository", "Repository (owner/repo)", &form.repository, "github", ""))
                (field("workflow", "Workflow file", &form.workflow, "github", "e.g. tests.yml"))
                (field("ref", "Git ref", &form.git_ref, "github gitlab", "branch or tag the pipeline runs on"))
                (field("gl_project", "GitLab project (id or path)", &form.gl_project, "gitlab", ""))
                (field("job_path", "Jenkins job path", &form.job_path, "jenkins", "folders separated by /, e.g. team/api-tests"))
                (field("username", "Jenkins user", &form.username, "jenkins", ""))
                (field("command", "Command", &form.command, "command", "run with sh -c; gets ALLURE_ENDPOINT, ALLURE_LAUNCH_ID, ALLURE_JOB_RUN_ID and the parameters"))
                div class="field" data-for="github gitlab jenkins command" {
                    label for="j-credential" { "Credential" }
                    input id="j-credential" name="credential" type="password" value="" autocomplete="new-password" spellcheck="false"
                        placeholder=(if has_credential { "stored — leave empty to keep it" } else { "" });
                    div class="hint muted" {
                        "Write-only: it is never shown again. GitHub token, GitLab trigger token, Jenkins API token, or the ALLURE_TOKEN given to a command."
                    }
                }
            }
            div class="field" {
                label for="j-parameters" { "Parameters (NAME=value, one per line)" }
                textarea id="j-parameters" name="parameters" rows="4" spellcheck="false" { (form.parameters) }
                div class="hint muted" { "Sent to every triggered run, next to the launch's environment." }
            }
            div class="form-actions" { button type="submit" class="primary" { "Save" } }
        }
        section aria-labelledby="runs-h" {
            h2 id="runs-h" { "Recent job runs" }
            @if runs.is_empty() { p class="empty" { "None yet." } }
            @else {
                table class="list" {
                    thead { tr { th scope="col" { "Job run" } th scope="col" { "Launch" } th scope="col" { "Stage" } th scope="col" { "Status" } th scope="col" { "Started" } } }
                    tbody {
                        @for r in &runs {
                            tr {
                                th scope="row" { a href={ "/jobrun/" (r.id) } { (r.name) } }
                                td { a href={ "/launch/" (r.launch_id) } { (r.launch_name) } }
                                td { (r.stage.replace('_', " ")) }
                                td { (layout::status(&r.status)) }
                                td { (layout::ago(r.created_ms, now)) }
                            }
                        }
                    }
                }
            }
        }
    };
    let shell = Shell {
        viewer,
        project: job.project_id,
        projects: &[],
        nav: Nav::Jobs,
    };
    Ok(layout::page(&shell, &job.name, body))
}

#[derive(Deserialize, Default)]
pub(super) struct EditQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub(super) async fn edit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    Query(q): Query<EditQuery>,
) -> UiResult<Html<String>> {
    let job = viewer.scope.job(&state.db, id).await?;
    let dto = server_led::jobs::job_config_dto(&state.db, &job).await?;
    render_form(
        &state,
        &viewer,
        &job,
        &JobForm::from_dto(&dto),
        None,
        q.saved.is_some(),
    )
    .await
}

pub(super) async fn save(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    axum::Form(form): axum::Form<JobForm>,
) -> UiResult<Response> {
    let job = viewer.scope.job(&state.db, id).await?;
    let outcome = match form.update() {
        Ok(update) => server_led::jobs::configure_job(&state, &viewer.scope, &job, &update, false)
            .await
            .map_err(UiError::from),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/jobs/{id}?saved=1")).into_response()),
        Err(UiError::BadRequest(m)) | Err(UiError::Forbidden(m)) => {
            let mut res = render_form(&state, &viewer, &job, &form, Some(&m), false)
                .await?
                .into_response();
            *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}
