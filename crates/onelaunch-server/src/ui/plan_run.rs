//! The Run tab of a test plan: who runs what (with what keeps a job from
//! being run), the launch form, and starting the server-led launch.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use onelaunch_api::{self as api, Id};

use super::layout;
use super::plans::{form_pairs, plan_page, Tab};
use super::session::Viewer;
use super::{fmt, UiError, UiResult};
use crate::db::now_ms;
use crate::db::plans::PlanRow;
use crate::db::projects::new_token;
use crate::error::ServerError;
use crate::server_led;
use crate::AppState;

#[derive(Default, Clone)]
struct RunFields {
    launch_name: String,
    tags: String,
    issues: String,
    environment: String,
}

impl RunFields {
    fn form(&self, request_id: &str) -> UiResult<api::LaunchForm> {
        let environment: Vec<api::KeyValue> = super::parse_pairs("environment", &self.environment)?
            .into_iter()
            .map(|(key, value)| api::KeyValue { key, value })
            .collect();
        Ok(api::LaunchForm {
            launch_name: self.launch_name.trim().to_string(),
            tags: self
                .tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            issues: self
                .issues
                .split(['\n', ','])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            environment,
            request_id: Some(request_id.to_string()).filter(|r| !r.is_empty()),
            manual_assignees: Vec::new(),
            launch_id: None,
        })
    }
}

async fn render_run(
    state: &AppState,
    viewer: &Viewer,
    plan: &PlanRow,
    fields: &RunFields,
    error: Option<&str>,
) -> UiResult<Html<String>> {
    let ex = server_led::plans::executors_dto(&state.db, plan).await?;
    let mut problems: BTreeMap<Id, Vec<String>> = BTreeMap::new();
    for g in &ex.jobs {
        let job = match viewer.scope.job(&state.db, g.job.id).await {
            Ok(job) => job,
            Err(ServerError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let dto = server_led::jobs::job_config_dto(&state.db, &job).await?;
        if !dto.problems.is_empty() {
            problems.insert(job.id, dto.problems);
        }
    }
    let request_id = new_token("ui-");
    let content = html! {
        section class="card" aria-labelledby="who-h" {
            h2 id="who-h" { "Who runs what" }
            ul class="plain" {
                @for g in &ex.jobs {
                    li {
                        a href={ "/jobs/" (g.job.id) } { (g.job.name) } ": " (g.test_cases.len()) " case(s)"
                        @if let Some(ps) = problems.get(&g.job.id) {
                            " " span class="badge missing" { "not ready" }
                            ul class="sub" { @for p in ps { li { (p) } } }
                        }
                    }
                }
                @if !ex.manual.is_empty() { li { "By hand: " (ex.manual.len()) " case(s)" } }
            }
        }
        @if let Some(e) = error { p class="alert" role="alert" { (e) } }
        form method="post" action={ "/plans/" (plan.id) "/run" } class="card" {
            (layout::csrf(viewer))
            input type="hidden" name="request_id" value=(request_id);
            div class="form-grid" {
                label for="run-name" { "Launch name" }
                input id="run-name" name="launch_name" type="text" required value=(fields.launch_name);
                label for="run-tags" { "Tags" }
                input id="run-tags" name="tags" type="text" value=(fields.tags) placeholder="release, nightly";
                div class="hint" { "Separated by commas." }
                label for="run-issues" { "Issue links" }
                textarea id="run-issues" name="issues" rows="2" placeholder="JIRA-123 or https://…" { (fields.issues) }
                div class="hint" { "Issue keys or URLs, one per line." }
                label for="run-env" { "Environment" }
                textarea id="run-env" name="environment" rows="3" placeholder="BROWSER=chromium" { (fields.environment) }
                div class="hint" { "NAME=value per line; given to every triggered job next to its parameters." }
            }
            div class="form-actions" { button type="submit" class="primary" { "Run test plan" } }
        }
    };
    Ok(plan_page(viewer, plan, Tab::Run, "Run", content))
}

pub(super) async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
) -> UiResult<Html<String>> {
    let plan = viewer.scope.plan(&state.db, id).await?;
    let fields = RunFields {
        launch_name: format!("{} · {}", plan.name, &fmt::datetime(now_ms())[..16]),
        ..Default::default()
    };
    render_run(&state, &viewer, &plan, &fields, None).await
}

pub(super) async fn run(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    body: Bytes,
) -> UiResult<Response> {
    let plan = viewer.scope.plan(&state.db, id).await?;
    let pairs = form_pairs(&body);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let fields = RunFields {
        launch_name: get("launch_name"),
        tags: get("tags"),
        issues: get("issues"),
        environment: get("environment"),
    };
    let outcome = async {
        let form = fields.form(get("request_id").trim())?;
        let cases = server_led::plans::plan_members(&state.db, &plan).await?;
        Ok::<_, UiError>(
            server_led::run_cases(
                &state,
                &viewer.scope,
                plan.project_id,
                Some(&plan),
                cases,
                &form,
            )
            .await?,
        )
    }
    .await;
    match outcome {
        Ok(run) => Ok(Redirect::to(&format!("/launch/{}", run.launch.id)).into_response()),
        Err(UiError::BadRequest(m)) | Err(UiError::Conflict(m)) => {
            let mut res = render_run(&state, &viewer, &plan, &fields, Some(&m))
                .await?
                .into_response();
            *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}
