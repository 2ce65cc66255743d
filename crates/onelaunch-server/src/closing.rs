//! Safe closing of launches: expected participants, last activity, and the
//! idle closer.
//!
//! * `job-run start --expect N` declares how many job runs a launch expects
//!   (`POST /api/launch/{id}/expected-job-runs`); [`participants`] tells which
//!   have started, finished, or are missing, and `launch close --wait` polls it.
//! * Every start, stop, session, result batch, attachment and fixture upload
//!   moves `launches.modified_ms` forward ([`touch`]), at most once a second per
//!   launch, so tracking activity costs one indexed UPDATE per second at most.
//! * With `--launch-idle-close D` a background task ([`spawn_idle_closer`])
//!   closes open launches whose last activity is older than `D`. It is one
//!   `UPDATE … WHERE closed = 0 AND modified_ms < cutoff`, so replicas running
//!   it at once close each launch once and never close an active one.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use onelaunch_api::{self as api, Id};
use sqlx::Row;

use crate::auth::Auth;
use crate::db::{now_ms, Db};
use crate::error::{ServerError, ServerResult};
use crate::routes::ApiJson;
use crate::{store, AppState};

/// Activity closer than this to the recorded one is not written again.
const TOUCH_GRANULARITY_MS: i64 = 1000;

/// The most job runs a launch may expect.
pub const MAX_EXPECTED_JOB_RUNS: i64 = 10_000;

/// Routes of this module (merged into the API router).
pub fn router() -> Router<AppState> {
    Router::new().route("/launch/{id}/expected-job-runs", post(set_expected))
}

/// Records activity on a launch (see the module documentation).
pub async fn touch(db: &Db, launch_id: Id) -> ServerResult<()> {
    let now = now_ms();
    sqlx::query("UPDATE launches SET modified_ms = $1 WHERE id = $2 AND modified_ms < $3")
        .bind(now)
        .bind(launch_id)
        .bind(now - TOUCH_GRANULARITY_MS)
        .execute(&db.write)
        .await?;
    Ok(())
}

/// Declares how many job runs a launch expects (the latest declaration wins).
pub async fn set_expected_job_runs(db: &Db, launch_id: Id, n: i64) -> ServerResult<()> {
    sqlx::query("UPDATE launches SET expected_job_runs = $1, modified_ms = $2 WHERE id = $3")
        .bind(n)
        .bind(now_ms())
        .bind(launch_id)
        .execute(&db.write)
        .await?;
    Ok(())
}

fn is_finished(stage: &str) -> bool {
    stage == api::stage::FINISHED || stage == api::stage::RUN_FAILURE
}

/// Which job runs of a launch have started, finished, or are missing.
pub async fn participants(
    db: &Db,
    launch_id: Id,
    expected: Option<i64>,
) -> ServerResult<api::Participants> {
    let runs = store::launch_job_runs(db, launch_id).await?;
    let started = runs.len() as i64;
    let unfinished: Vec<api::ParticipantRef> = runs
        .iter()
        .filter(|r| !is_finished(&r.stage))
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
    })
}

/// Closes every open launch whose last activity is older than `idle`, in one
/// statement; returns their ids.
pub async fn close_idle(db: &Db, idle: Duration) -> ServerResult<Vec<Id>> {
    let now = now_ms();
    let cutoff = now - i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
    let rows = sqlx::query(
        "UPDATE launches SET closed = 1, closed_ms = $1, modified_ms = $1 \
         WHERE closed = 0 AND modified_ms < $2 RETURNING id",
    )
    .bind(now)
    .bind(cutoff)
    .fetch_all(&db.write)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<i64, _>("id")?))
        .collect()
}

/// How often the idle closer looks: a quarter of the idle time, between
/// 100 ms and one minute.
pub fn idle_check_interval(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Starts the idle closer; it runs until the runtime stops.
pub fn spawn_idle_closer(db: Db, idle: Duration) -> tokio::task::JoinHandle<()> {
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
            match close_idle(&db, idle).await {
                Ok(ids) => {
                    for id in ids {
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

async fn set_expected(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Id>,
    ApiJson(req): ApiJson<api::ExpectedJobRuns>,
) -> ServerResult<Response> {
    let l = store::get_launch(&state.db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("launch", id))?;
    auth.check_project(l.project_id, "launch", id)?;
    if !(0..=MAX_EXPECTED_JOB_RUNS).contains(&req.expected_job_runs) {
        return Err(ServerError::bad(format!(
            "field `expectedJobRuns` must be between 0 and {MAX_EXPECTED_JOB_RUNS}, got {}",
            req.expected_job_runs
        )));
    }
    set_expected_job_runs(&state.db, id, req.expected_job_runs).await?;
    tracing::info!(
        launch = id,
        expected = req.expected_job_runs,
        "expected job runs declared"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
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
