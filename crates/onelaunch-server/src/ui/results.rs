//! One test result (status, message and trace, steps with timings,
//! parameters, labels, links, attachments, fixtures, other attempts) and its
//! attachments' bytes.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use onelaunch_api::{self as api, Id};
use serde::Deserialize;

use super::layout::{self, Nav, Shell};
use super::session::Viewer;
use super::{fmt, UiError, UiResult};
use crate::db::now_ms;
use crate::db::results::AttachmentRow;
use crate::db::views;
use crate::AppState;

/// Text attachments up to this size are shown in the page.
pub(super) const INLINE_TEXT_BYTES: i64 = 64 * 1024;

fn is_image(ct: &str) -> bool {
    matches!(
        ct,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/bmp"
    )
}

/// The content type of an attachment: as declared, else by file extension.
pub(super) fn content_type(declared: Option<&str>, file_name: &str) -> String {
    if let Some(ct) = declared.map(str::trim).filter(|c| !c.is_empty()) {
        return ct
            .split(';')
            .next()
            .unwrap_or(ct)
            .trim()
            .to_ascii_lowercase();
    }
    let ext = file_name
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" | "log" => "text/plain",
        "json" => "application/json",
        "xml" => "application/xml",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "yaml" | "yml" => "text/yaml",
        _ => "application/octet-stream",
    }
    .to_string()
}

pub(super) fn is_text(ct: &str) -> bool {
    ct.starts_with("text/")
        || matches!(
            ct,
            "application/json" | "application/xml" | "application/x-yaml" | "application/yaml"
        )
}

fn step_duration(start: Option<i64>, stop: Option<i64>, duration: Option<i64>) -> Option<i64> {
    duration.or(match (start, stop) {
        (Some(a), Some(b)) if b >= a => Some(b - a),
        _ => None,
    })
}

/// One attachment as a link (and image or text when it can be shown).
struct Shown<'a> {
    row: &'a AttachmentRow,
    ct: String,
    text: Option<String>,
}

fn attachment_markup(a: &Shown<'_>) -> Markup {
    let (id, file, name, _, size, sha) = a.row;
    let label = if name.is_empty() { file } else { name };
    html! {
        div class="attachment" {
            div class="att-head" {
                strong { (label) }
                span class="muted" {
                    " " (a.ct)
                    @if let Some(s) = size { " · " (s) " bytes" }
                }
                @if sha.is_some() {
                    " " a href={ "/attachment/" (id) "?download=1" } download=(file) { "Download" span class="visually-hidden" { " " (label) } }
                } @else {
                    " " span class="badge missing" { "not uploaded" }
                }
            }
            @if sha.is_some() {
                @if is_image(&a.ct) {
                    a href={ "/attachment/" (id) } {
                        img src={ "/attachment/" (id) } alt=(label) loading="lazy";
                    }
                } @else if let Some(t) = &a.text {
                    pre class="att-text" { (t) }
                }
            }
        }
    }
}

fn find_attachment<'a>(shown: &'a [Shown<'a>], file_name: &str) -> Option<&'a Shown<'a>> {
    shown.iter().find(|s| s.row.1 == file_name)
}

fn parameters_markup(params: &[api::UploadParameter]) -> Markup {
    html! {
        @if params.iter().any(|p| !p.hidden) {
            table class="kv" {
                @for p in params.iter().filter(|p| !p.hidden) {
                    tr {
                        th scope="row" { (p.name) }
                        td { @if p.masked { span class="muted" { "••••••" } } @else { (p.value) } }
                    }
                }
            }
        }
    }
}

