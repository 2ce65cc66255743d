//! Server errors and their HTTP mapping. Client mistakes are 4xx with a JSON
//! body `{message, status, timestamp, code}` whose message names what was wrong
//! and whose `code` ([`ErrorCode`]) tells programs what happened; only storage
//! failures are 5xx, and their details go to the log, not to the client.
//!
//! Layers: `db/` returns [`ServerResult`] with `Db`/`Io` errors and the
//! conflicts its constraints detect; `access`, `ingest` and `server_led` add the
//! domain errors (`NotFound`, `LaunchClosed`, `PrerequisiteMissing`, …); the API
//! and the UI only map them (`IntoResponse` here, `UiError` in `ui/`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use onelaunch_api::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required: send `Authorization: api-token <token>`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The launch is closed; nothing may be added until it is reopened.
    ///
    /// The message says "launch is closed": the Allure 3 TestOps plugin reads
    /// that phrase (it knows no codes) to reopen the launch and retry when
    /// `reopenClosedLaunch` is on.
    #[error("the launch is closed (launch {0}): reopen it (POST /api/launch/{0}/reopen, or upload with --reopen-closed-launch) to add results")]
    LaunchClosed(i64),
    /// Jobs cannot run tests yet; one message per missing prerequisite.
    #[error("cannot run: {}", .0.join("; "))]
    PrerequisiteMissing(Vec<String>),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many failed authentication attempts from this client address;
    /// answered with `Retry-After` (seconds).
    #[error("too many failed authentication attempts from this address: retry in {0} s")]
    TooManyRequests(u64),
    /// Stored bytes no longer match their digest (409, never served).
    #[error("{0}")]
    ContentDamaged(String),
    /// The request's body arrived too slowly (`listen::pace`): 408, and the
    /// connection is closed.
    #[error("the request body arrived too slowly (a pause over {0:?}, or under {1} bytes a second): send it again")]
    RequestTimeout(std::time::Duration, u64),
    /// Too many uploads in flight (503 with `Retry-After`).
    #[error("{0}")]
    Busy(String),
    /// A write failed for lack of space (the attachment store's file system
    /// or the database): 503 `storage_full` with `Retry-After`; nothing of
    /// the request was kept. The detail (which store, the OS or database
    /// error) goes to the log.
    #[error("the server's storage is full: nothing of this request was kept; retry later")]
    StorageFull(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Db(sqlx::Error),
    #[error("storage: {0}")]
    Io(std::io::Error),
}

/// True when an I/O error says the file system is full (`ENOSPC`) or the
/// user's quota is spent (`EDQUOT`).
pub(crate) fn io_is_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::StorageFull | K::QuotaExceeded)
}

/// True when a database error says there is no space: SQLite `SQLITE_FULL`
/// (13) and `SQLITE_IOERR_SHMSIZE` (4874, the WAL index cannot grow), the
/// driver's own I/O failing with `ENOSPC`/`EDQUOT`, PostgreSQL `53100`
/// (`disk_full`).
pub(crate) fn db_is_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(io) => io_is_full(io),
        sqlx::Error::Database(d) => {
            let code = d.code();
            let code = code.as_deref().unwrap_or_default();
            match code.parse::<i32>() {
                // SQLite: the primary code is the low byte of the extended one.
                Ok(n) if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
                    n & 0xff == 13 || n == 4874
                }
                _ => code == "53100",
            }
        }
        _ => false,
    }
}

impl From<std::io::Error> for ServerError {
    fn from(e: std::io::Error) -> Self {
        if io_is_full(&e) {
            ServerError::StorageFull(format!("attachment store: {e}"))
        } else {
            ServerError::Io(e)
        }
    }
}

/// Set when a database write failed for lack of space; the SQLite writer
/// pool closes its connection when it comes back ([`take_db_full`]).
static DB_FULL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True (once) when a database write failed for lack of space since the last call.
pub(crate) fn take_db_full() -> bool {
    DB_FULL.swap(false, std::sync::atomic::Ordering::AcqRel)
}

impl From<sqlx::Error> for ServerError {
    fn from(e: sqlx::Error) -> Self {
        if db_is_full(&e) {
            DB_FULL.store(true, std::sync::atomic::Ordering::Release);
            ServerError::StorageFull(format!("database: {e}"))
        } else {
            ServerError::Db(e)
        }
    }
}

