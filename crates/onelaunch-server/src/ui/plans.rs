//! Test plans: the list, creating one from a selection of test cases or a
//! filter, one plan's cases and launches, and the Executors tab (which job
//! runs which cases, with overrides); the Run tab is in `plan_run`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup};
use onelaunch_api::{self as api, Id};
use serde::Deserialize;

use super::launches::project_param;
use super::layout::{self, Nav, Shell};
use super::session::Viewer;
use super::{fmt, UiError, UiResult};
use crate::db::{self, now_ms};
use crate::db::{plans::PlanRow, test_cases::CaseRow};
use crate::db::{ui_views, views};
use crate::server_led;
use crate::AppState;

const CASES_PER_PAGE: i64 = 100;

/// Form fields as a list (checkbox groups repeat their name).
pub(super) fn form_pairs(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn ids(pairs: &[(String, String)], name: &str) -> Vec<Id> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .filter_map(|(_, v)| v.trim().parse().ok())
        .collect()
}

/// A filter from the fields `f_name`, `f_label` (NAME=VALUE, several separated
/// by commas) and `f_status`.
#[derive(Deserialize, Default, Clone, Debug)]
pub(super) struct FilterFields {
    #[serde(default)]
    f_name: Option<String>,
    #[serde(default)]
    f_label: Option<String>,
    #[serde(default)]
    f_status: Option<String>,
}

impl FilterFields {
    fn from_pairs(pairs: &[(String, String)]) -> FilterFields {
        FilterFields {
            f_name: field(pairs, "f_name").map(str::to_string),
            f_label: field(pairs, "f_label").map(str::to_string),
            f_status: field(pairs, "f_status").map(str::to_string),
        }
    }

    fn filter(&self) -> UiResult<api::TestCaseFilter> {
        let mut f = api::TestCaseFilter {
            name_pattern: self
                .f_name
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            ..Default::default()
        };
        for part in self.f_label.as_deref().unwrap_or("").split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (n, v) = part
                .split_once('=')
                .or_else(|| part.split_once(':'))
                .ok_or_else(|| {
                    UiError::BadRequest(format!("label filter: expected NAME=VALUE, got {part:?}"))
                })?;
            f.labels.push(api::LabelDto {
                name: n.trim().into(),
                value: v.trim().into(),
            });
        }
        if let Some(s) = self
            .f_status
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            f.status.push(s.to_string());
        }
        Ok(f)
    }

    fn query(&self) -> String {
        format!(
            "f_name={}&f_label={}&f_status={}",
            fmt::url_encode(self.f_name.as_deref().unwrap_or("")),
            fmt::url_encode(self.f_label.as_deref().unwrap_or("")),
            fmt::url_encode(self.f_status.as_deref().unwrap_or(""))
        )
    }

    fn inputs(&self) -> Markup {
        let status = self.f_status.as_deref().unwrap_or("");
        html! {
            div {
                label for="f-name" { "Name contains (or glob with * ?)" }
                input id="f-name" name="f_name" type="search" value=[self.f_name.as_deref()];
            }
            div {
                label for="f-label" { "Labels (NAME=VALUE, …)" }
                input id="f-label" name="f_label" type="text" value=[self.f_label.as_deref()] placeholder="feature=Checkout";
            }
            div {
                label for="f-status" { "Last status" }
                select id="f-status" name="f_status" {
                    option value="" { "Any" }
                    @for s in api::STATUSES { option value=(s) selected[status == s] { (s) } }
                }
            }
        }
    }
}

fn describe_filter(f: &api::TestCaseFilter) -> String {
    let mut parts = Vec::new();
    if let Some(p) = f.name_pattern.as_deref().filter(|p| !p.is_empty()) {
        parts.push(format!("name ~ {p:?}"));
    }
    for l in &f.labels {
        parts.push(format!("{}={}", l.name, l.value));
    }
    if !f.status.is_empty() {
        parts.push(format!("last status {}", f.status.join("/")));
    }
    parts.join(", ")
}

