//! API tokens (admins only; a project token gets 403): the list with each
//! token's project, expiry, last use and state, a form to create one (its
//! secret is shown on the answer page, once) and a revoke button per token.
//! The rules are `access::Scope::{list_tokens, create_token, revoke_token}`.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup};
use onelaunch_api::{self as api, Id};
use serde::Deserialize;

use super::layout::{self, Nav, Shell};
use super::session::Viewer;
use super::{UiError, UiResult};
use crate::db::{now_ms, views};
use crate::AppState;

fn state_badge(t: &api::TokenDto) -> Markup {
    let class = match t.status.as_str() {
        "active" => "status s-passed",
        "expired" => "status s-skipped",
        _ => "status s-failed",
    };
    html! { span class=(class) { (t.status) } }
}

fn project_name(projects: &[(Id, String)], id: Option<Id>) -> Markup {
    match id {
        None => html! { strong { "admin" } },
        Some(p) => {
            let name = projects
                .iter()
                .find(|(i, _)| *i == p)
                .map(|(_, n)| n.as_str())
                .unwrap_or("");
            html! { (name) " " span class="id" { "#" (p) } }
        }
    }
}

/// The page; `created` is a token just made (its secret shown this once).
async fn render(
    state: &AppState,
    viewer: &Viewer,
    created: Option<&api::TokenIssued>,
    error: Option<&str>,
) -> UiResult<Html<String>> {
    let tokens = viewer.scope.list_tokens(&state.db).await?;
    let projects = views::projects(&state.db, None).await?;
    let now = now_ms();
    let body = html! {
        h1 { "API tokens" }
        p class="muted" {
            "Admin tokens manage the server; a project token reaches only its project. "
            "A revoked or expired token is refused at once by every replica, with its UI sessions."
        }
        @if let Some(e) = error { p class="alert" role="alert" { (e) } }
        @if let Some(c) = created {
            div class="card" role="status" id="new-token" {
                h2 { "Token “" (c.info.name) "” created" }
                p { "Copy it now: it is shown only this once and cannot be read again." }
                p { code id="new-token-secret" { (c.token) } }
            }
        }
        @if tokens.is_empty() {
            p class="empty" { "No token." }
        } @else {
            table class="list" id="tokens" {
                thead {
                    tr {
                        th scope="col" { "Token" }
                        th scope="col" { "Project" }
                        th scope="col" { "Created" }
                        th scope="col" { "Expires" }
                        th scope="col" { "Last used" }
                        th scope="col" { "State" }
                        th scope="col" { span class="visually-hidden" { "Actions" } }
                    }
                }
                tbody {
                    @for t in &tokens {
                        tr data-token-id=(t.id) {
                            td { (t.name) " " span class="id" { "#" (t.id) } }
                            td { (project_name(&projects, t.project_id)) }
                            td { (layout::when(t.created_date)) }
                            td { @if let Some(e) = t.expires_date { (layout::when(e)) } @else { span class="muted" { "never" } } }
                            td class="last-used" { @if let Some(u) = t.last_used_date { (layout::ago(u, now)) } @else { span class="muted" { "never" } } }
                            td { (state_badge(t)) @if let Some(r) = t.revoked_date { " " span class="sub" { (layout::when(r)) } } }
                            td {
                                @if t.revoked_date.is_none() {
                                    form method="post" action={ "/tokens/" (t.id) "/revoke" } {
                                        (layout::csrf(viewer))
                                        button type="submit" aria-label={ "Revoke token " (t.name) } { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action="/tokens" {
            (layout::csrf(viewer))
            fieldset class="card" {
                legend { "Create a token" }
                div class="form-grid" {
                    label for="t-name" { "Name" }
                    input id="t-name" name="name" type="text" required maxlength="200";
                    label for="t-project" { "Scope" }
                    select id="t-project" name="project" {
                        option value="" { "Admin (every project, manages the server)" }
                        @for (id, name) in &projects {
                            option value=(id) { "Project: " (name) " #" (id) }
                        }
                    }
                    label for="t-days" { "Expires in (days)" }
                    input id="t-days" name="expires_days" type="number" min="1" max=(crate::access::MAX_TOKEN_DAYS) placeholder="never";
                }
                div class="form-actions" { button type="submit" class="primary" { "Create token" } }
            }
        }
    };
    let shell = Shell {
        viewer,
        project: 1,
        projects: &[],
        nav: Nav::Tokens,
    };
    Ok(layout::page(&shell, "API tokens", body))
}

pub(super) async fn list(State(state): State<AppState>, viewer: Viewer) -> UiResult<Html<String>> {
    render(&state, &viewer, None, None).await
}

#[derive(Deserialize)]
pub(super) struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    expires_days: String,
}

fn parse_opt(field: &str, v: &str) -> UiResult<Option<i64>> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| UiError::BadRequest(format!("{field}: expected a whole number, got {v:?}")))
}

pub(super) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    axum::Form(form): axum::Form<CreateForm>,
) -> UiResult<Response> {
    viewer.scope.require_admin()?;
    let req = api::TokenCreate {
        name: Some(form.name),
        project_id: parse_opt("Scope", &form.project)?,
        expires_in_days: parse_opt("Expires in (days)", &form.expires_days)?,
        expires_at: None,
    };
    match viewer.scope.create_token(&state.db, &req).await {
        Ok(issued) => {
            tracing::info!(
                api_token = issued.info.id,
                by = viewer.scope.token_id,
                "API token created in the UI"
            );
            Ok(render(&state, &viewer, Some(&issued), None)
                .await?
                .into_response())
        }
        Err(crate::error::ServerError::BadRequest(m)) => {
            let mut res = render(&state, &viewer, None, Some(&m))
                .await?
                .into_response();
            *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
) -> UiResult<Response> {
    viewer.scope.revoke_token(&state.db, id).await?;
    Ok(Redirect::to("/tokens").into_response())
}
