//! CI detection ([`detect`]) and override resolution ([`resolve`]).

use serde::Serialize;

use crate::env::Env;

/// Where a launch comes from: the external CI job and job run it belongs to.
///
/// TestOps identifies a job by `(ci_type, endpoint, job_uid)` and a job run by
/// `job_run_uid` within that job, so two processes that compute the same
/// values (for example, parallel matrix jobs of one workflow run) attach to
/// the same job run and can share one launch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CiContext {
    /// `github`, `gitlab`, `jenkins`, or whatever `--ci-type` said.
    pub ci_type: String,
    /// Origin (`scheme://host[:port]`) of the CI server, if known.
    pub endpoint: Option<String>,
    /// Stable id of the job (workflow, project, Jenkins job).
    pub job_uid: String,
    /// Human-readable job name.
    pub job_name: String,
    /// Link to the job.
    pub job_url: Option<String>,
    /// Id of this run of the job (workflow run, pipeline, build).
    pub job_run_uid: String,
    /// Human-readable run name.
    pub job_run_name: String,
    /// Link to the run.
    pub job_run_url: Option<String>,
    /// Branch the run builds, if known.
    pub branch: Option<String>,
    /// Run attempt: `GITHUB_RUN_ATTEMPT` on GitHub; `None` on GitLab (a retried
    /// job gets a new `CI_JOB_ID` in the same pipeline) and Jenkins.
    pub attempt: Option<u32>,
    /// One execution of one CI job inside the job run: a matrix leg, a retried
    /// GitLab job, a restarted Jenkins build. Results parsed from JUnit XML are
    /// keyed on it, so two executions that write the same report file never
    /// collide, while sending one execution's report again stays idempotent.
    /// GitHub: `${GITHUB_JOB}#${GITHUB_RUN_ATTEMPT}`; GitLab: `CI_JOB_ID`;
    /// Jenkins: `BUILD_NUMBER` (and `/STAGE_NAME` inside a stage).
    pub execution: Option<String>,
    /// Launch name to use when none is given.
    pub default_launch_name: String,
}

/// Explicit values that replace detected ones (`--ci-type`, `--job-uid`, ...).
///
/// `None` and `Some("")` both mean "not given".
#[derive(Debug, Clone, Default)]
pub struct CiOverrides {
    /// `--ci-type` / `ALLURE_CI_TYPE`.
    pub ci_type: Option<String>,
    /// Origin of the CI server (`--ci-endpoint`).
    pub ci_endpoint: Option<String>,
    /// `--job-uid` / `ALLURE_JOB_UID`.
    pub job_uid: Option<String>,
    /// `--job-name` / `ALLURE_JOB_NAME`.
    pub job_name: Option<String>,
    /// `--job-url` / `ALLURE_JOB_URL`.
    pub job_url: Option<String>,
    /// `--job-run-uid` / `ALLURE_JOB_RUN_UID`.
    pub job_run_uid: Option<String>,
    /// `--job-run-name` / `ALLURE_JOB_RUN_NAME`.
    pub job_run_name: Option<String>,
    /// `--job-run-url` / `ONELAUNCH_JOB_RUN_URL` (never `ALLURE_JOB_RUN_URL`,
    /// which names the shared job run's onelaunch page: [`SHARED_LAUNCH_VARS`]).
    pub job_run_url: Option<String>,
    /// `--branch` / `ALLURE_JOB_RUN_BRANCH`.
    pub branch: Option<String>,
    /// `--ci-execution` / `ONELAUNCH_CI_EXECUTION`: names a part of the
    /// detected [`CiContext::execution`] (e.g. a matrix leg); it is appended to
    /// it, or is the execution itself when none is detected.
    pub execution: Option<String>,
}

/// Variables that describe the shared launch and job run (what `job-run env`
/// publishes to later jobs and downstream pipelines). They travel to
/// pipelines of other CI systems, so they are never read back as a
/// pipeline's own identity: neither [`detect`] nor the `onelaunch` flags
/// behind [`CiOverrides`] read them. `ALLURE_JOB_RUN_ID` only names the job
/// run to upload into; the uploading pipeline still reports its own identity.
pub const SHARED_LAUNCH_VARS: &[&str] = &[
    "ALLURE_LAUNCH_ID",
    "ALLURE_LAUNCH_NAME",
    "ALLURE_LAUNCH_URL",
    "ALLURE_JOB_RUN_ID",
    "ALLURE_JOB_RUN_URL",
];

/// CI type used by [`resolve`] for a context built only from overrides when no
/// `ci_type` override is given.
pub const GENERIC_CI_TYPE: &str = "generic";

