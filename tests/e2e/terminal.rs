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

/// A test command for `watch`: writes to stdout and stderr (a line left
/// unfinished while it copies its results, raw bytes when `raw`), copies the
/// results of `from` into `into`, and ends its output without a newline.
fn watch_child(server: &TestServer, name: &str, raw: bool) -> std::path::PathBuf {
    let script = server.work_dir().join(format!("{name}.sh"));
    let raw = if raw {
        r"printf '\xff\xfe raw \x1b[32mgreen\x1b[0m\r\n\x00nul\n'"
    } else {
        ""
    };
    std::fs::write(
        &script,
        format!(
            r#"set -e
printf 'child line 1\n'
printf 'child err 1\n' >&2
printf '....'
mkdir -p "$2"
cp "$1"/* "$2"/
printf 'done\n'
{raw}
printf 'err 2\n' >&2
printf 'last line without newline'
printf 'err tail' >&2
"#
        ),
    )
    .unwrap();
    script
}

/// The attachments the server holds for the results of `launch`.
fn attachments_on_server(api: &Api, launch: i64) -> usize {
    api.results(launch)
        .iter()
        .map(|r| {
            let id = r["id"].as_i64().unwrap();
            api.get(&format!("/api/testresult/{id}"))["attachments"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum()
}

/// The final summary line of `watch`: (results, attachments).
fn watch_summary(text: &str) -> (usize, usize) {
    let line = text
        .lines()
        .rev()
        .find_map(|l| {
            l.trim_start_matches('\r')
                .strip_prefix("onelaunch: watch: ")
        })
        .unwrap_or_else(|| panic!("no summary line in {text:?}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (words[1], words[3], words[4]),
        ("results,", "attachments", "sent")
    );
    (words[0].parse().unwrap(), words[2].parse().unwrap())
}

#[test]
fn watch_in_a_terminal_shows_a_status_line_between_the_commands_lines() {
    let server = TestServer::start();
    let api = server.api();
    let cli = server.cli();
    let src = results_dir(&server, "watch-tty-src", 40);
    let out = server.work_dir().join("watch-tty-results");
    let child = watch_child(&server, "watch-tty", false);

    let run = in_terminal(
        &cli,
        &format!(
            "watch --results {out} --launch-name tty-watch -- bash {child} {src} {out}",
            out = out.display(),
            child = child.display()
        ),
    )
    .ok();
    let shown = run.stdout;
    // The live line, drawn in place (carriage returns, no escape sequence of
    // onelaunch's own), with the session open before the command started.
    assert!(
        shown.contains("\rwatch: 0 results, 0 attachments sent, 0 files read, 0/s, session open"),
        "{shown:?}"
    );
    // The command's lines arrive whole (the terminal shows `\n` as `\r\n`):
    // nothing is drawn while its line `....done` is unfinished.
    for line in [
        "child line 1\r\n",
        "child err 1\r\n",
        "....done\r\n",
        "err 2\r\n",
    ] {
        assert!(shown.contains(line), "{line:?} in {shown:?}");
    }
    // Its unfinished last line is ended before the final summary.
    assert!(
        shown.contains("last line without newlineerr tail\r\nonelaunch: watch: 40 results, 4 attachments sent ("),
        "{shown:?}"
    );
    let display = &shown[..shown.find("Launch [1]").unwrap()];
    assert!(!display.contains(ESC), "{shown:?}");
    let launch = launch_id(&api, "tty-watch");
    assert_eq!(
        watch_summary(&shown),
        (
            api.results(launch).len(),
            attachments_on_server(&api, launch)
        )
    );
    assert_eq!(api.statistic(launch), expected(40));

    // `--silent`: no status, the command's output as it is.
    let run = in_terminal(
        &cli,
        &format!(
            "--silent watch --results {out} --launch-name tty-watch-silent -- bash {child} {src} {out}",
            out = server.work_dir().join("watch-tty-silent").display(),
            child = child.display()
        ),
    )
    .ok();
    assert!(!run.stdout.contains("watch: "), "{:?}", run.stdout);
    assert!(run.stdout.contains("child line 1\r\n"), "{:?}", run.stdout);
}

#[test]
fn watch_through_pipes_keeps_the_commands_output_byte_for_byte_and_writes_plain_lines() {
    let server = TestServer::start();
    let api = server.api();
    let cli = server.cli();
    let src = results_dir(&server, "watch-pipe-src", 40);
    let src = src.as_str();
    let child = watch_child(&server, "watch-pipe", true);
    let child = child.to_str().unwrap();

    // What the command writes when it runs alone.
    let alone = std::process::Command::new("bash")
        .args([
            child,
            src,
            server.work_dir().join("alone").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(alone.status.success());

    // stdout and stderr apart: each is the command's, byte for byte; then
    // the report on stdout, the summary on stderr.
    let out = server.work_dir().join("watch-pipe-results");
    let out = out.to_str().unwrap();
    let run = cli
        .command(&[
            "watch",
            "--results",
            out,
            "--launch-name",
            "piped-watch",
            "--",
            "bash",
            child,
            src,
            out,
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.stdout.starts_with(&alone.stdout),
        "{:?}\nis not the command's {:?}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&alone.stdout)
    );
    let report = String::from_utf8_lossy(&run.stdout[alone.stdout.len()..]).into_owned();
    assert!(
        report.starts_with("\nLaunch [1] piped-watch\nUploaded 40 new results"),
        "{report:?}"
    );
    let stderr = &run.stderr;
    let at = stderr
        .windows(alone.stderr.len())
        .position(|w| w == alone.stderr.as_slice())
        .unwrap_or_else(|| {
            panic!(
                "the command's stderr is not in {:?}",
                String::from_utf8_lossy(stderr)
            )
        });
    let before = String::from_utf8_lossy(&stderr[..at]).into_owned();
    let after = String::from_utf8_lossy(&stderr[at + alone.stderr.len()..]).into_owned();
    for ours in [&before, &after, &report] {
        assert!(!ours.contains(ESC) && !ours.contains('\r'), "{ours:?}");
    }
    assert!(before.starts_with("Launch link: "), "{before:?}");
    assert!(
        after.starts_with("\nonelaunch: watch: 40 results, 4 attachments sent ("),
        "{after:?}"
    );
    let launch = launch_id(&api, "piped-watch");
    assert_eq!(
        watch_summary(&after),
        (
            api.results(launch).len(),
            attachments_on_server(&api, launch)
        )
    );
    assert_eq!(api.statistic(launch), expected(40));

    // One file for both (`2>&1`): the command's writes in their own order.
    let child_plain = watch_child(&server, "watch-merged", false);
    let child_plain = child_plain.to_str().unwrap();
    let alone = cli.bash(&format!(
        "bash {child_plain} {src} {}/alone2 2>&1",
        server.work_dir().display()
    ));
    let out = server.work_dir().join("watch-merged-results");
    let run = cli
        .bash(&format!(
            "onelaunch watch --results {out} --launch-name merged-watch -- bash {child_plain} {src} {out} 2>&1",
            out = out.display()
        ))
        .ok();
    assert_plain(&run);
    let merged = &run.stdout;
    assert!(
        merged.contains(&alone.stdout),
        "{merged:?} lacks {:?}",
        alone.stdout
    );
    assert!(merged.starts_with("Launch link: "), "{merged:?}");
    let launch = launch_id(&api, "merged-watch");
    assert_eq!(
        watch_summary(merged),
        (
            api.results(launch).len(),
            attachments_on_server(&api, launch)
        )
    );

    // `--silent`: the command's output only, nothing of onelaunch's on stderr.
    let out = server.work_dir().join("watch-silent-results");
    let out = out.to_str().unwrap();
    let run = cli
        .command(&[
            "--silent",
            "watch",
            "--results",
            out,
            "--launch-name",
            "silent-watch",
            "--",
            "bash",
            child,
            src,
            out,
        ])
        .output()
        .unwrap();
    assert!(run.status.success());
    assert_eq!(run.stderr, alone_stderr(child, src, &server));
}

fn alone_stderr(child: &str, src: &str, server: &TestServer) -> Vec<u8> {
    std::process::Command::new("bash")
        .args([
            child,
            src,
            server.work_dir().join("alone3").to_str().unwrap(),
        ])
        .output()
        .unwrap()
        .stderr
}

#[test]
fn ctrl_c_during_watch_reaches_the_command_whose_last_words_and_results_still_arrive() {
    use std::os::unix::process::CommandExt;
    let server = TestServer::start();
    let api = server.api();
    let cli = server.cli();
    let src = results_dir(&server, "watch-int-src", 40);
    let work = server.work_dir();
    let out = work.join("watch-int-results");
    let ready = work.join("watch-int-ready");
    let script = work.join("watch-int.sh");
    std::fs::write(
        &script,
        format!(
            r#"trap 'printf "interrupted: summary\n"; exit 5' INT
mkdir -p {out}
cp {src}/* {out}/
printf 'started\n'
touch {ready}
while :; do sleep 0.05; done
"#,
            out = out.display(),
            ready = ready.display()
        ),
    )
    .unwrap();
    let mut watch = cli.command(&[
        "watch",
        "--results",
        out.to_str().unwrap(),
        "--launch-name",
        "interrupted-watch",
        "--",
        "bash",
        script.to_str().unwrap(),
    ]);
    // Its own process group, as a shell's foreground job gets: Ctrl-C goes
    // to the whole group.
    watch
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = watch.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let group = format!("-{}", child.id());
    let kill = std::process::Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    assert!(kill.success());
    let run = Run::from(child.wait_with_output().unwrap());
    // watch ends with the command's code, after copying what it printed
    // on the interrupt and uploading its results.
    let run = run.code(5);
    assert!(
        run.stdout.starts_with("started\ninterrupted: summary\n"),
        "{:?}",
        run.stdout
    );
    let launch = launch_id(&api, "interrupted-watch");
    assert_eq!(watch_summary(&run.stderr), (api.results(launch).len(), 4));
    assert_eq!(api.statistic(launch), expected(40));
}
