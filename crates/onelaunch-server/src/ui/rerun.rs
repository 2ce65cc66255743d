//! Reruns from the launch page: "Rerun failed" (every test whose latest
//! attempt failed or is broken) and "Rerun selected" (the results ticked in
//! the results list), the answer page (new job runs, tests no job can run),
//! and the launch's rerun summary. The domain is `server_led::rerun`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Html;
use maud::{html, Markup};
use onelaunch_api::{self as api, Id};

use super::layout::{self, Nav, Shell};
use super::plans::form_pairs;
use super::session::Viewer;
use super::{UiError, UiResult};
use crate::server_led::rerun;
use crate::AppState;

/// The id of the form the result checkboxes belong to.
const SELECTED_FORM: &str = "rerun-selected";

/// The rerun buttons of a launch's results list. Each form carries a request
/// id of its own, so posting it again (a reload of the answer page, a double
/// click) answers the rerun it started instead of starting another.
pub(super) fn actions(viewer: &Viewer, launch_id: Id) -> Markup {
    let request = || crate::db::projects::new_token("ui-");
    html! {
        div class="rerun-actions" {
            form method="post" action={ "/launch/" (launch_id) "/rerun" } {
                (layout::csrf(viewer))
                input type="hidden" name="request" value=(request());
                input type="hidden" name="failed" value="1";
                button type="submit" { "Rerun failed" }
            }
            form id=(SELECTED_FORM) method="post" action={ "/launch/" (launch_id) "/rerun" } {
                (layout::csrf(viewer))
                input type="hidden" name="request" value=(request());
                button type="submit" { "Rerun selected" }
            }
        }
    }
}

/// A result's checkbox for "Rerun selected".
pub(super) fn pick(result_id: Id, name: &str) -> Markup {
    html! {
        input type="checkbox" form=(SELECTED_FORM) name="result" value=(result_id)
            aria-label={ "Select " (name) " for rerun" };
    }
}

/// "N tests rerun, M changed status" once a rerun happened.
pub(super) fn summary(s: &Option<api::RerunSummary>) -> Markup {
    let Some(s) = s else {
        return html! {};
    };
    html! {
        p class="reruns" data-rerun=(s.rerun) data-changed=(s.changed) {
            strong { "Reruns: " (s.rerun) " tests rerun, " (s.changed) " changed status" }
        }
    }
}

/// `POST /launch/{id}/rerun` (form: `failed=1`, or repeated `result=ID`).
pub(super) async fn rerun(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    body: Bytes,
) -> UiResult<Html<String>> {
    let launch = viewer.scope.launch(&state.db, id).await?;
    let pairs = form_pairs(&body);
    let failed = pairs.iter().any(|(k, v)| k == "failed" && v == "1");
    let results: Vec<Id> = pairs
        .iter()
        .filter(|(k, _)| k == "result")
        .filter_map(|(_, v)| v.trim().parse().ok())
        .collect();
    if !failed && results.is_empty() {
        return Err(UiError::BadRequest(
            "Tick the results to rerun in the results list, or use \"Rerun failed\".".into(),
        ));
    }
    let sel = api::RerunSelection {
        failed,
        test_result_ids: results,
        ..Default::default()
    };
    let request_id = rerun::request_id(
        pairs
            .iter()
            .find(|(k, _)| k == "request")
            .map(|(_, v)| v.as_str()),
    )?;
    let project = launch.project_id;
    let name = launch.name.clone();
    let dto = match rerun::repeated(&state, &launch, request_id.as_deref()).await? {
        Some(dto) => dto,
        None => {
            let plan =
                rerun::prepare(&state, &viewer.scope, launch, &sel, &[], None, request_id).await?;
            let reopen = plan.runs_anything() && plan.launch.closed;
            if reopen {
                crate::closing::reopen(&state.db, plan.launch.id).await?;
            }
            rerun::start(&state, plan, reopen).await?
        }
    };
    tracing::info!(launch = id, job_runs = dto.job_runs.len(), "rerun (web UI)");
    let body = html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href={ "/launches?project=" (project) } { "Launches" } " › "
            a href={ "/launch/" (id) } { "#" (id) } " › " span aria-current="page" { "Rerun" }
        }
        h1 { "Rerun of " (name) }
        section class="card" aria-labelledby="rr-h" {
            h2 id="rr-h" {
                @if dto.job_runs.is_empty() { "Nothing was rerun" }
                @else { "Rerun started: " (dto.job_runs.len()) " job run(s)" }
            }
            @if dto.reopened { p { "The launch was reopened." } }
            ul class="plain rerun-runs" {
                @for p in &dto.job_runs {
                    li {
                        a href={ "/jobrun/" (p.job_run.id) } { (p.job_run.job.name) }
                        " · " (p.test_case_ids.len()) " test(s) · "
                        span class={ "stage st-" (p.job_run.stage) } { (p.job_run.stage.replace('_', " ")) }
                        @if let Some(m) = &p.job_run.error_message { div class="sub error" { (m) } }
                    }
                }
            }
        }
        @if !dto.not_rerunnable.is_empty() {
            section class="card" aria-labelledby="nr-h" {
                h2 id="nr-h" { "Not rerunnable (" (dto.not_rerunnable.len()) ")" }
                ul class="plain not-rerunnable" {
                    @for n in &dto.not_rerunnable {
                        li { a href={ "/result/" (n.test_result_id) } { (n.name) } div class="sub" { (n.reason) } }
                    }
                }
            }
        }
        p { a href={ "/launch/" (id) } { "Back to the launch" } }
    };
    let shell = Shell {
        viewer: &viewer,
        project,
        projects: &[],
        nav: Nav::Launches,
    };
    Ok(layout::page(&shell, &format!("Rerun of {name}"), body))
}
