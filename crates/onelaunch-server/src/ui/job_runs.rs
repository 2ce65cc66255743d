//! One job run's page: its facts, planned scope, globals, upload sessions
//! and results.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use maud::html;
use onelaunch_api::{self as api, Id};

use super::launches::{opt_text, results_table, LaunchQuery, RESULTS_PER_PAGE};
use super::layout::{self, Nav, Shell};
use super::session::Viewer;
use super::{fmt, UiError, UiResult};
use crate::db::now_ms;
use crate::db::views::{self, ResultFilter};
use crate::AppState;

pub(super) async fn job_run(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    Query(q): Query<LaunchQuery>,
) -> UiResult<Html<String>> {
    let run = viewer.scope.job_run(&state.db, id).await?;
    let launch = viewer.scope.launch(&state.db, run.launch_id).await?;
    let o = views::overview_cached(&state.db, run.launch_id).await?;
    let views = views::job_run_views(&state.db, run.launch_id, &o).await?;
    let view = views
        .into_iter()
        .find(|v| v.run.id == id)
        .ok_or_else(|| UiError::not_found("job run", id))?;
    let filter = ResultFilter {
        job_run: Some(id),
        status: opt_text(&q.status),
        text: opt_text(&q.q),
        retries: q.retries.as_deref() == Some("1"),
        manual: false,
    };
    let page = q.page.unwrap_or(0).max(0);
    let (lines, total) = views::results(
        &state.db,
        run.launch_id,
        &filter,
        page,
        RESULTS_PER_PAGE,
        Some(&o),
    )
    .await?;
    let sessions = crate::db::results::job_run_sessions(&state.db, id).await?;
    let now = now_ms();
    let base = format!(
        "/jobrun/{id}?status={}&q={}&retries={}&",
        filter.status.as_deref().unwrap_or(""),
        fmt::url_encode(filter.text.as_deref().unwrap_or("")),
        if filter.retries { "1" } else { "" }
    );
    let r = &view.run;
    let planned = crate::db::server_runs::job_run_planned(&state.db, id).await?;
    let globals = super::globals::section(&state, run.launch_id, Some(id)).await?;
    let body = html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href={ "/launches?project=" (launch.project_id) } { "Launches" } " › "
            a href={ "/launch/" (launch.id) } { (launch.name) } " › "
            span aria-current="page" { "Job run #" (r.id) }
        }
        h1 { (r.job_name) " · " (r.name) }
        section class="card summary" aria-label="Summary" {
            (layout::status_bar(&view.counts))
            (layout::counts_text(&view.counts))
            dl class="facts" {
                div { dt { "Stage" } dd {
                    span class={ "stage st-" (r.stage) } { (r.stage.replace('_', " ")) }
                    @if view.missing() { " " span class="badge missing" { "missing" } }
                } }
                div { dt { "Status" } dd { (layout::status(&r.status)) } }
                div { dt { "CI" } dd { (r.ci_type.as_deref().unwrap_or("—")) } }
                div { dt { "CI run" } dd {
                    @if let Some(u) = r.url.as_deref().filter(|u| u.starts_with("http")) {
                        a href=(u) rel="noopener noreferrer" { (u) }
                    } @else { "—" }
                } }
                div { dt { "Job" } dd {
                    a href={ "/jobs/" (r.job_id) } { (r.job_name) }
                    span class="muted" { " (" (r.job_uid) ")" }
                } }
                div { dt { "Started" } dd { (layout::when(r.created_ms)) } }
                div { dt { "Reported" } dd { (layout::ago(view.last_report_ms(), now)) } }
            }
            (super::planned::planned(&planned))
            @if let Some(m) = &r.error_message { p class="alert" role="alert" { (m) } }
            @if !r.parameters.is_empty() {
                h2 { "Parameters" }
                table class="kv" {
                    @for p in &r.parameters {
                        tr { th scope="row" { (p.name) } td { (p.value.as_deref().unwrap_or("")) } }
                    }
                }
            }
        }
        (globals)
        (super::uploads::sessions_section(&sessions))
        section id="results" aria-labelledby="res-h" {
            h2 id="res-h" { "Results" }
            form method="get" action={ "/jobrun/" (id) } class="filters" role="search" aria-label="Filter results" {
                div {
                    label for="r-q" { "Name contains" }
                    input id="r-q" name="q" type="search" value=[filter.text.as_deref()];
                }
                div {
                    label for="r-status" { "Status" }
                    select id="r-status" name="status" {
                        option value="" { "Any" }
                        @for s in api::STATUSES { option value=(s) selected[filter.status.as_deref() == Some(s)] { (s) } }
                    }
                }
                div class="check" {
                    input id="r-retries" name="retries" type="checkbox" value="1" checked[filter.retries];
                    label for="r-retries" { "Show earlier attempts" }
                }
                div class="actions" { button type="submit" { "Filter" } }
            }
            (results_table(&lines, &[], false, "No result reported by this job run yet."))
            (layout::pager(&base, page, RESULTS_PER_PAGE, total))
        }
    };
    let shell = Shell {
        viewer: &viewer,
        project: launch.project_id,
        projects: &[],
        nav: Nav::Launches,
    };
    Ok(layout::page(&shell, &format!("Job run {}", r.name), body))
}
