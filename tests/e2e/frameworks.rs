//! Real JUnit reports of real frameworks (`tests/fixtures/frameworks/`), uploaded
//! with the CLI: each launch's statistic is the framework's own final counts
//! (recorded from its console summary when the report was produced), every run is
//! stored, durations and captured output arrive.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// Fixture directory, report file and a test whose output must arrive.
const FIXTURES: [(&str, &str, &str, &str); 4] = [
    (
        "pytest-xunit1",
        "report.xml",
        "test_passes",
        "stdout of test_passes",
    ),
    (
        "pytest-xunit2",
        "report.xml",
        "test_passes",
        "stdout of test_passes",
    ),
    (
        "jest-junit",
        "junit.xml",
        "calculator adds",
        "console output of adds",
    ),
    (
        "surefire",
        "TEST-com.example.SampleTest.xml",
        "alwaysFails",
        "stdout of alwaysFails",
    ),
];

fn expected(dir: &str) -> (BTreeMap<String, i64>, usize) {
    let text = std::fs::read_to_string(fixture(&format!(
        "tests/fixtures/frameworks/{dir}/expected.txt"
    )))
    .unwrap();
    let mut counts: BTreeMap<String, i64> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().parse().unwrap()))
        .collect();
    let attempts = counts.remove("attempts").unwrap() as usize;
    counts.retain(|_, n| *n > 0);
    (counts, attempts)
}

fn content(server: &TestServer, id: &Value) -> String {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .get(format!("{}/api/attachment/{id}/content", server.url))
        .header("Authorization", format!("api-token {TOKEN}"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

#[test]
fn framework_reports_are_stored_as_the_framework_reported_them() {
    let server = TestServer::start();
    let api = server.api();
    for (dir, report, test, output) in FIXTURES {
        let results_dir = server.work_dir().join(format!("results-{dir}"));
        std::fs::create_dir_all(&results_dir).unwrap();
        std::fs::copy(
            fixture(&format!("tests/fixtures/frameworks/{dir}/{report}")),
            results_dir.join(report),
        )
        .unwrap();
        let run = server
            .cli()
            .run(&[
                "upload",
                "--launch-name",
                dir,
                results_dir.to_str().unwrap(),
            ])
            .ok();
        let launch = api
            .launches(1)
            .into_iter()
            .find(|l| l["name"] == dir)
            .unwrap_or_else(|| panic!("{dir}: no launch\n{}", run.all()))["id"]
            .as_i64()
            .unwrap();

        let (counts, attempts) = expected(dir);
        assert_eq!(
            api.statistic(launch),
            counts,
            "{dir}: the framework's own counts"
        );
        let results = api.results(launch);
        assert_eq!(results.len(), attempts, "{dir}: every run is stored");
        let finals = results.iter().filter(|r| r["retry"] == false).count();
        assert_eq!(finals as i64, counts.values().sum::<i64>(), "{dir}");

        // Durations of every final attempt, output of the chosen test.
        for r in results.iter().filter(|r| r["retry"] == false) {
            let detail = api.get(&format!("/api/testresult/{}", r["id"]));
            assert!(
                detail["result"]["duration"].is_i64(),
                "{dir}: {} has no duration: {detail}",
                r["name"]
            );
        }
        let chosen = results
            .iter()
            .find(|r| r["name"] == test)
            .unwrap_or_else(|| panic!("{dir}: no {test}"));
        let detail = api.get(&format!("/api/testresult/{}", chosen["id"]));
        let texts: Vec<String> = detail["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["stored"] == true)
            .map(|a| content(&server, &a["id"]))
            .collect();
        assert!(
            texts.iter().any(|t| t.contains(output)),
            "{dir}: output of {test} missing: {detail}\n{}",
            run.all()
        );
    }

    // Surefire's reruns arrive as earlier attempts with their own messages.
    let launch = api
        .launches(1)
        .into_iter()
        .find(|l| l["name"] == "surefire")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let flaky: Vec<Value> = api
        .results(launch)
        .into_iter()
        .filter(|r| r["name"] == "flaky")
        .collect();
    assert_eq!(flaky.len(), 2, "{flaky:?}");
    let retry = flaky.iter().find(|r| r["retry"] == true).unwrap();
    assert_eq!(retry["status"], "failed");
    assert!(retry["message"]
        .as_str()
        .unwrap()
        .starts_with("first run fails"));
    let last = flaky.iter().find(|r| r["retry"] == false).unwrap();
    assert_eq!(last["status"], "passed");
}
