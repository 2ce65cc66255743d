//! Launches: the list, one launch (summary, job runs, results by job run,
//! manual results) with live updates, close/reopen, and one job run.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use futures::stream::{self, Stream};
use maud::{html, Markup};
use onelaunch_api::{self as api, Id};
use serde::Deserialize;
use serde_json::{json, Value};

use super::layout::{self, Nav, Shell};
use super::session::Viewer;
use super::{fmt, UiError, UiResult};
use crate::db::launches::LaunchRow;
use crate::db::now_ms;
use crate::db::views::{self, JobRunView, LaunchFilter, ResultFilter, ResultLine};
use crate::AppState;

const LAUNCHES_PER_PAGE: i64 = 25;
pub(super) const RESULTS_PER_PAGE: i64 = 100;
/// How often a live page's server side looks for changes.
const LIVE_POLL: Duration = Duration::from_secs(1);
/// A live stream ends after this long; the browser reconnects by itself.
const LIVE_MAX: Duration = Duration::from_secs(30 * 60);
/// A live stream re-checks its session this often and ends after a logout.
const LIVE_SESSION_CHECK: Duration = Duration::from_secs(2);

pub(super) fn opt_text(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

// ---------------------------------------------------------------- the list

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    /// `open`, `closed` or empty.
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    page: Option<i64>,
}

/// A project id from a query string (ignored when it is not a number).
pub(super) fn project_param(p: &Option<String>) -> Option<Id> {
    p.as_deref().and_then(|s| s.trim().parse().ok())
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
    let filter = LaunchFilter {
        text: opt_text(&q.q),
        tag: opt_text(&q.tag),
        closed: match q.state.as_deref() {
            Some("open") => Some(false),
            Some("closed") => Some(true),
            _ => None,
        },
    };
    let page = q.page.unwrap_or(0).max(0);
    let (items, total) =
        views::list_launches(&state.db, project, &filter, page, LAUNCHES_PER_PAGE).await?;
    let projects = views::projects(&state.db, viewer.scope.project_id).await?;
    let now = now_ms();
    let base = format!(
        "/launches?project={project}&q={}&tag={}&state={}&",
        fmt::url_encode(filter.text.as_deref().unwrap_or("")),
        fmt::url_encode(filter.tag.as_deref().unwrap_or("")),
        q.state.as_deref().unwrap_or("")
    );
    let state_sel = q.state.as_deref().unwrap_or("");
    let body = html! {
        h1 { "Launches" }
        p { a href={ "/launches/compare?project=" (project) } { "Compare or combine launches" } }
        form method="get" action="/launches" class="filters" role="search" aria-label="Filter launches" {
            input type="hidden" name="project" value=(project);
            div {
                label for="f-q" { "Name contains" }
                input id="f-q" name="q" type="search" value=[filter.text.as_deref()];
            }
            div {
                label for="f-tag" { "Tag" }
                input id="f-tag" name="tag" type="text" value=[filter.tag.as_deref()];
            }
            div {
                label for="f-state" { "State" }
                select id="f-state" name="state" {
                    option value="" selected[state_sel.is_empty()] { "Open and closed" }
                    option value="open" selected[state_sel == "open"] { "Open" }
                    option value="closed" selected[state_sel == "closed"] { "Closed" }
                }
            }
            div class="actions" { button type="submit" { "Filter" } }
        }
        @if items.is_empty() {
            p class="empty" {
                @if total == 0 && filter.text.is_none() && filter.tag.is_none() && filter.closed.is_none() {
                    "No launches yet. Start one with " code { "onelaunch job-run start" } " or " code { "onelaunch upload" } "."
                } @else {
                    "No launch matches these filters."
                }
            }
        } @else {
            table class="list launches" {
                caption class="visually-hidden" { "Launches, newest first" }
                thead {
                    tr {
                        th scope="col" { "Launch" }
                        th scope="col" { "State" }
                        th scope="col" class="wide" { "Results" }
                        th scope="col" class="num" { "Job runs" }
                        th scope="col" { "Created" }
                    }
                }
                tbody {
                    @for it in &items {
                        tr {
                            th scope="row" {
                                a href={ "/launch/" (it.launch.id) } { (it.launch.name) }
                                span class="id" { " #" (it.launch.id) }
                                @if !it.launch.tags.is_empty() {
                                    ul class="tags" aria-label="Tags" {
                                        @for t in &it.launch.tags {
                                            li { a href={ "/launches?project=" (project) "&tag=" (fmt::url_encode(t)) } { (t) } }
                                        }
                                    }
                                }
                            }
                            td { (open_badge(it.launch.closed)) (super::gate::badge(it.launch.gate_passed)) }
                            td { (layout::status_bar(&it.counts)) (layout::counts_text(&it.counts)) }
                            td class="num" {
                                (it.job_runs)
                                @if it.missing > 0 {
                                    " " span class="badge missing" { (it.missing) " missing" }
                                }
                            }
                            td { (layout::ago(it.launch.created_ms, now)) }
                        }
                    }
                }
            }
            (layout::pager(&base, page, LAUNCHES_PER_PAGE, total))
        }
    };
    let shell = Shell {
        viewer: &viewer,
        project,
        projects: &projects,
        nav: Nav::Launches,
    };
    Ok(layout::page(&shell, "Launches", body))
}

