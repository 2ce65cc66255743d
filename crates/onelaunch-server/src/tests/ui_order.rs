//! The web UI's order of a launch's results (`db::ui_order`): uploads do not
//! write it, and a launch's pages and overview read the same before it is
//! settled (sorted in the query), partly settled (the newer results merged
//! into `ui_results`' order) and after.

use super::*;
use crate::db::result_views::{results, ResultFilter};
use crate::db::{self, ui_order, views, Db};

/// `n` results from `from` on, names in no order, four statuses; every
/// fifth test is stored twice (an earlier attempt, then a retry).
fn batch(from: usize, n: usize) -> Vec<onelaunch_api::UploadTestResult> {
    let statuses = ["passed", "failed", "broken", "skipped"];
    (from..from + n)
        .map(|i| {
            let test = if i % 5 == 0 { i - i % 10 } else { i };
            onelaunch_api::UploadTestResult {
                uuid: format!("u-{i}"),
                history_id: Some(format!("h-{test}")),
                name: format!("test {:04}", (test * 7919) % 10_007),
                full_name: Some(format!("shop.t{test}")),
                status: Some(statuses[(i * 3) % 4].into()),
                start: Some(1_000 + i as i64),
                stop: Some(1_005 + i as i64),
                ..Default::default()
            }
        })
        .collect()
}

/// Every page of `launch` (size 7) for several filters, with and without
/// the stored overview: (filter, page, ids, names, statuses, retries) and the
/// totals.
async fn pages(db: &Db, launch: i64, run: i64) -> Vec<String> {
    let overview = views::overview(db, launch).await.unwrap();
    let filters = [
        ResultFilter::default(),
        ResultFilter {
            retries: true,
            ..Default::default()
        },
        ResultFilter {
            status: Some("failed".into()),
            ..Default::default()
        },
        ResultFilter {
            job_run: Some(run),
            retries: true,
            ..Default::default()
        },
        ResultFilter {
            text: Some("test 1".into()),
            ..Default::default()
        },
        // Only full names match this one (`shop.t1…`), in any case.
        ResultFilter {
            text: Some("SHOP.T1".into()),
            ..Default::default()
        },
        ResultFilter {
            manual: true,
            ..Default::default()
        },
    ];
    // The overview with its maps in key order.
    let runs: std::collections::BTreeMap<_, _> = overview
        .job_runs
        .iter()
        .map(|(run, (counts, last))| {
            let counts: std::collections::BTreeMap<_, _> = counts.iter().collect();
            (run, (counts, last))
        })
        .collect();
    let mut out = vec![format!(
        "{:?} {} {} {} {:?} {:?} {:?} {runs:?} {:?}",
        overview.counts,
        overview.tests,
        overview.results,
        overview.manual_tests,
        overview.first_start,
        overview.last_stop,
        overview.last_result_ms,
        overview.groups
    )];
    for (k, f) in filters.iter().enumerate() {
        for o in [None, Some(&overview)] {
            for page in 0..40 {
                let (lines, total) = results(db, launch, f, page, 7, o).await.unwrap();
                if lines.is_empty() {
                    out.push(format!("filter {k}: {total} in all, {page} pages"));
                    break;
                }
                let seen: Vec<String> = lines
                    .iter()
                    .map(|l| format!("{} {} {} {}", l.id, l.name, l.status, l.retry))
                    .collect();
                out.push(format!("filter {k} page {page}: {}", seen.join(", ")));
            }
        }
    }
    out
}

async fn count(db: &Db, launch: i64) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM ui_results WHERE launch_id = $1")
        .bind(launch)
        .fetch_one(&db.read)
        .await
        .unwrap()
}

/// An upload leaves `ui_results` alone; once settled it holds the launch's
/// results, and every page and the overview read the same as before; newer
/// results are listed before they are settled; deleting the launch deletes
/// its rows.
#[tokio::test]
async fn pages_read_the_same_before_and_after_the_order_is_settled() {
    let app = TestApp::new().await;
    let db = &app.state.db;
    let (launch, session) = super::job_run_session(db, 1, "run-order").await;
    let run = session.job_run_id.unwrap();
    crate::ingest::results(db, &session, batch(0, 120))
        .await
        .unwrap();
    assert_eq!(count(db, launch).await, 0, "an upload does not order");
    assert!(ui_order::tail_from(db, launch).await.unwrap().is_some());
    let unsettled = pages(db, launch, run).await;
    assert!(unsettled.len() > 20, "{unsettled:?}");

    assert_eq!(ui_order::settle(db).await.unwrap(), 120);
    assert_eq!(count(db, launch).await, 120);
    assert_eq!(ui_order::tail_from(db, launch).await.unwrap(), None);
    assert_eq!(pages(db, launch, run).await, unsettled);
    assert_eq!(ui_order::settle(db).await.unwrap(), 0, "nothing twice");

    // Newer results: read from their rows until they are settled, merged
    // into the settled order; one of them retries a settled test, whose
    // settled attempt then reads as a retry.
    let mut newer = batch(120, 45);
    let mut again = batch(10, 1).remove(0);
    again.uuid = "u-10-again".into();
    again.status = Some("failed".into());
    again.start = Some(9_000);
    again.stop = Some(9_005);
    newer.push(again);
    crate::ingest::results(db, &session, newer).await.unwrap();
    assert!(ui_order::tail_from(db, launch).await.unwrap().is_some());
    let newer = pages(db, launch, run).await;
    assert_ne!(newer, unsettled);
    assert!(newer
        .iter()
        .any(|p| p.contains("u-") || p.contains(" in all")));
    assert!(
        newer.iter().any(|p| p.contains(" test 9141 failed true")),
        "the settled attempt of the retried test reads as a retry: {newer:?}"
    );
    assert_eq!(ui_order::settle(db).await.unwrap(), 46);
    assert_eq!(pages(db, launch, run).await, newer);

    db::lifecycle::delete_launch(db, launch).await.unwrap();
    assert_eq!(count(db, launch).await, 0, "deleted with its launch");
}

