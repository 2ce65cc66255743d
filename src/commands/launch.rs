//! `launch create|close|reopen|delete|list|show`.

use anyhow::Result;
use onelaunch_api as api;
use serde_json::json;

use super::close_wait::{self, describe_waiting, participants, summary_line};
use crate::cli::{Global, LaunchCmd, Output};
use crate::config::connect;
use crate::exit;
use crate::output::{
    describe_planned, format_stats, launch_url, markdown_summary, md_escape, print_json,
};
use crate::settings;

pub(crate) async fn run(g: &Global, cmd: LaunchCmd) -> Result<u8> {
    let cmd = match cmd {
        LaunchCmd::Gate(args) => return super::gate::launch(g, args).await,
        LaunchCmd::Rerun(args) => return super::rerun::run(g, args).await,
        LaunchCmd::Compare(args) => return super::compare::compare(g, args).await,
        LaunchCmd::Combine(args) => return super::compare::combine(g, args).await,
        cmd => cmd,
    };
    let conn = connect(g)?;
    match cmd {
        LaunchCmd::Create(a) => {
            let l = conn
                .client
                .create_launch(&api::LaunchCreate {
                    name: a.launch_name,
                    project_id: conn.project_id,
                    tags: settings::split_tags(a.launch_tags.as_deref()),
                    ..Default::default()
                })
                .await?;
            if a.format.is_some() {
                println!("{}", l.id);
            } else if g.output == Output::Json {
                print_json(&vec![&l])?;
            } else {
                if !a.no_header {
                    println!("ID\tNAME\tURL");
                }
                println!("{}\t{}\t{}", l.id, l.name, launch_url(&conn, &l));
            }
        }
        LaunchCmd::Close { id, wait, timeout } => {
            return close_wait::close(g, &conn, id, wait.then_some(timeout)).await;
        }
        LaunchCmd::Reopen { id } => {
            conn.client.reopen_launch(id).await?;
            if g.output == Output::Json {
                print_json(&json!({"id": id, "closed": false}))?;
            } else {
                println!("Launch [{id}] reopened");
            }
        }
        LaunchCmd::Delete { ids, force } => return delete(g, &conn, &ids, force).await,
        LaunchCmd::List {
            size,
            page,
            no_header,
        } => {
            let p = conn
                .client
                .list_launches(conn.project_id, page, size)
                .await?;
            if g.output == Output::Json {
                print_json(&p.content)?;
            } else {
                if !no_header {
                    println!("ID\tSTATE\tNAME");
                }
                for l in &p.content {
                    let state = if l.closed { "closed" } else { "open" };
                    println!("{}\t{state}\t{}", l.id, l.name);
                }
            }
        }
        LaunchCmd::Gate(_)
        | LaunchCmd::Rerun(_)
        | LaunchCmd::Compare(_)
        | LaunchCmd::Combine(_) => {
            unreachable!("handled above")
        }
        LaunchCmd::Show { id } => {
            let l = conn.client.get_launch(id).await?;
            let stats = conn.client.launch_statistic(id).await?;
            let runs = conn.client.launch_job_runs(id).await?;
            let participants = participants(&conn, &l).await?;
            let globals = conn.client.launch_globals(id).await?;
            if g.output == Output::Json {
                print_json(&json!({"launch": l, "statistic": stats, "jobRuns": runs,
                    "participants": participants, "globals": globals,
                    "problems": problems(&stats, &runs, &globals)}))?;
            } else if g.output == Output::Markdown {
                print!("{}", markdown_summary(&conn, &l, &stats, &runs));
                for r in &runs {
                    if let Some(m) = r.error_message.as_deref().filter(|m| !m.is_empty()) {
                        println!(
                            "\n**{} / {}** ({}): {}",
                            md_escape(&r.job.name),
                            md_escape(&r.name),
                            r.stage,
                            md_escape(m)
                        );
                    }
                }
                if !participants.complete() {
                    println!(
                        "\n**Not reported yet:** {}",
                        md_escape(&describe_waiting(&participants))
                    );
                }
                if let Some(p) = &l.planned {
                    println!("\n**Planned:** {}", md_escape(&describe_planned(p)));
                }
                if globals.error_count + globals.attachment_count > 0 {
                    println!("\n**Problems outside tests:** {}", globals_counts(&globals));
                    for e in &globals.errors {
                        println!(
                            "- {}",
                            md_escape(e.message.as_deref().unwrap_or("(no message)"))
                        );
                    }
                }
            } else {
                let state = if l.closed { "closed" } else { "open" };
                println!("Launch [{}] {} ({state})", l.id, l.name);
                println!("URL: {}", launch_url(&conn, &l));
                if !l.tags.is_empty() {
                    let tags: Vec<&str> = l.tags.iter().map(|t| t.name.as_str()).collect();
                    println!("Tags: {}", tags.join(", "));
                }
                if !l.issues.is_empty() {
                    let issues: Vec<String> = l.issues.iter().map(issue_text).collect();
                    println!("Issues: {}", issues.join(", "));
                }
                if !l.environment.is_empty() {
                    println!("Environment:");
                    for kv in &l.environment {
                        println!("  {} = {}", one_line(&kv.key), one_line(&kv.value));
                    }
                }
                let total: i64 = stats.iter().map(|s| s.count).sum();
                println!("Results: {total} ({})", format_stats(&stats));
                println!("{}", problems_line(&problems(&stats, &runs, &globals)));
                println!("{}", summary_line(&participants));
                if !participants.complete() {
                    println!("Not reported yet: {}", describe_waiting(&participants));
                }
                if let Some(p) = &l.planned {
                    println!("Planned: {}", describe_planned(p));
                }
                if let Some(r) = &l.reruns {
                    println!(
                        "Reruns: {} tests rerun, {} changed status",
                        r.rerun, r.changed
                    );
                }
                for r in &runs {
                    println!(
                        "  [{}] {} / {}  {} {}  {} results{}",
                        r.id,
                        r.job.name,
                        r.name,
                        r.stage,
                        r.status,
                        r.result_count,
                        r.planned
                            .as_ref()
                            .map(|p| format!("  ({})", p.summary()))
                            .unwrap_or_default()
                    );
                    if let Some(m) = r.error_message.as_deref().filter(|m| !m.is_empty()) {
                        println!("      {}: {}", r.stage, one_line(m));
                    }
                }
                print_globals(&conn, &globals).await;
            }
        }
    }
    Ok(exit::OK)
}

