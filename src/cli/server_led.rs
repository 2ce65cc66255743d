//! Arguments of the server-led commands: test cases, jobs, plans and results.

use super::GateRuleArgs;

use clap::{Args, Subcommand};

/// Which test cases (all given criteria must match).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct FilterArgs {
    /// Label the cases carry, NAME=VALUE (repeatable; all must match)
    #[arg(long = "label", value_name = "NAME=VALUE")]
    pub(crate) labels: Vec<String>,
    /// Name or full name: a substring, or a glob with * and ?
    #[arg(long)]
    pub(crate) name_pattern: Option<String>,
    /// Last status (repeatable)
    #[arg(long = "status", value_parser = ["passed", "failed", "broken", "skipped", "unknown"])]
    pub(crate) status: Vec<String>,
}

/// The launch form of a server-led run.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct LaunchFormArgs {
    /// Name of the launch the run creates
    #[arg(long, required_unless_present = "launch_id", default_value = "")]
    pub(crate) launch_name: String,
    /// Add the run's job runs to this open launch instead of creating one
    #[arg(long)]
    pub(crate) launch_id: Option<i64>,
    /// Launch tag (repeatable)
    #[arg(long = "tag")]
    pub(crate) tags: Vec<String>,
    /// Issue key or URL, e.g. JIRA-1 (repeatable)
    #[arg(long = "issue")]
    pub(crate) issues: Vec<String>,
    /// Variable KEY=VALUE given to every triggered job (repeatable; wins over
    /// job parameters of the same name)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// Give a manual case to someone: CASE_ID=NAME (repeatable; over the
    /// plan's default assignees)
    #[arg(long = "assignee", value_name = "CASE=NAME")]
    pub(crate) assignees: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum TestcaseCmd {
    /// List test cases (learned from uploaded results)
    List {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, default_value_t = 100)]
        size: u32,
        #[arg(long, default_value_t = 0)]
        page: u32,
        /// Omit the header line in text output
        #[arg(long)]
        no_header: bool,
    },
    /// Run test cases in a new launch, each by its default executor job
    Run {
        /// Test case id (repeatable)
        #[arg(long = "case", required = true)]
        cases: Vec<i64>,
        #[command(flatten)]
        launch: LaunchFormArgs,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum JobCmd {
    /// List jobs with their configuration and what keeps them from running
    List {
        /// Omit the header line in text output
        #[arg(long)]
        no_header: bool,
    },
    /// Configure how the server triggers a job (only the given parts change)
    Configure(Box<JobConfigureArgs>),
}

#[derive(Args, Debug)]
pub(crate) struct JobConfigureArgs {
    /// Job id (see `onelaunch job list`)
    #[arg(required_unless_present = "uid")]
    pub(crate) id: Option<i64>,
    /// The job's uid (external id) instead of its id
    #[arg(long, conflicts_with = "id")]
    pub(crate) uid: Option<String>,
    /// Whether the server may ask this job to run tests
    #[arg(long, value_name = "true|false")]
    pub(crate) can_run_tests: Option<bool>,
    /// Build-server integration (`none` removes it)
    #[arg(long, value_parser = ["github", "gitlab", "jenkins", "command", "none"])]
    pub(crate) integration: Option<String>,
    /// Provider API base URL (GitHub default https://api.github.com, GitLab
    /// default https://gitlab.com; required for Jenkins)
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// GitHub owner/repo
    #[arg(long)]
    pub(crate) repository: Option<String>,
    /// GitHub workflow file, e.g. tests.yml
    #[arg(long)]
    pub(crate) workflow: Option<String>,
    /// Git ref the GitHub workflow or GitLab pipeline runs on
    #[arg(long = "ref")]
    pub(crate) git_ref: Option<String>,
    /// GitLab project id (or path)
    #[arg(long)]
    pub(crate) gitlab_project: Option<String>,
    /// Jenkins job path, folders separated by / (e.g. team/api-tests)
    #[arg(long)]
    pub(crate) job_path: Option<String>,
    /// Jenkins user (with the API token as credential)
    #[arg(long)]
    pub(crate) username: Option<String>,
    /// Shell command the server runs (`command` integration; admin token)
    #[arg(long)]
    pub(crate) command: Option<String>,
    /// Name of the environment variable holding the credential: GitHub token,
    /// GitLab trigger token, Jenkins API token, or the ALLURE_TOKEN given to a
    /// command. Stored write-only; never shown
    #[arg(long, value_name = "VAR")]
    pub(crate) credential_env: Option<String>,
    /// Parameter NAME=VALUE sent to every triggered run (repeatable; replaces
    /// the current parameters)
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub(crate) params: Vec<String>,
    /// Remove all parameters
    #[arg(long, conflicts_with = "params")]
    pub(crate) clear_params: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum PlanCmd {
    /// Create a test plan from test case ids and/or a filter
    Create {
        /// Name of the plan
        #[arg(long)]
        name: String,
        /// Test case id (repeatable)
        #[arg(long = "case")]
        cases: Vec<i64>,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// List test plans
    List,
    /// Show a test plan and the test cases it selects
    Show { id: i64 },
    /// Show who does which manual case of the plan by default; with
    /// CASE=NAME pairs, set them (an empty NAME takes the case back). Each run
    /// of the plan copies them into its launch (`plan run --assignee` overrides)
    Assign {
        id: i64,
        /// CASE_ID=NAME (zero or more)
        #[arg(value_name = "CASE=NAME")]
        assignments: Vec<String>,
    },
    /// Show the plan's quality-gate rules; with rules or --clear, replace them
    /// (they add to the project's: the strictest value of each applies)
    Gate {
        id: i64,
        #[command(flatten)]
        rules: GateRuleArgs,
        /// Remove every rule
        #[arg(long, conflicts_with_all = ["max_failures", "min_pass_rate", "min_tests", "all_job_runs", "all_planned", "no_new_failures", "failure_statuses"])]
        clear: bool,
    },
    /// Show which job runs which cases; with --job, --manual or --default,
    /// first change the executor of the cases given by --case and/or a filter
    Executors {
        id: i64,
        /// Test case id to change (repeatable)
        #[arg(long = "case")]
        cases: Vec<i64>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Run these cases by this job
        #[arg(long, conflicts_with_all = ["manual", "default"])]
        job: Option<i64>,
        /// Leave these cases to be run by hand
        #[arg(long, conflicts_with = "default")]
        manual: bool,
        /// Back to each case's default executor
        #[arg(long)]
        default: bool,
    },
    /// Run a test plan: one new launch, one job run per executor job, jobs
    /// triggered; prints the launch id
    Run {
        id: i64,
        #[command(flatten)]
        launch: LaunchFormArgs,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ResultCmd {
    /// Record a manual result in a launch (outside any job run)
    Manual {
        #[arg(long, env = "ALLURE_LAUNCH_ID")]
        launch_id: i64,
        /// Test case id
        #[arg(long = "case", required_unless_present = "name")]
        case: Option<i64>,
        /// Test case name (the case is created when it does not exist)
        #[arg(long, conflicts_with = "case")]
        name: Option<String>,
        #[arg(long, value_parser = ["passed", "failed", "broken", "skipped", "unknown"])]
        status: String,
        /// The tester's comment
        #[arg(long, visible_alias = "comment")]
        message: Option<String>,
        /// Who recorded the result (free text)
        #[arg(long)]
        assignee: Option<String>,
        /// How long the check took, in milliseconds
        #[arg(long = "duration-ms")]
        duration_ms: Option<i64>,
        /// Attach a file to the result (repeatable)
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<std::path::PathBuf>,
    },
    /// Give manual cases of a launch to people (an empty NAME takes one back)
    Assign {
        #[arg(long, env = "ALLURE_LAUNCH_ID")]
        launch_id: i64,
        /// CASE_ID=NAME (one or more)
        #[arg(required = true, value_name = "CASE=NAME")]
        assignments: Vec<String>,
    },
    /// List a launch's manual cases with assignee and status, and the
    /// progress per assignee
    List {
        #[arg(long, env = "ALLURE_LAUNCH_ID")]
        launch_id: i64,
        /// Only this assignee's cases
        #[arg(long)]
        assignee: Option<String>,
        /// Only the cases without a result yet
        #[arg(long, conflicts_with = "done")]
        left: bool,
        /// Only the cases with a result
        #[arg(long)]
        done: bool,
    },
    /// Show a launch's automated and manual results apart
    Summary {
        #[arg(long, env = "ALLURE_LAUNCH_ID")]
        launch_id: i64,
    },
}
