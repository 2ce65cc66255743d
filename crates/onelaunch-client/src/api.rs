//! [`ApiClient`]: typed calls to the TestOps API subset, with authentication,
//! retries and error classification.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use onelaunch_api::{
    ErrorCode, ExternalRunResponse, ExternalRunStart, ExternalRunStop, Id, JobDto, JobRunDto,
    LaunchCreate, LaunchDto, LaunchProgress, Page, ProjectCreate, ProjectDto, ResultRef,
    SessionCreate, SessionDto, StatisticItem, TestResultDto, TokenCreated, UploadFixtures,
    UploadResultsResponse,
};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of retries after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Most attachment parts sent in one multipart request.
pub const MAX_PARTS_PER_REQUEST: usize = 100;

const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// Longest server message kept (in characters): a 409 may list the missing
/// prerequisites of many jobs, and every one of them must reach the user.
pub const MESSAGE_LIMIT: usize = 64 * 1024;

// ---------------------------------------------------------------- configuration

/// A secret string (an API token). Its `Debug` and `Display` print `<redacted>`;
/// the value is only reachable through [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself. Never log or print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

/// How to reach the server.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL of the server, e.g. `https://testops.example.com`; may carry a
    /// path prefix (`https://example.com/testops`).
    pub endpoint: Url,
    /// API token, sent as `Authorization: api-token <token>`.
    pub token: Secret,
    /// Timeout of one request attempt (default 30 s).
    pub timeout: Duration,
    /// Retries after the first attempt on connection errors, timeouts, 408,
    /// 429 and 5xx (default 5).
    pub max_retries: u32,
    /// `User-Agent` header value.
    pub user_agent: String,
    /// A PEM file of extra CA certificates to trust (`--ca-cert`), on top of
    /// the system trust store (or `SSL_CERT_FILE`/`SSL_CERT_DIR`) and the
    /// bundled Mozilla roots.
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate (`--insecure`). For testing only.
    pub insecure: bool,
}

impl ClientConfig {
    /// A configuration with the default timeout, retries and user agent.
    pub fn new(endpoint: Url, token: impl Into<Secret>) -> Self {
        ClientConfig {
            endpoint,
            token: token.into(),
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            user_agent: default_user_agent(),
            ca_cert: None,
            insecure: false,
        }
    }
}

/// `onelaunch/<version>`.
pub fn default_user_agent() -> String {
    format!("onelaunch/{}", env!("CARGO_PKG_VERSION"))
}

// ---------------------------------------------------------------- errors

/// Why a call failed.
#[derive(thiserror::Error, Debug)]
pub enum ClientError {
    /// The server could not be reached (connection error or timeout), even after retries.
    #[error("cannot reach {endpoint} after {attempts} attempt(s): {}", describe_transport(.source))]
    Unreachable {
        /// The URL (without query) that was requested.
        endpoint: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server's TLS certificate is not trusted (unknown issuer, expired,
    /// wrong host name, ...). Never retried: trying again cannot change it.
    #[error(
        "the TLS certificate of {server} is not trusted: {reason}. To fix it, either: \
         (1) pass the certificate of the CA that signed it with --ca-cert FILE (ALLURE_CA_CERT); \
         (2) add that CA to this machine's trust store, or point SSL_CERT_FILE (a PEM file) \
         or SSL_CERT_DIR at it; \
         (3) for testing only, skip the check with --insecure (ALLURE_INSECURE=true)"
    )]
    Certificate {
        /// The server, `scheme://host:port`.
        server: String,
        /// What is wrong with the certificate.
        reason: String,
    },
    /// 401 or 403: the token is missing, wrong, or lacks access.
    #[error("not authorized: {0} (check the API token and its access to the project)")]
    Unauthorized(String),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// The launch is closed (error code `launch_closed`, or 423).
    #[error("launch is closed: {0}")]
    LaunchClosed(String),
    /// Any other 409.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Any other 4xx answer.
    #[error("request rejected with HTTP {status}: {message}")]
    BadRequest {
        /// HTTP status code.
        status: u16,
        /// `METHOD /path: <server message>`.
        message: String,
    },
    /// A 5xx answer, after retries.
    #[error("server error HTTP {status}: {message}")]
    Server {
        /// HTTP status code.
        status: u16,
        /// `METHOD /path: <server message>`.
        message: String,
        /// The body's machine-readable code (e.g. `storage_full`, `busy`).
        code: Option<ErrorCode>,
    },
    /// A successful answer whose body is not what the API promises.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// The client could not be set up (bad endpoint URL, token not usable in a header, ...).
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// True when the server could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }
}

/// The reason a transport error is a rejected server certificate, if it is one:
/// rustls' `InvalidCertificate` somewhere in the error chain (reqwest wraps it
/// in hyper's error and an `io::Error`, whose `source` skips it).
pub fn certificate_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        // An `io::Error` hides what it wraps from `source`: look inside.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            cur = Some(inner);
            continue;
        }
        if let Some(rustls::Error::InvalidCertificate(cert)) = err.downcast_ref::<rustls::Error>() {
            use rustls::CertificateError as C;
            let hint = match cert {
                C::UnknownIssuer => {
                    "it was issued by a certificate authority this machine does not trust"
                }
                C::Expired | C::ExpiredContext { .. } => "it has expired",
                C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet",
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "it is not valid for this host name"
                }
                C::Revoked => "it has been revoked",
                C::BadSignature => "its signature is invalid",
                _ => "it was rejected",
            };
            return Some(format!("{hint} ({cert:?})"));
        }
        cur = err.source();
    }
    None
}

/// `scheme://host[:port]` of a URL.
fn server_of(url: &Url) -> String {
    let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        s.push_str(&format!(":{port}"));
    }
    s
}

/// The system's trust store (or `SSL_CERT_FILE`/`SSL_CERT_DIR` when set),
/// loaded once per process. Certificates rustls cannot use are skipped, so
/// one odd entry in the store does not break every connection.
fn native_roots() -> &'static [reqwest::Certificate] {
    static ROOTS: std::sync::OnceLock<Vec<reqwest::Certificate>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for e in &loaded.errors {
            tracing::warn!("trust store: {e}");
        }
        loaded
            .certs
            .into_iter()
            .filter(|der| rustls::RootCertStore::empty().add(der.clone()).is_ok())
            .filter_map(|der| reqwest::Certificate::from_der(&der).ok())
            .collect()
    })
}

