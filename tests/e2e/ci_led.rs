//! The CI-led shared launch, end to end: a GitHub start job, two GitHub shards
//! and a GitLab pipeline uploading in parallel into ONE launch.

use std::collections::BTreeMap;

use crate::support::*;

#[test]
fn github_start_two_shards_and_gitlab_pipeline_share_one_launch() {
    let server = TestServer::start();
    let api = server.api();
    let base = server.cli();
    let mut outputs = Vec::new();

    // Upstream job: create the launch and the first job run, publish the ids.
    let start = base.clone().github("9001", "start");
    let r = start
        .run(&[
            "job-run",
            "start",
            "--launch-name",
            "Release 1.2 validation",
            "--launch-tags",
            "release, nightly",
        ])
        .ok();
    assert!(r.stdout.contains("Jobrun["), "{}", r.stdout);
    outputs.push(r);
    let env_run = start.run(&["job-run", "env"]).ok();
    let env = parse_env(&env_run.stdout);
    outputs.push(env_run);
    let launch_id: i64 = env["ALLURE_LAUNCH_ID"].parse().unwrap();
    let job_run_id: i64 = env["ALLURE_JOB_RUN_ID"].parse().unwrap();
    for k in [
        "ALLURE_ENDPOINT",
        "ALLURE_PROJECT_ID",
        "ALLURE_LAUNCH_NAME",
        "ALLURE_LAUNCH_URL",
        "ALLURE_JOB_RUN_URL",
    ] {
        assert!(env.contains_key(k), "job-run env lacks {k}");
    }
    assert!(!env.contains_key("ALLURE_TOKEN"));

    // Downstream: two GitHub shards of the same workflow run (they see the ids)
    // and a GitLab pipeline that only sees the launch id, all at once.
    let pytest = fixture("tests/fixtures/allure-pytest");
    let e2e = fixture("examples/pipelines/github-e2e/allure-results");
    let junit = fixture("examples/pipelines/gitlab-api/results");
    let shard = |job: &str| {
        base.clone()
            .github("9001", job)
            .env("ALLURE_LAUNCH_ID", launch_id)
            .env("ALLURE_JOB_RUN_ID", job_run_id)
    };
    let s1 = shard("shard-1");
    let s2 = shard("shard-2");
    let gl = base
        .clone()
        .gitlab("777")
        .env("ALLURE_LAUNCH_ID", launch_id);
    let (p1, p2, p3) = (pytest.clone(), e2e.clone(), junit.clone());
    let h1 = std::thread::spawn(move || s1.run(&["upload", p1.to_str().unwrap()]));
    let h2 = std::thread::spawn(move || s2.run(&["upload", p2.to_str().unwrap()]));
    let h3 = std::thread::spawn(move || gl.run(&["upload", p3.to_str().unwrap()]));
    for h in [h1, h2, h3] {
        let r = h.join().unwrap().ok();
        assert!(
            r.stdout.contains(&format!("/launch/{launch_id}")),
            "{}",
            r.stdout
        );
        outputs.push(r);
    }

    // Finish: stop the job run and close the launch.
    outputs.push(
        start
            .clone()
            .env("ALLURE_JOB_RUN_ID", job_run_id)
            .run(&["job-run", "stop"])
            .ok(),
    );
    outputs.push(start.run(&["launch", "close", &launch_id.to_string()]).ok());

    // Exactly one launch, closed, with exact counts.
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    assert_eq!(launches[0]["id"], launch_id);
    assert_eq!(launches[0]["closed"], true);
    assert_eq!(launches[0]["name"], "Release 1.2 validation");
    let tags: Vec<&str> = launches[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["release", "nightly"]);

    let results = api.results(launch_id);
    let allure_files = count_files(&pytest, "-result.json") + count_files(&e2e, "-result.json");
    let junit_cases = 5;
    assert_eq!(results.len(), allure_files + junit_cases);

    let mut expected = expected_statistic(&[&pytest, &e2e]);
    // The JUnit pipeline: 4 passed, 1 failure.
    *expected.entry("passed".into()).or_insert(0) += 4;
    *expected.entry("failed".into()).or_insert(0) += 1;
    assert_eq!(api.statistic(launch_id), expected);
    // Reruns of allure-pytest are retries, not extra tests.
    assert!(results.iter().any(|r| r["retry"] == true));

    // Two job runs: the GitHub workflow run (start + shards) and the GitLab pipeline.
    let runs = api.job_runs(launch_id);
    assert_eq!(runs.len(), 2, "{runs:?}");
    let by_uid: BTreeMap<String, &serde_json::Value> = runs
        .iter()
        .map(|r| (r["externalId"].as_str().unwrap().to_string(), r))
        .collect();
    let gh = by_uid["9001"];
    assert_eq!(gh["id"], job_run_id);
    assert_eq!(gh["resultCount"].as_i64().unwrap() as usize, allure_files);
    assert_eq!(gh["stage"], "finished");
    assert_eq!(gh["job"]["type"], "github");
    let glr = by_uid["777"];
    assert_eq!(glr["resultCount"], junit_cases);
    assert_eq!(glr["job"]["type"], "gitlab");
    assert_eq!(
        glr["stage"], "finished",
        "an upload finishes the job run it started"
    );

    // Attachments and fixtures arrived.
    let with_attachments = results
        .iter()
        .filter(|r| r["attachmentCount"].as_i64().unwrap() > 0)
        .count();
    assert!(with_attachments >= 2);
    assert!(results
        .iter()
        .any(|r| r["fixtureCount"].as_i64().unwrap() > 0));

    // The token appears in no output of any command nor in the server log.
    for o in &outputs {
        assert!(!o.all().contains(TOKEN), "token leaked: {}", o.all());
    }
    assert!(
        !server.log().contains(TOKEN),
        "token leaked into the server log"
    );
}

