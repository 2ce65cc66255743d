//! Launches analysed together: the compare page (two launches test by test,
//! matched by test case whichever job ran them: new failures, still failing,
//! fixed, added, removed, flaky; each job's outcome) and the combine form (a
//! new launch holding the results of several, CSRF-guarded like every form).
//! The rules are `crate::compare` and `ingest::combine`; every launch named is
//! loaded through the viewer's scope.

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup};
use onelaunch_api::{self as api, category, Id};
use serde::Deserialize;

use super::launches::project_param;
use super::layout::{self, Nav, Shell};
use super::session::Viewer;
use super::{UiError, UiResult};
use crate::db::launches::LaunchRow;
use crate::db::views;
use crate::AppState;

/// Launches offered in the pickers (newest first).
const CHOICES: i64 = 100;

#[derive(Deserialize, Default)]
pub(super) struct CompareQuery {
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    head: Option<String>,
}

fn id_param(field: &str, v: &Option<String>) -> UiResult<Option<Id>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| UiError::BadRequest(format!("{field}: expected a launch id, got {s:?}"))),
    }
}

fn title(c: &str) -> &'static str {
    match c {
        category::NEW_FAILURE => "New failures",
        category::STILL_FAILING => "Still failing",
        category::FIXED => "Fixed",
        category::ADDED => "Added",
        category::REMOVED => "Removed",
        _ => "Flaky, otherwise unchanged",
    }
}

fn outcomes(o: &[api::JobOutcome]) -> Markup {
    html! {
        @if o.is_empty() { span class="muted" { "not run" } }
        ul class="outcomes" {
            @for o in o {
                li {
                    span class="job" { (o.job) } ": "
                    a href={ "/result/" (o.result_id) } { (layout::status(&o.status)) }
                    @if o.flaky {
                        " " span class="badge flaky" title="status changed between attempts" { "flaky" }
                        " " span class="sub" { "attempts: " (o.attempts.join(" → ")) }
                    }
                }
            }
        }
    }
}

fn picker(id: &str, name: &str, label: &str, launches: &[LaunchRow], sel: Option<Id>) -> Markup {
    html! {
        div {
            label for=(id) { (label) }
            select id=(id) name=(name) required {
                option value="" { "Choose a launch" }
                @for l in launches {
                    option value=(l.id) selected[sel == Some(l.id)] { (l.name) " #" (l.id) }
                }
            }
        }
    }
}

