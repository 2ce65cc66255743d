//! HTTP wire types of the Allure TestOps API subset that onelaunch speaks.
//!
//! Both the client and the server use these types, so what the client sends is
//! exactly what the server parses. Field names follow TestOps (camelCase).
//! Deserialisation is lenient where real clients differ (ids sent as strings,
//! tags as strings or objects, unknown fields ignored); serialisation is strict.

pub use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

mod compare;
pub use compare::*;
mod gate;
pub use gate::*;
mod rerun;
pub use rerun::*;
mod globals;
pub use globals::{GlobalAttachmentDto, GlobalErrorDto, GlobalsDto};

/// Every identifier on the wire is a 64-bit integer.
pub type Id = i64;

pub mod flex {
    //! Deserialisers for values that clients send in more than one shape.
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrString {
        Num(i64),
        Float(f64),
        Str(String),
    }

    fn convert<E: serde::de::Error>(v: NumOrString) -> Result<i64, E> {
        match v {
            NumOrString::Num(n) => Ok(n),
            NumOrString::Float(f) if f.fract() == 0.0 => Ok(f as i64),
            NumOrString::Float(f) => Err(E::custom(format!("expected an integer id, got {f}"))),
            NumOrString::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| E::custom(format!("expected an integer id, got {s:?}"))),
        }
    }

    /// An id sent as a number or as a numeric string (the Allure 3 plugin sends
    /// `projectId` as the configured string).
    pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        convert(NumOrString::deserialize(d)?)
    }

    /// Optional variant of [`id`]; `null` and `""` mean absent.
    pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
        match Option::<NumOrString>::deserialize(d)? {
            None => Ok(None),
            Some(NumOrString::Str(s)) if s.trim().is_empty() => Ok(None),
            Some(v) => convert(v).map(Some),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TagShape {
        Str(String),
        Obj { name: String },
    }

    /// Tags arrive as `["a"]` (upload/start, legacy) or `[{"name":"a"}]` (launch).
    pub fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let v = Option::<Vec<TagShape>>::deserialize(d)?.unwrap_or_default();
        Ok(v.into_iter()
            .map(|t| match t {
                TagShape::Str(s) | TagShape::Obj { name: s } => s,
            })
            .filter(|s| !s.trim().is_empty())
            .collect())
    }

    /// `null` becomes the default value.
    pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Default + Deserialize<'de>,
    {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }
}

/// Error body understood by the Allure 3 plugin (`message`, `status`), plus
/// onelaunch's machine-readable [`ErrorCode`] in `code` (clients that do not know
/// it ignore it). Clients decide on `code`, never on the wording of `message`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub message: String,
    pub status: u16,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
}

/// What went wrong, for programs: the `code` of an [`ErrorBody`]. New codes may
/// be added; an older client reads them as [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a field is invalid (400).
    BadRequest,
    /// No valid token (401).
    Unauthorized,
    /// The token may not do this (403).
    Forbidden,
    /// No such object in the caller's scope (404).
    NotFound,
    /// The launch is closed: reopen it to add to it (409).
    LaunchClosed,
    /// A job cannot run tests yet: the message names each missing prerequisite (409).
    PrerequisiteMissing,
    /// Any other conflict with the current state (409).
    Conflict,
    /// The request's body arrived too slowly: a pause longer than the
    /// server's header timeout, or too few bytes a second; send it again (408).
    RequestTimeout,
    /// The body or a field is above a documented bound (413).
    PayloadTooLarge,
    /// Too many failed authentication attempts from this client: wait for
    /// `Retry-After` seconds (429).
    TooManyRequests,
    /// Stored content no longer matches its digest: upload it again (409).
    ContentDamaged,
    /// The server takes no more uploads at the moment: retry after the
    /// `Retry-After` delay (503).
    Busy,
    /// The server's storage (attachment store or database) is full: nothing
    /// of the request was kept; retry after the `Retry-After` delay (503).
    StorageFull,
    /// A server-side failure; details are in the server log (5xx).
    Internal,
    /// A code this client does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The wire spelling (`launch_closed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::LaunchClosed => "launch_closed",
            ErrorCode::PrerequisiteMissing => "prerequisite_missing",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::ContentDamaged => "content_damaged",
            ErrorCode::Busy => "busy",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// Spring-style page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub content: Vec<T>,
    pub total_elements: i64,
    pub total_pages: i64,
    pub number: i64,
    pub size: i64,
}

