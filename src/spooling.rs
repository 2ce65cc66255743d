//! `upload` and `watch` when the server stays unreachable: what was not
//! delivered is kept in a spool (`onelaunch_client::spool`), the command exits
//! with [`exit::SPOOLED`] and prints the command that sends the rest;
//! `upload --resume` (or the next `upload` of the same results) sends it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use onelaunch_api as api;
use onelaunch_ci::CiContext;
use onelaunch_client::spool::{self, Spool, SpoolManifest, SPOOL_VERSION};
use onelaunch_client::{ClientError, FileProblem, SessionTarget, UploadError, UploadOptions};
use onelaunch_client::{UploadReport, Uploader};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cli::{Global, Output, WatchArgs};
use crate::commands::uploader;
use crate::config::{connect, Conn};
use crate::exit::{self, Exit};
use crate::output::{exit_for, launch_url, print_json, print_report};
use crate::settings::{LaunchChoice, UploadSettings};
use crate::target::{self, Target};

// ---------------------------------------------------------------- what the spool remembers

/// The CI identity of an upload, kept so that a resumed upload joins the same
/// job run even when it runs elsewhere.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct StoredCi {
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

    fn context(&self) -> CiContext {
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
struct TargetRequest {
    job_run_id: Option<i64>,
    launch_id: Option<i64>,
    launch_name: Option<String>,
    launch_tags: Option<String>,
    no_stop: bool,
    ci: Option<StoredCi>,
}

impl TargetRequest {
    fn of(settings: &UploadSettings) -> Self {
        TargetRequest {
            job_run_id: settings.job_run_id,
            launch_id: settings.launch.id,
            launch_name: settings.launch.name.clone(),
            launch_tags: (!settings.launch.tags.is_empty()).then(|| settings.launch.tags.join(",")),
            no_stop: settings.no_stop,
            ci: settings.ci.as_ref().map(StoredCi::of),
        }
    }

    /// The same upload: same explicit job run and launch, same CI job run.
    fn same_upload(&self, other: &TargetRequest) -> bool {
        let ci = |r: &TargetRequest| {
            r.ci.as_ref()
                .map(|c| (c.ci_type.clone(), c.job_uid.clone(), c.job_run_uid.clone()))
        };
        self.job_run_id == other.job_run_id
            && self.launch_id == other.launch_id
            && ci(self) == ci(other)
    }

    fn launch_choice(&self, reopen: bool) -> LaunchChoice {
        LaunchChoice::new(
            self.launch_id,
            self.launch_name.clone(),
            self.launch_tags.as_deref(),
            reopen,
        )
    }
}

fn request_of(spool: &Spool) -> TargetRequest {
    serde_json::from_value(spool.manifest().request.clone()).unwrap_or_default()
}

// ---------------------------------------------------------------- helpers

/// Failures after which results are spooled: the server unreachable, or 5xx,
/// after the client's retries.
fn spoolable(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Unreachable { .. } | ClientError::Server { .. }
    )
}

fn spoolable_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<ClientError>().is_some_and(spoolable)
            || matches!(c.downcast_ref::<UploadError>(), Some(UploadError::Client(e)) if spoolable(e))
    })
}

