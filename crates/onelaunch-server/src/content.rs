//! Attachment bytes wherever they are kept, found by their SHA-256: a small
//! body (at most `blobs::INLINE_MAX`) in the database (`db::small_blobs`),
//! any other in the blob store's files (`blobs`). Rows that point at bytes
//! (attachments, session files, launch globals) name only the digest and do
//! not care where the bytes are.
//!
//! * **Writers** keep a received body's inline bytes with the rows that
//!   reference it, in their transaction ([`keep`]); a body that went to a
//!   file is already on disk.
//! * **Readers** ask the database first, then the files ([`open`], [`get`]);
//!   both verify the bytes against their digest (`content_damaged` otherwise).
//! * **Removal** ([`remove_unreferenced`]) takes the digest out of both
//!   places once no row references it, each safe against an upload of the
//!   same bytes racing with it.

use crate::blobs::{self, BlobStore, Stored, Verified};
use crate::db::{self, Db};
use crate::error::ServerResult;

/// Keeps the bytes of the small bodies among `stored` in the database,
/// inside the caller's transaction (before the rows that reference them).
pub(crate) async fn keep<'a>(
    conn: &mut sqlx::AnyConnection,
    stored: impl IntoIterator<Item = &'a Stored>,
) -> ServerResult<()> {
    let small: Vec<(&str, &[u8])> = stored
        .into_iter()
        .filter_map(|s| s.inline().map(|b| (s.sha256.as_str(), b)))
        .collect();
    if small.is_empty() {
        return Ok(());
    }
    db::small_blobs::put(conn, &small).await
}

/// Opens the bytes under a digest for sending (`None`: not stored).
pub(crate) async fn open(db: &Db, blobs: &BlobStore, sha: &str) -> ServerResult<Option<Verified>> {
    if let Some(bytes) = db::small_blobs::get(db, sha).await? {
        return Verified::from_bytes(sha, bytes).map(Some);
    }
    blobs.open_file(sha).await
}

/// The bytes under a digest in memory (`None`: not stored). For small
/// contents: containers, text shown inline.
pub(crate) async fn get(db: &Db, blobs: &BlobStore, sha: &str) -> ServerResult<Option<Vec<u8>>> {
    if let Some(bytes) = db::small_blobs::get(db, sha).await? {
        return blobs::verify(sha, bytes).map(Some);
    }
    blobs.get_file(sha).await
}

/// Removes the bytes under a digest that no row references, from the
/// database and from the files; answers the bytes freed (`None`: absent, or
/// referenced again).
pub(crate) async fn remove_unreferenced(
    db: &Db,
    blobs: &BlobStore,
    sha: &str,
) -> ServerResult<Option<u64>> {
    let small = db::small_blobs::remove_unreferenced(db, sha).await?;
    let file = blobs
        .remove_unreferenced(sha, || db::lifecycle::blob_referenced(db, sha))
        .await?;
    Ok(match (small, file) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    })
}
