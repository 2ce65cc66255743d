//! What `/readyz` and `/metrics` ask the database: that it answers, which
//! migrations are applied against the ones built in, and the few counts read
//! at scrape time (each an indexed count).

use sqlx::Row;

use super::{Backend, Db};
use crate::error::ServerResult;

/// The database answers a query (through the read pool).
pub(crate) async fn ping(db: &Db) -> ServerResult<()> {
    sqlx::query("SELECT 1").execute(&db.read).await?;
    Ok(())
}

/// Migrations compared: built into this binary but not applied (`pending`),
/// applied but unknown to this binary (`unknown`: a newer version migrated
/// the database).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MigrationState {
    pub pending: Vec<i64>,
    pub unknown: Vec<i64>,
}

impl MigrationState {
    pub(crate) fn complete(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
}

/// The versions of the migrations built into this binary.
pub(crate) fn embedded_migrations(backend: Backend) -> Vec<i64> {
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator.iter().map(|m| m.version).collect()
}

/// The applied set (successful rows of `_sqlx_migrations`) against the
/// embedded one.
pub(crate) async fn migrations(db: &Db) -> ServerResult<MigrationState> {
    let applied: Vec<i64> = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&db.read)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()?;
    let embedded = embedded_migrations(db.backend);
    Ok(MigrationState {
        pending: embedded
            .iter()
            .copied()
            .filter(|v| !applied.contains(v))
            .collect(),
        unknown: applied
            .iter()
            .copied()
            .filter(|v| !embedded.contains(v))
            .collect(),
    })
}

/// Launches not closed (index `launches_open_activity`).
pub(crate) async fn open_launches(db: &Db) -> ServerResult<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM launches WHERE closed = 0")
            .fetch_one(&db.read)
            .await?
            .try_get("n")?,
    )
}

/// Open upload sessions (uploads in flight) of open launches: `(active,
/// abandoned)`, where abandoned ones have been silent since before
/// `silent_since_ms`. Through the open launches (`launches_open_activity`),
/// then their sessions (`sessions_open`): a session left open in a closed
/// launch takes nothing in any more, and is not counted.
pub(crate) async fn open_sessions(db: &Db, silent_since_ms: i64) -> ServerResult<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, \
         COUNT(CASE WHEN COALESCE(s.last_seen_ms, s.created_ms) < $1 THEN 1 END) AS abandoned \
         FROM launches l JOIN sessions s ON s.launch_id = l.id \
         WHERE l.closed = 0 AND s.closed_ms IS NULL",
    )
    .bind(silent_since_ms)
    .fetch_one(&db.read)
    .await?;
    let (n, abandoned): (i64, i64) = (row.try_get("n")?, row.try_get("abandoned")?);
    Ok((n - abandoned, abandoned))
}