fn executor_text(c: &CaseRow) -> Markup {
    html! {
        @match (&c.job_id, &c.job_name) {
            (Some(_), Some(n)) => (n),
            _ => span class="muted" { "manual" },
        }
    }
}

// ---------------------------------------------------------------- list

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    page: Option<i64>,
}

const PLANS_PER_PAGE: i64 = 50;

pub(super) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> UiResult<Html<String>> {
    let project = viewer
        .scope
        .list_project(&state.db, project_param(&q.project))
        .await?;
    let page = q.page.unwrap_or(0).max(0);
    let (rows, total) = ui_views::list_plans(&state.db, project, page, PLANS_PER_PAGE).await?;
    let projects = views::projects(&state.db, viewer.scope.project_id).await?;
    let now = now_ms();
    let body = html! {
        div class="title-row" {
            h1 { "Test plans" }
            div class="state" { a class="button primary" href={ "/plans/new?project=" (project) } { "New test plan" } }
        }
        @if rows.is_empty() {
            p class="empty" { "No test plan yet. A plan selects test cases (learned from uploaded results) by hand or by a filter; running it starts one launch with one job run per executor job." }
        } @else {
            table class="list" {
                thead { tr {
                    th scope="col" { "Plan" } th scope="col" { "Selects" } th scope="col" class="num" { "Runs" }
                    th scope="col" { "Created" } th scope="col" { span class="visually-hidden" { "Actions" } }
                } }
                tbody {
                    @for r in &rows {
                        @let id = r.id;
                        tr {
                            th scope="row" { a href={ "/plans/" (id) } { (r.name) } }
                            td {
                                @let n = r.cases;
                                @if n > 0 { (n) " chosen case(s)" }
                                @if let Some(f) = r.filter.as_ref().filter(|f| !f.is_empty()) {
                                    @if n > 0 { " + " }
                                    "filter: " code { (describe_filter(f)) }
                                }
                            }
                            td class="num" { (r.runs) }
                            td { (layout::ago(r.created_ms, now)) }
                            td class="num" {
                                a href={ "/plans/" (id) "/executors" } { "Executors" } " · "
                                a href={ "/plans/" (id) "/run" } { "Run" }
                            }
                        }
                    }
                }
            }
            (layout::pager(&format!("/plans?project={project}&"), page, PLANS_PER_PAGE, total))
        }
    };
    let shell = Shell {
        viewer: &viewer,
        project,
        projects: &projects,
        nav: Nav::Plans,
    };
    Ok(layout::page(&shell, "Test plans", body))
}

// ---------------------------------------------------------------- new

#[derive(Deserialize, Default)]
pub(super) struct NewQuery {
    #[serde(default)]
    project: Option<String>,
    #[serde(flatten)]
    filter: FilterFields,
    #[serde(default)]
    page: Option<i64>,
}

fn cases_table(cases: &[CaseRow], selectable: Option<&[Id]>) -> Markup {
    html! {
        table class="list cases" {
            thead { tr {
                @if selectable.is_some() {
                    th scope="col" class="sel" {
                        input type="checkbox" id="sel-all" data-select-all="case" aria-label="Select all on this page";
                    }
                }
                th scope="col" { "Test case" } th scope="col" { "Default executor" } th scope="col" { "Last status" }
            } }
            tbody {
                @for c in cases {
                    tr {
                        @if let Some(sel) = selectable {
                            td class="sel" {
                                input type="checkbox" name="case" value=(c.id) id={ "case-" (c.id) } checked[sel.contains(&c.id)];
                            }
                        }
                        th scope="row" {
                            @if selectable.is_some() {
                                label for={ "case-" (c.id) } class="case-label" { (c.name) }
                            } @else { (c.name) }
                            @if let Some(f) = &c.full_name { @if f != &c.name { div class="sub" { (f) } } }
                            @if let Some(a) = &c.allure_id { span class="id" { "ALLURE_ID " (a) } }
                        }
                        td { (executor_text(c)) }
                        td { @if let Some(s) = &c.last_status { (layout::status(s)) } }
                    }
                }
            }
        }
    }
}

