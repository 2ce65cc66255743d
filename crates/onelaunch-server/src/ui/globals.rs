//! "Problems outside tests" on the launch and job-run pages: errors and
//! attachments that belong to no test (Allure 3 `*-globals.json`, e.g. a
//! failing `beforeEach` hook), and `/globals/attachment/{id}` for their bytes.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{html, Markup};
use onelaunch_api::Id;

use super::results::{content_type, is_text, serve, AttachmentQuery, INLINE_TEXT_BYTES};
use super::session::Viewer;
use super::UiResult;
use crate::db::globals;
use crate::AppState;

/// Text attachments shown in the page (the others are links).
const INLINE_ATTACHMENTS: usize = 20;

/// The section, for a launch (`job_run_id` `None`) or one of its job runs;
/// nothing when there is nothing outside the tests.
pub(super) async fn section(
    state: &AppState,
    launch_id: Id,
    job_run_id: Option<Id>,
) -> UiResult<Markup> {
    let g = globals::list(&state.db, launch_id, job_run_id).await?;
    if g.error_count == 0 && g.attachment_count == 0 {
        return Ok(html! {});
    }
    let mut texts = Vec::with_capacity(g.attachments.len());
    for (i, a) in g.attachments.iter().enumerate() {
        let ct = content_type(a.content_type.as_deref(), &a.source);
        let mut text = None;
        if i < INLINE_ATTACHMENTS
            && is_text(&ct)
            && a.content_length.unwrap_or(i64::MAX) <= INLINE_TEXT_BYTES
        {
            if let Some(row) = globals::attachment(&state.db, a.id).await? {
                if let Some(sha) = &row.meta.sha256 {
                    if let Ok(Some(bytes)) = crate::content::get(&state.db, &state.blobs, sha).await
                    {
                        text = Some(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
        }
        texts.push(text);
    }
    let errors = g.error_count;
    Ok(html! {
        section id="globals" class="card" aria-labelledby="globals-h" data-global-errors=(errors) {
            h2 id="globals-h" {
                "Problems outside tests "
                @if errors > 0 { span class="badge missing" { (errors) " error" @if errors != 1 { "s" } } }
            }
            p class="muted" { "Reported by the test framework outside any test (for example a failing hook); they count as problems of the launch." }
            @if !g.errors.is_empty() {
                ul class="plain globals-errors" {
                    @for e in &g.errors {
                        li {
                            pre class="msg" { (e.message.as_deref().unwrap_or("(no message)")) }
                            @if let Some(t) = &e.trace {
                                details class="trace" { summary { "Trace" } pre { (t) } }
                            }
                            span class="muted" { (e.file_name) }
                        }
                    }
                }
                @if (g.errors.len() as i64) < errors { p class="muted" { "… and " (errors - g.errors.len() as i64) " more" } }
            }
            @if !g.attachments.is_empty() {
                h3 { "Attachments" }
                ul class="plain globals-attachments" {
                    @for (a, text) in g.attachments.iter().zip(&texts) {
                        li {
                            @if a.content_url.is_some() {
                                a href={ "/globals/attachment/" (a.id) } { (a.name) }
                                " " a href={ "/globals/attachment/" (a.id) "?download=1" } download=(a.source) { "Download" }
                            } @else {
                                (a.name) " " span class="badge missing" { "not uploaded" }
                            }
                            @if let Some(t) = text { pre class="att-text" { (t) } }
                        }
                    }
                }
            }
        }
    })
}

/// `GET /globals/attachment/{id}`: the bytes of an attachment outside tests.
pub(super) async fn attachment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    Query(q): Query<AttachmentQuery>,
) -> UiResult<Response> {
    let a = viewer.scope.global_attachment(&state.db, id).await?;
    serve(&state, id, &a.meta, q.download.is_some()).await
}
