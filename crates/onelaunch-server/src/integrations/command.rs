//! `command`: its settings (a shell command, an optional `ALLURE_TOKEN`) and
//! the trigger: a detached `sh -c` on the server host with a clean
//! environment; a non-zero exit is recorded on the job run.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use onelaunch_api as api;
use serde::{Deserialize, Serialize};

use super::*;
use crate::db::job_runs::mark_run_failure;

/// A shell command the server runs (configuring one needs an admin token).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Command {
    pub(crate) command: String,
    /// Given to the command as `ALLURE_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) credential: Option<String>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("command", &self.command)
            .field("credential", &redacted(&self.credential))
            .finish()
    }
}

impl Command {
    pub(crate) fn validate(
        s: &api::IntegrationSettings,
        credential: Option<String>,
    ) -> ServerResult<Command> {
        Ok(Command {
            command: require(&s.command, "command", "command")?,
            credential,
        })
    }

    /// Runs `sh -c <command>` detached, with a clean environment: the
    /// variables whose names pass [`refused_var_name`], then
    /// [`BASE_ENVIRONMENT`] from the server's own, `ALLURE_PROJECT_ID`, and
    /// the credential as `ALLURE_TOKEN`. Its output goes to the server log; a non-zero exit
    /// is recorded on the job run.
    pub(crate) fn spawn(&self, db: Db, t: &Trigger) -> Result<(), TriggerError> {
        spawn_command(db, self, t)
    }
}

/// What a command inherits from the server's environment.
pub(crate) const BASE_ENVIRONMENT: [&str; 6] = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"];

/// Variables the server sets for every job run.
pub(crate) const SERVER_VARIABLES: [&str; 3] =
    ["ALLURE_JOB_RUN_ID", "ALLURE_LAUNCH_ID", "ALLURE_ENDPOINT"];

fn spawn_command(db: Db, s: &Command, t: &Trigger) -> Result<(), TriggerError> {
    use tokio::io::AsyncBufReadExt;

    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(&s.command).env_clear();
    // Run and job variables, only under names that cannot change how the
    // process or the shell runs (checked when they were given; checked again
    // here for values stored before the rule). The server's own variables
    // (`ALLURE_JOB_RUN_ID`, …) come from the server.
    for (k, v) in &t.variables {
        if SERVER_VARIABLES.contains(&k.as_str()) || refused_var_name(k).is_none() {
            cmd.env(k, v);
        } else {
            tracing::warn!(job_run = t.job_run_id, variable = %k, "variable not passed to the command");
        }
    }
    // Then the base environment, which nothing above can replace: a few names
    // of the server's own environment that hold no secret (never `ONELAUNCH_*`,
    // the init token or a database URL).
    for k in BASE_ENVIRONMENT {
        match std::env::var(k) {
            Ok(v) => cmd.env(k, v),
            Err(_) => cmd.env_remove(k),
        };
    }
    cmd.env("ALLURE_PROJECT_ID", t.project_id.to_string());
    match &s.credential {
        Some(c) => cmd.env("ALLURE_TOKEN", c),
        None => cmd.env_remove("ALLURE_TOKEN"),
    };
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn()?;
    let job_run = t.job_run_id;
    let launch = t.launch_id;
    let secret = s.credential.clone().filter(|c| c.len() >= 4);
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::new(Mutex::new(VecDeque::new()));
    let mut readers = Vec::new();
    let outputs: Vec<(Box<dyn tokio::io::AsyncRead + Unpin + Send>, bool)> = [
        child.stdout.take().map(|s| {
            (
                Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                false,
            )
        }),
        child.stderr.take().map(|s| {
            (
                Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                true,
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (stream, is_err) in outputs {
        let tail = tail.clone();
        let secret = secret.clone();
        readers.push(tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = match &secret {
                    Some(s) => line.replace(s.as_str(), "<redacted>"),
                    None => line,
                };
                tracing::info!(job_run, "command: {line}");
                if is_err {
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if t.len() == COMMAND_TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        }));
    }
    tokio::spawn(async move {
        let status = child.wait().await;
        for r in readers {
            let _ = r.await;
        }
        let failure = match status {
            Ok(s) if s.success() => None,
            Ok(s) => {
                let lines: Vec<String> = tail
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .cloned()
                    .collect();
                let code = s
                    .code()
                    .map(|c| format!("status {c}"))
                    .unwrap_or_else(|| "a signal".into());
                Some(if lines.is_empty() {
                    format!("command exited with {code}")
                } else {
                    format!("command exited with {code}: {}", lines.join(" | "))
                })
            }
            Err(e) => Some(format!("command could not be awaited: {e}")),
        };
        match failure {
            None => tracing::info!(job_run, launch, "command finished"),
            Some(message) => {
                tracing::warn!(job_run, launch, error = %message, "command failed");
                if let Err(e) = mark_run_failure(&db, job_run, &message, true).await {
                    tracing::error!(job_run, error = %e, "cannot record the command failure");
                }
            }
        }
    });
    Ok(())
}
