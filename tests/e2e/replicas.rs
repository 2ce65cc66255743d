//! Several stateless server replicas on one PostgreSQL behind one address:
//! the invariants hold across processes, and a replica dying mid-way loses
//! nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::pg::PgCluster;
use crate::proxy::RoundRobin;
use crate::support::*;

/// Three replicas on one database and one shared data directory. Starting
/// them one after the other is not required (migrations take an advisory
/// lock): they start at once.
fn start_replicas(url: &str, data: &std::path::Path) -> Vec<TestServer> {
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (url, data) = (url.to_string(), data.to_path_buf());
            std::thread::spawn(move || TestServer::start_in(Some(&data), &["--database-url", &url]))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn three_replicas_share_one_launch_and_survive_a_killed_replica() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.database("replicas");
    let shared = tempfile::tempdir().unwrap();
    let mut replicas = start_replicas(&url, shared.path());
    let proxy = RoundRobin::start(replicas.iter().map(|r| r.url.clone()).collect());
    let api = Api {
        url: proxy.url.clone(),
        token: TOKEN.to_string(),
        http: reqwest::blocking::Client::new(),
    };
    let base = Cli::new(&proxy.url, TOKEN);

    // The start job, then 20 uploaders: 10 shards of the same GitHub run (into
    // its job run) and 10 jobs of one GitLab pipeline that create-or-join
    // their own job run in the launch concurrently, on different replicas.
    let start = base.clone().github("8080", "start");
    start
        .run(&["job-run", "start", "--launch-name", "Replicated"])
        .ok();
    let env = parse_env(&start.run(&["job-run", "env"]).ok().stdout);
    let (lid, jr) = (
        env["ALLURE_LAUNCH_ID"].clone(),
        env["ALLURE_JOB_RUN_ID"].clone(),
    );
    let work = tempfile::tempdir().unwrap();
    let per_uploader = 150;
    let mut uploaders = Vec::new();
    for i in 0..20 {
        let dir = work.path().join(format!("u{i}"));
        generate_results(&dir, &format!("r{i}"), per_uploader);
        let cli = if i < 10 {
            base.clone()
                .github("8080", &format!("shard-{i}"))
                .env("ALLURE_LAUNCH_ID", &lid)
                .env("ALLURE_JOB_RUN_ID", &jr)
        } else {
            base.clone().gitlab("31").env("ALLURE_LAUNCH_ID", &lid)
        };
        uploaders.push(std::thread::spawn(move || {
            cli.run(&[
                "upload",
                "--size",
                "25",
                "--concurrency",
                "2",
                dir.to_str().unwrap(),
            ])
        }));
    }
    // One replica dies while the uploads run: once some, not all, results are in.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = api.get_raw(&format!("/api/testresult?launchId={lid}&size=1"));
        let n = v["totalElements"].as_i64().unwrap_or(0);
        if n >= 500 {
            assert!(
                n < 20 * per_uploader as i64,
                "uploads finished before the kill"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "uploads did not progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    replicas[1].kill();
    for u in uploaders {
        u.join().unwrap().ok();
    }

    let launches = api.launches(1);
    assert_eq!(launches.len(), 1, "exactly one launch: {launches:?}");
    let lid: i64 = lid.parse().unwrap();
    let results = {
        let mut all = Vec::new();
        let mut page = 0;
        loop {
            let v = api.get(&format!(
                "/api/testresult?launchId={lid}&size=1000&page={page}"
            ));
            let c = v["content"].as_array().unwrap().clone();
            if c.is_empty() {
                break;
            }
            all.extend(c);
            page += 1;
        }
        all
    };
    assert_eq!(results.len(), 20 * per_uploader, "exact count");
    let uuids: BTreeSet<&str> = results
        .iter()
        .map(|r| r["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids.len(), results.len(), "no duplicates");
    let runs = api.job_runs(lid);
    assert_eq!(
        runs.len(),
        2,
        "one GitHub job run and one GitLab job run: {runs:?}"
    );
    let failed = (0..per_uploader).filter(|i| i % 4 == 0).count() as i64 * 20;
    let stat = api.statistic(lid);
    assert_eq!(stat["failed"], failed);
    assert_eq!(stat["passed"], 20 * per_uploader as i64 - failed);
    let with_att = results
        .iter()
        .filter(|r| r["attachmentCount"].as_i64().unwrap() > 0)
        .count();
    assert_eq!(with_att, 20 * per_uploader.div_ceil(10));
    drop(proxy);
}

#[test]
fn a_token_revoked_through_one_replica_is_refused_by_every_replica_at_once() {
    use crate::tokens::{bearer_status, exchange, status_with};
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.database("tokens");
    let shared = tempfile::tempdir().unwrap();
    let replicas = start_replicas(&url, shared.path());
    let proxy = RoundRobin::start(replicas.iter().map(|r| r.url.clone()).collect());
    // Three replicas started at once with the same --init-token: one init token.
    let admin = Cli::new(&proxy.url, TOKEN);
    let listed = admin.run(&["token", "list", "-o", "json"]).ok().stdout;
    let inits = serde_json::from_str::<serde_json::Value>(&listed)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "init")
        .count();
    assert_eq!(inits, 1, "{listed}");

    let secret = admin
        .run(&["token", "create", "--name", "replicated", "--project", "1"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let access = exchange(&replicas[0].url, &secret);
    for r in &replicas {
        assert_eq!(status_with(&r.url, &secret), 200, "{}", r.url);
        assert_eq!(bearer_status(&r.url, &access), 200, "{}", r.url);
    }
    let listed = Cli::new(&replicas[2].url, TOKEN)
        .run(&["token", "list", "-o", "json"])
        .ok()
        .stdout;
    let row = serde_json::from_str::<serde_json::Value>(&listed)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "replicated")
        .cloned()
        .unwrap();
    assert!(row["lastUsedDate"].as_i64().is_some(), "{row}");

    // Revoked through replica 1: every replica refuses the very next request.
    Cli::new(&replicas[1].url, TOKEN)
        .run(&["token", "revoke", &row["id"].to_string()])
        .ok();
    for r in &replicas {
        assert_eq!(status_with(&r.url, &secret), 401, "{}", r.url);
        assert_eq!(bearer_status(&r.url, &access), 401, "{}", r.url);
    }
    assert_eq!(status_with(&proxy.url, &secret), 401);
    drop(proxy);
}
