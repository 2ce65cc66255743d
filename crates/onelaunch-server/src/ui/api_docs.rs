//! The API reference page (`/api-docs`): every operation of the API's OpenAPI
//! description (`/api/openapi.json`), grouped by tag, with its method, path
//! and summary. The description itself is built by `api::openapi` and handed
//! to the UI as a request extension by the application's router.

use axum::extract::{Query, State};
use axum::response::Html;
use axum::Extension;
use maud::html;
use serde::Deserialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::OpenApi;

use super::launches::project_param;
use super::layout::{self, Nav, Shell};
use super::session::Viewer;
use super::UiResult;
use crate::db::views;
use crate::AppState;

#[derive(Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    project: Option<String>,
}

/// One row of the page.
struct Entry<'a> {
    method: &'static str,
    path: &'a str,
    summary: &'a str,
    open: bool,
}

/// The operations of `doc` grouped by their first tag, in the order of the
/// document's tag list (tags it does not list come last).
fn grouped(doc: &OpenApi) -> Vec<(String, Option<String>, Vec<Entry<'_>>)> {
    let mut groups: Vec<(String, Option<String>, Vec<Entry<'_>>)> = doc
        .tags
        .iter()
        .flatten()
        .map(|t| (t.name.clone(), t.description.clone(), Vec::new()))
        .collect();
    for (path, item) in doc.paths.paths.iter() {
        let ops: [(&'static str, &Option<Operation>); 5] = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first())
                .map(String::as_str)
                .unwrap_or("other");
            let entry = Entry {
                method,
                path,
                summary: op.summary.as_deref().unwrap_or(""),
                open: op
                    .security
                    .as_ref()
                    .is_some_and(|s| s.contains(&SecurityRequirement::default())),
            };
            match groups.iter_mut().find(|(name, _, _)| name == tag) {
                Some((_, _, entries)) => entries.push(entry),
                None => groups.push((tag.to_string(), None, vec![entry])),
            }
        }
    }
    groups.retain(|(_, _, entries)| !entries.is_empty());
    groups
}

pub(super) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Extension(doc): Extension<&'static OpenApi>,
    Query(q): Query<PageQuery>,
) -> UiResult<Html<String>> {
    let project = viewer
        .scope
        .list_project(&state.db, project_param(&q.project))
        .await?;
    let projects = views::projects(&state.db, viewer.scope.project_id).await?;
    let groups = grouped(doc);
    let count: usize = groups.iter().map(|(_, _, e)| e.len()).sum();
    let version = serde_json::to_value(&doc.openapi)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let body = html! {
        h1 { "API" }
        p class="muted" {
            (count) " operations. Their machine-readable description (OpenAPI " (version) "): "
            a href="/api/openapi.json" { code { "/api/openapi.json" } }
            " — generate a client from it. Every path is relative to " code { "/api" }
            "; the same routes also answer under " code { "/api/rs" } ". "
            "Send a token as " code { "Authorization: Api-Token <token>" } " (or a bearer token from "
            code { "POST /api/uaa/oauth/token" } "). Errors are JSON "
            code { "{message, status, timestamp, code}" } "."
        }
        nav aria-label="API sections" {
            ul class="inline" {
                @for (tag, _, _) in &groups {
                    li { a href={ "#tag-" (slug(tag)) } { (tag) } }
                }
            }
        }
        @for (tag, description, entries) in &groups {
            section id={ "tag-" (slug(tag)) } {
                h2 { (tag) }
                @if let Some(d) = description { p class="muted" { (d) } }
                table class="list api-ops" {
                    thead { tr { th scope="col" { "Method" } th scope="col" { "Path" } th scope="col" { "Summary" } } }
                    tbody {
                        @for e in entries {
                            tr {
                                td { code class={ "method m-" (e.method.to_ascii_lowercase()) } { (e.method) } }
                                td { code { "/api" (e.path) } }
                                td {
                                    (e.summary)
                                    @if e.open { " " span class="muted" { "(no token needed)" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let shell = Shell {
        viewer: &viewer,
        project,
        projects: &projects,
        nav: Nav::Api,
    };
    Ok(layout::page(&shell, "API", body))
}

/// A fragment id for a tag name.
fn slug(tag: &str) -> String {
    tag.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