fn open_badge(closed: bool) -> Markup {
    html! {
        @if closed { span class="badge closed" { "closed" } }
        @else { span class="badge open" { "open" } }
    }
}

// ---------------------------------------------------------------- one launch

#[derive(Deserialize, Default)]
pub(super) struct LaunchQuery {
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) q: Option<String>,
    #[serde(default)]
    jr: Option<String>,
    #[serde(default)]
    pub(super) retries: Option<String>,
    #[serde(default)]
    pub(super) page: Option<i64>,
}

/// Everything the live parts of the launch page are rendered from.
struct LiveData {
    launch: LaunchRow,
    o: views::Overview,
    runs: Vec<JobRunView>,
    planned: Option<api::PlannedScope>,
    reruns: Option<api::RerunSummary>,
    fingerprint: String,
}

async fn live_data(state: &AppState, launch: LaunchRow) -> UiResult<LiveData> {
    let (fingerprint, o) = views::launch_state(&state.db, launch.id).await?;
    let runs = views::job_run_views(&state.db, launch.id, &o).await?;
    let planned = crate::db::server_runs::launch_planned(&state.db, launch.id).await?;
    let reruns = crate::db::reruns::rerun_summary(&state.db, launch.id).await?;
    Ok(LiveData {
        launch,
        o,
        runs,
        planned,
        reruns,
        fingerprint,
    })
}

fn state_fragment(viewer: &Viewer, launch: &LaunchRow) -> Markup {
    html! {
        (open_badge(launch.closed))
        @if launch.closed {
            form method="post" action={ "/launch/" (launch.id) "/reopen" } {
                (layout::csrf(viewer))
                button type="submit" { "Reopen launch" }
            }
        } @else {
            form method="post" action={ "/launch/" (launch.id) "/close" } {
                (layout::csrf(viewer))
                button type="submit" { "Close launch" }
            }
        }
        details class="delete-launch" {
            summary { "Delete launch…" }
            form method="post" action={ "/launch/" (launch.id) "/delete" } {
                (layout::csrf(viewer))
                label {
                    input type="checkbox" name="confirm" value="yes" required;
                    " Delete this launch, its results and attachments for good"
                }
                button type="submit" { "Delete launch" }
            }
        }
    }
}

