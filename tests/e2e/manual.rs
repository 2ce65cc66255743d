//! The manual half of a combined launch through the real CLI and the real
//! browser: a plan run gives manual cases to people (`plan run --assignee`),
//! `result assign` moves one, `result manual --assignee --comment
//! --duration-ms --attach` records results, `result list` shows progress per
//! assignee and what is left; in headless Chromium two testers record their
//! results from the launch page and see their progress
//! (tests/browser/manual.mjs).

use std::process::Command;

use serde_json::{json, Value};

use crate::support::*;

/// Three manual test cases (learned from manual results by name in a first
/// launch) and a plan of them; answers (case ids by name, plan id).
fn manual_plan(server: &TestServer) -> (Vec<(String, i64)>, i64) {
    let api = server.api();
    let learn = api.post("/api/launch", &json!({"name": "learn", "projectId": 1}))["id"]
        .as_i64()
        .unwrap();
    let mut cases = Vec::new();
    for n in ["login works", "checkout works", "search works"] {
        let r = api.post(
            &format!("/api/launch/{learn}/manual"),
            &json!({"results": [{"name": n, "status": "passed"}]}),
        );
        cases.push((n.to_string(), r[0]["testCaseId"].as_i64().unwrap()));
    }
    let ids: Vec<i64> = cases.iter().map(|c| c.1).collect();
    let plan = api.post(
        "/api/testplan",
        &json!({"projectId": 1, "name": "Release by hand", "testCaseIds": ids}),
    )["id"]
        .as_i64()
        .unwrap();
    (cases, plan)
}

