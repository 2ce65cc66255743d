//! Sending the results of `upload` and `watch`, and what happens when the
//! server stays unreachable: what was not delivered is kept in a spool
//! (`onelaunch_client::spool`), the command exits with [`exit::SPOOLED`] and
//! prints the command that sends the rest; `upload --resume` (or the next
//! `upload` of the same results) sends it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use onelaunch_api as api;
use onelaunch_api::ErrorCode;
use onelaunch_ci::CiContext;
use onelaunch_client::spool::{self, Spool, SpoolManifest, SPOOL_VERSION};
use onelaunch_client::{ClientError, FileProblem, SessionTarget, UploadError, UploadOptions};
use onelaunch_client::{UploadReport, Uploader};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cli::{Global, Output};
use crate::config::Conn;
use crate::exit;
use crate::output::{exit_for, print_json, print_report};
use crate::settings::{LaunchChoice, UploadSettings};
use crate::target::Target;

// ---------------------------------------------------------------- what the spool remembers

/// The CI identity of an upload, kept so that a resumed upload joins the same
/// job run even when it runs elsewhere.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredCi {
    ci_type: String,
    endpoint: Option<String>,
    job_uid: String,
    job_name: String,
    job_url: Option<String>,
    job_run_uid: String,
    job_run_name: String,
    job_run_url: Option<String>,
    branch: Option<String>,
    attempt: Option<u32>,
    #[serde(default)]
    execution: Option<String>,
    default_launch_name: String,
}

impl StoredCi {
    fn of(c: &CiContext) -> Self {
        StoredCi {
            ci_type: c.ci_type.clone(),
            endpoint: c.endpoint.clone(),
            job_uid: c.job_uid.clone(),
            job_name: c.job_name.clone(),
            job_url: c.job_url.clone(),
            job_run_uid: c.job_run_uid.clone(),
            job_run_name: c.job_run_name.clone(),
            job_run_url: c.job_run_url.clone(),
            branch: c.branch.clone(),
            attempt: c.attempt,
            execution: c.execution.clone(),
            default_launch_name: c.default_launch_name.clone(),
        }
    }

    pub(crate) fn context(&self) -> CiContext {
        CiContext {
            ci_type: self.ci_type.clone(),
            endpoint: self.endpoint.clone(),
            job_uid: self.job_uid.clone(),
            job_name: self.job_name.clone(),
            job_url: self.job_url.clone(),
            job_run_uid: self.job_run_uid.clone(),
            job_run_name: self.job_run_name.clone(),
            job_run_url: self.job_run_url.clone(),
            branch: self.branch.clone(),
            attempt: self.attempt,
            execution: self.execution.clone(),
            default_launch_name: self.default_launch_name.clone(),
        }
    }
}

/// How an upload meant to create or join its launch and job run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TargetRequest {
    pub(crate) job_run_id: Option<i64>,
    launch_id: Option<i64>,
    launch_name: Option<String>,
    launch_tags: Option<String>,
    pub(crate) ci: Option<StoredCi>,
}

impl TargetRequest {
    pub(crate) fn of(settings: &UploadSettings) -> Self {
        TargetRequest {
            job_run_id: settings.job_run_id,
            launch_id: settings.launch.id,
            launch_name: settings.launch.name.clone(),
            launch_tags: (!settings.launch.tags.is_empty()).then(|| settings.launch.tags.join(",")),
            ci: settings.ci.as_ref().map(StoredCi::of),
        }
    }

    /// The same upload: same explicit job run and launch, same CI job run.
    pub(crate) fn same_upload(&self, other: &TargetRequest) -> bool {
        let ci = |r: &TargetRequest| {
            r.ci.as_ref()
                .map(|c| (c.ci_type.clone(), c.job_uid.clone(), c.job_run_uid.clone()))
        };
        self.job_run_id == other.job_run_id
            && self.launch_id == other.launch_id
            && ci(self) == ci(other)
    }

    pub(crate) fn launch_choice(&self, reopen: bool) -> LaunchChoice {
        LaunchChoice::new(
            self.launch_id,
            self.launch_name.clone(),
            self.launch_tags.as_deref(),
            reopen,
        )
    }
}

pub(crate) fn request_of(spool: &Spool) -> TargetRequest {
    serde_json::from_value(spool.manifest().request.clone()).unwrap_or_default()
}

// ---------------------------------------------------------------- helpers

/// Failures after which results are spooled: the server unreachable, or 5xx,
/// after the client's retries.
pub(crate) fn spoolable(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Unreachable { .. } | ClientError::Server { .. }
    )
}

pub(crate) fn spoolable_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<ClientError>().is_some_and(spoolable)
            || matches!(c.downcast_ref::<UploadError>(), Some(UploadError::Client(e)) if spoolable(e))
    })
}

