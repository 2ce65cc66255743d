//! The launch-wide quality gate: its rules and what it measured (onelaunch
//! extension). Rules come from the project (defaults an admin sets), from the
//! plan a server-led launch was created from, and from the command line; where
//! several give the same rule, the strictest value applies, so no source can
//! loosen another.

use serde::{Deserialize, Serialize};

use crate::{Id, STATUSES};

/// Statuses that count as failure when a rule set does not say.
pub const DEFAULT_FAILURE_STATUSES: [&str; 2] = ["failed", "broken"];

/// Rules of a quality gate. An absent rule is not checked.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GateRules {
    /// Most tests whose final status (latest attempt, after retries) counts as
    /// failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<i64>,
    /// Least share of passed tests among the tests that ran (skipped ones left
    /// out), in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pass_rate: Option<f64>,
    /// Least number of tests in the launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tests: Option<i64>,
    /// Every expected job run started and finished, none failed to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_job_runs: Option<bool>,
    /// Every planned test of a server-led launch reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_planned: Option<bool>,
    /// No test that passed in the previous closed launch of the same name now
    /// fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_new_failures: Option<bool>,
    /// Statuses that count as failure (default `failed`, `broken`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_statuses: Option<Vec<String>>,
}

impl GateRules {
    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        self.max_failures.is_none()
            && self.min_pass_rate.is_none()
            && self.min_tests.is_none()
            && self.all_job_runs.is_none()
            && self.all_planned.is_none()
            && self.no_new_failures.is_none()
    }

    /// Checks every value, naming the field and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(n) = self.max_failures {
            if n < 0 {
                return Err(format!("field `maxFailures`: expected 0 or more, got {n}"));
            }
        }
        if let Some(p) = self.min_pass_rate {
            if !(0.0..=100.0).contains(&p) {
                return Err(format!(
                    "field `minPassRate`: expected a percentage from 0 to 100, got {p}"
                ));
            }
        }
        if let Some(n) = self.min_tests {
            if n < 0 {
                return Err(format!("field `minTests`: expected 0 or more, got {n}"));
            }
        }
        if let Some(statuses) = &self.failure_statuses {
            if statuses.is_empty() {
                return Err("field `failureStatuses`: expected at least one status".into());
            }
            if let Some(s) = statuses.iter().find(|s| !STATUSES.contains(&s.as_str())) {
                return Err(format!(
                    "field `failureStatuses`: expected statuses among {}, got {s:?}",
                    STATUSES.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The statuses that count as failure.
    pub fn failure_statuses(&self) -> Vec<String> {
        match &self.failure_statuses {
            Some(s) if !s.is_empty() => s.clone(),
            _ => DEFAULT_FAILURE_STATUSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// Both rule sets at once, each rule at its strictest: the lower maximum,
    /// the higher minimum, a check that either asks for, and the failure
    /// statuses of both.
    pub fn stricter(&self, other: &GateRules) -> GateRules {
        fn min<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(x), Some(y)) => Some(if y < x { y } else { x }),
                (x, y) => x.or(y),
            }
        }
        fn max<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(x), Some(y)) => Some(if y > x { y } else { x }),
                (x, y) => x.or(y),
            }
        }
        let either = |a: Option<bool>, b: Option<bool>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(false) || b.unwrap_or(false)),
        };
        // A set that names no statuses keeps the defaults in force.
        let failure_statuses = match (&self.failure_statuses, &other.failure_statuses) {
            (None, None) => None,
            _ => {
                let mut all: Vec<String> = Vec::new();
                for s in self
                    .failure_statuses()
                    .into_iter()
                    .chain(other.failure_statuses())
                {
                    if !all.contains(&s) {
                        all.push(s);
                    }
                }
                Some(all)
            }
        };
        GateRules {
            max_failures: min(self.max_failures, other.max_failures),
            min_pass_rate: max(self.min_pass_rate, other.min_pass_rate),
            min_tests: max(self.min_tests, other.min_tests),
            all_job_runs: either(self.all_job_runs, other.all_job_runs),
            all_planned: either(self.all_planned, other.all_planned),
            no_new_failures: either(self.no_new_failures, other.no_new_failures),
            failure_statuses,
        }
    }
}

/// One rule of a gate: what it asks, what was measured, and whether it holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GateOutcome {
    /// `maxFailures`, `minPassRate`, `minTests`, `allJobRuns`, `allPlanned`,
    /// `noNewFailures`.
    pub rule: String,
    /// The threshold, as text (`≤ 0`, `≥ 95%`, `all`, `none`).
    pub expected: String,
    /// The measured value, as text.
    pub actual: String,
    pub passed: bool,
    /// What broke it: the failing tests, missing job runs or planned tests
    /// (at most [`MAX_GATE_DETAILS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// Most details a rule lists.
pub const MAX_GATE_DETAILS: usize = 20;

/// A failed rule the Allure 3 TestOps plugin reported for a launch
/// (`POST /api/launch/quality-gate/bulk`), kept as sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AllureGateItem {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_env_id: Option<Id>,
}

/// `GET /api/launch/{id}/gate`: the gate of a launch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GateReport {
    pub launch_id: Id,
    /// All rules hold (and the Allure plugin reported no failed rule).
    pub passed: bool,
    /// The rules that were checked (the strictest of every source).
    pub rules: GateRules,
    pub outcomes: Vec<GateOutcome>,
    /// Failed rules reported by the Allure 3 TestOps plugin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allure: Vec<AllureGateItem>,
    /// When it was measured (epoch ms).
    pub evaluated_date: i64,
    /// Whether the launch was closed when it was measured (the verdict stored
    /// at close is final).
    pub launch_closed: bool,
}

impl GateReport {
    /// The rules that do not hold, as `rule: actual (expected)` lines.
    pub fn broken(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .outcomes
            .iter()
            .filter(|o| !o.passed)
            .map(|o| format!("{}: {} (expected {})", o.rule, o.actual, o.expected))
            .collect();
        out.extend(self.allure.iter().map(|a| match &a.message {
            Some(m) => format!("allure {}: {m}", a.name),
            None => format!("allure {}", a.name),
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strictest_value_of_each_rule_applies() {
        let project = GateRules {
            max_failures: Some(3),
            min_pass_rate: Some(90.0),
            all_job_runs: Some(true),
            ..Default::default()
        };
        let cli = GateRules {
            max_failures: Some(10),
            min_pass_rate: Some(95.0),
            min_tests: Some(5),
            all_job_runs: Some(false),
            failure_statuses: Some(vec!["unknown".into()]),
            ..Default::default()
        };
        let both = project.stricter(&cli);
        assert_eq!(both.max_failures, Some(3));
        assert_eq!(both.min_pass_rate, Some(95.0));
        assert_eq!(both.min_tests, Some(5));
        assert_eq!(both.all_job_runs, Some(true));
        assert_eq!(both.no_new_failures, None);
        assert_eq!(
            both.failure_statuses.unwrap(),
            vec!["failed", "broken", "unknown"],
            "the project's defaults stay in force"
        );
        assert_eq!(cli.stricter(&project).max_failures, Some(3));
    }

    #[test]
    fn bad_rules_name_their_field() {
        let bad = GateRules {
            min_pass_rate: Some(120.0),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("minPassRate"));
        let bad = GateRules {
            failure_statuses: Some(vec!["red".into()]),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("\"red\""));
        assert!(GateRules::default().is_empty());
    }
}