fn comparison(c: &api::LaunchComparison) -> Markup {
    let s = &c.summary;
    html! {
        section class="card summary" id="compare-summary" aria-label="Summary" {
            p {
                a href={ "/launch/" (c.head.id) } { (c.head.name) } span class="id" { " #" (c.head.id) }
                " compared with "
                a href={ "/launch/" (c.base.id) } { (c.base.name) } span class="id" { " #" (c.base.id) }
            }
            ul class="counts" {
                li data-count="newFailure" { span class="n" { (s.new_failures) } " new failures" }
                li data-count="stillFailing" { span class="n" { (s.still_failing) } " still failing" }
                li data-count="fixed" { span class="n" { (s.fixed) } " fixed" }
                li data-count="added" { span class="n" { (s.added) } " added" }
                li data-count="removed" { span class="n" { (s.removed) } " removed" }
                li data-count="unchanged" { span class="n" { (s.unchanged) } " unchanged" }
                li data-count="flaky" { span class="n" { (s.flaky) } " flaky" }
            }
        }
        @if c.tests.is_empty() {
            p class="empty" { "Nothing changed: every test ran in both launches and failed in neither." }
        }
        @for cat in category::ALL {
            @let tests: Vec<&api::ComparedTest> = c.tests.iter().filter(|t| t.category == cat).collect();
            @if !tests.is_empty() {
                section class="card" id={ "cat-" (cat) } aria-label=(title(cat)) {
                    h2 { (title(cat)) " " span class="muted" { "(" (tests.len()) ")" } }
                    table class="list compare" {
                        thead {
                            tr {
                                th scope="col" { "Test" }
                                th scope="col" { "Base #" (c.base.id) }
                                th scope="col" { "Head #" (c.head.id) }
                            }
                        }
                        tbody {
                            @for t in tests {
                                tr data-test=(t.name) {
                                    th scope="row" {
                                        (t.name)
                                        @if t.flaky { " " span class="badge flaky" { "flaky" } }
                                        div class="sub" { (t.identity) }
                                    }
                                    td { (outcomes(&t.base)) }
                                    td { (outcomes(&t.head)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /launches/compare?project=&base=&head=`: the pickers, the comparison
/// when both launches are chosen, and the combine form.
pub(super) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<CompareQuery>,
) -> UiResult<Html<String>> {
    let base = id_param("Base", &q.base)?;
    let head = id_param("Head", &q.head)?;
    let base = match base {
        Some(id) => Some(viewer.scope.launch(&state.db, id).await?),
        None => None,
    };
    let head = match head {
        Some(id) => Some(viewer.scope.launch(&state.db, id).await?),
        None => None,
    };
    let given = head
        .as_ref()
        .or(base.as_ref())
        .map(|l| l.project_id)
        .or(project_param(&q.project));
    let project = viewer.scope.list_project(&state.db, given).await?;
    let result = match (&base, &head) {
        (Some(b), Some(h)) => Some(crate::compare::compare(&state.db, b, h).await?),
        _ => None,
    };
    let (launches, _) =
        crate::db::launches::list_launches(&state.db, project, None, 0, CHOICES).await?;
    let projects = views::projects(&state.db, viewer.scope.project_id).await?;
    let body = html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href={ "/launches?project=" (project) } { "Launches" } " › " span aria-current="page" { "Compare" }
        }
        h1 { "Compare launches" }
        form method="get" action="/launches/compare" class="filters" aria-label="Launches to compare" {
            input type="hidden" name="project" value=(project);
            (picker("c-base", "base", "Base (compared against)", &launches, base.as_ref().map(|l| l.id)))
            (picker("c-head", "head", "Head (judged)", &launches, head.as_ref().map(|l| l.id)))
            div class="actions" { button type="submit" class="primary" { "Compare" } }
        }
        @if let Some(c) = &result { (comparison(c)) }
        form method="post" action="/launches/combine" id="combine" {
            (layout::csrf(&viewer))
            input type="hidden" name="project" value=(project);
            fieldset class="card" {
                legend { "Combine launches" }
                p class="muted" {
                    "A new launch holding the results of the launches ticked (each one's job runs kept as job runs, "
                    "attachments shared). The launches themselves stay as they are."
                }
                ul class="choices" {
                    @for l in &launches {
                        li {
                            label {
                                input type="checkbox" name="launch" value=(l.id);
                                " " (l.name) " " span class="id" { "#" (l.id) }
                            }
                        }
                    }
                }
                div class="form-grid" {
                    label for="c-name" { "Name of the combined launch" }
                    input id="c-name" name="name" type="text" required maxlength="1000";
                }
                div class="form-actions" { button type="submit" { "Combine" } }
            }
        }
    };
    let shell = Shell {
        viewer: &viewer,
        project,
        projects: &projects,
        nav: Nav::Launches,
    };
    Ok(layout::page(&shell, "Compare launches", body))
}

/// `POST /launches/combine` (`launch=<id>` repeated, `name`): the combined
/// launch's page.
pub(super) async fn combine(
    State(state): State<AppState>,
    viewer: Viewer,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    let mut ids = Vec::new();
    let mut name = String::new();
    for (k, v) in form {
        match k.as_str() {
            "launch" => ids.extend(id_param("Launches", &Some(v))?),
            "name" => name = v,
            _ => {}
        }
    }
    let mut sources = Vec::new();
    for id in crate::ingest::combine::source_ids(&ids)? {
        sources.push(viewer.scope.launch(&state.db, id).await?);
    }
    let id = crate::ingest::combine::combine(&state.db, &sources, &name).await?;
    Ok(Redirect::to(&format!("/launch/{id}")).into_response())
}

/// The launch page's lines about combining: its compare link, the launches
/// combined from it, the launches it was combined from.
pub(super) async fn launch_links(state: &AppState, l: &LaunchRow) -> UiResult<Markup> {
    let (into, from) = crate::db::combine::links(&state.db, l.id).await?;
    let list = |ids: &[Id]| {
        html! { @for (i, id) in ids.iter().enumerate() { @if i > 0 { ", " } a href={ "/launch/" (id) } { "#" (id) } } }
    };
    Ok(html! {
        p class="combined" id="combined" {
            a href={ "/launches/compare?project=" (l.project_id) "&head=" (l.id) } { "Compare with another launch" }
            @if !from.is_empty() { " · Combined from " (list(&from)) }
            @if !into.is_empty() { " · Combined into " (list(&into)) }
        }
    })
}