fn summary_fragment(d: &LiveData, now: i64) -> Markup {
    let tests = d.o.tests;
    let retries = d.o.results - tests;
    let missing = d.runs.iter().filter(|r| r.missing()).count();
    let wall = match (d.o.first_start, d.o.last_stop) {
        (Some(a), Some(b)) if b >= a => Some(b - a),
        _ => None,
    };
    html! {
        (layout::status_bar(&d.o.counts))
        (layout::counts_text(&d.o.counts))
        dl class="facts" {
            div { dt { "Tests" } dd { (tests) @if retries > 0 { span class="muted" { " (+" (retries) " retries)" } } } }
            div { dt { "Job runs" } dd {
                (d.runs.len())
                @if missing > 0 { " " span class="badge missing" { (missing) " missing" } }
                @if let Some(e) = d.launch.expected_job_runs {
                    @if e > d.runs.len() as i64 {
                        " " span class="badge missing" { (e - d.runs.len() as i64) " of " (e) " expected not started" }
                    }
                }
            } }
            div { dt { "Duration" } dd {
                @if let Some(w) = wall { (fmt::duration(w)) span class="muted" { " wall-clock" } } @else { "—" }
            } }
            div { dt { "Created" } dd { (layout::when(d.launch.created_ms)) } }
            div { dt { "Last result" } dd {
                @if let Some(t) = d.o.last_result_ms { (layout::ago(t, now)) } @else { "none yet" }
            } }
        }
        (super::planned::planned(&d.planned))
        (super::rerun::summary(&d.reruns))
    }
}

fn job_run_row(v: &JobRunView, now: i64) -> Markup {
    let r = &v.run;
    html! {
        tr class=[v.missing().then_some("is-missing")] {
            th scope="row" {
                a href={ "/jobrun/" (r.id) } { (r.job_name) }
                div class="sub" { (r.name) }
            }
            td { (r.ci_type.as_deref().unwrap_or("—")) }
            td {
                @if let Some(u) = r.url.as_deref().filter(|u| u.starts_with("http")) {
                    a href=(u) rel="noopener noreferrer" target="_blank" { "CI run" span class="visually-hidden" { " of " (r.job_name) } " ↗" }
                } @else { span class="muted" { "—" } }
            }
            td {
                span class={ "stage st-" (r.stage) } { (r.stage.replace('_', " ")) }
                @if v.missing() {
                    " " span class="badge missing" title="Scheduled or started, no results reported yet" { "missing" }
                }
                @if let Some(m) = &r.error_message { div class="sub error" { (m) } }
            }
            td { (layout::status(&r.status)) }
            td class="wide" {
                @if r.result_count > 0 { (layout::status_bar(&v.counts)) }
                (layout::counts_text(&v.counts))
            }
            td { (layout::ago(v.last_report_ms(), now)) }
        }
    }
}

fn job_runs_fragment(d: &LiveData, now: i64) -> Markup {
    html! {
        @for v in &d.runs { (job_run_row(v, now)) }
        @if let Some(e) = d.launch.expected_job_runs {
            @if e > d.runs.len() as i64 {
                tr class="is-missing" {
                    th scope="row" colspan="7" {
                        span class="badge missing" { "missing" }
                        " " (e - d.runs.len() as i64) " expected job run(s) have not started"
                    }
                }
            }
        }
        @if d.runs.is_empty() && d.launch.expected_job_runs.is_none() {
            tr { td colspan="7" class="empty" { "No job run has joined this launch." } }
        }
    }
}

fn issue_markup(v: &Value) -> Markup {
    let (name, url) = match v {
        Value::String(s) => (s.clone(), None),
        Value::Object(o) => (
            o.get("name")
                .or_else(|| o.get("key"))
                .or_else(|| o.get("url"))
                .and_then(Value::as_str)
                .unwrap_or("issue")
                .to_string(),
            o.get("url").and_then(Value::as_str).map(str::to_string),
        ),
        other => (other.to_string(), None),
    };
    let url = url.or_else(|| name.starts_with("http").then(|| name.clone()));
    html! {
        @if let Some(u) = url.filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
            a href=(u) rel="noopener noreferrer" { (name) }
        } @else { (name) }
    }
}

