//! Small attachments live in the database (`db::small_blobs`), larger ones in
//! files, on both backends: what is stored where, that both download
//! byte-identical, that damage is refused and healed by a re-upload, that a
//! launch deletion and `server gc` free both, and that a removal racing with
//! an upload of the same bytes never leaves a row without its bytes.

use std::time::Duration;

use axum::http::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{TestApp, ADMIN};
use crate::db;

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Files in the blob store, by name.
fn files(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    for fan in std::fs::read_dir(app._dir.path().join("data").join("blobs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for f in std::fs::read_dir(fan.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(f.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

async fn small(app: &TestApp) -> Vec<(String, u64)> {
    db::small_blobs::sizes(&app.state.db).await.unwrap()
}

async fn attachment_ids(app: &TestApp, result: i64) -> Vec<i64> {
    let r = app
        .get(&format!("/api/testresult/{result}"), ADMIN)
        .await
        .expect(200)
        .body;
    r["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}

async fn attach(app: &TestApp, result: i64, name: &str, text: &str) {
    app.upload(
        &format!("/api/upload/test-result/{result}/attachment"),
        ADMIN,
        name,
        text,
    )
    .await
    .expect(202);
}

async fn small_blob_story(app: &TestApp) {
    let small_text = "a line of a small log\n".repeat(100);
    let large_text = "L".repeat(crate::blobs::INLINE_MAX + 1);
    let (launch, session) = app.launch_session(ADMIN, 1, "small blobs").await;
    let ids = app
        .upload_results(
            ADMIN,
            session,
            &[
                json!({"uuid": "u1", "name": "one", "status": "passed"}),
                json!({"uuid": "u2", "name": "two", "status": "failed"}),
            ],
        )
        .await;
    attach(app, ids[0], "small.txt", &small_text).await;
    attach(app, ids[0], "large.txt", &large_text).await;

    // The small one is a row, the large one a file; nothing else is stored.
    assert_eq!(
        small(app).await,
        vec![(sha(&small_text), small_text.len() as u64)]
    );
    assert_eq!(files(app), vec![sha(&large_text)]);
    let atts = attachment_ids(app, ids[0]).await;
    assert_eq!(atts.len(), 2);
    let mut got = Vec::new();
    for a in &atts {
        let body = app
            .get(&format!("/api/attachment/{a}/content"), ADMIN)
            .await
            .expect(200)
            .body;
        got.push(body.as_str().unwrap().to_string());
    }
    got.sort_by_key(|t| t.len());
    assert_eq!(got, vec![small_text.clone(), large_text.clone()]);

    // Damaged bytes in the database are refused, not sent; the same bytes
    // uploaded again (another result's attachment) heal them.
    let small_att = atts[0].min(atts[1]);
    sqlx::query("UPDATE small_blobs SET bytes = $1 WHERE sha256 = $2")
        .bind(b"not the bytes".to_vec())
        .bind(sha(&small_text))
        .execute(&app.state.db.write)
        .await
        .unwrap();
    let r = app
        .get(&format!("/api/attachment/{small_att}/content"), ADMIN)
        .await
        .expect(409);
    assert_eq!(r.code(), Some("content_damaged"), "{:?}", r.body);
    attach(app, ids[1], "again.txt", &small_text).await;
    let body = app
        .get(&format!("/api/attachment/{small_att}/content"), ADMIN)
        .await
        .expect(200)
        .body;
    assert_eq!(body.as_str(), Some(small_text.as_str()));

    // Deleting the launch frees both kinds, and says so.
    let deleted = app
        .send(
            Method::DELETE,
            &format!("/api/launch/{launch}"),
            Some(ADMIN),
            None,
            Vec::new(),
        )
        .await
        .expect(200)
        .body;
    let d = if deleted.is_array() {
        deleted[0].clone()
    } else {
        deleted
    };
    assert_eq!(d["attachments"], 3, "{d}");
    assert_eq!(d["blobsRemoved"], 2, "{d}");
    assert_eq!(
        d["bytesFreed"],
        (small_text.len() + large_text.len()) as u64,
        "{d}"
    );
    assert_eq!(small(app).await, vec![]);
    assert_eq!(files(app), Vec::<String>::new());

    // `server gc` finds small blobs no row references and removes them.
    let mut tx = app.state.db.write.begin().await.unwrap();
    db::small_blobs::put(&mut tx, &[(&sha("orphan"), b"orphan")])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let report = crate::lifecycle::gc(&app.state.db, &app.state.blobs, true)
        .await
        .unwrap();
    assert_eq!(report.orphans, vec![(sha("orphan"), 6)]);
    assert_eq!(small(app).await.len(), 1, "a dry run removes nothing");
    let report = crate::lifecycle::gc(&app.state.db, &app.state.blobs, false)
        .await
        .unwrap();
    assert_eq!((report.removed, report.bytes_freed), (1, 6));
    assert_eq!(small(app).await, vec![]);
}

/// A removal that meets an upload of the same bytes still in its
/// transaction waits for it, then sees its row and keeps the bytes.
async fn removal_waits_for_an_upload_of_the_same_bytes(app: &TestApp) {
    let (_, session) = app.launch_session(ADMIN, 1, "race").await;
    let ids = app
        .upload_results(
            ADMIN,
            session,
            &[json!({"uuid": "r1", "name": "r", "status": "passed"})],
        )
        .await;
    let text = "shared screenshot bytes";
    // Stored once and unreferenced (as after another launch's deletion).
    let mut tx = app.state.db.write.begin().await.unwrap();
    db::small_blobs::put(&mut tx, &[(&sha(text), text.as_bytes())])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // An upload of the same bytes: its bytes and its row, not yet committed.
    let mut upload = app.state.db.write.begin().await.unwrap();
    db::small_blobs::put(&mut upload, &[(&sha(text), text.as_bytes())])
        .await
        .unwrap();
    let digest = sha(text);
    db::result_rows::put_attachments(
        &mut upload,
        &[db::result_rows::AttachmentBytes {
            result_id: ids[0],
            file_name: "shot.txt",
            content_type: Some("text/plain"),
            size: text.len() as i64,
            sha256: &digest,
        }],
    )
    .await
    .unwrap();
    let state = app.state.clone();
    let removal = tokio::spawn(async move {
        crate::content::remove_unreferenced(&state.db, &state.blobs, &sha(text)).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!removal.is_finished(), "the removal waits for the upload");
    upload.commit().await.unwrap();
    assert_eq!(removal.await.unwrap().unwrap(), None, "referenced: kept");
    let att = attachment_ids(app, ids[0]).await[0];
    let body: Value = app
        .get(&format!("/api/attachment/{att}/content"), ADMIN)
        .await
        .expect(200)
        .body;
    assert_eq!(body.as_str(), Some(text));
}

#[tokio::test]
async fn small_attachments_are_rows_large_ones_files_on_sqlite() {
    let app = TestApp::new().await;
    small_blob_story(&app).await;
    removal_waits_for_an_upload_of_the_same_bytes(&app).await;
}

#[tokio::test]
async fn small_attachments_are_rows_large_ones_files_on_postgresql() {
    let Some(cluster) = super::pg::PgCluster::start() else {
        return;
    };
    let app = TestApp::on_postgres(&cluster, "small_blobs").await;
    small_blob_story(&app).await;
    removal_waits_for_an_upload_of_the_same_bytes(&app).await;
    drop(app);
    drop(cluster);
}