fn steps_markup(steps: &[api::UploadStep], shown: &[Shown<'_>]) -> Markup {
    html! {
        ol class="steps" {
            @for s in steps {
                li {
                    @if s.kind == "attachment" {
                        @if let Some(a) = &s.attachment {
                            @if let Some(sh) = find_attachment(shown, &a.original_file_name) {
                                (attachment_markup(sh))
                            } @else {
                                span class="muted" { "attachment " (a.name) " (not uploaded)" }
                            }
                        }
                    } @else {
                        @let status = s.status.as_deref().unwrap_or("unknown");
                        div class="step-head" {
                            (layout::status(status))
                            " " span class="step-name" { (s.body.as_deref().unwrap_or("(unnamed step)")) }
                            @if let Some(d) = step_duration(s.start, s.stop, s.duration) {
                                span class="dur" { (fmt::duration(d)) }
                            }
                        }
                        @if let Some(m) = &s.message { pre class="msg" { (m) } }
                        (parameters_markup(&s.parameters))
                        @if !s.steps.is_empty() { (steps_markup(&s.steps, shown)) }
                    }
                }
            }
        }
    }
}

fn fixtures_markup(fixtures: &[api::UploadFixture], shown: &[Shown<'_>]) -> Markup {
    html! {
        ul class="fixtures" {
            @for f in fixtures {
                li {
                    div class="step-head" {
                        span class="badge" { (if f.kind.eq_ignore_ascii_case("after") { "after" } else { "before" }) }
                        " " (layout::status(f.status.as_deref().unwrap_or("unknown")))
                        " " span class="step-name" { (f.name) }
                        @if let Some(d) = step_duration(f.start, f.stop, f.duration) {
                            span class="dur" { (fmt::duration(d)) }
                        }
                    }
                    @if let Some(m) = &f.message { pre class="msg" { (m) } }
                    @if !f.steps.is_empty() { (steps_markup(&f.steps, shown)) }
                    @for a in &f.attachments {
                        @if let Some(sh) = find_attachment(shown, &a.original_file_name) { (attachment_markup(sh)) }
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
) -> UiResult<Html<String>> {
    viewer.scope.result(&state.db, id).await?;
    let head = views::result_head(&state.db, id)
        .await?
        .ok_or_else(|| UiError::not_found("test result", id))?;
    let body: api::UploadTestResult = crate::db::results::result_body(&state.db, id)
        .await?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let fixtures: Vec<api::UploadFixture> = crate::db::results::result_fixtures(&state.db, id)
        .await?
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let rows = crate::db::results::result_attachments(&state.db, id).await?;
    let mut shown = Vec::with_capacity(rows.len());
    for row in &rows {
        let ct = content_type(row.3.as_deref(), &row.1);
        let mut text = None;
        if is_text(&ct) && row.4.unwrap_or(i64::MAX) <= INLINE_TEXT_BYTES {
            if let Some(sha) = &row.5 {
                // A damaged copy is not shown (its own link says why).
                if let Ok(Some(bytes)) = crate::content::get(&state.db, &state.blobs, sha).await {
                    text = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
        }
        shown.push(Shown { row, ct, text });
    }
    let attempts = views::attempts(&state.db, head.launch_id, &head.test_key).await?;
    let run = match head.job_run_id {
        Some(j) => crate::db::job_runs::get_job_run(&state.db, j).await?,
        None => None,
    };
    let now = now_ms();
    // Attachments of the result itself (not those shown inside steps/fixtures).
    let mut nested = Vec::new();
    fn collect(steps: &[api::UploadStep], out: &mut Vec<String>) {
        for s in steps {
            if let Some(a) = &s.attachment {
                out.push(a.original_file_name.clone());
            }
            collect(&s.steps, out);
        }
    }
    collect(&body.steps, &mut nested);
    for f in &fixtures {
        collect(&f.steps, &mut nested);
        nested.extend(f.attachments.iter().map(|a| a.original_file_name.clone()));
    }
    let top: Vec<&Shown> = shown
        .iter()
        .filter(|s| !nested.contains(&s.row.1))
        .collect();
    let duration = step_duration(head.start_ms, head.stop_ms, head.duration_ms);
    let before: Vec<_> = fixtures
        .iter()
        .filter(|f| !f.kind.eq_ignore_ascii_case("after"))
        .cloned()
        .collect();
    let after: Vec<_> = fixtures
        .iter()
        .filter(|f| f.kind.eq_ignore_ascii_case("after"))
        .cloned()
        .collect();
    let page_body = html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href={ "/launches?project=" (head.project_id) } { "Launches" } " › "
            a href={ "/launch/" (head.launch_id) } { (head.launch_name) } " › "
            @if let Some(r) = &run { a href={ "/jobrun/" (r.id) } { (r.job_name) " · " (r.name) } " › " }
            span aria-current="page" { "Result #" (head.id) }
        }
        div class="title-row" {
            h1 { (head.name) }
            div class="state" { (layout::status(&head.status)) @if head.manual { " " span class="badge" { "manual" } } }
        }
        @if let Some(f) = &head.full_name { p class="muted fullname" { (f) } }
        section class="card" aria-label="Outcome" {
            dl class="facts" {
                div { dt { "Status" } dd { (layout::status(&head.status)) } }
                div { dt { "Duration" } dd { @if let Some(d) = duration { (fmt::duration(d)) } @else { "—" } } }
                @if let Some(s) = head.start_ms { div { dt { "Started" } dd { (layout::when(s)) } } }
                div { dt { "Reported" } dd { (layout::ago(head.created_ms, now)) } }
                @if attempts.len() > 1 { div { dt { "Attempts" } dd { (attempts.len()) } } }
            }
            @if let Some(m) = &head.message {
                h2 { "Message" }
                pre class="msg" { (m) }
            }
            @if let Some(t) = &head.trace {
                details class="trace" open[head.status == "failed" || head.status == "broken"] {
                    summary { "Trace" }
                    pre { (t) }
                }
            }
        }
        @if attempts.len() > 1 {
            section aria-labelledby="att-h" {
                h2 id="att-h" { "Retries" }
                table class="list" {
                    thead { tr {
                        th scope="col" { "Attempt" } th scope="col" { "Status" } th scope="col" { "Job run" }
                        th scope="col" { "Started" } th scope="col" class="num" { "Duration" }
                    } }
                    tbody {
                        @for (i, a) in attempts.iter().enumerate() {
                            tr class=[(a.id == head.id).then_some("current")] {
                                th scope="row" {
                                    @if a.id == head.id { "#" (i + 1) " (this one)" }
                                    @else { a href={ "/result/" (a.id) } { "#" (i + 1) } }
                                    @if i + 1 == attempts.len() { " " span class="badge" { "latest" } }
                                }
                                td { (layout::status(&a.status)) }
                                td { @if let Some(j) = a.job_run_id { a href={ "/jobrun/" (j) } { "#" (j) } } @else { span class="muted" { "—" } } }
                                td { @if let Some(s) = a.start_ms { (layout::when(s)) } @else { (layout::ago(a.created_ms, now)) } }
                                td class="num" { @if let Some(d) = a.duration_ms { (fmt::duration(d)) } }
                            }
                        }
                    }
                }
            }
        }
        @if !before.is_empty() {
            section aria-labelledby="setup-h" {
                h2 id="setup-h" { "Set up" }
                (fixtures_markup(&before, &shown))
            }
        }
        section aria-labelledby="steps-h" {
            h2 id="steps-h" { "Steps" }
            @if body.steps.is_empty() { p class="muted" { "No steps recorded." } }
            @else { (steps_markup(&body.steps, &shown)) }
        }
        @if !after.is_empty() {
            section aria-labelledby="teardown-h" {
                h2 id="teardown-h" { "Tear down" }
                (fixtures_markup(&after, &shown))
            }
        }
        @if !top.is_empty() {
            section aria-labelledby="atts-h" {
                h2 id="atts-h" { "Attachments" }
                @for a in &top { (attachment_markup(a)) }
            }
        }
        div class="columns" {
            @if body.parameters.iter().any(|p| !p.hidden) {
                section aria-labelledby="par-h" {
                    h2 id="par-h" { "Parameters" }
                    (parameters_markup(&body.parameters))
                }
            }
            @if !body.labels.is_empty() {
                section aria-labelledby="lab-h" {
                    h2 id="lab-h" { "Labels" }
                    table class="kv" {
                        @for l in &body.labels { tr { th scope="row" { (l.name) } td { (l.value) } } }
                    }
                }
            }
            @if !body.links.is_empty() {
                section aria-labelledby="lnk-h" {
                    h2 id="lnk-h" { "Links" }
                    ul class="plain" {
                        @for k in &body.links {
                            li {
                                @if let Some(t) = &k.kind { span class="badge" { (t) } " " }
                                @if k.url.starts_with("http://") || k.url.starts_with("https://") {
                                    a href=(k.url) rel="noopener noreferrer" { (if k.name.is_empty() { &k.url } else { &k.name }) }
                                } @else { (k.name) " " (k.url) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(d) = body.description.as_deref().filter(|d| !d.trim().is_empty()) {
            section aria-labelledby="desc-h" {
                h2 id="desc-h" { "Description" }
                pre class="desc" { (d) }
            }
        }
    };
    let shell = Shell {
        viewer: &viewer,
        project: head.project_id,
        projects: &[],
        nav: Nav::Launches,
    };
    Ok(layout::page(&shell, &head.name, page_body))
}

#[derive(Deserialize)]
pub(super) struct AttachmentQuery {
    #[serde(default)]
    pub(super) download: Option<String>,
}

/// An attachment's bytes. Images are shown inline, text inline as plain text,
/// anything else is a download; nothing can run as a page of this site
/// (`sandbox` policy, no sniffing).
pub(super) async fn attachment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    Query(q): Query<AttachmentQuery>,
) -> UiResult<Response> {
    let a = viewer.scope.attachment(&state.db, id).await?;
    serve(&state, id, &a, q.download.is_some()).await
}

/// The bytes of a stored attachment (verified before anything is sent):
/// images and text inline unless `download`, anything else as a download.
pub(super) async fn serve(
    state: &AppState,
    id: Id,
    a: &crate::db::results::AttachmentMeta,
    download: bool,
) -> UiResult<Response> {
    let sha = a
        .sha256
        .as_deref()
        .ok_or_else(|| UiError::NotFound(format!("attachment {id} has no content yet")))?;
    // Verified before anything is sent; a damaged copy is a 409 page.
    let blob = crate::content::open(&state.db, &state.blobs, sha)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("attachment {id} content is missing")))?;
    let ct = content_type(a.content_type.as_deref(), &a.file_name);
    let download = download || !(is_image(&ct) || is_text(&ct));
    let served_ct = if is_image(&ct) {
        ct.clone()
    } else if is_text(&ct) && !download {
        "text/plain; charset=utf-8".to_string()
    } else {
        ct.clone()
    };
    let mut res = axum::body::Body::from_stream(blob.body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&served_ct)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if let Ok(v) = HeaderValue::from_str(&a.disposition(!download)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_types() {
        assert_eq!(content_type(Some("image/PNG"), "x"), "image/png");
        assert_eq!(content_type(None, "shot.png"), "image/png");
        assert_eq!(
            content_type(Some("text/plain; charset=utf-8"), "x"),
            "text/plain"
        );
        assert_eq!(content_type(None, "a.bin"), "application/octet-stream");
        assert!(is_text("application/json") && !is_text("image/svg+xml"));
        assert!(
            !is_image("image/svg+xml"),
            "SVG can carry script: download only"
        );
    }
}
