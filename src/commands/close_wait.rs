//! `launch close [--wait [--timeout D]]` and the participants part of
//! `launch show`.
//!
//! Closing is idempotent and any participant may do it. With `--wait` the
//! command polls the launch until every job run is done (stopped; one that
//! only uploads created: its uploads ended), no upload session is open (an
//! `upload` or `watch` in flight, e.g. a slower shard of the same job run)
//! and every expected job run (`job-run start --expect N`) has started, then
//! closes. A session silent for longer than the server's upload-session
//! timeout is reported as abandoned and not waited for. When the timeout passes first it closes anyway,
//! prints a warning naming the job runs that never reported, and exits 0: the
//! launch is closed as asked, and a straggler must not fail the pipeline's
//! final job. `-o json` reports the same as `timedOut`, `unfinished` and
//! `missing`. `unfinished` and `missing` are always those of the launch as
//! closed (what `launch show` reports), also when it was closed already.

use std::time::{Duration, Instant};

use anyhow::Result;
use onelaunch_api::{self as api, Id, Participants};
use serde_json::json;

use crate::cli::{Global, Output};
use crate::config::Conn;
use crate::duration;
use crate::exit;
use crate::output::print_json;

/// The participants of a launch: from the server's answer, or computed from
/// its job runs when the server does not send them.
pub(crate) async fn participants(conn: &Conn, launch: &api::LaunchDto) -> Result<Participants> {
    if let Some(p) = &launch.participants {
        return Ok(p.clone());
    }
    let runs = conn.client.launch_job_runs(launch.id).await?;
    let started = runs.len() as i64;
    let unfinished: Vec<api::ParticipantRef> = runs
        .iter()
        .filter(|r| r.stage != api::stage::FINISHED && r.stage != api::stage::RUN_FAILURE)
        .map(|r| api::ParticipantRef {
            id: r.id,
            name: format!("{} / {}", r.job.name, r.name),
            stage: r.stage.clone(),
        })
        .collect();
    let expected = launch.expected_job_runs;
    Ok(Participants {
        expected,
        started,
        finished: started - unfinished.len() as i64,
        missing: expected.map_or(0, |e| (e - started).max(0)),
        unfinished,
        ..Participants::default()
    })
}

/// `github CI / run 7` (what a session said of its pipeline), or `job run 12`.
fn session_owner(s: &api::OpenSession) -> String {
    let ci = s.ci.clone().unwrap_or_default();
    let names: Vec<String> = [ci.kind, ci.job_name, ci.run_name]
        .into_iter()
        .flatten()
        .filter(|n| !n.trim().is_empty())
        .collect();
    let mut text = if names.is_empty() {
        s.job_run_id
            .map_or("no job run".to_string(), |id| format!("job run {id}"))
    } else {
        names.join(" / ")
    };
    if let Some(url) = ci.run_url {
        text.push_str(&format!(" <{url}>"));
    }
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `upload session [5] of github / CI / run 7 (3 results so far)`.
fn describe_sessions(sessions: &[api::OpenSession]) -> String {
    sessions
        .iter()
        .map(|s| {
            format!(
                "upload session [{}] of {} ({} result{} so far)",
                s.id,
                session_owner(s),
                s.results,
                if s.results == 1 { "" } else { "s" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `[12] build / #3 (in_progress), [13] …; upload session [5] of …; 2 expected
/// job runs never started`.
pub(crate) fn describe_waiting(p: &Participants) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !p.unfinished.is_empty() {
        parts.push(
            p.unfinished
                .iter()
                .map(|r| format!("[{}] {} ({})", r.id, r.name, r.stage))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if !p.open_sessions.is_empty() {
        parts.push(format!(
            "in flight: {}",
            describe_sessions(&p.open_sessions)
        ));
    }
    if p.missing > 0 {
        parts.push(format!(
            "{} expected job run{} never started",
            p.missing,
            if p.missing == 1 { "" } else { "s" }
        ));
    }
    parts.join("; ")
}

/// `Abandoned (no activity for longer than the server's upload-session
/// timeout, not waited for): upload session [5] of …`, when there are any.
pub(crate) fn describe_abandoned(p: &Participants) -> Option<String> {
    (!p.abandoned_sessions.is_empty()).then(|| {
        format!(
            "abandoned (no activity for longer than the server's upload-session timeout; not waited for): {}",
            describe_sessions(&p.abandoned_sessions)
        )
    })
}

/// One line for `launch show`: `Job runs: 2 of 3 expected started, 1 finished`.
pub(crate) fn summary_line(p: &Participants) -> String {
    let started = match p.expected {
        Some(e) => format!("{} of {e} expected started", p.started),
        None => format!("{} started", p.started),
    };
    let mut line = format!("Job runs: {started}, {} finished", p.finished);
    if p.missing > 0 {
        line.push_str(&format!(", {} missing", p.missing));
    }
    line
}

/// `launch close ID [--wait --timeout D]`.
pub(crate) async fn close(g: &Global, conn: &Conn, id: Id, wait: Option<Duration>) -> Result<u8> {
    let mut timed_out: Option<Participants> = None;
    if let Some(timeout) = wait {
        timed_out = wait_for_participants(conn, id, timeout).await?;
    }
    conn.client.close_launch(id).await?;
    // What the launch holds now, as `launch show` reports it: also when it was
    // already closed before this command (waiting then ends at once).
    let launch = conn.client.get_launch(id).await?;
    let p = participants(conn, &launch).await?;
    // Errors outside tests (e.g. a failing hook) are problems of the launch.
    let global_errors = conn.client.launch_globals(id).await?.error_count;
    if g.output == Output::Json {
        print_json(&json!({
            "id": id,
            "closed": true,
            "timedOut": timed_out.is_some(),
            "unfinished": p.unfinished,
            "missing": p.missing,
            "globalErrors": global_errors,
            "openSessions": p.open_sessions,
            "abandonedSessions": p.abandoned_sessions,
        }))?;
    } else {
        println!("Launch [{id}] closed");
        if !p.complete() {
            println!("Never reported: {}", describe_waiting(&p));
        }
        if global_errors > 0 {
            println!(
                "Problems outside tests: {global_errors} errors (see `onelaunch launch show {id}`)"
            );
        }
        if let Some(a) = describe_abandoned(&p) {
            println!("Upload sessions {a}");
        }
    }
    Ok(exit::OK)
}

/// Polls until the launch's participants are complete (`None`) or the timeout
/// passes (`Some` with those that never reported).
async fn wait_for_participants(
    conn: &Conn,
    id: Id,
    timeout: Duration,
) -> Result<Option<Participants>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(250);
    let mut announced = false;
    loop {
        let launch = conn.client.get_launch(id).await?;
        if launch.closed {
            return Ok(None);
        }
        let p = participants(conn, &launch).await?;
        if p.complete() {
            if announced {
                eprintln!("Every job run of launch [{id}] has finished and no upload is in flight");
            }
            if let Some(a) = describe_abandoned(&p) {
                eprintln!("warning: launch [{id}]: upload sessions {a}");
            }
            return Ok(None);
        }
        let now = Instant::now();
        if now >= deadline {
            eprintln!(
                "warning: launch [{id}]: gave up waiting after {}; closing it anyway. Never reported: {}",
                duration::show(timeout),
                describe_waiting(&p)
            );
            return Ok(Some(p));
        }
        if !announced {
            eprintln!(
                "Waiting up to {} for launch [{id}]: {}",
                duration::show(timeout),
                describe_waiting(&p)
            );
            announced = true;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 3 / 2).min(Duration::from_secs(3));
    }
}
