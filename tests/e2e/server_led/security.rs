//! A project token must not take the server over through server-led runs: it
//! never gets its own code run on the server host through a `command` job,
//! never makes the server send a stored credential to another address, and
//! never makes the server call (and read back) an address an admin did not
//! approve. Providers are [`Provider`]s on 127.0.0.1; the `command` is a real
//! `sh -c` script writing its environment to a file under the test's temp dir.

use super::*;

/// A project token for project 1.
fn project_token(api: &Api) -> String {
    api.post("/api/project/1/token", &json!({}))["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The GitHub job proven by one closed launch of uploaded results; its id.
fn proven_github_job(server: &TestServer, run: &str) -> i64 {
    let api = server.api();
    upload_as(
        server.cli().github(run, "tests"),
        &fixture("tests/fixtures/allure-pytest"),
    );
    let learned = api.launches(1)[0]["id"].as_i64().unwrap();
    server
        .cli()
        .run(&["launch", "close", &learned.to_string()])
        .ok();
    job_ids(&api)[GITHUB_JOB]
}

/// `POST /api/testcase/run` of case 101 with `environment`; (status, body).
fn run_with(api: &Api, env: &[(&str, &str)]) -> (u16, Value) {
    let environment: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let case = case_ids(api)["101"];
    api.post_raw(
        "/api/testcase/run",
        &json!({"projectId": 1, "testCaseIds": [case], "launchName": "Attempt",
            "environment": environment}),
    )
}

fn message(v: &Value) -> String {
    v["message"].as_str().unwrap_or_default().to_string()
}

/// Job runs of a launch as the given token sees them.
fn job_runs_as(api: &Api, launch: i64) -> Vec<Value> {
    api.job_runs(launch)
}

#[test]
fn a_project_token_cannot_change_how_a_command_runs_on_the_server() {
    let server = TestServer::start();
    let api = server.api();
    let gh = proven_github_job(&server, "9401");
    let out = server.work_dir().join("command-env");
    std::fs::create_dir_all(&out).unwrap();
    // What an attacker would point the loader and the shell at.
    let evil_dir = server.work_dir().join("evil");
    std::fs::create_dir_all(&evil_dir).unwrap();
    let evil_lib = evil_dir.join("libevil.so");
    std::fs::write(&evil_lib, b"\x7fELF not really").unwrap();

    // The admin's command writes its environment to a file per job run.
    api.patch_ok(
        &format!("/api/job/{gh}"),
        &json!({"canRunTests": true,
            "integration": {"type": "command",
                "command": "env > \"$OUT_DIR/.env-$ALLURE_JOB_RUN_ID\" && mv \"$OUT_DIR/.env-$ALLURE_JOB_RUN_ID\" \"$OUT_DIR/env-$ALLURE_JOB_RUN_ID.txt\""},
            "parameters": [
                {"name": "OUT_DIR", "value": out.display().to_string()},
                {"name": "SUITE", "value": "full"},
            ]}),
    );
    let proj = api.with_token(&project_token(&api));

    // LD_PRELOAD as a run variable: refused, naming the variable.
    let (s, v) = run_with(
        &proj,
        &[
            ("SUITE", "smoke"),
            ("OUT_DIR", &out.display().to_string()),
            ("LD_PRELOAD", &evil_lib.display().to_string()),
        ],
    );
    assert_eq!(s, 400, "{v}");
    assert!(
        message(&v).contains("environment[2].key \"LD_PRELOAD\""),
        "{v}"
    );
    // Other names that change how a process or the shell runs, also as
    // lower case.
    for name in ["PATH", "BASH_ENV", "ld_library_path", "PYTHONPATH", "HOME"] {
        let (s, v) = run_with(&proj, &[(name, &evil_dir.display().to_string())]);
        assert_eq!(s, 400, "{name}: {v}");
        assert!(
            message(&v).contains(&format!("environment[0].key {name:?}")),
            "{v}"
        );
    }
    // PATH as a job parameter: refused, naming it; with a project token even
    // a harmless parameter of a command job needs an admin.
    let (s, v) = proj.patch_raw(
        &format!("/api/job/{gh}"),
        &json!({"parameters": [{"name": "OUT_DIR", "value": out.display().to_string()},
            {"name": "PATH", "value": evil_dir.display().to_string()}]}),
    );
    assert_eq!(s, 400, "{v}");
    assert!(message(&v).contains("parameters[1].name \"PATH\""), "{v}");
    let (s, v) = proj.patch_raw(
        &format!("/api/job/{gh}"),
        &json!({"parameters": [{"name": "OUT_DIR", "value": evil_dir.display().to_string()}]}),
    );
    assert_eq!(s, 403, "{v}");
    assert!(message(&v).contains("admin token"), "{v}");
    // A variable the admin did not declare as a parameter of the command job.
    let (s, v) = run_with(&proj, &[("SUITE", "smoke"), ("SHELL_HOOK", "x")]);
    assert_eq!(s, 400, "{v}");
    assert!(
        message(&v).contains("environment[1].key \"SHELL_HOOK\" is not a parameter"),
        "{v}"
    );
    // Nothing ran.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);

    // A legit variable still reaches the command.
    let (s, v) = run_with(&proj, &[("SUITE", "smoke")]);
    assert_eq!(s, 200, "{v}");
    let run = v["jobRuns"][0]["jobRun"]["id"].as_i64().unwrap();
    let file = out.join(format!("env-{run}.txt"));
    let env = wait_for(
        &server,
        "the command's environment",
        Duration::from_secs(60),
        || std::fs::read_to_string(&file).ok(),
    );
    let env = parse_env(&env);
    assert_eq!(env["SUITE"], "smoke");
    assert_eq!(env["ALLURE_JOB_RUN_ID"], run.to_string());
    assert_eq!(env.get("PATH"), std::env::var("PATH").ok().as_ref());
    assert!(!env.contains_key("LD_PRELOAD"), "{env:?}");
    // The server's own settings (ONELAUNCH_LOG here, the init token, a
    // database URL) never reach a command.
    assert!(env.keys().all(|k| !k.starts_with("ONELAUNCH_")), "{env:?}");
    assert!(!env.values().any(|v| v.contains(TOKEN)), "{env:?}");
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(files.len(), 1, "only the legit run ran the command");
}

const STORED_SECRET: &str = "ghp_storedForAcmeShop987";

#[test]
fn a_stored_credential_never_follows_a_new_target() {
    // The listener's host is allowed (through the variable), so the URL
    // change itself is allowed: what is checked is the credential.
    let server =
        TestServer::start_with_env(&[], &[("ONELAUNCH_ALLOW_INTEGRATION_HOSTS", "127.0.0.1")]);
    let api = server.api();
    let gh = proven_github_job(&server, "9501");
    let (github, listener) = (Provider::start(), Provider::start());
    api.patch_ok(
        &format!("/api/job/{gh}"),
        &json!({"canRunTests": true, "integration": {"type": "github", "url": github.url,
            "repository": "acme/shop", "workflow": "tests.yml", "ref": "main",
            "credential": STORED_SECRET}}),
    );
    let proj = api.with_token(&project_token(&api));
    let settings = |url: &str, repository: &str, workflow: &str| {
        json!({"integration": {"type": "github", "url": url, "repository": repository,
            "workflow": workflow, "ref": "main"}})
    };

    // The URL moved to the project's listener (an allowed host), the
    // repository changed, or GitHub's default URL: the credential stays
    // behind, so the change is refused until one is given again.
    for (body, field) in [
        (settings(&listener.url, "acme/shop", "tests.yml"), "url"),
        (
            settings(&github.url, "attacker/repo", "tests.yml"),
            "repository",
        ),
        (
            json!({"integration": {"type": "github", "repository": "acme/shop",
                "workflow": "tests.yml", "ref": "main"}}),
            "url",
        ),
    ] {
        for put in [false, true] {
            let (s, v) = if put {
                proj.put_raw(&format!("/api/job/{gh}"), &body)
            } else {
                proj.patch_raw(&format!("/api/job/{gh}"), &body)
            };
            assert_eq!(s, 400, "{body}: {v}");
            let m = message(&v);
            assert!(m.contains("field `integration.credential`"), "{m}");
            assert!(m.contains(&format!("`integration.{field}` changed")), "{m}");
        }
    }
    // The workflow is not part of the target: the credential is kept.
    let v = proj.patch_ok(
        &format!("/api/job/{gh}"),
        &settings(&github.url, "acme/shop", "nightly.yml"),
    );
    assert_eq!(v["integration"]["hasCredential"], true, "{v}");

    let (s, v) = run_with(&proj, &[]);
    assert_eq!(s, 200, "{v}");
    let reqs = github.take();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        reqs[0].target,
        "/repos/acme/shop/actions/workflows/nightly.yml/dispatches"
    );
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {STORED_SECRET}").as_str())
    );
    assert!(listener.take().is_empty(), "the listener was called");

    // With its own credential the project may move the job to its host: the
    // stored one is replaced, never sent there.
    let v = proj.patch_ok(
        &format!("/api/job/{gh}"),
        &json!({"integration": {"type": "github", "url": listener.url, "repository": "acme/shop",
            "workflow": "tests.yml", "ref": "main", "credential": "project-own-token"}}),
    );
    assert_eq!(v["integration"]["hasCredential"], true);
    let (s, v) = run_with(&proj, &[]);
    assert_eq!(s, 200, "{v}");
    let reqs = listener.take();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        reqs[0].header("authorization"),
        Some("Bearer project-own-token")
    );
    for r in &reqs {
        assert!(
            !format!("{r:?}").contains(STORED_SECRET),
            "the stored credential reached the listener"
        );
    }
    assert!(github.take().is_empty());
}