/// The spool of an upload: `--spool`, else `.onelaunch-spool` in the (first)
/// results directory. Always absolute, so the printed command works anywhere.
pub(crate) fn spool_dir(settings: &UploadSettings, paths: &[PathBuf]) -> Option<PathBuf> {
    let dir = match &settings.spool {
        Some(d) => d.clone(),
        None => {
            let first = paths.first()?;
            let mut base = PathBuf::new();
            for c in first.components() {
                if c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
                    break;
                }
                base.push(c);
            }
            if !base.is_dir() {
                base = base.parent().map(Path::to_path_buf).unwrap_or_default();
            }
            if base.as_os_str().is_empty() {
                base = PathBuf::from(".");
            }
            spool::default_spool_dir(&base)
        }
    };
    Some(std::path::absolute(&dir).unwrap_or(dir))
}

/// `s` quoted for a POSIX shell when it needs to be.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./+=:,@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn resume_command(dir: &Path) -> String {
    format!(
        "onelaunch upload --resume --spool {}",
        shell_quote(&dir.to_string_lossy())
    )
}

pub(crate) fn manifest_for(
    conn: &Conn,
    settings: &UploadSettings,
    request: &TargetRequest,
) -> SpoolManifest {
    SpoolManifest {
        version: SPOOL_VERSION,
        endpoint: conn.endpoint.clone(),
        project_id: conn.project_id,
        reopen_closed_launch: settings.launch.reopen_closed_launch,
        attempt: request.ci.as_ref().and_then(|c| c.attempt),
        execution: request.ci.as_ref().and_then(|c| c.execution.clone()),
        concurrency: settings.concurrency,
        batch_size: settings.batch_size,
        request: serde_json::to_value(request).unwrap_or_default(),
        ..SpoolManifest::default()
    }
}

/// The manifest of an upload into `t`. An upload never finishes its job run
/// (`finish_job_run` stays false; a spool that an older onelaunch wrote with
/// it set is resumed without finishing either).
pub(crate) fn with_target(mut m: SpoolManifest, t: &Target) -> SpoolManifest {
    m.launch_id = Some(t.launch.id);
    m.job_run_id = t.job_run_id;
    m.finish_job_run = false;
    m
}

/// True when `e` says the launch was closed (409 `launch_closed`).
pub(crate) fn launch_closed_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<ClientError>(),
            Some(ClientError::LaunchClosed(_))
        ) || matches!(
            c.downcast_ref::<UploadError>(),
            Some(UploadError::Client(ClientError::LaunchClosed(_)))
        )
    })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Says what was spooled and how to send it; the exit code is [`exit::SPOOLED`].
/// The cause is the server staying unreachable, or the launch closed while
/// the upload was in flight (`launch close` without `--wait`).
pub(crate) fn report_spooled(
    g: &Global,
    cause: &anyhow::Error,
    spool: &Spool,
    problems: &[FileProblem],
    report: Option<&UploadReport>,
) -> Result<u8> {
    let earlier = report.map(|r| r.problems.as_slice()).unwrap_or_default();
    for p in earlier.iter().chain(problems) {
        eprintln!("refused: {}: {}", p.path.display(), p.message);
    }
    let pending = spool.result_files();
    let m = spool.manifest();
    let accepted = report.map(|r| r.results).unwrap_or(0);
    let closed = launch_closed_error(cause);
    let command = resume_command(spool.dir());
    let launch = m.launch_id.map_or("?".to_string(), |id| id.to_string());
    let reopen = format!("onelaunch launch reopen {launch}");
    if closed {
        eprintln!(
            "error: launch [{launch}] was closed while this upload was in flight: {} accepted, {} kept in {}",
            plural(accepted, "result was", "results were"),
            plural(pending, "result file", "result files"),
            spool.dir().display()
        );
        eprintln!("Nothing was lost: to send the rest, reopen the launch and resume: {reopen} && {command}");
        eprintln!(
            "(or resume with --reopen-closed-launch; to keep the launch closed, leave the spool)"
        );
    } else {
        eprintln!("error: {cause:#}");
        eprintln!(
            "Spooled: {}; what it did not acknowledge is kept in {}",
            why_spooled(cause),
            spool.dir().display()
        );
        eprintln!("Resume with: {command}");
    }
    if g.output == Output::Json {
        print_json(&json!({
            "spooled": true, "spool": spool.dir(), "resume": command,
            "launchClosed": closed,
            "launchId": m.launch_id, "jobRunId": m.job_run_id,
            "resultFiles": pending,
            "results": accepted,
            "previouslyAcknowledged": report.map(|r| r.previously_acknowledged).unwrap_or(0),
        }))?;
    } else {
        if let Some(r) = report {
            if closed {
                println!(
                    "Delivered {} results before launch [{launch}] was closed",
                    r.results
                );
            } else {
                println!(
                    "Delivered {} results before {}",
                    r.results,
                    if why_spooled(cause).contains("unreachable") {
                        "the server became unreachable"
                    } else {
                        "the server stopped taking them"
                    }
                );
            }
        }
        println!("Spooled in {}", spool.dir().display());
        if closed {
            println!("Resume with: {reopen} && {command}");
        } else {
            println!("Resume with: {command}");
        }
    }
    Ok(exit::SPOOLED)
}