impl<T> Page<T> {
    pub fn new(content: Vec<T>, total_elements: i64, number: i64, size: i64) -> Self {
        let size = size.max(1);
        Page {
            content,
            total_elements,
            total_pages: (total_elements + size - 1) / size,
            number,
            size,
        }
    }
}

// ---------------------------------------------------------------- auth / projects

/// Response of `POST /api/uaa/oauth/token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    #[serde(default)]
    pub jti: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectCreate {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProjectDto {
    pub id: Id,
    pub name: String,
}

/// A freshly minted API token; shown once.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenCreated {
    pub token: String,
}

impl std::fmt::Debug for TokenCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCreated")
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `POST /api/token` (admin): a new API token. `POST /api/project/{id}/token`
/// takes the same body (optional there; its project is the path's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenCreate {
    /// Required for `POST /api/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The project the token is limited to; absent: an admin token.
    #[serde(
        default,
        deserialize_with = "flex::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<Id>,
    /// Expires this many days from now (1..=3650); at most one of this and
    /// `expiresAt`; neither: never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<i64>,
    /// Expires at this time (epoch milliseconds, in the future).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// An API token as listed (`GET /api/token`): never its secret or its hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenDto {
    pub id: Id,
    pub name: String,
    /// `None`: an admin token.
    pub project_id: Option<Id>,
    pub created_date: i64,
    pub expires_date: Option<i64>,
    /// Updated at most about once a minute.
    pub last_used_date: Option<i64>,
    pub revoked_date: Option<i64>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
}

/// A token just created: its secret (shown this once) and what is listed.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenIssued {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenDto,
}

impl std::fmt::Debug for TokenIssued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssued")
            .field("token", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

// ---------------------------------------------------------------- launches

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TagDto {
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LinkDto {
    #[serde(default, deserialize_with = "flex::null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub url: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `POST /api/launch`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LaunchCreate {
    pub name: String,
    #[serde(deserialize_with = "flex::id")]
    pub project_id: Id,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub autoclose: bool,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub external: bool,
    #[serde(default, deserialize_with = "flex::tags", serialize_with = "ser_tags")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub links: Vec<LinkDto>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub issues: Vec<Value>,
}

fn ser_tags<S: serde::Serializer>(tags: &[String], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(tags.len()))?;
    for t in tags {
        seq.serialize_element(&TagDto { name: t.clone() })?;
    }
    seq.end()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LaunchDto {
    pub id: Id,
    pub name: String,
    pub closed: bool,
    pub external: bool,
    pub autoclose: bool,
    pub project_id: Id,
    #[serde(default)]
    pub tags: Vec<TagDto>,
    #[serde(default)]
    pub links: Vec<LinkDto>,
    #[serde(default)]
    pub issues: Vec<Value>,
    pub created_date: i64,
    pub last_modified_date: i64,
    /// Link to the launch page (onelaunch extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Job runs this launch expects, as declared by `job-run start --expect N`
    /// (onelaunch extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_job_runs: Option<i64>,
    /// Whether the quality gate held when the launch closed; absent while it
    /// is open or when it has no gate (onelaunch extension; the whole verdict
    /// is at `GET /api/launch/{id}/gate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_passed: Option<bool>,
    /// Which job runs have reported and which are missing (onelaunch
    /// extension; filled by `GET /api/launch/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Participants>,
    /// The planned scope of a launch a server-led run created: how many
    /// planned tests were reported and which are missing (onelaunch
    /// extension; filled by `GET /api/launch/{id}`, `None` for other launches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<PlannedScope>,
    /// Tests run again into this launch and how many changed status
    /// (onelaunch extension; filled by `GET /api/launch/{id}` once a rerun
    /// happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reruns: Option<RerunSummary>,
    /// The environment its uploads and server-led run reported, one entry per
    /// distinct value, secret-looking names left out (onelaunch extension;
    /// filled by `GET /api/launch/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValue>,
    /// Launches combined from this one (`launch combine`; onelaunch extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub combined_into: Vec<Id>,
    /// The launches this combined launch holds the results of (onelaunch
    /// extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub combined_from: Vec<Id>,
}

/// Planned tests of a server-led launch or job run, and which of them no
/// result was reported for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PlannedScope {
    /// Planned tests.
    pub planned: i64,
    /// Planned tests with at least one result in their job run.
    pub reported: i64,
    /// Planned tests without a result, in plan order (at most
    /// [`PlannedScope::MAX_LISTED`]; `planned - reported` is the full count).
    #[serde(default)]
    pub missing: Vec<PlannedCase>,
}

impl PlannedScope {
    /// Most missing tests listed.
    pub const MAX_LISTED: usize = 1000;

    /// Planned tests without a result.
    pub fn missing_count(&self) -> i64 {
        self.planned - self.reported
    }

    /// `N of M planned tests reported`.
    pub fn summary(&self) -> String {
        format!(
            "{} of {} planned tests reported",
            self.reported, self.planned
        )
    }
}

/// A planned test named in [`PlannedScope::missing`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PlannedCase {
    pub test_case_id: Id,
    pub name: String,
    /// The job run that was to report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_run_id: Option<Id>,
}

