//! The isolation walk: a project token asks every API route about another
//! project's objects and gets the answer an unknown id gets (404), never the
//! object, a 403 that betrays it, or a 500. The list of routes is read from the
//! route table's source (`api/mod.rs`), so a new route fails this test until
//! it is walked here (or listed as naming no object, with the reason).

use std::collections::BTreeSet;

use axum::http::Method;
use serde_json::json;

use super::{multipart, Reply, TestApp, ADMIN};

/// What a project token gets when it names project 1's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 404 `not_found`, with the message an unknown id gets.
    NotFound,
    /// The request is about the caller's own project and references another
    /// project's object in its body: 400 "… not found in project 2", as for an
    /// unknown id.
    RefusedLikeMissing,
    /// An admin-only route: every project token gets 403, whatever the id.
    AdminOnly,
}

#[derive(Debug, Clone, Copy)]
enum Body {
    None,
    Json(&'static str),
    /// One multipart file part.
    File,
}

/// One request of the walk. `uri` (after the `/api` or `/api/rs` prefix) and
/// the body hold placeholders: `{P}` `{L}` `{JR}` `{J}` `{S}` `{R}` `{F}` `{A}` `{GA}` (a global attachment)
/// `{TC}` `{PLAN}` `{TOK}` are project 1's (the foreign ones; `{TOK}` a token), `{OWNP}` `{OWNPLAN}` the
/// caller's own, `{JOBUID}` `{RUNUID}` the uids of project 1's job and run.
#[derive(Debug, Clone, Copy)]
struct Walk {
    method: &'static str,
    /// The route as written in the route table.
    route: &'static str,
    uri: &'static str,
    body: Body,
    expect: Expect,
    /// The same request with the admin token must not be 404 (proves the
    /// request reaches the object); off for requests that mix projects.
    control: bool,
}

const fn walk(method: &'static str, route: &'static str, uri: &'static str, body: Body) -> Walk {
    Walk {
        method,
        route,
        uri,
        body,
        expect: Expect::NotFound,
        control: true,
    }
}

/// A request about the caller's own project naming project 1's object.
const fn cross(mut w: Walk, expect: Expect) -> Walk {
    w.expect = expect;
    w.control = false;
    w
}

const fn admin_only(mut w: Walk) -> Walk {
    w.expect = Expect::AdminOnly;
    w
}

use Body::{File, Json as J, None as N};
use Expect::{NotFound as NF, RefusedLikeMissing as RLM};

const START_P1: Body =
    J(r#"{"projectId":{P},"job":{"uid":"walk-job"},"jobRun":{"uid":"walk-run"}}"#);
const START_RUN_ID: Body =
    J(r#"{"projectId":{OWNP},"job":{"uid":"walk-job"},"jobRun":{"id":{JR},"uid":"x"}}"#);
const START_LAUNCH_ID: Body = J(
    r#"{"projectId":{OWNP},"job":{"uid":"walk-job"},"jobRun":{"uid":"walk-run"},"launch":{"id":{L}}}"#,
);
const BULK: Body = J(r#"{"launchId":{L},"items":[]}"#);

/// Every request of the walk; the launch is deleted last.
const WALK: &[Walk] = &[
    // auth and projects
    admin_only(walk(
        "POST",
        "/project",
        "/project",
        J(r#"{"name":"walk"}"#),
    )),
    admin_only(walk("POST", "/project/{id}/token", "/project/{P}/token", N)),
    admin_only(walk(
        "GET",
        "/project/{id}/retention",
        "/project/{P}/retention",
        N,
    )),
    admin_only(walk(
        "PUT",
        "/project/{id}/retention",
        "/project/{P}/retention",
        J(r#"{"days":30}"#),
    )),
    admin_only(walk("GET", "/token", "/token", N)),
    admin_only(walk(
        "POST",
        "/token",
        "/token",
        J(r#"{"name":"walk","projectId":{P}}"#),
    )),
    walk("GET", "/project/{id}/job", "/project/{P}/job", N),
    walk("GET", "/project/{id}/gate", "/project/{P}/gate", N),
    admin_only(walk(
        "PUT",
        "/project/{id}/gate",
        "/project/{P}/gate",
        J(r#"{"maxFailures":0}"#),
    )),
    // launches
    walk(
        "POST",
        "/launch",
        "/launch",
        J(r#"{"name":"walk","projectId":{P}}"#),
    ),
    walk("GET", "/launch", "/launch?projectId={P}", N),
    walk("GET", "/launch/{id}", "/launch/{L}", N),
    walk("POST", "/launch/{id}/close", "/launch/{L}/close", N),
    walk("POST", "/launch/{id}/reopen", "/launch/{L}/reopen", N),
    walk("GET", "/launch/{id}/progress", "/launch/{L}/progress", N),
    walk("GET", "/launch/{id}/statistic", "/launch/{L}/statistic", N),
    walk(
        "GET",
        "/launch/{id}/statistic/{kind}",
        "/launch/{L}/statistic/automated",
        N,
    ),
    walk(
        "GET",
        "/launch/{id}/statistic/{kind}",
        "/launch/{L}/statistic/manual",
        N,
    ),
    walk("GET", "/launch/{id}/job", "/launch/{L}/job", N),
    walk("GET", "/launch/{id}/gate", "/launch/{L}/gate", N),
    walk(
        "POST",
        "/launch/{id}/gate",
        "/launch/{L}/gate",
        J(r#"{"minTests":1}"#),
    ),
    walk(
        "POST",
        "/launch/{id}/expected-job-runs",
        "/launch/{L}/expected-job-runs",
        J(r#"{"expectedJobRuns":1}"#),
    ),
    walk("GET", "/launch/{id}/manual", "/launch/{L}/manual", N),
    walk(
        "POST",
        "/launch/{id}/manual",
        "/launch/{L}/manual",
        J(r#"{"results":[]}"#),
    ),
    walk(
        "POST",
        "/launch/{id}/manual/assignee",
        "/launch/{L}/manual/assignee",
        J(r#"{"assignments":[{"testCaseId":{TC},"assignee":"walk"}]}"#),
    ),
    walk(
        "GET",
        "/testplan/{id}/manual-assignee",
        "/testplan/{PLAN}/manual-assignee",
        N,
    ),
    walk(
        "PUT",
        "/testplan/{id}/manual-assignee",
        "/testplan/{PLAN}/manual-assignee",
        J(r#"{"assignments":[{"testCaseId":{TC},"assignee":"walk"}]}"#),
    ),
    cross(
        walk(
            "PUT",
            "/testplan/{id}/manual-assignee",
            "/testplan/{OWNPLAN}/manual-assignee",
            J(r#"{"assignments":[{"testCaseId":{TC},"assignee":"walk"}]}"#),
        ),
        RLM,
    ),
    walk(
        "POST",
        "/launch/named-env/bulk",
        "/launch/named-env/bulk",
        BULK,
    ),
    walk(
        "POST",
        "/launch/category/bulk",
        "/launch/category/bulk",
        BULK,
    ),
    walk("POST", "/launch/error/bulk", "/launch/error/bulk", BULK),
    walk(
        "POST",
        "/launch/quality-gate/bulk",
        "/launch/quality-gate/bulk",
        BULK,
    ),
    walk(
        "POST",
        "/launch/attachment",
        "/launch/attachment?launchId={L}",
        File,
    ),
    // jobs and job runs
    walk("POST", "/upload/start", "/upload/start", START_P1),
    cross(
        walk("POST", "/upload/start", "/upload/start", START_RUN_ID),
        NF,
    ),
    cross(
        walk("POST", "/upload/start", "/upload/start", START_LAUNCH_ID),
        NF,
    ),
    walk("POST", "/upload/run", "/upload/run", START_P1),
    cross(walk("POST", "/upload/run", "/upload/run", START_RUN_ID), NF),
    cross(
        walk("POST", "/upload/run", "/upload/run", START_LAUNCH_ID),
        NF,
    ),
    walk(
        "POST",
        "/upload/stop",
        "/upload/stop",
        J(r#"{"projectId":{P},"jobRunId":{JR}}"#),
    ),
    cross(
        walk(
            "POST",
            "/upload/stop",
            "/upload/stop",
            J(r#"{"projectId":{OWNP},"jobRunId":{JR}}"#),
        ),
        NF,
    ),
    walk(
        "POST",
        "/upload/stop",
        "/upload/stop",
        J(r#"{"projectId":{P},"jobUid":"{JOBUID}","jobRunUid":"{RUNUID}"}"#),
    ),
    walk("GET", "/upload/jobrun", "/upload/jobrun?jobRunId={JR}", N),
    walk(
        "GET",
        "/upload/jobrun",
        "/upload/jobrun?projectId={P}&jobUid={JOBUID}&jobRunUid={RUNUID}",
        N,
    ),
    walk("GET", "/job", "/job?projectId={P}", N),
    walk("GET", "/job", "/job?projectId={P}&externalId={JOBUID}", N),
    walk("GET", "/job/{id}", "/job/{J}", N),
    walk("PATCH", "/job/{id}", "/job/{J}", J("{}")),
    walk("PUT", "/job/{id}", "/job/{J}", J("{}")),
    walk("GET", "/jobrun/{id}", "/jobrun/{JR}", N),
    walk("GET", "/jobrun/{id}/plan", "/jobrun/{JR}/plan", N),
    // errors and attachments outside tests (Allure 3 globals)
    walk("GET", "/launch/{id}/globals", "/launch/{L}/globals", N),
    // launches analysed together (the admin control: a launch compared with
    // itself; one launch named twice is too few to combine, 400)
    walk(
        "GET",
        "/launch/compare",
        "/launch/compare?base={L}&head={L}",
        N,
    ),
    walk(
        "POST",
        "/launch/combine",
        "/launch/combine",
        J(r#"{"launchIds":[{L},{L}],"name":"walk"}"#),
    ),
    walk("GET", "/jobrun/{id}/globals", "/jobrun/{JR}/globals", N),
    walk(
        "GET",
        "/globals/attachment/{id}/content",
        "/globals/attachment/{GA}/content",
        N,
    ),
    // uploads
    walk(
        "POST",
        "/upload/session",
        "/upload/session",
        J(r#"{"jobRunId":{JR}}"#),
    ),
    walk(
        "POST",
        "/upload/session",
        "/upload/session",
        J(r#"{"launchId":{L}}"#),
    ),
    walk(
        "POST",
        "/upload/session/{id}/close",
        "/upload/session/{S}/close",
        N,
    ),
    walk(
        "POST",
        "/upload/test-result",
        "/upload/test-result",
        J(r#"{"testSessionId":{S},"results":[{"uuid":"walk-new","name":"n"}]}"#),
    ),
    walk(
        "POST",
        "/upload/test-result/{id}/attachment",
        "/upload/test-result/{R}/attachment",
        File,
    ),
    walk(
        "POST",
        "/upload/test-result/{id}/test-fixture-result",
        "/upload/test-result/{R}/test-fixture-result",
        J(r#"{"fixtures":[]}"#),
    ),
    walk(
        "POST",
        "/upload/test-fixture-result/{id}/attachment",
        "/upload/test-fixture-result/{F}/attachment",
        File,
    ),
    walk("POST", "/upload/file", "/upload/file?id={S}", File),
    walk("POST", "/upload", "/upload?id={S}", File),
    // results
    walk("GET", "/testresult", "/testresult?launchId={L}", N),
    walk("GET", "/testresult/{id}", "/testresult/{R}", N),
    walk(
        "GET",
        "/attachment/{id}/content",
        "/attachment/{A}/content",
        N,
    ),
    // test cases, plans
    walk("GET", "/testcase", "/testcase?projectId={P}", N),
    walk("GET", "/testcase/{id}", "/testcase/{TC}", N),
    walk(
        "POST",
        "/testcase/run",
        "/testcase/run",
        J(r#"{"projectId":{P},"testCaseIds":[{TC}],"launchName":"walk"}"#),
    ),
    cross(
        walk(
            "POST",
            "/testcase/run",
            "/testcase/run",
            J(r#"{"projectId":{OWNP},"testCaseIds":[{TC}],"launchName":"walk"}"#),
        ),
        RLM,
    ),
    walk(
        "POST",
        "/testplan",
        "/testplan",
        J(r#"{"projectId":{P},"name":"walk","testCaseIds":[{TC}]}"#),
    ),
    cross(
        walk(
            "POST",
            "/testplan",
            "/testplan",
            J(r#"{"projectId":{OWNP},"name":"walk","testCaseIds":[{TC}]}"#),
        ),
        RLM,
    ),
    walk("GET", "/testplan", "/testplan?projectId={P}", N),
    walk("GET", "/testplan/{id}", "/testplan/{PLAN}", N),
    walk(
        "GET",
        "/testplan/{id}/executors",
        "/testplan/{PLAN}/executors",
        N,
    ),
    walk(
        "POST",
        "/testplan/{id}/executors",
        "/testplan/{PLAN}/executors",
        J(r#"{"reset":true,"testCaseIds":[{TC}]}"#),
    ),
    cross(
        walk(
            "POST",
            "/testplan/{id}/executors",
            "/testplan/{OWNPLAN}/executors",
            J(r#"{"jobId":{J}}"#),
        ),
        RLM,
    ),
    cross(
        walk(
            "POST",
            "/testplan/{id}/executors",
            "/testplan/{OWNPLAN}/executors",
            J(r#"{"reset":true,"testCaseIds":[{TC}]}"#),
        ),
        RLM,
    ),
    walk(
        "POST",
        "/testplan/{id}/run",
        "/testplan/{PLAN}/run",
        J(r#"{"launchName":"walk"}"#),
    ),
    walk("GET", "/testplan/{id}/gate", "/testplan/{PLAN}/gate", N),
    walk(
        "PUT",
        "/testplan/{id}/gate",
        "/testplan/{PLAN}/gate",
        J(r#"{"minTests":1}"#),
    ),
    // reruns into the same launch
    walk(
        "POST",
        "/launch/{id}/rerun",
        "/launch/{L}/rerun",
        J(r#"{"failed":true,"testResultIds":[{R}]}"#),
    ),
    walk(
        "POST",
        "/jobrun/{id}/rerun",
        "/jobrun/{JR}/rerun",
        J(r#"{"rql":"status = \"passed\""}"#),
    ),
    walk(
        "POST",
        "/testresult/bulk/rerun",
        "/testresult/bulk/rerun",
        J(r#"{"launchId":{L},"selection":{"leafsInclude":[{R}]}}"#),
    ),
    // revokes project 1's token (the admin control runs it after the others)
    admin_only(walk("DELETE", "/token/{id}", "/token/{TOK}", N)),
    // last: it removes the launch and everything in it
    walk("DELETE", "/launch/{id}", "/launch/{L}", N),
];

/// Routes whose requests name no object, with the reason.
const NAMES_NO_OBJECT: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/healthz",
        "the process answers; needs no token, names nothing",
    ),
    (
        "GET",
        "/readyz",
        "database, migrations and blob store answer; needs no token, names nothing",
    ),
    (
        "GET",
        "/metrics",
        "counts without project or launch labels; names nothing",
    ),
    (
        "POST",
        "/uaa/oauth/token",
        "exchanges an API token; names no object",
    ),
    (
        "GET",
        "/openapi.json",
        "the API's description; needs no token, holds no data",
    ),
    (
        "GET",
        "/project",
        "lists the caller's projects (checked below)",
    ),
    (
        "POST",
        "/upload/attachment/bulk",
        "names results in its parts; one of another project is refused part by part exactly like \
         one that does not exist (tests::bulk_attachments)",
    ),
    (
        "POST",
        "/upload/archive",
        "refuses every request with 400 before reading it",
    ),
];

/// `(METHOD, path)` of every route in the route table's source.
fn route_table() -> BTreeSet<(String, String)> {
    routes_in(include_str!("../api/mod.rs"))
}

/// `(METHOD, path)` of every `.route(…)` in `src`.
pub(super) fn routes_in(src: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        let after = &rest[at + ".route(".len()..];
        let mut depth = 1;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("unbalanced .route(");
        let segment = &after[..end];
        let path = segment.split('"').nth(1).expect("route without a path");
        let before_ok = |i: usize| {
            !segment[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        };
        let mut methods = 0;
        for m in ["get", "post", "put", "patch", "delete"] {
            let call = format!("{m}(");
            for (i, _) in segment.match_indices(&call) {
                if before_ok(i) {
                    out.insert((m.to_uppercase(), path.to_string()));
                    methods += 1;
                }
            }
        }
        assert!(
            methods > 0,
            "cannot read the methods of route {path:?}: teach route_table() its method router"
        );
        rest = &after[end..];
    }
    out
}

#[test]
fn the_route_table_reader_reads_the_route_table() {
    let routes = route_table();
    for (m, p) in [
        ("GET", "/launch/{id}"),
        ("DELETE", "/launch/{id}"),
        ("PATCH", "/job/{id}"),
        ("PUT", "/job/{id}"),
        ("POST", "/upload/test-result/{id}/attachment"),
        ("GET", "/testplan/{id}/executors"),
        ("POST", "/testplan/{id}/executors"),
    ] {
        assert!(routes.contains(&(m.into(), p.into())), "{m} {p} not read");
    }
    assert!(!routes.contains(&("GET".into(), "/launch/attachment".into())));
    assert!(routes.len() > 50, "{} routes", routes.len());
}

/// Every route is walked or named as naming no object, and every walked
/// route exists.
#[test]
fn every_route_is_walked() {
    let routes = route_table();
    let walked: BTreeSet<(String, String)> = WALK
        .iter()
        .map(|w| (w.method.to_string(), w.route.to_string()))
        .chain(
            NAMES_NO_OBJECT
                .iter()
                .map(|(m, r, _)| (m.to_string(), r.to_string())),
        )
        .collect();
    let unwalked: Vec<_> = routes.difference(&walked).collect();
    assert!(
        unwalked.is_empty(),
        "routes the isolation walk does not cover (add them to WALK in tests/isolation.rs): {unwalked:?}"
    );
    let stale: Vec<_> = walked.difference(&routes).collect();
    assert!(
        stale.is_empty(),
        "walked routes not in the route table: {stale:?}"
    );
}

/// Replaces the placeholders; panics on one it does not know.
fn fill(template: &str, ids: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (k, v) in ids {
        s = s.replace(k, v);
    }
    let left = s.match_indices('{').find(|(i, _)| {
        let tail = &s[i + 1..];
        let name: String = tail.chars().take_while(char::is_ascii_uppercase).collect();
        !name.is_empty() && tail[name.len()..].starts_with('}')
    });
    assert!(left.is_none(), "unknown placeholder in {s}");
    s
}

/// The message with every number replaced, to compare answers about
/// different ids.
fn shape(r: &Reply) -> (u16, Option<String>, String) {
    let mut msg = String::new();
    for c in r.message().chars() {
        if !c.is_ascii_digit() {
            msg.push(c);
        } else if !msg.ends_with('#') {
            msg.push('#');
        }
    }
    (r.status.as_u16(), r.code().map(str::to_string), msg)
}

async fn send(app: &TestApp, w: &Walk, prefix: &str, token: &str, ids: &[(&str, String)]) -> Reply {
    let uri = format!("{prefix}{}", fill(w.uri, ids));
    let method = Method::from_bytes(w.method.as_bytes()).unwrap();
    match w.body {
        Body::None => app.send(method, &uri, Some(token), None, Vec::new()).await,
        Body::Json(b) => {
            let body = fill(b, ids);
            serde_json::from_str::<serde_json::Value>(&body)
                .unwrap_or_else(|e| panic!("walk body {body}: {e}"));
            app.send(
                method,
                &uri,
                Some(token),
                Some("application/json"),
                body.into_bytes(),
            )
            .await
        }
        Body::File => {
            let (ct, body) = multipart("walk.txt", "walk");
            app.send(method, &uri, Some(token), Some(&ct), body).await
        }
    }
}

/// What project 1 holds, read from the database: launches, the launch's
/// closed flag, job runs, results and their attachments and fixtures, jobs,
/// and the configuration of the job.
async fn project_one(app: &TestApp, launch: i64) -> String {
    let db = &app.state.db;
    let launches = crate::db::launches::list_launches(db, 1, None, 0, 100)
        .await
        .unwrap()
        .1;
    let closed = crate::db::launches::get_launch(db, launch)
        .await
        .unwrap()
        .map(|l| (l.closed, l.expected_job_runs));
    let runs: Vec<(i64, String)> = crate::db::job_runs::launch_job_runs(db, launch)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.result_count, r.stage))
        .collect();
    let (results, _) = crate::db::results::list_results(db, launch, None, 0, 100)
        .await
        .unwrap();
    let mut details = Vec::new();
    for r in &results {
        details.push((
            crate::db::results::result_attachments(db, r.id)
                .await
                .unwrap()
                .len(),
            crate::db::results::result_fixtures(db, r.id)
                .await
                .unwrap()
                .len(),
        ));
    }
    let jobs = crate::db::job_runs::list_jobs(db, 1).await.unwrap();
    let mut configs = Vec::new();
    for j in &jobs {
        configs.push(
            crate::server_led::jobs::job_config_dto(db, j)
                .await
                .map(|c| serde_json::to_string(&c).unwrap())
                .unwrap(),
        );
    }
    format!(
        "launches {launches}, launch {closed:?}, runs {runs:?}, results {}, {details:?}, jobs {}, {configs:?}",
        results.len(),
        jobs.len()
    )
}

#[tokio::test]
async fn a_project_token_cannot_reach_another_projects_objects() {
    let app = TestApp::new().await;
    let own = app.create_project("Second").await;
    let token = app.project_token(own).await;

    // Project 1's objects, made with the admin token.
    let started = app
        .post(
            "/api/upload/start",
            ADMIN,
            &json!({"projectId": 1, "job": {"uid": "walk-ci"}, "jobRun": {"uid": "walk-ci-1"}}),
        )
        .await
        .expect(200);
    let (launch, job_run, job) = (
        started.id("launchId"),
        started.id("jobRunId"),
        started.id("jobId"),
    );
    let session = app
        .post("/api/upload/session", ADMIN, &json!({"jobRunId": job_run}))
        .await
        .expect(200)
        .id("id");
    let uploaded = app
        .post(
            "/api/upload/test-result",
            ADMIN,
            &json!({"testSessionId": session, "results": [
                {"uuid": "walk-1", "name": "walk test", "fullName": "walk.Test#one", "status": "passed"}
            ]}),
        )
        .await
        .expect(200);
    let result = uploaded.body["resultIds"][0].as_i64().unwrap();
    app.upload(
        &format!("/api/upload/test-result/{result}/attachment"),
        ADMIN,
        "log.txt",
        "a log",
    )
    .await
    .expect(202);
    let fixture = app
        .post(
            &format!("/api/upload/test-result/{result}/test-fixture-result"),
            ADMIN,
            &json!({"fixtures": [{"type": "BEFORE", "uuid": "fx-1", "name": "setup", "status": "passed"}]}),
        )
        .await
        .expect(202);
    let fixture = fixture.body["resultIds"][0].as_i64().unwrap();
    let read = app
        .get(&format!("/api/testresult/{result}"), ADMIN)
        .await
        .expect(200);
    let attachment = read.body["attachments"][0]["id"].as_i64().unwrap();
    // An error and an attachment outside tests (a raw `*-globals.json`).
    app.upload(
        &format!("/api/upload/file?id={session}"),
        ADMIN,
        "g-attachment.txt",
        "global log",
    )
    .await
    .expect(202);
    app.upload(
        &format!("/api/upload/file?id={session}"),
        ADMIN,
        "g-globals.json",
        r#"{"errors":[{"message":"hook failed"}],"attachments":[{"name":"log","source":"g-attachment.txt"}]}"#,
    )
    .await
    .expect(202);
    let globals = app
        .get(&format!("/api/launch/{launch}/globals"), ADMIN)
        .await
        .expect(200);
    let global_attachment = globals.body["attachments"][0]["id"].as_i64().unwrap();
    let cases = app
        .get("/api/testcase?projectId=1", ADMIN)
        .await
        .expect(200);
    let test_case = cases.body["content"][0]["id"].as_i64().unwrap();
    let plan = app
        .post(
            "/api/testplan",
            ADMIN,
            &json!({"projectId": 1, "name": "walk plan", "testCaseIds": [test_case]}),
        )
        .await
        .expect(200)
        .id("id");
    // The caller's own plan (made with its own token).
    let own_plan = app
        .post(
            "/api/testplan",
            &token,
            &json!({"projectId": own, "name": "own plan", "filter": {"namePattern": "nothing"}}),
        )
        .await
        .expect(200)
        .id("id");

    // A token of project 1 (the walk's DELETE /token/{id} names it).
    let project_one_token = app
        .post(
            "/api/token",
            ADMIN,
            &json!({"name": "project one", "projectId": 1}),
        )
        .await
        .expect(201)
        .id("id");

    let common = [
        ("{OWNP}", own.to_string()),
        ("{OWNPLAN}", own_plan.to_string()),
        ("{JOBUID}", "walk-ci".to_string()),
        ("{RUNUID}", "walk-ci-1".to_string()),
    ];
    let foreign_ids = [
        ("{P}", 1),
        ("{L}", launch),
        ("{JR}", job_run),
        ("{J}", job),
        ("{S}", session),
        ("{R}", result),
        ("{F}", fixture),
        ("{A}", attachment),
        ("{GA}", global_attachment),
        ("{TC}", test_case),
        ("{PLAN}", plan),
        ("{TOK}", project_one_token),
    ];
    let with = |value: Option<i64>| -> Vec<(&str, String)> {
        foreign_ids
            .iter()
            .map(|(k, id)| (*k, value.unwrap_or(*id).to_string()))
            .chain(common.iter().cloned())
            .collect()
    };
    let foreign = with(None);
    let missing = with(Some(999_999));
    let own_project: Vec<(&str, String)> = std::iter::once(("{P}", own.to_string()))
        .chain(foreign.iter().filter(|(k, _)| *k != "{P}").cloned())
        .collect();

    // The caller lists only its own project.
    let projects = app.get("/api/project", &token).await.expect(200);
    let listed: Vec<i64> = projects.body["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![own]);

    let before = project_one(&app, launch).await;
    let mut failures = Vec::new();
    for prefix in ["/api", "/api/rs"] {
        for w in WALK {
            let got = send(&app, w, prefix, &token, &foreign).await;
            let unknown = send(&app, w, prefix, &token, &missing).await;
            let what = format!("{} {prefix}{} {:?}", w.method, w.uri, w.body);
            let wanted = match w.expect {
                Expect::NotFound => (404, "not_found"),
                Expect::RefusedLikeMissing => (400, "bad_request"),
                Expect::AdminOnly => (403, "forbidden"),
            };
            if (got.status.as_u16(), got.code()) != (wanted.0, Some(wanted.1)) {
                failures.push(format!(
                    "{what}: wanted {} {}, got {} {}",
                    wanted.0, wanted.1, got.status, got.body
                ));
                continue;
            }
            if shape(&got) != shape(&unknown) {
                failures.push(format!(
                    "{what}: answers differently than for an unknown id: {} vs {}",
                    got.body, unknown.body
                ));
            }
            if w.expect == Expect::AdminOnly {
                // Not about the id: the caller's own project gets the same.
                let mine = send(&app, w, prefix, &token, &own_project).await;
                if shape(&mine) != shape(&got) {
                    failures.push(format!("{what}: own project answered {}", mine.body));
                }
            }
        }
    }

    // Refused means refused: nothing in project 1 changed.
    let after = project_one(&app, launch).await;
    if after != before {
        failures.push(format!(
            "project 1 changed during the walk:\n  before: {before}\n  after:  {after}"
        ));
    }
    assert!(
        failures.is_empty(),
        "isolation walk failures:\n{}",
        failures.join("\n")
    );

    // Control: the same requests with the admin token reach the objects.
    let mut controls: Vec<&Walk> = WALK.iter().filter(|w| w.control).collect();
    controls.sort_by_key(|w| w.method == "DELETE");
    for w in controls {
        let got = send(&app, w, "/api", ADMIN, &foreign).await;
        if got.status.as_u16() == 404 || got.status.is_server_error() {
            failures.push(format!(
                "control {} {} {:?} with the admin token: {} {}",
                w.method, w.uri, w.body, got.status, got.body
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "isolation walk control failures:\n{}",
        failures.join("\n")
    );
    // The admin control deleted the launch last.
    app.get(&format!("/api/launch/{launch}"), ADMIN)
        .await
        .expect(404);
}