#[test]
fn manual_cases_are_assigned_recorded_and_listed_from_the_cli() {
    let server = TestServer::start();
    let api = server.api();
    let (cases, plan) = manual_plan(&server);
    let (login, checkout, search) = (cases[0].1, cases[1].1, cases[2].1);
    let run = server
        .cli()
        .run(&[
            "-o",
            "json",
            "plan",
            "run",
            &plan.to_string(),
            "--launch-name",
            "Release 3",
            "--assignee",
            &format!("{login}=alice"),
            "--assignee",
            &format!("{checkout}=bob"),
        ])
        .ok();
    let run: Value = serde_json::from_str(&run.stdout).unwrap();
    let launch = run["launch"]["id"].as_i64().unwrap().to_string();
    server
        .cli()
        .run(&[
            "result",
            "assign",
            "--launch-id",
            &launch,
            &format!("{search}=alice"),
        ])
        .ok();
    // A wrong pair is a usage error naming the flag.
    let bad = server
        .cli()
        .run(&["result", "assign", "--launch-id", &launch, "alice"])
        .code(2);
    assert!(bad.stderr.contains("CASE_ID=NAME"), "{}", bad.stderr);

    let shot = server.work_dir().join("login.txt");
    std::fs::write(&shot, "the login page looked right").unwrap();
    let recorded = server
        .cli()
        .run(&[
            "result",
            "manual",
            "--launch-id",
            &launch,
            "--case",
            &login.to_string(),
            "--status",
            "failed",
            "--comment",
            "the button is missing",
            "--assignee",
            "alice",
            "--duration-ms",
            "90000",
        ])
        .ok();
    assert!(recorded.stdout.contains("failed"), "{}", recorded.stdout);
    // alice checks again (a new attempt) and attaches what she saw.
    server
        .cli()
        .run(&[
            "result",
            "manual",
            "--launch-id",
            &launch,
            "--case",
            &login.to_string(),
            "--status",
            "passed",
            "--assignee",
            "alice",
            "--attach",
            shot.to_str().unwrap(),
        ])
        .ok();

    let list = server
        .cli()
        .run(&["result", "list", "--launch-id", &launch])
        .ok()
        .stdout;
    assert!(list.contains("alice: 1 of 2 done"), "{list}");
    assert!(list.contains("bob: 0 of 1 done"), "{list}");
    let left = server
        .cli()
        .run(&[
            "result",
            "list",
            "--launch-id",
            &launch,
            "--assignee",
            "alice",
            "--left",
        ])
        .ok()
        .stdout;
    assert!(
        left.contains("search works") && !left.contains("login works"),
        "{left}"
    );

    let view: Value = serde_json::from_str(
        &server
            .cli()
            .run(&[
                "-o",
                "json",
                "result",
                "list",
                "--launch-id",
                &launch,
                "--done",
            ])
            .ok()
            .stdout,
    )
    .unwrap();
    let done = &view["cases"][0];
    assert_eq!(done["testCaseId"], login);
    assert_eq!(done["status"], "passed");
    assert_eq!(done["attempts"], 2);
    let results = view["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "both attempts are kept: {view}");
    assert_eq!(results[0]["message"], "the button is missing");
    assert_eq!(results[0]["durationMs"], 90000);
    assert_eq!(results[0]["assignee"], "alice");
    let detail = api.get(&format!("/api/testresult/{}", done["resultId"]));
    let files: Vec<&str> = detail["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(files, vec!["login.txt"], "{detail}");
}

#[test]
fn two_testers_record_manual_results_from_the_launch_page() {
    if !crate::web_ui::browser_ready() {
        return;
    }
    let server = TestServer::start();
    let api = server.api();
    let (cases, plan) = manual_plan(&server);
    // The plan gives login and search to alice, checkout to bob (the CLI's
    // `plan assign`); an empty name takes a case back.
    let plan_arg = plan.to_string();
    let pair = |i: usize, who: &str| format!("{}={who}", cases[i].1);
    let cli = server.cli();
    cli.run(&[
        "plan",
        "assign",
        &plan_arg,
        &pair(0, "alice"),
        &pair(1, "carol"),
    ])
    .ok();
    let set = cli
        .run(&[
            "plan",
            "assign",
            &plan_arg,
            &pair(1, "bob"),
            &pair(2, "alice"),
        ])
        .ok();
    for (i, who) in [(0, "alice"), (1, "bob"), (2, "alice")] {
        assert!(
            set.stdout.contains(&format!("{}\t{who}", cases[i].1)),
            "{}",
            set.all()
        );
    }
    assert!(!set.stdout.contains("carol"), "{}", set.all());
    let bad = cli.run(&["plan", "assign", &plan_arg, "alice"]).code(2);
    assert!(
        bad.stderr.contains("expected CASE_ID=NAME"),
        "{}",
        bad.all()
    );
    let run = api.post(
        &format!("/api/testplan/{plan}/run"),
        &json!({"launchName": "Release by hand 1"}),
    );
    let launch = run["launch"]["id"].as_i64().unwrap();
    let shots = repo().join("target/screenshots/manual");
    let out = Command::new("node")
        .arg("manual.mjs")
        .current_dir(repo().join("tests/browser"))
        .env("OL_URL", &server.url)
        .env("OL_TOKEN", TOKEN)
        .env("OL_LAUNCH_ID", launch.to_string())
        .env("OL_ALICE_CASE", cases[0].1.to_string())
        .env("OL_BOB_CASE", cases[1].1.to_string())
        .env("OL_LEFT_CASE", &cases[2].0)
        .env("OL_SCREENSHOTS", &shots)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "browser test failed (screenshots in {}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
        shots.display(),
        server.log()
    );
    // What the browser recorded is what the API answers.
    let view = api.get(&format!("/api/launch/{launch}/manual"));
    assert_eq!(
        view["progress"],
        json!([
            {"assignee": "alice", "done": 1, "total": 2},
            {"assignee": "bob", "done": 1, "total": 1},
        ]),
        "{view}"
    );
    let by: Vec<&str> = view["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["assignee"].as_str().unwrap())
        .collect();
    assert_eq!(by, vec!["alice", "bob"]);
    // Alice's file arrived as an attachment of her result.
    let alice = view["results"][0]["id"].as_i64().unwrap();
    let detail = api.get(&format!("/api/testresult/{alice}"));
    let attachments = detail["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{detail}");
    assert_eq!(attachments[0]["fileName"], "what-alice-saw.txt");
    assert_eq!(attachments[0]["contentType"], "text/plain");
    let content = api
        .http
        .get(format!(
            "{}/api/attachment/{}/content",
            api.url, attachments[0]["id"]
        ))
        .header("Authorization", format!("api-token {}", api.token))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(content, "SSO page, then the dashboard");
    let bob = view["results"][1]["id"].as_i64().unwrap();
    let detail = api.get(&format!("/api/testresult/{bob}"));
    assert_eq!(
        detail["attachments"],
        json!([]),
        "an empty file input adds nothing"
    );
    assert!(
        !server.log().contains(TOKEN),
        "token leaked into the server log"
    );
}
