//! Data lifecycle: deleting launches (rows, then every blob no row references
//! any more), retention per project run by a periodic task, and the garbage
//! collection of orphaned blob files (`onelaunch server gc`).
//!
//! * **Blobs are shared.** Attachment bytes are stored once under their
//!   SHA-256 (`content.rs`: small ones in the database, others as files of
//!   `blobs.rs`) and may be referenced by several launches (the same
//!   screenshot uploaded twice, a combined launch's copies). A deletion first
//!   removes the rows in one transaction, collecting the digests they pointed
//!   at; after the commit each digest still referenced by any row (queried
//!   then: `db::lifecycle::blob_referenced`) stays, the others are removed.
//! * **The race with an upload of the same bytes.** Small bytes are a row
//!   written with the rows that reference them; their removal locks that row
//!   and asks again (`db::small_blobs`). A file is written before its row:
//!   it is renamed to a tombstone and the database
//!   asked again; a row committed before that keeps the file (renamed back),
//!   a row committed after it belongs to an upload that still holds a second
//!   name of the file and links it back once its row is in (`blobs::Hold`).
//! * **Busy launches are refused.** A launch with an unfinished job run or an
//!   open upload session (not abandoned: `--upload-session-timeout`) is not
//!   deleted (409 `conflict`) unless `force` is given; retention never deletes
//!   one and skips open launches altogether.
//! * **Replicas.** The retention pass runs under a lease row
//!   (`lifecycle_leases`): one replica at a time; deleting a launch that is
//!   already gone deletes nothing, so a pass that overlaps a manual delete is
//!   harmless.

use std::collections::BTreeMap;
use std::time::Duration;

use onelaunch_api::Id;

use crate::blobs::{BlobStore, STALE_TMP};
use crate::content;
use crate::db::{self, Db};
use crate::error::{ServerError, ServerResult};

/// What deleting one launch removed.
#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Deleted {
    pub launch_id: Id,
    /// False when it was already gone (deleted meanwhile).
    #[serde(skip)]
    pub existed: bool,
    pub results: i64,
    pub attachments: i64,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
}

/// Why a launch cannot be deleted now (`None`: it can).
async fn busy_reason(db: &Db, id: Id, session_timeout: Duration) -> ServerResult<Option<String>> {
    let p = crate::closing::participants(db, id, None, session_timeout).await?;
    let (copied_runs, copied_sessions) = db::lifecycle::copied_parts(db, id).await?;
    let runs = p
        .unfinished
        .iter()
        .filter(|r| !copied_runs.contains(&r.id))
        .count();
    let sessions = p
        .open_sessions
        .iter()
        .filter(|s| !copied_sessions.contains(&s.id))
        .count();
    Ok(if runs > 0 {
        Some(format!("{runs} job run(s) of launch {id} are not finished"))
    } else if sessions > 0 {
        Some(format!(
            "{sessions} upload session(s) of launch {id} are open"
        ))
    } else {
        None
    })
}

/// Deletes a launch: refused while it is busy unless `force`; then its rows
/// (one transaction), then the blobs nothing references any more.
pub(crate) async fn delete_launch(
    db: &Db,
    blobs: &BlobStore,
    id: Id,
    force: bool,
    session_timeout: Duration,
) -> ServerResult<Deleted> {
    if !force {
        if let Some(why) = busy_reason(db, id, session_timeout).await? {
            return Err(ServerError::Conflict(format!(
                "{why}: finish them first, or delete with force=true"
            )));
        }
    }
    let rows = db::lifecycle::delete_launch(db, id).await?;
    let (blobs_removed, bytes_freed) = remove_unreferenced(db, blobs, &rows.blobs).await?;
    if rows.existed {
        tracing::info!(
            launch = id,
            results = rows.results,
            blobs_removed,
            bytes_freed,
            "launch deleted"
        );
    }
    Ok(Deleted {
        launch_id: id,
        existed: rows.existed,
        results: rows.results,
        attachments: rows.attachments,
        blobs_removed,
        bytes_freed,
    })
}

/// Removes the blobs among `candidates` no row references; answers how many
/// and their bytes.
async fn remove_unreferenced<'a>(
    db: &Db,
    blobs: &BlobStore,
    candidates: impl IntoIterator<Item = &'a String>,
) -> ServerResult<(u64, u64)> {
    let (mut n, mut bytes) = (0, 0);
    for sha in candidates {
        if db::lifecycle::blob_referenced(db, sha).await? {
            continue;
        }
        if let Some(len) = content::remove_unreferenced(db, blobs, sha).await? {
            n += 1;
            bytes += len;
        }
    }
    Ok((n, bytes))
}

