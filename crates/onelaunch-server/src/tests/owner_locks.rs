//! On PostgreSQL `test_results` has no foreign keys to its launch, session
//! and job run (migration 0023); the data layer locks those rows once per
//! batch instead (`db::result_rows::hold_owners`) and a launch deletion
//! locks its launch first (`db::launches::lock_for_delete`). These tests
//! pin what the keys guaranteed when a deletion and an upload race: no
//! result is ever left without its launch, and a deletion counts every
//! result it removed.

use onelaunch_api as api;

use super::pg::PgCluster;
use crate::db::{self, Db};
use crate::error::ServerError;

/// Three passed results, uuids `<prefix>-0` … `<prefix>-2`.
pub(super) fn batch(prefix: &str) -> Vec<api::UploadTestResult> {
    (0..3)
        .map(|i| api::UploadTestResult {
            uuid: format!("{prefix}-{i}"),
            name: format!("test {i}"),
            status: Some("passed".into()),
            ..Default::default()
        })
        .collect()
}

/// Waits until some statement of this database waits for a row lock.
async fn someone_waits_for_a_lock(db: &Db) {
    for _ in 0..600 {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&db.read)
        .await
        .unwrap();
        if n > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no statement waited for a lock within 30 s");
}

/// Results of any launch whose launch, session or job run is gone.
async fn orphans(db: &Db) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM test_results t WHERE \
         NOT EXISTS (SELECT 1 FROM launches l WHERE l.id = t.launch_id) \
         OR NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = t.session_id) \
         OR (t.job_run_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM job_runs r WHERE r.id = t.job_run_id))",
    )
    .fetch_one(&db.read)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_launch_deleted_while_results_go_in_takes_them_along_or_refuses_them() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let db = Db::connect(&cluster.database("owners")).await.unwrap();
    assert_eq!(db.backend, db::Backend::Postgres);
    let project = db::projects::create_project(&db, "owners")
        .await
        .unwrap()
        .id;

    // The upload first: its transaction has written results and not
    // committed when the deletion starts. The deletion waits for it, then
    // deletes its results with the launch and counts them.
    let (launch, session) = super::job_run_session(&db, project, "run-1").await;
    let mut upload = db.write.begin().await.unwrap();
    db::launches::ensure_open(&mut upload, launch)
        .await
        .unwrap();
    let first = db::results::ResultBatch::prepare(batch("first"), session.job_id).unwrap();
    let (_, new) = db::results::insert_results(&mut upload, &session, &first)
        .await
        .unwrap();
    assert_eq!(new.len(), 3);
    let deleting = tokio::spawn({
        let db = db.clone();
        async move { db::lifecycle::delete_launch(&db, launch).await }
    });
    someone_waits_for_a_lock(&db).await;
    upload.commit().await.unwrap();
    let deleted = deleting.await.unwrap().unwrap();
    assert!(deleted.existed);
    assert_eq!(
        deleted.results, 3,
        "the deletion counts the results it removed"
    );
    assert_eq!(orphans(&db).await, 0);

    // The deletion first: an upload that comes once it has locked the
    // launch waits for it (holding nothing the deletion still needs: no
    // deadlock when the deletion then deletes the session and job run) and
    // is refused; nothing of it is stored.
    let (launch, session) = super::job_run_session(&db, project, "run-1").await;
    let mut deletion = db.write.begin().await.unwrap();
    assert!(db::launches::lock_for_delete(&mut deletion, launch)
        .await
        .unwrap());
    let uploading = tokio::spawn({
        let db = db.clone();
        async move { crate::ingest::results(&db, &session, batch("second")).await }
    });
    someone_waits_for_a_lock(&db).await;
    db::launches::delete_launch_rows(&mut deletion, launch)
        .await
        .unwrap();
    deletion.commit().await.unwrap();
    let refused = uploading.await.unwrap();
    assert!(
        matches!(refused, Err(ServerError::NotFound(_))),
        "an upload into a deleted launch is refused, got {refused:?}"
    );
    assert_eq!(orphans(&db).await, 0);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM test_results")
        .fetch_one(&db.read)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    db.write.close().await;
    drop(cluster);
}