/// The results table: one `tbody` per job run, in job-run order.
pub(super) fn results_table(
    lines: &[ResultLine],
    runs: &[JobRunView],
    show_group: bool,
    empty: &str,
) -> Markup {
    let mut groups: Vec<(Option<Id>, Vec<&ResultLine>)> = Vec::new();
    for l in lines {
        match groups.last_mut() {
            Some((g, v)) if *g == l.job_run_id => v.push(l),
            _ => groups.push((l.job_run_id, vec![l])),
        }
    }
    let run_name = |id: Option<Id>| -> String {
        match id.and_then(|id| runs.iter().find(|r| r.run.id == id)) {
            Some(v) => format!("{} · {}", v.run.job_name, v.run.name),
            None => match id {
                Some(id) => format!("Job run {id}"),
                None => "Outside any job run".into(),
            },
        }
    };
    html! {
        @if lines.is_empty() {
            p class="empty" { (empty) }
        } @else {
            table class="list results" {
                thead {
                    tr {
                        th scope="col" { "Status" }
                        th scope="col" { "Test" }
                        th scope="col" class="num" { "Duration" }
                        th scope="col" class="num" { abbr title="Attachments" { "Files" } }
                    }
                }
                @for (g, ls) in &groups {
                    tbody {
                        @if show_group {
                            tr class="group" {
                                th scope="rowgroup" colspan="4" {
                                    @if let Some(id) = g { a href={ "/jobrun/" (id) } { (run_name(*g)) } }
                                    @else { (run_name(*g)) }
                                }
                            }
                        }
                        @for l in ls {
                            tr {
                                td { @if show_group { (super::rerun::pick(l.id, &l.name)) " " } (layout::status(&l.status)) @if l.retry { " " span class="badge retry" { "earlier attempt" } } }
                                td {
                                    a href={ "/result/" (l.id) } { (l.name) }
                                    @if let Some(f) = &l.full_name { @if f != &l.name { div class="sub" { (f) } } }
                                    @if let Some(m) = &l.message { div class={ "sub msg m-" (l.status) } { (m.lines().next().unwrap_or("")) } }
                                }
                                td class="num" { @if let Some(d) = l.duration_ms { (fmt::duration(d)) } }
                                td class="num" { @if l.attachments > 0 { (l.attachments) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    Query(q): Query<LaunchQuery>,
) -> UiResult<Html<String>> {
    let launch = viewer.scope.launch(&state.db, id).await?;
    let project = launch.project_id;
    let d = live_data(&state, launch).await?;
    let env = views::launch_environment(&state.db, id).await?;
    let filter = ResultFilter {
        job_run: q.jr.as_deref().and_then(|s| s.parse().ok()),
        status: opt_text(&q.status),
        text: opt_text(&q.q),
        retries: q.retries.as_deref() == Some("1"),
        manual: false,
    };
    let page = q.page.unwrap_or(0).max(0);
    let (lines, total) =
        views::results(&state.db, id, &filter, page, RESULTS_PER_PAGE, Some(&d.o)).await?;
    let manual_filter = ResultFilter {
        manual: true,
        retries: true,
        ..Default::default()
    };
    let (manual, manual_total) = if d.o.manual_tests > 0 {
        views::results(
            &state.db,
            id,
            &manual_filter,
            0,
            RESULTS_PER_PAGE,
            Some(&d.o),
        )
        .await?
    } else {
        (Vec::new(), 0)
    };
    let manual_results: i64 =
        d.o.groups
            .iter()
            .filter(|g| g.manual)
            .map(|g| g.results)
            .sum();
    let manual_block =
        super::manual::section(&state, &viewer, id, d.launch.closed, manual_results).await?;
    let globals = super::globals::section(&state, id, None).await?;
    let gate = super::gate::section(&state, &d.launch).await?;
    let combined = super::compare::launch_links(&state, &d.launch).await?;
    let now = now_ms();
    let l = &d.launch;
    let base = format!(
        "/launch/{id}?status={}&q={}&jr={}&retries={}&",
        filter.status.as_deref().unwrap_or(""),
        fmt::url_encode(filter.text.as_deref().unwrap_or("")),
        filter.job_run.map(|j| j.to_string()).unwrap_or_default(),
        if filter.retries { "1" } else { "" }
    );
    let body = html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href={ "/launches?project=" (project) } { "Launches" } " › " span aria-current="page" { "#" (l.id) }
        }
        div class="title-row" data-live={ "/launch/" (id) "/events?fp=" (d.fingerprint) } data-launch=(id) {
            h1 { (l.name) }
            div id="launch-state" class="state" { (state_fragment(&viewer, l)) }
        }
        (combined)
        section id="summary" class="card summary" aria-label="Summary" aria-live="polite" {
            (summary_fragment(&d, now))
        }
        (gate)
        @if !l.tags.is_empty() || !l.issues.is_empty() || !l.links.is_empty() || !env.is_empty() {
            section class="card meta" aria-label="Tags, issues and environment" {
                @if !l.tags.is_empty() {
                    h2 { "Tags" }
                    ul class="tags" {
                        @for t in &l.tags { li { a href={ "/launches?project=" (project) "&tag=" (fmt::url_encode(t)) } { (t) } } }
                    }
                }
                @if !l.issues.is_empty() {
                    h2 { "Issues" }
                    ul class="issues" { @for i in &l.issues { li { (issue_markup(i)) } } }
                }
                @if !l.links.is_empty() {
                    h2 { "Links" }
                    ul class="issues" {
                        @for k in &l.links {
                            li { @if k.url.starts_with("http") { a href=(k.url) rel="noopener noreferrer" { (if k.name.is_empty() { &k.url } else { &k.name }) } } @else { (k.name) } }
                        }
                    }
                }
                @if !env.is_empty() {
                    h2 { "Environment" }
                    table class="kv" {
                        @for (k, vs) in &env {
                            tr { th scope="row" { (k) } td { (vs.iter().cloned().collect::<Vec<_>>().join(", ")) } }
                        }
                    }
                }
            }
        }
        (globals)
        section aria-labelledby="jr-h" {
            h2 id="jr-h" { "Job runs" }
            table class="list jobruns" {
                thead {
                    tr {
                        th scope="col" { "Job" }
                        th scope="col" { "CI" }
                        th scope="col" { "Link" }
                        th scope="col" { "Stage" }
                        th scope="col" { "Status" }
                        th scope="col" class="wide" { "Results" }
                        th scope="col" { "Reported" }
                    }
                }
                tbody id="jobruns-body" { (job_runs_fragment(&d, now)) }
            }
        }
        section id="results" aria-labelledby="res-h" {
            h2 id="res-h" { "Results by job run" }
            p id="results-notice" class="notice" hidden {
                "New results arrived. " a href={ "/launch/" (id) "#results" } { "Refresh the list" }
            }
            form method="get" action={ "/launch/" (id) "#results" } class="filters" role="search" aria-label="Filter results" {
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
                div {
                    label for="r-jr" { "Job run" }
                    select id="r-jr" name="jr" {
                        option value="" { "All" }
                        @for v in &d.runs { option value=(v.run.id) selected[filter.job_run == Some(v.run.id)] { (v.run.job_name) " · " (v.run.name) } }
                    }
                }
                div class="check" {
                    input id="r-retries" name="retries" type="checkbox" value="1" checked[filter.retries];
                    label for="r-retries" { "Show earlier attempts" }
                }
                div class="actions" { button type="submit" { "Filter" } }
            }
            p class="muted" data-results-total=(d.o.results) { (total) " result(s) shown across pages" }
            (super::rerun::actions(&viewer, id))
            (results_table(&lines, &d.runs, true, "No result matches."))
            (layout::pager(&base, page, RESULTS_PER_PAGE, total))
        }
        section id="manual" aria-labelledby="man-h" {
            h2 id="man-h" { "Manual results" }
            @if manual_total > 0 { (results_table(&manual, &[], false, "No manual result recorded yet.")) }
            @if manual_total > RESULTS_PER_PAGE { p class="muted" { "Showing " (RESULTS_PER_PAGE) " of " (manual_total) "." } }
            (manual_block)
        }
    };
    let shell = Shell {
        viewer: &viewer,
        project,
        projects: &[],
        nav: Nav::Launches,
    };
    Ok(layout::page(&shell, &l.name, body))
}

/// The live fragments as JSON (for the event stream and for polling).
fn live_json(viewer: &Viewer, d: &LiveData) -> Value {
    let now = now_ms();
    json!({
        "fingerprint": d.fingerprint,
        "closed": d.launch.closed,
        "results": d.o.results,
        "fragments": {
            "summary": summary_fragment(d, now).into_string(),
            "jobruns-body": job_runs_fragment(d, now).into_string(),
            "launch-state": state_fragment(viewer, &d.launch).into_string(),
        }
    })
}

/// `GET /launch/{id}/live`: the live fragments once (polling fallback).
pub(super) async fn live(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
) -> UiResult<Response> {
    let launch = viewer.scope.launch(&state.db, id).await?;
    let d = live_data(&state, launch).await?;
    Ok(Json(live_json(&viewer, &d)).into_response())
}

#[derive(Deserialize)]
pub(super) struct EventsQuery {
    #[serde(default)]
    fp: Option<String>,
}

/// `GET /launch/{id}/events`: server-sent events. The server looks at the
/// launch once a second (one cheap indexed query, so it works whichever
/// replica wrote) and sends an `update` with the re-rendered fragments when
/// anything changed since the fingerprint the page was rendered with.
pub(super) async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    Query(q): Query<EventsQuery>,
) -> UiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    viewer.scope.launch(&state.db, id).await?;
    let started = tokio::time::Instant::now();
    let init = (state, viewer, q.fp.unwrap_or_default(), true, started);
    let s = stream::unfold(
        init,
        move |(state, viewer, last, first, mut checked)| async move {
            // Waits for the next look; `false` once the server is stopping.
            let pause = || async {
                tokio::select! {
                    _ = tokio::time::sleep(LIVE_POLL) => true,
                    _ = super::shutdown_started() => false,
                }
            };
            if !first && !pause().await {
                return None;
            }
            loop {
                if started.elapsed() > LIVE_MAX {
                    return None;
                }
                // A logged-out (or expired) session gets nothing more.
                if checked.elapsed() >= LIVE_SESSION_CHECK {
                    if !viewer.still_logged_in(&state).await {
                        return None;
                    }
                    checked = tokio::time::Instant::now();
                }
                let fp = views::fingerprint(&state.db, id).await.ok()?;
                if fp != last {
                    let launch = viewer.scope.launch(&state.db, id).await.ok()?;
                    let d = live_data(&state, launch).await.ok()?;
                    let ev = Event::default()
                        .event("update")
                        .data(live_json(&viewer, &d).to_string());
                    let fp = d.fingerprint.clone();
                    return Some((Ok(ev), (state, viewer, fp, false, checked)));
                }
                if !pause().await {
                    return None;
                }
            }
        },
    );
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

pub(super) async fn close(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
) -> UiResult<Response> {
    let l = viewer.scope.launch(&state.db, id).await?;
    if !l.closed {
        crate::closing::close(&state.db, id).await?;
        tracing::info!(launch = id, "launch closed (web UI)");
    }
    Ok(Redirect::to(&format!("/launch/{id}")).into_response())
}

pub(super) async fn reopen(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
) -> UiResult<Response> {
    let l = viewer.scope.launch(&state.db, id).await?;
    if l.closed {
        crate::closing::reopen(&state.db, id).await?;
        tracing::info!(launch = id, "launch reopened (web UI)");
    }
    Ok(Redirect::to(&format!("/launch/{id}")).into_response())
}

/// Deletes a launch from its page (`crate::lifecycle::delete_launch`): the
/// same rule as the API (admin or a member of its project; a busy launch is
/// refused), after the confirmation box was ticked.
pub(super) async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    let l = viewer.scope.launch(&state.db, id).await?;
    if !form.iter().any(|(k, v)| k == "confirm" && v == "yes") {
        return Err(UiError::BadRequest(
            "tick the confirmation box to delete the launch".into(),
        ));
    }
    let d = crate::lifecycle::delete_launch(
        &state.db,
        &state.blobs,
        id,
        false,
        state.upload_session_timeout,
    )
    .await?;
    tracing::info!(
        launch = id,
        results = d.results,
        bytes_freed = d.bytes_freed,
        "launch deleted (web UI)"
    );
    Ok(Redirect::to(&format!("/launches?project={}", l.project_id)).into_response())
}