/// What `server gc` found (and removed unless it was a dry run).
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    /// Blobs no row references, files and small blobs kept in the database:
    /// (sha256, bytes).
    pub orphans: Vec<(String, u64)>,
    /// Blob files no row references that are younger than the grace period
    /// (an upload may still be recording them): left alone. Small blobs have
    /// no such wait: they are written with the rows that reference them.
    pub young_orphans: usize,
    /// Temporary files older than an hour: (path, bytes).
    pub stale_tmp: Vec<(std::path::PathBuf, u64)>,
    /// Blobs referenced by rows (kept).
    pub referenced: usize,
    /// Rows whose bytes are missing, neither a file nor in the database
    /// (digests).
    pub missing: Vec<String>,
    pub removed: usize,
    pub bytes_freed: u64,
}

/// Finds orphaned blob files and stale temporary files; removes them unless
/// `dry_run`. Safe while servers run: each removal asks the database again
/// (see [`BlobStore::remove_unreferenced`]) and young files are skipped.
pub(crate) async fn gc(db: &Db, blobs: &BlobStore, dry_run: bool) -> ServerResult<GcReport> {
    let referenced = db::lifecycle::referenced_blobs(db).await?;
    let (files, tmps) = blobs.inventory();
    let mut report = GcReport::default();
    // Every stored digest once, whichever store holds it (both, for bytes
    // stored as a file by an older version and as a row since): its bytes in
    // all, and whether a young file of it may still be waiting for its row.
    let mut stored: BTreeMap<String, (u64, bool)> = BTreeMap::new();
    for (sha, len) in db::small_blobs::sizes(db).await? {
        stored.insert(sha, (len, false));
    }
    for f in files {
        let e = stored.entry(f.sha256).or_default();
        e.0 += f.len;
        e.1 |= f.age < crate::blobs::GC_GRACE;
    }
    report.missing = referenced
        .iter()
        .filter(|s| !stored.contains_key(s.as_str()))
        .cloned()
        .collect();
    for (sha, (len, young)) in stored {
        if referenced.contains(&sha) {
            report.referenced += 1;
        } else if young {
            report.young_orphans += 1;
        } else {
            report.orphans.push((sha, len));
        }
    }
    report.stale_tmp = tmps
        .into_iter()
        .filter(|t| t.age > STALE_TMP)
        .map(|t| (t.path, t.len))
        .collect();
    if !dry_run {
        let shas: Vec<String> = report.orphans.iter().map(|(s, _)| s.clone()).collect();
        let (n, bytes) = remove_unreferenced(db, blobs, &shas).await?;
        report.removed = n as usize;
        report.bytes_freed = bytes;
        for (path, len) in &report.stale_tmp {
            if std::fs::remove_file(path).is_ok() {
                report.removed += 1;
                report.bytes_freed += len;
            }
        }
    }
    Ok(report)
}

/// One retention pass: deletes the closed launches retention selects, never
/// a busy one. Answers the launches deleted.
pub(crate) async fn retention_pass(
    db: &Db,
    blobs: &BlobStore,
    session_timeout: Duration,
) -> ServerResult<Vec<Deleted>> {
    let mut out = Vec::new();
    for id in db::lifecycle::retention_candidates(db, db::now_ms()).await? {
        match delete_launch(db, blobs, id, false, session_timeout).await {
            Ok(d) if d.existed => {
                tracing::info!(launch = id, "launch deleted by retention");
                out.push(d);
            }
            Ok(_) => {}
            // Busy: tried again at the next pass.
            Err(ServerError::Conflict(why)) => {
                tracing::debug!(launch = id, why, "retention skips a busy launch");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Starts the retention task: every `every`, the replica holding the lease
/// runs [`retention_pass`]. The lease lasts a few intervals, so a replica
/// that stops leaves it to another.
pub(crate) fn spawn_retention(
    db: Db,
    blobs: BlobStore,
    every: Duration,
    session_timeout: Duration,
) -> tokio::task::JoinHandle<()> {
    let holder = format!("{}-{}-{}", std::process::id(), db::now_ms(), rand_suffix());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lease_ms = i64::try_from(every.as_millis().saturating_mul(3))
            .unwrap_or(i64::MAX / 2)
            .max(30_000);
        loop {
            tick.tick().await;
            let now = db::now_ms();
            match db::lifecycle::take_lease(&db, "retention", &holder, now, now + lease_ms).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "retention lease not taken");
                    continue;
                }
            }
            if let Err(e) = retention_pass(&db, &blobs, session_timeout).await {
                tracing::warn!(error = %e, "retention pass failed");
            }
        }
    })
}

/// A few random hex digits telling replicas in one process apart (tests).
fn rand_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(db::now_ms() as u64);
    format!("{:08x}", h.finish() as u32)
}
