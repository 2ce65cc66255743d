//! SQL of backups and of the secret-key check: `server_meta` (migration 0018:
//! the fingerprint of the key that sealed the stored credentials), the stored
//! credentials, a consistent SQLite copy (`VACUUM INTO`) and what a database
//! holds (migrations applied, row counts, the blobs its rows point at).

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

use super::*;
use crate::error::{ServerError, ServerResult};

const FINGERPRINT: &str = "secret_key_fingerprint";

/// The fingerprint of the key the stored credentials were sealed with.
pub(crate) async fn key_fingerprint(db: &Db) -> ServerResult<Option<String>> {
    Ok(sqlx::query("SELECT value FROM server_meta WHERE name = $1")
        .bind(FINGERPRINT)
        .fetch_optional(&db.write)
        .await?
        .and_then(|r| opt_str(&r, "value")))
}

/// Records the fingerprint of the server's key.
pub(crate) async fn set_key_fingerprint(db: &Db, fingerprint: &str) -> ServerResult<()> {
    sqlx::query(
        "INSERT INTO server_meta (name, value, modified_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, modified_ms = excluded.modified_ms",
    )
    .bind(FINGERPRINT)
    .bind(fingerprint)
    .bind(now_ms())
    .execute(&db.write)
    .await?;
    Ok(())
}

/// Credentials stored sealed (`enc1:`), and one of them (to test a key on a
/// database from before fingerprints were kept).
pub(crate) async fn sealed_credentials(db: &Db) -> ServerResult<(i64, Option<String>)> {
    let n: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM job_configs WHERE credential LIKE 'enc1:%'")
            .fetch_one(&db.write)
            .await?
            .try_get("n")?;
    let one = sqlx::query(
        "SELECT credential FROM job_configs WHERE credential LIKE 'enc1:%' ORDER BY job_id LIMIT 1",
    )
    .fetch_optional(&db.write)
    .await?
    .and_then(|r| opt_str(&r, "credential"));
    Ok((n, one))
}

/// Clears every sealed credential (`--forget-stored-credentials`); the count.
pub(crate) async fn forget_sealed_credentials(db: &Db) -> ServerResult<u64> {
    Ok(sqlx::query(
        "UPDATE job_configs SET credential = NULL, modified_ms = $1 WHERE credential LIKE 'enc1:%'",
    )
    .bind(now_ms())
    .execute(&db.write)
    .await?
    .rows_affected())
}

/// A pool on a database as it is: no migrations run (a backup reads what is
/// there; a restore counts what it put back).
pub(crate) async fn open_plain(url: &str) -> ServerResult<AnyPool> {
    sqlx::any::install_default_drivers();
    let opts = AnyConnectOptions::from_str(url)
        .map_err(|e| ServerError::Config(format!("database URL: {e}")))?;
    let sqlite = url.starts_with("sqlite:");
    Ok(AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    sqlx::Executor::execute(conn, "PRAGMA busy_timeout=10000;").await?;
                }
                Ok(())
            })
        })
        .connect_with(opts)
        .await?)
}

/// Writes a consistent copy of a SQLite database (one read transaction, so
/// the server may go on writing) to `dest`, which must not exist. The copy
/// is made of the pages new databases get ([`super::PAGE_SIZE`]) whatever
/// the source's, so a database an earlier version made with SQLite's 4 KiB
/// pages comes back from a restore with the larger ones.
pub(crate) async fn sqlite_snapshot(pool: &AnyPool, dest: &str) -> ServerResult<()> {
    let mut conn = pool.acquire().await?;
    // Sets the size of the pages a VACUUM writes; the database itself, in
    // WAL, keeps its own.
    sqlx::query(&format!("PRAGMA page_size={}", super::PAGE_SIZE))
        .execute(&mut *conn)
        .await?;
    sqlx::query("VACUUM INTO $1")
        .bind(dest)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What a database holds, for a backup's manifest and a restore's report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Contents {
    /// Versions of the migrations applied.
    pub(crate) migrations: Vec<i64>,
    pub(crate) launches: i64,
    pub(crate) test_results: i64,
    pub(crate) attachments: i64,
    pub(crate) stored_credentials: i64,
    /// The sha256 of every blob a row points at that must be a file (not a
    /// small blob kept in the database).
    pub(crate) referenced_blobs: Vec<String>,
}

/// Reads [`Contents`] in one pass over the database.
pub(crate) async fn contents(pool: &AnyPool) -> ServerResult<Contents> {
    let migrations =
        sqlx::query("SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| get_i64(r, "version"))
            .collect::<ServerResult<Vec<i64>>>()?;
    let count = |sql: &'static str| async move {
        let n: i64 = sqlx::query(sql).fetch_one(pool).await?.try_get("n")?;
        ServerResult::Ok(n)
    };
    // Small blobs are rows of the database itself (migration 0022): the
    // files must cover only the others.
    let kept_inline = if migrations.contains(&22) {
        " WHERE sha256 NOT IN (SELECT sha256 FROM small_blobs)"
    } else {
        ""
    };
    let referenced_blobs = sqlx::query(&format!(
        "SELECT sha256 FROM (SELECT sha256 FROM attachments WHERE sha256 IS NOT NULL \
         UNION SELECT sha256 FROM session_files \
         UNION SELECT sha256 FROM launch_globals WHERE sha256 IS NOT NULL) AS referenced\
         {kept_inline} ORDER BY 1"
    ))
    .fetch_all(pool)
    .await?
    .iter()
    .filter_map(|r| opt_str(r, "sha256"))
    .collect();
    Ok(Contents {
        migrations,
        launches: count("SELECT COUNT(*) AS n FROM launches").await?,
        test_results: count("SELECT COUNT(*) AS n FROM test_results").await?,
        attachments: count("SELECT COUNT(*) AS n FROM attachments").await?,
        stored_credentials: count(
            "SELECT COUNT(*) AS n FROM job_configs WHERE credential IS NOT NULL",
        )
        .await?,
        referenced_blobs,
    })
}

/// The key fingerprint recorded in a database opened with [`open_plain`]
/// (`None` before migration 0018 or when none was recorded).
pub(crate) async fn recorded_fingerprint(pool: &AnyPool) -> Option<String> {
    sqlx::query("SELECT value FROM server_meta WHERE name = $1")
        .bind(FINGERPRINT)
        .fetch_optional(pool)
        .await
        .ok()
        .flatten()
        .and_then(|r| opt_str(&r, "value"))
}
