//! The launch page's results list, page by page, for a launch with retried
//! tests over two job runs (filled by the real CLI), on SQLite and
//! PostgreSQL: each test once by its latest attempt, grouped by job run,
//! failures first, by name; the totals and the pager; the status, job run,
//! text and "earlier attempts" filters; and all of it again after new
//! attempts and new tests arrive (the stored overview is computed again).

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::*;

/// The results section of a launch page.
fn results_section(page: &str) -> &str {
    let from = page.find("id=\"results\"").expect("results section");
    let to = page[from..]
        .find("id=\"manual\"")
        .map_or(page.len(), |i| from + i);
    &page[from..to]
}

/// The test names listed, in order.
fn names(page: &str) -> Vec<String> {
    results_section(page)
        .split("href=\"/result/")
        .skip(1)
        .map(|s| {
            let s = &s[s.find('>').unwrap() + 1..];
            s[..s.find('<').unwrap()].to_string()
        })
        .collect()
}

/// "N result(s) shown across pages" (launch pages; a job run's page says
/// its total in the pager only).
fn total(page: &str) -> Option<usize> {
    let s = results_section(page);
    let end = s.find(" result(s) shown across pages")?;
    let start = s[..end].rfind('>').unwrap() + 1;
    Some(s[start..end].trim().parse().unwrap())
}

/// One stored attempt of the model.
#[derive(Clone)]
struct Attempt {
    /// `a` or `b`: the job (and its one job run).
    job: char,
    history: String,
    name: String,
    status: &'static str,
    start: i64,
}

fn rank(status: &str) -> u8 {
    match status {
        "failed" => 0,
        "broken" => 1,
        "unknown" => 2,
        "skipped" => 3,
        _ => 4,
    }
}

/// What the list should show: latest attempts only unless `retries`, kept
/// by `keep`, ordered as the page orders them; and how many are superseded.
fn expected(
    all: &[Attempt],
    retries: bool,
    keep: impl Fn(&Attempt) -> bool,
) -> (Vec<String>, usize) {
    let mut latest: BTreeMap<(char, &str), &Attempt> = BTreeMap::new();
    for a in all {
        let e = latest.entry((a.job, a.history.as_str())).or_insert(a);
        if a.start > e.start {
            *e = a;
        }
    }
    let is_latest = |a: &Attempt| std::ptr::eq(latest[&(a.job, a.history.as_str())], a);
    let mut shown: Vec<&Attempt> = all
        .iter()
        .filter(|a| (retries || is_latest(a)) && keep(a))
        .collect();
    shown.sort_by(|x, y| (x.job, rank(x.status), &x.name).cmp(&(y.job, rank(y.status), &y.name)));
    let superseded = shown.iter().filter(|a| !is_latest(a)).count();
    (shown.iter().map(|a| a.name.clone()).collect(), superseded)
}

fn full_name(a: &Attempt) -> String {
    format!("paged.{}.{}", a.job, a.name.replace(' ', "_"))
}

fn write(dir: &Path, uuid: &str, a: &Attempt) {
    let json = serde_json::json!({
        "uuid": uuid, "historyId": a.history, "name": a.name,
        "fullName": full_name(a),
        "status": a.status, "start": a.start, "stop": a.start + 20,
    });
    std::fs::write(dir.join(format!("{uuid}-result.json")), json.to_string()).unwrap();
}

