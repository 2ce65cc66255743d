//! Launches analysed together, end to end: two CI-led launches of different
//! pipelines (a GitHub workflow; a GitLab pipeline joined by a second GitHub
//! workflow) compared with `launch compare -o json` and in the web UI
//! (tests/browser/compare.mjs), then combined with `launch combine`: counts
//! add up exactly, the sources are unchanged, and deleting the combined launch
//! removes no source result or attachment.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::*;

/// `(uuid, name, fullName, ALLURE_ID, status, start, attachment text)`.
type Spec<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    i64,
    Option<&'a str>,
);

/// Writes Allure results: `(uuid, name, fullName, ALLURE_ID, status, start,
/// attachment text)`; the historyId is the name.
fn results(dir: &Path, tests: &[Spec<'_>]) {
    std::fs::create_dir_all(dir).unwrap();
    for (uuid, name, full, aid, status, start, att) in tests {
        let labels: Vec<Value> = aid
            .iter()
            .map(|a| json!({"name": "ALLURE_ID", "value": a}))
            .collect();
        let mut r = json!({
            "uuid": uuid, "historyId": name, "name": name, "fullName": full,
            "status": status, "start": start, "stop": start + 10, "labels": labels,
        });
        if let Some(text) = att {
            let file = format!("{uuid}-attachment.txt");
            std::fs::write(dir.join(&file), text).unwrap();
            r["attachments"] = json!([{"name": "log", "source": file, "type": "text/plain"}]);
        }
        std::fs::write(dir.join(format!("{uuid}-result.json")), r.to_string()).unwrap();
    }
}

/// Everything a launch shows through the API: statistic, results (with
/// their attachments' contents) and job runs.
fn snapshot(api: &Api, launch: i64) -> String {
    let mut out = format!("{:?}\n", api.statistic(launch));
    for r in api.results(launch) {
        let one = api.get(&format!("/api/testresult/{}", r["id"]));
        out.push_str(&format!("{r}\n"));
        for a in one["attachments"].as_array().unwrap() {
            let bytes = api
                .http
                .get(format!("{}/api/attachment/{}/content", api.url, a["id"]))
                .header("Authorization", format!("api-token {}", api.token))
                .send()
                .unwrap();
            assert_eq!(bytes.status(), 200);
            out.push_str(&format!("  {} {}\n", a["name"], bytes.text().unwrap()));
        }
    }
    for j in api.job_runs(launch) {
        out.push_str(&format!("{j}\n"));
    }
    out
}

/// Every stored blob (files and small blobs in the database), by digest.
fn blob_files(dir: &Path) -> Vec<String> {
    stored_blobs(&dir.join("data")).into_keys().collect()
}

fn names(cmp: &Value, category: &str) -> Vec<String> {
    cmp["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["category"] == category)
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn compare_and_combine_two_pipelines_launches() {
    let server = TestServer::start();
    let api = server.api();
    let work = server.work_dir().to_path_buf();

    // Pipeline 1: a GitHub workflow.
    let a_dir = work.join("nightly-41");
    results(
        &a_dir,
        &[
            (
                "a-total",
                "total",
                "shop.Checkout#total",
                None,
                "passed",
                100,
                Some("total log 41"),
            ),
            (
                "a-refund",
                "refund",
                "shop.Checkout#refund",
                None,
                "failed",
                100,
                None,
            ),
            (
                "a-legacy",
                "legacy",
                "shop.Legacy#old",
                None,
                "passed",
                100,
                None,
            ),
            (
                "a-login",
                "login",
                "web.LoginTest#login",
                Some("77"),
                "passed",
                100,
                None,
            ),
            (
                "a-search",
                "search",
                "shop.Search#find",
                None,
                "passed",
                100,
                None,
            ),
            ("a-cart", "cart", "shop.Cart#add", None, "passed", 100, None),
        ],
    );
    let gh = server.cli().github("9001", "tests");
    gh.run(&[
        "upload",
        a_dir.to_str().unwrap(),
        "--launch-name",
        "Nightly 41",
    ])
    .ok();
    let a: i64 = parse_env(&gh.run(&["job-run", "env"]).ok().stdout)["ALLURE_LAUNCH_ID"]
        .parse()
        .unwrap();

    // Pipeline 2: a GitLab pipeline, joined by a Windows workflow that runs
    // `login` too (the same test case: its ALLURE_ID, another fullName).
    let b_dir = work.join("nightly-42");
    results(
        &b_dir,
        &[
            (
                "b-total",
                "total",
                "shop.Checkout#total",
                None,
                "failed",
                200,
                None,
            ),
            (
                "b-refund",
                "refund",
                "shop.Checkout#refund",
                None,
                "passed",
                200,
                None,
            ),
            (
                "b-export",
                "export",
                "shop.Export#csv",
                None,
                "passed",
                200,
                None,
            ),
            (
                "b-login",
                "login",
                "api/login.spec.ts#login",
                Some("77"),
                "passed",
                200,
                None,
            ),
            (
                "b-search-1",
                "search",
                "shop.Search#find",
                None,
                "failed",
                200,
                None,
            ),
            (
                "b-search-2",
                "search",
                "shop.Search#find",
                None,
                "passed",
                300,
                None,
            ),
            (
                "b-cart",
                "cart",
                "shop.Cart#add",
                None,
                "passed",
                200,
                Some("cart log 42"),
            ),
        ],
    );
    let gl = server.cli().gitlab("777");
    gl.run(&[
        "upload",
        b_dir.to_str().unwrap(),
        "--launch-name",
        "Nightly 42",
    ])
    .ok();
    let b: i64 = parse_env(&gl.run(&["job-run", "env"]).ok().stdout)["ALLURE_LAUNCH_ID"]
        .parse()
        .unwrap();
    assert_ne!(a, b);
    let win_dir = work.join("nightly-42-windows");
    results(
        &win_dir,
        &[(
            "w-login",
            "login",
            "web.LoginTest#login",
            Some("77"),
            "failed",
            250,
            None,
        )],
    );
    server
        .cli()
        .github("9100", "windows")
        .env("GITHUB_WORKFLOW", "Windows")
        .env("ALLURE_LAUNCH_ID", b)
        .run(&["upload", win_dir.to_str().unwrap()])
        .ok();
    for l in [a, b] {
        server.cli().run(&["launch", "close", &l.to_string()]).ok();
    }

    // Compare, as JSON.
    let out = server
        .cli()
        .run(&[
            "-o",
            "json",
            "launch",
            "compare",
            &a.to_string(),
            &b.to_string(),
        ])
        .ok();
    let cmp: Value = serde_json::from_str(&out.stdout).expect("compare -o json prints JSON");
    assert_eq!(
        cmp["summary"],
        json!({"newFailures": 2, "fixed": 1, "stillFailing": 0, "added": 1, "removed": 1,
               "unchanged": 2, "flaky": 1}),
        "{}",
        out.stdout
    );
    assert_eq!(names(&cmp, "newFailure"), ["login", "total"]);
    assert_eq!(names(&cmp, "fixed"), ["refund"]);
    assert_eq!(names(&cmp, "added"), ["export"]);
    assert_eq!(names(&cmp, "removed"), ["legacy"]);
    assert_eq!(
        names(&cmp, "unchanged"),
        ["search"],
        "only the flaky one is listed"
    );
    let login = cmp["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "login")
        .unwrap();
    assert_eq!(login["identity"], "allure:77");
    let jobs: Vec<(&str, &str)> = login["head"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["job"].as_str().unwrap(), o["status"].as_str().unwrap()))
        .collect();
    assert_eq!(jobs.len(), 2, "{login}");
    assert!(
        jobs.contains(&("acme/shop - Windows", "failed")),
        "{jobs:?}"
    );
    assert!(jobs.iter().any(|(_, s)| *s == "passed"), "{jobs:?}");
    let gitlab_job = jobs
        .iter()
        .find(|(_, s)| *s == "passed")
        .unwrap()
        .0
        .to_string();
    // The text form names the categories.
    let text = server
        .cli()
        .run(&["launch", "compare", &a.to_string(), &b.to_string()])
        .ok()
        .stdout;
    assert!(
        text.contains("New failures:") && text.contains("failed → passed"),
        "{text}"
    );

    // The compare page in the browser.
    if crate::web_ui::browser_ready() {
        let shots = repo().join("target/screenshots/compare");
        let out = Command::new("node")
            .arg("compare.mjs")
            .current_dir(repo().join("tests/browser"))
            .env("OL_URL", &server.url)
            .env("OL_TOKEN", TOKEN)
            .env("OL_BASE", a.to_string())
            .env("OL_BASE_NAME", "Nightly 41")
            .env("OL_HEAD", b.to_string())
            .env("OL_HEAD_NAME", "Nightly 42")
            .env(
                "OL_EXPECT",
                json!({"newFailure": ["login", "total"], "fixed": ["refund"], "stillFailing": [],
                       "added": ["export"], "removed": ["legacy"], "unchanged": ["search"]})
                .to_string(),
            )
            .env("OL_FLAKY", "search")
            .env(
                "OL_TWO_JOBS",
                json!({"test": "login", "jobs": [["acme/shop - Windows", "failed"], [gitlab_job, "passed"]]})
                    .to_string(),
            )
            .env("OL_SCREENSHOTS", &shots)
            .output()
            .expect("run node");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{stdout}");
        assert!(
            out.status.success(),
            "browser compare failed (screenshots in {}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
            shots.display(),
            server.log()
        );
    }

    // Combine the two launches.
    let before_a = snapshot(&api, a);
    let before_b = snapshot(&api, b);
    let blobs = blob_files(server.work_dir());
    assert_eq!(blobs.len(), 2, "{blobs:?}");
    let out = server
        .cli()
        .run(&[
            "-o",
            "json",
            "launch",
            "combine",
            &a.to_string(),
            &b.to_string(),
            "--launch-name",
            "Nightly 41 + 42",
        ])
        .ok();
    let combined: Value = serde_json::from_str(&out.stdout).expect("combine -o json prints JSON");
    let c = combined["id"].as_i64().unwrap();
    assert_eq!(combined["name"], "Nightly 41 + 42");
    assert_eq!(combined["combinedFrom"], json!([a, b]));

    // Counts add up exactly.
    let mut sum: BTreeMap<String, i64> = api.statistic(a);
    for (s, n) in api.statistic(b) {
        *sum.entry(s).or_insert(0) += n;
    }
    assert_eq!(api.statistic(c), sum);
    assert_eq!(
        sum,
        BTreeMap::from([("passed".into(), 10), ("failed".into(), 3)])
    );
    assert_eq!(
        api.results(c).len(),
        api.results(a).len() + api.results(b).len()
    );
    assert_eq!(api.job_runs(c).len(), 3, "each source's job runs kept");
    // Attachments are shared: readable from the combined launch, no new file.
    let snap_c = snapshot(&api, c);
    assert!(
        snap_c.contains("total log 41") && snap_c.contains("cart log 42"),
        "{snap_c}"
    );
    assert_eq!(blob_files(server.work_dir()), blobs, "no bytes copied");

    // The sources are unchanged and link to the combined launch.
    assert_eq!(snapshot(&api, a), before_a);
    assert_eq!(snapshot(&api, b), before_b);
    for l in [a, b] {
        assert_eq!(
            api.get(&format!("/api/launch/{l}"))["combinedInto"],
            json!([c])
        );
    }
    // The text form.
    let text = server
        .cli()
        .run(&[
            "launch",
            "combine",
            &a.to_string(),
            &b.to_string(),
            "--launch-name",
            "again",
        ])
        .ok()
        .stdout;
    assert!(
        text.contains(&format!("combined from [{a}], [{b}]")),
        "{text}"
    );

    // Deleting the combined launch removes no source result or attachment.
    let r = api
        .http
        .delete(format!("{}/api/launch/{c}", api.url))
        .header("Authorization", format!("api-token {}", api.token))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(api.get_raw(&format!("/api/launch/{c}")).0, 404);
    assert_eq!(snapshot(&api, a), before_a);
    assert_eq!(snapshot(&api, b), before_b);
    assert_eq!(blob_files(server.work_dir()), blobs);
}

/// A combined launch and its links move to PostgreSQL with `server migrate`.
#[test]
fn a_combined_launch_moves_to_postgres() {
    let Some(pg) = crate::pg::PgCluster::start() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let (a, b, c, before) = {
        let server = TestServer::start_in(Some(data.path()), &[]);
        let api = server.api();
        let dir = fixture("examples/pipelines/gitlab-api/results");
        let mut ids = Vec::new();
        for (pipeline, name) in [("5", "Nightly 1"), ("6", "Nightly 2")] {
            let gl = server.cli().gitlab(pipeline);
            gl.run(&["upload", dir.to_str().unwrap(), "--launch-name", name])
                .ok();
            ids.push(
                parse_env(&gl.run(&["job-run", "env"]).ok().stdout)["ALLURE_LAUNCH_ID"].clone(),
            );
        }
        let out = server
            .cli()
            .run(&[
                "-o",
                "json",
                "launch",
                "combine",
                &ids[0],
                &ids[1],
                "--launch-name",
                "Both",
            ])
            .ok();
        let c = serde_json::from_str::<Value>(&out.stdout).unwrap()["id"]
            .as_i64()
            .unwrap();
        let before = (
            api.statistic(c),
            api.get(&format!("/api/launch/{}", ids[0]))["combinedInto"].clone(),
        );
        assert_eq!(before.0["passed"], 8, "{before:?}");
        (ids[0].clone(), ids[1].clone(), c, before)
    };
    let target = pg.database("combined");
    let sqlite = format!("sqlite://{}", data.path().join("onelaunch.db").display());
    let r = Cli::new("http://unused", TOKEN)
        .run(&["server", "migrate", "--from", &sqlite, "--to", &target])
        .ok();
    assert!(r.stdout.contains("launch_sources: 2"), "{}", r.stdout);
    let server = TestServer::start_in(Some(data.path()), &["--database-url", &target]);
    let api = server.api();
    let after = (
        api.statistic(c),
        api.get(&format!("/api/launch/{a}"))["combinedInto"].clone(),
    );
    assert_eq!(after, before);
    assert_eq!(
        api.get(&format!("/api/launch/{c}"))["combinedFrom"],
        json!([a.parse::<i64>().unwrap(), b.parse::<i64>().unwrap()])
    );
    let cmp = server
        .cli()
        .run(&["-o", "json", "launch", "compare", &a, &c.to_string()])
        .ok();
    assert!(
        cmp.stdout.contains("\"unchanged\": 4") && cmp.stdout.contains("\"stillFailing\": 1"),
        "{}",
        cmp.stdout
    );
}
