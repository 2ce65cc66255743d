//! Server-led launches (test cases, jobs, plans, runs): the server defines the
//! scope, creates one launch with one job run per executor job, triggers the
//! jobs, and each job reports back into its job run.
//!
//! The build-server APIs are stood in for by [`Provider`], a tiny recording
//! HTTP server on 127.0.0.1:0; the `command` integration runs
//! `tests/fixtures/server-led/run-job.sh`, which drives the real allure-pytest
//! suite with the job run's test plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::pg::PgCluster;
use crate::support::*;

mod security;

// ---------------------------------------------------------------- a recording provider API

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Recorded {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn query(&self) -> Vec<(String, String)> {
        let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

#[derive(Clone)]
struct Reply {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

/// Stands in for a provider API: records every request and answers with the
/// reply configured for its path (200 `{}` otherwise).
struct Provider {
    url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
}

impl Provider {
    fn start() -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let replies: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let (req, rep) = (requests.clone(), replies.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (req, rep) = (req.clone(), rep.clone());
                std::thread::spawn(move || serve_one(stream, &req, &rep));
            }
        });
        Provider {
            url,
            requests,
            replies,
        }
    }

    fn reply(&self, path: &str, status: u16, body: &str, headers: &[(&str, &str)]) {
        self.replies.lock().unwrap().insert(
            path.to_string(),
            Reply {
                status,
                body: body.to_string(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        );
    }

    fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

fn serve_one(
    stream: TcpStream,
    requests: &Mutex<Vec<Recorded>>,
    replies: &Mutex<HashMap<String, Reply>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let rec = Recorded {
        method,
        target,
        headers,
        body,
    };
    let reply = replies
        .lock()
        .unwrap()
        .get(rec.path())
        .cloned()
        .unwrap_or(Reply {
            status: 200,
            body: "{}".into(),
            headers: vec![],
        });
    requests.lock().unwrap().push(rec);
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&reply.body);
    let mut stream = stream;
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.flush();
}

// ---------------------------------------------------------------- helpers

/// Runs the real pytest suite with allure-pytest, only the tests `-k` selects.
fn pytest(results: &Path, select: &str) {
    let out = std::process::Command::new("python3")
        .args(["-m", "pytest"])
        .arg(fixture("tests/fixtures/pytest-suite"))
        .arg("--alluredir")
        .arg(results)
        .args(["-q", "-k", select])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("ALLURE_TESTPLAN_PATH")
        .output()
        .expect("python3 -m pytest (run scripts/tools/python.sh)");
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "pytest failed to run ({code}); is allure-pytest installed (scripts/tools/python.sh)?\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `fullName`s of the allure-pytest suite by the `ALLURE_ID` they carry.
const SUITE: [(&str, &str); 8] = [
    ("101", "test_shop#test_add_to_cart"),
    ("102", "test_shop#test_cart_total"),
    ("103", "test_shop#test_discount_code_is_case_insensitive"),
    ("104", "test_shop#test_payment_is_charged"),
    ("105", "test_shop#test_gift_wrapping"),
    ("106", "test_shop#test_inventory_sync"),
    ("107", "test_shop#test_product_page_screenshot"),
    ("108", "test_shop#test_search"),
];

fn full_name(allure_id: &str) -> &'static str {
    SUITE.iter().find(|(a, _)| *a == allure_id).unwrap().1
}

/// Test case ids by ALLURE_ID (or by name for cases without one).
fn case_ids(api: &Api) -> BTreeMap<String, i64> {
    let v = api.get("/api/testcase?projectId=1&size=1000");
    v["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let key = c["allureId"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| c["name"].as_str().unwrap().to_string());
            (key, c["id"].as_i64().unwrap())
        })
        .collect()
}

/// Job ids by uid.
fn job_ids(api: &Api) -> BTreeMap<String, i64> {
    api.get("/api/project/1/job")
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["externalId"].as_str().unwrap().to_string(),
                j["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

const GITHUB_JOB: &str = "acme/shop_CI";
const GITLAB_JOB: &str = "4242";
const MANUAL_CASE: &str = "Checkout on a real phone";

/// CI-led history the server learns jobs and test cases from: a GitHub
/// workflow and a GitLab pipeline run different parts of the real pytest
/// suite into one launch, a manual case is recorded, the launch is closed.
fn learn(server: &TestServer) -> i64 {
    let work = server.work_dir().join("learn");
    let (gh_dir, gl_dir) = (work.join("github"), work.join("gitlab"));
    pytest(&gh_dir, "add_to_cart or cart_total or discount or payment");
    pytest(&gl_dir, "gift or inventory or product_page or search");
    let gh = server.cli().github("5001", "tests");
    gh.run(&[
        "upload",
        gh_dir.to_str().unwrap(),
        "--launch-name",
        "Nightly",
    ])
    .ok();
    let launch = server.api().launches(1)[0]["id"].as_i64().unwrap();
    server
        .cli()
        .gitlab("6001")
        .env("ALLURE_LAUNCH_ID", launch)
        .run(&["upload", gl_dir.to_str().unwrap()])
        .ok();
    server
        .cli()
        .run(&[
            "result",
            "manual",
            "--launch-id",
            &launch.to_string(),
            "--name",
            MANUAL_CASE,
            "--status",
            "passed",
        ])
        .ok();
    server
        .cli()
        .run(&["launch", "close", &launch.to_string()])
        .ok();
    launch
}

/// Polls until `f` answers, or fails after `timeout` showing the server log.
fn wait_for<T>(
    server: &TestServer,
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}\nserver log:\n{}",
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn statistic_of(api: &Api, path: &str) -> BTreeMap<String, i64> {
    api.get(path)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["status"].as_str().unwrap().to_string(),
                i["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

// ---------------------------------------------------------------- end to end

/// The whole story against one server: learn, configure, plan, override, run,
/// the jobs run the real suite with the plan and report back, manual results.
fn server_led_story(server: &TestServer) {
    let api = server.api();
    let learned = learn(server);

    // Test cases with their default executors.
    let cases = case_ids(&api);
    assert_eq!(cases.len(), 9, "{cases:?}");
    let jobs = job_ids(&api);
    let (gh, gl) = (jobs[GITHUB_JOB], jobs[GITLAB_JOB]);
    let listed = server.cli().run(&["testcase", "list", "-o", "json"]).ok();
    let listed: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    for c in &listed {
        let executor = c["job"]["id"].as_i64();
        match c["allureId"].as_str() {
            Some("101" | "102" | "103" | "104") => assert_eq!(executor, Some(gh), "{c}"),
            Some(_) => assert_eq!(executor, Some(gl), "{c}"),
            None => {
                assert_eq!(c["name"], MANUAL_CASE);
                assert_eq!(c["automated"], false);
                assert_eq!(executor, None);
            }
        }
    }
    // Filters: labels, name pattern (glob and substring), last status.
    let r = server
        .cli()
        .run(&["testcase", "list", "--label", "feature=Cart", "--no-header"])
        .ok();
    let ids: BTreeSet<&str> = r
        .stdout
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from(["101", "102"]), "{}", r.stdout);
    let v = api.get("/api/testcase?name=*product_page*&projectId=1");
    assert_eq!(v["totalElements"], 1);
    assert_eq!(v["content"][0]["allureId"], "107");
    let v = api.get("/api/testcase?name=DISCOUNT");
    assert_eq!(v["content"][0]["allureId"], "103");
    let v = api.get("/api/testcase?status=failed,broken");
    let failing: BTreeSet<&str> = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["allureId"].as_str().unwrap())
        .collect();
    assert_eq!(failing, BTreeSet::from(["103", "104", "106"]));

    // Both jobs run the job script through the `command` integration.
    let out = server.work_dir().join("jobs-out");
    let script = fixture("tests/fixtures/server-led/run-job.sh");
    for (job, name) in [(gh, "github"), (gl, "gitlab")] {
        let r = server
            .cli()
            .env("RUNNER_TOKEN", TOKEN)
            .run(&[
                "job",
                "configure",
                &job.to_string(),
                "--can-run-tests",
                "true",
                "--integration",
                "command",
                "--command",
                // ONELAUNCH_* names are reserved (they configure the CLI a
                // job runs): the admin sets the binary in the command itself.
                &format!(
                    "ONELAUNCH_BIN='{}' bash '{}'",
                    bin().display(),
                    script.display()
                ),
                "--credential-env",
                "RUNNER_TOKEN",
                "--param",
                &format!(
                    "PYTEST_SUITE={}",
                    fixture("tests/fixtures/pytest-suite").display()
                ),
                "--param",
                &format!("OUT_DIR={}", out.join(name).display()),
            ])
            .ok();
        assert!(
            r.stdout.contains("ready: the server can trigger it"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("credential stored"), "{}", r.stdout);
        assert!(!r.all().contains(TOKEN));
    }
    let shown = api.get(&format!("/api/job/{gh}"));
    assert_eq!(shown["integration"]["hasCredential"], true);
    assert!(
        !shown.to_string().contains(TOKEN),
        "credential returned: {shown}"
    );

    // A plan: four cases chosen, one by filter, one manual case.
    let r = server
        .cli()
        .run(&[
            "plan",
            "create",
            "--name",
            "Release 2.0",
            "--case",
            &cases["101"].to_string(),
            "--case",
            &cases["103"].to_string(),
            "--case",
            &cases["106"].to_string(),
            "--case",
            &cases["107"].to_string(),
            "--case",
            &cases[MANUAL_CASE].to_string(),
            "--label",
            "story=Search",
            "-o",
            "json",
        ])
        .ok();
    let plan: Value = serde_json::from_str(&r.stdout).unwrap();
    let plan_id = plan["id"].as_i64().unwrap();
    assert_eq!(plan["testCases"].as_array().unwrap().len(), 6, "{plan}");

    // Executors: 103 moves to GitLab; the Catalog group (107, 108) to GitHub.
    server
        .cli()
        .run(&[
            "plan",
            "executors",
            &plan_id.to_string(),
            "--case",
            &cases["103"].to_string(),
            "--job",
            &gl.to_string(),
        ])
        .ok();
    let r = server
        .cli()
        .run(&[
            "plan",
            "executors",
            &plan_id.to_string(),
            "--label",
            "feature=Catalog",
            "--job",
            &gh.to_string(),
        ])
        .ok();
    assert!(r.stdout.contains("(override)"), "{}", r.stdout);
    let e = api.get(&format!("/api/testplan/{plan_id}/executors"));
    let group = |job: i64| -> BTreeMap<String, String> {
        e["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["job"]["id"] == job)
            .unwrap()["testCases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["allureId"].as_str().unwrap().to_string(),
                    c["source"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let expect = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        group(gh),
        expect(&[("101", "default"), ("107", "override"), ("108", "override")])
    );
    assert_eq!(
        group(gl),
        expect(&[("103", "override"), ("106", "default")])
    );
    assert_eq!(e["manual"].as_array().unwrap().len(), 1);
    assert_eq!(e["manual"][0]["name"], MANUAL_CASE);

    // Run it: the launch id on stdout.
    let r = server
        .cli()
        .run(&[
            "plan",
            "run",
            &plan_id.to_string(),
            "--launch-name",
            "Release 2.0 regression",
            "--tag",
            "release",
            "--tag",
            "server-led",
            "--issue",
            "JIRA-1",
            "--issue",
            "https://tracker.example.com/browse/SHOP-17",
            "--env",
            "BROWSER=firefox",
        ])
        .ok();
    let launch: i64 = r
        .stdout
        .trim()
        .parse()
        .expect("plan run prints the launch id");
    assert!(r.stderr.contains("2 test cases"), "{}", r.stderr);
    // The manual case is recorded while the jobs run.
    server
        .cli()
        .env("ALLURE_LAUNCH_ID", launch)
        .run(&[
            "result",
            "manual",
            "--case",
            &cases[MANUAL_CASE].to_string(),
            "--status",
            "passed",
            "--message",
            "checked on a Pixel 8",
        ])
        .ok();

    let runs = wait_for(
        server,
        "both job runs to finish",
        Duration::from_secs(240),
        || {
            let runs = api.job_runs(launch);
            runs.iter()
                .all(|r| r["stage"] == "finished" || r["stage"] == "run_failure")
                .then_some(runs)
        },
    );
    assert_eq!(runs.len(), 2, "{runs:?}");
    for r in &runs {
        assert_eq!(r["stage"], "finished", "{r}\n{}", server.log());
        assert_eq!(r["externalId"], format!("plan-{launch}"));
        assert!(r["errorMessage"].is_null(), "{r}");
        assert!(r["parameters"].to_string().contains("BROWSER"), "{r}");
    }
    let run_of = |job: i64| {
        runs.iter().find(|r| r["job"]["id"] == job).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (gh_run, gl_run) = (run_of(gh), run_of(gl));

    // One new launch (never merged into the learned one), with the launch form.
    let launches = api.launches(1);
    assert_eq!(launches.len(), 2);
    let l = api.get(&format!("/api/launch/{launch}"));
    assert_eq!(l["name"], "Release 2.0 regression");
    assert_eq!(
        l["tags"],
        json!([{"name": "release"}, {"name": "server-led"}])
    );
    assert_eq!(l["issues"][0]["name"], "JIRA-1");
    assert_eq!(
        l["issues"][1]["url"],
        "https://tracker.example.com/browse/SHOP-17"
    );
    assert_ne!(launch, learned);

    // Each job run's plan, as the API and testplan.json give it.
    for (run, ids) in [
        (gh_run, vec!["101", "107", "108"]),
        (gl_run, vec!["103", "106"]),
    ] {
        for prefix in ["/api", "/api/rs"] {
            let plan = api.get(&format!("{prefix}/jobrun/{run}/plan?expected=true"));
            let got: Vec<(i64, String)> = plan
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["id"].as_i64().unwrap(),
                        i["selector"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let want: Vec<(i64, String)> = ids
                .iter()
                .map(|a| (a.parse().unwrap(), full_name(a).to_string()))
                .collect();
            assert_eq!(got, want, "plan of job run {run}");
        }
        let name = if run == gh_run { "github" } else { "gitlab" };
        let file: Value = serde_json::from_slice(
            &std::fs::read(out.join(name).join(format!("testplan-{run}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(file["version"], "1.0");
        let want: Vec<Value> = ids
            .iter()
            .map(|a| json!({"id": a, "selector": full_name(a)}))
            .collect();
        assert_eq!(file["tests"], json!(want));
        // The variables the job was triggered with.
        let env = std::fs::read_to_string(out.join(name).join(format!("env-{run}.txt"))).unwrap();
        let env = parse_env(&env);
        assert_eq!(env["ALLURE_JOB_RUN_ID"], run.to_string());
        assert_eq!(env["ALLURE_LAUNCH_ID"], launch.to_string());
        assert_eq!(env["ALLURE_ENDPOINT"], server.url);
        assert_eq!(env["ALLURE_PROJECT_ID"], "1");
        assert_eq!(env["BROWSER"], "firefox");
    }

    // Exactly the planned results, in the right job runs; the manual one beside.
    let results = api.results(launch);
    let names_in = |run: Option<i64>| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in results.iter().filter(|r| r["jobRunId"].as_i64() == run) {
            let n = r["fullName"]
                .as_str()
                .or(r["name"].as_str())
                .unwrap()
                .to_string();
            *m.entry(n).or_insert(0) += 1;
        }
        m
    };
    let want = |pairs: &[(&str, usize)]| -> BTreeMap<String, usize> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    assert_eq!(
        names_in(Some(gh_run)),
        want(&[
            ("test_shop#test_add_to_cart", 1),
            ("test_shop#test_product_page_screenshot", 1),
            ("test_shop#test_search", 2),
        ])
    );
    assert_eq!(
        names_in(Some(gl_run)),
        want(&[
            ("test_shop#test_discount_code_is_case_insensitive", 1),
            ("test_shop#test_inventory_sync", 1),
        ])
    );
    assert_eq!(names_in(None), want(&[(MANUAL_CASE, 1)]));
    assert_eq!(results.len(), 7);

    // The statistic includes the manual result; the split shows it apart.
    assert_eq!(
        api.statistic(launch),
        counts(&[("passed", 5), ("failed", 1), ("broken", 1)])
    );
    assert_eq!(
        statistic_of(&api, &format!("/api/launch/{launch}/statistic/manual")),
        counts(&[("passed", 1)])
    );
    assert_eq!(
        statistic_of(&api, &format!("/api/launch/{launch}/statistic/automated")),
        counts(&[("passed", 4), ("failed", 1), ("broken", 1)])
    );
    let manual = api.get(&format!("/api/launch/{launch}/manual"));
    assert_eq!(manual["planned"][0]["name"], MANUAL_CASE);
    assert_eq!(manual["results"][0]["message"], "checked on a Pixel 8");
    let r = server
        .cli()
        .run(&["result", "summary", "--launch-id", &launch.to_string()])
        .ok();
    assert!(
        r.stdout.contains("Automated: passed 4, failed 1, broken 1"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Manual: passed 1"), "{}", r.stdout);

    // The jobs that ran the overridden cases are now their default executors.
    let after: BTreeMap<String, Option<i64>> = api.get("/api/testcase?size=1000")["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| Some((c["allureId"].as_str()?.to_string(), c["job"]["id"].as_i64())))
        .collect();
    assert_eq!(after["103"], Some(gl));
    assert_eq!(after["107"], Some(gh));
    assert_eq!(after["108"], Some(gh));
    assert_eq!(
        after["102"],
        Some(gh),
        "cases outside the run keep their executor"
    );

    assert!(
        !server.log().contains(TOKEN),
        "token leaked into the server log"
    );
}

#[test]
fn plan_run_on_sqlite_runs_the_planned_pytest_tests_in_one_launch() {
    let server = TestServer::start();
    server_led_story(&server);
}

#[test]
fn plan_run_on_postgres_runs_the_planned_pytest_tests_in_one_launch() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.database("serverled");
    let server = TestServer::start_with(&["--database-url", &url]);
    server_led_story(&server);
}

// ---------------------------------------------------------------- providers

fn upload_as(cli: Cli, dir: &Path) {
    cli.run(&["upload", dir.to_str().unwrap()]).ok();
}

fn jenkins(cli: Cli, build: &str) -> Cli {
    cli.envs(&[
        ("JENKINS_URL", "https://jenkins.example.com/"),
        ("JOB_NAME", "team/api-tests"),
        ("JOB_BASE_NAME", "api-tests"),
        (
            "JOB_URL",
            "https://jenkins.example.com/job/team/job/api-tests/",
        ),
        ("BUILD_NUMBER", build),
        ("BUILD_DISPLAY_NAME", "#12"),
        (
            "BUILD_URL",
            "https://jenkins.example.com/job/team/job/api-tests/12/",
        ),
    ])
}

const GITHUB_SECRET: &str = "ghp_e2eSecretValue123";
const GITLAB_SECRET: &str = "glptt-e2eSecretValue456";
const JENKINS_SECRET: &str = "jenkins-api-token";

#[test]
fn github_gitlab_and_jenkins_get_exact_trigger_requests_and_a_failing_one_is_recorded() {
    let server = TestServer::start();
    let api = server.api();
    let (github, gitlab, jenkins_api) = (Provider::start(), Provider::start(), Provider::start());

    // Three jobs, each with its own cases, learned in one launch, closed.
    upload_as(
        server
            .cli()
            .github("7001", "tests")
            .env("ALLURE_LAUNCH_NAME", "Learn"),
        &fixture("tests/fixtures/allure-pytest"),
    );
    let learned = api.launches(1)[0]["id"].as_i64().unwrap();
    upload_as(
        server.cli().gitlab("8001").env("ALLURE_LAUNCH_ID", learned),
        &fixture("tests/fixtures/junit/pytest-junit.xml"),
    );
    upload_as(
        jenkins(server.cli(), "12").env("ALLURE_LAUNCH_ID", learned),
        &fixture("tests/fixtures/junit/TEST-com.example.shop.CheckoutServiceTest.xml"),
    );
    server
        .cli()
        .run(&["launch", "close", &learned.to_string()])
        .ok();
    let jobs = job_ids(&api);
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let (gh, gl, jk) = (jobs[GITHUB_JOB], jobs[GITLAB_JOB], jobs["team/api-tests"]);

    // One case of each job.
    let all = api.get("/api/testcase?size=1000")["content"]
        .as_array()
        .unwrap()
        .clone();
    let case_of = |job: i64| {
        all.iter()
            .find(|c| c["job"]["id"] == job)
            .unwrap_or_else(|| panic!("no case of job {job}: {all:?}"))["id"]
            .as_i64()
            .unwrap()
    };
    let picked = [case_of(gh), case_of(gl), case_of(jk)];

    let cli = server
        .cli()
        .env("GH_TOKEN", GITHUB_SECRET)
        .env("GL_TOKEN", GITLAB_SECRET)
        .env("JK_TOKEN", JENKINS_SECRET);
    let mut outputs = Vec::new();
    outputs.push(
        cli.run(&[
            "job",
            "configure",
            &gh.to_string(),
            "--can-run-tests",
            "true",
            "--integration",
            "github",
            "--url",
            &github.url,
            "--repository",
            "acme/shop",
            "--workflow",
            "tests.yml",
            "--ref",
            "main",
            "--credential-env",
            "GH_TOKEN",
            "--param",
            "BROWSER=chrome",
        ])
        .ok(),
    );
    outputs.push(
        cli.run(&[
            "job",
            "configure",
            "--uid",
            GITLAB_JOB,
            "--can-run-tests",
            "true",
            "--integration",
            "gitlab",
            "--url",
            &format!("{}/gitlab", gitlab.url),
            "--gitlab-project",
            "acme/api-tests",
            "--ref",
            "release/2.0",
            "--credential-env",
            "GL_TOKEN",
        ])
        .ok(),
    );
    outputs.push(
        cli.run(&[
            "job",
            "configure",
            &jk.to_string(),
            "--can-run-tests",
            "true",
            "--integration",
            "jenkins",
            "--url",
            &jenkins_api.url,
            "--job-path",
            "team/api-tests",
            "--username",
            "ci-bot",
            "--credential-env",
            "JK_TOKEN",
            "--param",
            "SUITE=smoke",
        ])
        .ok(),
    );
    // Changing one setting keeps the stored credential.
    outputs.push(
        cli.run(&["job", "configure", &gh.to_string(), "--ref", "main"])
            .ok(),
    );
    jenkins_api.reply(
        "/crumbIssuer/api/json",
        200,
        r#"{"_class":"hudson.security.csrf.DefaultCrumbIssuer","crumb":"c0ffee","crumbRequestField":"Jenkins-Crumb"}"#,
        &[("Set-Cookie", "JSESSIONID.e2e=node0abc; Path=/; HttpOnly")],
    );
    github.reply(
        "/repos/acme/shop/actions/workflows/tests.yml/dispatches",
        204,
        "",
        &[],
    );
    gitlab.reply(
        "/gitlab/api/v4/projects/acme%2Fapi-tests/trigger/pipeline",
        201,
        r#"{"id":1}"#,
        &[],
    );
    jenkins_api.reply("/job/team/job/api-tests/buildWithParameters", 201, "", &[]);

    let ids: Vec<String> = picked.iter().map(|i| i.to_string()).collect();
    let mut args = vec![
        "testcase",
        "run",
        "--launch-name",
        "Triggered",
        "--env",
        "BROWSER=firefox",
    ];
    for id in &ids {
        args.extend(["--case", id.as_str()]);
    }
    let r = server.cli().run(&args).ok();
    let launch: i64 = r.stdout.trim().parse().unwrap();
    outputs.push(r);
    let runs = api.job_runs(launch);
    assert_eq!(runs.len(), 3);
    let run_of =
        |runs: &[Value], job: i64| runs.iter().find(|r| r["job"]["id"] == job).unwrap().clone();
    for job in [gh, gl, jk] {
        let r = run_of(&runs, job);
        assert_eq!(r["stage"], "scheduled", "{r}");
        assert!(r["errorMessage"].is_null(), "{r}");
    }
    let vars = |job: i64, extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let run = run_of(&runs, job)["id"].as_i64().unwrap();
        let mut v = vec![
            ("ALLURE_JOB_RUN_ID".to_string(), run.to_string()),
            ("ALLURE_LAUNCH_ID".to_string(), launch.to_string()),
            ("ALLURE_ENDPOINT".to_string(), server.url.clone()),
        ];
        v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    };

    // GitHub: workflow_dispatch with the variables as inputs.
    let reqs = github.take();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let q = &reqs[0];
    assert_eq!(q.method, "POST");
    assert_eq!(
        q.target,
        "/repos/acme/shop/actions/workflows/tests.yml/dispatches"
    );
    assert_eq!(
        q.header("authorization"),
        Some(format!("Bearer {GITHUB_SECRET}").as_str())
    );
    assert_eq!(q.header("accept"), Some("application/vnd.github+json"));
    let inputs: serde_json::Map<String, Value> = vars(gh, &[("BROWSER", "firefox")])
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    assert_eq!(q.json(), json!({"ref": "main", "inputs": inputs}));

    // GitLab: pipeline trigger, form fields, under the configured base path.
    let reqs = gitlab.take();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let q = &reqs[0];
    assert_eq!(q.method, "POST");
    assert_eq!(
        q.target,
        "/gitlab/api/v4/projects/acme%2Fapi-tests/trigger/pipeline"
    );
    assert_eq!(
        q.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(q.header("authorization"), None);
    let mut want = vec![
        ("token".to_string(), GITLAB_SECRET.to_string()),
        ("ref".to_string(), "release/2.0".to_string()),
    ];
    want.extend(
        vars(gl, &[("BROWSER", "firefox")])
            .into_iter()
            .map(|(k, v)| (format!("variables[{k}]"), v)),
    );
    assert_eq!(q.form(), want);

    // Jenkins: crumb first, then buildWithParameters with crumb, cookie and Basic auth.
    let basic = "Basic Y2ktYm90OmplbmtpbnMtYXBpLXRva2Vu"; // ci-bot:jenkins-api-token
    let reqs = jenkins_api.take();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].target, "/crumbIssuer/api/json");
    assert_eq!(reqs[0].header("authorization"), Some(basic));
    let q = &reqs[1];
    assert_eq!(q.method, "POST");
    assert_eq!(q.path(), "/job/team/job/api-tests/buildWithParameters");
    assert_eq!(q.header("authorization"), Some(basic));
    assert_eq!(q.header("jenkins-crumb"), Some("c0ffee"));
    assert_eq!(q.header("cookie"), Some("JSESSIONID.e2e=node0abc"));
    assert_eq!(
        q.query(),
        vars(jk, &[("SUITE", "smoke"), ("BROWSER", "firefox")])
    );

    // A failing provider: its job run is `run_failure` with the provider's
    // answer (credential scrubbed); the others are triggered. Jenkins without
    // a crumb issuer (404) gets no crumb.
    gitlab.reply(
        "/gitlab/api/v4/projects/acme%2Fapi-tests/trigger/pipeline",
        500,
        &format!(r#"{{"message":"500 Internal Server Error (token {GITLAB_SECRET})"}}"#),
        &[],
    );
    jenkins_api.reply("/crumbIssuer/api/json", 404, "Not Found", &[]);
    let r = server.cli().run(&args).ok();
    assert!(r.stderr.contains("could not be triggered"), "{}", r.stderr);
    let second: i64 = r.stdout.trim().parse().unwrap();
    assert_ne!(second, launch, "each run creates its own launch");
    outputs.push(r);
    let runs = api.job_runs(second);
    let failed = run_of(&runs, gl);
    assert_eq!(failed["stage"], "run_failure", "{failed}");
    let msg = failed["errorMessage"].as_str().unwrap();
    assert!(msg.starts_with("GitLab answered HTTP 500: "), "{msg}");
    assert!(
        msg.contains("500 Internal Server Error (token <redacted>)"),
        "{msg}"
    );
    for job in [gh, jk] {
        assert_eq!(run_of(&runs, job)["stage"], "scheduled");
    }
    assert_eq!(github.take().len(), 1);
    assert_eq!(gitlab.take().len(), 1);
    let reqs = jenkins_api.take();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].header("jenkins-crumb"), None);
    assert_eq!(reqs[1].header("cookie"), None);

    // A triggered job reports into its job run (joined by id).
    let gh_run = run_of(&runs, gh)["id"].as_i64().unwrap();
    server
        .cli()
        .github("7002", "tests")
        .env("ALLURE_JOB_RUN_ID", gh_run)
        .run(&[
            "upload",
            fixture("tests/fixtures/allure-pytest").to_str().unwrap(),
        ])
        .ok();
    server
        .cli()
        .env("ALLURE_JOB_RUN_ID", gh_run)
        .run(&["job-run", "stop"])
        .ok();
    let r = api.get(&format!("/api/jobrun/{gh_run}"));
    assert_eq!(r["stage"], "finished");
    assert_eq!(r["launchId"], second);
    assert!(r["resultCount"].as_i64().unwrap() > 0);

    // Credentials are write-only: never in answers, outputs or the log.
    let everything = format!(
        "{}{}{}",
        api.get("/api/project/1/job"),
        server.cli().run(&["job", "list", "-o", "json"]).ok().stdout,
        server.log()
    );
    for o in &outputs {
        for s in [GITHUB_SECRET, GITLAB_SECRET, JENKINS_SECRET] {
            assert!(!o.all().contains(s), "credential in output: {}", o.all());
        }
    }
    for s in [GITHUB_SECRET, GITLAB_SECRET, JENKINS_SECRET] {
        assert!(!everything.contains(s), "credential {s} leaked");
    }
    // …and encrypted at rest: no database file holds them in clear.
    let data = server.work_dir().join("data");
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for s in [GITHUB_SECRET, GITLAB_SECRET, JENKINS_SECRET] {
                assert!(
                    !text.contains(s),
                    "credential {s} in clear in {}",
                    p.display()
                );
            }
        }
    }
    let gh_cfg = api.get(&format!("/api/job/{gh}"));
    assert_eq!(gh_cfg["integration"]["hasCredential"], true);
    assert_eq!(gh_cfg["integration"]["ref"], "main");
}

// ---------------------------------------------------------------- prerequisites

/// `POST /api/testcase/run` of some cases; (status, message).
fn try_run(api: &Api, cases: &[i64]) -> (u16, String) {
    let (s, v) = api.post_raw(
        "/api/testcase/run",
        &json!({"projectId": 1, "testCaseIds": cases, "launchName": "Attempt"}),
    );
    (s, v["message"].as_str().unwrap_or_default().to_string())
}

#[test]
fn every_missing_prerequisite_has_its_own_error() {
    let server = TestServer::start();
    let api = server.api();
    // A GitHub job uploads; its launch stays open for now.
    upload_as(
        server.cli().github("9001", "tests"),
        &fixture("tests/fixtures/allure-pytest"),
    );
    let open_launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let gh = job_ids(&api)[GITHUB_JOB];
    let cases = case_ids(&api);
    let case = cases["101"];
    let launches_before = api.launches(1).len();
    let job = format!("job {gh} (acme/shop - CI)");

    // 1. All three of the job's problems at once, each named.
    let (s, m) = try_run(&api, &[case]);
    assert_eq!(s, 409, "{m}");
    assert!(m.contains(&format!("{job} has uploaded results only into launches that are still open: finish launch {open_launch}")), "{m}");
    assert!(
        m.contains(&format!("{job} has no build-server integration")),
        "{m}"
    );
    assert!(
        m.contains(&format!("{job} is not allowed to run tests")),
        "{m}"
    );
    // The CLI shows it and exits 1 (not "launch closed").
    let r = server
        .cli()
        .run(&[
            "testcase",
            "run",
            "--case",
            &case.to_string(),
            "--launch-name",
            "x",
        ])
        .code(1);
    assert!(
        r.stderr.contains("is not allowed to run tests"),
        "{}",
        r.stderr
    );

    // 2. The launch finished: the other two remain.
    server
        .cli()
        .run(&["launch", "close", &open_launch.to_string()])
        .ok();
    let (s, m) = try_run(&api, &[case]);
    assert_eq!(s, 409);
    assert!(!m.contains("still open"), "{m}");
    assert!(
        m.contains("no build-server integration") && m.contains("not allowed to run tests"),
        "{m}"
    );

    // 3. An integration: only "not allowed" remains.
    api.patch_ok(
        &format!("/api/job/{gh}"),
        &json!({"integration": {"type": "command", "command": "true"}}),
    );
    let (s, m) = try_run(&api, &[case]);
    assert_eq!(s, 409);
    assert_eq!(
        m,
        format!("cannot run: {job} is not allowed to run tests: enable it with `onelaunch job configure {gh} --can-run-tests true`")
    );

    // 4. Allowed to run, but without an integration: only that one.
    api.patch_ok(
        &format!("/api/job/{gh}"),
        &json!({"canRunTests": true, "integration": null}),
    );
    let (s, m) = try_run(&api, &[case]);
    assert_eq!(s, 409);
    assert!(
        m.starts_with(&format!(
            "cannot run: {job} has no build-server integration"
        )),
        "{m}"
    );
    assert!(!m.contains("not allowed"), "{m}");

    // Nothing was created by the refused runs.
    assert_eq!(api.launches(1).len(), launches_before);

    // 5. Everything in place: the run goes through.
    api.patch_ok(
        &format!("/api/job/{gh}"),
        &json!({"integration": {"type": "command", "command": "true"}}),
    );
    let (s, m) = try_run(&api, &[case]);
    assert_eq!(s, 200, "{m}");
    assert_eq!(api.launches(1).len(), launches_before + 1);
    // A server-led launch can be deleted like any other (its plan rows go with
    // it); its triggered job run has not reported yet, hence `force`.
    let ran = api.launches(1)[0]["id"].as_i64().unwrap();
    let status = api
        .http
        .delete(format!("{}/api/launch/{ran}?force=true", api.url))
        .header("Authorization", format!("api-token {}", api.token))
        .send()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 200);
    assert_eq!(api.launches(1).len(), launches_before);

    // 6. A job that never uploaded (its pipeline only started a job run):
    //    overriding a case to it fails with its own error.
    server
        .cli()
        .gitlab("9100")
        .run(&["job-run", "start", "--launch-name", "Started only"])
        .ok();
    let gl = job_ids(&api)[GITLAB_JOB];
    api.patch_ok(
        &format!("/api/job/{gl}"),
        &json!({"canRunTests": true, "integration": {"type": "command", "command": "true"}}),
    );
    let plan = api.post(
        "/api/testplan",
        &json!({"projectId": 1, "name": "Moved", "testCaseIds": [case]}),
    )["id"]
        .as_i64()
        .unwrap();
    api.post(
        &format!("/api/testplan/{plan}/executors"),
        &json!({"testCaseIds": [case], "jobId": gl}),
    );
    let (s, v) = api.post_raw(
        &format!("/api/testplan/{plan}/run"),
        &json!({"launchName": "Moved run"}),
    );
    assert_eq!(s, 409, "{v}");
    assert_eq!(
        v["message"],
        format!(
            "cannot run: job {gl} (api-tests) has never uploaded results from its pipeline: run the \
             pipeline once with `onelaunch upload` so the server knows the job works"
        )
    );
}

#[test]
fn bad_input_is_refused_with_the_field_named() {
    let server = TestServer::start();
    let api = server.api();
    upload_as(
        server.cli().github("9201", "tests"),
        &fixture("tests/fixtures/allure-pytest"),
    );
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let gh = job_ids(&api)[GITHUB_JOB];
    let case = case_ids(&api)["101"];
    let cases: [(&str, Value, u16, &str); 10] = [
        (
            "PATCH job",
            json!({"parameters": [{"name": "DEPLOY_TOKEN", "value": "x"}]}),
            400,
            "parameters[0].name \"DEPLOY_TOKEN\" looks like a secret",
        ),
        (
            "PATCH job",
            json!({"integration": {"type": "github", "workflow": "t.yml", "ref": "main", "credential": "x1234"}}),
            400,
            "field `integration.repository` is required for a github integration",
        ),
        (
            "PATCH job",
            json!({"integration": {"type": "github", "repository": "acme", "workflow": "t.yml", "ref": "main", "credential": "x1234"}}),
            400,
            "field `integration.repository`: expected owner/repo",
        ),
        (
            "PATCH job",
            json!({"integration": {"type": "gitlab", "project": "1", "ref": "main"}}),
            400,
            "field `integration.credential` (a pipeline trigger token) is required",
        ),
        (
            "PATCH job",
            json!({"integration": {"type": "jenkins", "url": "ftp://x", "jobPath": "a"}}),
            400,
            "field `integration.url`: expected an http(s) base URL",
        ),
        (
            "PATCH job",
            json!({"integration": {"type": "teamcity"}}),
            400,
            "field `integration.type`: expected github, gitlab, jenkins or command",
        ),
        (
            "PATCH job",
            json!({"parameters": [{"name": "1BAD", "value": "x"}]}),
            400,
            "parameters[0].name \"1BAD\" is not a valid variable name",
        ),
        (
            "POST plan",
            json!({"projectId": 1, "name": "Empty"}),
            400,
            "a test plan needs `testCaseIds` and/or a `filter`",
        ),
        (
            "POST plan",
            json!({"projectId": 1, "name": "Ghost", "testCaseIds": [999999]}),
            400,
            "testCaseIds: test case 999999 not found in project 1",
        ),
        (
            "POST manual",
            json!({"results": [{"testCaseId": case, "status": "great"}]}),
            400,
            "results[0].status: expected one of passed, failed, broken, skipped, unknown",
        ),
    ];
    for (what, body, status, message) in cases {
        let (s, v) = match what {
            "PATCH job" => api.patch_raw(&format!("/api/job/{gh}"), &body),
            "POST plan" => api.post_raw("/api/testplan", &body),
            _ => api.post_raw(&format!("/api/launch/{launch}/manual"), &body),
        };
        assert_eq!(s, status, "{what} {body}: {v}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(message),
            "{what} {body}: {v}"
        );
    }
    let (s, v) = api.get_raw("/api/testcase?status=green");
    assert_eq!(s, 400);
    assert!(
        v["message"].as_str().unwrap().contains("query.status"),
        "{v}"
    );
    let (s, v) = api.post_raw(
        "/api/testcase/run",
        &json!({"projectId": 1, "testCaseIds": [case], "launchName": " "}),
    );
    assert_eq!(s, 400);
    assert_eq!(v["message"], "field `launchName` must not be empty");

    // PUT replaces the whole configuration; PATCH changes only what it names.
    api.patch_ok(
        &format!("/api/job/{gh}"),
        &json!({"canRunTests": true, "parameters": [{"name": "A", "value": "1"}]}),
    );
    let v = api.patch_ok(&format!("/api/job/{gh}"), &json!({"canRunTests": false}));
    assert_eq!(v["parameters"], json!([{"name": "A", "value": "1"}]));
    let (s, v) = api.put_raw(&format!("/api/job/{gh}"), &json!({"canRunTests": true}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["canRunTests"], true);
    assert_eq!(v["parameters"], json!([]));
    assert!(v["integration"].is_null());

    // A `command` runs on the server host: project tokens may not set one.
    let token = api.post("/api/project/1/token", &json!({}))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = api.with_token(&token).patch_raw(
        &format!("/api/job/{gh}"),
        &json!({"integration": {"type": "command", "command": "id"}}),
    );
    assert_eq!(s, 403, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("admin token"),
        "{v}"
    );

    // Manual results need an open launch.
    server
        .cli()
        .run(&["launch", "close", &launch.to_string()])
        .ok();
    let (s, v) = api.post_raw(
        &format!("/api/launch/{launch}/manual"),
        &json!({"results": [{"testCaseId": case, "status": "passed"}]}),
    );
    assert_eq!(s, 409, "{v}");
}

// ---------------------------------------------------------------- local helpers

trait Patch {
    fn send_raw(&self, method: &str, path: &str, body: &Value) -> (u16, Value);
    fn patch_raw(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_raw("PATCH", path, body)
    }
    fn put_raw(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_raw("PUT", path, body)
    }
    fn patch_ok(&self, path: &str, body: &Value) -> Value;
}

impl Patch for Api {
    fn send_raw(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .header("Authorization", format!("api-token {}", self.token))
            .json(body)
            .send()
            .expect("send");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    #[track_caller]
    fn patch_ok(&self, path: &str, body: &Value) -> Value {
        let (s, v) = self.patch_raw(path, body);
        assert_eq!(s, 200, "PATCH {path}: {v}");
        v
    }
}

#[test]
fn a_failing_command_is_recorded_on_its_job_run() {
    let server = TestServer::start();
    let api = server.api();
    upload_as(
        server.cli().github("9301", "tests"),
        &fixture("tests/fixtures/allure-pytest"),
    );
    let learned = api.launches(1)[0]["id"].as_i64().unwrap();
    server
        .cli()
        .run(&["launch", "close", &learned.to_string()])
        .ok();
    let gh = job_ids(&api)[GITHUB_JOB];
    api.patch_ok(
        &format!("/api/job/{gh}"),
        &json!({"canRunTests": true, "integration": {"type": "command",
            "command": "echo \"starting job run $ALLURE_JOB_RUN_ID\"; echo 'runner is offline' >&2; exit 3"}}),
    );
    let (s, m) = try_run(&api, &[case_ids(&api)["101"]]);
    assert_eq!(s, 200, "{m}");
    let launch = api.launches(1)[0]["id"].as_i64().unwrap();
    let run = wait_for(
        &server,
        "the command's failure",
        Duration::from_secs(30),
        || {
            let runs = api.job_runs(launch);
            (runs[0]["stage"] == "run_failure").then(|| runs[0].clone())
        },
    );
    assert_eq!(
        run["errorMessage"],
        "command exited with status 3: runner is offline"
    );
    // `launch show` says why the job run failed.
    let shown = server
        .cli()
        .run(&["launch", "show", &launch.to_string()])
        .ok()
        .stdout;
    assert!(
        shown.contains("run_failure: command exited with status 3: runner is offline"),
        "{shown}"
    );
    // Its output went to the server log (logged before the failure was
    // recorded; the test's copy of the log is read by a thread, so it is
    // waited for, not read once).
    let line = format!("starting job run {}", run["id"]);
    wait_for(
        &server,
        "the command's output in the server log",
        Duration::from_secs(30),
        || server.log().contains(&line).then_some(()),
    );
}
