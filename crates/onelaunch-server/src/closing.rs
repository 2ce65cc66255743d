//! Safe closing of launches: expected participants, last activity, and the
//! idle closer.
//!
//! * `job-run start --expect N` declares how many job runs a launch expects
//!   (`POST /api/launch/{id}/expected-job-runs`); [`participants`] tells which
//!   have started, finished, or are missing, and `launch close --wait` polls it.
//! * Every start, stop, session, result batch, attachment and fixture upload
//!   moves `launches.modified_ms` forward (`db::launches::touch`), at most once a
//!   second per launch, so tracking activity costs one indexed UPDATE per second
//!   at most.
//! * With `--launch-idle-close D` a background task ([`spawn_idle_closer`])
//!   closes open launches whose last activity is older than `D`. It is one
//!   `UPDATE … WHERE closed = 0 AND modified_ms < cutoff`, so replicas running
//!   it at once close each launch once and never close an active one.

use std::time::Duration;

use onelaunch_api::{self as api, Id};

use crate::db::{self, Db};
use crate::error::ServerResult;

/// Closes a launch (idempotent) and stores its quality-gate verdict.
pub(crate) async fn close(db: &Db, launch_id: Id) -> ServerResult<()> {
    db::launches::set_launch_closed(db, launch_id, true).await?;
    crate::gate::on_close(db, launch_id).await
}

/// Reopens a launch (idempotent); its stored gate verdict no longer holds.
pub(crate) async fn reopen(db: &Db, launch_id: Id) -> ServerResult<()> {
    db::launches::set_launch_closed(db, launch_id, false).await?;
    crate::gate::on_reopen(db, launch_id).await
}

pub(crate) fn is_finished(stage: &str) -> bool {
    stage == api::stage::FINISHED || stage == api::stage::RUN_FAILURE
}

/// How long an open upload session may stay silent before it counts as
/// abandoned, unless the server is told otherwise (`--upload-session-timeout`).
pub const DEFAULT_UPLOAD_SESSION_TIMEOUT: Duration = Duration::from_secs(3600);

/// Which job runs of a launch have started, finished, or are missing, and
/// which uploads are in flight. A job run is done when it is stopped; one
/// that only uploads created (`implicit`) when its sessions are all closed.
/// An open session silent for longer than `session_timeout` is abandoned: it
/// is reported and no longer holds the launch.
pub(crate) async fn participants(
    db: &Db,
    launch_id: Id,
    expected: Option<i64>,
    session_timeout: Duration,
) -> ServerResult<api::Participants> {
    let runs = db::job_runs::launch_job_runs(db, launch_id).await?;
    let sessions = db::sessions::launch_open_sessions(db, launch_id).await?;
    let cutoff = db::now_ms() - i64::try_from(session_timeout.as_millis()).unwrap_or(i64::MAX);
    let (open_sessions, abandoned_sessions): (Vec<_>, Vec<_>) = sessions
        .into_iter()
        .partition(|s| s.last_activity >= cutoff);
    let started = runs.len() as i64;
    let unfinished: Vec<api::ParticipantRef> = runs
        .iter()
        .filter(|r| {
            if r.implicit {
                open_sessions.iter().any(|s| s.job_run_id == Some(r.id))
            } else {
                !is_finished(&r.stage)
            }
        })
        .map(|r| api::ParticipantRef {
            id: r.id,
            name: format!("{} / {}", r.job_name, r.name),
            stage: r.stage.clone(),
        })
        .collect();
    Ok(api::Participants {
        expected,
        started,
        finished: started - unfinished.len() as i64,
        missing: expected.map_or(0, |e| (e - started).max(0)),
        unfinished,
        open_sessions,
        abandoned_sessions,
    })
}

/// How often the idle closer looks: a quarter of the idle time, between
/// 100 ms and one minute.
pub(crate) fn idle_check_interval(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Starts the idle closer; it runs until the runtime stops.
pub(crate) fn spawn_idle_closer(db: Db, idle: Duration) -> tokio::task::JoinHandle<()> {
    let every = idle_check_interval(idle);
    tracing::info!(
        idle_ms = idle.as_millis() as u64,
        "launches idle longer than this are closed"
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match db::launches::close_idle(&db, idle).await {
                Ok(ids) => {
                    for id in ids {
                        if let Err(e) = crate::gate::on_close(&db, id).await {
                            tracing::warn!(launch = id, error = %e, "quality gate not stored");
                        }
                        tracing::info!(
                            launch = id,
                            idle_ms = idle.as_millis() as u64,
                            "launch closed after being idle"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "closing idle launches failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_interval_is_bounded() {
        assert_eq!(
            idle_check_interval(Duration::from_millis(10)),
            Duration::from_millis(100)
        );
        assert_eq!(
            idle_check_interval(Duration::from_secs(8)),
            Duration::from_secs(2)
        );
        assert_eq!(
            idle_check_interval(Duration::from_secs(86_400)),
            Duration::from_secs(60)
        );
    }
}
