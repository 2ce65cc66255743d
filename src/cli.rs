//! Command-line definitions (allurectl-compatible names, flags and `ALLURE_*`
//! variables). Precedence: flags > environment > config file > defaults; CI
//! detection fills what is still unset.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod launch;
mod server_led;

pub(crate) use launch::*;
pub(crate) use server_led::*;

#[derive(Parser, Debug)]
#[command(
    name = "onelaunch",
    version,
    about = "One launch for all your CI pipelines: an allurectl-compatible CLI and a TestOps-compatible server",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 some files refused (the rest uploaded), \
                  4 server unreachable, 5 not authorised, 6 launch closed, 7 not found, \
                  8 spooled (server unreachable; run `onelaunch upload --resume`). See README."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Args, Clone)]
pub(crate) struct Global {
    /// Server URL, e.g. https://onelaunch.example.com
    #[arg(long, short = 'e', env = "ALLURE_ENDPOINT", global = true)]
    pub(crate) endpoint: Option<String>,
    /// API token (never printed)
    #[arg(
        long,
        short = 't',
        env = "ALLURE_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,
    /// Project id
    #[arg(long, short = 'p', env = "ALLURE_PROJECT_ID", global = true)]
    pub(crate) project_id: Option<i64>,
    /// Output format of commands that print data
    #[arg(long, short = 'o', value_enum, global = true, default_value = "text")]
    pub(crate) output: Output,
    /// Config file (TOML: endpoint, token, project_id); default ~/.config/onelaunch/config.toml
    #[arg(long, env = "ONELAUNCH_CONFIG", global = true)]
    pub(crate) config: Option<PathBuf>,
    /// HTTP timeout per request: seconds (`30`) or a duration (`30s`, `1m`, `1h`)
    #[arg(long, env = "ALLURE_HTTP_TIMEOUT", global = true, default_value = "30s", value_parser = crate::duration::parse)]
    pub(crate) http_timeout: std::time::Duration,
    /// Print only errors on stderr (progress, links and notices are left
    /// out); what a command prints on stdout is unchanged
    #[arg(long, global = true)]
    pub(crate) silent: bool,
    /// Also trust the CA certificates in this PEM file for the server's TLS
    /// certificate (on top of the system trust store and SSL_CERT_FILE/SSL_CERT_DIR)
    #[arg(long, env = "ALLURE_CA_CERT", global = true, value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Do not verify the server's TLS certificate (testing only; prints a warning)
    #[arg(
        long,
        env = "ALLURE_INSECURE",
        global = true,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(crate) insecure: Option<bool>,
    /// Colours: `auto` (on a terminal, unless NO_COLOR is set), `always`, `never`
    /// (no escape sequence at all)
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub(crate) color: ColorChoice,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Global")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("project_id", &self.project_id)
            .field("output", &self.output)
            .field("ca_cert", &self.ca_cert)
            .field("insecure", &self.insecure)
            .field("color", &self.color)
            .finish()
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Text,
    Json,
    /// Markdown (for CI job summaries); `launch show` only, others print text
    Markdown,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the onelaunch server
    Server(ServerArgs),
    /// Create, close, reopen, list and show launches
    #[command(subcommand)]
    Launch(LaunchCmd),
    /// Start, stop and describe the job run of this CI job
    #[command(subcommand, name = "job-run")]
    JobRun(JobRunCmd),
    /// Upload Allure results (and JUnit XML) into a launch
    Upload(UploadArgs),
    /// Run a test command and upload its results while it runs
    Watch(WatchArgs),
    /// Manage projects and project tokens (admin token)
    #[command(subcommand)]
    Project(ProjectCmd),
    /// List, create and revoke API tokens (admin token)
    #[command(subcommand)]
    Token(TokenCmd),
    /// Test cases learned from uploads: list them, run a selection
    #[command(subcommand)]
    Testcase(TestcaseCmd),
    /// Jobs: list them, configure how the server triggers them
    #[command(subcommand)]
    Job(JobCmd),
    /// Test plans: create, show, executors, run (server-led launches)
    #[command(subcommand)]
    Plan(PlanCmd),
    /// Manual results of a launch
    #[command(subcommand)]
    Result(ResultCmd),
    /// allurectl `ci env`: the job run's variables (same as `job-run env`)
    #[command(subcommand)]
    Ci(CiCmd),
    /// allurectl `auth login`: check the endpoint and token (onelaunch keeps
    /// no login: set ALLURE_ENDPOINT/ALLURE_TOKEN or use --config)
    #[command(subcommand)]
    Auth(AuthCmd),
}

