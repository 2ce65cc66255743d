//! The JSON API: the one route table, served under both `/api` and `/api/rs`.
//! Handlers live per resource in this module's children; each loads what it
//! touches through `access` (another project's id answers 404) and writes
//! through `ingest` or `server_led`.

use axum::routing::{delete, get, post};
use axum::Router;

use crate::ingest::limits;
use crate::AppState;

pub(crate) mod auth;
mod compare;
pub(crate) mod extract;
mod gate;
mod globals;
mod job_runs;
mod jobs;
mod launches;
mod manual;
mod observe;
pub(crate) mod openapi;
mod plans;
mod projects;
mod reruns;
mod results;
mod test_cases;
mod tokens;
mod uploads;

/// Everything outside the web UI: `/healthz`, `/readyz`, `/metrics`, and every API route under both
/// `/api` and `/api/rs`.
pub(crate) fn router() -> Router<AppState> {
    let api = routes()
        .layer(axum::middleware::from_fn(
            crate::ingest::held::hold_body_shares,
        ))
        .layer(axum::middleware::map_response(
            crate::error::json_rejections,
        ));
    Router::new()
        .route("/healthz", get(observe::healthz))
        .route("/readyz", get(observe::readyz))
        .route("/metrics", get(observe::metrics))
        .nest("/api/rs", api.clone())
        .nest("/api", api)
}

/// Every API route (relative to `/api`).
fn routes() -> Router<AppState> {
    Router::new()
        // this API's description (OpenAPI 3, generated from the handlers)
        .route("/openapi.json", get(openapi::openapi_json))
        // auth and projects
        .route(
            "/uaa/oauth/token",
            post(auth::oauth_token).layer(crate::ingest::limits::login_limit()),
        )
        .route(
            "/project",
            post(projects::create_project).get(projects::list_projects),
        )
        .route("/project/{id}/token", post(projects::create_project_token))
        .route(
            "/project/{id}/retention",
            get(projects::get_retention).put(projects::put_retention),
        )
        .route(
            "/token",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route("/token/{id}", delete(tokens::revoke_token))
        .route("/project/{id}/job", get(jobs::list_jobs_h))
        .route(
            "/project/{id}/gate",
            get(gate::project_gate).put(gate::set_project_gate),
        )
        // launches
        .route(
            "/launch",
            post(launches::create_launch).get(launches::list_launches),
        )
        .route("/launch/compare", get(compare::compare_h))
        .route("/launch/combine", post(compare::combine_h))
        .route(
            "/launch/{id}",
            get(launches::get_launch).delete(launches::delete_launch),
        )
        .route("/launch/{id}/close", post(launches::close_launch))
        .route("/launch/{id}/reopen", post(launches::reopen_launch))
        .route("/launch/{id}/progress", get(launches::launch_progress))
        .route("/launch/{id}/statistic", get(launches::launch_statistic))
        .route(
            "/launch/{id}/statistic/{kind}",
            get(manual::statistic_kind_h),
        )
        .route("/launch/{id}/job", get(launches::launch_jobs))
        .route(
            "/launch/{id}/gate",
            get(gate::launch_gate).post(gate::judge_launch),
        )
        .route(
            "/launch/{id}/expected-job-runs",
            post(launches::set_expected),
        )
        .route(
            "/launch/{id}/manual",
            get(manual::manual_h).post(manual::record_manual_h),
        )
        .route("/launch/{id}/manual/assignee", post(manual::assign_h))
        .route(
            "/testplan/{id}/manual-assignee",
            get(manual::plan_assignees_h).put(manual::set_plan_assignees_h),
        )
        .route("/launch/named-env/bulk", post(launches::named_env_bulk))
        .route("/launch/category/bulk", post(launches::category_bulk))
        .route("/launch/error/bulk", post(launches::launch_errors))
        .route("/launch/quality-gate/bulk", post(gate::allure_quality_gate))
        .route(
            "/launch/attachment",
            post(launches::launch_attachment).layer(limits::multipart_limit()),
        )
        // jobs and job runs
        .route("/upload/start", post(job_runs::upload_start))
        .route("/upload/run", post(job_runs::upload_start))
        .route("/upload/stop", post(job_runs::upload_stop))
        .route("/upload/jobrun", get(job_runs::find_job_run))
        .route("/job", get(job_runs::find_job))
        .route(
            "/job/{id}",
            get(jobs::get_job_h)
                .patch(jobs::patch_job_h)
                .put(jobs::put_job_h),
        )
        .route("/jobrun/{id}", get(job_runs::get_job_run))
        .route("/jobrun/{id}/plan", get(job_runs::job_run_plan))
        // errors and attachments outside any test (Allure 3 globals)
        .route("/launch/{id}/globals", get(globals::launch_globals))
        .route("/jobrun/{id}/globals", get(globals::job_run_globals))
        .route(
            "/globals/attachment/{id}/content",
            get(globals::attachment_content),
        )
        // uploads
        .route("/upload/session", post(uploads::create_session))
        .route("/upload/session/{id}/close", post(uploads::close_session))
        .route("/upload/test-result", post(uploads::upload_results))
        .route(
            "/upload/test-result/{id}/attachment",
            post(uploads::upload_attachment).layer(limits::multipart_limit()),
        )
        .route(
            "/upload/attachment/bulk",
            post(uploads::upload_attachments_bulk).layer(limits::multipart_limit()),
        )
        .route(
            "/upload/test-result/{id}/test-fixture-result",
            post(uploads::upload_fixtures),
        )
        .route(
            "/upload/test-fixture-result/{id}/attachment",
            post(uploads::upload_fixture_attachment).layer(limits::multipart_limit()),
        )
        .route(
            "/upload/file",
            post(uploads::upload_files).layer(limits::multipart_limit()),
        )
        .route(
            "/upload",
            post(uploads::upload_files).layer(limits::multipart_limit()),
        )
        .route("/upload/archive", post(uploads::upload_archive))
        // results
        .route("/testresult", get(results::list_results))
        .route("/testresult/{id}", get(results::get_result))
        .route("/attachment/{id}/content", get(results::attachment_content))
        // test cases, plans
        .route("/testcase", get(test_cases::list_test_cases_h))
        .route("/testcase/run", post(test_cases::run_test_cases_h))
        .route("/testcase/{id}", get(test_cases::get_test_case_h))
        .route(
            "/testplan",
            post(plans::create_plan_h).get(plans::list_plans_h),
        )
        .route("/testplan/{id}", get(plans::get_plan_h))
        .route(
            "/testplan/{id}/executors",
            get(plans::executors_h).post(plans::override_h),
        )
        .route("/testplan/{id}/run", post(plans::run_plan_h))
        // reruns into the same launch
        .route("/launch/{id}/rerun", post(reruns::launch_rerun_h))
        .route("/jobrun/{id}/rerun", post(reruns::job_run_rerun_h))
        .route("/testresult/bulk/rerun", post(reruns::bulk_rerun_h))
        .route(
            "/testplan/{id}/gate",
            get(gate::plan_gate).put(gate::set_plan_gate),
        )
}