/// The job runs of a launch as seen by `launch close --wait`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Participants {
    /// Declared number of job runs (`None` when nobody declared one).
    #[serde(default)]
    pub expected: Option<i64>,
    /// Job runs that exist (started at least once).
    pub started: i64,
    /// Job runs in stage `finished` or `run_failure`.
    pub finished: i64,
    /// Expected job runs that never started (`expected - started`, at least 0).
    pub missing: i64,
    /// Job runs that started but have not finished. A job run an upload
    /// created (not `job-run start`) is listed only while one of its upload
    /// sessions is open.
    #[serde(default)]
    pub unfinished: Vec<ParticipantRef>,
    /// Upload sessions still open: an upload in flight (onelaunch extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_sessions: Vec<OpenSession>,
    /// Open upload sessions without activity for longer than the server's
    /// upload-session timeout: counted as abandoned, they no longer hold the
    /// launch (onelaunch extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abandoned_sessions: Vec<OpenSession>,
}

impl Participants {
    /// True when every expected job run started, every started one finished
    /// and no upload is in flight.
    pub fn complete(&self) -> bool {
        self.missing == 0 && self.unfinished.is_empty() && self.open_sessions.is_empty()
    }
}

/// An upload session named in [`Participants`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OpenSession {
    pub id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_run_id: Option<Id>,
    /// The CI pipeline uploading through it, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<SessionCi>,
    /// Results stored through it so far.
    #[serde(default)]
    pub results: i64,
    /// Its last activity (epoch ms).
    #[serde(default)]
    pub last_activity: i64,
}

/// A job run named in [`Participants`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ParticipantRef {
    pub id: Id,
    /// `<job name> / <job run name>`.
    pub name: String,
    pub stage: String,
}

/// `POST /api/launch/{id}/expected-job-runs` (onelaunch extension).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExpectedJobRuns {
    pub expected_job_runs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LaunchProgress {
    /// Results are indexed (always, once stored).
    pub ready: bool,
    /// No upload is in flight and every job run is done (onelaunch extension;
    /// see [`Participants::complete`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Participants>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatisticItem {
    pub status: String,
    pub count: i64,
}

