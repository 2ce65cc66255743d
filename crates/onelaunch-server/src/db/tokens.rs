//! API tokens: lookup (only live ones: not revoked, not expired), their last
//! use, listing, creation and revocation. The secret is never stored; a row
//! holds its SHA-256 (`projects::hash_token`). Every check reads the database
//! (no cache), so a revocation holds at once on every replica.

use onelaunch_api::{self as api, Id};
use sqlx::Row;

use super::projects::{hash_token, new_token};
use super::*;
use crate::error::{ServerError, ServerResult};

/// `last_used_ms` is written at most this often per token.
pub(crate) const LAST_USED_EVERY_MS: i64 = 60 * 1000;

/// The condition a token row `t` must meet to be accepted at `$2` (now).
const LIVE: &str = "t.revoked_ms IS NULL AND (t.expires_ms IS NULL OR t.expires_ms > $2)";

/// A live API token behind a presented secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenAuth {
    pub(crate) id: Id,
    /// `None` for admin tokens.
    pub(crate) project_id: Option<Id>,
    pub(crate) last_used_ms: Option<i64>,
}

fn auth_of(r: &sqlx::any::AnyRow) -> ServerResult<TokenAuth> {
    Ok(TokenAuth {
        id: r.try_get("id")?,
        project_id: r.try_get::<Option<i64>, _>("project_id")?,
        last_used_ms: opt_i64(r, "last_used_ms"),
    })
}

/// The live API token behind a presented secret (`api-token …`, UI login,
/// OAuth exchange).
pub(crate) async fn find_api_token(
    db: &Db,
    token: &str,
    now: i64,
) -> ServerResult<Option<TokenAuth>> {
    let row = sqlx::query(&format!(
        "SELECT t.id AS id, t.project_id AS project_id, t.last_used_ms AS last_used_ms \
         FROM api_tokens t WHERE t.token_hash = $1 AND {LIVE}"
    ))
    .bind(hash_token(token))
    .bind(now)
    .fetch_optional(&db.read)
    .await?;
    row.as_ref().map(auth_of).transpose()
}

/// The live API token behind an unexpired access token (`Bearer …`): a
/// revoked or expired API token takes its access tokens with it.
pub(crate) async fn find_access_token(
    db: &Db,
    token: &str,
    now: i64,
) -> ServerResult<Option<TokenAuth>> {
    let row = sqlx::query(&format!(
        "SELECT t.id AS id, t.project_id AS project_id, t.last_used_ms AS last_used_ms \
         FROM access_tokens a JOIN api_tokens t ON t.id = a.api_token_id \
         WHERE a.token_hash = $1 AND a.expires_ms > $2 AND {LIVE}"
    ))
    .bind(hash_token(token))
    .bind(now)
    .fetch_optional(&db.read)
    .await?;
    row.as_ref().map(auth_of).transpose()
}

/// The condition on `api_tokens t` (with now as `$N`) a UI session's token
/// must meet.
pub(crate) fn live_condition(now_param: usize) -> String {
    LIVE.replace("$2", &format!("${now_param}"))
}

/// Records a use of a token: one conditional UPDATE, issued only when the
/// stored time is older than [`LAST_USED_EVERY_MS`] (so most requests write
/// nothing), and conditional so replicas racing for it write once. A failure
/// to write it is logged and does not fail the request.
pub(crate) async fn note_use(db: &Db, t: &TokenAuth, now: i64) {
    if t.last_used_ms.is_some_and(|u| now - u < LAST_USED_EVERY_MS) {
        return;
    }
    let written = sqlx::query(
        "UPDATE api_tokens SET last_used_ms = $1 WHERE id = $2 \
         AND (last_used_ms IS NULL OR last_used_ms <= $3)",
    )
    .bind(now)
    .bind(t.id)
    .bind(now - LAST_USED_EVERY_MS)
    .execute(&db.write)
    .await;
    if let Err(e) = written {
        tracing::warn!(api_token = t.id, error = %e, "cannot record the token's last use");
    }
}

