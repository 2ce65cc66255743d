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
    assert_eq!(r.status().as_u16(), 200);
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

#[test]
fn sqlite_history_moves_to_postgres() {
    let Some(pg) = PgCluster::start() else { return };
    let data = tempfile::tempdir().unwrap();
    // History on SQLite: a CI-led launch with retries, attachments, fixtures.
    let before = {
        let server = TestServer::start_in(Some(data.path()), &[]);
        let ci = server.cli().github("12", "start");
        ci.run(&["job-run", "start", "--launch-name", "Before the move"])
            .ok();
        let dir = fixture("tests/fixtures/allure-pytest");
        ci.run(&["upload", dir.to_str().unwrap()]).ok();
        server
            .cli()
            .gitlab("5")
            .env("ALLURE_LAUNCH_ID", 1)
            .run(&[
                "upload",
                fixture("examples/pipelines/gitlab-api/results")
                    .to_str()
                    .unwrap(),
            ])
            .ok();
        ci.run(&["launch", "close", "1"]).ok();
        let snap = snapshot(&server.api());
        assert_eq!(snap[0]["results"].as_array().unwrap().len(), 19);
        assert_eq!(snap[0]["jobRuns"].as_array().unwrap().len(), 2);
        snap
    };
    let target = pg.database("moved");
    let sqlite = format!("sqlite://{}", data.path().join("onelaunch.db").display());
    let r = Cli::new("http://unused", TOKEN)
        .run(&["server", "migrate", "--from", &sqlite, "--to", &target])
        .ok();
    assert!(r.stdout.contains("test_results: "), "{}", r.stdout);
    // The same data directory (attachment bytes) on PostgreSQL.
    let server = TestServer::start_in(Some(data.path()), &["--database-url", &target]);
    let after = snapshot(&server.api());
    assert_eq!(before, after);
    // New rows continue after the copied ids.
    let l = server
        .api()
        .post("/api/launch", &json!({"name": "after", "projectId": 1}));
    assert!(l["id"].as_i64().unwrap() > 1);
    // A second migration into a non-empty database is refused.
    let r = Cli::new("http://unused", TOKEN)
        .run(&["server", "migrate", "--from", &sqlite, "--to", &target])
        .code(1);
    assert!(r.stderr.contains("not empty"), "{}", r.stderr);
}

/// Everything a user can read about the launches: launches, statistics, job
/// runs, results, attachment bytes (hashed).
fn snapshot(api: &Api) -> serde_json::Value {
    use sha2_free_hash as h;
    let launches = api.launches(1);
    let mut out = Vec::new();
    for l in &launches {
        let id = l["id"].as_i64().unwrap();
        let mut results = api.results(id);
        let mut atts = Vec::new();
        for r in &results {
            let d = api.get(&format!("/api/testresult/{}", r["id"]));
            for a in d["attachments"].as_array().unwrap() {
                let bytes = api
                    .http
                    .get(format!("{}/api/attachment/{}/content", api.url, a["id"]))
                    .header("Authorization", format!("api-token {}", api.token))
                    .send()
                    .unwrap()
                    .bytes()
                    .unwrap();
                atts.push(json!({"result": r["uuid"], "file": a["fileName"], "bytes": h(&bytes)}));
            }
            atts.push(json!({"result": r["uuid"], "fixtures": d["fixtures"]}));
        }
        results.sort_by_key(|r| r["uuid"].as_str().unwrap().to_string());
        let runs: Vec<_> = api
            .job_runs(id)
            .into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("webUrl");
                r
            })
            .collect();
        out.push(json!({
            "launch": {"id": id, "name": l["name"], "closed": l["closed"], "tags": l["tags"], "created": l["createdDate"]},
            "statistic": api.statistic(id),
            "results": results,
            "jobRuns": runs,
            "attachments": atts,
        }));
    }
    json!(out)
}

/// A stable digest of bytes without extra dependencies (FNV-1a, 64 bit).
fn sha2_free_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}-{}", bytes.len())
}