// ---------------------------------------------------------------- jobs and job runs

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ParameterDto {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CiDto {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Allure 3 plugin 3.14 sends `name` instead of `type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobRef {
    #[serde(
        default,
        deserialize_with = "flex::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<Id>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub parameters: Vec<ParameterDto>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LaunchRef {
    #[serde(
        default,
        deserialize_with = "flex::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "flex::tags")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoclose: Option<bool>,
}

/// `POST /api/upload/start`: create-or-join a job, a job run and its launch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExternalRunStart {
    #[serde(deserialize_with = "flex::id")]
    pub project_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiDto>,
    #[serde(default)]
    pub job: JobRef,
    pub job_run: JobRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<LaunchRef>,
    /// Started by an upload, not by `job-run start` (onelaunch extension). A
    /// job run only uploads created is done when its upload sessions are all
    /// closed (and finished by the server then); any other job run is done
    /// when it is stopped (`job-run stop`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub implicit: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExternalRunResponse {
    pub job_id: Id,
    pub job_run_id: Id,
    pub launch_id: Id,
    pub project_id: Id,
    /// The launch's name (onelaunch extension): with `launchUrl`, what a
    /// client prints about the launch without asking for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_name: Option<String>,
    /// Link to the launch page (onelaunch extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_url: Option<String>,
}

/// `POST /api/upload/stop`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExternalRunStop {
    #[serde(default, deserialize_with = "flex::null_default")]
    pub job_run_uid: String,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub job_uid: String,
    #[serde(deserialize_with = "flex::id")]
    pub project_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// onelaunch extension: stop by id instead of uids.
    #[serde(
        default,
        deserialize_with = "flex::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub job_run_id: Option<Id>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobDto {
    pub id: Id,
    pub external_id: String,
    pub name: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub project_id: Id,
    #[serde(default)]
    pub parameters: Vec<ParameterDto>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: Id,
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// Job-run stage: `scheduled`, `in_progress`, `finished`, `run_failure`.
pub mod stage {
    pub const SCHEDULED: &str = "scheduled";
    pub const IN_PROGRESS: &str = "in_progress";
    pub const FINISHED: &str = "finished";
    pub const RUN_FAILURE: &str = "run_failure";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobRunDto {
    pub id: Id,
    pub external_id: String,
    pub name: String,
    #[serde(default)]
    pub url: Option<String>,
    pub launch_id: Id,
    pub project_id: Id,
    pub job: JobSummary,
    pub stage: String,
    pub status: String,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub parameters: Vec<ParameterDto>,
    pub created_date: i64,
    pub last_modified_date: i64,
    /// Results uploaded into this job run (onelaunch extension).
    #[serde(default)]
    pub result_count: i64,
    /// Link to the job-run page (onelaunch extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_url: Option<String>,
    /// The planned tests of a server-led job run and which are missing
    /// (onelaunch extension; `None` for a job run without a plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<PlannedScope>,
}

// ---------------------------------------------------------------- sessions and results

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyValue {
    pub key: String,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub value: String,
}

/// `POST /api/upload/session` (by job run, or `?manual=true` by launch).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionCreate {
    #[serde(
        default,
        deserialize_with = "flex::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub job_run_id: Option<Id>,
    #[serde(
        default,
        deserialize_with = "flex::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub launch_id: Option<Id>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub environment: Vec<KeyValue>,
    /// The CI pipeline that uploads in this session (onelaunch extension). A
    /// job run is shared: a pipeline of another CI system may upload into it
    /// (through `ALLURE_JOB_RUN_ID`); each session keeps its own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<SessionCi>,
    /// The client closes this session when its upload ends
    /// (`POST /api/upload/session/{id}/close`; onelaunch extension). Until
    /// then the launch counts it as in flight and `launch close --wait` waits
    /// for it. Other sessions are closed from the start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub track: bool,
}

/// The CI identity of the pipeline behind one upload session.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionCi {
    /// `github`, `gitlab`, `jenkins`, or another CI's name.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Its job (workflow, project, Jenkins job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Its run (workflow run, pipeline, build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    /// Link to its run in the CI (an `http(s)` URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    pub id: Id,
    #[serde(default)]
    pub job_id: Option<Id>,
    #[serde(default)]
    pub job_run_id: Option<Id>,
    pub launch_id: Id,
    pub project_id: Id,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UploadAttachment {
    #[serde(default, deserialize_with = "flex::null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub original_file_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub content_type: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_length: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UploadParameter {
    #[serde(default, deserialize_with = "flex::null_default")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: CompactString,
    #[serde(default, deserialize_with = "flex::null_default")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub value: CompactString,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub hidden: bool,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub excluded: bool,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub masked: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LabelDto {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: CompactString,
    #[serde(default, deserialize_with = "flex::null_default")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub value: CompactString,
}

/// A step: the Allure 3 plugin sends a tagged union on `type`
/// (`body`, `expected_body`, `attachment`); kept as one lenient struct.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UploadStep {
    #[serde(rename = "type", default = "default_step_type")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: CompactString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub status: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub parameters: Vec<UploadParameter>,
    #[serde(default, deserialize_with = "flex::null_default")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub steps: Vec<UploadStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<UploadAttachment>,
}

fn default_step_type() -> CompactString {
    CompactString::const_new("body")
}

/// One test result as sent to `POST /api/upload/test-result`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UploadTestResult {
    pub uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case_id: Option<String>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub status: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub flaky: bool,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub known: bool,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub muted: bool,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub steps: Vec<UploadStep>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub attachments: Vec<UploadAttachment>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub parameters: Vec<UploadParameter>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub links: Vec<LinkDto>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub labels: Vec<LabelDto>,
    /// Accepted and ignored by onelaunch: `environment`, `category`, `namedEnv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_env: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UploadResults {
    #[serde(deserialize_with = "flex::id")]
    pub test_session_id: Id,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub results: Vec<UploadTestResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultRef {
    pub id: Id,
    pub uuid: String,
}

/// Answer of `POST /api/upload/test-result`: both shapes real clients read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UploadResultsResponse {
    #[serde(default)]
    pub results: Vec<ResultRef>,
    #[serde(default)]
    pub result_ids: Vec<Id>,
    /// How many of the results were stored by this request; the others were
    /// already in the launch (a re-sent uuid answers its stored id). onelaunch
    /// extension; `None` from servers that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_results: Option<usize>,
}

/// Answer of `POST /api/upload/attachment/bulk` (onelaunch extension): the
/// attachments of several results in one request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkAttachmentsResponse {
    /// How many `file` parts were stored.
    pub files_count: usize,
    /// The `file` parts that were not stored, each with the reason; the
    /// others were stored all the same.
    #[serde(default)]
    pub refused: Vec<RefusedAttachment>,
}

/// A `file` part of a bulk attachment upload that was not stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RefusedAttachment {
    /// The test result the part was sent for.
    pub result_id: Id,
    /// The part's file name.
    #[serde(default)]
    pub file_name: String,
    /// Machine-readable reason: `not_found` (no such result in the token's
    /// projects) or `bad_request` (the file name is refused).
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UploadFixture {
    /// `BEFORE` or `AFTER`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub uuid: String,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub steps: Vec<UploadStep>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub attachments: Vec<UploadAttachment>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadFixtures {
    #[serde(default, deserialize_with = "flex::null_default")]
    pub fixtures: Vec<UploadFixture>,
}

/// `POST /api/launch/{named-env,category}/bulk`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LaunchBulk {
    #[serde(deserialize_with = "flex::id")]
    pub launch_id: Id,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub items: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkRef {
    pub id: Id,
    pub external_id: String,
}

/// A stored test result as read back (onelaunch extension:
/// `GET /api/testresult?launchId=`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestResultDto {
    pub id: Id,
    pub uuid: String,
    pub launch_id: Id,
    #[serde(default)]
    pub job_run_id: Option<Id>,
    pub name: String,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub history_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub stop: Option<i64>,
    /// True when a later attempt of the same test exists in the launch.
    pub retry: bool,
    #[serde(default)]
    pub attachment_count: i64,
    #[serde(default)]
    pub fixture_count: i64,
}