/// A `--ca-cert` file that cannot be used.
#[derive(thiserror::Error, Debug)]
#[error("--ca-cert {path}: {problem}")]
pub struct CaCertError {
    /// The file, as given.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The certificates of a `--ca-cert` PEM file.
fn ca_file_roots(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, CaCertError> {
    let fail = |problem: String| CaCertError {
        path: path.display().to_string(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| fail(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(fail(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    Ok(certs)
}

/// What an HTTPS client of onelaunch trusts, on top of the roots built into
/// reqwest: the operating system's trust store (or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR` when set) and the CA certificates of `ca_cert`
/// (`--ca-cert`). The CLI's client and the server's outbound requests (CI
/// triggers) both build their clients with it.
pub fn trust_roots(
    mut builder: reqwest::ClientBuilder,
    ca_cert: Option<&std::path::Path>,
) -> Result<reqwest::ClientBuilder, CaCertError> {
    for cert in native_roots() {
        builder = builder.add_root_certificate(cert.clone());
    }
    if let Some(path) = ca_cert {
        for cert in ca_file_roots(path)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder)
}

fn describe_transport(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let cause = root.to_string();
    if e.is_timeout() {
        "request timed out".to_string()
    } else if e.is_connect() {
        format!("connection failed: {cause}")
    } else {
        cause
    }
}

/// Extracts the human message from an error body: the JSON `message` (or
/// another usual field), else the text, whole up to [`MESSAGE_LIMIT`] characters.
pub(crate) fn server_message(status: u16, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let obj = v.as_object()?;
            [
                "message",
                "error_description",
                "detail",
                "error",
                "title",
                "description",
            ]
            .iter()
            .filter_map(|k| obj.get(*k).and_then(|m| m.as_str()))
            .map(str::trim)
            .find(|m| !m.is_empty())
            .map(str::to_string)
        });
    let text = match from_json {
        Some(m) => m,
        None => String::from_utf8_lossy(body).trim().to_string(),
    };
    if text.is_empty() {
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no message");
        return format!("HTTP {status} {reason}");
    }
    truncate_chars(&text, MESSAGE_LIMIT)
}

fn truncate_chars(s: &str, limit: usize) -> String {
    match s.char_indices().nth(limit) {
        Some((idx, _)) => format!("{}…", &s[..idx]),
        None => s.to_string(),
    }
}

/// The machine-readable `code` of an error body, when the server sent one.
fn server_code(body: &[u8]) -> Option<ErrorCode> {
    #[derive(serde::Deserialize)]
    struct Coded {
        code: Option<ErrorCode>,
    }
    serde_json::from_slice::<Coded>(body).ok()?.code
}

/// Classifies a non-success answer by its status and the body's `code`, never
/// by the wording of its message. `label` is `METHOD /path`.
pub(crate) fn error_from_status(label: &str, status: u16, body: &[u8]) -> ClientError {
    let message = format!("{label}: {}", server_message(status, body));
    let code = server_code(body);
    match (status, code) {
        (_, Some(ErrorCode::LaunchClosed)) | (423, _) => ClientError::LaunchClosed(message),
        (401 | 403, _) => ClientError::Unauthorized(message),
        (404, _) => ClientError::NotFound(message),
        (409, _) => ClientError::Conflict(message),
        (500..=599, _) => ClientError::Server {
            status,
            message,
            code,
        },
        _ => ClientError::BadRequest { status, message },
    }
}

fn redact(err: ClientError, token: &str) -> ClientError {
    // Tokens shorter than this are not real tokens; replacing them would only garble messages.
    if token.len() < 4 {
        return err;
    }
    let r = |s: String| s.replace(token, "<redacted>");
    match err {
        ClientError::Unauthorized(m) => ClientError::Unauthorized(r(m)),
        ClientError::NotFound(m) => ClientError::NotFound(r(m)),
        ClientError::LaunchClosed(m) => ClientError::LaunchClosed(r(m)),
        ClientError::Conflict(m) => ClientError::Conflict(r(m)),
        ClientError::BadRequest { status, message } => ClientError::BadRequest {
            status,
            message: r(message),
        },
        ClientError::Server {
            status,
            message,
            code,
        } => ClientError::Server {
            status,
            message: r(message),
            code,
        },
        ClientError::Decode(m) => ClientError::Decode(r(m)),
        other => other,
    }
}

// ---------------------------------------------------------------- retry policy

/// True for answers worth retrying: 408, 429 and 5xx.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// Backoff before retry number `attempt` (0-based): `200 ms · 2^attempt`, capped at
/// 10 s, scaled into `[½, 1]` of that by `jitter` ∈ `[0, 1]`.
pub(crate) fn backoff_delay(attempt: u32, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(16));
    let base = BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_CAP);
    let jitter = jitter.clamp(0.0, 1.0);
    base.mul_f64(0.5 + 0.5 * jitter)
}

fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    backoff_delay(attempt, rand::thread_rng().gen_range(0.0..=1.0))
}

/// Parses a `Retry-After` value (delay seconds or an HTTP date) into a delay
/// from `now`, capped at 60 s. Dates in the past give zero.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let delay = if value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = parse_http_date(value)?;
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
        Duration::from_secs(at.saturating_sub(now))
    };
    Some(delay.min(RETRY_AFTER_CAP))
}

/// Parses the three HTTP date formats (IMF-fixdate, RFC 850, asctime) into
/// seconds since the Unix epoch.
pub(crate) fn parse_http_date(s: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let tokens: Vec<&str> = s
        .split([' ', ',', '-', ':'])
        .filter(|t| !t.is_empty())
        .collect();
    let mut month = None;
    let mut month_pos = 0;
    let mut numbers: Vec<(usize, u64)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.bytes().all(|b| b.is_ascii_digit()) {
            numbers.push((i, t.parse().ok()?));
        } else if t.len() == 3 {
            let lower = t.to_ascii_lowercase();
            if let Some(m) = MONTHS.iter().position(|m| *m == lower) {
                month = Some(m as u64 + 1);
                month_pos = i;
            }
        }
    }
    let month = month?;
    if numbers.len() != 5 {
        return None;
    }
    let (day, mut year, hour, minute, second) = if numbers[0].0 > month_pos {
        // asctime: "Sun Nov  6 08:49:37 1994"
        (
            numbers[0].1,
            numbers[4].1,
            numbers[1].1,
            numbers[2].1,
            numbers[3].1,
        )
    } else {
        (
            numbers[0].1,
            numbers[1].1,
            numbers[2].1,
            numbers[3].1,
            numbers[4].1,
        )
    };
    if year < 100 {
        year += if year < 70 { 2000 } else { 1900 };
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------- request types

/// One attachment file sent as a multipart `file` part.
#[derive(Clone, PartialEq, Eq)]
pub struct AttachmentPart {
    /// File name of the part; the server matches it against `originalFileName`.
    pub file_name: String,
    /// Content type of the part.
    pub content_type: String,
    /// The file content.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for AttachmentPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentPart")
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// One test case of a job-run plan (`GET /api/jobrun/{id}/plan`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    /// Allure id of the test case; absent when the case has no numeric
    /// `ALLURE_ID` (then only the selector names it).
    #[serde(
        default,
        deserialize_with = "onelaunch_api::flex::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<i64>,
    /// Selector (usually the full name) of the test.
    #[serde(default, deserialize_with = "onelaunch_api::flex::null_default")]
    pub selector: String,
}

/// An attachment part whose bytes are shared, so retries do not copy them.
#[derive(Clone)]
pub(crate) struct SharedPart {
    pub(crate) file_name: String,
    pub(crate) content_type: String,
    pub(crate) data: Arc<Vec<u8>>,
}

impl SharedPart {
    pub(crate) fn new(file_name: String, content_type: String, bytes: Vec<u8>) -> Self {
        SharedPart {
            file_name,
            content_type,
            data: Arc::new(bytes),
        }
    }

    /// A part whose bytes are shared with other requests.
    pub(crate) fn shared(file_name: String, content_type: String, data: Arc<Vec<u8>>) -> Self {
        SharedPart {
            file_name,
            content_type,
            data,
        }
    }
}

enum Payload {
    Empty,
    /// Shared bytes: a retried request sends them again without a copy.
    Json(bytes::Bytes),
    Multipart(Vec<SharedPart>),
    /// Per result: a `result` part (its id), then its `file` parts.
    Bulk(Vec<(Id, Vec<SharedPart>)>),
}

// ---------------------------------------------------------------- the client

/// HTTP client of the TestOps API subset. Cheap to clone (shares one connection pool).
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    /// Whether the server has the bulk attachment route, learned from its
    /// first answer (an older onelaunch, another TestOps server has none:
    /// attachments then go one result per request).
    bulk: Arc<BulkRoute>,
}

