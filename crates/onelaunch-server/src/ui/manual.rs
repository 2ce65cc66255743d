//! The manual half of a launch on the launch page: progress per assignee,
//! the manual cases left, recording a manual result (a new attempt when the
//! case already has one; earlier attempts stay listed) and giving cases to
//! people. Both forms post through the CSRF guard like every UI form; the
//! record form is `multipart/form-data` (its files become attachments of the
//! result, streamed to the blob store) with the CSRF token as its first part.

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use onelaunch_api::{self as api, Id};

use super::layout;
use super::plans::form_pairs;
use super::session::Viewer;
use super::{UiError, UiResult};
use crate::server_led::manual::{assign, manual_dto, record_manual, ManualFilter};
use crate::AppState;

/// The manual block of a launch page: progress, what is left, and the forms
/// (only while the launch is open). `manual_results` is how many manual
/// results the launch holds (from its overview): a launch without any, no
/// planned manual case and no assignment has no case to list, and its
/// automated results are not searched for manual ones.
pub(super) async fn section(
    state: &AppState,
    viewer: &Viewer,
    launch_id: Id,
    closed: bool,
    manual_results: i64,
) -> UiResult<Markup> {
    let has_cases = manual_results > 0
        || crate::db::server_runs::get_run(&state.db, launch_id)
            .await?
            .is_some_and(|r| !r.manual_cases.is_empty())
        || !crate::db::manual::assignments(&state.db, launch_id)
            .await?
            .is_empty();
    let (cases, progress) = if has_cases {
        let view = manual_dto(&state.db, launch_id, &ManualFilter::default()).await?;
        (view.cases, view.progress)
    } else {
        (Vec::new(), Vec::new())
    };
    let left: Vec<&api::ManualCaseState> = cases.iter().filter(|c| c.status.is_none()).collect();
    Ok(html! {
        @if !progress.is_empty() {
            h3 { "Progress per assignee" }
            table class="list manual-progress" {
                thead { tr { th scope="col" { "Assignee" } th scope="col" class="num" { "Done" } th scope="col" class="num" { "Total" } } }
                tbody {
                    @for p in &progress {
                        tr data-assignee=(p.assignee.as_deref().unwrap_or("")) data-done=(p.done) data-total=(p.total) {
                            td { @match &p.assignee { Some(a) => (a), None => span class="muted" { "unassigned" } } }
                            td class="num" { (p.done) }
                            td class="num" { (p.total) }
                        }
                    }
                }
            }
        }
        @if !left.is_empty() {
            h3 { "Left to be done by hand" }
            ul class="plain manual-left" {
                @for c in &left {
                    li data-case=(c.test_case_id) {
                        (c.name) span class="id" { " case " (c.test_case_id) }
                        @if let Some(a) = &c.assignee { " · " (a) }
                    }
                }
            }
        }
        @if !closed {
            details open[!cases.is_empty()] {
                summary { "Record a manual result" }
                form method="post" action={ "/launch/" (launch_id) "/manual" } enctype="multipart/form-data" class="card" id="manual-record" {
                    (layout::csrf(viewer))
                    div class="form-grid" {
                        label for="m-case" { "Test case" }
                        select id="m-case" name="case" {
                            @for c in &cases {
                                option value=(c.test_case_id) { (c.name) " (case " (c.test_case_id) ")"
                                    @if let Some(s) = &c.status { " – " (s) } }
                            }
                            option value="" { "Another case (by name or id below)" }
                        }
                        label for="m-other" { "Other case" }
                        input id="m-other" name="other" type="text" placeholder="case id or test name";
                        label for="m-status" { "Status" }
                        select id="m-status" name="status" {
                            @for s in api::STATUSES { option value=(s) { (s) } }
                        }
                        label for="m-by" { "Recorded by" }
                        input id="m-by" name="assignee" type="text" maxlength="255";
                        label for="m-duration" { "Duration (seconds)" }
                        input id="m-duration" name="duration" type="number" min="0" step="1";
                        label for="m-comment" { "Comment" }
                        textarea id="m-comment" name="comment" rows="2" {}
                        label for="m-files" { "Attachments" }
                        input id="m-files" name="file" type="file" multiple;
                    }
                    div class="hint" { "Recording a case again adds a new attempt; the latest counts, earlier ones stay listed." }
                    div class="form-actions" { button type="submit" class="primary" { "Record result" } }
                }
                form method="post" action={ "/launch/" (launch_id) "/manual/assign" } class="card" id="manual-assign" {
                    (layout::csrf(viewer))
                    div class="form-grid" {
                        label for="a-case" { "Test case id" }
                        input id="a-case" name="case" type="number" min="1" required;
                        label for="a-who" { "Assignee" }
                        input id="a-who" name="assignee" type="text" maxlength="255";
                        div class="hint" { "Empty takes the case back." }
                    }
                    div class="form-actions" { button type="submit" { "Assign" } }
                }
            }
        }
    })
}

