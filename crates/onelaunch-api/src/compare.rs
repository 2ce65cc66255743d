//! Launches analysed together (onelaunch extension): comparing two launches
//! test by test, and combining several launches into a new one.

use serde::{Deserialize, Serialize};

use crate::Id;

/// A launch named by a comparison.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CompareLaunch {
    pub id: Id,
    pub name: String,
}

/// What changed between a base launch and a head launch. Tests are matched by
/// their test-case identity (`ALLURE_ID`, else `testCaseId`, else `fullName`,
/// else name), whichever job ran them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LaunchComparison {
    pub base: CompareLaunch,
    pub head: CompareLaunch,
    pub summary: CompareSummary,
    /// Every test that is not unchanged (new failures, fixed, still failing,
    /// added, removed) or is flaky in the head launch, ordered by category
    /// then name.
    #[serde(default)]
    pub tests: Vec<ComparedTest>,
}

/// How many tests fall in each category.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CompareSummary {
    /// Failing in head, ran without failing in base.
    pub new_failures: i64,
    /// Failing in base, ran without failing in head.
    pub fixed: i64,
    /// Failing in both.
    pub still_failing: i64,
    /// In head only.
    pub added: i64,
    /// In base only.
    pub removed: i64,
    /// In both, failing in neither.
    pub unchanged: i64,
    /// Tests of the head launch whose status changed between attempts of one
    /// job (also counted in their category).
    pub flaky: i64,
}

/// The categories of [`ComparedTest::category`].
pub mod category {
    pub const NEW_FAILURE: &str = "newFailure";
    pub const FIXED: &str = "fixed";
    pub const STILL_FAILING: &str = "stillFailing";
    pub const ADDED: &str = "added";
    pub const REMOVED: &str = "removed";
    pub const UNCHANGED: &str = "unchanged";
    /// In the order they are shown.
    pub const ALL: [&str; 6] = [NEW_FAILURE, STILL_FAILING, FIXED, ADDED, REMOVED, UNCHANGED];
}

/// One test (one test case identity) in the two launches.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ComparedTest {
    /// `allure:<ALLURE_ID>`, `tcid:<testCaseId>`, `full:<fullName>` or `name:<name>`.
    pub identity: String,
    pub name: String,
    /// One of [`category`].
    pub category: String,
    /// Its status changed between attempts of one job of the head launch.
    pub flaky: bool,
    /// Each job's outcome in the base launch (empty: not in base).
    #[serde(default)]
    pub base: Vec<JobOutcome>,
    /// Each job's outcome in the head launch (empty: not in head).
    #[serde(default)]
    pub head: Vec<JobOutcome>,
}

/// A test's outcome in one job of a launch: the latest attempt's status and
/// every attempt's status, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobOutcome {
    /// `None` for results outside job runs (manual results, plain uploads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Id>,
    /// The job's name (`-` outside job runs).
    pub job: String,
    pub status: String,
    /// The latest attempt's result.
    pub result_id: Id,
    pub attempts: Vec<String>,
    /// Its status changed between attempts.
    pub flaky: bool,
}

/// `POST /api/launch/combine`: a new launch holding the results of these
/// launches (at least two, one project).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LaunchCombine {
    pub launch_ids: Vec<Id>,
    pub name: String,
}
