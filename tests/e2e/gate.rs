//! `onelaunch launch gate` against a real server: each rule with its measured
//! value in text, Markdown and JSON, exit 10 when one does not hold; project
//! rules set by an admin only and never loosened by the command line; the
//! verdict stored when the launch closes.

use serde_json::Value;

use crate::support::*;

#[test]
fn launch_gate_prints_each_rule_and_exits_10_when_one_fails() {
    let server = TestServer::start();
    let cli = server.cli();
    let dir = tempfile::tempdir().unwrap();
    // test 0 fails, tests 1 to 3 pass.
    generate_results(dir.path(), "gate", 4);
    cli.clone()
        .github("100", "test")
        .run(&[
            "upload",
            dir.path().to_str().unwrap(),
            "--launch-name",
            "nightly",
        ])
        .ok();
    let id = server.api().launches(1)[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();

    // No rule anywhere: nothing to fail.
    let none = cli.run(&["launch", "gate", &id]).ok();
    assert!(none.stdout.contains("no rules"), "{}", none.all());

    let failed = cli
        .run(&[
            "launch",
            "gate",
            &id,
            "--max-failures",
            "0",
            "--min-tests",
            "4",
        ])
        .code(10);
    assert!(
        failed
            .stdout
            .contains("FAIL maxFailures: 1 (failed 1, broken 0) (expected at most 0)"),
        "{}",
        failed.all()
    );
    assert!(
        failed.stdout.contains("test 0"),
        "the failing test is named: {}",
        failed.all()
    );
    assert!(
        failed
            .stdout
            .contains("PASS minTests: 4 (expected at least 4)"),
        "{}",
        failed.all()
    );

    let md = cli
        .run(&[
            "-o",
            "markdown",
            "launch",
            "gate",
            &id,
            "--max-failures",
            "0",
        ])
        .code(10);
    assert!(
        md.stdout
            .contains("| maxFailures | at most 0 | 1 (failed 1, broken 0): test 0 | **fail** |"),
        "{}",
        md.all()
    );
    let json = cli
        .run(&["-o", "json", "launch", "gate", &id, "--min-pass-rate", "75"])
        .ok();
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(
        report["outcomes"][0]["actual"],
        "75% (3 passed of 4 that ran)"
    );

    let bad = cli
        .run(&["launch", "gate", &id, "--min-pass-rate", "150"])
        .code(2);
    assert!(bad.stderr.contains("minPassRate"), "{}", bad.all());

    // Project rules: a project token may read them, only an admin sets them.
    let token = cli
        .run(&["project", "token", "1"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let project_cli = Cli::new(&server.url, &token);
    project_cli
        .run(&["project", "gate", "1", "--max-failures", "5"])
        .code(5);
    let set = cli
        .run(&["project", "gate", "1", "--max-failures", "0"])
        .ok();
    assert!(set.stdout.contains("max failures: 0"), "{}", set.all());
    let read = project_cli.run(&["project", "gate", "1"]).ok();
    assert!(read.stdout.contains("max failures: 0"), "{}", read.all());
    // The command line cannot loosen them.
    project_cli
        .run(&["launch", "gate", &id, "--max-failures", "3"])
        .code(10);

    // Closed: the verdict of the project's rules is stored and final.
    cli.run(&["launch", "close", &id]).ok();
    let stored = project_cli
        .run(&["launch", "gate", &id, "--wait", "--timeout", "5s"])
        .code(10);
    assert!(
        stored.stdout.contains("(stored when the launch closed)"),
        "{}",
        stored.all()
    );
    assert_eq!(
        server.api().get(&format!("/api/launch/{id}"))["gatePassed"],
        false
    );
}