/// What the "new test plan" page shows: the filter, the page of test cases,
/// and what was already filled in.
#[derive(Default)]
struct NewPlan {
    project: Id,
    filter: FilterFields,
    page: i64,
    name: String,
    chosen: Vec<Id>,
}

async fn render_new(
    state: &AppState,
    viewer: &Viewer,
    form: &NewPlan,
    error: Option<&str>,
) -> UiResult<Html<String>> {
    let (project, filter_fields, page) = (form.project, &form.filter, form.page);
    let (name, chosen) = (form.name.as_str(), form.chosen.as_slice());
    let filter = match filter_fields.filter() {
        Ok(f) => f,
        Err(UiError::BadRequest(m)) => return render_error_new(state, viewer, project, &m).await,
        Err(e) => return Err(e),
    };
    let (cases, total) =
        db::test_cases::list_cases(&state.db, project, &filter, Some((page, CASES_PER_PAGE)))
            .await?;
    let base = format!("/plans/new?project={project}&{}&", filter_fields.query());
    let body = html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href={ "/plans?project=" (project) } { "Test plans" } " › " span aria-current="page" { "New" }
        }
        h1 { "New test plan" }
        @if let Some(e) = error { p class="alert" role="alert" { (e) } }
        form method="get" action="/plans/new" class="filters" role="search" aria-label="Filter test cases" {
            input type="hidden" name="project" value=(project);
            (filter_fields.inputs())
            div class="actions" { button type="submit" { "Filter" } }
        }
        form method="post" action="/plans" {
            (layout::csrf(viewer))
            input type="hidden" name="project" value=(project);
            input type="hidden" name="f_name" value=[filter_fields.f_name.as_deref()];
            input type="hidden" name="f_label" value=[filter_fields.f_label.as_deref()];
            input type="hidden" name="f_status" value=[filter_fields.f_status.as_deref()];
            p class="muted" { (total) " test case(s) match" @if total > CASES_PER_PAGE { " (this page shows " (cases.len()) ")" } "." }
            @if cases.is_empty() {
                p class="empty" { "No test case matches. Test cases are learned from uploaded results." }
            } @else {
                (cases_table(&cases, Some(chosen)))
                (layout::pager(&base, page, CASES_PER_PAGE, total))
            }
            fieldset class="card" {
                legend { "Create" }
                div class="field" {
                    label for="p-name" { "Plan name" }
                    input id="p-name" name="name" type="text" required value=(name);
                }
                div class="check" {
                    input id="m-selected" type="radio" name="mode" value="selected" checked;
                    label for="m-selected" { "From the test cases ticked above" }
                }
                div class="check" {
                    input id="m-filter" type="radio" name="mode" value="filter";
                    label for="m-filter" { "From the filter (cases matching it whenever the plan runs)" }
                }
                div class="form-actions" { button type="submit" class="primary" { "Create test plan" } }
            }
        }
    };
    let shell = Shell {
        viewer,
        project,
        projects: &[],
        nav: Nav::Plans,
    };
    Ok(layout::page(&shell, "New test plan", body))
}

async fn render_error_new(
    state: &AppState,
    viewer: &Viewer,
    project: Id,
    message: &str,
) -> UiResult<Html<String>> {
    let form = NewPlan {
        project,
        ..Default::default()
    };
    Box::pin(render_new(state, viewer, &form, Some(message))).await
}

pub(super) async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<NewQuery>,
) -> UiResult<Html<String>> {
    let project = viewer
        .scope
        .list_project(&state.db, project_param(&q.project))
        .await?;
    let form = NewPlan {
        project,
        filter: q.filter,
        page: q.page.unwrap_or(0).max(0),
        ..Default::default()
    };
    render_new(&state, &viewer, &form, None).await
}

