//! The bytes of small blobs, kept in the database (`small_blobs`, migration
//! 0022) instead of a file each: written in the transaction of the row that
//! points at them, read back by digest, removed when no row points at them.
//! Which blobs are small is the blob store's decision (`blobs::INLINE_MAX`);
//! here they are rows.
//!
//! * **No row without its bytes.** [`put`] runs inside the caller's
//!   transaction, before the rows that reference the digest.
//! * **The race with a removal.** [`put`] is an upsert that updates (and so
//!   locks, on PostgreSQL) an existing row; [`remove_unreferenced`] locks the
//!   row first, then asks whether anything references it in a statement of
//!   its own (a fresh snapshot on PostgreSQL). Whichever comes second waits
//!   for the first to commit: a removal after the upload sees its row and keeps
//!   the bytes; an upload after the removal inserts them again. On SQLite the
//!   single writer connection serialises both.
//! * **Storing the same bytes again repairs them**, as it does a blob file:
//!   the upsert rewrites a row whose bytes differ (and only then).

use sqlx::{AnyConnection, Row};

use super::*;
use crate::error::ServerResult;

/// Rows per insert statement (2 parameters each).
const PUT_ROWS: usize = 100;

/// Keeps the bytes of small blobs, `(sha256, bytes)`, inside the caller's
/// transaction; a digest given twice is written once.
pub(crate) async fn put(conn: &mut AnyConnection, blobs: &[(&str, &[u8])]) -> ServerResult<()> {
    let mut rows: Vec<(&str, &[u8])> = blobs.to_vec();
    // Digest order: concurrent writers (replicas) lock rows in one order, and
    // one statement never meets the same digest twice.
    rows.sort_unstable_by_key(|(sha, _)| *sha);
    rows.dedup_by_key(|(sha, _)| *sha);
    for chunk in rows.chunks(PUT_ROWS) {
        let sql = shaped(conn, "put_small_blobs", chunk.len(), |mut p, n| {
            format!(
                "INSERT INTO small_blobs (sha256, bytes) VALUES {} \
                 ON CONFLICT (sha256) DO UPDATE SET bytes = excluded.bytes \
                 WHERE small_blobs.bytes <> excluded.bytes",
                p.rows(n, 2)
            )
        });
        let mut q = sqlx::query(&sql);
        for (sha, bytes) in chunk {
            q = q.bind(*sha).bind(*bytes);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The bytes kept under a digest, as stored (the caller verifies them).
pub(crate) async fn get(db: &Db, sha: &str) -> ServerResult<Option<Vec<u8>>> {
    let row = sqlx::query("SELECT bytes FROM small_blobs WHERE sha256 = $1")
        .bind(sha)
        .fetch_optional(&db.read)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get::<Vec<u8>, _>("bytes")?),
        None => None,
    })
}

/// Every small blob: (sha256, bytes).
pub(crate) async fn sizes(db: &Db) -> ServerResult<Vec<(String, u64)>> {
    let rows = sqlx::query(
        "SELECT sha256, CAST(length(bytes) AS BIGINT) AS n FROM small_blobs ORDER BY sha256",
    )
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| Ok((get_str(r, "sha256")?, get_i64(r, "n")? as u64)))
        .collect()
}

/// Removes a small blob no row references; answers its bytes (`None`: not
/// kept here, or referenced). See the module documentation for the race with
/// an upload of the same bytes.
pub(crate) async fn remove_unreferenced(db: &Db, sha: &str) -> ServerResult<Option<u64>> {
    let mut tx = db.write.begin().await?;
    let lock = match db.backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT CAST(length(bytes) AS BIGINT) AS n FROM small_blobs WHERE sha256 = $1{lock}"
    );
    let Some(row) = sqlx::query(&sql).bind(sha).fetch_optional(&mut *tx).await? else {
        return Ok(None);
    };
    let len = get_i64(&row, "n")? as u64;
    if super::lifecycle::referenced_on(&mut tx, sha).await? {
        return Ok(None);
    }
    sqlx::query("DELETE FROM small_blobs WHERE sha256 = $1")
        .bind(sha)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(len))
}