/// Normalises a status string to one of `passed failed broken skipped unknown`.
/// Compared in place, without a lowercase copy: it runs twice for every
/// result a server stores.
pub fn normalize_status(s: Option<&str>) -> &'static str {
    let Some(s) = s.map(str::trim) else {
        return "unknown";
    };
    ["passed", "failed", "broken", "skipped"]
        .into_iter()
        .find(|status| s.eq_ignore_ascii_case(status))
        .unwrap_or("unknown")
}

/// True when an environment-variable name looks like it holds a secret
/// (`ALLURE_TOKEN`, `AWS_SECRET_ACCESS_KEY`, `DB_PASSWORD`, …). Such variables are
/// never sent in a session environment, stored or logged.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    const MARKERS: [&str; 11] = [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "CREDENTIAL",
        "PRIVATE",
        "AUTH",
        "COOKIE",
        "API_KEY",
        "APIKEY",
    ];
    MARKERS.iter().any(|m| n.contains(m)) || n.ends_with("_KEY") || n == "KEY"
}

/// The statuses in the order they are shown.
pub const STATUSES: [&str; 5] = ["passed", "failed", "broken", "skipped", "unknown"];

// ================================================================ server-led launches
//
// The server defines the scope (a test plan or a selection of test cases),
// creates one launch with one job run per executor job, and triggers the jobs
// on their build servers. These types are onelaunch's own API for that.

/// A test case: created and updated by uploaded results.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestCaseDto {
    pub id: Id,
    pub project_id: Id,
    pub name: String,
    #[serde(default)]
    pub full_name: Option<String>,
    /// The `ALLURE_ID` (or `AS_ID`) label value, when the results carry one.
    #[serde(default)]
    pub allure_id: Option<String>,
    /// True when a job run uploaded a result of it (it has a default executor).
    pub automated: bool,
    /// The default executor: the job whose job run last uploaded its result.
    #[serde(default)]
    pub job: Option<JobSummary>,
    #[serde(default)]
    pub last_status: Option<String>,
    #[serde(default)]
    pub labels: Vec<LabelDto>,
    pub created_date: i64,
    pub last_modified_date: i64,
}