/// What counts as a problem of a launch: failed and broken tests (their
/// latest attempt), job runs that failed to run, and errors outside tests
/// (Allure 3 globals, e.g. a failing `beforeEach` hook).
fn problems(
    stats: &[api::StatisticItem],
    runs: &[api::JobRunDto],
    globals: &api::GlobalsDto,
) -> serde_json::Value {
    let tests: i64 = stats
        .iter()
        .filter(|s| s.status == "failed" || s.status == "broken")
        .map(|s| s.count)
        .sum();
    let run_failures = runs
        .iter()
        .filter(|r| r.stage == api::stage::RUN_FAILURE)
        .count() as i64;
    json!({
        "total": tests + run_failures + globals.error_count,
        "failedTests": tests,
        "runFailures": run_failures,
        "errorsOutsideTests": globals.error_count,
    })
}

/// `Problems: 4 (2 failed or broken tests, 1 run failure, 1 error outside tests)`.
fn problems_line(p: &serde_json::Value) -> String {
    let n = |k: &str| p[k].as_i64().unwrap_or(0);
    let plural = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "Problems: {} ({}, {}, {})",
        n("total"),
        plural(
            n("failedTests"),
            "failed or broken test",
            "failed or broken tests"
        ),
        plural(n("runFailures"), "run failure", "run failures"),
        plural(
            n("errorsOutsideTests"),
            "error outside tests",
            "errors outside tests"
        ),
    )
}

