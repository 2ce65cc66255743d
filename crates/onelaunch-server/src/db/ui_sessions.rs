//! Web UI login sessions (`ui_sessions`): each row holds only the SHA-256 of
//! the session id kept in the browser's cookie, the API token it logged in
//! with, and its idle/absolute expiry.

use onelaunch_api::Id;

use super::*;
use crate::error::ServerResult;

/// A live session with what the UI needs to know about who it is.
#[derive(Debug, Clone)]
pub(crate) struct UiSessionRow {
    pub(crate) id: Id,
    /// The API token the browser logged in with.
    pub(crate) token_id: Id,
    /// That token's project; `None` for an admin token.
    pub(crate) project_id: Option<Id>,
    pub(crate) created_ms: i64,
    pub(crate) last_seen_ms: i64,
    /// When its API token was last used (see `tokens::note_use`).
    pub(crate) token_last_used_ms: Option<i64>,
}

/// The session with this id hash, if it has not expired at `now` and its API
/// token is live (not revoked, not expired).
pub(crate) async fn find_session(
    db: &Db,
    token_hash: &str,
    now: i64,
) -> ServerResult<Option<UiSessionRow>> {
    let row = sqlx::query(&format!(
        "SELECT s.id AS id, s.api_token_id AS token_id, t.project_id AS project_id, \
         s.created_ms AS created_ms, s.last_seen_ms AS last_seen_ms, \
         t.last_used_ms AS token_last_used_ms \
         FROM ui_sessions s JOIN api_tokens t ON t.id = s.api_token_id \
         WHERE s.token_hash = $1 AND s.expires_ms > $2 AND {}",
        super::tokens::live_condition(2)
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&db.read)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(UiSessionRow {
        id: r.try_get("id")?,
        token_id: r.try_get("token_id")?,
        project_id: r.try_get::<Option<i64>, _>("project_id")?,
        created_ms: r.try_get("created_ms")?,
        last_seen_ms: r.try_get("last_seen_ms")?,
        token_last_used_ms: opt_i64(&r, "token_last_used_ms"),
    }))
}

/// Records a request of a session and moves its expiry.
pub(crate) async fn touch_session(db: &Db, id: Id, now: i64, expires_ms: i64) -> ServerResult<()> {
    sqlx::query("UPDATE ui_sessions SET last_seen_ms = $1, expires_ms = $2 WHERE id = $3")
        .bind(now)
        .bind(expires_ms)
        .bind(id)
        .execute(&db.write)
        .await?;
    Ok(())
}

/// Removes every session that has expired at `now`.
pub(crate) async fn delete_expired(db: &Db, now: i64) -> ServerResult<()> {
    sqlx::query("DELETE FROM ui_sessions WHERE expires_ms <= $1")
        .bind(now)
        .execute(&db.write)
        .await?;
    Ok(())
}

/// Stores a new session, seen now, expiring at `expires_ms`.
pub(crate) async fn create_session(
    db: &Db,
    token_hash: &str,
    api_token_id: Id,
    now: i64,
    expires_ms: i64,
) -> ServerResult<()> {
    sqlx::query(
        "INSERT INTO ui_sessions (token_hash, api_token_id, created_ms, last_seen_ms, expires_ms) \
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(token_hash)
    .bind(api_token_id)
    .bind(now)
    .bind(expires_ms)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// Ends a session (logout).
pub(crate) async fn delete_session(db: &Db, token_hash: &str) -> ServerResult<()> {
    sqlx::query("DELETE FROM ui_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&db.write)
        .await?;
    Ok(())
}
