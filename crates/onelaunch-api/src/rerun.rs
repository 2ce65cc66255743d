//! Reruns into the same launch (onelaunch extension, with the TestOps
//! `POST /api/jobrun/{id}/rerun` and `POST /api/testresult/bulk/rerun`): the
//! server finds the job that produced each selected result and runs exactly
//! those tests again in a new job run of the same launch. The new results
//! are attempts of the same tests; the latest attempt decides.

use serde::{Deserialize, Serialize};

use crate::{flex, Id, KeyValue, LabelDto, PlannedJobRun};

/// Which tests of a launch to run again. Each test is taken by its latest
/// attempt; the criteria given all hold (a status criterion holds when the
/// status is `failed`/`broken` with `failed`, or one of `status`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RerunSelection {
    /// Tests whose latest attempt failed or is broken.
    #[serde(default, deserialize_with = "flex::null_default")]
    pub failed: bool,
    /// Tests whose latest attempt has one of these statuses.
    #[serde(default, deserialize_with = "flex::null_default")]
    pub status: Vec<String>,
    /// Tests of these test cases (internal test-case ids).
    #[serde(default, deserialize_with = "flex::null_default")]
    pub test_case_ids: Vec<Id>,
    /// These results (any attempt of a test selects the test).
    #[serde(default, deserialize_with = "flex::null_default")]
    pub test_result_ids: Vec<Id>,
    /// Tests carrying every one of these labels.
    #[serde(default, deserialize_with = "flex::null_default")]
    pub labels: Vec<LabelDto>,
    /// Tests produced by these jobs.
    #[serde(default, deserialize_with = "flex::null_default")]
    pub job_ids: Vec<Id>,
}

impl RerunSelection {
    /// Whether nothing narrows the selection (refused: a rerun names its tests).
    pub fn is_empty(&self) -> bool {
        !self.failed
            && self.status.is_empty()
            && self.test_case_ids.is_empty()
            && self.test_result_ids.is_empty()
            && self.labels.is_empty()
            && self.job_ids.is_empty()
    }
}

/// `POST /api/launch/{id}/rerun`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RerunRequest {
    #[serde(flatten)]
    pub selection: RerunSelection,
    /// Given to every triggered job next to its parameters (same names win).
    #[serde(default, deserialize_with = "flex::null_default")]
    pub environment: Vec<KeyValue>,
    /// Idempotency key (`[A-Za-z0-9_-]`, at most 64): a repeated request with
    /// the same key answers the job runs the first one added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `POST /api/testresult/bulk/rerun` (TestOps shape): the launch and a tree
/// selection of its results (`leafsInclude`; `inverted` takes every latest
/// result but `leafsExclude`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkRerunRequest {
    #[serde(default, deserialize_with = "flex::opt_id")]
    pub launch_id: Option<Id>,
    #[serde(default)]
    pub selection: BulkSelection,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub environment: Vec<KeyValue>,
}

/// The part of TestOps' tree selection a rerun honours.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkSelection {
    #[serde(default, deserialize_with = "flex::opt_id")]
    pub launch_id: Option<Id>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub inverted: bool,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub leafs_include: Vec<Id>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub leafs_exclude: Vec<Id>,
}

/// `POST /api/jobrun/{id}/rerun` (TestOps shape `{rql}`): the job run's
/// tests again; `rql` empty takes its failed tests, else only
/// `status = "S"` or `status in ("S", …)` is understood.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobRunRerunRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rql: Option<String>,
    #[serde(default, deserialize_with = "flex::null_default")]
    pub environment: Vec<KeyValue>,
}

/// A selected test that no job can run again, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NotRerunnable {
    /// Its latest result in the launch.
    pub test_result_id: Id,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Id>,
    pub reason: String,
}

/// Answer of a rerun: the new job runs (triggered, or `run_failure` with the
/// provider's error), with the test cases each runs, and the tests left out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RerunDto {
    pub launch_id: Id,
    /// Whether the rerun reopened a closed launch.
    pub reopened: bool,
    pub job_runs: Vec<PlannedJobRun>,
    #[serde(default)]
    pub not_rerunnable: Vec<NotRerunnable>,
}

/// What reruns did to a launch: tests run again, and how many of them now
/// end with another status than before their first rerun.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RerunSummary {
    pub rerun: i64,
    pub changed: i64,
}