fn globals_counts(g: &api::GlobalsDto) -> String {
    format!(
        "{} error{}, {} attachment{}",
        g.error_count,
        if g.error_count == 1 { "" } else { "s" },
        g.attachment_count,
        if g.attachment_count == 1 { "" } else { "s" }
    )
}

/// Text attachments outside tests up to this size are printed by `launch show`.
const SHOWN_ATTACHMENT_BYTES: i64 = 4096;

/// The "Problems outside tests" section of `launch show`: each error (first
/// line of its message, job run and file) and attachment (small text ones with
/// their content).
async fn print_globals(conn: &crate::config::Conn, g: &api::GlobalsDto) {
    if g.error_count + g.attachment_count == 0 {
        return;
    }
    println!("Problems outside tests: {}", globals_counts(g));
    let origin = |jr: Option<api::Id>, file: &str| match jr {
        Some(jr) => format!("job run [{jr}], {}", one_line(file)),
        None => one_line(file),
    };
    for e in &g.errors {
        let message = e.message.as_deref().unwrap_or("(no message)");
        println!(
            "  error: {}  ({})",
            one_line(message),
            origin(e.job_run_id, &e.file_name)
        );
    }
    for a in &g.attachments {
        let ct = a.content_type.as_deref().unwrap_or("unknown type");
        let size = a
            .content_length
            .map(|n| format!("{n} bytes"))
            .unwrap_or_else(|| "not uploaded".into());
        println!(
            "  attachment: {} ({ct}, {size})  ({})",
            one_line(&a.name),
            origin(a.job_run_id, &a.file_name)
        );
        let small_text = ct.starts_with("text/")
            && a.content_length.unwrap_or(i64::MAX) <= SHOWN_ATTACHMENT_BYTES;
        if let (true, Some(url)) = (small_text, &a.content_url) {
            if let Ok(bytes) = conn.client.content(url).await {
                for line in String::from_utf8_lossy(&bytes).lines() {
                    println!("      {}", one_line(line));
                }
            }
        }
    }
    let more = g.error_count - g.errors.len() as i64;
    if more > 0 {
        println!("  … and {more} more errors");
    }
}

/// An issue of a launch as text: its name (or key), with its link.
fn issue_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) => one_line(s),
        Value::Object(o) => {
            let field = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            let name = field("name").or_else(|| field("key"));
            match (name, field("url")) {
                (Some(n), Some(u)) => format!("{} ({})", one_line(n), one_line(u)),
                (Some(n), None) => one_line(n),
                (None, Some(u)) => one_line(u),
                (None, None) => one_line(&v.to_string()),
            }
        }
        other => one_line(&other.to_string()),
    }
}

/// Text from the server on one line: control characters become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `launch delete ID…`: each launch in turn; a failure is reported and the
/// rest still deleted; the exit code is the first failure's.
async fn delete(g: &Global, conn: &crate::config::Conn, ids: &[i64], force: bool) -> Result<u8> {
    let mut first_error = None;
    let mut report = Vec::new();
    for &id in ids {
        match conn.client.delete_launch(id, force).await {
            Ok(d) => {
                let n = |k: &str| d[k].as_i64().unwrap_or(0);
                if g.output == Output::Json {
                    report.push(json!({"id": id, "deleted": true, "results": n("results"),
                        "attachments": n("attachments"), "blobsRemoved": n("blobsRemoved"),
                        "bytesFreed": n("bytesFreed")}));
                } else {
                    println!(
                        "Launch [{id}] deleted: {} result(s), {} attachment(s); {} stored blob(s) removed, {} bytes freed",
                        n("results"),
                        n("attachments"),
                        n("blobsRemoved"),
                        n("bytesFreed")
                    );
                }
            }
            Err(e) => {
                let e = anyhow::Error::new(e).context(format!("launch {id} not deleted"));
                if first_error.is_none() {
                    first_error = Some(e);
                } else {
                    eprintln!("{}", crate::term::stderr_line(format!("error: {e:#}")));
                }
            }
        }
    }
    if g.output == Output::Json {
        print_json(&report)?;
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(exit::OK),
    }
}