/// Which test cases: every given criterion must match.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestCaseFilter {
    /// Label `name=value` pairs; a case must carry all of them.
    #[serde(default, deserialize_with = "flex::null_default")]
    pub labels: Vec<LabelDto>,
    /// Matched against the name and the full name, case-insensitively: a glob
    /// when it contains `*` or `?`, otherwise a substring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_pattern: Option<String>,
    /// Last status is one of these.
    #[serde(default, deserialize_with = "flex::null_default")]
    pub status: Vec<String>,
}

impl TestCaseFilter {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
            && self.name_pattern.as_deref().is_none_or(|p| p.is_empty())
            && self.status.is_empty()
    }
}

/// Build-server integration of a job as shown (never with its credential).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IntegrationDto {
    /// `github`, `gitlab`, `jenkins` or `command`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Provider API base URL (GitHub default `https://api.github.com`, GitLab
    /// default `https://gitlab.com`; required for Jenkins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// GitHub `owner/repo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// GitHub workflow file name (or id), e.g. `tests.yml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// GitHub/GitLab git ref to run on.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// GitLab project id (or URL-encoded path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Jenkins job path, folders separated by `/` (e.g. `team/api-tests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_path: Option<String>,
    /// Jenkins user name (with the API token as credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `command`: the shell command the server runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A credential is stored (it is never shown).
    #[serde(default)]
    pub has_credential: bool,
}

/// Build-server integration as sent to configure a job. The credential (GitHub
/// token, GitLab trigger token, Jenkins API token, or the `ALLURE_TOKEN` given
/// to a `command`) is write-only; when omitted on an update of the same type
/// the stored one is kept.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IntegrationSettings {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl std::fmt::Debug for IntegrationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationSettings")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("repository", &self.repository)
            .field("workflow", &self.workflow)
            .field("git_ref", &self.git_ref)
            .field("project", &self.project)
            .field("job_path", &self.job_path)
            .field("username", &self.username)
            .field("command", &self.command)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A job with what the server needs to trigger it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobConfigDto {
    pub id: Id,
    pub external_id: String,
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    pub project_id: Id,
    /// The job may be asked to run tests.
    pub can_run_tests: bool,
    #[serde(default)]
    pub integration: Option<IntegrationDto>,
    /// Sent to every triggered run (`name` and `value`).
    #[serde(default)]
    pub parameters: Vec<ParameterDto>,
    /// Why the server cannot trigger this job now (empty when it can).
    #[serde(default)]
    pub problems: Vec<String>,
}

/// `PATCH /api/job/{id}`: absent fields are left as they are; `integration:
/// null` removes the integration. `PUT` replaces everything (absent = unset).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobConfigUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_run_tests: Option<bool>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub integration: Option<Option<IntegrationSettings>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<ParameterDto>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /api/testplan`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestPlanCreate {
    #[serde(deserialize_with = "flex::id")]
    pub project_id: Id,
    pub name: String,
    /// Test cases chosen explicitly.
    #[serde(default, deserialize_with = "flex::null_default")]
    pub test_case_ids: Vec<Id>,
    /// Test cases chosen by a filter (evaluated whenever the plan is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<TestCaseFilter>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestPlanDto {
    pub id: Id,
    pub project_id: Id,
    pub name: String,
    #[serde(default)]
    pub test_case_ids: Vec<Id>,
    #[serde(default)]
    pub filter: Option<TestCaseFilter>,
    /// The test cases the plan selects now.
    #[serde(default)]
    pub test_cases: Vec<TestCaseDto>,
    pub created_date: i64,
}

/// One test case in the executors view.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExecutorCase {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub allure_id: Option<String>,
    /// `default` (the case's own executor) or `override` (set on this plan).
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExecutorGroup {
    pub job: JobSummary,
    pub test_cases: Vec<ExecutorCase>,
}

/// `GET /api/testplan/{id}/executors`: which job runs which automated subset;
/// cases without an executor are manual.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExecutorsDto {
    pub plan_id: Id,
    pub jobs: Vec<ExecutorGroup>,
    pub manual: Vec<ExecutorCase>,
}

/// `POST /api/testplan/{id}/executors`: set the executor of some of the plan's
/// cases (by id and/or filter) to a job (`jobId`), to manual (`manual: true`),
/// or back to their default (`reset: true`). Exactly one of the three.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExecutorOverride {
    #[serde(default, deserialize_with = "flex::null_default")]
    pub test_case_ids: Vec<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<TestCaseFilter>,
    #[serde(
        default,
        deserialize_with = "flex::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub job_id: Option<Id>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub manual: bool,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub reset: bool,
}