/// Why results went to the spool, as the server said it: unreachable, its
/// storage full (503 `storage_full`), or failing (5xx) after the retries.
fn why_spooled(cause: &anyhow::Error) -> &'static str {
    let server = cause
        .chain()
        .find_map(|c| match c.downcast_ref::<ClientError>() {
            Some(e) => Some(e),
            None => match c.downcast_ref::<UploadError>() {
                Some(UploadError::Client(e)) => Some(e),
                _ => None,
            },
        });
    match server {
        Some(ClientError::Server {
            code: Some(ErrorCode::StorageFull),
            ..
        }) => "the server's storage is full (503 storage_full); it takes them once space is freed",
        Some(ClientError::Server { .. }) => "the server kept failing (5xx)",
        _ => "the server was unreachable",
    }
}

/// Spools what `up` did not deliver; when even that fails, the original error stands.
pub(crate) fn spool_rest(
    g: &Global,
    up: &Uploader,
    dir: &Path,
    manifest: SpoolManifest,
    cause: anyhow::Error,
) -> Result<u8> {
    match up.save_spool(dir, manifest) {
        Ok((spool, problems)) => report_spooled(g, &cause, &spool, &problems, Some(up.report())),
        Err(e) => {
            eprintln!("error: the results could not be kept in a spool: {e}");
            Err(cause)
        }
    }
}

/// Ends the upload session of `up` (best effort: a failure is a warning).
/// Not tried when the server is unreachable: the session then counts as
/// abandoned after the server's upload-session timeout, or is closed when
/// the spool is resumed.
pub(crate) async fn close_session(up: &mut Uploader) {
    if let Err(e) = up.close_session().await {
        eprintln!("warning: the upload session could not be closed: {e}");
    }
}

/// Sends `paths` with `up`, then ends its session (the job run is left to
/// `job-run stop`). On an unreachable server, or when the launch was closed
/// while the upload was in flight, what is left goes to the spool. A resumed
/// spool is removed once everything is delivered.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn deliver(
    g: &Global,
    conn: &Conn,
    t: &Target,
    up: &mut Uploader,
    paths: &[PathBuf],
    manifest: SpoolManifest,
    dir: &Path,
    resumed: Option<Spool>,
    allow_empty: bool,
) -> Result<u8> {
    let progress = crate::term::Progress::start(g, up.progress());
    let sent = up.upload_paths(paths).await;
    progress.finish().await;
    match sent {
        Ok(()) => close_session(up).await,
        Err(UploadError::Client(e)) if spoolable(&e) => {
            return spool_rest(g, up, dir, manifest, e.into());
        }
        Err(UploadError::Client(e @ ClientError::LaunchClosed(_))) => {
            close_session(up).await;
            return spool_rest(g, up, dir, manifest, e.into());
        }
        Err(e) => {
            close_session(up).await;
            return Err(e.into());
        }
    }
    if let Some(spool) = resumed {
        let shown = spool.dir().to_path_buf();
        spool.remove().with_context(|| {
            format!(
                "everything was delivered, but the spool {} could not be removed",
                shown.display()
            )
        })?;
    }
    print_report(g, conn, t, up.report())?;
    Ok(exit_for(up.report(), allow_empty))
}

/// The uploader of an `upload` or `watch` into `t` (a resumed spool builds its
/// own from the manifest).
pub(crate) fn uploader(conn: &Conn, t: &Target, settings: &UploadSettings) -> Uploader {
    Uploader::new(
        conn.client.clone(),
        SessionTarget {
            launch_id: t.launch.id,
            job_run_id: t.job_run_id,
        },
        UploadOptions {
            concurrency: settings.concurrency,
            batch_size: settings.batch_size,
            reopen_closed_launch: settings.launch.reopen_closed_launch,
            attempt: settings.ci.as_ref().and_then(|c| c.attempt),
            execution: settings.ci.as_ref().and_then(|c| c.execution.clone()),
            ci: settings.ci.as_ref().map(session_ci),
            ..UploadOptions::default()
        },
    )
}

/// This pipeline's own CI identity, recorded with its upload session: also
/// when it uploads into a job run of another pipeline (`ALLURE_JOB_RUN_ID`).
/// Only an `http(s)` run link is sent.
pub(crate) fn session_ci(c: &CiContext) -> api::SessionCi {
    let given = |s: &str| (!s.trim().is_empty()).then(|| s.to_string());
    api::SessionCi {
        kind: given(&c.ci_type),
        job_name: given(&c.job_name),
        run_name: given(&c.job_run_name),
        run_url: c.job_run_url.clone().filter(|u| {
            let lower = u.to_ascii_lowercase();
            lower.starts_with("https://") || lower.starts_with("http://")
        }),
    }
}
