//! Printing shared by several commands: JSON, launch links, counts by status,
//! the Markdown launch summary, the upload report with its exit code, and test
//! case lines and server-led runs.

use anyhow::Result;
use onelaunch_api::{self as api, LaunchDto};
use onelaunch_client::upload::UploadReport;
use serde_json::json;

use crate::cli::{Global, Output};
use crate::config::Conn;
use crate::exit;
use crate::target;

pub(crate) fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(crate) fn launch_url(conn: &Conn, l: &LaunchDto) -> String {
    l.url
        .clone()
        .unwrap_or_else(|| format!("{}/launch/{}", conn.endpoint, l.id))
}

/// A Markdown summary of a launch (for `$GITHUB_STEP_SUMMARY` and friends).
pub(crate) fn markdown_summary(
    conn: &Conn,
    l: &LaunchDto,
    stats: &[api::StatisticItem],
    runs: &[api::JobRunDto],
) -> String {
    let state = if l.closed { "closed" } else { "open" };
    let total: i64 = stats.iter().map(|s| s.count).sum();
    let mut md = format!(
        "### onelaunch: [{}]({}) ({state})\n\n| Status | Count |\n|---|---:|\n",
        md_escape(&l.name),
        launch_url(conn, l)
    );
    for s in stats {
        md.push_str(&format!("| {} | {} |\n", s.status, s.count));
    }
    md.push_str(&format!("| **total** | **{total}** |\n\n"));
    if !runs.is_empty() {
        md.push_str("| Job run | Stage | Status | Results |\n|---|---|---|---:|\n");
        for r in runs {
            md.push_str(&format!(
                "| {} / {} | {} | {} | {} |\n",
                md_escape(&r.job.name),
                md_escape(&r.name),
                r.stage,
                r.status,
                r.result_count
            ));
        }
    }
    md
}

pub(crate) fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace(['\n', '\r'], " ")
}

pub(crate) fn format_stats(stats: &[api::StatisticItem]) -> String {
    if stats.is_empty() {
        return "none".into();
    }
    stats
        .iter()
        .map(|s| format!("{} {}", s.status, s.count))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn print_report(
    g: &Global,
    conn: &Conn,
    t: &target::Target,
    r: &UploadReport,
) -> Result<()> {
    for p in &r.problems {
        // A file name may hold a newline: show such a name escaped, on one line.
        let path = p.path.display().to_string();
        if path.chars().any(char::is_control) {
            eprintln!("refused: {path:?}: {}", p.message);
        } else {
            eprintln!("refused: {path}: {}", p.message);
        }
    }
    let url = launch_url(conn, &t.launch);
    if g.output == Output::Json {
        print_json(&json!({
            "launchId": t.launch.id, "launchUrl": url, "jobRunId": t.job_run_id,
            "results": r.results, "new": r.results - r.already_present,
            "alreadyPresent": r.already_present,
            "byStatus": r.by_status, "attachments": r.attachments,
            "previouslyAcknowledged": r.previously_acknowledged,
            "fixtures": r.fixtures,
            "globalErrors": r.global_errors, "globalAttachments": r.global_attachments,
            "refused": r.problems.iter().map(|p| json!({"path": p.path, "message": p.message})).collect::<Vec<_>>(),
        }))?;
    } else {
        let by: Vec<String> = r
            .by_status
            .iter()
            .map(|(k, v)| format!("{} {v}", crate::term::status(k)))
            .collect();
        println!("Launch [{}] {}", t.launch.id, t.launch.name);
        if let Some(id) = t.job_run_id {
            println!("Job Run [{id}]");
        }
        // Results the launch already held (sent before) are not counted as
        // uploaded: nothing was added for them.
        println!(
            "Uploaded {} new results, {} already present ({}), {} attachments, {} fixtures",
            r.results - r.already_present,
            r.already_present,
            if by.is_empty() {
                "none".into()
            } else {
                by.join(", ")
            },
            r.attachments,
            r.fixtures
        );
        if r.global_errors + r.global_attachments > 0 {
            println!(
                "Problems outside tests: {} errors, {} attachments (e.g. a failing hook; see `onelaunch launch show {}`)",
                r.global_errors, r.global_attachments, t.launch.id
            );
        }
        if r.previously_acknowledged > 0 {
            println!(
                "Not sent again: {} results the server had acknowledged before",
                r.previously_acknowledged
            );
        }
        if !r.problems.is_empty() {
            println!("Refused {} files (see above)", r.problems.len());
        }
        println!("Launch link: {url}");
    }
    Ok(())
}

/// Refused files come first (exit 3); then an upload that delivered no result
/// at all (result files without tests, e.g. an empty JUnit report) is exit 9
/// unless `allow_empty`.
pub(crate) fn exit_for(report: &UploadReport, allow_empty: bool) -> u8 {
    if !report.problems.is_empty() {
        exit::FILES_REFUSED
    } else if report.results == 0
        && report.previously_acknowledged == 0
        && report.global_errors + report.global_attachments == 0
        && !allow_empty
    {
        eprintln!("error: the inputs held no test results; nothing was uploaded (pass --allow-empty to make this a success)");
        exit::NO_RESULTS
    } else {
        exit::OK
    }
}

fn executor_name(c: &api::TestCaseDto) -> String {
    match &c.job {
        Some(j) => format!("[{}] {}", j.id, j.name),
        None => "manual".into(),
    }
}

/// One test case per line, under [`CASE_HEADER`] (`testcase list`, `plan show`).
pub(crate) fn case_line(c: &api::TestCaseDto) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        c.id,
        c.allure_id.as_deref().unwrap_or("-"),
        c.last_status.as_deref().unwrap_or("-"),
        executor_name(c),
        c.full_name.as_deref().unwrap_or(&c.name)
    )
}

