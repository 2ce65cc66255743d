//! One story of the whole lifecycle, run on both storage backends: the
//! embedded SQLite default and PostgreSQL.

use serde_json::json;

use crate::pg::PgCluster;
use crate::support::*;

/// Projects, tokens, create-or-join under concurrency, idempotent ingestion,
/// attempts, attachments, fixtures, closing, reopening, isolation, deletion.
fn lifecycle_story(server: &TestServer) {
    let api = server.api();
    let cli = server.cli();

    // Project and token management.
    let p = api.post("/api/project", &json!({"name": "Story"}));
    let pid = p["id"].as_i64().unwrap();
    let ptoken = api.post(&format!("/api/project/{pid}/token"), &json!({}))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let scoped = api.with_token(&ptoken);

    // Concurrent starts of one pipeline run: one job, one job run, one launch.
    let ci = server
        .cli()
        .env("ALLURE_TOKEN", &ptoken)
        .env("ALLURE_PROJECT_ID", pid)
        .github("4711", "start");
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let c = ci.clone();
            std::thread::spawn(move || {
                c.run(&["job-run", "start", "--launch-name", "Story launch"])
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().ok();
    }
    let launches = scoped.launches(pid);
    assert_eq!(launches.len(), 1, "{launches:?}");
    let lid = launches[0]["id"].as_i64().unwrap();
    let runs = scoped.job_runs(lid);
    assert_eq!(runs.len(), 1);
    let jr = runs[0]["id"].as_i64().unwrap();

    // Uploads: real adapter results with reruns, attachments and fixtures; twice.
    let dir = fixture("tests/fixtures/allure-pytest");
    let up = ci.clone().env("ALLURE_JOB_RUN_ID", jr);
    up.run(&["upload", dir.to_str().unwrap()]).ok();
    up.run(&["upload", dir.to_str().unwrap()]).ok();
    let results = scoped.results(lid);
    assert_eq!(results.len(), count_files(&dir, "-result.json"));
    assert_eq!(scoped.statistic(lid), expected_statistic(&[&dir]));
    assert!(results.iter().any(|r| r["retry"] == true));
    assert!(results
        .iter()
        .any(|r| r["attachmentCount"].as_i64().unwrap() > 0));
    assert!(results
        .iter()
        .any(|r| r["fixtureCount"].as_i64().unwrap() > 0));
    let with_att = results
        .iter()
        .find(|r| r["attachmentCount"].as_i64().unwrap() > 0)
        .unwrap();
    let detail = scoped.get(&format!("/api/testresult/{}", with_att["id"]));
    assert!(detail["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["stored"] == true));

    // Another pipeline joins by launch id; JUnit results.
    let junit = fixture("examples/pipelines/gitlab-api/results");
    server
        .cli()
        .env("ALLURE_TOKEN", &ptoken)
        .env("ALLURE_PROJECT_ID", pid)
        .gitlab("99")
        .env("ALLURE_LAUNCH_ID", lid)
        .run(&["upload", junit.to_str().unwrap()])
        .ok();
    assert_eq!(scoped.job_runs(lid).len(), 2);
    assert_eq!(scoped.results(lid).len(), results.len() + 5);

    // Stop, close (twice), refuse, reopen.
    up.run(&["job-run", "stop"]).ok();
    assert_eq!(
        scoped.get(&format!("/api/jobrun/{jr}"))["stage"],
        "finished"
    );
    cli.run(&["launch", "close", &lid.to_string()]).ok();
    cli.run(&["launch", "close", &lid.to_string()]).ok();
    up.run(&["upload", dir.to_str().unwrap()]).code(6);
    up.run(&["upload", "--reopen-closed-launch", dir.to_str().unwrap()])
        .ok();
    assert_eq!(scoped.get(&format!("/api/launch/{lid}"))["closed"], false);

    // Isolation: the default project cannot see it, the admin can.
    let other = api.post("/api/project", &json!({"name": "Other"}));
    let otoken = api.post(&format!("/api/project/{}/token", other["id"]), &json!({}))["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.with_token(&otoken)
            .get_raw(&format!("/api/launch/{lid}"))
            .0,
        404
    );
    assert_eq!(api.get_raw(&format!("/api/launch/{lid}")).0, 200);

    // Bearer tokens from the OAuth exchange.
    let r = api
        .http
        .post(format!("{}/api/uaa/oauth/token", server.url))
        .form(&[("grant_type", "apitoken"), ("token", ptoken.as_str())])
        .send()
        .unwrap();
    let access: serde_json::Value = r.json().unwrap();
    let r = api
        .http
        .get(format!("{}/api/launch/{lid}", server.url))
        .bearer_auth(access["access_token"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Paging and deletion.
    for i in 0..3 {
        scoped.post(
            "/api/launch",
            &json!({"name": format!("extra {i}"), "projectId": pid}),
        );
    }
    let page = scoped.get(&format!("/api/launch?projectId={pid}&page=1&size=2"));
    assert_eq!(page["totalElements"], 4);
    assert_eq!(page["content"].as_array().unwrap().len(), 2);
    let r = scoped
        .http
        .delete(format!("{}/api/launch/{lid}", server.url))
        .header("Authorization", format!("api-token {ptoken}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(scoped.get_raw(&format!("/api/launch/{lid}")).0, 404);
}

#[test]
fn lifecycle_on_sqlite() {
    let server = TestServer::start();
    lifecycle_story(&server);
}

#[test]
fn lifecycle_on_postgres() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.database("story");
    let server = TestServer::start_with(&["--database-url", &url]);
    lifecycle_story(&server);
}