/// The launch form of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LaunchForm {
    /// Required unless `launchId` names the launch to add to.
    #[serde(default, deserialize_with = "flex::null_default")]
    pub launch_name: String,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub tags: Vec<String>,
    /// Issue keys (`JIRA-1`) or URLs.
    #[serde(default, deserialize_with = "flex::null_default")]
    pub issues: Vec<String>,
    /// Given to every triggered job next to its parameters (same names win).
    #[serde(default, deserialize_with = "flex::null_default")]
    pub environment: Vec<KeyValue>,
    /// Idempotency key: a repeated request with the same key answers the
    /// launch the first one created instead of creating another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Who does which manual case of this launch (over the plan's default
    /// assignees).
    #[serde(
        default,
        deserialize_with = "flex::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub manual_assignees: Vec<ManualAssignment>,
    /// Add the scope to this open launch instead of creating one.
    #[serde(
        default,
        deserialize_with = "flex::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub launch_id: Option<Id>,
}

/// `POST /api/testcase/run`: run a selection of test cases directly.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestCaseRun {
    #[serde(deserialize_with = "flex::id")]
    pub project_id: Id,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub test_case_ids: Vec<Id>,
    #[serde(flatten)]
    pub launch: LaunchForm,
}

/// A job run created by a server-led run, with the cases it was asked to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PlannedJobRun {
    pub job_run: JobRunDto,
    pub test_case_ids: Vec<Id>,
}

/// Answer of a run: the launch, its job runs (triggered, or `run_failure`
/// with the provider's error) and the manual cases.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServerRunDto {
    pub launch: LaunchDto,
    #[serde(default)]
    pub plan_id: Option<Id>,
    pub job_runs: Vec<PlannedJobRun>,
    pub manual: Vec<TestCaseDto>,
}

/// One manual result: of a test case (`testCaseId`), or by name (the test
/// case is created when it does not exist).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ManualResult {
    #[serde(
        default,
        deserialize_with = "flex::opt_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub test_case_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub status: String,
    /// The tester's comment (`comment` is accepted too).
    #[serde(default, alias = "comment", skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who recorded the result (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// How long the check took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

/// `POST /api/launch/{id}/manual`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ManualResults {
    #[serde(default, deserialize_with = "flex::null_default")]
    pub results: Vec<ManualResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ManualResultDto {
    pub id: Id,
    pub test_case_id: Id,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    pub created_date: i64,
    /// Who recorded it.
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub duration_ms: i64,
}

/// A manual case given to someone (free text, e.g. a name or an e-mail).
/// An empty `assignee` takes the case back (unassigned).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ManualAssignment {
    #[serde(deserialize_with = "flex::id")]
    pub test_case_id: Id,
    pub assignee: String,
}

/// `POST /api/launch/{id}/manual/assignee`, `PUT /api/testplan/{id}/manual-assignee`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ManualAssignments {
    #[serde(default, deserialize_with = "flex::null_default")]
    pub assignments: Vec<ManualAssignment>,
}

/// One manual case of a launch: planned by hand, assigned, or with a
/// manual result; `status` is its latest manual result's (none: left).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ManualCaseState {
    pub test_case_id: Id,
    pub name: String,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// The latest manual result (the one that counts).
    #[serde(default)]
    pub result_id: Option<Id>,
    /// Manual results recorded for the case (earlier attempts included).
    #[serde(default)]
    pub attempts: i64,
}

/// Progress of one assignee (`null`: unassigned cases).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AssigneeProgress {
    #[serde(default)]
    pub assignee: Option<String>,
    pub done: i64,
    pub total: i64,
}

/// `GET /api/launch/{id}/manual`: the manual side of a launch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LaunchManualDto {
    pub launch_id: Id,
    /// Cases the run left to be done by hand.
    pub planned: Vec<TestCaseDto>,
    /// Manual results recorded so far (latest per case counts).
    pub results: Vec<ManualResultDto>,
    /// Every manual case with its assignee and latest status (filtered by
    /// `?assignee=` and `?state=left|done`).
    #[serde(default)]
    pub cases: Vec<ManualCaseState>,
    /// Done/total per assignee, unassigned last (never filtered).
    #[serde(default)]
    pub progress: Vec<AssigneeProgress>,
    /// Counts of the manual results (the launch statistic includes them;
    /// `/statistic/automated` leaves them out).
    pub statistic: Vec<StatisticItem>,
}