fn same_endpoint(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// The spool of an upload: `--spool`, else `.onelaunch-spool` in the (first)
/// results directory. Always absolute, so the printed command works anywhere.
fn spool_dir(settings: &UploadSettings, paths: &[PathBuf]) -> Option<PathBuf> {
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

fn manifest_for(conn: &Conn, settings: &UploadSettings, request: &TargetRequest) -> SpoolManifest {
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

fn with_target(mut m: SpoolManifest, t: &Target, no_stop: bool) -> SpoolManifest {
    m.launch_id = Some(t.launch.id);
    m.job_run_id = t.job_run_id;
    m.finish_job_run = t.own_job_run && !no_stop;
    m
}

/// Says what was spooled and how to send it; the exit code is [`exit::SPOOLED`].
fn report_spooled(
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
    let command = resume_command(spool.dir());
    let m = spool.manifest();
    eprintln!("error: {cause:#}");
    eprintln!(
        "Spooled: the server was unreachable; what it did not acknowledge is kept in {}",
        spool.dir().display()
    );
    eprintln!("Resume with: {command}");
    if g.output == Output::Json {
        print_json(&json!({
            "spooled": true, "spool": spool.dir(), "resume": command,
            "launchId": m.launch_id, "jobRunId": m.job_run_id,
            "resultFiles": pending,
            "results": report.map(|r| r.results).unwrap_or(0),
            "previouslyAcknowledged": report.map(|r| r.previously_acknowledged).unwrap_or(0),
        }))?;
    } else {
        if let Some(r) = report {
            println!(
                "Delivered {} results before the server became unreachable",
                r.results
            );
        }
        println!("Spooled in {}", spool.dir().display());
        println!("Resume with: {command}");
    }
    Ok(exit::SPOOLED)
}

/// Spools what `up` did not deliver; when even that fails, the original error stands.
fn spool_rest(
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

async fn stop_job_run(conn: &Conn, id: i64) -> Result<(), ClientError> {
    conn.client
        .upload_stop(&api::ExternalRunStop {
            project_id: conn.project_id,
            job_run_id: Some(id),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// Sends `paths` with `up`, then finishes the job run when the manifest says
/// so. On an unreachable server what is left goes to the spool. A resumed
/// spool is removed once everything is delivered.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    g: &Global,
    conn: &Conn,
    t: &Target,
    up: &mut Uploader,
    paths: &[PathBuf],
    manifest: SpoolManifest,
    dir: &Path,
    resumed: Option<Spool>,
) -> Result<u8> {
    match up.upload_paths(paths).await {
        Ok(()) => {}
        Err(UploadError::Client(e)) if spoolable(&e) => {
            return spool_rest(g, up, dir, manifest, e.into());
        }
        Err(e) => return Err(e.into()),
    }
    if let (true, Some(id)) = (manifest.finish_job_run, t.job_run_id) {
        match stop_job_run(conn, id).await {
            Ok(()) => {}
            Err(e) if spoolable(&e) => return spool_rest(g, up, dir, manifest, e.into()),
            Err(e) => return Err(e.into()),
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
    Ok(exit_for(up.report()))
}

// ---------------------------------------------------------------- upload

/// `onelaunch upload [--resume]`.
pub(crate) async fn upload(
    g: &Global,
    settings: &UploadSettings,
    paths: Vec<PathBuf>,
    resume: bool,
) -> Result<u8> {
    let dir = spool_dir(settings, &paths);
    let existing = match &dir {
        Some(d) => Spool::load(d)?,
        None => None,
    };
    if resume {
        let Some(dir) = dir else {
            bail!(Exit::new(
                exit::USAGE,
                "upload --resume: pass --spool DIR or the results directory"
            ));
        };
        let Some(spool) = existing else {
            if g.output == Output::Json {
                print_json(&json!({"resumed": false, "spool": dir}))?;
            } else {
                println!("Nothing to resume: no spool in {}", dir.display());
            }
            return Ok(exit::OK);
        };
        return send_spool(g, settings, spool, &[]).await;
    }
    let dir = dir.context("no results to upload")?;
    let request = TargetRequest::of(settings);
    let mut earlier = exit::OK;
    if let Some(spool) = existing {
        let endpoint_matches = match connect(g) {
            Ok(conn) => {
                same_endpoint(&conn.endpoint, &spool.manifest().endpoint)
                    && conn.project_id == spool.manifest().project_id
            }
            Err(_) => true,
        };
        if endpoint_matches && request.same_upload(&request_of(&spool)) {
            eprintln!(
                "Found the spool of an earlier try of this upload in {}; sending what it keeps, then the rest",
                spool.dir().display()
            );
            return send_spool(g, settings, spool, &paths).await;
        }
        eprintln!(
            "Found the spool of another upload in {}; sending it to its own launch first",
            spool.dir().display()
        );
        earlier = match send_spool(g, settings, spool, &[]).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("warning: the earlier spool could not be sent: {e:#}");
                exit::ERROR
            }
        };
    }
    let code = fresh_upload(g, settings, &paths, &dir, &request).await?;
    Ok(if code == exit::OK { earlier } else { code })
}

async fn fresh_upload(
    g: &Global,
    settings: &UploadSettings,
    paths: &[PathBuf],
    dir: &Path,
    request: &TargetRequest,
) -> Result<u8> {
    let conn = connect(g)?;
    let manifest = manifest_for(&conn, settings, request);
    let t = match target::upload_target(
        &conn,
        settings.job_run_id,
        &settings.launch,
        settings.ci.as_ref(),
    )
    .await
    {
        Ok(t) => t,
        Err(e) if spoolable_error(&e) => {
            return match spool::spool_paths(dir, manifest, paths) {
                Ok((spool, problems)) => report_spooled(g, &e, &spool, &problems, None),
                Err(s) => {
                    eprintln!("error: the results could not be kept in a spool: {s}");
                    Err(e)
                }
            };
        }
        Err(e) => return Err(e),
    };
    let mut up = uploader(&conn, &t, settings);
    let manifest = with_target(manifest, &t, settings.no_stop);
    deliver(g, &conn, &t, &mut up, paths, manifest, dir, None).await
}

/// Sends what `spool` keeps (and `extra` paths) into the spool's launch and job
/// run, then removes the spool.
async fn send_spool(
    g: &Global,
    settings: &UploadSettings,
    mut spool: Spool,
    extra: &[PathBuf],
) -> Result<u8> {
    let m = spool.manifest().clone();
    let mut global = g.clone();
    if global.endpoint.is_none() {
        global.endpoint = Some(m.endpoint.clone());
    }
    if global.project_id.is_none() {
        global.project_id = Some(m.project_id);
    }
    let conn = connect(&global)?;
    if conn.project_id != m.project_id {
        bail!(Exit::new(
            exit::USAGE,
            format!(
                "the spool {} belongs to project {}, not {}: pass --project-id {}",
                spool.dir().display(),
                m.project_id,
                conn.project_id,
                m.project_id
            )
        ));
    }
    if m.launch_id.is_some() && !same_endpoint(&conn.endpoint, &m.endpoint) {
        bail!(Exit::new(
            exit::USAGE,
            format!(
                "the spool {} holds results for {}, not {}: pass --endpoint {}",
                spool.dir().display(),
                m.endpoint,
                conn.endpoint,
                m.endpoint
            )
        ));
    }
    let request = request_of(&spool);
    let reopen = m.reopen_closed_launch || settings.launch.reopen_closed_launch;
    let t = match m.launch_id {
        Some(id) => match target::open_launch(&conn, id, reopen).await {
            Ok(launch) => Target {
                launch,
                job_run_id: m.job_run_id,
                own_job_run: m.finish_job_run,
            },
            Err(e) if spoolable_error(&e) => return report_spooled(g, &e, &spool, &[], None),
            Err(e) => return Err(e),
        },
        None => {
            let ci = request.ci.as_ref().map(StoredCi::context);
            match target::upload_target(
                &conn,
                request.job_run_id,
                &request.launch_choice(reopen),
                ci.as_ref(),
            )
            .await
            {
                Ok(t) => {
                    spool.update(|m| {
                        m.launch_id = Some(t.launch.id);
                        m.job_run_id = t.job_run_id;
                        m.finish_job_run = t.own_job_run && !request.no_stop;
                    })?;
                    t
                }
                Err(e) if spoolable_error(&e) => return report_spooled(g, &e, &spool, &[], None),
                Err(e) => return Err(e),
            }
        }
    };
    let m = spool.manifest().clone();
    let defaults = UploadOptions::default();
    let mut up = Uploader::new(
        conn.client.clone(),
        SessionTarget {
            launch_id: t.launch.id,
            job_run_id: t.job_run_id,
        },
        UploadOptions {
            concurrency: if m.concurrency > 0 {
                m.concurrency
            } else {
                defaults.concurrency
            },
            batch_size: if m.batch_size > 0 {
                m.batch_size
            } else {
                defaults.batch_size
            },
            reopen_closed_launch: reopen,
            attempt: m.attempt,
            execution: m.execution.clone(),
            ..defaults
        },
    );
    up.resume(&spool)?;
    eprintln!(
        "Resuming the upload kept in {} into launch [{}]",
        spool.dir().display(),
        t.launch.id
    );
    let mut inputs = spool.group_dirs();
    inputs.extend(extra.iter().cloned());
    let dir = spool.dir().to_path_buf();
    deliver(g, &conn, &t, &mut up, &inputs, m, &dir, Some(spool)).await
}

// ---------------------------------------------------------------- watch

/// `onelaunch watch`: runs the test command and uploads its results while it
/// runs. When the server cannot be reached at all, the tests still run and
/// their results are spooled.
pub async fn watch(g: &Global, args: WatchArgs) -> Result<u8> {
    let conn = connect(g)?;
    let settings = &UploadSettings::of(&args.opts);
    std::fs::create_dir_all(&args.results)
        .with_context(|| format!("cannot create {}", args.results.display()))?;
    let dir =
        spool_dir(settings, std::slice::from_ref(&args.results)).context("no results directory")?;
    let request = TargetRequest::of(settings);
    let manifest = manifest_for(&conn, settings, &request);
    let (t, unreachable) = match target::upload_target(
        &conn,
        settings.job_run_id,
        &settings.launch,
        settings.ci.as_ref(),
    )
    .await
    {
        Ok(t) => (Some(t), None),
        Err(e) if spoolable_error(&e) => {
            eprintln!("warning: {e:#}; the tests run anyway and their results will be spooled");
            (None, Some(e))
        }
        Err(e) => return Err(e),
    };
    if let Some(t) = &t {
        eprintln!("Launch link: {}", launch_url(&conn, &t.launch));
    }
    let mut up = t.as_ref().map(|t| uploader(&conn, t, settings));
    let (program, rest) = args
        .command
        .split_first()
        .context("no test command given after --")?;
    let mut command = tokio::process::Command::new(program);
    // The test command gets the launch and job run, not the token.
    command.args(rest).env_remove("ALLURE_TOKEN");
    if let Some(t) = &t {
        command
            .env("ALLURE_LAUNCH_ID", t.launch.id.to_string())
            .envs(t.job_run_id.map(|id| ("ALLURE_JOB_RUN_ID", id.to_string())));
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {program:?}"))?;
    let interval = Duration::from_secs_f64(args.interval.clamp(0.05, 60.0));
    let status = loop {
        tokio::select! {
            s = child.wait() => break s?,
            _ = tokio::time::sleep(interval) => {
                if let Some(up) = up.as_mut() {
                    if let Err(e) = up.upload_ready(&args.results).await {
                        eprintln!("warning: upload while the tests run failed, will retry at the end: {e}");
                    }
                }
            }
        }
    };
    let cmd_code = status.code().unwrap_or(1);
    let (Some(t), Some(mut up)) = (t, up) else {
        let cause = unreachable.context("no launch")?;
        return match spool::spool_paths(&dir, manifest, std::slice::from_ref(&args.results)) {
            Ok((spool, problems)) => report_spooled(g, &cause, &spool, &problems, None),
            Err(s) => {
                eprintln!("error: the results could not be kept in a spool: {s}");
                Err(cause)
            }
        };
    };
    let manifest = with_target(manifest, &t, settings.no_stop);
    let upload_result = match up.finish(&args.results).await {
        Err(UploadError::Client(e)) if spoolable(&e) => {
            return spool_rest(g, &up, &dir, manifest, e.into());
        }
        other => other,
    };
    let stop_result = match (manifest.finish_job_run, t.job_run_id) {
        (true, Some(id)) => match stop_job_run(&conn, id).await {
            Err(e) if spoolable(&e) => return spool_rest(g, &up, &dir, manifest, e.into()),
            other => other,
        },
        _ => Ok(()),
    };
    print_report(g, &conn, &t, up.report())?;
    upload_result?;
    stop_result?;
    if cmd_code != 0 {
        return Ok(u8::try_from(cmd_code).unwrap_or(1));
    }
    Ok(exit_for(up.report()))
}
