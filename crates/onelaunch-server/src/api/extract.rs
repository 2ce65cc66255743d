//! Request plumbing shared by the API handlers: the `ApiJson` body extractor,
//! paging, lenient query parsing, multipart errors.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use http_body_util::BodyExt;
use onelaunch_api::{self as api, Id};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{ServerError, ServerResult};
use crate::ingest::held::BodyShares;
use crate::ingest::limits::MAX_JSON_BODY;
use crate::ingest::{Sender, Share};
use crate::AppState;

/// JSON body extractor that ignores the content type and answers malformed
/// bodies with a 400 naming the field (or 413 when too large).
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ServerError> {
        let RawJson(bytes) = RawJson::from_request(req, state).await?;
        crate::ingest::decode::json_body(&bytes).map(ApiJson)
    }
}

/// A JSON body read but not yet decoded ([`RawJson::decode`]), for a handler
/// that takes a share of memory before decoding it; too large a body is a 413
/// as with [`ApiJson`].
///
/// Its bytes take their share of the server's room for JSON bodies
/// (`ingest::limits::Room::json_bodies`, in the sender's name that `Scope` left in
/// the request): the whole of it before they are read when the body's length
/// is announced, else as they arrive (`Room::grow`); the request keeps it until it is
/// answered (`ingest::held::hold_body_shares`).
pub(crate) struct RawJson(pub Bytes);

impl RawJson {
    /// The length `req`'s body announces (`Content-Length`), when it is one a
    /// JSON body may have.
    pub(crate) fn announced(req: &Request) -> Option<usize> {
        content_length(req)
            .filter(|n| *n <= MAX_JSON_BODY as u64)
            .map(|n| n as usize)
    }

    /// The body decoded, as [`ApiJson`] decodes it.
    pub(crate) fn decode<T: DeserializeOwned>(self) -> ServerResult<T> {
        crate::ingest::decode::json_body(&self.0)
    }
}

impl FromRequest<AppState> for RawJson {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ServerError> {
        let sender = req
            .extensions()
            .get::<Sender>()
            .copied()
            .unwrap_or(Sender::Stranger);
        let held = req.extensions().get::<BodyShares>().cloned();
        let announced = content_length(&req);
        if announced.is_some_and(|n| n > MAX_JSON_BODY as u64) {
            return Err(too_large());
        }
        let mut body = req.into_body();
        // The frames as they came, joined once at the end (into exactly
        // their size, as axum's own `Bytes` extractor does).
        let mut frames: Vec<Bytes> = Vec::new();
        let mut len = 0usize;
        // A body of known length takes its whole share before it is read: a
        // request holding part of its share while it waits for the rest
        // could, with enough others doing the same, wait for them while they
        // wait for it. One of unknown length (chunked) takes its share as its
        // bytes arrive: its first bytes' as any, the rest through
        // `Room::grow`, which lets one such request wait while holding.
        let mut share: Option<Share> = None;
        let mut held_kib = 0usize;
        if let Some(n) = announced.filter(|n| *n > 0) {
            // Not over `MAX_JSON_BODY`: checked above.
            let n = n as usize;
            held_kib = n.div_ceil(1024);
            share = Some(state.json_bodies.share(sender, n).await?);
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ServerError::bad(format!("request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            len += data.len();
            if len > MAX_JSON_BODY {
                return Err(too_large());
            }
            let need = len.div_ceil(1024);
            if need > held_kib {
                let bytes = (need - held_kib) * 1024;
                match &mut share {
                    Some(s) => s.merge(state.json_bodies.grow(sender, bytes).await?),
                    None => share = Some(state.json_bodies.share(sender, bytes).await?),
                }
                held_kib = need;
            }
            frames.push(data);
        }
        if let (Some(held), Some(share)) = (held, share) {
            held.hold(share);
        }
        let bytes = match frames.len() {
            0 => Bytes::new(),
            1 => frames.pop().unwrap_or_default(),
            _ => {
                let mut joined = Vec::with_capacity(len);
                for f in &frames {
                    joined.extend_from_slice(f);
                }
                Bytes::from(joined)
            }
        };
        Ok(RawJson(bytes))
    }
}

/// The body's length as its `Content-Length` announces it.
fn content_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

fn too_large() -> ServerError {
    ServerError::PayloadTooLarge(format!(
        "request body is larger than the {MAX_JSON_BODY} bytes a JSON request may have"
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageQuery {
    #[serde(default, deserialize_with = "api::flex::opt_id")]
    pub(crate) project_id: Option<Id>,
    #[serde(default)]
    pub(crate) page: Option<i64>,
    #[serde(default)]
    pub(crate) size: Option<i64>,
    #[serde(default)]
    pub(crate) search: Option<String>,
}

pub(crate) fn page_size(page: Option<i64>, size: Option<i64>) -> (i64, i64) {
    (page.unwrap_or(0).max(0), size.unwrap_or(20).clamp(1, 1000))
}

pub(crate) fn multipart_err(e: axum::extract::multipart::MultipartError) -> ServerError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ServerError::PayloadTooLarge("multipart body is larger than the server accepts".into())
    } else {
        ServerError::bad(format!("multipart body: {}", e.body_text()))
    }
}

pub(crate) fn parse_int(key: &str, value: &str) -> ServerResult<i64> {
    value
        .trim()
        .parse()
        .map_err(|_| ServerError::bad(format!("query `{key}`: expected an integer, got {value:?}")))
}