/// Writes the attempts into a fresh directory per job and uploads each as
/// its GitLab pipeline (job `a`: project 71, pipeline 8101; `b`: 72, 8102).
fn upload(server: &TestServer, launch: &str, batch: &[Attempt], tag: &str) {
    for job in ['a', 'b'] {
        let dir = server.work_dir().join(format!("{tag}-{job}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut n = 0;
        for (i, a) in batch.iter().enumerate().filter(|(_, a)| a.job == job) {
            write(&dir, &format!("{tag}-{job}-{i}"), a);
            n += 1;
        }
        if n == 0 {
            continue;
        }
        let (project, pipeline) = if job == 'a' {
            ("71", "8101")
        } else {
            ("72", "8102")
        };
        server
            .cli()
            .gitlab(pipeline)
            .envs(&[
                ("CI_PROJECT_ID", project),
                ("CI_PROJECT_NAME", &format!("suite-{job}")),
                ("ALLURE_LAUNCH_ID", launch),
            ])
            .run(&["upload", dir.to_str().unwrap()])
            .ok();
    }
}

fn attempt(job: char, i: usize, status: &'static str, start: i64) -> Attempt {
    Attempt {
        job,
        history: format!("h-{job}-{i}"),
        name: format!("case {job}{i:03}"),
        status,
        start,
    }
}

/// Every page of a filter, concatenated; each page checked against its
/// slice of `want` and the total.
fn all_pages(ui: &UiSession, base: &str, want: &[String]) {
    let pages = want.len().div_ceil(100).max(1);
    let launch_page = base.starts_with("/launch/");
    let mut seen = Vec::new();
    for p in 0..pages {
        let page = ui.get(&format!("{base}&page={p}"));
        if launch_page {
            assert_eq!(total(&page), Some(want.len()), "{base} page {p}: total");
        }
        let got = names(&page);
        let from = p * 100;
        let to = (from + 100).min(want.len());
        assert_eq!(got, want[from..to].to_vec(), "{base} page {p}");
        if pages > 1 {
            assert!(
                page.contains(&format!(
                    "Page {} of {pages} · {} in all",
                    p + 1,
                    want.len()
                )),
                "{base} page {p}: pager"
            );
        }
        seen.extend(got);
    }
    // Past the last page: nothing listed, the total still said.
    let past = ui.get(&format!("{base}&page={pages}"));
    assert!(names(&past).is_empty(), "{base}: past the last page");
    if launch_page {
        assert_eq!(
            total(&past),
            Some(want.len()),
            "{base}: total past the last page"
        );
    }
    assert_eq!(seen, want, "{base}: all pages");
}

fn check(server: &TestServer) {
    let launch = server
        .cli()
        .run(&[
            "launch",
            "create",
            "--launch-name",
            "Paged results",
            "--format",
            "ID",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let t0 = 1_700_000_000_000i64;
    let mut all: Vec<Attempt> = Vec::new();
    // Job a: 150 tests of every status; every 15th retried after a broken
    // attempt, test 7 passed after failing first.
    for i in 0..150 {
        let status = match i % 10 {
            0 => "failed",
            1 => "broken",
            2 => "skipped",
            3 => "unknown",
            _ => "passed",
        };
        if i % 15 == 0 {
            all.push(attempt('a', i, "broken", t0 + i as i64));
        }
        if i == 7 {
            all.push(attempt('a', i, "failed", t0 + i as i64));
        }
        all.push(attempt('a', i, status, t0 + 10_000 + i as i64));
    }
    // Job b: 130 tests, every 8th failed, every 20th retried.
    for i in 0..130 {
        let status = if i % 8 == 0 { "failed" } else { "passed" };
        if i % 20 == 0 {
            all.push(attempt('b', i, "failed", t0 + i as i64));
        }
        all.push(attempt('b', i, status, t0 + 10_000 + i as i64));
    }
    upload(server, &launch, &all, "first");

    let ui = UiSession::login(&server.url);
    let check_all = |all: &[Attempt], step: &str| {
        let base = format!("/launch/{launch}?");
        let first = ui.get(&format!("/launch/{launch}"));
        let (latest, _) = expected(all, false, |_| true);
        let (attempts, superseded) = expected(all, true, |_| true);
        assert!(
            first.contains(&format!("<dt>Tests</dt><dd>{}", latest.len())),
            "{step}: tests in the summary"
        );
        assert!(
            first.contains(&format!(" (+{} retries)", attempts.len() - latest.len())),
            "{step}: retries in the summary"
        );
        assert_eq!(names(&first), latest[..100].to_vec(), "{step}: page 1");
        all_pages(&ui, &base, &latest);

        // Earlier attempts too: each marked as such.
        all_pages(&ui, &format!("{base}retries=1"), &attempts);
        let shown: usize = (0..attempts.len().div_ceil(100))
            .map(|p| {
                results_section(&ui.get(&format!("{base}retries=1&page={p}")))
                    .matches("class=\"badge retry\"")
                    .count()
            })
            .sum();
        assert_eq!(shown, superseded, "{step}: earlier attempts marked");

        // Filters: a status, a job run, a text, a status of earlier attempts.
        let (failed, _) = expected(all, false, |a| a.status == "failed");
        all_pages(&ui, &format!("{base}status=failed"), &failed);
        let runs: Vec<String> = first
            .split("href=\"/jobrun/")
            .skip(1)
            .map(|s| s.chars().take_while(char::is_ascii_digit).collect())
            .collect();
        let run_b = runs.iter().find(|r| **r != runs[0]).expect("two job runs");
        let (only_b, _) = expected(all, false, |a| a.job == 'b');
        all_pages(&ui, &format!("{base}jr={run_b}"), &only_b);
        let (text, _) = expected(all, false, |a| {
            a.name.contains("a01") || full_name(a).to_lowercase().contains("a01")
        });
        assert!(!text.is_empty());
        all_pages(&ui, &format!("{base}q=A01"), &text);
        let (broken_all, _) = expected(all, true, |a| a.status == "broken");
        all_pages(&ui, &format!("{base}status=broken&retries=1"), &broken_all);
        let (b_failed_text, _) = expected(all, false, |a| {
            a.job == 'b' && a.status == "failed" && full_name(a).contains("b1")
        });
        all_pages(
            &ui,
            &format!("{base}jr={run_b}&status=failed&q=b1"),
            &b_failed_text,
        );
        // The job run's own page lists the same.
        all_pages(&ui, &format!("/jobrun/{run_b}?"), &only_b);
    };
    check_all(&all, "first upload");

    // New attempts: the failed tests of job a pass now, five of job b fail;
    // and twenty new tests of job a.
    let t1 = t0 + 100_000;
    let mut more: Vec<Attempt> = Vec::new();
    for i in (0..150).filter(|i| i % 10 == 0) {
        more.push(attempt('a', i, "passed", t1 + i as i64));
    }
    for i in 1..6 {
        more.push(attempt('b', i, "failed", t1 + i as i64));
    }
    for i in 150..170 {
        more.push(attempt('a', i, "passed", t1 + i as i64));
    }
    upload(server, &launch, &more, "second");
    all.extend(more);
    check_all(&all, "after new results");
}

#[test]
fn results_pages_of_a_launch_with_retries() {
    check(&TestServer::start());
}

#[test]
fn results_pages_of_a_launch_with_retries_on_postgres() {
    let Some(pg) = crate::pg::PgCluster::start() else {
        return;
    };
    let url = pg.database("paged");
    check(&TestServer::start_with(&["--database-url", &url]));
}
