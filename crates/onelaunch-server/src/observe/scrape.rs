//! `/metrics`: the gauges read at scrape time (open launches and upload
//! sessions from the database, the pools, the blob store's free space), then
//! the exposition of everything recorded (`crate::metrics`). Every replica
//! reads the same database, so the database gauges agree across replicas;
//! the counters and pools are per process.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::db::{self, Backend, Db};
use crate::metrics::{describe_scraped, set_gauge};

use super::health::CHECK_TIMEOUT;

const DATABASE_UP: &str = "onelaunch_database_up";
const LAUNCHES_OPEN: &str = "onelaunch_launches_open";
const SESSIONS_OPEN: &str = "onelaunch_upload_sessions_open";
const POOL_SIZE: &str = "onelaunch_db_pool_size";
const POOL_IDLE: &str = "onelaunch_db_pool_idle";
const POOL_IN_USE: &str = "onelaunch_db_pool_in_use";
const POOL_MAX: &str = "onelaunch_db_pool_max";
const BLOB_FREE: &str = "onelaunch_blob_store_free_bytes";
const BLOB_SIZE: &str = "onelaunch_blob_store_size_bytes";
const BUILD_INFO: &str = "onelaunch_build_info";
const WRITES_GROUPED: &str = "onelaunch_ingest_writes_grouped";
const WRITE_GROUPS: &str = "onelaunch_ingest_write_groups";
const WRITE_GROUPS_REPLAYED: &str = "onelaunch_ingest_write_groups_replayed";
const WRITES_WAITING: &str = "onelaunch_ingest_writes_waiting";
const CHECKPOINTS: &str = "onelaunch_sqlite_checkpoints";
const CHECKPOINTS_FAILED: &str = "onelaunch_sqlite_checkpoints_failed";

/// Reads the gauges and renders the exposition (Prometheus text format 0.0.4).
pub(crate) async fn render(db: &Db, blobs_dir: &Path, session_timeout: Duration) -> String {
    describe();
    set_gauge(BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    let silent_since = db::now_ms() - session_timeout.as_millis() as i64;
    let counts = async {
        let launches = db::health::open_launches(db).await?;
        let sessions = db::health::open_sessions(db, silent_since).await?;
        Ok::<_, crate::error::ServerError>((launches, sessions))
    };
    match tokio::time::timeout(CHECK_TIMEOUT, counts).await {
        Ok(Ok((launches, (active, abandoned)))) => {
            set_gauge(DATABASE_UP, &[], 1.0);
            set_gauge(LAUNCHES_OPEN, &[], launches as f64);
            set_gauge(SESSIONS_OPEN, &[("state", "active")], active as f64);
            set_gauge(SESSIONS_OPEN, &[("state", "abandoned")], abandoned as f64);
        }
        // The database gauges keep their last values; `onelaunch_database_up`
        // says they are stale.
        _ => set_gauge(DATABASE_UP, &[], 0.0),
    }
    pools(db);
    groups(db);
    blob_space(blobs_dir);
    crate::metrics::render()
}

fn describe() {
    describe_scraped(
        DATABASE_UP,
        "1 when the database answered this scrape's queries, else 0 (database gauges then keep their last values)",
    );
    describe_scraped(LAUNCHES_OPEN, "Launches not closed");
    describe_scraped(
        SESSIONS_OPEN,
        "Upload sessions open in open launches: active, or abandoned (silent longer than --upload-session-timeout)",
    );
    describe_scraped(POOL_SIZE, "Connections open in a database pool");
    describe_scraped(POOL_IDLE, "Idle connections of a database pool");
    describe_scraped(POOL_IN_USE, "Connections of a database pool in use");
    describe_scraped(POOL_MAX, "Most connections a database pool opens");
    describe_scraped(
        BLOB_FREE,
        "Bytes free for the server on the blob store's file system",
    );
    describe_scraped(BLOB_SIZE, "Size of the blob store's file system in bytes");
    describe_scraped(BUILD_INFO, "The server's version (always 1)");
    describe_scraped(
        WRITES_GROUPED,
        "SQLite: ingest writes (result batches, attachment requests) the group writer ran since start",
    );
    describe_scraped(
        WRITE_GROUPS,
        "SQLite: groups the group writer ran since start, each ending in one commit (writes grouped / groups = writes per commit); a replayed group ran a second transaction",
    );
    describe_scraped(
        WRITE_GROUPS_REPLAYED,
        "SQLite: groups rolled back and run again, with a savepoint per write, after one of their writes failed",
    );
    describe_scraped(
        WRITES_WAITING,
        "SQLite: ingest writes queued for the group writer now",
    );
    describe_scraped(CHECKPOINTS, "SQLite: WAL checkpoints run beside the writer");
    describe_scraped(
        CHECKPOINTS_FAILED,
        "SQLite: WAL checkpoints beside the writer that failed (the writer's own checkpoint bounds the WAL)",
    );
}

/// The SQLite group writer's work (`db::group`) and the checkpoints beside
/// it (`db::checkpoint`); PostgreSQL has neither.
fn groups(db: &Db) {
    if let Some(g) = &db.groups {
        let (queued, taken, groups, replayed) = g.counts().read();
        set_gauge(WRITES_GROUPED, &[], taken as f64);
        set_gauge(WRITE_GROUPS, &[], groups as f64);
        set_gauge(WRITE_GROUPS_REPLAYED, &[], replayed as f64);
        set_gauge(WRITES_WAITING, &[], queued.saturating_sub(taken) as f64);
    }
    if let Some(c) = &db.checkpoints {
        let c = c.counts();
        set_gauge(CHECKPOINTS, &[], c.runs.load(Relaxed) as f64);
        set_gauge(CHECKPOINTS_FAILED, &[], c.failures.load(Relaxed) as f64);
    }
}

/// The pools: `read` and `write` on SQLite (one writer), `shared` on
/// PostgreSQL (one pool for both).
fn pools(db: &Db) {
    let pools: Vec<(&str, &sqlx::AnyPool)> = match db.backend {
        Backend::Sqlite => vec![("read", &db.read), ("write", &db.write)],
        Backend::Postgres => vec![("shared", &db.write)],
    };
    for (name, pool) in pools {
        let size = pool.size() as f64;
        let idle = pool.num_idle() as f64;
        set_gauge(POOL_SIZE, &[("pool", name)], size);
        set_gauge(POOL_IDLE, &[("pool", name)], idle);
        set_gauge(POOL_IN_USE, &[("pool", name)], (size - idle).max(0.0));
        set_gauge(
            POOL_MAX,
            &[("pool", name)],
            pool.options().get_max_connections() as f64,
        );
    }
}

/// Free and total bytes of the blob store's file system (`statvfs`; free is
/// what an unprivileged writer gets, like `df`'s "Avail").
#[cfg(unix)]
fn blob_space(dir: &Path) {
    if let Ok(s) = rustix::fs::statvfs(dir) {
        set_gauge(BLOB_FREE, &[], (s.f_bavail as f64) * (s.f_frsize as f64));
        set_gauge(BLOB_SIZE, &[], (s.f_blocks as f64) * (s.f_frsize as f64));
    }
}

#[cfg(not(unix))]
fn blob_space(_dir: &Path) {}