const SECRET_BODY: &str = "internal-metadata-secret-42";

#[test]
fn provider_urls_need_an_admin_or_an_allowed_host_and_redirects_are_not_followed() {
    let mut server = TestServer::start();
    let api = server.api();
    let gh = proven_github_job(&server, "9601");
    let proj = api.with_token(&project_token(&api));
    let (internal, redirector, target) = (Provider::start(), Provider::start(), Provider::start());
    let github = |url: &str, credential: &str| {
        json!({"canRunTests": true, "integration": {"type": "github", "url": url,
            "repository": "acme/shop", "workflow": "tests.yml", "ref": "main",
            "credential": credential}})
    };

    // A loopback URL is not on the (empty) allow-list: refused, field named.
    let (s, v) = proj.patch_raw(&format!("/api/job/{gh}"), &github(&internal.url, "tok1"));
    assert_eq!(s, 403, "{v}");
    assert!(message(&v).contains("field `integration.url`"), "{v}");
    let (s, v) = proj.patch_raw(
        &format!("/api/job/{gh}"),
        &json!({"integration": {"type": "jenkins", "url": internal.url, "jobPath": "a"}}),
    );
    assert_eq!(s, 403, "{v}");
    assert!(message(&v).contains("field `integration.url`"), "{v}");
    // GitHub's public API needs no approval.
    let v = proj.patch_ok(
        &format!("/api/job/{gh}"),
        &json!({"integration": {"type": "github", "repository": "acme/shop",
            "workflow": "tests.yml", "ref": "main", "credential": "tok1"}}),
    );
    assert_eq!(v["integration"]["url"], Value::Null);

    // An admin's URL redirects: the redirect is not followed.
    redirector.reply(
        "/repos/acme/shop/actions/workflows/tests.yml/dispatches",
        302,
        "",
        &[(
            "Location",
            &format!(
                "{}/repos/acme/shop/actions/workflows/tests.yml/dispatches",
                target.url
            ),
        )],
    );
    api.patch_ok(&format!("/api/job/{gh}"), &github(&redirector.url, "tok2"));
    // A project token may keep the URL an admin set while changing the rest.
    proj.patch_ok(
        &format!("/api/job/{gh}"),
        &json!({"integration": {"type": "github", "url": redirector.url, "repository": "acme/shop",
            "workflow": "tests.yml", "ref": "release"}}),
    );
    let (s, v) = run_with(&proj, &[]);
    assert_eq!(s, 200, "{v}");
    let launch = v["launch"]["id"].as_i64().unwrap();
    assert_eq!(redirector.take().len(), 1);
    assert!(target.take().is_empty(), "the redirect was followed");
    let run = &job_runs_as(&proj, launch)[0];
    assert_eq!(run["stage"], "run_failure", "{run}");
    assert!(
        run["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("GitHub answered HTTP 302"),
        "{run}"
    );

    // With the host allowed, a project token may set a loopback URL…
    let data = server.work_dir().join("data");
    server.kill();
    let allowed = TestServer::start_in(Some(&data), &["--allow-integration-host", "127.0.0.1"]);
    let proj_allowed = Api {
        url: allowed.url.clone(),
        ..proj.with_token(&proj.token)
    };
    internal.reply(
        "/repos/acme/shop/actions/workflows/tests.yml/dispatches",
        500,
        &format!("{{\"message\":\"{SECRET_BODY}\"}}"),
        &[],
    );
    proj_allowed.patch_ok(&format!("/api/job/{gh}"), &github(&internal.url, "tok3"));
    drop(allowed);
    // …but once the host is no longer allowed, nothing is sent to it and its
    // answer never reaches the project's view of the job run.
    let again = TestServer::start_in(Some(&data), &[]);
    let proj_again = Api {
        url: again.url.clone(),
        ..proj.with_token(&proj.token)
    };
    let (s, v) = run_with(&proj_again, &[]);
    assert_eq!(s, 200, "{v}");
    let launch = v["launch"]["id"].as_i64().unwrap();
    assert!(internal.take().is_empty(), "an unapproved URL was called");
    let run = &job_runs_as(&proj_again, launch)[0];
    assert_eq!(run["stage"], "run_failure", "{run}");
    let m = run["errorMessage"].as_str().unwrap();
    assert!(m.contains("is not approved by an admin"), "{m}");
    let seen = format!(
        "{}{}",
        proj_again.get(&format!("/api/jobrun/{}", run["id"])),
        proj_again.get(&format!("/api/job/{gh}"))
    );
    assert!(!seen.contains(SECRET_BODY), "{seen}");
}
