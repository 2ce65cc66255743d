//! On SQLite, as on PostgreSQL, `test_results` and `test_cases` have no
//! foreign keys to the rows they point at (migration 0028): the data layer
//! checks a batch's launch, session and job run once
//! (`db::result_rows::hold_owners`) where SQLite checked every row. These
//! tests pin the schema that migration leaves, on a fresh database and on
//! one from before it, and that a batch whose owners are not there is still
//! refused and leaves nothing behind.

use sqlx::{Connection, Row};

use super::owner_locks::batch;
use crate::db::{self, Db};
use crate::error::ServerError;

/// The tables `table`'s foreign keys point at, sorted.
async fn parents(db: &Db, table: &str) -> Vec<String> {
    let mut parents: Vec<String> = sqlx::query(&format!(
        "SELECT \"table\" AS parent FROM pragma_foreign_key_list('{table}')"
    ))
    .fetch_all(&db.read)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("parent"))
    .collect();
    parents.sort();
    parents
}

async fn integrity(db: &Db) -> String {
    sqlx::query("PRAGMA integrity_check")
        .fetch_one(&db.read)
        .await
        .unwrap()
        .get(0)
}

async fn stored(db: &Db) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM test_results")
        .fetch_one(&db.read)
        .await
        .unwrap()
        .get("n")
}

async fn fresh(dir: &tempfile::TempDir) -> Db {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("o.db").display());
    let db = Db::connect(&url).await.unwrap();
    db::projects::bootstrap(&db, Some("owners")).await.unwrap();
    db
}

#[tokio::test]
async fn results_and_cases_keep_no_owner_keys_and_the_rest_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(&dir).await;
    assert_eq!(parents(&db, "test_results").await, Vec::<String>::new());
    assert_eq!(parents(&db, "test_cases").await, Vec::<String>::new());
    // What points at results and cases keeps its keys.
    assert_eq!(parents(&db, "attachments").await, ["test_results"]);
    assert_eq!(parents(&db, "launches").await, ["projects"]);
    assert_eq!(integrity(&db).await, "ok");
    // The writer still enforces the keys that are left.
    let mut conn = db.write.acquire().await.unwrap();
    let orphan = sqlx::query(
        "INSERT INTO attachments (test_result_id, file_name, name, created_ms) \
         VALUES (999999, 'a.txt', 'a.txt', 0)",
    )
    .execute(&mut *conn)
    .await;
    assert!(orphan.is_err(), "an attachment of no result was stored");
}

/// A database made before migration 0028 (its keys put back into the schema
/// text, the migration unrecorded) loses the keys when opened, and keeps its
/// rows; uploads go on.
#[tokio::test]
async fn a_database_from_before_0028_loses_the_keys_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(&dir).await;
    let (_, session) = super::job_run_session(&db, 1, "run-before").await;
    crate::ingest::results(&db, &session, batch("before"))
        .await
        .unwrap();
    db.read.close().await;
    db.write.close().await;
    drop(db);

    let url = format!("sqlite://{}", dir.path().join("o.db").display());
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for sql in [
        "PRAGMA writable_schema=ON",
        "UPDATE sqlite_schema SET sql = \
         replace(replace(replace(replace(sql, \
         'project_id INTEGER NOT NULL,', 'project_id INTEGER NOT NULL REFERENCES projects(id),'), \
         'launch_id INTEGER NOT NULL,', 'launch_id INTEGER NOT NULL REFERENCES launches(id),'), \
         'job_run_id INTEGER NULL,', 'job_run_id INTEGER NULL REFERENCES job_runs(id),'), \
         'session_id INTEGER NOT NULL,', 'session_id INTEGER NOT NULL REFERENCES sessions(id),') \
         WHERE name = 'test_results'",
        "UPDATE sqlite_schema SET sql = \
         replace(replace(sql, \
         'project_id INTEGER NOT NULL,', 'project_id INTEGER NOT NULL REFERENCES projects(id),'), \
         'job_id INTEGER NULL', 'job_id INTEGER NULL REFERENCES jobs(id)') \
         WHERE name = 'test_cases'",
        "PRAGMA writable_schema=RESET",
        "DELETE FROM _sqlx_migrations WHERE version = 28",
    ] {
        sqlx::query(sql).execute(&mut raw).await.unwrap();
    }
    for (table, keys) in [("test_results", 4), ("test_cases", 2)] {
        let restored: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) FROM pragma_foreign_key_list('{table}')"
        ))
        .fetch_one(&mut raw)
        .await
        .unwrap()
        .get(0);
        assert_eq!(
            restored, keys,
            "the keys of {table} before 0028 were put back"
        );
    }
    raw.close().await.unwrap();

    let db = Db::connect(&url).await.unwrap();
    assert_eq!(parents(&db, "test_results").await, Vec::<String>::new());
    assert_eq!(parents(&db, "test_cases").await, Vec::<String>::new());
    assert_eq!(integrity(&db).await, "ok");
    assert_eq!(stored(&db).await, 3);
    crate::ingest::results(&db, &session, batch("after"))
        .await
        .unwrap();
    assert_eq!(stored(&db).await, 6);
}

/// Without keys to check every row, a batch whose session, launch or job run
/// is not there (or does not belong together) is refused by the once-a-batch
/// check, and nothing of it is stored.
#[tokio::test]
async fn a_batch_whose_owners_are_not_there_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh(&dir).await;
    let (_, session) = super::job_run_session(&db, 1, "run-1").await;
    let (other_launch, _) = super::job_run_session(&db, 1, "run-2").await;
    let mut no_session = session.clone();
    no_session.id = 999_999;
    let mut other = session.clone();
    other.launch_id = other_launch;
    let mut no_run = session.clone();
    no_run.job_run_id = Some(999_999);
    for (what, s) in [
        ("no session", no_session),
        ("another launch", other),
        ("no job run", no_run),
    ] {
        match crate::ingest::results(&db, &s, batch(what)).await {
            Err(ServerError::NotFound(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(stored(&db).await, 0);
    crate::ingest::results(&db, &session, batch("ok"))
        .await
        .unwrap();
    assert_eq!(stored(&db).await, 3);
}