pub(super) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> UiResult<Response> {
    let pairs = form_pairs(&body);
    let project = viewer
        .scope
        .list_project(
            &state.db,
            field(&pairs, "project").and_then(|p| p.parse().ok()),
        )
        .await?;
    let ff = FilterFields::from_pairs(&pairs);
    let name = field(&pairs, "name").unwrap_or("").to_string();
    let chosen = ids(&pairs, "case");
    let by_filter = field(&pairs, "mode") == Some("filter");
    let outcome = async {
        let filter = ff.filter()?;
        if by_filter && filter.is_empty() {
            return Err(UiError::BadRequest(
                "Set a filter (name, labels or status) to create a plan from it.".into(),
            ));
        }
        if !by_filter && chosen.is_empty() {
            return Err(UiError::BadRequest(
                "Tick at least one test case, or create the plan from the filter.".into(),
            ));
        }
        let req = api::TestPlanCreate {
            project_id: project,
            name: name.clone(),
            test_case_ids: if by_filter { vec![] } else { chosen.clone() },
            filter: by_filter.then_some(filter),
        };
        Ok(server_led::plans::create_plan(&state.db, &req).await?)
    }
    .await;
    match outcome {
        Ok(plan) => Ok(Redirect::to(&format!("/plans/{}", plan.id)).into_response()),
        Err(UiError::BadRequest(m)) => {
            let form = NewPlan {
                project,
                filter: ff,
                page: 0,
                name,
                chosen,
            };
            let mut res = render_new(&state, &viewer, &form, Some(&m))
                .await?
                .into_response();
            *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- one plan

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Tab {
    Cases,
    Executors,
    Run,
}

pub(super) fn plan_page(
    viewer: &Viewer,
    plan: &PlanRow,
    tab: Tab,
    title: &str,
    content: Markup,
) -> Html<String> {
    let cur = |t: Tab| if t == tab { Some("page") } else { None };
    let body = html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href={ "/plans?project=" (plan.project_id) } { "Test plans" } " › " span aria-current="page" { (plan.name) }
        }
        h1 { (plan.name) }
        @if let Some(f) = plan.filter.as_ref().filter(|f| !f.is_empty()) {
            p class="muted" { "Filter: " code { (describe_filter(f)) } }
        }
        nav class="tabs" aria-label="Test plan" {
            a href={ "/plans/" (plan.id) } aria-current=[cur(Tab::Cases)] { "Test cases" }
            a href={ "/plans/" (plan.id) "/executors" } aria-current=[cur(Tab::Executors)] { "Executors" }
            a href={ "/plans/" (plan.id) "/run" } aria-current=[cur(Tab::Run)] { "Run" }
        }
        (content)
    };
    let shell = Shell {
        viewer,
        project: plan.project_id,
        projects: &[],
        nav: Nav::Plans,
    };
    layout::page(&shell, &format!("{title} · {}", plan.name), body)
}

pub(super) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
) -> UiResult<Html<String>> {
    let plan = viewer.scope.plan(&state.db, id).await?;
    let members = server_led::plans::plan_members(&state.db, &plan).await?;
    let launches = ui_views::plan_launches(&state.db, id).await?;
    let now = now_ms();
    let content = html! {
        p class="muted" { (members.len()) " test case(s) selected now." }
        @if !members.is_empty() { (cases_table(&members, None)) }
        section aria-labelledby="runs-h" {
            h2 id="runs-h" { "Launches of this plan" }
            @if launches.is_empty() { p class="empty" { "Not run yet." } }
            @else {
                ul class="plain" {
                    @for l in &launches {
                        li {
                            a href={ "/launch/" (l.id) } { (l.name) }
                            " " span class="muted" { (layout::ago(l.created_ms, now)) }
                            @if l.closed { " " span class="badge closed" { "closed" } }
                        }
                    }
                }
            }
        }
    };
    Ok(plan_page(&viewer, &plan, Tab::Cases, "Test cases", content))
}

