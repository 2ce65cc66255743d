//! Projects and tokens: bootstrap of project 1 and the admin token, API tokens
//! (stored as SHA-256 only; lookups go by hash) and OAuth access tokens.

use onelaunch_api::{self as api, Id};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::*;
use crate::error::{ServerError, ServerResult};

/// Creates project 1 ("Default") if no project exists and the first admin
/// token if no admin token exists (live, revoked or expired): the init token
/// when one is given, else a random one, returned to be shown once. Once an
/// admin token exists the init token is not used again, so a revoked init
/// token stays revoked whatever the server is started with.
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
    if super::tokens::admin_token_exists(db).await? {
        if let Some(t) = init_token {
            if super::tokens::find_api_token(db, t, now).await?.is_none() {
                tracing::warn!(
                    "--init-token is not used: admin tokens exist already (it only creates the \
                     first one); see README \"Tokens\" to recover access"
                );
            }
        }
        return Ok(None);
    }
    let (token, name, shown) = match init_token {
        Some(t) => (t.to_string(), "init", None),
        None => {
            let t = new_token("ol_");
            (t.clone(), "admin", Some(t))
        }
    };
    // Replicas starting at once: the unique hash keeps the init token single.
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, project_id, name, created_ms) VALUES ($1, NULL, $2, $3) \
         ON CONFLICT (token_hash) DO NOTHING",
    )
    .bind(hash_token(&token))
    .bind(name)
    .bind(now)
    .execute(&db.write)
    .await?;
    Ok(shown)
}

/// Shortest `--init-token` accepted.
pub(crate) const MIN_INIT_TOKEN_CHARS: usize = 20;

/// Checks an `--init-token` value (never shows it).
pub(crate) fn check_init_token(t: &str) -> ServerResult<()> {
    let n = t.chars().count();
    if n < MIN_INIT_TOKEN_CHARS {
        return Err(ServerError::Config(format!(
            "--init-token (ONELAUNCH_INIT_TOKEN) is {n} characters long; it must be at least \
             {MIN_INIT_TOKEN_CHARS} characters of random text, e.g. the output of `openssl rand -hex 24`"
        )));
    }
    if !t.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ServerError::Config(
            "--init-token (ONELAUNCH_INIT_TOKEN) must be printable ASCII without spaces \
             (it is sent in an HTTP header)"
                .into(),
        ));
    }
    Ok(())
}

/// Creates a new admin token directly in the database (`onelaunch server
/// admin-token`: recovery when no admin token works any more).
pub(crate) async fn recovery_admin_token(db: &Db, name: &str) -> ServerResult<String> {
    Ok(super::tokens::create_token(db, name, None, None)
        .await?
        .token)
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
