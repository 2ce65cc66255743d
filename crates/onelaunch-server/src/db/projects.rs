//! Projects and tokens: bootstrap of project 1 and the admin token, API tokens
//! (stored as SHA-256 only; lookups go by hash) and OAuth access tokens.

use onelaunch_api::{self as api, Id};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::*;
use crate::error::{ServerError, ServerResult};

/// Creates project 1 ("Default") if no project exists, ensures the init token
/// exists as an admin token, and, when no token exists at all, creates one and
/// returns it (to be shown once).
pub(crate) async fn bootstrap(db: &Db, init_token: Option<&str>) -> ServerResult<Option<String>> {
    let now = now_ms();
    let projects: i64 = sqlx::query("SELECT COUNT(*) AS n FROM projects")
        .fetch_one(&db.write)
        .await?
        .try_get("n")?;
    if projects == 0 {
        sqlx::query("INSERT INTO projects (name, created_ms) VALUES ($1, $2)")
            .bind("Default")
            .bind(now)
            .execute(&db.write)
            .await?;
    }
    if let Some(t) = init_token {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, project_id, name, created_ms) VALUES ($1, NULL, $2, $3) \
             ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(crate::db::projects::hash_token(t))
        .bind("init")
        .bind(now)
        .execute(&db.write)
        .await?;
        return Ok(None);
    }
    let tokens: i64 = sqlx::query("SELECT COUNT(*) AS n FROM api_tokens")
        .fetch_one(&db.write)
        .await?
        .try_get("n")?;
    if tokens > 0 {
        return Ok(None);
    }
    let token = crate::db::projects::new_token("ol_");
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, project_id, name, created_ms) VALUES ($1, NULL, $2, $3)",
    )
    .bind(crate::db::projects::hash_token(&token))
    .bind("admin")
    .bind(now)
    .execute(&db.write)
    .await?;
    Ok(Some(token))
}

pub(crate) async fn create_project(db: &Db, name: &str) -> ServerResult<api::ProjectDto> {
    let name = clip(name.trim(), MAX_NAME);
    if name.is_empty() {
        return Err(ServerError::bad("field `name` must not be empty"));
    }
    let row = sqlx::query("INSERT INTO projects (name, created_ms) VALUES ($1, $2) RETURNING id")
        .bind(&name)
        .bind(now_ms())
        .fetch_one(&db.write)
        .await?;
    Ok(api::ProjectDto {
        id: row.try_get("id")?,
        name,
    })
}

pub(crate) async fn project_exists(db: &Db, id: Id) -> ServerResult<bool> {
    Ok(sqlx::query("SELECT id FROM projects WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.read)
        .await?
        .is_some())
}

pub(crate) async fn list_projects(db: &Db, only: Option<Id>) -> ServerResult<Vec<api::ProjectDto>> {
    let rows = sqlx::query("SELECT id, name FROM projects ORDER BY id")
        .fetch_all(&db.read)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let id = get_i64(&r, "id")?;
        if only.is_none_or(|p| p == id) {
            out.push(api::ProjectDto {
                id,
                name: get_str(&r, "name")?,
            });
        }
    }
    Ok(out)
}

pub(crate) async fn create_project_token(db: &Db, project_id: Id) -> ServerResult<String> {
    let token = crate::db::projects::new_token("olp_");
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, project_id, name, created_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(crate::db::projects::hash_token(&token))
    .bind(project_id)
    .bind(format!("project {project_id}"))
    .bind(now_ms())
    .execute(&db.write)
    .await?;
    Ok(token)
}

pub(crate) async fn create_access_token(db: &Db, api_token_id: Id) -> ServerResult<String> {
    let token = crate::db::projects::new_token("ola_");
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, api_token_id, expires_ms) VALUES ($1, $2, $3)",
    )
    .bind(crate::db::projects::hash_token(&token))
    .bind(api_token_id)
    .bind(now_ms() + crate::db::projects::ACCESS_TOKEN_SECONDS * 1000)
    .execute(&db.write)
    .await?;
    Ok(token)
}

/// Lifetime of an access token from `POST /api/uaa/oauth/token`.
pub(crate) const ACCESS_TOKEN_SECONDS: i64 = 3600;

/// The stored form of a token: its SHA-256, hex.
///
/// Tokens are checked by looking this digest up in the database, never by
/// comparing a presented token with a stored one in memory. That lookup is
/// constant-time with respect to the secret: an attacker controls the token,
/// not its digest, and learning how many leading characters of a digest match
/// (through index or comparison timing) tells nothing about the token behind
/// it, because SHA-256 is preimage-resistant and tokens are 192 random bits.
/// No other comparison of secrets happens in the server, so no `subtle`-style
/// equality is needed; keep it that way (add one if a secret is ever compared
/// in memory).
pub(crate) fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: 32 bytes, hex.
pub(crate) fn new_token(prefix: &str) -> String {
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    format!("{prefix}{}", hex::encode(b))
}

/// The API token behind a presented secret: (token id, project; `None` for
/// admin tokens).
pub(crate) async fn find_api_token(db: &Db, token: &str) -> ServerResult<Option<(Id, Option<Id>)>> {
    let row = sqlx::query("SELECT id, project_id FROM api_tokens WHERE token_hash = $1")
        .bind(hash_token(token))
        .fetch_optional(&db.read)
        .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get::<Option<i64>, _>("project_id")?)))
        .transpose()
}

/// The API token behind an unexpired access token (OAuth exchange).
pub(crate) async fn find_access_token(
    db: &Db,
    token: &str,
) -> ServerResult<Option<(Id, Option<Id>)>> {
    let row = sqlx::query(
        "SELECT t.id AS id, t.project_id AS project_id FROM access_tokens a \
         JOIN api_tokens t ON t.id = a.api_token_id \
         WHERE a.token_hash = $1 AND a.expires_ms > $2",
    )
    .bind(hash_token(token))
    .bind(now_ms())
    .fetch_optional(&db.read)
    .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get::<Option<i64>, _>("project_id")?)))
        .transpose()
}