pub type ServerResult<T> = Result<T, ServerError>;

/// `Retry-After` of a 503 `busy` answer, in seconds.
pub(crate) const BUSY_RETRY_AFTER: u64 = 5;

/// `Retry-After` of a 503 `storage_full` answer, in seconds (default
/// [`DEFAULT_STORAGE_RETRY_AFTER`]; `--storage-full-retry-after`).
static STORAGE_RETRY_AFTER: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(DEFAULT_STORAGE_RETRY_AFTER);
/// Seconds a client is asked to wait when the storage is full.
pub const DEFAULT_STORAGE_RETRY_AFTER: u64 = 30;

/// The `Retry-After` of `storage_full` answers, in seconds.
pub(crate) fn storage_retry_after() -> u64 {
    STORAGE_RETRY_AFTER.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets the `Retry-After` of `storage_full` answers (at least one second).
pub(crate) fn set_storage_retry_after(d: std::time::Duration) {
    STORAGE_RETRY_AFTER.store(d.as_secs().max(1), std::sync::atomic::Ordering::Relaxed);
}

impl ServerError {
    pub fn bad(msg: impl Into<String>) -> Self {
        ServerError::BadRequest(msg.into())
    }
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        ServerError::NotFound(format!("{what} {id} not found"))
    }
    pub fn launch_closed(id: i64) -> Self {
        ServerError::LaunchClosed(id)
    }

    /// The machine-readable code sent next to the message.
    pub fn code(&self) -> ErrorCode {
        match self {
            ServerError::BadRequest(_) => ErrorCode::BadRequest,
            ServerError::Unauthorized => ErrorCode::Unauthorized,
            ServerError::Forbidden(_) => ErrorCode::Forbidden,
            ServerError::NotFound(_) => ErrorCode::NotFound,
            ServerError::Conflict(_) => ErrorCode::Conflict,
            ServerError::LaunchClosed(_) => ErrorCode::LaunchClosed,
            ServerError::PrerequisiteMissing(_) => ErrorCode::PrerequisiteMissing,
            ServerError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ServerError::TooManyRequests(_) => ErrorCode::TooManyRequests,
            ServerError::RequestTimeout(..) => ErrorCode::RequestTimeout,
            ServerError::ContentDamaged(_) => ErrorCode::ContentDamaged,
            ServerError::Busy(_) => ErrorCode::Busy,
            ServerError::StorageFull(_) => ErrorCode::StorageFull,
            ServerError::Config(_) | ServerError::Db(_) | ServerError::Io(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServerError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Conflict(_)
            | ServerError::LaunchClosed(_)
            | ServerError::PrerequisiteMissing(_)
            | ServerError::ContentDamaged(_) => StatusCode::CONFLICT,
            ServerError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ServerError::RequestTimeout(..) => StatusCode::REQUEST_TIMEOUT,
            ServerError::Busy(_) | ServerError::StorageFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServerError::Config(_) | ServerError::Db(_) | ServerError::Io(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let busy = matches!(self, ServerError::Busy(_) | ServerError::StorageFull(_));
        let retry_after: Option<u64> = match &self {
            ServerError::TooManyRequests(secs) => Some(*secs),
            ServerError::Busy(_) => Some(BUSY_RETRY_AFTER),
            ServerError::StorageFull(detail) => {
                tracing::warn!(
                    error = %detail,
                    "storage full: request refused with 503 storage_full; free space in the data directory"
                );
                Some(storage_retry_after())
            }
            _ => None,
        };
        let message = if status.is_server_error() && !busy {
            tracing::error!(error = %self, "request failed");
            "internal error; see the server log".to_string()
        } else {
            self.to_string()
        };
        let mut res = (status, Json(error_body(status, code, message))).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

/// The JSON body of every error answer.
fn error_body(status: StatusCode, code: ErrorCode, message: String) -> ErrorBody {
    ErrorBody {
        message,
        status: status.as_u16(),
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        code: Some(code),
    }
}

/// Gives the framework's own rejections (a path or query value that does not
/// parse, a wrong method, a missing content type, a body above a limit) the
/// API's JSON error body with its machine-readable code, keeping their status
/// and headers (`Allow`, …): every answer of the API is `ErrorBody` when it
/// is not a success. Answers that are JSON already pass unchanged.
pub(crate) async fn json_rejections(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return res;
    }
    let code = match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::TooManyRequests,
        StatusCode::CONFLICT => ErrorCode::Conflict,
        _ => ErrorCode::BadRequest,
    };
    let (mut parts, body) = res.into_parts();
    // The framework's rejection texts are short; a longer body is cut.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request rejected")
            .to_string()
    } else {
        text
    };
    let body = error_body(status, code, message);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    let json = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_code_and_status() {
        let cases = [
            (ServerError::bad("x"), ErrorCode::BadRequest, 400),
            (ServerError::Unauthorized, ErrorCode::Unauthorized, 401),
            (
                ServerError::Forbidden("x".into()),
                ErrorCode::Forbidden,
                403,
            ),
            (
                ServerError::not_found("launch", 1),
                ErrorCode::NotFound,
                404,
            ),
            (ServerError::launch_closed(7), ErrorCode::LaunchClosed, 409),
            (
                ServerError::PrerequisiteMissing(vec!["a".into(), "b".into()]),
                ErrorCode::PrerequisiteMissing,
                409,
            ),
            (ServerError::Conflict("x".into()), ErrorCode::Conflict, 409),
            (
                ServerError::PayloadTooLarge("x".into()),
                ErrorCode::PayloadTooLarge,
                413,
            ),
            (
                ServerError::TooManyRequests(3),
                ErrorCode::TooManyRequests,
                429,
            ),
            (
                ServerError::ContentDamaged("x".into()),
                ErrorCode::ContentDamaged,
                409,
            ),
            (
                ServerError::RequestTimeout(std::time::Duration::from_secs(20), 240),
                ErrorCode::RequestTimeout,
                408,
            ),
            (ServerError::Busy("x".into()), ErrorCode::Busy, 503),
            (
                ServerError::StorageFull("x".into()),
                ErrorCode::StorageFull,
                503,
            ),
            (ServerError::Config("x".into()), ErrorCode::Internal, 500),
        ];
        for (e, code, status) in cases {
            assert_eq!(e.code(), code, "{e}");
            assert_eq!(e.status().as_u16(), status, "{e}");
        }
    }

    #[test]
    fn busy_answers_say_when_to_retry() {
        let res = ServerError::Busy("full".into()).into_response();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], &BUSY_RETRY_AFTER.to_string());
        let res = ServerError::Config("x".into()).into_response();
        assert!(!res.headers().contains_key("retry-after"));
    }

    #[test]
    fn a_full_disk_is_storage_full_not_an_internal_error() {
        for errno in [28, 122] {
            // ENOSPC, EDQUOT
            let e = ServerError::from(std::io::Error::from_raw_os_error(errno));
            assert!(matches!(e, ServerError::StorageFull(_)), "{errno}: {e:?}");
        }
        let e = ServerError::from(std::io::Error::from_raw_os_error(5)); // EIO
        assert!(matches!(e, ServerError::Io(_)), "{e:?}");
        let e = ServerError::from(sqlx::Error::Io(std::io::Error::from_raw_os_error(28)));
        assert!(matches!(e, ServerError::StorageFull(_)), "{e:?}");
        let res = ServerError::StorageFull("database: x".into()).into_response();
        assert_eq!(res.status(), 503);
        assert_eq!(
            res.headers()["retry-after"],
            DEFAULT_STORAGE_RETRY_AFTER.to_string().as_str()
        );
    }

    #[test]
    fn a_closed_launch_reads_as_closed_to_clients_that_only_know_the_message() {
        // @allurereport/plugin-testops: isLaunchClosedMessage() looks for
        // "launch is closed" or "closed launch" in the lower-cased message.
        let m = ServerError::launch_closed(42).to_string().to_lowercase();
        assert!(m.contains("launch is closed"), "{m}");
        assert!(m.contains("launch 42"), "{m}");
        // Prerequisite problems never read as a closed launch.
        let p = ServerError::PrerequisiteMissing(vec![
            "job 1 has results only in a launch that is open".into(),
        ])
        .to_string()
        .to_lowercase();
        assert!(
            !p.contains("launch is closed") && !p.contains("closed launch"),
            "{p}"
        );
    }
}
