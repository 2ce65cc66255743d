//! Request plumbing shared by the API handlers: the `ApiJson` body extractor,
//! paging, lenient query parsing, multipart errors.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use onelaunch_api::{self as api, Id};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{ServerError, ServerResult};

/// JSON body extractor that ignores the content type and answers malformed
/// bodies with a 400 naming the field (or 413 when too large).
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ServerError> {
        let RawJson(bytes) = RawJson::from_request(req, state).await?;
        crate::ingest::decode::json_body(&bytes).map(ApiJson)
    }
}

/// A JSON body read but not yet decoded ([`RawJson::decode`]), for a handler
/// that takes a share of memory before decoding it; too large a body is a 413
/// as with [`ApiJson`].
pub(crate) struct RawJson(pub Bytes);

impl RawJson {
    /// The body decoded, as [`ApiJson`] decodes it.
    pub(crate) fn decode<T: DeserializeOwned>(self) -> ServerResult<T> {
        crate::ingest::decode::json_body(&self.0)
    }
}

impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ServerError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ServerError::PayloadTooLarge(format!(
                    "request body is larger than the {} bytes a JSON request may have",
                    crate::ingest::limits::MAX_JSON_BODY
                ))
            } else {
                ServerError::bad(e.body_text())
            }
        })?;
        Ok(RawJson(bytes))
    }
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
