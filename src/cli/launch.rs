//! Arguments of the `launch` subcommands that analyse and act on a whole
//! launch: `compare`, `combine`, `rerun`, `gate` (and the gate rules that
//! `project gate` and `plan gate` take too).

use clap::Args;

/// `launch compare`.
#[derive(Args, Debug)]
pub(crate) struct CompareArgs {
    /// The launch compared against (e.g. the previous release)
    pub(crate) base: i64,
    /// The launch judged
    pub(crate) head: i64,
}

/// `launch combine`.
#[derive(Args, Debug)]
pub(crate) struct CombineArgs {
    /// The launches to combine (at least two, of one project)
    #[arg(required = true, num_args = 2..)]
    pub(crate) ids: Vec<i64>,
    /// Name of the combined launch
    #[arg(long)]
    pub(crate) launch_name: String,
}

/// `launch rerun`: which tests (criteria all hold; at least one is needed).
#[derive(Args, Debug)]
pub(crate) struct RerunArgs {
    /// The launch (default: $ALLURE_LAUNCH_ID)
    #[arg(env = "ALLURE_LAUNCH_ID")]
    pub(crate) id: i64,
    /// Tests whose latest attempt failed or is broken
    #[arg(long)]
    pub(crate) failed: bool,
    /// Tests whose latest attempt has this status (repeatable)
    #[arg(long, num_args = 1.., value_name = "STATUS")]
    pub(crate) status: Vec<String>,
    /// Tests of this test case (repeatable)
    #[arg(long = "case", value_name = "ID")]
    pub(crate) cases: Vec<i64>,
    /// Tests carrying this label NAME=VALUE (repeatable; all must match)
    #[arg(long = "label", value_name = "NAME=VALUE")]
    pub(crate) labels: Vec<String>,
    /// Tests produced by this job (repeatable)
    #[arg(long = "job", value_name = "ID")]
    pub(crate) jobs: Vec<i64>,
    /// Variable KEY=VALUE given to every triggered job (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
}

/// `launch gate`.
#[derive(Args, Debug)]
pub(crate) struct GateArgs {
    /// The launch (default: $ALLURE_LAUNCH_ID)
    #[arg(env = "ALLURE_LAUNCH_ID")]
    pub(crate) id: i64,
    #[command(flatten)]
    pub(crate) rules: GateRuleArgs,
    /// Wait until the launch is closed (the verdict stored at close is final)
    #[arg(long)]
    pub(crate) wait: bool,
    /// With --wait: judge the launch as it stands after this long (e.g. 30s, 10m)
    #[arg(long, default_value = "10m", value_parser = crate::duration::parse, requires = "wait")]
    pub(crate) timeout: std::time::Duration,
}

/// Quality-gate rules. Given to `launch gate` they add to the project's and
/// plan's rules (the strictest value of each applies); given to `project
/// gate` or `plan gate` they replace that owner's rules.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct GateRuleArgs {
    /// Most tests whose final status (after retries) counts as failure
    #[arg(long)]
    pub(crate) max_failures: Option<i64>,
    /// Least share of passed tests among those that ran (skipped left out), in percent
    #[arg(long)]
    pub(crate) min_pass_rate: Option<f64>,
    /// Least number of tests in the launch
    #[arg(long)]
    pub(crate) min_tests: Option<i64>,
    /// Every expected job run started and finished
    #[arg(long)]
    pub(crate) all_job_runs: bool,
    /// Every planned test of a server-led launch reported
    #[arg(long)]
    pub(crate) all_planned: bool,
    /// No test that passed in the previous closed launch of the same name fails now
    #[arg(long)]
    pub(crate) no_new_failures: bool,
    /// Statuses that count as failure, comma-separated (default: failed,broken)
    #[arg(long, value_delimiter = ',')]
    pub(crate) failure_statuses: Vec<String>,
}

impl GateRuleArgs {
    pub(crate) fn to_rules(&self) -> onelaunch_api::GateRules {
        let flag = |b: bool| b.then_some(true);
        onelaunch_api::GateRules {
            max_failures: self.max_failures,
            min_pass_rate: self.min_pass_rate,
            min_tests: self.min_tests,
            all_job_runs: flag(self.all_job_runs),
            all_planned: flag(self.all_planned),
            no_new_failures: flag(self.no_new_failures),
            failure_statuses: (!self.failure_statuses.is_empty()).then(|| {
                self.failure_statuses
                    .iter()
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect()
            }),
        }
    }
}
