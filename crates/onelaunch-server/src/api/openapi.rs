//! The OpenAPI 3 description of the API, served at `GET /api/openapi.json`.
//! It is generated, never written by hand: each handler carries a
//! `#[utoipa::path]` annotation next to its code, the wire types of
//! `onelaunch-api` derive their schemas (feature `openapi`), and [`ApiDoc`]
//! lists the handlers. A test checks that every route of the route table
//! (`routes()` in this module's parent) is described and nothing else is.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use onelaunch_api as api;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, PathItem, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// Routes served by the handler documented under another path:
/// `(alias, documented path)`; the alias gets a copy of the description.
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("/upload/run", "/upload/start"),
    ("/upload", "/upload/file"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "onelaunch API",
        description = "The Allure TestOps API subset onelaunch serves, with its own extensions. \
            Every path is relative to `/api`; the same routes also answer under `/api/rs`. \
            Errors are JSON `{message, status, timestamp, code}` (`ErrorBody`)."
    ),
    servers((url = "/api", description = "every route; the same routes also answer under /api/rs")),
    paths(
        openapi_json,
        super::auth::oauth_token,
        super::projects::create_project,
        super::projects::list_projects,
        super::projects::create_project_token,
        super::projects::get_retention,
        super::projects::put_retention,
        super::tokens::list_tokens,
        super::tokens::create_token,
        super::tokens::revoke_token,
        super::jobs::list_jobs_h,
        super::gate::project_gate,
        super::gate::set_project_gate,
        super::launches::create_launch,
        super::launches::list_launches,
        super::compare::compare_h,
        super::compare::combine_h,
        super::launches::get_launch,
        super::launches::delete_launch,
        super::launches::close_launch,
        super::launches::reopen_launch,
        super::launches::launch_progress,
        super::launches::launch_statistic,
        super::manual::statistic_kind_h,
        super::launches::launch_jobs,
        super::gate::launch_gate,
        super::gate::judge_launch,
        super::launches::set_expected,
        super::manual::manual_h,
        super::manual::record_manual_h,
        super::manual::assign_h,
        super::manual::plan_assignees_h,
        super::manual::set_plan_assignees_h,
        super::launches::named_env_bulk,
        super::launches::category_bulk,
        super::launches::launch_errors,
        super::gate::allure_quality_gate,
        super::launches::launch_attachment,
        super::job_runs::upload_start,
        super::job_runs::upload_stop,
        super::job_runs::find_job_run,
        super::job_runs::find_job,
        super::jobs::get_job_h,
        super::jobs::patch_job_h,
        super::jobs::put_job_h,
        super::job_runs::get_job_run,
        super::job_runs::job_run_plan,
        super::globals::launch_globals,
        super::globals::job_run_globals,
        super::globals::attachment_content,
        super::uploads::create_session,
        super::uploads::close_session,
        super::uploads::upload_results,
        super::uploads::upload_attachment,
        super::uploads::upload_attachments_bulk,
        super::uploads::upload_fixtures,
        super::uploads::upload_fixture_attachment,
        super::uploads::upload_files,
        super::uploads::upload_archive,
        super::results::list_results,
        super::results::get_result,
        super::results::attachment_content,
        super::test_cases::list_test_cases_h,
        super::test_cases::run_test_cases_h,
        super::test_cases::get_test_case_h,
        super::plans::create_plan_h,
        super::plans::list_plans_h,
        super::plans::get_plan_h,
        super::plans::executors_h,
        super::plans::override_h,
        super::plans::run_plan_h,
        super::gate::plan_gate,
        super::gate::set_plan_gate,
        super::reruns::launch_rerun_h,
        super::reruns::job_run_rerun_h,
        super::reruns::bulk_rerun_h,
    ),
    components(schemas(api::ErrorBody, api::ErrorCode)),
    modifiers(&Conventions),
    tags(
        (name = "auth", description = "Bearer tokens from API tokens"),
        (name = "projects", description = "Projects"),
        (name = "tokens", description = "API tokens: create, list, revoke"),
        (name = "launches", description = "Launches: create, read, close, reopen, compare, combine, delete"),
        (name = "job runs", description = "CI job runs reporting into launches"),
        (name = "jobs", description = "CI jobs and their configuration for server-led runs"),
        (name = "uploads", description = "Upload sessions, results, fixtures and attachments"),
        (name = "results", description = "Test results and their attachments"),
        (name = "globals", description = "Errors and attachments outside any test (Allure 3)"),
        (name = "gate", description = "Quality gate rules and verdicts"),
        (name = "manual", description = "Manual tests of a launch"),
        (name = "test cases", description = "Test cases and running them"),
        (name = "test plans", description = "Test plans and running them"),
        (name = "reruns", description = "Running tests again into the same launch"),
        (name = "meta", description = "This description"),
    )
)]
struct ApiDoc;

/// A multipart upload of files (attachments, raw result files).
#[derive(ToSchema)]
#[allow(dead_code)] // describes a request body; never built
pub(crate) struct FileParts {
    /// One part per file; the part's file name names the file.
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// A bulk attachment upload: a `result` part, then that result's `file`
/// parts, repeated.
#[derive(ToSchema)]
#[allow(dead_code)] // describes a request body; never built
pub(crate) struct BulkFileParts {
    /// A test result id; the `file` parts after it are its attachments.
    result: Vec<i64>,
    /// One part per file; the part's file name names the file.
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// `POST /uaa/oauth/token` form fields.
#[derive(ToSchema)]
#[allow(dead_code)] // describes a request body; never built
pub(crate) struct OAuthTokenForm {
    /// Always `apitoken`.
    grant_type: String,
    /// The API token to exchange.
    token: String,
    /// Echoed back (default `openid`).
    scope: Option<String>,
}

/// What every operation shares: the security schemes (an operation that
/// needs no token says `security(())`) and the error answers.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api-token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Authorization: Api-Token <token>` with an admin or project API token",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <access token>` from POST /uaa/oauth/token",
                    ))
                    .build(),
            ),
        );
        components.responses.insert(
            "Error".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "An error: the message names what was wrong; `code` tells programs what happened",
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            ),
        );
        doc.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("api-token", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                for range in ["4XX", "5XX"] {
                    op.responses
                        .responses
                        .entry(range.into())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Error")));
                }
            }
        }
        for (alias, documented) in ALIASES {
            let mut item = doc.paths.paths[*documented].clone();
            for op in operations(&mut item) {
                op.operation_id = op.operation_id.take().map(|id| {
                    format!(
                        "{id}_at_{}",
                        alias.trim_start_matches('/').replace('/', "_")
                    )
                });
                op.description = Some(format!("The same as `{documented}`."));
            }
            doc.paths.paths.insert((*alias).into(), item);
        }
    }
}

/// The operations of a path item, by method.
pub(crate) fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The description, built once.
pub(crate) fn description() -> &'static utoipa::openapi::OpenApi {
    static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);
    &DOC
}

/// The OpenAPI 3 description of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    summary = "This API's OpenAPI 3 description",
    responses((status = 200, description = "the description (OpenAPI 3.1)", content_type = "application/json", body = Object)),
    security(()),
)]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        description()
            .to_pretty_json()
            .expect("the API description serializes")
    });
    ([(header::CONTENT_TYPE, "application/json")], JSON.as_str())
}