/// Detects GitHub Actions (`GITHUB_ACTIONS`), GitLab CI (`GITLAB_CI`) or
/// Jenkins (`JENKINS_URL`), in that order, then Azure Pipelines, CircleCI,
/// Bitbucket Pipelines, Buildkite, TeamCity, Bamboo and Tekton (see
/// `vendors.rs`). `None` means a local run.
///
/// | | GitHub | GitLab | Jenkins |
/// |---|---|---|---|
/// | `job_uid` | `${GITHUB_REPOSITORY}_${GITHUB_WORKFLOW}` | `CI_PROJECT_ID` | `JOB_NAME` |
/// | `job_name` | `${GITHUB_REPOSITORY} - ${GITHUB_WORKFLOW}` | `CI_PROJECT_PATH` (else `CI_PROJECT_NAME`) | `JOB_BASE_NAME` |
/// | `job_url` | `$SERVER/$REPO/actions?query=workflow%3A%22…%22` | `${CI_PROJECT_URL}/pipelines` | `JOB_URL` |
/// | `job_run_uid` | `GITHUB_RUN_ID` | `CI_PIPELINE_ID` | `BUILD_NUMBER` |
/// | `job_run_name` | `${GITHUB_JOB} #${GITHUB_RUN_NUMBER}` | `CI_PIPELINE_ID` | `BUILD_DISPLAY_NAME` |
/// | `job_run_url` | `$SERVER/$REPO/actions/runs/$GITHUB_RUN_ID` | `CI_PIPELINE_URL` | `BUILD_URL` |
/// | `branch` | `GITHUB_HEAD_REF`, else branch of `GITHUB_REF`, else `GITHUB_REF_NAME` | `CI_MERGE_REQUEST_SOURCE_BRANCH_NAME`, `CI_COMMIT_BRANCH`, `CI_COMMIT_REF_NAME` | `BRANCH_NAME`, `GIT_LOCAL_BRANCH`, `GIT_BRANCH` |
/// | `endpoint` | origin of `GITHUB_SERVER_URL` | origin of `CI_SERVER_URL` / `CI_PROJECT_URL` | origin of `JENKINS_URL` / `BUILD_URL` |
/// | `attempt` | `GITHUB_RUN_ATTEMPT` | — | — |
/// | `execution` | `${GITHUB_JOB}#${GITHUB_RUN_ATTEMPT}` | `CI_JOB_ID` | `BUILD_NUMBER[/STAGE_NAME]` |
/// | `default_launch_name` | `<repo> - <workflow> #<run number>` | `<project> - <short sha or pipeline id>` | `<JOB_NAME> #<BUILD_NUMBER>` |
///
/// A variable that the table needs but the environment lacks yields an empty
/// string (or `None` for optional fields); detection itself only depends on
/// the marker variable.
pub fn detect(env: &dyn Env) -> Option<CiContext> {
    if env.var("GITHUB_ACTIONS").is_some() {
        Some(github(env))
    } else if env.var("GITLAB_CI").is_some() {
        Some(gitlab(env))
    } else if env.var("JENKINS_URL").is_some() {
        Some(jenkins(env))
    } else {
        crate::vendors::detect(env)
    }
}

/// Detected values overlaid with explicit overrides.
///
/// Detection is the lowest-priority default: every non-empty override
/// replaces the detected field (`ci_endpoint` replaces `endpoint`). The
/// detected `default_launch_name` is kept as is.
///
/// When nothing is detected, a generic context is built from the overrides
/// alone if they name both a `job_uid` and a `job_run_uid`: `ci_type` defaults
/// to `"generic"`, the names default to the uids, the endpoint defaults to the
/// origin of the run (or job) URL, and the default launch name is
/// `<job name> #<job run name>`. Otherwise the result is `None` (a local run
/// that is not attached to any CI job).
pub fn resolve(overrides: &CiOverrides, env: &dyn Env) -> Option<CiContext> {
    let given = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);

    let mut ctx = match detect(env) {
        Some(ctx) => ctx,
        None => {
            let job_uid = given(&overrides.job_uid)?;
            let job_run_uid = given(&overrides.job_run_uid)?;
            let job_name = given(&overrides.job_name).unwrap_or_else(|| job_uid.clone());
            let job_run_name =
                given(&overrides.job_run_name).unwrap_or_else(|| job_run_uid.clone());
            let job_url = given(&overrides.job_url);
            let job_run_url = given(&overrides.job_run_url);
            let endpoint = job_run_url
                .as_deref()
                .or(job_url.as_deref())
                .and_then(origin);
            let default_launch_name = format!("{job_name} #{job_run_name}");
            CiContext {
                ci_type: GENERIC_CI_TYPE.to_string(),
                endpoint,
                job_uid,
                job_name,
                job_url,
                job_run_uid,
                job_run_name,
                job_run_url,
                branch: None,
                attempt: None,
                execution: None,
                default_launch_name,
            }
        }
    };

    if let Some(v) = given(&overrides.ci_type) {
        ctx.ci_type = v;
    }
    if let Some(v) = given(&overrides.ci_endpoint) {
        ctx.endpoint = Some(v);
    }
    if let Some(v) = given(&overrides.job_uid) {
        ctx.job_uid = v;
    }
    if let Some(v) = given(&overrides.job_name) {
        ctx.job_name = v;
    }
    if let Some(v) = given(&overrides.job_url) {
        ctx.job_url = Some(v);
    }
    if let Some(v) = given(&overrides.job_run_uid) {
        ctx.job_run_uid = v;
    }
    if let Some(v) = given(&overrides.job_run_name) {
        ctx.job_run_name = v;
    }
    if let Some(v) = given(&overrides.job_run_url) {
        ctx.job_run_url = Some(v);
    }
    if let Some(v) = given(&overrides.branch) {
        ctx.branch = Some(v);
    }
    if let Some(v) = given(&overrides.execution) {
        // It names a part of the detected execution (a matrix leg of this
        // attempt), so a re-run still differs from the first attempt.
        ctx.execution = Some(match ctx.execution.take() {
            Some(detected) => format!("{detected}/{v}"),
            None => v,
        });
    }
    Some(ctx)
}

