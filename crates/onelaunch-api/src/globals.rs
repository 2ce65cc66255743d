//! Errors and attachments that belong to no test (Allure 3 `*-globals.json`):
//! `GET /api/launch/{id}/globals` and `GET /api/jobrun/{id}/globals`.

use serde::{Deserialize, Serialize};

use crate::Id;

/// What a launch (or one job run of it) holds outside its tests. Each error is
/// a problem of the launch, like a failed test.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GlobalsDto {
    pub launch_id: Id,
    /// Set when the answer is about one job run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_run_id: Option<Id>,
    /// All errors (each one a problem of the launch); `errors` lists at most
    /// the first 500.
    #[serde(default)]
    pub error_count: i64,
    #[serde(default)]
    pub attachment_count: i64,
    #[serde(default)]
    pub errors: Vec<GlobalErrorDto>,
    #[serde(default)]
    pub attachments: Vec<GlobalAttachmentDto>,
}

/// One error outside any test, e.g. `"before each" hook: connect failed: …`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GlobalErrorDto {
    pub id: Id,
    #[serde(default)]
    pub job_run_id: Option<Id>,
    pub session_id: Id,
    /// The `*-globals.json` file it came from.
    pub file_name: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub trace: Option<String>,
    /// When the adapter recorded it (epoch ms).
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// One attachment outside any test.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GlobalAttachmentDto {
    pub id: Id,
    #[serde(default)]
    pub job_run_id: Option<Id>,
    pub session_id: Id,
    /// The `*-globals.json` file it came from.
    pub file_name: String,
    pub name: String,
    /// The attachment file's name in the results directory.
    pub source: String,
    #[serde(default)]
    pub content_type: Option<String>,
    /// Bytes; `None` while the file named by `source` has not arrived.
    #[serde(default)]
    pub content_length: Option<i64>,
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// `GET` it for the content (`None` while it has not arrived).
    #[serde(default)]
    pub content_url: Option<String>,
}
