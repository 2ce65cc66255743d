//! Build-server integrations: what a trigger needs and the dispatch to the
//! provider modules (`github`, `gitlab`, `jenkins`, `command`).

mod command;
mod github;
mod gitlab;
mod http;
mod jenkins;

use std::time::Duration;

use onelaunch_api::{self as api, Id};

use self::{command::*, github::*, gitlab::*, jenkins::*};
use crate::AppState;

/// How long one provider request may take.
pub(crate) const TRIGGER_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest provider answer kept in a job run's error message.
pub(crate) const ERROR_BODY_CHARS: usize = 300;

/// Stderr lines of a failed `command` kept in the error message.
pub(crate) const COMMAND_TAIL_LINES: usize = 20;

/// A job run to trigger once the run is stored.
pub(crate) struct Trigger {
    pub(crate) job_run_id: Id,
    pub(crate) launch_id: Id,
    pub(crate) project_id: Id,
    pub(crate) settings: api::IntegrationSettings,
    pub(crate) credential: Option<String>,
    pub(crate) variables: Vec<(String, String)>,
}

pub(crate) async fn trigger(state: &AppState, t: Trigger) -> Result<(), String> {
    let secret = t.credential.clone().filter(|c| c.len() >= 4);
    let outcome = match t.settings.kind.as_str() {
        "github" => trigger_github(&t).await,
        "gitlab" => trigger_gitlab(&t).await,
        "jenkins" => trigger_jenkins(&t).await,
        "command" => spawn_command(state.db.clone(), t),
        other => Err(format!("unknown integration type {other:?}")),
    };
    // A provider may echo what it was sent: never let the credential through.
    outcome.map_err(|m| match &secret {
        Some(s) => m.replace(s.as_str(), "<redacted>"),
        None => m,
    })
}