async fn render_executors(
    state: &AppState,
    viewer: &Viewer,
    plan: &PlanRow,
    error: Option<&str>,
    saved: bool,
) -> UiResult<Html<String>> {
    let ex = server_led::plans::executors_dto(&state.db, plan).await?;
    let jobs = crate::db::job_runs::list_jobs(&state.db, plan.project_id).await?;
    let group = |title: Markup, cases: &[api::ExecutorCase]| {
        html! {
            tbody {
                tr class="group" { th scope="rowgroup" colspan="3" { (title) " · " (cases.len()) " case(s)" } }
                @for c in cases {
                    tr {
                        td class="sel" { input type="checkbox" name="case" value=(c.id) id={ "ex-" (c.id) }; }
                        th scope="row" {
                            label for={ "ex-" (c.id) } class="case-label" { (c.name) }
                            @if let Some(f) = &c.full_name { @if f != &c.name { div class="sub" { (f) } } }
                        }
                        td { @if c.source == "override" { span class="badge" { "override" } } @else { span class="muted" { "default" } } }
                    }
                }
            }
        }
    };
    let content = html! {
        p class="muted" {
            "Each case runs in the job that last reported it (its default executor) unless this plan overrides it. Cases without a job are done by hand."
        }
        @if saved { p class="notice" role="status" { "Executors changed." } }
        @if let Some(e) = error { p class="alert" role="alert" { (e) } }
        form method="post" action={ "/plans/" (plan.id) "/executors" } {
            (layout::csrf(viewer))
            table class="list executors" {
                thead { tr {
                    th scope="col" class="sel" { input type="checkbox" data-select-all="case" aria-label="Select all"; }
                    th scope="col" { "Test case" } th scope="col" { "Executor" }
                } }
                @for g in &ex.jobs {
                    (group(html! { "Job: " a href={ "/jobs/" (g.job.id) } { (g.job.name) } @if let Some(k) = &g.job.kind { " (" (k) ")" } }, &g.test_cases))
                }
                @if !ex.manual.is_empty() { (group(html! { "Manual (no job)" }, &ex.manual)) }
            }
            fieldset class="card" {
                legend { "Change the executor of the ticked cases" }
                div class="filters" {
                    div class="grow" {
                        label for="ex-target" { "Run them by" }
                        select id="ex-target" name="target" {
                            @for j in &jobs { option value={ "job:" (j.id) } { "job " (j.name) @if let Some(k) = &j.ci_type { " (" (k) ")" } } }
                            option value="manual" { "hand (manual)" }
                            option value="reset" { "their default executor" }
                        }
                    }
                    div class="actions" { button type="submit" class="primary" { "Apply" } }
                }
            }
        }
    };
    Ok(plan_page(
        viewer,
        plan,
        Tab::Executors,
        "Executors",
        content,
    ))
}

#[derive(Deserialize, Default)]
pub(super) struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub(super) async fn executors(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    Query(q): Query<SavedQuery>,
) -> UiResult<Html<String>> {
    let plan = viewer.scope.plan(&state.db, id).await?;
    render_executors(&state, &viewer, &plan, None, q.saved.is_some()).await
}

pub(super) async fn set_executors(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    body: Bytes,
) -> UiResult<Response> {
    let plan = viewer.scope.plan(&state.db, id).await?;
    let pairs = form_pairs(&body);
    let cases = ids(&pairs, "case");
    let target = field(&pairs, "target").unwrap_or("");
    let mut req = api::ExecutorOverride {
        test_case_ids: cases.clone(),
        ..Default::default()
    };
    match target {
        "manual" => req.manual = true,
        "reset" => req.reset = true,
        t => req.job_id = t.strip_prefix("job:").and_then(|j| j.parse().ok()),
    }
    let outcome = if cases.is_empty() {
        Err(UiError::BadRequest(
            "Tick the test cases whose executor should change.".into(),
        ))
    } else {
        server_led::plans::override_executors(&state.db, &plan, &req)
            .await
            .map_err(UiError::from)
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/plans/{id}/executors?saved=1")).into_response()),
        Err(UiError::BadRequest(m)) => {
            let mut res = render_executors(&state, &viewer, &plan, Some(&m), false)
                .await?
                .into_response();
            *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}