const COLUMNS: &str = "id, name, project_id, created_ms, expires_ms, last_used_ms, revoked_ms";

fn dto(r: &sqlx::any::AnyRow, now: i64) -> ServerResult<api::TokenDto> {
    let expires = opt_i64(r, "expires_ms");
    let revoked = opt_i64(r, "revoked_ms");
    let status = if revoked.is_some() {
        "revoked"
    } else if expires.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    Ok(api::TokenDto {
        id: get_i64(r, "id")?,
        name: get_str(r, "name")?,
        project_id: r.try_get::<Option<i64>, _>("project_id")?,
        created_date: get_i64(r, "created_ms")?,
        expires_date: expires,
        last_used_date: opt_i64(r, "last_used_ms"),
        revoked_date: revoked,
        status: status.into(),
    })
}

/// Every token, oldest first.
pub(crate) async fn list_tokens(db: &Db) -> ServerResult<Vec<api::TokenDto>> {
    let now = now_ms();
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY id"))
        .fetch_all(&db.read)
        .await?;
    rows.iter().map(|r| dto(r, now)).collect()
}

pub(crate) async fn get_token(db: &Db, id: Id) -> ServerResult<Option<api::TokenDto>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.write)
        .await?;
    row.map(|r| dto(&r, now_ms())).transpose()
}

/// Stores a new token (admin when `project_id` is `None`) and returns its
/// secret, to be shown once. The caller checked the project and the expiry.
pub(crate) async fn create_token(
    db: &Db,
    name: &str,
    project_id: Option<Id>,
    expires_ms: Option<i64>,
) -> ServerResult<api::TokenIssued> {
    let name = clip(name.trim(), MAX_NAME);
    if name.is_empty() {
        return Err(ServerError::bad("field `name` must not be empty"));
    }
    let token = new_token(if project_id.is_some() { "olp_" } else { "ol_" });
    let row = sqlx::query(&format!(
        "INSERT INTO api_tokens (token_hash, project_id, name, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    ))
    .bind(hash_token(&token))
    .bind(project_id)
    .bind(&name)
    .bind(now_ms())
    .bind(expires_ms)
    .fetch_one(&db.write)
    .await?;
    Ok(api::TokenIssued {
        token,
        info: dto(&row, now_ms())?,
    })
}

/// Revokes a token (idempotent: a revoked one keeps its first revocation
/// time) and ends its access tokens and UI sessions. The last live admin
/// token cannot be revoked (409): nobody could manage the server afterwards.
pub(crate) async fn revoke_token(db: &Db, id: Id, now: i64) -> ServerResult<api::TokenDto> {
    let mut tx = db.write.begin().await?;
    let row = sqlx::query("SELECT project_id, revoked_ms FROM api_tokens WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ServerError::not_found("token", id))?;
    let admin = row.try_get::<Option<i64>, _>("project_id")?.is_none();
    if opt_i64(&row, "revoked_ms").is_none() {
        if admin {
            let others: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM api_tokens t \
                 WHERE t.project_id IS NULL AND t.id <> $1 AND {LIVE}"
            ))
            .bind(id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if others == 0 {
                return Err(ServerError::Conflict(format!(
                    "token {id} is the last live admin token; create another admin token before \
                     revoking it"
                )));
            }
        }
        sqlx::query("UPDATE api_tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM access_tokens WHERE api_token_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM ui_sessions WHERE api_token_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    get_token(db, id)
        .await?
        .ok_or_else(|| ServerError::not_found("token", id))
}

/// True when any admin token row exists, live or not (the init token is
/// created only when none does).
pub(crate) async fn admin_token_exists(db: &Db) -> ServerResult<bool> {
    Ok(
        sqlx::query("SELECT id FROM api_tokens WHERE project_id IS NULL LIMIT 1")
            .fetch_optional(&db.write)
            .await?
            .is_some(),
    )
}