/// `ci …` (allurectl spelling).
#[derive(Subcommand, Debug)]
pub(crate) enum CiCmd {
    /// Print the job run's variables, as `job-run env` does (`ci env set`
    /// prints the same)
    Env {
        /// allurectl's `ci env set`: prints the same variables
        #[arg(value_parser = ["set"])]
        set: Option<String>,
        #[command(flatten)]
        args: JobRunEnvArgs,
    },
}

/// `auth …` (allurectl spelling).
#[derive(Subcommand, Debug)]
pub(crate) enum AuthCmd {
    /// Check that the endpoint answers and accepts the token
    Login,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ServerArgs {
    #[command(subcommand)]
    pub(crate) action: Option<ServerAction>,
    /// Address to listen on
    #[arg(long, env = "ONELAUNCH_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Data directory: the SQLite database and stored attachments
    #[arg(long, env = "ONELAUNCH_DATA", default_value = "./onelaunch-data")]
    pub(crate) data: PathBuf,
    /// Database URL (sqlite://… or postgres://…); overrides --data for the database
    #[arg(long, env = "ONELAUNCH_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// Base URL for links the server returns (default: http://<listen address>)
    #[arg(long, env = "ONELAUNCH_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// The first admin API token (at least 20 characters), created only when
    /// the database has no admin token yet; ignored afterwards
    #[arg(long, env = "ONELAUNCH_INIT_TOKEN", hide_env_values = true)]
    pub(crate) init_token: Option<String>,
    /// Close launches with no activity (start, stop, session, results) for
    /// longer than this, e.g. 2h or 30m (off by default)
    #[arg(long, env = "ONELAUNCH_LAUNCH_IDLE_CLOSE", value_parser = crate::duration::parse)]
    pub(crate) launch_idle_close: Option<std::time::Duration>,
    /// An upload session open (an upload in flight) with no activity for
    /// longer than this counts as abandoned: `launch close --wait` stops
    /// waiting for it (default 1h)
    #[arg(long, env = "ONELAUNCH_UPLOAD_SESSION_TIMEOUT", value_parser = crate::duration::parse)]
    pub(crate) upload_session_timeout: Option<std::time::Duration>,
    /// Free space the data directory must keep for an attachment body to be
    /// taken (room for the database to write), e.g. 64MiB, 1GiB, 0 for none;
    /// below it uploads are answered 503 `storage_full` (default 64MiB)
    #[arg(long, env = "ONELAUNCH_MIN_FREE_SPACE", value_name = "SIZE", value_parser = parse_size)]
    pub(crate) min_free_space: Option<u64>,
    /// `Retry-After` of a 503 `storage_full` answer (default 30s)
    #[arg(long, env = "ONELAUNCH_STORAGE_FULL_RETRY_AFTER", value_parser = crate::duration::parse)]
    pub(crate) storage_full_retry_after: Option<std::time::Duration>,
    /// Key file for credentials stored encrypted (created on first start;
    /// replicas must use the same key). Default: <data>/secret.key
    #[arg(long, env = "ONELAUNCH_SECRET_KEY_FILE")]
    pub(crate) secret_key_file: Option<PathBuf>,
    /// A host (name or IP address) project tokens may set as a job's
    /// integration URL (repeatable; the variable takes a comma-separated
    /// list). Other URLs need an admin token; GitHub and GitLab without a URL
    /// (api.github.com, gitlab.com) are always allowed
    #[arg(
        long = "allow-integration-host",
        value_name = "HOST",
        env = "ONELAUNCH_ALLOW_INTEGRATION_HOSTS",
        value_delimiter = ','
    )]
    pub(crate) allow_integration_hosts: Vec<String>,
    /// Open connections at most (default: the open-file limit minus headroom);
    /// at the limit the connection waiting longest for its request is closed
    #[arg(long, env = "ONELAUNCH_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// Time a connection has to send a complete request header, after it
    /// connects or after its previous answer; also the longest pause within a
    /// request body (default 20s)
    #[arg(long, env = "ONELAUNCH_HEADER_TIMEOUT", value_parser = crate::duration::parse)]
    pub(crate) header_timeout: Option<std::time::Duration>,
    /// Failed authentication attempts (unknown tokens) allowed per client
    /// address within --auth-failure-window; then 429 until the window ends (0: off)
    #[arg(long, env = "ONELAUNCH_AUTH_MAX_FAILURES", default_value_t = 10)]
    pub(crate) auth_max_failures: u32,
    /// The window of --auth-max-failures
    #[arg(long, env = "ONELAUNCH_AUTH_FAILURE_WINDOW", default_value = "5m", value_parser = crate::duration::parse)]
    pub(crate) auth_failure_window: std::time::Duration,
    /// Count failed attempts per the last X-Forwarded-For address (only behind
    /// a reverse proxy that sets it and is the sole way in)
    #[arg(long, env = "ONELAUNCH_TRUST_FORWARDED_FOR")]
    pub(crate) trust_forwarded_for: bool,
    /// Start even though job credentials are stored sealed with a key this
    /// server does not have: clear them (each must be configured again)
    #[arg(long)]
    pub(crate) forget_stored_credentials: bool,
    /// Log lines as text (coloured only on a terminal) or as JSON, one object
    /// a line (docs/observability.md)
    #[arg(long, env = "ONELAUNCH_LOG_FORMAT", value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// /metrics answers only an admin token (by default it needs none: it
    /// shows counts, never a project, launch or token)
    #[arg(long, env = "ONELAUNCH_METRICS_REQUIRE_ADMIN")]
    pub(crate) metrics_require_admin: bool,
    /// How often projects' retention runs (deleting old closed launches;
    /// `project retention`)
    #[arg(long, env = "ONELAUNCH_RETENTION_INTERVAL", default_value = "1h", value_parser = crate::duration::parse)]
    pub(crate) retention_interval: std::time::Duration,
}

