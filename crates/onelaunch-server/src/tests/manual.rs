//! The manual half of a launch: who does which manual case (plan defaults,
//! run-time assignees, assignment on the launch), manual results with comment,
//! duration, who recorded them and attachments, new attempts, the filters and
//! progress per assignee, project scoping, and recording as launch activity
//! that keeps the idle closer away.

use std::time::Duration;

use axum::http::Method;
use serde_json::{json, Value};

use super::{Reply, TestApp};

async fn launch(app: &TestApp, token: &str, project: i64, name: &str) -> i64 {
    app.post(
        "/api/launch",
        token,
        &json!({"name": name, "projectId": project}),
    )
    .await
    .expect(200)
    .id("id")
}

async fn record(app: &TestApp, token: &str, launch: i64, result: Value) -> Reply {
    app.post(
        &format!("/api/launch/{launch}/manual"),
        token,
        &json!({ "results": [result] }),
    )
    .await
}

async fn is_closed(app: &TestApp, tok: &str, l: i64) -> bool {
    app.get(&format!("/api/launch/{l}"), tok)
        .await
        .expect(200)
        .body["closed"]
        == true
}

fn case(view: &Value, id: i64) -> &Value {
    view["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["testCaseId"] == id)
        .unwrap_or_else(|| panic!("case {id} not in {view}"))
}

fn ids(view: &Value) -> Vec<i64> {
    view["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["testCaseId"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn manual_cases_are_assigned_recorded_in_attempts_and_filtered() {
    assigned_recorded_filtered(&TestApp::new().await).await;
}

#[tokio::test]
async fn manual_cases_on_postgres() {
    let Some(cluster) = super::pg::PgCluster::start() else {
        return;
    };
    let app = TestApp::on_postgres(&cluster, "manual").await;
    assigned_recorded_filtered(&app).await;
    app.state.db.write.close().await;
    drop(cluster);
}

async fn assigned_recorded_filtered(app: &TestApp) {
    let p = app.create_project("manual").await;
    let tok = app.project_token(p).await;
    // Three cases, learned from manual results by name in a first launch.
    let first = launch(app, &tok, p, "learn").await;
    let mut c = Vec::new();
    for n in ["login", "checkout", "search"] {
        let r = record(app, &tok, first, json!({"name": n, "status": "passed"}))
            .await
            .expect(200);
        c.push(r.body[0]["testCaseId"].as_i64().unwrap());
    }
    // A plan of the three (run by hand), default assignees for two.
    let plan = app
        .post(
            "/api/testplan",
            &tok,
            &json!({"projectId": p, "name": "release", "testCaseIds": c}),
        )
        .await
        .expect(200)
        .id("id");
    let set = app
        .json(
            Method::PUT,
            &format!("/api/testplan/{plan}/manual-assignee"),
            &tok,
            &json!({"assignments": [
                {"testCaseId": c[0], "assignee": "alice"},
                {"testCaseId": c[1], "assignee": "bob"},
            ]}),
        )
        .await
        .expect(200);
    assert_eq!(set.body["assignments"].as_array().unwrap().len(), 2);
    // The run gives the second case to carol instead.
    let run = app
        .post(
            &format!("/api/testplan/{plan}/run"),
            &tok,
            &json!({"launchName": "release 1",
                    "manualAssignees": [{"testCaseId": c[1], "assignee": "carol"}]}),
        )
        .await
        .expect(200);
    let l = run.body["launch"]["id"].as_i64().unwrap();
    let view = app
        .get(&format!("/api/launch/{l}/manual"), &tok)
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&view), c, "{view}");
    assert_eq!(case(&view, c[0])["assignee"], "alice");
    assert_eq!(case(&view, c[1])["assignee"], "carol");
    assert_eq!(case(&view, c[2])["assignee"], Value::Null);
    assert_eq!(
        view["progress"],
        json!([
            {"assignee": "alice", "done": 0, "total": 1},
            {"assignee": "carol", "done": 0, "total": 1},
            {"assignee": null, "done": 0, "total": 1},
        ])
    );

    // alice records the first case, then records it again (a new attempt).
    let r1 = record(
        app,
        &tok,
        l,
        json!({"testCaseId": c[0], "status": "failed", "comment": "button missing",
               "assignee": "alice", "durationMs": 5000}),
    )
    .await
    .expect(200);
    let first_attempt = r1.body[0]["id"].as_i64().unwrap();
    assert_eq!(r1.body[0]["assignee"], "alice");
    assert_eq!(r1.body[0]["durationMs"], 5000);
    assert_eq!(r1.body[0]["message"], "button missing");
    let r2 = record(
        app,
        &tok,
        l,
        json!({"testCaseId": c[0], "status": "passed", "assignee": "alice", "durationMs": 1000}),
    )
    .await
    .expect(200);
    let second_attempt = r2.body[0]["id"].as_i64().unwrap();
    // An attachment of the manual result, stored like any result's.
    app.upload(
        &format!("/api/upload/test-result/{second_attempt}/attachment"),
        &tok,
        "screen.txt",
        "looks right",
    )
    .await
    .expect(202);
    let detail = app
        .get(&format!("/api/testresult/{second_attempt}"), &tok)
        .await
        .expect(200);
    assert_eq!(detail.body["attachments"].as_array().unwrap().len(), 1);
    // The assignment of the third case, on the launch.
    app.post(
        &format!("/api/launch/{l}/manual/assignee"),
        &tok,
        &json!({"assignments": [{"testCaseId": c[2], "assignee": "bob"}]}),
    )
    .await
    .expect(200);

    let view = app
        .get(&format!("/api/launch/{l}/manual"), &tok)
        .await
        .expect(200)
        .body;
    let first = case(&view, c[0]);
    assert_eq!(first["status"], "passed", "the latest attempt decides");
    assert_eq!(first["attempts"], 2);
    assert_eq!(first["resultId"], second_attempt);
    let results: Vec<i64> = view["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        results,
        vec![first_attempt, second_attempt],
        "earlier attempt kept"
    );
    assert_eq!(
        view["progress"],
        json!([
            {"assignee": "alice", "done": 1, "total": 1},
            {"assignee": "bob", "done": 0, "total": 1},
            {"assignee": "carol", "done": 0, "total": 1},
        ])
    );
    // The launch statistic counts the case once (its latest result).
    let stat = app
        .get(&format!("/api/launch/{l}/statistic/manual"), &tok)
        .await
        .expect(200);
    assert_eq!(stat.body, json!([{"status": "passed", "count": 1}]));

    // Filters.
    let only = |q: &'static str| {
        let tok = tok.clone();
        async move {
            app.get(&format!("/api/launch/{l}/manual?{q}"), &tok)
                .await
                .expect(200)
                .body
        }
    };
    assert_eq!(ids(&only("state=left").await), vec![c[1], c[2]]);
    assert_eq!(ids(&only("state=done").await), vec![c[0]]);
    let bob = only("assignee=bob").await;
    assert_eq!(ids(&bob), vec![c[2]]);
    assert!(bob["results"].as_array().unwrap().is_empty());
    assert_eq!(
        bob["progress"].as_array().unwrap().len(),
        3,
        "never filtered"
    );
    assert_eq!(
        only("assignee=alice").await["results"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(ids(&only("assignee=alice&state=left").await).is_empty());
    let bad = app
        .get(&format!("/api/launch/{l}/manual?state=someday"), &tok)
        .await
        .expect(400);
    assert!(bad.message().contains("left or done"), "{}", bad.message());

    // Taking a case back.
    app.post(
        &format!("/api/launch/{l}/manual/assignee"),
        &tok,
        &json!({"assignments": [{"testCaseId": c[2], "assignee": " "}]}),
    )
    .await
    .expect(200);
    assert_eq!(ids(&only("assignee=bob").await), Vec::<i64>::new());
}

#[tokio::test]
async fn bad_manual_input_is_a_4xx_naming_the_field_and_scoping_holds() {
    let app = TestApp::new().await;
    let p = app.create_project("one").await;
    let q = app.create_project("two").await;
    let tok = app.project_token(p).await;
    let other = app.project_token(q).await;
    let l = launch(&app, &tok, p, "mine").await;
    let theirs = launch(&app, &other, q, "theirs").await;
    let their_case = record(
        &app,
        &other,
        theirs,
        json!({"name": "x", "status": "passed"}),
    )
    .await
    .expect(200)
    .body[0]["testCaseId"]
        .as_i64()
        .unwrap();
    for (body, field) in [
        (
            json!({"name": "a", "status": "passed", "durationMs": -1}),
            "results[0].durationMs",
        ),
        (
            json!({"name": "a", "status": "passed", "assignee": "a\u{7}b"}),
            "results[0].assignee",
        ),
        (
            json!({"name": "a", "status": "passed", "assignee": "x".repeat(300)}),
            "results[0].assignee",
        ),
    ] {
        let r = record(&app, &tok, l, body).await.expect(400);
        assert!(r.message().contains(field), "{field}: {}", r.message());
    }
    let r = app
        .post(
            &format!("/api/launch/{l}/manual/assignee"),
            &tok,
            &json!({"assignments": []}),
        )
        .await
        .expect(400);
    assert!(r.message().contains("assignments"), "{}", r.message());
    // Another project's case or launch answers like an unknown one.
    let r = app
        .post(
            &format!("/api/launch/{l}/manual/assignee"),
            &tok,
            &json!({"assignments": [{"testCaseId": their_case, "assignee": "me"}]}),
        )
        .await
        .expect(400);
    assert!(r.message().contains("not found"), "{}", r.message());
    app.get(&format!("/api/launch/{theirs}/manual"), &tok)
        .await
        .expect(404);
    app.post(
        &format!("/api/launch/{theirs}/manual/assignee"),
        &tok,
        &json!({"assignments": [{"testCaseId": their_case, "assignee": "me"}]}),
    )
    .await
    .expect(404);
    // A closed launch takes no assignment.
    app.post(&format!("/api/launch/{theirs}/close"), &other, &json!({}))
        .await
        .expect(204);
    let r = app
        .post(
            &format!("/api/launch/{theirs}/manual/assignee"),
            &other,
            &json!({"assignments": [{"testCaseId": their_case, "assignee": "me"}]}),
        )
        .await
        .expect(409);
    assert_eq!(r.code(), Some("launch_closed"));
}

/// A tester recording results (and assigning cases) is activity: the idle
/// closer leaves the launch open while they work, and closes it once they stop.
#[tokio::test]
async fn recording_manual_results_keeps_the_idle_closer_away() {
    let app = TestApp::new().await;
    let p = app.create_project("idle").await;
    let tok = app.project_token(p).await;
    let l = launch(&app, &tok, p, "by hand").await;
    let idle = Duration::from_millis(2000);
    let closer = crate::closing::spawn_idle_closer(app.state.db.clone(), idle);
    // Work for three idle periods: a result or an assignment every 300 ms.
    for i in 0..20 {
        if i % 2 == 0 {
            record(
                &app,
                &tok,
                l,
                json!({"name": format!("step {i}"), "status": "passed", "assignee": "tess"}),
            )
            .await
            .expect(200);
        } else {
            let c = app
                .get(&format!("/api/launch/{l}/manual"), &tok)
                .await
                .expect(200)
                .body["cases"][0]["testCaseId"]
                .as_i64()
                .unwrap();
            app.post(
                &format!("/api/launch/{l}/manual/assignee"),
                &tok,
                &json!({"assignments": [{"testCaseId": c, "assignee": "tess"}]}),
            )
            .await
            .expect(200);
        }
        assert!(
            !is_closed(&app, &tok, l).await,
            "closed while a tester works (step {i})"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Once the tester stops, the launch is closed (bounded wait).
    let mut gone_idle = false;
    for _ in 0..100 {
        if is_closed(&app, &tok, l).await {
            gone_idle = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    closer.abort();
    assert!(gone_idle, "the idle launch was never closed");
}
