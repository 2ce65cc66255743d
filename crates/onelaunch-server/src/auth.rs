//! API tokens and access tokens. Tokens are stored as SHA-256 hashes only;
//! lookups go by hash, so the comparison happens inside the database on a
//! fixed-length digest and the plain token is never stored or logged.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::now_ms;
use crate::error::{ServerError, ServerResult};
use crate::AppState;

/// Lifetime of an access token from `POST /api/uaa/oauth/token`.
pub const ACCESS_TOKEN_SECONDS: i64 = 3600;

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
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: 32 bytes, hex.
pub fn new_token(prefix: &str) -> String {
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    format!("{prefix}{}", hex::encode(b))
}

/// The caller: an admin token (any project) or a project token.
#[derive(Debug, Clone, Copy)]
pub struct Auth {
    pub token_id: i64,
    /// `None` for admin tokens.
    pub project_id: Option<i64>,
}

impl Auth {
    pub fn is_admin(&self) -> bool {
        self.project_id.is_none()
    }

    /// Anything in another project is answered as not found, so a project
    /// token cannot even learn that it exists.
    pub fn check_project(&self, project_id: i64, what: &str, id: i64) -> ServerResult<()> {
        match self.project_id {
            Some(p) if p != project_id => Err(ServerError::not_found(what, id)),
            _ => Ok(()),
        }
    }

    pub fn require_admin(&self) -> ServerResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ServerError::Forbidden(
                "this needs an admin token; project tokens cannot manage projects".into(),
            ))
        }
    }
}

fn header_token(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    Some((scheme.to_ascii_lowercase(), rest.trim().to_string()))
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ServerResult<Auth> {
        let (scheme, token) = header_token(parts).ok_or(ServerError::Unauthorized)?;
        let hash = hash_token(&token);
        let row = match scheme.as_str() {
            "api-token" => {
                sqlx::query("SELECT id, project_id FROM api_tokens WHERE token_hash = $1")
                    .bind(hash)
                    .fetch_optional(&state.db.read)
                    .await?
            }
            "bearer" => {
                sqlx::query(
                    "SELECT t.id AS id, t.project_id AS project_id FROM access_tokens a \
                     JOIN api_tokens t ON t.id = a.api_token_id \
                     WHERE a.token_hash = $1 AND a.expires_ms > $2",
                )
                .bind(hash)
                .bind(now_ms())
                .fetch_optional(&state.db.read)
                .await?
            }
            _ => None,
        };
        let row = row.ok_or(ServerError::Unauthorized)?;
        Ok(Auth {
            token_id: row.try_get("id")?,
            project_id: row.try_get::<Option<i64>, _>("project_id")?,
        })
    }
}

/// Looks up an API token given in plain text (for the OAuth exchange).
pub async fn api_token_id(state: &AppState, token: &str) -> ServerResult<Option<i64>> {
    let row = sqlx::query("SELECT id FROM api_tokens WHERE token_hash = $1")
        .bind(hash_token(token))
        .fetch_optional(&state.db.read)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("id")?),
        None => None,
    })
}