/// The background settler orders what nobody read: at start, and once
/// uploads pause.
#[tokio::test]
async fn the_server_orders_results_once_uploads_pause() {
    let app = TestApp::new().await;
    let db = &app.state.db;
    let (launch, session) = super::job_run_session(db, 1, "run-pause").await;
    crate::ingest::results(db, &session, batch(0, 30))
        .await
        .unwrap();
    let settler = db::settle::spawn(db.clone());
    let settled = async {
        while count(db, launch).await < 30 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), settled)
        .await
        .expect("ordered at start");
    crate::ingest::results(db, &session, batch(30, 10))
        .await
        .unwrap();
    let settled = async {
        while count(db, launch).await < 40 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), settled)
        .await
        .expect("ordered after the upload paused");
    assert_eq!(ui_order::tail_from(db, launch).await.unwrap(), None);
    settler.abort();
}

/// A database from before migration 0030 (the order in an index of
/// `test_results`) has its results ordered by the migration.
#[tokio::test]
async fn a_database_from_before_0030_has_its_results_ordered() {
    let (_dir, url, db, launch, session) = super::file_db_session("run-before").await;
    let run = session.job_run_id.unwrap();
    crate::ingest::results(&db, &session, batch(0, 60))
        .await
        .unwrap();
    let expected = pages(&db, launch, run).await;
    // As 0029 left it.
    super::rewound(
        db,
        &url,
        &[
            "DROP TABLE ui_results",
            "DROP TABLE ui_results_mark",
            "CREATE INDEX test_results_ui ON test_results(launch_id, manual, job_run_id, status, name, id, start_ms, stop_ms, created_ms)",
            "DELETE FROM _sqlx_migrations WHERE version >= 30",
        ],
    )
    .await;

    let db = Db::connect(&url).await.unwrap();
    assert_eq!(count(&db, launch).await, 60);
    assert_eq!(ui_order::tail_from(&db, launch).await.unwrap(), None);
    assert_eq!(pages(&db, launch, run).await, expected);
    let index: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'test_results_ui'")
            .fetch_optional(&db.read)
            .await
            .unwrap();
    assert_eq!(index, None);
}

/// A database from before migration 0031 (`ui_results` without full names
/// and test keys) has them filled in: a search by full name finds settled
/// results, and a retried test's earlier attempt is not listed as latest.
#[tokio::test]
async fn a_database_from_before_0031_has_full_names_and_test_keys_in_its_order() {
    let (_dir, url, db, launch, session) = super::file_db_session("run-names").await;
    let run = session.job_run_id.unwrap();
    crate::ingest::results(&db, &session, batch(0, 60))
        .await
        .unwrap();
    assert_eq!(ui_order::settle(&db).await.unwrap(), 60);
    let expected = pages(&db, launch, run).await;
    assert!(
        expected.iter().any(|p| p.starts_with("filter 5 page 0: ")),
        "the full-name search finds results: {expected:?}"
    );
    // As 0030 left it.
    super::rewound(
        db,
        &url,
        &[
            "ALTER TABLE ui_results DROP COLUMN full_name",
            "ALTER TABLE ui_results DROP COLUMN test_key",
            "DELETE FROM _sqlx_migrations WHERE version = 31",
        ],
    )
    .await;

    let db = Db::connect(&url).await.unwrap();
    assert_eq!(ui_order::tail_from(&db, launch).await.unwrap(), None);
    assert_eq!(pages(&db, launch, run).await, expected);
}

/// On PostgreSQL `ui_results` is a view of every result: always ordered.
#[tokio::test]
async fn postgres_reads_the_order_from_the_results() {
    let Some(cluster) = super::pg::PgCluster::start() else {
        return;
    };
    let app = TestApp::on_postgres(&cluster, "ui_order").await;
    let db = &app.state.db;
    let (launch, session) = super::job_run_session(db, 1, "run-pg").await;
    let run = session.job_run_id.unwrap();
    crate::ingest::results(db, &session, batch(0, 50))
        .await
        .unwrap();
    assert_eq!(ui_order::tail_from(db, launch).await.unwrap(), None);
    assert_eq!(ui_order::settle(db).await.unwrap(), 0);
    assert_eq!(count(db, launch).await, 50);
    let listed = pages(db, launch, run).await;
    assert!(listed.iter().any(|p| p.starts_with("filter 0 page 0: ")));
    app.state.db.write.close().await;
    drop(cluster);
}
