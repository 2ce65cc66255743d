//! Readiness: the database answers a query, every migration built into this
//! binary is applied (and none it does not know), and the blob store's
//! directory takes a new file. Each check is bounded by [`CHECK_TIMEOUT`], so a
//! database that does not answer makes `/readyz` answer 503 quickly instead
//! of hanging the probe.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::db::{self, Db};

/// Longest wait for one check.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// One check's outcome; `code` (machine-readable) and `message` only when it
/// failed.
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    pub name: &'static str,
    /// `ok`, `failed`, or `skipped` (it needs a check that failed).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Check {
    fn ok(name: &'static str) -> Check {
        Check {
            name,
            status: "ok",
            code: None,
            message: None,
        }
    }

    fn failed(name: &'static str, code: &'static str, message: String) -> Check {
        Check {
            name,
            status: "failed",
            code: Some(code),
            message: Some(message),
        }
    }
}

/// The body of `/readyz`: `{"status": "ready"|"unavailable", "failed":
/// [names], "checks": [...]}`.
#[derive(Debug, Serialize)]
pub(crate) struct Readiness {
    pub status: &'static str,
    pub failed: Vec<&'static str>,
    pub checks: Vec<Check>,
}

impl Readiness {
    pub(crate) fn ready(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Runs the checks (the blob store's alongside the database's).
pub(crate) async fn readiness(db: &Db, blobs_dir: &Path) -> Readiness {
    let (database, blobs) = tokio::join!(database_checks(db), blob_store(blobs_dir));
    let mut checks = database;
    checks.push(blobs);
    let failed: Vec<&'static str> = checks
        .iter()
        .filter(|c| c.status == "failed")
        .map(|c| c.name)
        .collect();
    let r = Readiness {
        status: if failed.is_empty() {
            "ready"
        } else {
            "unavailable"
        },
        failed,
        checks,
    };
    log_change(&r);
    r
}

/// The `database` check, then (when it passed) the `migrations` check.
async fn database_checks(db: &Db) -> Vec<Check> {
    let database = match tokio::time::timeout(CHECK_TIMEOUT, db::health::ping(db)).await {
        Ok(Ok(())) => Check::ok("database"),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "readiness: the database query failed");
            Check::failed(
                "database",
                "database_unavailable",
                "the database did not answer a query".into(),
            )
        }
        Err(_) => Check::failed(
            "database",
            "database_timeout",
            format!(
                "the database did not answer within {}s",
                CHECK_TIMEOUT.as_secs()
            ),
        ),
    };
    if database.status != "ok" {
        let skipped = Check {
            name: "migrations",
            status: "skipped",
            code: None,
            message: None,
        };
        return vec![database, skipped];
    }
    let migrations = match tokio::time::timeout(CHECK_TIMEOUT, db::health::migrations(db)).await
    {
        Ok(Ok(m)) if m.complete() => Check::ok("migrations"),
        Ok(Ok(m)) if !m.pending.is_empty() => Check::failed(
            "migrations",
            "migrations_pending",
            format!("migrations not applied yet: {:?}", m.pending),
        ),
        Ok(Ok(m)) => Check::failed(
            "migrations",
            "migrations_unknown",
            format!(
                "the database has migrations this version does not know (a newer version migrated it): {:?}",
                m.unknown
            ),
        ),
        Ok(Err(_)) | Err(_) => Check::failed(
            "migrations",
            "migrations_unreadable",
            "the applied migrations cannot be read".into(),
        ),
    };
    vec![database, migrations]
}

/// The `blob_store` check: a small file is created, written, synced and
/// removed in the store's directory. Its name ends in `.tmp`, so one a crash
/// left is removed with the store's other left-overs.
async fn blob_store(dir: &Path) -> Check {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let probe = dir.join(format!(
        ".readyz.{}.{}.tmp",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let write = async {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .await?;
        f.write_all(b"onelaunch readiness probe\n").await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::remove_file(&probe).await
    };
    match tokio::time::timeout(CHECK_TIMEOUT, write).await {
        Ok(Ok(())) => Check::ok("blob_store"),
        Ok(Err(e)) => {
            let _ = tokio::fs::remove_file(&probe).await;
            Check::failed(
                "blob_store",
                "blob_store_not_writable",
                format!("the blob store directory does not take a new file: {e}"),
            )
        }
        Err(_) => Check::failed(
            "blob_store",
            "blob_store_timeout",
            format!(
                "writing to the blob store directory took longer than {}s",
                CHECK_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// Logs when readiness changes (not on every probe).
fn log_change(r: &Readiness) {
    // 0: not yet known, 1: ready, 2: unavailable.
    static LAST: AtomicU8 = AtomicU8::new(0);
    let now = if r.ready() { 1 } else { 2 };
    if LAST.swap(now, Ordering::Relaxed) == now {
        return;
    }
    if r.ready() {
        tracing::info!("ready: the database, its migrations and the blob store answer");
    } else {
        let why: Vec<String> = r
            .checks
            .iter()
            .filter(|c| c.status == "failed")
            .map(|c| format!("{} ({})", c.name, c.code.unwrap_or("")))
            .collect();
        tracing::warn!(failed = %why.join(", "), "not ready");
    }
}