// ================================================================ read responses
// Response bodies the server used to build ad hoc; typed here so a client can
// read them too.

/// `GET /api/testresult/{id}`: one stored result with its attachments and
/// fixtures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TestResultDetail {
    pub id: Id,
    pub launch_id: Id,
    /// The result as uploaded (`null` when no body is stored).
    #[serde(default)]
    pub result: Value,
    #[serde(default)]
    pub attachments: Vec<ResultAttachmentDto>,
    /// Fixture results as uploaded.
    #[serde(default)]
    pub fixtures: Vec<Value>,
}

/// An attachment of a result, as `GET /api/testresult/{id}` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ResultAttachmentDto {
    pub id: Id,
    pub file_name: String,
    pub name: String,
    pub content_type: Option<String>,
    pub size: Option<i64>,
    /// Whether the bytes have arrived (an attachment may be announced first).
    pub stored: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_id_accepts_string_and_number() {
        let a: LaunchCreate = serde_json::from_str(r#"{"name":"x","projectId":"7"}"#).unwrap();
        let b: LaunchCreate = serde_json::from_str(r#"{"name":"x","projectId":7}"#).unwrap();
        assert_eq!(a.project_id, 7);
        assert_eq!(b.project_id, 7);
        let e = serde_json::from_str::<LaunchCreate>(r#"{"name":"x","projectId":"seven"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected an integer id"), "{e}");
    }

    #[test]
    fn tags_accept_both_shapes_and_serialize_as_objects() {
        let a: LaunchCreate =
            serde_json::from_str(r#"{"name":"x","projectId":1,"tags":[{"name":"a"},"b"]}"#)
                .unwrap();
        assert_eq!(a.tags, vec!["a", "b"]);
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["tags"], serde_json::json!([{"name":"a"},{"name":"b"}]));
    }

    #[test]
    fn start_request_as_plugin_318_sends_it() {
        let body = r#"{"projectId":"1","ci":{"type":"github","endpoint":"https://github.com"},
            "job":{"name":"o/r - wf","uid":"o/r_wf","parameters":[{"name":"Branch","defaultValue":"main"}]},
            "jobRun":{"id":null,"uid":"42","name":"build #1","parameters":[{"name":"Branch","value":"main"}]},
            "launch":{"id":5}}"#;
        let s: ExternalRunStart = serde_json::from_str(body).unwrap();
        assert_eq!(s.project_id, 1);
        assert_eq!(s.job.uid, "o/r_wf");
        assert_eq!(s.job_run.id, None);
        assert_eq!(s.launch.unwrap().id, Some(5));
        assert_eq!(s.job.parameters[0].default_value.as_deref(), Some("main"));
    }

    #[test]
    fn token_is_redacted_in_debug() {
        let t = TokenCreated {
            token: "secret-value".into(),
        };
        assert!(!format!("{t:?}").contains("secret-value"));
    }

    #[test]
    fn secret_names() {
        for n in [
            "ALLURE_TOKEN",
            "aws_secret_access_key",
            "DB_PASSWORD",
            "SSH_KEY",
            "GITHUB_TOKEN",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "ALLURE_LAUNCH_ID",
            "GITHUB_RUN_ID",
            "PATH",
            "CI_PIPELINE_ID",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn result_detail_wire_shape() {
        let d = TestResultDetail {
            id: 3,
            launch_id: 1,
            result: Value::Null,
            attachments: vec![ResultAttachmentDto {
                id: 9,
                file_name: "a.txt".into(),
                name: "a".into(),
                content_type: None,
                size: Some(4),
                stored: true,
            }],
            fixtures: vec![],
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"id": 3, "launchId": 1, "result": null, "fixtures": [],
                "attachments": [{"id": 9, "fileName": "a.txt", "name": "a",
                    "contentType": null, "size": 4, "stored": true}]})
        );
    }

    #[test]
    fn status_normalisation() {
        assert_eq!(normalize_status(Some("PASSED")), "passed");
        assert_eq!(normalize_status(Some("weird")), "unknown");
        assert_eq!(normalize_status(None), "unknown");
        assert_eq!(normalize_status(Some(" Broken\n")), "broken");
        assert_eq!(normalize_status(Some("skipped!")), "unknown");
    }
}
