//! Retention by age and the retention lease, on the database directly (the
//! end-to-end tests cover `--launches` and replicas).

use serde_json::json;

use super::*;
use crate::db;

const DAY_MS: i64 = 86_400_000;

async fn launch(app: &TestApp, name: &str, close: bool) -> i64 {
    let id = app
        .post("/api/launch", ADMIN, &json!({"name": name, "projectId": 1}))
        .await
        .expect(200)
        .id("id");
    if close {
        app.post(&format!("/api/launch/{id}/close"), ADMIN, &json!({}))
            .await
            .expect(204);
    }
    id
}

#[tokio::test]
async fn retention_by_days_selects_closed_launches_older_than_the_bound() {
    let app = TestApp::new().await;
    let db = &app.state.db;
    let closed = launch(&app, "closed", true).await;
    launch(&app, "open", false).await;
    let now = db::now_ms();
    // No retention: nothing.
    assert!(db::lifecycle::retention_candidates(db, now + 10 * DAY_MS)
        .await
        .unwrap()
        .is_empty());
    app.json(
        axum::http::Method::PUT,
        "/api/project/1/retention",
        ADMIN,
        &json!({"days": 1}),
    )
    .await
    .expect(200);
    // Today both are younger than a day; two days on, the closed one is
    // old, the open one never goes.
    assert!(db::lifecycle::retention_candidates(db, now)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db::lifecycle::retention_candidates(db, now + 2 * DAY_MS)
            .await
            .unwrap(),
        vec![closed]
    );
}

#[tokio::test]
async fn one_holder_at_a_time_takes_the_lease() {
    let app = TestApp::new().await;
    let db = &app.state.db;
    let take = |who: &'static str, now: i64| async move {
        db::lifecycle::take_lease(db, "retention", who, now, now + 1000)
            .await
            .unwrap()
    };
    assert!(take("a", 10).await);
    assert!(!take("b", 20).await, "a holds it");
    assert!(take("a", 500).await, "the holder renews");
    assert!(!take("b", 1400).await, "renewed until 1500");
    assert!(take("b", 1501).await, "expired: another takes over");
    assert!(!take("a", 1600).await);
}