pub(crate) fn var(env: &dyn Env, key: &str) -> String {
    env.var(key).unwrap_or_default()
}

fn first_of(env: &dyn Env, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| env.var(k))
}

/// `scheme://host[:port]` of an absolute URL; user info, path, query and
/// fragment are dropped. `None` if `url` has no scheme or host.
pub(crate) fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return None;
    }
    Some(format!("{}://{}", scheme.to_ascii_lowercase(), host))
}

/// JavaScript's `encodeURIComponent`: everything except
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )` is percent-encoded as UTF-8.
fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn github(env: &dyn Env) -> CiContext {
    let server = var(env, "GITHUB_SERVER_URL");
    let server = server.trim_end_matches('/');
    let repo = var(env, "GITHUB_REPOSITORY");
    let workflow = var(env, "GITHUB_WORKFLOW");
    let run_id = var(env, "GITHUB_RUN_ID");
    let run_number = var(env, "GITHUB_RUN_NUMBER");
    let job = var(env, "GITHUB_JOB");
    let attempt: Option<u32> = env
        .var("GITHUB_RUN_ATTEMPT")
        .and_then(|a| a.trim().parse().ok());

    let url = |path: String| {
        (!server.is_empty() && !repo.is_empty()).then(|| format!("{server}/{repo}/{path}"))
    };
    let job_url = url(format!(
        "actions?query={}",
        encode_uri_component(&format!("workflow:\"{workflow}\""))
    ));
    let job_run_url = if run_id.is_empty() {
        None
    } else {
        url(format!("actions/runs/{run_id}"))
    };

    // A pull request builds `GITHUB_HEAD_REF`; a push builds the branch (or
    // tag) `GITHUB_REF_NAME` names, which `GITHUB_REF` spells in full.
    let branch = env
        .var("GITHUB_HEAD_REF")
        .or_else(|| {
            env.var("GITHUB_REF")
                .and_then(|r| r.strip_prefix("refs/heads/").map(str::to_string))
        })
        .or_else(|| env.var("GITHUB_REF_NAME"))
        .or_else(|| env.var("GITHUB_REF"));

    let job_name = format!("{repo} - {workflow}");
    let default_launch_name = if run_number.is_empty() {
        job_name.clone()
    } else {
        format!("{job_name} #{run_number}")
    };

    CiContext {
        ci_type: "github".to_string(),
        endpoint: origin(server),
        job_uid: format!("{repo}_{workflow}"),
        job_name,
        job_url,
        job_run_uid: run_id,
        job_run_name: format!("{job} #{run_number}"),
        job_run_url,
        branch,
        attempt,
        execution: Some(format!("{job}#{}", attempt.unwrap_or(1))),
        default_launch_name,
    }
}

fn gitlab(env: &dyn Env) -> CiContext {
    let project_url = env.var("CI_PROJECT_URL");
    let project_name = var(env, "CI_PROJECT_NAME");
    // The job is named after the project's path (`group/project`), which
    // tells apart equally named projects of different groups; the numeric
    // `CI_PROJECT_ID` stays its uid (stable across renames).
    let job_name = first_of(
        env,
        &["CI_PROJECT_PATH", "CI_PROJECT_NAME", "CI_PROJECT_ID"],
    )
    .unwrap_or_default();
    let pipeline_id = var(env, "CI_PIPELINE_ID");

    let revision = env
        .var("CI_COMMIT_SHORT_SHA")
        .or_else(|| {
            env.var("CI_COMMIT_SHA")
                .map(|sha| sha.chars().take(8).collect())
        })
        .unwrap_or_else(|| pipeline_id.clone());
    let default_launch_name = match (project_name.is_empty(), revision.is_empty()) {
        (false, false) => format!("{project_name} - {revision}"),
        (false, true) => project_name.clone(),
        (true, _) => revision,
    };

    CiContext {
        ci_type: "gitlab".to_string(),
        endpoint: env
            .var("CI_SERVER_URL")
            .as_deref()
            .and_then(origin)
            .or_else(|| project_url.as_deref().and_then(origin)),
        job_uid: var(env, "CI_PROJECT_ID"),
        job_name,
        job_url: project_url
            .as_deref()
            .map(|u| format!("{}/pipelines", u.trim_end_matches('/'))),
        job_run_uid: pipeline_id.clone(),
        job_run_name: pipeline_id,
        job_run_url: env.var("CI_PIPELINE_URL"),
        branch: first_of(
            env,
            &[
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
                "CI_COMMIT_BRANCH",
                "CI_COMMIT_REF_NAME",
            ],
        ),
        attempt: None,
        execution: env.var("CI_JOB_ID"),
        default_launch_name,
    }
}

fn jenkins(env: &dyn Env) -> CiContext {
    let job_name = var(env, "JOB_NAME");
    let build_number = var(env, "BUILD_NUMBER");
    let build_url = env.var("BUILD_URL");

    let branch = env
        .var("BRANCH_NAME")
        .or_else(|| env.var("GIT_LOCAL_BRANCH"))
        .or_else(|| {
            // The Git plugin reports the remote-tracking name (`origin/main`).
            env.var("GIT_BRANCH")
                .map(|b| b.strip_prefix("origin/").map(str::to_string).unwrap_or(b))
        });

    let default_launch_name = if build_number.is_empty() {
        job_name.clone()
    } else {
        format!("{job_name} #{build_number}")
    };

    CiContext {
        ci_type: "jenkins".to_string(),
        endpoint: env
            .var("JENKINS_URL")
            .as_deref()
            .and_then(origin)
            .or_else(|| build_url.as_deref().and_then(origin)),
        job_name: env.var("JOB_BASE_NAME").unwrap_or_else(|| job_name.clone()),
        job_uid: job_name,
        job_url: env.var("JOB_URL"),
        job_run_name: env
            .var("BUILD_DISPLAY_NAME")
            .unwrap_or_else(|| format!("#{build_number}")),
        execution: (!build_number.is_empty()).then(|| match env.var("STAGE_NAME") {
            Some(stage) => format!("{build_number}/{stage}"),
            None => build_number.clone(),
        }),
        job_run_uid: build_number,
        job_run_url: build_url,
        branch,
        attempt: None,
        default_launch_name,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn with(base: &[(&str, &str)], extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut map = env(base);
        map.extend(env(extra));
        map
    }

    /// A push build on GitHub-hosted runners, as printed by `env` in a step.
    const GITHUB_PUSH: &[(&str, &str)] = &[
        ("CI", "true"),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_ACTION", "__run_2"),
        ("GITHUB_ACTOR", "octocat"),
        ("GITHUB_ACTOR_ID", "583231"),
        ("GITHUB_API_URL", "https://api.github.com"),
        ("GITHUB_BASE_REF", ""),
        ("GITHUB_EVENT_NAME", "push"),
        (
            "GITHUB_EVENT_PATH",
            "/home/runner/work/_temp/_github_workflow/event.json",
        ),
        ("GITHUB_GRAPHQL_URL", "https://api.github.com/graphql"),
        ("GITHUB_HEAD_REF", ""),
        ("GITHUB_JOB", "unit"),
        (
            "GITHUB_OUTPUT",
            "/home/runner/work/_temp/_runner_file_commands/set_output_1",
        ),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_REF_PROTECTED", "true"),
        ("GITHUB_REF_TYPE", "branch"),
        ("GITHUB_REPOSITORY", "acme/shop"),
        ("GITHUB_REPOSITORY_ID", "123456789"),
        ("GITHUB_REPOSITORY_OWNER", "acme"),
        ("GITHUB_RETENTION_DAYS", "90"),
        ("GITHUB_RUN_ATTEMPT", "2"),
        ("GITHUB_RUN_ID", "9876543210"),
        ("GITHUB_RUN_NUMBER", "128"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_SHA", "3f786850e387550fdab836ed7e6dc881de23001b"),
        ("GITHUB_WORKFLOW", "CI"),
        (
            "GITHUB_WORKFLOW_REF",
            "acme/shop/.github/workflows/ci.yml@refs/heads/main",
        ),
        (
            "GITHUB_WORKFLOW_SHA",
            "3f786850e387550fdab836ed7e6dc881de23001b",
        ),
        ("GITHUB_WORKSPACE", "/home/runner/work/shop/shop"),
        ("RUNNER_ARCH", "X64"),
        ("RUNNER_NAME", "GitHub Actions 12"),
        ("RUNNER_OS", "Linux"),
        ("RUNNER_TEMP", "/home/runner/work/_temp"),
    ];

    /// A merge-request pipeline on a self-managed GitLab.
    const GITLAB_MR: &[(&str, &str)] = &[
        ("CI", "true"),
        ("GITLAB_CI", "true"),
        ("GITLAB_USER_LOGIN", "jdoe"),
        ("CI_API_V4_URL", "https://gitlab.example.com/api/v4"),
        (
            "CI_COMMIT_BEFORE_SHA",
            "0000000000000000000000000000000000000000",
        ),
        ("CI_COMMIT_REF_NAME", "feature/checkout"),
        ("CI_COMMIT_REF_SLUG", "feature-checkout"),
        ("CI_COMMIT_SHA", "e83c5163316f89bfbde7d9ab23ca2e25604af290"),
        ("CI_COMMIT_SHORT_SHA", "e83c5163"),
        ("CI_COMMIT_TITLE", "Add checkout"),
        ("CI_CONCURRENT_ID", "3"),
        ("CI_DEFAULT_BRANCH", "main"),
        ("CI_JOB_ID", "55501234"),
        ("CI_JOB_NAME", "api-tests"),
        ("CI_JOB_STAGE", "test"),
        (
            "CI_JOB_URL",
            "https://gitlab.example.com/acme/shop-api/-/jobs/55501234",
        ),
        ("CI_MERGE_REQUEST_IID", "17"),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature/checkout"),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
        ("CI_PIPELINE_ID", "1234567"),
        ("CI_PIPELINE_IID", "321"),
        ("CI_PIPELINE_SOURCE", "merge_request_event"),
        (
            "CI_PIPELINE_URL",
            "https://gitlab.example.com/acme/shop-api/-/pipelines/1234567",
        ),
        ("CI_PROJECT_DIR", "/builds/acme/shop-api"),
        ("CI_PROJECT_ID", "4711"),
        ("CI_PROJECT_NAME", "shop-api"),
        ("CI_PROJECT_NAMESPACE", "acme"),
        ("CI_PROJECT_PATH", "acme/shop-api"),
        ("CI_PROJECT_URL", "https://gitlab.example.com/acme/shop-api"),
        ("CI_RUNNER_ID", "42"),
        ("CI_SERVER_HOST", "gitlab.example.com"),
        ("CI_SERVER_NAME", "GitLab"),
        ("CI_SERVER_PORT", "443"),
        ("CI_SERVER_PROTOCOL", "https"),
        ("CI_SERVER_URL", "https://gitlab.example.com"),
    ];

    /// A multibranch-pipeline build behind a reverse proxy with a path prefix.
    const JENKINS_MULTIBRANCH: &[(&str, &str)] = &[
        ("BRANCH_NAME", "main"),
        ("BUILD_DISPLAY_NAME", "#57"),
        ("BUILD_ID", "57"),
        ("BUILD_NUMBER", "57"),
        ("BUILD_TAG", "jenkins-shop-main-57"),
        (
            "BUILD_URL",
            "https://jenkins.example.com:8443/ci/job/shop/job/main/57/",
        ),
        ("EXECUTOR_NUMBER", "1"),
        ("GIT_BRANCH", "main"),
        ("GIT_COMMIT", "9fceb02d0ae598e95dc970b74767f19372d61af8"),
        ("HUDSON_URL", "https://jenkins.example.com:8443/ci/"),
        ("JENKINS_HOME", "/var/jenkins_home"),
        ("JENKINS_URL", "https://jenkins.example.com:8443/ci/"),
        ("JOB_BASE_NAME", "main"),
        ("JOB_NAME", "shop/main"),
        (
            "JOB_URL",
            "https://jenkins.example.com:8443/ci/job/shop/job/main/",
        ),
        ("NODE_NAME", "built-in"),
        ("WORKSPACE", "/var/jenkins_home/workspace/shop_main"),
    ];

    #[test]
    fn github_push() {
        let ctx = detect(&env(GITHUB_PUSH)).expect("detected");
        assert_eq!(
            ctx,
            CiContext {
                ci_type: "github".into(),
                endpoint: Some("https://github.com".into()),
                job_uid: "acme/shop_CI".into(),
                job_name: "acme/shop - CI".into(),
                job_url: Some(
                    "https://github.com/acme/shop/actions?query=workflow%3A%22CI%22".into()
                ),
                job_run_uid: "9876543210".into(),
                job_run_name: "unit #128".into(),
                job_run_url: Some("https://github.com/acme/shop/actions/runs/9876543210".into()),
                branch: Some("main".into()),
                attempt: Some(2),
                execution: Some("unit#2".into()),
                default_launch_name: "acme/shop - CI #128".into(),
            }
        );
    }

    #[test]
    fn github_pull_request_and_enterprise_server() {
        let map = with(
            GITHUB_PUSH,
            &[
                ("GITHUB_EVENT_NAME", "pull_request"),
                ("GITHUB_REF", "refs/pull/17/merge"),
                ("GITHUB_REF_NAME", "17/merge"),
                ("GITHUB_HEAD_REF", "feature/login"),
                ("GITHUB_BASE_REF", "main"),
                ("GITHUB_SERVER_URL", "https://ghe.example.com:8443/"),
                ("GITHUB_WORKFLOW", "Unit tests"),
                ("GITHUB_RUN_ATTEMPT", "1"),
            ],
        );
        let ctx = detect(&map).expect("detected");
        assert_eq!(ctx.branch.as_deref(), Some("feature/login"));
        assert_eq!(
            ctx.endpoint.as_deref(),
            Some("https://ghe.example.com:8443")
        );
        assert_eq!(ctx.job_uid, "acme/shop_Unit tests");
        assert_eq!(
            ctx.job_url.as_deref(),
            Some("https://ghe.example.com:8443/acme/shop/actions?query=workflow%3A%22Unit%20tests%22")
        );
        assert_eq!(
            ctx.job_run_url.as_deref(),
            Some("https://ghe.example.com:8443/acme/shop/actions/runs/9876543210")
        );
        assert_eq!(ctx.attempt, Some(1));
        assert_eq!(ctx.execution.as_deref(), Some("unit#1"));
        let mut first = map.clone();
        first.remove("GITHUB_RUN_ATTEMPT");
        let ctx = detect(&first).expect("detected");
        assert_eq!(
            (ctx.attempt, ctx.execution.as_deref()),
            (None, Some("unit#1"))
        );
    }

    #[test]
    fn github_branch_from_ref_name_alone() {
        // GitHub documents GITHUB_REF_NAME as "the short ref name of the
        // branch or tag"; a runner that passes only it (a container job, a
        // composite action forwarding selected variables) still has a branch.
        let mut map = env(GITHUB_PUSH);
        map.remove("GITHUB_REF");
        map.insert("GITHUB_REF_NAME".into(), "release/2.0".into());
        assert_eq!(
            detect(&map).and_then(|c| c.branch).as_deref(),
            Some("release/2.0")
        );
        // A pull request: the head branch wins over `17/merge`.
        let pr = with(
            GITHUB_PUSH,
            &[
                ("GITHUB_REF", "refs/pull/17/merge"),
                ("GITHUB_REF_NAME", "17/merge"),
                ("GITHUB_HEAD_REF", "feature/login"),
            ],
        );
        assert_eq!(
            detect(&pr).and_then(|c| c.branch).as_deref(),
            Some("feature/login")
        );
    }

    #[test]
    fn github_tag_build_uses_ref_name() {
        let map = with(
            GITHUB_PUSH,
            &[
                ("GITHUB_REF", "refs/tags/v1.2.0"),
                ("GITHUB_REF_NAME", "v1.2.0"),
                ("GITHUB_REF_TYPE", "tag"),
            ],
        );
        assert_eq!(
            detect(&map).and_then(|c| c.branch).as_deref(),
            Some("v1.2.0")
        );
    }

    #[test]
    fn gitlab_merge_request_pipeline() {
        let ctx = detect(&env(GITLAB_MR)).expect("detected");
        assert_eq!(
            ctx,
            CiContext {
                ci_type: "gitlab".into(),
                endpoint: Some("https://gitlab.example.com".into()),
                job_uid: "4711".into(),
                job_name: "acme/shop-api".into(),
                job_url: Some("https://gitlab.example.com/acme/shop-api/pipelines".into()),
                job_run_uid: "1234567".into(),
                job_run_name: "1234567".into(),
                job_run_url: Some(
                    "https://gitlab.example.com/acme/shop-api/-/pipelines/1234567".into()
                ),
                branch: Some("feature/checkout".into()),
                attempt: None,
                execution: Some("55501234".into()),
                default_launch_name: "shop-api - e83c5163".into(),
            }
        );
    }

    #[test]
    fn gitlab_job_is_named_after_the_project_path() {
        // GitLab's predefined variables: CI_PROJECT_ID is numeric, the path
        // is `namespace/project`.
        let ctx = detect(&env(GITLAB_MR)).expect("detected");
        assert_eq!(ctx.job_uid, "4711");
        assert_eq!(ctx.job_name, "acme/shop-api");
        let mut map = env(GITLAB_MR);
        map.remove("CI_PROJECT_PATH");
        assert_eq!(detect(&map).expect("detected").job_name, "shop-api");
        map.remove("CI_PROJECT_NAME");
        assert_eq!(detect(&map).expect("detected").job_name, "4711");
    }

    #[test]
    fn gitlab_branch_pipeline_fallbacks() {
        let mut map = env(GITLAB_MR);
        map.remove("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME");
        map.remove("CI_COMMIT_SHORT_SHA");
        map.remove("CI_SERVER_URL");
        map.insert("CI_COMMIT_BRANCH".into(), "main".into());
        let ctx = detect(&map).expect("detected");
        assert_eq!(ctx.branch.as_deref(), Some("main"));
        assert_eq!(ctx.default_launch_name, "shop-api - e83c5163");
        assert_eq!(ctx.endpoint.as_deref(), Some("https://gitlab.example.com"));

        map.remove("CI_COMMIT_SHA");
        map.remove("CI_COMMIT_BRANCH");
        let ctx = detect(&map).expect("detected");
        assert_eq!(ctx.default_launch_name, "shop-api - 1234567");
        assert_eq!(ctx.branch.as_deref(), Some("feature/checkout"));
    }

    #[test]
    fn jenkins_multibranch() {
        let ctx = detect(&env(JENKINS_MULTIBRANCH)).expect("detected");
        assert_eq!(
            ctx,
            CiContext {
                ci_type: "jenkins".into(),
                endpoint: Some("https://jenkins.example.com:8443".into()),
                job_uid: "shop/main".into(),
                job_name: "main".into(),
                job_url: Some("https://jenkins.example.com:8443/ci/job/shop/job/main/".into()),
                job_run_uid: "57".into(),
                job_run_name: "#57".into(),
                job_run_url: Some(
                    "https://jenkins.example.com:8443/ci/job/shop/job/main/57/".into()
                ),
                branch: Some("main".into()),
                attempt: None,
                execution: Some("57".into()),
                default_launch_name: "shop/main #57".into(),
            }
        );
    }

    #[test]
    fn jenkins_freestyle_git_plugin_branch() {
        let mut map = env(JENKINS_MULTIBRANCH);
        map.remove("BRANCH_NAME");
        map.remove("BUILD_DISPLAY_NAME");
        map.insert("GIT_BRANCH".into(), "origin/release/1.2".into());
        let ctx = detect(&map).expect("detected");
        assert_eq!(ctx.branch.as_deref(), Some("release/1.2"));
        assert_eq!(ctx.job_run_name, "#57");
    }

    #[test]
    fn executions_tell_apart_stages_retries_and_restarted_builds() {
        // A Jenkins stage is an execution of its own within the build.
        let stage = with(JENKINS_MULTIBRANCH, &[("STAGE_NAME", "API tests")]);
        let ctx = detect(&stage).expect("detected");
        assert_eq!(ctx.execution.as_deref(), Some("57/API tests"));

        // A restarted build joins the original build's job run (the wrapper
        // passes ALLURE_JOB_RUN_UID) but stays an execution of its own.
        let restarted = with(JENKINS_MULTIBRANCH, &[("BUILD_NUMBER", "58")]);
        let overrides = CiOverrides {
            job_run_uid: Some("57".into()),
            ..CiOverrides::default()
        };
        let ctx = resolve(&overrides, &restarted).expect("resolved");
        assert_eq!(ctx.job_run_uid, "57");
        assert_eq!(ctx.execution.as_deref(), Some("58"));

        // A retried GitLab job: same pipeline, new job id.
        let retried = with(GITLAB_MR, &[("CI_JOB_ID", "55501299")]);
        let (a, b) = (detect(&env(GITLAB_MR)).unwrap(), detect(&retried).unwrap());
        assert_eq!(a.job_run_uid, b.job_run_uid);
        assert_ne!(a.execution, b.execution);

        // A given execution names a part of the detected one (a matrix leg of
        // this attempt), or stands alone in a generic CI.
        let given = CiOverrides {
            execution: Some("py3.12".into()),
            ..CiOverrides::default()
        };
        let ctx = resolve(&given, &env(GITHUB_PUSH)).expect("resolved");
        assert_eq!(ctx.execution.as_deref(), Some("unit#2/py3.12"));
        let generic = CiOverrides {
            job_uid: Some("Shop_Build".into()),
            job_run_uid: Some("8812".into()),
            ..given
        };
        let ctx = resolve(&generic, &env(&[])).expect("generic");
        assert_eq!(ctx.execution.as_deref(), Some("py3.12"));
    }

    #[test]
    fn shared_launch_variables_never_change_the_detected_identity() {
        // A GitLab pipeline that got the upstream GitHub run's variables
        // (dotenv, trigger variables) is still itself.
        let upstream: Vec<(&str, &str)> = SHARED_LAUNCH_VARS
            .iter()
            .map(|k| (*k, "https://onelaunch.example.com/jobrun/7"))
            .collect();
        let map = with(GITLAB_MR, &upstream);
        assert_eq!(detect(&map), detect(&env(GITLAB_MR)));
        assert_eq!(
            resolve(&CiOverrides::default(), &map),
            detect(&env(GITLAB_MR))
        );
    }

    #[test]
    fn detection_order_and_empty_markers() {
        // GitHub wins over the others; an empty marker does not count.
        let both = with(GITHUB_PUSH, GITLAB_MR);
        assert_eq!(detect(&both).map(|c| c.ci_type).as_deref(), Some("github"));
        let github_empty = with(GITLAB_MR, &[("GITHUB_ACTIONS", "")]);
        assert_eq!(
            detect(&github_empty).map(|c| c.ci_type).as_deref(),
            Some("gitlab")
        );
    }

    #[test]
    fn no_ci_is_local() {
        let local = env(&[
            ("HOME", "/home/dev"),
            ("PATH", "/usr/bin:/bin"),
            ("CI", "true"),
            ("GITHUB_ACTIONS", ""),
        ]);
        assert_eq!(detect(&local), None);
        assert_eq!(resolve(&CiOverrides::default(), &local), None);
    }

    #[test]
    fn overrides_replace_detected_fields() {
        let overrides = CiOverrides {
            ci_endpoint: Some("https://github.acme.internal".into()),
            job_uid: Some("acme/shop/actions/workflows/ci.yml".into()),
            job_run_name: Some("nightly".into()),
            branch: Some("release".into()),
            job_name: Some(String::new()), // empty means not given
            ..CiOverrides::default()
        };
        let ctx = resolve(&overrides, &env(GITHUB_PUSH)).expect("resolved");
        assert_eq!(ctx.ci_type, "github");
        assert_eq!(
            ctx.endpoint.as_deref(),
            Some("https://github.acme.internal")
        );
        assert_eq!(ctx.job_uid, "acme/shop/actions/workflows/ci.yml");
        assert_eq!(ctx.job_name, "acme/shop - CI");
        assert_eq!(ctx.job_run_uid, "9876543210");
        assert_eq!(ctx.job_run_name, "nightly");
        assert_eq!(ctx.branch.as_deref(), Some("release"));
        assert_eq!(ctx.attempt, Some(2));
        assert_eq!(ctx.default_launch_name, "acme/shop - CI #128");

        // Without overrides, resolve is detect.
        assert_eq!(
            resolve(&CiOverrides::default(), &env(GITLAB_MR)),
            detect(&env(GITLAB_MR))
        );

        let forced = CiOverrides {
            ci_type: Some("bamboo".into()),
            job_url: Some("https://bamboo.example.com/browse/SHOP".into()),
            job_run_url: Some("https://bamboo.example.com/browse/SHOP-57".into()),
            job_run_uid: Some("SHOP-57".into()),
            ..CiOverrides::default()
        };
        let ctx = resolve(&forced, &env(JENKINS_MULTIBRANCH)).expect("resolved");
        assert_eq!(ctx.ci_type, "bamboo");
        assert_eq!(ctx.job_run_uid, "SHOP-57");
        assert_eq!(
            ctx.job_url.as_deref(),
            Some("https://bamboo.example.com/browse/SHOP")
        );
        assert_eq!(ctx.job_uid, "shop/main");
    }

    #[test]
    fn generic_context_from_overrides() {
        let local = env(&[("HOME", "/home/dev")]);
        let overrides = CiOverrides {
            ci_type: Some("teamcity".into()),
            job_uid: Some("Shop_Build".into()),
            job_run_uid: Some("8812".into()),
            job_run_url: Some(
                "https://tc.example.com:8111/buildConfiguration/Shop_Build/8812".into(),
            ),
            ..CiOverrides::default()
        };
        let ctx = resolve(&overrides, &local).expect("generic");
        assert_eq!(
            ctx,
            CiContext {
                ci_type: "teamcity".into(),
                endpoint: Some("https://tc.example.com:8111".into()),
                job_uid: "Shop_Build".into(),
                job_name: "Shop_Build".into(),
                job_url: None,
                job_run_uid: "8812".into(),
                job_run_name: "8812".into(),
                job_run_url: Some(
                    "https://tc.example.com:8111/buildConfiguration/Shop_Build/8812".into()
                ),
                branch: None,
                attempt: None,
                execution: None,
                default_launch_name: "Shop_Build #8812".into(),
            }
        );

        // Without a ci_type the uids are enough; the type is "generic".
        let no_type = CiOverrides {
            ci_type: None,
            job_name: Some("Shop build".into()),
            branch: Some("main".into()),
            ..overrides.clone()
        };
        let ctx = resolve(&no_type, &local).expect("generic");
        assert_eq!(ctx.ci_type, GENERIC_CI_TYPE);
        assert_eq!(ctx.job_name, "Shop build");
        assert_eq!(ctx.branch.as_deref(), Some("main"));

        // A type alone, or a missing run uid, is a local run.
        let type_only = CiOverrides {
            ci_type: Some("teamcity".into()),
            ..CiOverrides::default()
        };
        assert_eq!(resolve(&type_only, &local), None);
        let no_run = CiOverrides {
            job_run_uid: None,
            ..overrides
        };
        assert_eq!(resolve(&no_run, &local), None);
    }

    #[test]
    fn closure_env() {
        let map = env(JENKINS_MULTIBRANCH);
        let ctx = detect(&|k: &str| map.get(k).cloned()).expect("detected");
        assert_eq!(ctx.job_uid, "shop/main");
    }

    #[test]
    fn origin_parsing() {
        assert_eq!(
            origin("https://github.com").as_deref(),
            Some("https://github.com")
        );
        assert_eq!(
            origin("HTTP://user:pw@host.example:8080/path?q#f").as_deref(),
            Some("http://host.example:8080")
        );
        assert_eq!(origin("github.com/acme"), None);
        assert_eq!(origin("https:///path"), None);
        assert_eq!(origin("1http://x"), None);
    }

    #[test]
    fn context_serializes() {
        let ctx = detect(&env(JENKINS_MULTIBRANCH)).expect("detected");
        let json = serde_json::to_value(&ctx).expect("serializable");
        assert_eq!(json["ci_type"], "jenkins");
        assert_eq!(json["attempt"], serde_json::Value::Null);
    }
}