#[test]
fn export_of_job_run_env_survives_spaces_and_metacharacters() {
    let server = TestServer::start();
    let api = server.api();
    let name = "Release 1.2 * [rc] \"quoted\" $HOME; rm -rf x";
    let ci = server
        .cli()
        .github("555", "start")
        .env("RELEASE_NAME", name);
    let dir = server.work_dir().join("glob-bait");
    std::fs::create_dir_all(&dir).unwrap();
    // Files a stray glob would match.
    for f in ["Release", "1.2", "rc", "r", "c"] {
        std::fs::write(dir.join(f), "x").unwrap();
    }
    let mut ci = ci;
    ci.cwd = Some(dir.clone());
    let results = fixture("examples/pipelines/github-unit/allure-results");
    let script = format!(
        r#"set -eu
onelaunch job-run start --launch-name "$RELEASE_NAME" >/dev/null
export $(onelaunch job-run env)
echo "launch=$ALLURE_LAUNCH_ID run=$ALLURE_JOB_RUN_ID"
onelaunch upload '{}'
"#,
        results.display()
    );
    let r = ci.bash(&script).ok();
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1);
    assert_eq!(launches[0]["name"], name, "the launch keeps its exact name");
    let id = launches[0]["id"].as_i64().unwrap();
    assert!(
        r.stdout.contains(&format!("launch={id} run=")),
        "{}",
        r.stdout
    );
    assert_eq!(
        api.results(id).len(),
        count_files(&results, "-result.json"),
        "upload after export joined the launch"
    );

    // The exact value is available with --format shell (eval) and json.
    let r = ci
        .bash(
            "eval \"$(onelaunch job-run env --format shell)\"; printf '%s' \"$ALLURE_LAUNCH_NAME\"",
        )
        .ok();
    assert_eq!(r.stdout, name);
    let r = ci.run(&["job-run", "env", "--format", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ALLURE_LAUNCH_NAME"], name);
    assert_eq!(v["ALLURE_LAUNCH_ID"], id.to_string());
}

#[test]
fn upload_alone_creates_the_shared_context_and_concurrent_starts_join_it() {
    let server = TestServer::start();
    let api = server.api();
    let ci = server.cli().github("31337", "tests");
    // Eight jobs of the same run start at once: one job, one job run, one launch.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let c = ci.clone().env("GITHUB_JOB", format!("job-{i}"));
            std::thread::spawn(move || c.run(&["job-run", "start", "--launch-name", "Nightly"]))
        })
        .collect();
    for h in handles {
        h.join().unwrap().ok();
    }
    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "{launches:?}");
    let id = launches[0]["id"].as_i64().unwrap();
    assert_eq!(api.job_runs(id).len(), 1);

    // A different workflow run with only `upload`: it creates its own launch and job run.
    let other = server.cli().github("31338", "tests");
    let results = fixture("examples/pipelines/github-e2e/allure-results");
    let r = other
        .run(&[
            "upload",
            results.to_str().unwrap(),
            "--launch-name",
            "Other",
        ])
        .ok();
    let launches = api.launches(1);
    assert_eq!(launches.len(), 2);
    let new_id = launches[0]["id"].as_i64().unwrap();
    assert!(r.stdout.contains(&format!("/launch/{new_id}")));
    // and downstream jobs find it through `job-run env`.
    let env = parse_env(&other.run(&["job-run", "env"]).ok().stdout);
    assert_eq!(env["ALLURE_LAUNCH_ID"], new_id.to_string());
}