fn field(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Longest text field of the manual result form, in bytes.
const MAX_FIELD: usize = 64 * 1024;

/// `POST /launch/{id}/manual`: records one manual result, then streams the
/// form's files into the blob store as its attachments. The text fields come
/// first (the browser sends parts in form order).
pub(super) async fn record(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    mut mp: Multipart,
) -> UiResult<Response> {
    let launch = viewer.scope.launch(&state.db, id).await?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        UiError::BadRequest(format!("the form could not be read: {}", e.body_text()))
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut result: Option<crate::db::results::ResultOwner> = None;
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        if name != "file" {
            if result.is_some() {
                return Err(UiError::BadRequest(format!(
                    "field {name:?} came after the files"
                )));
            }
            use crate::ingest::limits::{short_text, TextRefused};
            let text = short_text(field, MAX_FIELD).await.map_err(|e| match e {
                TextRefused::Read(e) => bad(e),
                TextRefused::TooLong => UiError::BadRequest(format!("field {name:?} is too long")),
                TextRefused::NotUtf8 => {
                    UiError::BadRequest(format!("field {name:?} is not UTF-8 text"))
                }
            })?;
            pairs.push((name, text));
            continue;
        }
        let file_name = field.file_name().unwrap_or_default().to_string();
        if result.is_none() {
            let recorded = record_manual(&state.db, &launch, &manual_request(&pairs)?).await?;
            let first = recorded
                .first()
                .ok_or_else(|| UiError::BadRequest("nothing was recorded".into()))?;
            result = Some(viewer.scope.result(&state.db, first.id).await?);
        }
        if file_name.is_empty() {
            // An empty file input still sends a part.
            continue;
        }
        let content_type = field.content_type().map(str::to_string);
        let owner = result.as_ref().expect("recorded above");
        let stored = crate::ingest::receive(
            &state.blobs,
            crate::ingest::Sender::of(viewer.scope.project_id),
            futures::TryStreamExt::map_err(field, |e| {
                crate::error::ServerError::bad(format!(
                    "an attachment could not be read: {}",
                    e.body_text()
                ))
            }),
        )
        .await?;
        crate::ingest::attachment(
            &state.db,
            owner,
            &file_name,
            content_type.as_deref(),
            &stored,
        )
        .await?;
    }
    if result.is_none() {
        record_manual(&state.db, &launch, &manual_request(&pairs)?).await?;
    }
    Ok(Redirect::to(&format!("/launch/{id}#manual")).into_response())
}

/// The manual result the form's text fields describe.
fn manual_request(pairs: &[(String, String)]) -> UiResult<api::ManualResults> {
    let (test_case_id, name) = match field(pairs, "other").or_else(|| field(pairs, "case")) {
        None => {
            return Err(UiError::BadRequest(
                "test case: choose one or name one".into(),
            ))
        }
        Some(v) => match v.parse::<Id>() {
            Ok(id) => (Some(id), None),
            Err(_) => (None, Some(v)),
        },
    };
    let duration_ms = match field(pairs, "duration") {
        None => None,
        Some(d) => Some(
            d.parse::<i64>()
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .ok_or_else(|| {
                    UiError::BadRequest(format!("duration: expected whole seconds, got {d:?}"))
                })?,
        ),
    };
    Ok(api::ManualResults {
        results: vec![api::ManualResult {
            test_case_id,
            name,
            status: field(pairs, "status").unwrap_or_default(),
            message: field(pairs, "comment"),
            assignee: field(pairs, "assignee"),
            duration_ms,
        }],
    })
}

/// `POST /launch/{id}/manual/assign`: gives a case to someone.
pub(super) async fn assign_case(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<Id>,
    body: Bytes,
) -> UiResult<Response> {
    let launch = viewer.scope.launch(&state.db, id).await?;
    let pairs = form_pairs(&body);
    let case = field(&pairs, "case").unwrap_or_default();
    let test_case_id = case.parse::<Id>().map_err(|_| {
        UiError::BadRequest(format!("test case id: expected a number, got {case:?}"))
    })?;
    let req = api::ManualAssignments {
        assignments: vec![api::ManualAssignment {
            test_case_id,
            assignee: field(&pairs, "assignee").unwrap_or_default(),
        }],
    };
    let by = format!("web UI (token {})", viewer.scope.token_id);
    assign(&state.db, &launch, &req, &by).await?;
    Ok(Redirect::to(&format!("/launch/{id}#manual")).into_response())
}