/// Where a server keeps its data (`server backup|restore`).
#[derive(Args, Debug)]
pub(crate) struct ServerData {
    /// Data directory: the SQLite database, attachments, the secret key
    #[arg(long, env = "ONELAUNCH_DATA", default_value = "./onelaunch-data")]
    pub(crate) data: PathBuf,
    /// Database URL (sqlite://… or postgres://…); overrides --data for the database
    #[arg(long, env = "ONELAUNCH_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// The key file of stored credentials (default <data>/secret.key)
    #[arg(long, env = "ONELAUNCH_SECRET_KEY_FILE")]
    pub(crate) secret_key_file: Option<PathBuf>,
    /// Replace what the target directory holds
    #[arg(long)]
    pub(crate) force: bool,
}

/// `server --log-format`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ServerAction {
    /// Copy a SQLite database into a new PostgreSQL database (ids, history and
    /// attachment references preserved; keep the same --data directory for the
    /// attachment bytes)
    Migrate {
        /// Source, e.g. sqlite://./onelaunch-data/onelaunch.db
        #[arg(long)]
        from: String,
        /// Target, e.g. postgres://user@db-host/onelaunch (an empty database)
        #[arg(long)]
        to: String,
    },
    /// Find blob files no row references (and temporary files older than an
    /// hour) in the data directory and remove them; safe while servers run
    Gc {
        /// Data directory (the SQLite database and the blobs)
        #[arg(long, env = "ONELAUNCH_DATA", default_value = "./onelaunch-data")]
        data: PathBuf,
        /// Database URL (sqlite://… or postgres://…); overrides --data for the database
        #[arg(long, env = "ONELAUNCH_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Only list what would be removed
        #[arg(long)]
        dry_run: bool,
    },
    /// Create a new admin API token directly in the database and print it once
    /// (recovery when no admin token works any more; needs the server's
    /// database, not a token)
    AdminToken {
        /// Data directory (the SQLite database)
        #[arg(long, env = "ONELAUNCH_DATA", default_value = "./onelaunch-data")]
        data: PathBuf,
        /// Database URL (sqlite://… or postgres://…); overrides --data
        #[arg(long, env = "ONELAUNCH_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Name of the new token
        #[arg(long, default_value = "recovery")]
        name: String,
    },
    /// Back up a server while it runs: the database (SQLite: a consistent
    /// copy; PostgreSQL: the pg_dump command to run), attachments, the
    /// secret key and a manifest (see docs/backup.md)
    Backup {
        /// An empty directory for the backup
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        data: ServerData,
    },
    /// Restore a backup into an empty data directory (the server stopped)
    Restore {
        /// A directory written by `server backup`
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        data: ServerData,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum LaunchCmd {
    /// Create a launch
    Create(LaunchCreateArgs),
    /// Close a launch (idempotent; any participant may call it)
    Close {
        id: i64,
        /// Wait until every job run of the launch is finished (and every
        /// expected one started) before closing
        #[arg(long)]
        wait: bool,
        /// With --wait: close anyway after this long, naming the job runs that
        /// never reported (e.g. 30s, 10m, 1h)
        #[arg(long, default_value = "10m", value_parser = crate::duration::parse, requires = "wait")]
        timeout: std::time::Duration,
    },
    /// Reopen a closed launch
    Reopen { id: i64 },
    /// Delete launches with their results and the attachment bytes nothing
    /// else references (no confirmation asked; prints what was removed)
    Delete {
        /// One or more launch ids
        #[arg(required = true, num_args = 1..)]
        ids: Vec<i64>,
        /// Delete even while a job run is unfinished or an upload session open
        #[arg(long)]
        force: bool,
    },
    /// List launches, newest first
    List {
        #[arg(long, default_value_t = 20)]
        size: u32,
        #[arg(long, default_value_t = 0)]
        page: u32,
        /// Omit the header line in text output
        #[arg(long)]
        no_header: bool,
    },
    /// Show a launch: counts by status and job runs
    Show { id: i64 },
    /// Judge a launch by its quality gate: each rule with its measured value;
    /// exit 10 when one does not hold
    Gate(GateArgs),
    /// Run selected tests of a launch again, into the same launch: one new job
    /// run per job that produced them (reopens a closed launch)
    Rerun(RerunArgs),
    /// Compare two launches test by test (matched by test case, whichever job
    /// ran them): new failures, fixed, still failing, flaky, added, removed
    Compare(CompareArgs),
    /// Combine launches (e.g. of several pipelines) into a new launch; the
    /// sources stay as they are and link to it
    Combine(CombineArgs),
}

#[derive(Args, Debug)]
pub(crate) struct LaunchCreateArgs {
    #[arg(long, env = "ALLURE_LAUNCH_NAME")]
    pub(crate) launch_name: String,
    /// Comma-separated tags, e.g. "smoke, nightly"
    #[arg(long, env = "ALLURE_LAUNCH_TAGS")]
    pub(crate) launch_tags: Option<String>,
    /// Print only this field (ID) of the created launch
    #[arg(long, value_enum)]
    pub(crate) format: Option<IdFormat>,
    /// Omit the header line in text output
    #[arg(long)]
    pub(crate) no_header: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdFormat {
    #[value(name = "ID", alias = "id")]
    Id,
}

/// Identity of this CI job and job run; detected from the variables of GitHub
/// Actions, GitLab CI, Jenkins, Azure Pipelines, CircleCI, Bitbucket
/// Pipelines, Buildkite, TeamCity, Bamboo or Tekton when not given.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct CiArgs {
    /// CI type (github, gitlab, jenkins, azure, circleci, bitbucket, buildkite,
    /// teamcity, bamboo, tekton, or any name for a generic CI)
    #[arg(long, env = "ALLURE_CI_TYPE")]
    pub(crate) ci_type: Option<String>,
    #[arg(long, env = "ALLURE_CI_ENDPOINT")]
    pub(crate) ci_endpoint: Option<String>,
    #[arg(long, env = "ALLURE_JOB_UID")]
    pub(crate) job_uid: Option<String>,
    #[arg(long, env = "ALLURE_JOB_NAME")]
    pub(crate) job_name: Option<String>,
    #[arg(long, env = "ALLURE_JOB_URL")]
    pub(crate) job_url: Option<String>,
    #[arg(long, env = "ALLURE_JOB_RUN_UID")]
    pub(crate) job_run_uid: Option<String>,
    #[arg(long, env = "ALLURE_JOB_RUN_NAME")]
    pub(crate) job_run_name: Option<String>,
    /// Link to this pipeline's run in its CI. Not read from
    /// ALLURE_JOB_RUN_URL: that names the shared job run's onelaunch page
    #[arg(long, env = "ONELAUNCH_JOB_RUN_URL")]
    pub(crate) job_run_url: Option<String>,
    #[arg(long, env = "ALLURE_JOB_RUN_BRANCH")]
    pub(crate) job_run_branch: Option<String>,
    /// Names this execution of the CI job within its job run, e.g. a matrix
    /// leg; appended to the detected one (GitHub job and attempt, GitLab job id,
    /// Jenkins build number and stage). JUnit results are keyed on it.
    #[arg(long, env = "ONELAUNCH_CI_EXECUTION")]
    pub(crate) ci_execution: Option<String>,
}

/// Which launch to use or create.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct LaunchArgs {
    /// Join this launch instead of creating one
    #[arg(long, env = "ALLURE_LAUNCH_ID")]
    pub(crate) launch_id: Option<i64>,
    /// Name of the launch to create
    #[arg(long, env = "ALLURE_LAUNCH_NAME")]
    pub(crate) launch_name: Option<String>,
    /// Comma-separated tags of the launch to create
    #[arg(long, env = "ALLURE_LAUNCH_TAGS")]
    pub(crate) launch_tags: Option<String>,
    /// Reopen the launch if it is closed instead of failing
    #[arg(long, env = "ALLURE_REOPEN_CLOSED_LAUNCH")]
    pub(crate) reopen_closed_launch: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum JobRunCmd {
    /// Create (or join) the launch and this CI job's job run
    Start {
        #[command(flatten)]
        ci: CiArgs,
        #[command(flatten)]
        launch: LaunchArgs,
        /// Declare that the launch expects this many job runs in all; `launch
        /// show` names the missing ones and `launch close --wait` waits for them
        #[arg(long, env = "ALLURE_EXPECTED_JOB_RUNS")]
        expect: Option<u32>,
    },
    /// Print the job run's variables for `export $(onelaunch job-run env)`
    Env(JobRunEnvArgs),
    /// Finish the job run
    Stop {
        #[arg(long, env = "ALLURE_JOB_RUN_ID")]
        job_run_id: Option<i64>,
        #[command(flatten)]
        ci: CiArgs,
        /// Final status; derived from the results when omitted
        #[arg(long, value_parser = ["passed", "failed", "cancelled", "unknown"])]
        status: Option<String>,
    },
    /// Write the job run's test plan (testplan.json); without a job run id,
    /// that of this CI job (after `job-run start`)
    Plan {
        #[arg(long, env = "ALLURE_JOB_RUN_ID")]
        job_run_id: Option<i64>,
        #[command(flatten)]
        ci: CiArgs,
        #[arg(long, env = "ALLURE_TESTPLAN_PATH", default_value = "testplan.json")]
        output_file: PathBuf,
    },
}

/// `job-run env` and `ci env`.
#[derive(Args, Debug)]
pub(crate) struct JobRunEnvArgs {
    #[arg(long, env = "ALLURE_JOB_RUN_ID")]
    pub(crate) job_run_id: Option<i64>,
    #[command(flatten)]
    pub(crate) ci: CiArgs,
    /// export: KEY=VALUE lines safe for `export $(…)` (values that would be
    /// split are %-encoded); shell: `export KEY='value'` for eval; dotenv:
    /// GitLab dotenv report; github: $GITHUB_ENV; github-output: step
    /// outputs for $GITHUB_OUTPUT; json
    #[arg(long, value_enum, default_value = "export")]
    pub(crate) format: EnvFormat,
    /// Append to this file instead of printing (e.g. "$GITHUB_ENV")
    #[arg(long)]
    pub(crate) output_file: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EnvFormat {
    Export,
    Shell,
    Dotenv,
    Github,
    /// GitHub step outputs: launch_id, launch_url, launch_name, job_run_id, job_run_url
    GithubOutput,
    Json,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct UploadOpts {
    /// Upload into this job run (set when the launch was created upstream)
    #[arg(long, env = "ALLURE_JOB_RUN_ID")]
    pub(crate) job_run_id: Option<i64>,
    #[command(flatten)]
    pub(crate) launch: LaunchArgs,
    #[command(flatten)]
    pub(crate) ci: CiArgs,
    /// Requests in flight at once (`-l`/`--limit`: allurectl's older name)
    #[arg(
        long,
        short = 'l',
        visible_alias = "limit",
        default_value_t = onelaunch_client::upload::DEFAULT_CONCURRENCY
    )]
    pub(crate) concurrency: usize,
    /// Results per request, 1 to 1000 (the server writes each in one
    /// transaction at most: larger batches cost it less per result)
    #[arg(long, default_value_t = 500)]
    pub(crate) size: usize,
    /// Accepted for compatibility; does nothing: an upload never finishes its
    /// job run (`job-run stop` does; a job run only uploads created finishes
    /// when its last upload ends)
    #[arg(long, hide = true)]
    #[allow(dead_code)]
    pub(crate) no_stop: bool,
    /// allurectl's `--job-run-child` (this upload must not finish the job
    /// run): onelaunch uploads never do, so it changes nothing
    #[arg(long, hide = true)]
    #[allow(dead_code)]
    pub(crate) job_run_child: bool,
    /// allurectl's wait for server-side processing, e.g. 1800, 30m, 2h.
    /// onelaunch stores results as they arrive, so there is nothing to wait
    /// for: accepted with a notice (each request keeps --http-timeout)
    #[arg(long, env = "ALLURE_TIMEOUT", value_parser = crate::duration::parse)]
    pub(crate) timeout: Option<std::time::Duration>,
    /// allurectl: leave out attachments of passed tests. Not supported:
    /// accepted with a notice, every attachment is uploaded
    #[arg(long)]
    pub(crate) ignore_passed_test_attachments: bool,
    /// allurectl: skip files over the size limit instead of failing.
    /// onelaunch always uploads the rest and names each refused file (exit 3);
    /// accepted with a notice
    #[arg(long)]
    pub(crate) skip_too_big: bool,
    /// Where to keep what could not be delivered when the server stays
    /// unreachable (default: .onelaunch-spool in the results directory)
    #[arg(long, env = "ONELAUNCH_SPOOL", value_name = "DIR")]
    pub(crate) spool: Option<PathBuf>,
    /// Finding no results is not an error: exit 0 (nothing is created on the
    /// server) instead of exit code 9
    #[arg(long)]
    pub(crate) allow_empty: bool,
}

#[derive(Args, Debug)]
pub(crate) struct UploadArgs {
    /// Result directories, files or glob patterns (default: $ALLURE_RESULTS)
    pub(crate) paths: Vec<PathBuf>,
    #[arg(long, env = "ALLURE_RESULTS", hide = true)]
    pub(crate) results_env: Option<PathBuf>,
    /// Send what an earlier upload kept in its spool (--spool, or the default
    /// spool of the results directory), then remove the spool
    #[arg(long)]
    pub(crate) resume: bool,
    #[command(flatten)]
    pub(crate) opts: UploadOpts,
}

#[derive(Args, Debug)]
pub(crate) struct WatchArgs {
    /// The directory the test command writes results into
    #[arg(long, env = "ALLURE_RESULTS")]
    pub(crate) results: PathBuf,
    /// Seconds between scans of the results directory
    #[arg(long, default_value_t = 1.0)]
    pub(crate) interval: f64,
    /// A failing upload never changes the exit code: it is reported as a
    /// warning and `watch` exits with the test command's code
    #[arg(long)]
    pub(crate) continue_on_error: bool,
    #[command(flatten)]
    pub(crate) opts: UploadOpts,
    /// The test command
    #[arg(last = true, required = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCmd {
    /// List every token: id, name, project, created, expires, last used, state
    /// (never a secret)
    List,
    /// Create a token and print its secret once (stdout; the rest on stderr)
    #[command(group(clap::ArgGroup::new("scope").required(true).args(["project", "admin"])))]
    Create {
        /// Name of the token (e.g. what uses it)
        #[arg(long)]
        name: String,
        /// Limit the token to this project
        #[arg(long, value_name = "ID")]
        project: Option<i64>,
        /// An admin token (every project; manages the server)
        #[arg(long)]
        admin: bool,
        /// The token expires after this many days (default: never)
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<i64>,
    },
    /// Revoke a token: refused at once by every server replica
    Revoke { id: i64 },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ProjectCmd {
    /// Create a project
    Create { name: String },
    /// Create an API token scoped to a project (printed once)
    Token { id: i64 },
    /// Show the project's quality-gate rules; with rules or --clear, replace
    /// them (admin token)
    Gate {
        /// The project (default: --project-id)
        id: Option<i64>,
        #[command(flatten)]
        rules: GateRuleArgs,
        /// Remove every rule
        #[arg(long, conflicts_with_all = ["max_failures", "min_pass_rate", "min_tests", "all_job_runs", "all_planned", "no_new_failures", "failure_statuses"])]
        clear: bool,
    },
    /// Show the project's retention; with --days/--launches set it, --off
    /// removes it (admin token). The server deletes closed launches older
    /// than --days or beyond the newest --launches
    Retention {
        /// The project (default: --project-id)
        id: Option<i64>,
        /// Keep launches at most this many days (by creation)
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
        days: Option<i64>,
        /// Keep only the newest this many launches
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
        launches: Option<i64>,
        /// No retention: keep every launch
        #[arg(long, conflicts_with_all = ["days", "launches"])]
        off: bool,
    },
}

/// A size in bytes: `1048576`, `512KiB`, `64MiB`, `2GiB` (`K`, `M`, `G` too).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(format!("expected a size like 64MiB, 1GiB or 0, got {s:?}")),
    };
    n.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("expected a size like 64MiB, 1GiB or 0, got {s:?}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(super::parse_size("0"), Ok(0));
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert_eq!(super::parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(super::parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(super::parse_size("2G"), Ok(2 << 30));
        for bad in ["", "MiB", "1.5GiB", "64MB", "-1", "99999999999999999999G"] {
            let e = super::parse_size(bad).unwrap_err();
            assert!(e.contains("expected a size like 64MiB"), "{bad}: {e}");
        }
    }

    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("onelaunch").chain(args.iter().copied()))
    }

    #[test]
    fn http_timeout_takes_seconds_or_a_duration() {
        for (given, secs) in [("30", 30), ("30s", 30), ("1m", 60), ("1h", 3600)] {
            let cli = parse(&["--http-timeout", given, "launch", "list"]).expect(given);
            assert_eq!(
                cli.global.http_timeout,
                std::time::Duration::from_secs(secs)
            );
        }
        let cli = parse(&["launch", "list"]).unwrap();
        assert_eq!(cli.global.http_timeout, std::time::Duration::from_secs(30));
        assert!(parse(&["--http-timeout", "soon", "launch", "list"]).is_err());
    }

    #[test]
    fn allurectl_spellings_parse() {
        for line in [
            "--silent launch list",
            "watch --job-run-child --continue-on-error --results r -- true",
            "watch --ci-type jenkins --ignore-passed-test-attachments --skip-too-big -l 20 --results r -- true",
            "upload --job-run-child --timeout 1800 r",
            "upload --timeout 30m --limit 3 r",
            "launch delete 5",
            "ci env",
            "ci env set",
            "auth login",
        ] {
            let args: Vec<&str> = line.split(' ').collect();
            if let Err(e) = parse(&args) {
                panic!("{line}: {e}");
            }
        }
        let cli = parse(&["upload", "-l", "7", "--timeout", "2h", "r"]).unwrap();
        let Command::Upload(u) = cli.command else {
            panic!("upload")
        };
        assert_eq!(u.opts.concurrency, 7);
        assert_eq!(u.opts.timeout, Some(std::time::Duration::from_secs(7200)));
        let cli = parse(&["upload", "r"]).unwrap();
        let Command::Upload(u) = cli.command else {
            panic!("upload")
        };
        assert_eq!(u.opts.concurrency, 8, "the default requests in flight");
    }
}