/// What [`ApiClient::upload_attachments_bulk`] learned of the server's bulk
/// attachment route. Until the first answer, one request at a time asks
/// (the others wait for what it learns), so a server without the route is
/// asked once, however many chunks' attachments are on their way.
#[derive(Default)]
struct BulkRoute {
    /// [`BulkRoute::UNKNOWN`], [`BulkRoute::YES`] or [`BulkRoute::NO`].
    known: std::sync::atomic::AtomicU8,
    probe: tokio::sync::Mutex<()>,
}

impl BulkRoute {
    const UNKNOWN: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;

    fn get(&self) -> u8 {
        self.known.load(std::sync::atomic::Ordering::Acquire)
    }

    fn set(&self, v: u8) {
        self.known.store(v, std::sync::atomic::Ordering::Release);
    }
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("config", &self.config)
            .finish()
    }
}

impl ApiClient {
    /// Builds a client. Fails when the endpoint is not an http(s) URL or the
    /// token cannot be sent in a header.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        match config.endpoint.scheme() {
            "http" | "https" => {}
            other => {
                return Err(ClientError::Config(format!(
                    "endpoint {} must use http or https, not {other}",
                    config.endpoint
                )))
            }
        }
        if config.endpoint.cannot_be_a_base() {
            return Err(ClientError::Config(format!(
                "endpoint {} is not a base URL",
                config.endpoint
            )));
        }
        let mut auth = HeaderValue::from_str(&format!("api-token {}", config.token.expose()))
            .map_err(|_| {
                ClientError::Config(
                    "the API token contains characters that cannot be sent in an HTTP header"
                        .to_string(),
                )
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout);
        if config.endpoint.scheme() == "https" {
            builder = trust_roots(builder, config.ca_cert.as_deref())
                .map_err(|e| ClientError::Config(e.to_string()))?;
            builder = builder.danger_accept_invalid_certs(config.insecure);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(ApiClient {
            http,
            config: Arc::new(config),
            bulk: Default::default(),
        })
    }

    /// The server base URL.
    pub fn endpoint(&self) -> &Url {
        &self.config.endpoint
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.config.endpoint.clone();
        let joined = format!("{}{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url.set_query(None);
        url.set_fragment(None);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    fn build(&self, method: &Method, url: &Url, payload: &Payload) -> reqwest::RequestBuilder {
        let req = self.http.request(method.clone(), url.clone());
        match payload {
            Payload::Empty => req,
            Payload::Json(bytes) => req
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Payload::Multipart(parts) => {
                let boundary = crate::multipart::boundary();
                let body = crate::multipart::files(&boundary, parts);
                crate::multipart::attach(req, &boundary, body)
            }
            Payload::Bulk(groups) => {
                let boundary = crate::multipart::boundary();
                let body = crate::multipart::bulk(&boundary, groups);
                crate::multipart::attach(req, &boundary, body)
            }
        }
    }

    /// Sends a request with retries; returns the body of a 2xx answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        payload: Payload,
    ) -> Result<Vec<u8>, ClientError> {
        let url = self.url(path, query);
        let label = format!("{method} {path}");
        let max_retries = self.config.max_retries;
        let mut attempt: u32 = 0;
        loop {
            let started = std::time::Instant::now();
            let outcome = match self.build(&method, &url, &payload).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    match resp.bytes().await {
                        Ok(body) => Ok((status, retry_after, body)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok((status, _, body)) if (200..300).contains(&status) => {
                    tracing::debug!(
                        "{label} -> {status} in {} ms",
                        started.elapsed().as_millis()
                    );
                    return Ok(body.to_vec());
                }
                Ok((status, retry_after, _))
                    if is_retryable_status(status) && attempt < max_retries =>
                {
                    let delay = retry_after.unwrap_or_else(|| backoff(attempt));
                    tracing::warn!(
                        "{label} -> HTTP {status}; retry {} of {max_retries} in {} ms",
                        attempt + 1,
                        delay.as_millis()
                    );
                    tokio::time::sleep(delay).await;
                }
                Ok((status, _, body)) => {
                    tracing::debug!("{label} -> {status}");
                    return Err(redact(
                        error_from_status(&label, status, &body),
                        self.config.token.expose(),
                    ));
                }
                Err(e) if certificate_problem(&e).is_some() => {
                    return Err(ClientError::Certificate {
                        server: server_of(&url),
                        reason: certificate_problem(&e).unwrap_or_default(),
                    });
                }
                Err(e) if attempt < max_retries && !e.is_builder() => {
                    let delay = backoff(attempt);
                    tracing::warn!(
                        "{label}: {}; retry {} of {max_retries} in {} ms",
                        describe_transport(&e),
                        attempt + 1,
                        delay.as_millis()
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    let mut endpoint = url.clone();
                    endpoint.set_query(None);
                    return Err(ClientError::Unreachable {
                        endpoint: endpoint.to_string(),
                        attempts: attempt + 1,
                        source: e.without_url(),
                    });
                }
            }
            attempt += 1;
        }
    }

    fn decode<T: DeserializeOwned>(label: &str, body: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(body)
            .map_err(|e| ClientError::Decode(format!("{label}: cannot decode the answer: {e}")))
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let body = self.call(Method::GET, path, query, Payload::Empty).await?;
        Self::decode(&format!("GET {path}"), &body)
    }

    async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &B,
    ) -> Result<T, ClientError> {
        let answer = self.post_raw(path, query, body).await?;
        Self::decode(&format!("POST {path}"), &answer)
    }

    async fn post_raw<B: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &B,
    ) -> Result<Vec<u8>, ClientError> {
        let json = serde_json::to_vec(body).map_err(|e| {
            ClientError::Decode(format!("POST {path}: cannot encode the request: {e}"))
        })?;
        self.call(Method::POST, path, query, Payload::Json(json.into()))
            .await
    }

    async fn post_empty(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.call(Method::POST, path, &[], Payload::Empty).await
    }

    // ------------------------------------------------------------ launches

    /// `POST /api/launch`.
    pub async fn create_launch(&self, launch: &LaunchCreate) -> Result<LaunchDto, ClientError> {
        self.post_json("/api/launch", &[], launch).await
    }

    /// `GET /api/launch/{id}`.
    pub async fn get_launch(&self, id: Id) -> Result<LaunchDto, ClientError> {
        self.get_json(&format!("/api/launch/{id}"), &[]).await
    }

    /// `GET /api/launch?projectId=&page=&size=` (newest first).
    pub async fn list_launches(
        &self,
        project_id: Id,
        page: u32,
        size: u32,
    ) -> Result<Page<LaunchDto>, ClientError> {
        self.get_json(
            "/api/launch",
            &[
                ("projectId", project_id.to_string()),
                ("page", page.to_string()),
                ("size", size.to_string()),
            ],
        )
        .await
    }

    /// `GET /api/launch/compare?base=&head=`: what changed from `base` to
    /// `head`, test by test.
    pub async fn compare_launches(
        &self,
        base: Id,
        head: Id,
    ) -> Result<onelaunch_api::LaunchComparison, ClientError> {
        self.get_json(
            "/api/launch/compare",
            &[("base", base.to_string()), ("head", head.to_string())],
        )
        .await
    }

    /// `POST /api/launch/combine`: a new launch holding the results of these.
    pub async fn combine_launches(
        &self,
        launch_ids: &[Id],
        name: &str,
    ) -> Result<LaunchDto, ClientError> {
        let req = onelaunch_api::LaunchCombine {
            launch_ids: launch_ids.to_vec(),
            name: name.to_string(),
        };
        self.post_json("/api/launch/combine", &[], &req).await
    }

    /// `POST /api/launch/{id}/close`.
    pub async fn close_launch(&self, id: Id) -> Result<(), ClientError> {
        self.post_empty(&format!("/api/launch/{id}/close")).await?;
        Ok(())
    }

    /// `DELETE /api/launch/{id}[?force=true]`: the launch, its results and
    /// the attachment bytes nothing else references. Answers what was removed
    /// (`results`, `attachments`, `blobsRemoved`, `bytesFreed`; `null` from a
    /// server that answers without a body).
    pub async fn delete_launch(
        &self,
        id: Id,
        force: bool,
    ) -> Result<serde_json::Value, ClientError> {
        let query = if force {
            vec![("force", "true".to_string())]
        } else {
            Vec::new()
        };
        let body = self
            .call(
                Method::DELETE,
                &format!("/api/launch/{id}"),
                &query,
                Payload::Empty,
            )
            .await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        Self::decode(&format!("DELETE /api/launch/{id}"), &body)
    }

    /// `GET /api/project/{id}/retention` (admin): `{days, launches}`.
    pub async fn get_retention(&self, project: Id) -> Result<serde_json::Value, ClientError> {
        self.get_json(&format!("/api/project/{project}/retention"), &[])
            .await
    }

    /// `PUT /api/project/{id}/retention` (admin); `None` is no bound.
    pub async fn set_retention(
        &self,
        project: Id,
        days: Option<i64>,
        launches: Option<i64>,
    ) -> Result<serde_json::Value, ClientError> {
        let path = format!("/api/project/{project}/retention");
        let json = serde_json::to_vec(&serde_json::json!({"days": days, "launches": launches}))
            .map_err(|e| ClientError::Decode(format!("PUT {path}: {e}")))?;
        let body = self
            .call(Method::PUT, &path, &[], Payload::Json(json.into()))
            .await?;
        Self::decode(&format!("PUT {path}"), &body)
    }

    /// `POST /api/launch/{id}/reopen`.
    pub async fn reopen_launch(&self, id: Id) -> Result<(), ClientError> {
        self.post_empty(&format!("/api/launch/{id}/reopen")).await?;
        Ok(())
    }

    /// `POST /api/launch/{id}/rerun`: runs the selected tests of a launch again
    /// into the same launch (a `requestId` is added when absent, so a retried
    /// request adds nothing twice).
    pub async fn rerun_launch(
        &self,
        id: Id,
        req: &onelaunch_api::RerunRequest,
    ) -> Result<onelaunch_api::RerunDto, ClientError> {
        let mut req = req.clone();
        req.request_id.get_or_insert_with(new_request_id);
        self.post_json(&format!("/api/launch/{id}/rerun"), &[], &req)
            .await
    }

    /// `GET /api/launch/{id}/gate`: the verdict stored at close, else the
    /// launch judged now against its configured rules.
    pub async fn launch_gate(&self, id: Id) -> Result<onelaunch_api::GateReport, ClientError> {
        self.get_json(&format!("/api/launch/{id}/gate"), &[]).await
    }

    /// `POST /api/launch/{id}/gate`: the launch judged now against its
    /// configured rules made stricter by `rules`.
    pub async fn judge_launch(
        &self,
        id: Id,
        rules: &onelaunch_api::GateRules,
    ) -> Result<onelaunch_api::GateReport, ClientError> {
        self.post_json(&format!("/api/launch/{id}/gate"), &[], rules)
            .await
    }

    /// `GET /api/project/{id}/gate` or `/api/testplan/{id}/gate`: rules.
    pub async fn gate_rules(
        &self,
        owner: GateOwner,
    ) -> Result<onelaunch_api::GateRules, ClientError> {
        self.get_json(&owner.path(), &[]).await
    }

    /// `PUT /api/project/{id}/gate` (admin) or `/api/testplan/{id}/gate`.
    pub async fn set_gate_rules(
        &self,
        owner: GateOwner,
        rules: &onelaunch_api::GateRules,
    ) -> Result<onelaunch_api::GateRules, ClientError> {
        self.send_json(Method::PUT, &owner.path(), rules).await
    }

    /// `GET /api/launch/{id}/statistic`.
    pub async fn launch_statistic(&self, id: Id) -> Result<Vec<StatisticItem>, ClientError> {
        self.get_json(&format!("/api/launch/{id}/statistic"), &[])
            .await
    }

    /// `GET /api/launch/{id}/job`: the job runs of a launch.
    pub async fn launch_job_runs(&self, id: Id) -> Result<Vec<JobRunDto>, ClientError> {
        self.get_json(&format!("/api/launch/{id}/job"), &[]).await
    }

    /// `POST /api/launch/{id}/expected-job-runs`: declares how many job runs
    /// the launch expects (onelaunch extension).
    pub async fn set_expected_job_runs(&self, id: Id, n: i64) -> Result<(), ClientError> {
        self.post_raw(
            &format!("/api/launch/{id}/expected-job-runs"),
            &[],
            &onelaunch_api::ExpectedJobRuns {
                expected_job_runs: n,
            },
        )
        .await?;
        Ok(())
    }

    /// `GET /api/launch/{id}/progress`.
    pub async fn launch_progress(&self, id: Id) -> Result<LaunchProgress, ClientError> {
        self.get_json(&format!("/api/launch/{id}/progress"), &[])
            .await
    }

    // ------------------------------------------------------------ jobs and job runs

    /// `POST /api/upload/start`: find or create the job and job run (and launch).
    pub async fn upload_start(
        &self,
        start: &ExternalRunStart,
    ) -> Result<ExternalRunResponse, ClientError> {
        self.post_json("/api/upload/start", &[], start).await
    }

    /// `POST /api/upload/stop`.
    pub async fn upload_stop(
        &self,
        stop: &ExternalRunStop,
    ) -> Result<ExternalRunResponse, ClientError> {
        self.post_json("/api/upload/stop", &[], stop).await
    }

    /// `GET /api/upload/jobrun?projectId=&jobUid=&jobRunUid=`; `None` on 404.
    pub async fn find_job_run(
        &self,
        project_id: Id,
        job_uid: &str,
        job_run_uid: &str,
    ) -> Result<Option<ExternalRunResponse>, ClientError> {
        let query = [
            ("projectId", project_id.to_string()),
            ("jobUid", job_uid.to_string()),
            ("jobRunUid", job_run_uid.to_string()),
        ];
        not_found_as_none(self.get_json("/api/upload/jobrun", &query).await)
    }

    /// `GET /api/jobrun/{id}`.
    pub async fn get_job_run(&self, id: Id) -> Result<JobRunDto, ClientError> {
        self.get_json(&format!("/api/jobrun/{id}"), &[]).await
    }

    /// `GET /api/rs/job?projectId=&externalId=`; `None` on 404. A page answer
    /// is accepted too (its first element).
    pub async fn find_job(
        &self,
        project_id: Id,
        external_id: &str,
    ) -> Result<Option<JobDto>, ClientError> {
        let path = "/api/rs/job";
        let query = [
            ("projectId", project_id.to_string()),
            ("externalId", external_id.to_string()),
        ];
        let body = match self.call(Method::GET, path, &query, Payload::Empty).await {
            Ok(body) => body,
            Err(ClientError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum JobAnswer {
            One(JobDto),
            Page { content: Vec<JobDto> },
            List(Vec<JobDto>),
        }
        let answer: JobAnswer = Self::decode(&format!("GET {path}"), &body)?;
        Ok(match answer {
            JobAnswer::One(job) => Some(job),
            JobAnswer::Page { content } | JobAnswer::List(content) => {
                content.into_iter().find(|j| j.external_id == external_id)
            }
        })
    }

    /// `GET /api/jobrun/{id}/plan?expected=true`.
    pub async fn job_run_plan(&self, job_run_id: Id) -> Result<Vec<PlanItem>, ClientError> {
        self.get_json(
            &format!("/api/jobrun/{job_run_id}/plan"),
            &[("expected", "true".to_string())],
        )
        .await
    }

    // ------------------------------------------------------------ sessions and results

    /// `POST /api/upload/session` (with `?manual=true` when no job run is given).
    pub async fn create_session(&self, session: &SessionCreate) -> Result<SessionDto, ClientError> {
        let query: Vec<(&str, String)> = if session.job_run_id.is_none() {
            vec![("manual", "true".to_string())]
        } else {
            Vec::new()
        };
        self.post_json("/api/upload/session", &query, session).await
    }

    /// `POST /api/upload/session/{id}/close`: this client's upload through
    /// the session ended (onelaunch extension; idempotent, accepted on a
    /// closed launch).
    pub async fn close_session(&self, id: Id) -> Result<(), ClientError> {
        self.post_empty(&format!("/api/upload/session/{id}/close"))
            .await?;
        Ok(())
    }

    /// `POST /api/upload/test-result`. Either shape of the answer is accepted
    /// (`results: [{id, uuid}]` and/or `resultIds`); the missing one is left
    /// empty, or derived from `results`. The body is the JSON of an
    /// `UploadResults`, already written (the uploader puts its results' JSON
    /// together, `upload::encode`).
    pub async fn upload_results(
        &self,
        body: bytes::Bytes,
    ) -> Result<UploadResultsResponse, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            #[serde(default, deserialize_with = "onelaunch_api::flex::null_default")]
            results: Vec<ResultRef>,
            #[serde(default, deserialize_with = "onelaunch_api::flex::null_default")]
            result_ids: Vec<Id>,
            #[serde(default)]
            new_results: Option<usize>,
        }
        let path = "/api/upload/test-result";
        let body = self
            .call(Method::POST, path, &[], Payload::Json(body))
            .await;
        let answer: Answer = Self::decode(&format!("POST {path}"), &body?)?;
        let result_ids = if answer.result_ids.is_empty() {
            answer.results.iter().map(|r| r.id).collect()
        } else {
            answer.result_ids
        };
        Ok(UploadResultsResponse {
            results: answer.results,
            result_ids,
            new_results: answer.new_results,
        })
    }

    /// `POST /api/upload/test-result/{id}/attachment`: one multipart `file` part
    /// per attachment, at most 100 parts per request (more are split).
    pub async fn upload_attachments(
        &self,
        result_id: Id,
        parts: Vec<AttachmentPart>,
    ) -> Result<(), ClientError> {
        let shared: Vec<SharedPart> = parts
            .into_iter()
            .map(|p| SharedPart::new(p.file_name, p.content_type, p.bytes))
            .collect();
        self.upload_shared_attachments(result_id, &shared).await
    }

    /// [`ApiClient::upload_attachments`] over shared bytes.
    pub(crate) async fn upload_shared_attachments(
        &self,
        result_id: Id,
        parts: &[SharedPart],
    ) -> Result<(), ClientError> {
        let path = format!("/api/upload/test-result/{result_id}/attachment");
        for chunk in parts.chunks(MAX_PARTS_PER_REQUEST) {
            self.call(Method::POST, &path, &[], Payload::Multipart(chunk.to_vec()))
                .await?;
        }
        Ok(())
    }

    /// `POST /api/upload/attachment/bulk` (onelaunch extension): the
    /// attachments of several results in one request. `None` when the server
    /// has no such route (it answered 404 or 405; remembered, so later calls
    /// answer `None` at once): send them with
    /// [`ApiClient::upload_attachments`] instead.
    pub(crate) async fn upload_attachments_bulk(
        &self,
        groups: &[(Id, Vec<SharedPart>)],
    ) -> Result<Option<onelaunch_api::BulkAttachmentsResponse>, ClientError> {
        let _probe = match self.bulk.get() {
            BulkRoute::NO => return Ok(None),
            BulkRoute::UNKNOWN => Some(self.bulk.probe.lock().await),
            _ => None,
        };
        if self.bulk.get() == BulkRoute::NO {
            // Learned while this call waited for the first answer.
            return Ok(None);
        }
        let answer = self
            .call(
                Method::POST,
                "/api/upload/attachment/bulk",
                &[],
                Payload::Bulk(groups.to_vec()),
            )
            .await;
        match answer {
            Ok(body) => {
                self.bulk.set(BulkRoute::YES);
                serde_json::from_slice(&body).map(Some).map_err(|e| {
                    ClientError::Decode(format!("POST /api/upload/attachment/bulk: {e}"))
                })
            }
            Err(ClientError::NotFound(_)) | Err(ClientError::BadRequest { status: 405, .. }) => {
                tracing::debug!("the server has no bulk attachment route; one request per result");
                self.bulk.set(BulkRoute::NO);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /api/upload/file?id={session}`: raw result files (here: Allure 3
    /// `*-globals.json` and the attachments they name), parsed by the server.
    pub(crate) async fn upload_raw_files(
        &self,
        session_id: Id,
        parts: &[SharedPart],
    ) -> Result<(), ClientError> {
        self.call(
            Method::POST,
            "/api/upload/file",
            &[("id", session_id.to_string())],
            Payload::Multipart(parts.to_vec()),
        )
        .await?;
        Ok(())
    }

    /// `GET /api/launch/{id}/globals`: errors and attachments outside tests.
    pub async fn launch_globals(&self, id: Id) -> Result<onelaunch_api::GlobalsDto, ClientError> {
        self.get_json(&format!("/api/launch/{id}/globals"), &[])
            .await
    }

    /// `GET /api/jobrun/{id}/globals`.
    pub async fn job_run_globals(&self, id: Id) -> Result<onelaunch_api::GlobalsDto, ClientError> {
        self.get_json(&format!("/api/jobrun/{id}/globals"), &[])
            .await
    }

    /// The bytes behind a `contentUrl` of the API (e.g. a global
    /// attachment's); read whole, so only for small ones.
    pub async fn content(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.call(Method::GET, path, &[], Payload::Empty).await
    }

    /// `POST /api/upload/test-result/{id}/test-fixture-result`.
    pub async fn upload_fixtures(
        &self,
        result_id: Id,
        fixtures: &UploadFixtures,
    ) -> Result<(), ClientError> {
        self.post_raw(
            &format!("/api/upload/test-result/{result_id}/test-fixture-result"),
            &[],
            fixtures,
        )
        .await?;
        Ok(())
    }

    /// `GET /api/testresult?launchId=&page=&size=`.
    pub async fn list_results(
        &self,
        launch_id: Id,
        page: u32,
        size: u32,
    ) -> Result<Page<TestResultDto>, ClientError> {
        self.get_json(
            "/api/testresult",
            &[
                ("launchId", launch_id.to_string()),
                ("page", page.to_string()),
                ("size", size.to_string()),
            ],
        )
        .await
    }

    // ------------------------------------------------------------ projects

    /// `POST /api/project`.
    pub async fn create_project(&self, name: &str) -> Result<ProjectDto, ClientError> {
        self.post_json(
            "/api/project",
            &[],
            &ProjectCreate {
                name: name.to_string(),
            },
        )
        .await
    }

    /// `POST /api/project/{id}/token`: mints an API token for the project.
    pub async fn create_project_token(&self, project_id: Id) -> Result<TokenCreated, ClientError> {
        let path = format!("/api/project/{project_id}/token");
        let body = self.post_empty(&path).await?;
        Self::decode(&format!("POST {path}"), &body)
    }

    /// `GET /api/token` (admin): every token, never a secret.
    pub async fn list_tokens(&self) -> Result<Vec<onelaunch_api::TokenDto>, ClientError> {
        let page: Page<onelaunch_api::TokenDto> = self.get_json("/api/token", &[]).await?;
        Ok(page.content)
    }

    /// `POST /api/token` (admin): a new token; its secret is in the answer once.
    pub async fn create_token(
        &self,
        req: &onelaunch_api::TokenCreate,
    ) -> Result<onelaunch_api::TokenIssued, ClientError> {
        self.post_json("/api/token", &[], req).await
    }

    /// `DELETE /api/token/{id}` (admin): revokes a token (idempotent).
    pub async fn revoke_token(&self, id: Id) -> Result<onelaunch_api::TokenDto, ClientError> {
        let path = format!("/api/token/{id}");
        let body = self
            .call(Method::DELETE, &path, &[], Payload::Empty)
            .await?;
        Self::decode(&format!("DELETE {path}"), &body)
    }

    // ------------------------------------------------------------ server-led launches

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let label = format!("{method} {path}");
        let json = serde_json::to_vec(body)
            .map_err(|e| ClientError::Decode(format!("{label}: cannot encode the request: {e}")))?;
        let answer = self
            .call(method, path, &[], Payload::Json(json.into()))
            .await?;
        Self::decode(&label, &answer)
    }

    /// `GET /api/testcase?projectId=&label=&name=&status=&page=&size=`.
    pub async fn list_test_cases(
        &self,
        project_id: Id,
        filter: &onelaunch_api::TestCaseFilter,
        page: u32,
        size: u32,
    ) -> Result<Page<onelaunch_api::TestCaseDto>, ClientError> {
        let mut query: Vec<(&str, String)> = vec![
            ("projectId", project_id.to_string()),
            ("page", page.to_string()),
            ("size", size.to_string()),
        ];
        for l in &filter.labels {
            query.push(("label", format!("{}={}", l.name, l.value)));
        }
        if let Some(p) = &filter.name_pattern {
            query.push(("name", p.clone()));
        }
        for s in &filter.status {
            query.push(("status", s.clone()));
        }
        self.get_json("/api/testcase", &query).await
    }

    /// `POST /api/testcase/run`: runs a selection of test cases in a new launch
    /// (a `requestId` is added when absent, so a retried request is harmless).
    pub async fn run_test_cases(
        &self,
        run: &onelaunch_api::TestCaseRun,
    ) -> Result<onelaunch_api::ServerRunDto, ClientError> {
        let mut run = run.clone();
        run.launch.request_id.get_or_insert_with(new_request_id);
        self.post_json("/api/testcase/run", &[], &run).await
    }

    /// `GET /api/project/{id}/job`: the project's jobs with their configuration.
    pub async fn list_job_configs(
        &self,
        project_id: Id,
    ) -> Result<Vec<onelaunch_api::JobConfigDto>, ClientError> {
        self.get_json(&format!("/api/project/{project_id}/job"), &[])
            .await
    }

    /// `GET /api/job/{id}`.
    pub async fn get_job_config(&self, id: Id) -> Result<onelaunch_api::JobConfigDto, ClientError> {
        self.get_json(&format!("/api/job/{id}"), &[]).await
    }

    /// `PATCH /api/job/{id}`: changes the given parts of a job's configuration.
    pub async fn configure_job(
        &self,
        id: Id,
        update: &onelaunch_api::JobConfigUpdate,
    ) -> Result<onelaunch_api::JobConfigDto, ClientError> {
        self.send_json(Method::PATCH, &format!("/api/job/{id}"), update)
            .await
    }

    /// `POST /api/testplan`.
    pub async fn create_test_plan(
        &self,
        plan: &onelaunch_api::TestPlanCreate,
    ) -> Result<onelaunch_api::TestPlanDto, ClientError> {
        self.post_json("/api/testplan", &[], plan).await
    }

    /// `GET /api/testplan/{id}`.
    pub async fn get_test_plan(&self, id: Id) -> Result<onelaunch_api::TestPlanDto, ClientError> {
        self.get_json(&format!("/api/testplan/{id}"), &[]).await
    }

    /// `GET /api/testplan?projectId=`.
    pub async fn list_test_plans(
        &self,
        project_id: Id,
    ) -> Result<Vec<onelaunch_api::TestPlanDto>, ClientError> {
        self.get_json("/api/testplan", &[("projectId", project_id.to_string())])
            .await
    }

    /// `GET /api/testplan/{id}/executors`.
    pub async fn plan_executors(&self, id: Id) -> Result<onelaunch_api::ExecutorsDto, ClientError> {
        self.get_json(&format!("/api/testplan/{id}/executors"), &[])
            .await
    }

    /// `POST /api/testplan/{id}/executors`: overrides executors of some cases.
    pub async fn override_executors(
        &self,
        id: Id,
        change: &onelaunch_api::ExecutorOverride,
    ) -> Result<onelaunch_api::ExecutorsDto, ClientError> {
        self.post_json(&format!("/api/testplan/{id}/executors"), &[], change)
            .await
    }

    /// `POST /api/testplan/{id}/run`: one new launch, one job run per executor
    /// job, jobs triggered (a `requestId` is added when absent).
    pub async fn run_test_plan(
        &self,
        id: Id,
        form: &onelaunch_api::LaunchForm,
    ) -> Result<onelaunch_api::ServerRunDto, ClientError> {
        let mut form = form.clone();
        form.request_id.get_or_insert_with(new_request_id);
        self.post_json(&format!("/api/testplan/{id}/run"), &[], &form)
            .await
    }

    /// `POST /api/launch/{id}/manual`: records manual results in a launch.
    pub async fn record_manual_results(
        &self,
        launch_id: Id,
        results: &onelaunch_api::ManualResults,
    ) -> Result<Vec<onelaunch_api::ManualResultDto>, ClientError> {
        self.post_json(&format!("/api/launch/{launch_id}/manual"), &[], results)
            .await
    }

    /// `GET /api/launch/{id}/manual`: planned manual cases and manual results.
    pub async fn launch_manual(
        &self,
        launch_id: Id,
    ) -> Result<onelaunch_api::LaunchManualDto, ClientError> {
        self.get_json(&format!("/api/launch/{launch_id}/manual"), &[])
            .await
    }

    /// `GET /api/launch/{id}/manual?assignee=&state=left|done`: the manual
    /// view narrowed to one assignee and/or the cases left or done.
    pub async fn launch_manual_where(
        &self,
        launch_id: Id,
        assignee: Option<&str>,
        state: Option<&str>,
    ) -> Result<onelaunch_api::LaunchManualDto, ClientError> {
        let mut q = Vec::new();
        if let Some(a) = assignee {
            q.push(("assignee", a.to_string()));
        }
        if let Some(s) = state {
            q.push(("state", s.to_string()));
        }
        self.get_json(&format!("/api/launch/{launch_id}/manual"), &q)
            .await
    }

    /// `GET /api/testplan/{id}/manual-assignee`: who does which manual case
    /// of a plan by default.
    pub async fn plan_assignees(
        &self,
        plan_id: Id,
    ) -> Result<onelaunch_api::ManualAssignments, ClientError> {
        self.get_json(&format!("/api/testplan/{plan_id}/manual-assignee"), &[])
            .await
    }

    /// `PUT /api/testplan/{id}/manual-assignee`: sets a plan's default
    /// assignees (an empty name takes a case back); answers all of them.
    pub async fn set_plan_assignees(
        &self,
        plan_id: Id,
        req: &onelaunch_api::ManualAssignments,
    ) -> Result<onelaunch_api::ManualAssignments, ClientError> {
        self.send_json(
            Method::PUT,
            &format!("/api/testplan/{plan_id}/manual-assignee"),
            req,
        )
        .await
    }

    /// `POST /api/launch/{id}/manual/assignee`: gives manual cases to people.
    pub async fn assign_manual(
        &self,
        launch_id: Id,
        req: &onelaunch_api::ManualAssignments,
    ) -> Result<onelaunch_api::LaunchManualDto, ClientError> {
        self.post_json(
            &format!("/api/launch/{launch_id}/manual/assignee"),
            &[],
            req,
        )
        .await
    }

    /// `GET /api/launch/{id}/statistic/manual|automated`.
    pub async fn launch_statistic_of(
        &self,
        launch_id: Id,
        manual: bool,
    ) -> Result<Vec<StatisticItem>, ClientError> {
        let kind = if manual { "manual" } else { "automated" };
        self.get_json(&format!("/api/launch/{launch_id}/statistic/{kind}"), &[])
            .await
    }
}

/// A random idempotency key for run requests.
fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn not_found_as_none<T>(r: Result<T, ClientError>) -> Result<Option<T>, ClientError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ClientError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn a_rejected_certificate_is_found_inside_nested_io_errors() {
        use std::io::{Error as IoError, ErrorKind};
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // hyper-rustls hands the connector an io::Error wrapped in another one.
        let nested = IoError::other(IoError::new(ErrorKind::InvalidData, tls));
        let reason = certificate_problem(&nested).expect("found");
        assert!(reason.contains("UnknownIssuer"), "{reason}");
        let other = IoError::new(ErrorKind::ConnectionRefused, "refused");
        assert_eq!(certificate_problem(&other), None);
        let not_cert = IoError::other(rustls::Error::HandshakeNotComplete);
        assert_eq!(certificate_problem(&not_cert), None);
    }

    #[test]
    fn a_ca_cert_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "no certificate here\n").unwrap();
        let mut config = ClientConfig::new(Url::parse("https://example.com").unwrap(), "tok1");
        config.ca_cert = Some(path);
        let err = ApiClient::new(config).unwrap_err().to_string();
        assert!(err.contains("empty.pem"), "{err}");
        let mut config = ClientConfig::new(Url::parse("https://example.com").unwrap(), "tok1");
        config.ca_cert = Some(dir.path().join("missing.pem"));
        let err = ApiClient::new(config).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn secrets_are_redacted() {
        let token = "very-secret-token-value";
        let config = ClientConfig::new(Url::parse("https://example.com").unwrap(), token);
        let debug = format!("{config:?}");
        assert!(!debug.contains(token), "{debug}");
        assert!(debug.contains("<redacted>"));
        assert_eq!(format!("{}", config.token), "<redacted>");
        assert_eq!(config.token.expose(), token);
        let client = ApiClient::new(config).unwrap();
        assert!(!format!("{client:?}").contains(token));
        let part = AttachmentPart {
            file_name: "a".into(),
            content_type: "text/plain".into(),
            bytes: vec![1; 10],
        };
        assert!(format!("{part:?}").contains("len: 10"));
    }

    #[test]
    fn config_is_validated() {
        let bad = ClientConfig::new(Url::parse("ftp://example.com").unwrap(), "t");
        assert!(matches!(ApiClient::new(bad), Err(ClientError::Config(_))));
        let token = "line\nbreak-secret";
        let bad = ClientConfig::new(Url::parse("http://example.com").unwrap(), token);
        let err = ApiClient::new(bad).unwrap_err().to_string();
        assert!(!err.contains("break-secret"), "{err}");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_767); // Sun, 06 Nov 1994 08:49:27 GMT
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("3600", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(60))
        );
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Some(Duration::from_secs(10)),
                "{date}"
            );
        }
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Mon, 07 Nov 1994 08:49:27 GMT", now),
            Some(Duration::from_secs(60))
        );
        for bad in [
            "",
            "soon",
            "-5",
            "1.5",
            "Sun, 99 Nov 1994 08:49:37 GMT",
            "Nov 1994",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn http_dates_convert_to_epoch() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        assert_eq!(backoff_delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(0, 1.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(1, 1.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(3, 1.0), Duration::from_millis(1600));
        assert_eq!(backoff_delay(6, 1.0), Duration::from_secs(10));
        assert_eq!(backoff_delay(40, 1.0), Duration::from_secs(10));
        assert_eq!(backoff_delay(40, 0.0), Duration::from_secs(5));
        for attempt in 0..10 {
            let d = backoff(attempt);
            assert!(d >= backoff_delay(attempt, 0.0) && d <= backoff_delay(attempt, 1.0));
        }
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 413, 422] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn errors_from_status_and_body() {
        let json = |m: &str, s: u16| serde_json::json!({"message": m, "status": s}).to_string();
        let e = error_from_status(
            "GET /api/launch/1",
            401,
            json("Invalid token", 401).as_bytes(),
        );
        assert!(
            matches!(&e, ClientError::Unauthorized(m) if m == "GET /api/launch/1: Invalid token")
        );
        assert!(matches!(
            error_from_status("GET /x", 403, b""),
            ClientError::Unauthorized(_)
        ));
        let e = error_from_status("GET /api/launch/1", 404, b"");
        assert!(
            matches!(&e, ClientError::NotFound(m) if m == "GET /api/launch/1: HTTP 404 Not Found")
        );
        let coded = |m: &str, code: &str| {
            serde_json::json!({"message": m, "status": 409, "code": code}).to_string()
        };
        let e = error_from_status(
            "POST /api/upload/session",
            409,
            coded("Launch 1: reopen it", "launch_closed").as_bytes(),
        );
        assert!(matches!(e, ClientError::LaunchClosed(_)));
        // The wording does not decide: a prerequisite message that says "closed"
        // is a conflict, and so is a code this client does not know.
        let e = error_from_status(
            "POST /x",
            409,
            coded("no results in a closed launch", "prerequisite_missing").as_bytes(),
        );
        assert!(matches!(e, ClientError::Conflict(_)), "{e:?}");
        let e = error_from_status(
            "POST /x",
            409,
            coded("closed", "from_the_future").as_bytes(),
        );
        assert!(matches!(e, ClientError::Conflict(_)), "{e:?}");
        let e = error_from_status("POST /x", 409, json("Launch 1 is closed", 409).as_bytes());
        assert!(matches!(e, ClientError::Conflict(_)));
        let e = error_from_status("POST /x", 423, b"locked");
        assert!(matches!(e, ClientError::LaunchClosed(_)));
        let e = error_from_status("POST /x", 422, b"  plain text reason \n");
        assert!(
            matches!(&e, ClientError::BadRequest { status: 422, message } if message == "POST /x: plain text reason"),
            "{e:?}"
        );
        let e = error_from_status("POST /x", 503, br#"{"error":"unavailable"}"#);
        assert!(
            matches!(&e, ClientError::Server { status: 503, message, .. } if message.ends_with("unavailable"))
        );
        // A long message (a 409 listing many jobs' missing prerequisites)
        // is kept whole; only something past MESSAGE_LIMIT is cut.
        let listing: Vec<String> = (1..=40)
            .map(|i| format!("job [{i}] shop-api-{i}: needs a trigger URL and a credential"))
            .collect();
        let listing = listing.join("; ");
        assert!(listing.len() > 2000);
        let e = error_from_status("POST /x", 409, json(&listing, 409).as_bytes());
        match e {
            ClientError::Conflict(message) => {
                assert_eq!(message, format!("POST /x: {listing}"));
                assert!(message.contains("job [40] shop-api-40"));
            }
            other => panic!("{other:?}"),
        }
        let long = "é".repeat(MESSAGE_LIMIT + 10);
        let e = error_from_status("GET /x", 400, long.as_bytes());
        match e {
            ClientError::BadRequest { message, .. } => {
                assert_eq!(
                    message.chars().count(),
                    "GET /x: ".len() + MESSAGE_LIMIT + 1
                );
                assert!(message.ends_with('…'));
            }
            other => panic!("{other:?}"),
        }
        // The display names the status and keeps the message.
        let shown = error_from_status("GET /x", 500, b"boom").to_string();
        assert_eq!(shown, "server error HTTP 500: GET /x: boom");
    }

    #[test]
    fn token_is_scrubbed_from_server_messages() {
        let e = redact(
            ClientError::BadRequest {
                status: 400,
                message: "token abcdef123 rejected".into(),
            },
            "abcdef123",
        );
        assert!(!e.to_string().contains("abcdef123"));
    }

    #[test]
    fn urls_keep_the_endpoint_prefix() {
        let client = ApiClient::new(ClientConfig::new(
            Url::parse("https://example.com/testops/").unwrap(),
            "t",
        ))
        .unwrap();
        assert_eq!(
            client
                .url(
                    "/api/launch",
                    &[("projectId", "1".into()), ("q", "a b&c".into())]
                )
                .as_str(),
            "https://example.com/testops/api/launch?projectId=1&q=a+b%26c"
        );
        let client = ApiClient::new(ClientConfig::new(
            Url::parse("https://example.com").unwrap(),
            "t",
        ))
        .unwrap();
        assert_eq!(
            client.url("/api/launch/1", &[]).as_str(),
            "https://example.com/api/launch/1"
        );
    }
}

/// Whose quality-gate rules: a project's defaults or a plan's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateOwner {
    Project(Id),
    Plan(Id),
}

impl GateOwner {
    fn path(self) -> String {
        match self {
            GateOwner::Project(id) => format!("/api/project/{id}/gate"),
            GateOwner::Plan(id) => format!("/api/testplan/{id}/gate"),
        }
    }
}