pub(crate) const CASE_HEADER: &str = "ID\tALLURE_ID\tSTATUS\tEXECUTOR\tNAME";

/// Prints a run: the launch id alone on stdout (for `id=$(onelaunch plan run …)`),
/// the details on stderr; `-o json` prints everything on stdout.
/// `added`: the job runs were added to an existing launch (`--launch-id`).
pub(crate) fn print_run(g: &Global, run: &api::ServerRunDto, added: bool) -> Result<()> {
    if g.output == Output::Json {
        return print_json(run);
    }
    println!("{}", run.launch.id);
    eprintln!(
        "Launch [{}] {} {}{}",
        run.launch.id,
        run.launch.name,
        if added {
            "given more job runs"
        } else {
            "created"
        },
        run.launch
            .url
            .as_deref()
            .map(|u| format!(": {u}"))
            .unwrap_or_default()
    );
    for p in &run.job_runs {
        let r = &p.job_run;
        let error = r
            .error_message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        eprintln!(
            "  Job run [{}] of job [{}] {}: {} test cases, {}{error}",
            r.id,
            r.job.id,
            r.job.name,
            p.test_case_ids.len(),
            r.stage
        );
    }
    if !run.manual.is_empty() {
        let ids: Vec<String> = run.manual.iter().map(|c| c.id.to_string()).collect();
        eprintln!(
            "  Manual: {} test cases ({}); record them with `onelaunch result manual --launch-id {} --case ID --status S`",
            run.manual.len(),
            ids.join(", "),
            run.launch.id
        );
    }
    let failed = run
        .job_runs
        .iter()
        .filter(|p| p.job_run.stage == api::stage::RUN_FAILURE)
        .count();
    if failed > 0 {
        eprintln!("warning: {failed} job run(s) could not be triggered (see above)");
    }
    Ok(())
}

/// `N of M planned tests reported`, then the missing ones by name.
pub(crate) fn describe_planned(p: &onelaunch_api::PlannedScope) -> String {
    let mut out = p.summary();
    let missing = p.missing_count();
    if missing > 0 {
        let names: Vec<String> = p
            .missing
            .iter()
            .map(|c| format!("{} (test case {})", c.name, c.test_case_id))
            .collect();
        out.push_str(&format!("; missing {missing}: {}", names.join(", ")));
        let more = missing - p.missing.len() as i64;
        if more > 0 {
            out.push_str(&format!(" and {more} more"));
        }
    }
    out
}

/// A Unix time as `2025-01-06 09:05 UTC` (launch names, token dates).
pub(crate) fn utc_minutes(secs: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_minutes_is_the_calendar_time_in_utc() {
        assert_eq!(super::utc_minutes(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc_minutes(1_709_210_096), "2024-02-29 12:34 UTC");
    }
}
