//! `upload [--resume]`: into the job run or launch `target.rs` picks; a spool
//! left by an earlier try of the same upload is sent first, one of another
//! upload is sent into its own launch.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use onelaunch_client::spool::{self, Spool};
use onelaunch_client::upload::{scan_inputs, InputScan};
use onelaunch_client::{SessionTarget, UploadOptions, Uploader};
use serde_json::json;

use super::delivery::{
    deliver, manifest_for, report_spooled, request_of, session_ci, spool_dir, spoolable_error,
    uploader, with_target, StoredCi, TargetRequest,
};
use crate::cli::{Global, Output, UploadArgs};
use crate::config::connect;
use crate::exit::{self, Exit};
use crate::output::print_json;
use crate::settings::UploadSettings;
use crate::target::{self, Target};

/// `onelaunch upload`: checks the paths, then [`upload`].
pub(crate) async fn run(g: &Global, args: UploadArgs) -> Result<u8> {
    super::compat::upload_notices(&args.opts);
    let mut paths = args.paths;
    if paths.is_empty() {
        match args.results_env {
            Some(p) => paths.push(p),
            None if args.resume && args.opts.spool.is_some() => {}
            None => bail!(Exit::new(
                exit::USAGE,
                "no results to upload: pass a directory or set ALLURE_RESULTS"
            )),
        }
    }
    for p in &paths {
        let s = p.to_string_lossy();
        if !s.contains(['*', '?', '[']) && !p.exists() {
            bail!(Exit::new(
                exit::USAGE,
                format!("{}: no such file or directory", p.display())
            ));
        }
    }
    let settings = UploadSettings::of(&args.opts);
    if !args.resume {
        // Nothing is created on the server for an upload of nothing.
        let scan = scan_inputs(&paths)?;
        if !scan.any_results {
            let what = describe_empty(&scan);
            if !settings.allow_empty {
                bail!(Exit::new(
                    exit::NO_RESULTS,
                    format!(
                        "{what}; nothing was uploaded (pass --allow-empty to make this a success)"
                    )
                ));
            }
            if g.output == Output::Json {
                print_json(&json!({"results": 0, "new": 0, "alreadyPresent": 0,
                    "launchId": null, "jobRunId": null, "empty": true}))?;
            } else {
                println!("{what}; nothing was uploaded (--allow-empty)");
            }
            return Ok(exit::OK);
        }
        paths = scan.found;
        if !scan.unmatched.is_empty() {
            let shown: Vec<String> = scan
                .unmatched
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            eprintln!("warning: no file matches {}", shown.join(", "));
        }
    }
    upload(g, &settings, paths, args.resume).await
}

/// What an upload looked for and did not find: the paths and patterns.
fn describe_empty(scan: &InputScan) -> String {
    let mut parts = Vec::new();
    if !scan.found.is_empty() {
        let found: Vec<String> = scan.found.iter().map(|p| p.display().to_string()).collect();
        parts.push(format!(
            "no test results (*-result.json, JUnit *.xml) in {} ({} other file{})",
            found.join(", "),
            scan.files,
            if scan.files == 1 { "" } else { "s" }
        ));
    }
    if !scan.unmatched.is_empty() {
        let unmatched: Vec<String> = scan
            .unmatched
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        parts.push(format!("no file matches {}", unmatched.join(", ")));
    }
    parts.join("; ")
}

/// Sends the spool an earlier try left first, then `paths`; with `resume`,
/// only the spool.
async fn upload(
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
    let manifest = with_target(manifest, &t);
    deliver(
        g,
        &conn,
        &t,
        &mut up,
        paths,
        manifest,
        dir,
        None,
        settings.allow_empty,
    )
    .await
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
                        m.finish_job_run = false;
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
            ci: request.ci.as_ref().map(|c| session_ci(&c.context())),
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
    deliver(
        g,
        &conn,
        &t,
        &mut up,
        &inputs,
        m,
        &dir,
        Some(spool),
        settings.allow_empty,
    )
    .await
}

fn same_endpoint(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}
