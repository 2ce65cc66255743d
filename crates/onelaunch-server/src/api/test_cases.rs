//! `/testcase`, `/testcase/{id}`, `/testcase/run`.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use onelaunch_api::{self as api, Id};

use super::extract::*;
use crate::access::Scope;
use crate::db::test_cases::*;
use crate::error::{ServerError, ServerResult};
use crate::server_led::{self, cases::*};
use crate::AppState;

/// `GET /testcase?projectId=&label=NAME=VALUE&name=PATTERN&status=S&page=&size=`
/// (`label` and `status` repeatable; `status` also comma-separated).
#[utoipa::path(
    get,
    path = "/testcase",
    tag = "test cases",
    summary = "Test cases of a project",
    params(("projectId" = Option<i64>, Query), ("label" = Option<Vec<String>>, Query, description = "NAME=VALUE, repeatable"), ("name" = Option<String>, Query, description = "name pattern"), ("status" = Option<Vec<String>>, Query, description = "last status, repeatable or comma-separated"), ("page" = Option<i64>, Query), ("size" = Option<i64>, Query)),
    responses((status = 200, description = "OK", body = api::Page<api::TestCaseDto>)),
)]
pub(crate) async fn list_test_cases_h(
    State(state): State<AppState>,
    scope: Scope,
    RawQuery(query): RawQuery,
) -> ServerResult<Json<api::Page<api::TestCaseDto>>> {
    let mut project = None;
    let mut filter = api::TestCaseFilter::default();
    let (mut page, mut size) = (0i64, 100i64);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "projectId" => project = Some(parse_int("projectId", &v)?),
            "label" => {
                let (name, value) =
                    v.split_once('=')
                        .or_else(|| v.split_once(':'))
                        .ok_or_else(|| {
                            ServerError::bad(format!(
                                "query `label`: expected NAME=VALUE, got {v:?}"
                            ))
                        })?;
                filter.labels.push(api::LabelDto {
                    name: name.into(),
                    value: value.into(),
                });
            }
            "name" | "namePattern" => filter.name_pattern = Some(v.into_owned()),
            "status" => filter.status.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "page" => page = parse_int("page", &v)?.max(0),
            "size" => size = parse_int("size", &v)?.clamp(1, 1000),
            _ => {}
        }
    }
    let project = project.or(scope.project_id).unwrap_or(1);
    scope.project(&state.db, project).await?;
    validate_filter(&filter, "query")?;
    let (rows, total) = list_cases(&state.db, project, &filter, Some((page, size))).await?;
    let content = rows.iter().map(CaseRow::to_dto).collect();
    Ok(Json(api::Page::new(content, total, page, size)))
}

#[utoipa::path(
    get,
    path = "/testcase/{id}",
    tag = "test cases",
    summary = "A test case",
    params(("id" = i64, Path, description = "test case id")),
    responses((status = 200, description = "OK", body = api::TestCaseDto)),
)]
pub(crate) async fn get_test_case_h(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<Id>,
) -> ServerResult<Json<api::TestCaseDto>> {
    let c = scope.test_case(&state.db, id).await?;
    Ok(Json(c.to_dto()))
}

#[utoipa::path(
    post,
    path = "/testcase/run",
    tag = "test cases",
    summary = "Run test cases on their jobs",
    request_body = api::TestCaseRun,
    responses((status = 200, description = "OK", body = api::ServerRunDto)),
)]
pub(crate) async fn run_test_cases_h(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<api::TestCaseRun>,
) -> ServerResult<Json<api::ServerRunDto>> {
    scope.project(&state.db, req.project_id).await?;
    if req.test_case_ids.is_empty() {
        return Err(ServerError::bad("field `testCaseIds` must not be empty"));
    }
    let cases = cases_by_ids(&state.db, req.project_id, &req.test_case_ids, "testCaseIds").await?;
    let run =
        server_led::run_cases(&state, &scope, req.project_id, None, cases, &req.launch).await?;
    Ok(Json(run))
}
