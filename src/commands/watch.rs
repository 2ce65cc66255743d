//! `watch -- COMMAND`: runs the test command and uploads its results while it
//! runs; the command's exit code is kept. Its upload session is opened before
//! the command starts and closed when it ends, so `launch close --wait`
//! waits for this shard even before it has written a result.

use std::time::Duration;

use anyhow::{Context, Result};
use onelaunch_client::spool;
use onelaunch_client::{ClientError, UploadError, Uploader};

use super::delivery::{
    close_session, manifest_for, report_spooled, spool_dir, spool_rest, spoolable, spoolable_error,
    uploader, with_target, TargetRequest,
};
use crate::cli::{Global, WatchArgs};
use crate::config::connect;
use crate::output::{exit_for, launch_url, print_report};
use crate::settings::UploadSettings;
use crate::target;

/// How long `watch` waits, after the last upload, for the test command's
/// output to reach its end (a process the command left running may keep it
/// open; its later output is still copied while onelaunch exits).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// `onelaunch watch`: runs the test command and uploads its results while it
/// runs. When the server cannot be reached at all, the tests still run and
/// their results are spooled.
pub(crate) async fn run(g: &Global, args: WatchArgs) -> Result<u8> {
    super::compat::upload_notices(&args.opts);
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
    if let Some(up) = up.as_mut() {
        if let Err(e) = up.open_session().await {
            eprintln!("warning: the upload session could not be opened yet, will retry with the first results: {e}");
        }
    }
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
    // The status display (see `term::WatchDisplay`): only while uploading.
    let mut display = up
        .as_ref()
        .and_then(|up| crate::term::WatchDisplay::new(g, up.progress()));
    if let (Some(d), Some(up)) = (&display, &up) {
        d.session_open(up.report().session_id.is_some());
    }
    let connected = match display.as_mut() {
        Some(d) => d.connect(&mut command),
        None => Ok(()),
    };
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    if display.is_some() {
        interrupt_after_the_command(running.clone());
    }
    let spawned = connected.and_then(|()| command.spawn());
    // The command holds the write ends of the display's pipes.
    drop(command);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            drop(display);
            if let Some(up) = up.as_mut() {
                close_session(up).await;
            }
            return Err(e).with_context(|| format!("cannot run {program:?}"));
        }
    };
    let interval = Duration::from_secs_f64(args.interval.clamp(0.05, 60.0));
    let status = loop {
        tokio::select! {
            s = child.wait() => break s?,
            _ = tokio::time::sleep(interval) => {
                if let Some(up) = up.as_mut() {
                    if let Err(e) = up.upload_ready(&args.results).await {
                        let line = format!("warning: upload while the tests run failed, will retry at the end: {e}");
                        match &display {
                            Some(d) => d.note(line),
                            None => eprintln!("{line}"),
                        }
                    }
                    if let Some(d) = &display {
                        d.session_open(up.report().session_id.is_some());
                    }
                }
            }
        }
    };
    // An interrupt that ended the command may reach the handler after the
    // command's exit reached us (both arrive together): the command counts
    // as running a moment longer, so that interrupt is not taken for one
    // after it.
    tokio::spawn(async move {
        tokio::time::sleep(INTERRUPT_GRACE).await;
        running.store(false, std::sync::atomic::Ordering::SeqCst);
    });
    let cmd_code = exit_code(status);
    if args.continue_on_error {
        // allurectl `--continue-on-error`: the upload's trouble is a warning,
        // the exit code is the test command's.
        let after = after_command(
            g,
            &conn,
            settings,
            &args,
            t,
            up,
            display,
            unreachable,
            manifest,
            dir,
        )
        .await;
        if let Err(e) = after {
            eprintln!("warning: uploading the results failed (--continue-on-error): {e:#}");
        }
        return Ok(u8::try_from(cmd_code).unwrap_or(1));
    }
    let code = after_command(
        g,
        &conn,
        settings,
        &args,
        t,
        up,
        display,
        unreachable,
        manifest,
        dir,
    )
    .await?;
    if cmd_code != 0 {
        return Ok(u8::try_from(cmd_code).unwrap_or(1));
    }
    Ok(code)
}

/// What follows the test command: the last results uploaded (or spooled),
/// the session closed, the report printed. The exit code of the upload.
#[allow(clippy::too_many_arguments)]
async fn after_command(
    g: &Global,
    conn: &crate::config::Conn,
    settings: &UploadSettings,
    args: &WatchArgs,
    t: Option<target::Target>,
    up: Option<Uploader>,
    display: Option<crate::term::WatchDisplay>,
    unreachable: Option<anyhow::Error>,
    manifest: spool::SpoolManifest,
    dir: std::path::PathBuf,
) -> Result<u8> {
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
    let manifest = with_target(manifest, &t);
    let finished = up.finish(&args.results).await;
    if let Some(d) = display {
        d.finish(OUTPUT_GRACE).await;
    }
    let upload_result = match finished {
        Err(UploadError::Client(e)) if spoolable(&e) => {
            return spool_rest(g, &up, &dir, manifest, e.into());
        }
        Err(UploadError::Client(e @ ClientError::LaunchClosed(_))) => {
            // Closed while this upload was in flight: keep what it refused.
            close_session(&mut up).await;
            return spool_rest(g, &up, &dir, manifest, e.into());
        }
        other => other,
    };
    close_session(&mut up).await;
    print_report(g, conn, &t, up.report())?;
    upload_result?;
    Ok(exit_for(up.report(), settings.allow_empty))
}

/// How long after the command's exit an interrupt still counts as one
/// during the command (see [`interrupt_after_the_command`]).
const INTERRUPT_GRACE: Duration = Duration::from_millis(250);

/// While the test command's output passes through onelaunch, Ctrl-C (SIGINT,
/// sent to the command too) does not end onelaunch at once: the command may
/// still print its summary, which onelaunch copies, and its results are
/// uploaded. A second Ctrl-C, or one after the command ended, exits (130).
/// The handler is in place before the command starts. It listens on a
/// thread of its own: on the upload's runtime, busy workers could see an
/// interrupt only after the command it ended had exited, and take it for one
/// after the command.
fn interrupt_after_the_command(running: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (ready, listening) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(mut interrupts) = signal(SignalKind::interrupt()) else {
                    return;
                };
                let _ = ready.send(());
                let mut seen = 0;
                while interrupts.recv().await.is_some() {
                    seen += 1;
                    if seen > 1 || !running.load(std::sync::atomic::Ordering::SeqCst) {
                        eprintln!();
                        std::process::exit(130);
                    }
                }
            });
        });
        let _ = listening.recv();
    }
    #[cfg(not(unix))]
    let _ = running;
}

/// The test command's exit code; killed by a signal: 128 + the signal, as
/// shells report it (130 after Ctrl-C).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return 128 + signal;
    }
    status.code().unwrap_or(1)
}
