//! The terminal and logs: an upload in a (pseudo-)terminal shows a progress
//! line and colours; through pipes it writes no escape sequence; `--color`,
//! `NO_COLOR` and `CLICOLOR_FORCE` decide the colours.

use crate::support::*;

const ESC: char = '\x1b';

/// Runs `onelaunch <args>` inside a pseudo-terminal (`script` from
/// util-linux/bsdutils); returns what the terminal showed and the exit code.
fn in_terminal(cli: &Cli, args: &str) -> Run {
    which_script();
    let script = format!("script -qec 'onelaunch {args}' /dev/null");
    cli.bash(&script)
}

fn which_script() {
    let found = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    // `script` is part of every Debian/Ubuntu base system (bsdutils): no skip.
    assert!(
        found,
        "`script` (util-linux/bsdutils) is needed for this test"
    );
}

fn launch_id(api: &Api, name: &str) -> i64 {
    api.launches(1)
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("launch {name}"))["id"]
        .as_i64()
        .unwrap()
}

fn results_dir(server: &TestServer, name: &str, n: usize) -> String {
    let dir = server.work_dir().join(name);
    generate_results(&dir, name, n);
    dir.to_str().unwrap().to_string()
}

fn expected(n: i64) -> std::collections::BTreeMap<String, i64> {
    let failed = (n + 3) / 4;
    [
        ("failed".to_string(), failed),
        ("passed".to_string(), n - failed),
    ]
    .into_iter()
    .collect()
}

#[test]
fn an_upload_in_a_terminal_shows_progress_and_its_counts_match_the_server() {
    let server = TestServer::start();
    let api = server.api();
    let cli = server.cli();
    let dir = results_dir(&server, "tty", 300);

    let run = in_terminal(&cli, &format!("upload --launch-name tty-upload {dir}")).ok();
    let shown = run.stdout.clone();
    // The progress line: drawn at once, redrawn with a carriage return, and
    // its last frame holds the totals and a rate.
    assert!(shown.contains("Uploading: "), "{shown:?}");
    assert!(
        shown.contains("Uploaded: ") && shown.contains("300 results sent, 30 attachments"),
        "{shown:?}"
    );
    assert!(shown.contains(" results/s"), "{shown:?}");
    assert!(shown.contains('\r'), "{shown:?}");
    // Colours are on in a terminal: the statuses of the summary are painted.
    assert!(shown.contains("\x1b[31mfailed\x1b[0m 75"), "{shown:?}");
    assert!(shown.contains("\x1b[32mpassed\x1b[0m 225"), "{shown:?}");
    assert!(
        shown.contains("Uploaded 300 new results, 0 already present"),
        "{shown:?}"
    );
    let launch = launch_id(&api, "tty-upload");
    assert_eq!(api.statistic(launch), expected(300));
    assert_eq!(api.results(launch).len(), 300);
    assert!(
        !shown.contains(&cli.env["ALLURE_TOKEN"]),
        "the token is never printed"
    );

    // `--color never` in the terminal: the progress line still, no escape at all.
    let dir = results_dir(&server, "never", 200);
    let run = in_terminal(
        &cli,
        &format!("--color never upload --launch-name tty-never {dir}"),
    )
    .ok();
    assert!(!run.stdout.contains(ESC), "{:?}", run.stdout);
    assert!(
        run.stdout.contains("200 results sent, 20 attachments"),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stdout.contains("(failed 50, passed 150)"),
        "{:?}",
        run.stdout
    );
    assert_eq!(api.statistic(launch_id(&api, "tty-never")), expected(200));

    // NO_COLOR in the terminal: no colour either.
    let dir = results_dir(&server, "nocolor", 40);
    let run = in_terminal(
        &cli.clone().env("NO_COLOR", "1"),
        &format!("upload --launch-name tty-nocolor {dir}"),
    )
    .ok();
    assert!(!run.stdout.contains(ESC), "{:?}", run.stdout);

    // `-o json` and `--silent` in the terminal: no progress line.
    let dir = results_dir(&server, "quiet", 40);
    for flags in ["-o json", "--silent"] {
        let run = in_terminal(
            &cli,
            &format!("{flags} upload --launch-name tty-quiet {dir}"),
        )
        .ok();
        assert!(!run.stdout.contains("results sent"), "{:?}", run.stdout);
    }
}

fn assert_plain(run: &Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(!text.contains(ESC), "escape in {name}: {text:?}");
        assert!(!text.contains('\r'), "carriage return in {name}: {text:?}");
    }
}

#[test]
fn through_pipes_an_upload_writes_plain_lines_and_color_flags_decide_the_rest() {
    let server = TestServer::start();
    let api = server.api();
    let cli = server.cli();
    let dir = results_dir(&server, "piped", 300);
    let missing = server.work_dir().join("missing");
    let missing = missing.to_str().unwrap();

    // stdout and stderr piped: plain lines only, the summary, no progress frames.
    let run = cli.run(&["upload", "--launch-name", "piped", &dir]).ok();
    assert_plain(&run);
    assert!(
        run.stdout.contains(
            "Uploaded 300 new results, 0 already present (failed 75, passed 225), 30 attachments"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(api.statistic(launch_id(&api, "piped")), expected(300));
    // An error through a pipe: plain too.
    let run = cli.run(&["upload", missing]).code(2);
    assert_plain(&run);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);

    // `--color always` paints through a pipe: the statuses on stdout, the
    // `error:` prefix on stderr (which `--silent` still prints).
    let run = cli
        .run(&[
            "--color",
            "always",
            "upload",
            "--launch-name",
            "piped-always",
            &dir,
        ])
        .ok();
    assert!(
        run.stdout.contains("\x1b[31mfailed\x1b[0m 75"),
        "{:?}",
        run.stdout
    );
    assert!(!run.stderr.contains('\r'), "{:?}", run.stderr);
    let run = cli
        .run(&["--color", "always", "--silent", "upload", missing])
        .code(2);
    assert!(
        run.stderr.starts_with("\x1b[1;31merror:\x1b[0m "),
        "{:?}",
        run.stderr
    );

    // NO_COLOR wins over auto and CLICOLOR_FORCE, not over `--color always`.
    let no_color = cli.clone().env("NO_COLOR", "1");
    assert_plain(
        &no_color
            .run(&["upload", "--launch-name", "piped-nc", &dir])
            .ok(),
    );
    assert_plain(
        &no_color
            .clone()
            .env("CLICOLOR_FORCE", "1")
            .run(&["upload", missing]),
    );
    let run = no_color
        .run(&[
            "--color",
            "always",
            "upload",
            "--launch-name",
            "piped-nc-always",
            &dir,
        ])
        .ok();
    assert!(run.stdout.contains(ESC), "{:?}", run.stdout);
    // CLICOLOR_FORCE paints under `auto` through a pipe; `--color never` wins.
    let forced = cli.clone().env("CLICOLOR_FORCE", "1");
    let run = forced.run(&["upload", missing]);
    assert!(
        run.stderr.starts_with("\x1b[1;31merror:"),
        "{:?}",
        run.stderr
    );
    assert_plain(&forced.run(&["--color", "never", "upload", missing]));
    // `--color` takes auto, always or never only.
    let run = cli.run(&["--color", "sometimes", "upload", &dir]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("sometimes"), "{}", run.stderr);
    // Colours are for the terminal only: the data the server holds has none.
    let launch = launch_id(&api, "piped-always");
    assert_eq!(api.statistic(launch), expected(300));
}
