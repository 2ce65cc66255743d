//! The API caller (`Scope`: admin or project token, from `Authorization:
//! api-token …` or `Bearer …`) and `POST /uaa/oauth/token`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use onelaunch_api::{self as api};

use crate::access::Scope;
use crate::error::{ServerError, ServerResult};
use crate::{db, AppState};

pub(crate) fn header_token(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    Some((scheme.to_ascii_lowercase(), rest.trim().to_string()))
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ServerResult<Scope> {
        // A client over its budget of failed attempts is not even looked at.
        let client = state.throttle.client(&parts.headers, &parts.extensions);
        state.throttle.check(client)?;
        let (scheme, token) = header_token(parts).ok_or(ServerError::Unauthorized)?;
        let now = db::now_ms();
        // Looked up in the database on every request (no cache): a revoked
        // or expired token answers 401 at once, on every replica.
        let found = match scheme.as_str() {
            "api-token" => db::tokens::find_api_token(&state.db, &token, now).await?,
            "bearer" => db::tokens::find_access_token(&state.db, &token, now).await?,
            _ => None,
        };
        let Some(t) = found else {
            state.throttle.failed(client);
            return Err(ServerError::Unauthorized);
        };
        db::tokens::note_use(&state.db, &t, now).await;
        // Whose share of the server's memory the request's body takes
        // (`extract::RawJson`), and of its requests in flight: a place taken
        // once per request, held until its answer is sent.
        let sender = crate::ingest::Sender::of(t.project_id);
        crate::ingest::held::take_place(parts, &state.requests, sender)?;
        Ok(Scope {
            token_id: t.id,
            project_id: t.project_id,
        })
    }
}

#[utoipa::path(
    post,
    path = "/uaa/oauth/token",
    tag = "auth",
    summary = "Exchange an API token for a short-lived bearer token",
    request_body(content = super::openapi::OAuthTokenForm, content_type = "application/x-www-form-urlencoded", description = "also accepted as multipart/form-data"),
    responses((status = 200, description = "OK", body = api::OAuthToken)),
    security(()),
)]
pub(crate) async fn oauth_token(
    State(state): State<AppState>,
    req: Request,
) -> ServerResult<Json<api::OAuthToken>> {
    let client = state.throttle.client(req.headers(), req.extensions());
    state.throttle.check(client)?;
    // Anyone may send a login: logins in flight hold at most the strangers'
    // quarter of the requests in flight.
    let _place = state.requests.enter(crate::ingest::Sender::Stranger)?;
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    let mut fields: HashMap<String, String> = HashMap::new();
    if is_multipart {
        let mut mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| ServerError::bad(e.body_text()))?;
        let refused =
            |e: axum::extract::multipart::MultipartError| login_refused(e.status(), e.body_text());
        while let Some(field) = mp.next_field().await.map_err(refused)? {
            let name = field.name().unwrap_or_default().to_string();
            let text = field.text().await.map_err(refused)?;
            fields.insert(name, text);
        }
    } else {
        let bytes = Bytes::from_request(req, &state)
            .await
            .map_err(|e| login_refused(e.status(), e.body_text()))?;
        for (k, v) in url::form_urlencoded::parse(&bytes) {
            fields.insert(k.into_owned(), v.into_owned());
        }
    }
    if fields.get("grant_type").map(String::as_str) != Some("apitoken") {
        return Err(ServerError::bad("field `grant_type`: expected `apitoken`"));
    }
    let token = fields
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ServerError::bad("field `token` is required"))?;
    let now = db::now_ms();
    let Some(found) = db::tokens::find_api_token(&state.db, token, now).await? else {
        state.throttle.failed(client);
        return Err(ServerError::Unauthorized);
    };
    db::tokens::note_use(&state.db, &found, now).await;
    let id = found.id;
    let access = crate::db::projects::create_access_token(&state.db, id).await?;
    Ok(Json(api::OAuthToken {
        access_token: access,
        token_type: "bearer".into(),
        expires_in: crate::db::projects::ACCESS_TOKEN_SECONDS,
        scope: fields
            .get("scope")
            .cloned()
            .unwrap_or_else(|| "openid".into()),
        jti: String::new(),
    }))
}

/// A login body the framework refused (`status`, `text`): 413 naming the
/// login's bound when it is too large, else 400.
fn login_refused(status: StatusCode, text: String) -> ServerError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ServerError::PayloadTooLarge(format!(
            "a login is at most {} bytes",
            crate::ingest::limits::MAX_LOGIN_BODY
        ))
    } else {
        ServerError::bad(text)
    }
}
