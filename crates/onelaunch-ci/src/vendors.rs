//! Detection of the CI systems beyond GitHub, GitLab and Jenkins: Azure
//! Pipelines, CircleCI, Bitbucket Pipelines, Buildkite, TeamCity, Bamboo and
//! Tekton. Each reads only the variables its vendor documents (cited per
//! function); a value the CI does not provide stays empty or `None`, and the
//! `--job-*`/`ALLURE_JOB_*` overrides fill it (see [`crate::resolve`]).
//!
//! The job is the pipeline definition, the job run one run of it that every
//! job (stage, step) of that run shares, so parallel jobs of one run join one
//! launch; `execution` tells those jobs and their retries apart.

use crate::context::{origin, var, CiContext};
use crate::env::Env;

/// The first of these CI systems whose marker variable is set.
pub(crate) fn detect(env: &dyn Env) -> Option<CiContext> {
    if env.var("TF_BUILD").is_some() || env.var("SYSTEM_DEFINITIONID").is_some() {
        Some(azure(env))
    } else if env.var("CIRCLECI").is_some() {
        Some(circleci(env))
    } else if env.var("BITBUCKET_BUILD_NUMBER").is_some() {
        Some(bitbucket(env))
    } else if env.var("BUILDKITE").is_some() {
        Some(buildkite(env))
    } else if env.var("TEAMCITY_VERSION").is_some() {
        Some(teamcity(env))
    } else if env.var("bamboo_buildKey").is_some() {
        Some(bamboo(env))
    } else if env.var("TEKTON_PIPELINE_RUN").is_some() {
        Some(tekton(env))
    } else {
        None
    }
}

fn strip_heads(branch: String) -> String {
    branch
        .strip_prefix("refs/heads/")
        .map(str::to_string)
        .unwrap_or(branch)
}

fn name_with_run(job_name: &str, run: &str) -> String {
    if run.is_empty() {
        job_name.to_string()
    } else {
        format!("{job_name} #{run}")
    }
}

/// Azure Pipelines, predefined variables
/// (<https://learn.microsoft.com/azure/devops/pipelines/build/variables>):
/// `TF_BUILD`, `SYSTEM_TEAMFOUNDATIONCOLLECTIONURI`, `SYSTEM_TEAMPROJECT`,
/// `SYSTEM_TEAMPROJECTID`, `SYSTEM_DEFINITIONID`, `BUILD_DEFINITIONNAME`,
/// `BUILD_BUILDID`, `BUILD_BUILDNUMBER`, `BUILD_SOURCEBRANCH`,
/// `SYSTEM_PULLREQUEST_SOURCEBRANCH`, `SYSTEM_JOBID`, `SYSTEM_JOBATTEMPT`.
/// The job uid follows Allure 3 (`<project id>_<definition id>`).
fn azure(env: &dyn Env) -> CiContext {
    let collection = var(env, "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI");
    let collection = collection.trim_end_matches('/');
    let project = var(env, "SYSTEM_TEAMPROJECT");
    let definition = var(env, "SYSTEM_DEFINITIONID");
    let build_id = var(env, "BUILD_BUILDID");
    let number = var(env, "BUILD_BUILDNUMBER");
    let job_name = env
        .var("BUILD_DEFINITIONNAME")
        .unwrap_or_else(|| definition.clone());
    let base = (!collection.is_empty() && !project.is_empty())
        .then(|| format!("{collection}/{}", project.replace(' ', "%20")));
    let attempt: Option<u32> = env
        .var("SYSTEM_JOBATTEMPT")
        .and_then(|a| a.trim().parse().ok());
    let job = env
        .var("SYSTEM_JOBID")
        .or_else(|| env.var("SYSTEM_JOBNAME"));
    CiContext {
        ci_type: "azure".to_string(),
        endpoint: origin(collection),
        job_uid: format!("{}_{definition}", var(env, "SYSTEM_TEAMPROJECTID")),
        job_url: base
            .as_ref()
            .filter(|_| !definition.is_empty())
            .map(|b| format!("{b}/_build?definitionId={definition}")),
        job_run_url: base
            .as_ref()
            .filter(|_| !build_id.is_empty())
            .map(|b| format!("{b}/_build/results?buildId={build_id}")),
        job_run_name: if number.is_empty() {
            build_id.clone()
        } else {
            number.clone()
        },
        branch: env
            .var("SYSTEM_PULLREQUEST_SOURCEBRANCH")
            .or_else(|| env.var("BUILD_SOURCEBRANCH"))
            .map(strip_heads),
        execution: job.map(|j| format!("{j}#{}", attempt.unwrap_or(1))),
        attempt,
        default_launch_name: name_with_run(&job_name, &number),
        job_name,
        job_run_uid: build_id,
    }
}

/// CircleCI, built-in variables
/// (<https://circleci.com/docs/variables/#built-in-environment-variables>):
/// `CIRCLECI`, `CIRCLE_PROJECT_USERNAME`, `CIRCLE_PROJECT_REPONAME`,
/// `CIRCLE_WORKFLOW_ID`, `CIRCLE_BUILD_NUM`, `CIRCLE_BUILD_URL`, `CIRCLE_JOB`,
/// `CIRCLE_BRANCH`, `CIRCLE_NODE_INDEX`. The job run is the workflow (all its
/// jobs share it); a re-run is a new workflow, so there is no attempt.
fn circleci(env: &dyn Env) -> CiContext {
    let slug = format!(
        "{}/{}",
        var(env, "CIRCLE_PROJECT_USERNAME"),
        var(env, "CIRCLE_PROJECT_REPONAME")
    );
    let workflow = var(env, "CIRCLE_WORKFLOW_ID");
    let build_num = var(env, "CIRCLE_BUILD_NUM");
    let build_url = env.var("CIRCLE_BUILD_URL");
    let job = var(env, "CIRCLE_JOB");
    // https://circleci.com/gh/acme/shop/42 -> the project's page.
    let job_url = build_url
        .as_deref()
        .and_then(|u| u.trim_end_matches('/').rsplit_once('/'))
        .map(|(project, _)| project.to_string());
    let execution = (!build_num.is_empty()).then(|| match env.var("CIRCLE_NODE_INDEX") {
        Some(node) => format!("{build_num}/{node}"),
        None => build_num.clone(),
    });
    CiContext {
        ci_type: "circleci".to_string(),
        endpoint: build_url.as_deref().and_then(origin),
        job_uid: slug.clone(),
        job_name: slug.clone(),
        job_url,
        job_run_url: if workflow.is_empty() {
            build_url.clone()
        } else {
            Some(format!(
                "https://app.circleci.com/pipelines/workflows/{workflow}"
            ))
        },
        job_run_name: format!("{job} #{build_num}"),
        job_run_uid: if workflow.is_empty() {
            build_num.clone()
        } else {
            workflow
        },
        branch: env.var("CIRCLE_BRANCH"),
        attempt: None,
        execution,
        default_launch_name: name_with_run(&slug, &build_num),
    }
}

/// Bitbucket Pipelines, default variables
/// (<https://support.atlassian.com/bitbucket-cloud/docs/variables-and-secrets/>):
/// `BITBUCKET_BUILD_NUMBER`, `BITBUCKET_REPO_FULL_NAME`,
/// `BITBUCKET_GIT_HTTP_ORIGIN`, `BITBUCKET_BRANCH`, `BITBUCKET_STEP_UUID`.
/// All steps of a pipeline share the build number.
fn bitbucket(env: &dyn Env) -> CiContext {
    let repo = var(env, "BITBUCKET_REPO_FULL_NAME");
    let number = var(env, "BITBUCKET_BUILD_NUMBER");
    let base = (!repo.is_empty()).then(|| format!("https://bitbucket.org/{repo}"));
    CiContext {
        ci_type: "bitbucket".to_string(),
        endpoint: Some("https://bitbucket.org".to_string()),
        job_uid: repo.clone(),
        job_name: repo.clone(),
        job_url: base.as_ref().map(|b| format!("{b}/pipelines")),
        job_run_url: base
            .as_ref()
            .map(|b| format!("{b}/pipelines/results/{number}")),
        job_run_name: format!("#{number}"),
        branch: env.var("BITBUCKET_BRANCH"),
        attempt: None,
        execution: env.var("BITBUCKET_STEP_UUID"),
        default_launch_name: name_with_run(&repo, &number),
        job_run_uid: number,
    }
}

/// Buildkite, environment variables
/// (<https://buildkite.com/docs/pipelines/environment-variables>):
/// `BUILDKITE`, `BUILDKITE_ORGANIZATION_SLUG`, `BUILDKITE_PIPELINE_SLUG`,
/// `BUILDKITE_PIPELINE_NAME`, `BUILDKITE_BUILD_ID`, `BUILDKITE_BUILD_NUMBER`,
/// `BUILDKITE_BUILD_URL`, `BUILDKITE_BRANCH`, `BUILDKITE_JOB_ID`,
/// `BUILDKITE_RETRY_COUNT` (0 on the first try).
fn buildkite(env: &dyn Env) -> CiContext {
    let org = var(env, "BUILDKITE_ORGANIZATION_SLUG");
    let pipeline = var(env, "BUILDKITE_PIPELINE_SLUG");
    let number = var(env, "BUILDKITE_BUILD_NUMBER");
    let build_url = env.var("BUILDKITE_BUILD_URL");
    let job_uid = format!("{org}/{pipeline}");
    let job_name = env
        .var("BUILDKITE_PIPELINE_NAME")
        .unwrap_or_else(|| job_uid.clone());
    let attempt = env
        .var("BUILDKITE_RETRY_COUNT")
        .and_then(|r| r.trim().parse::<u32>().ok())
        .map(|r| r.saturating_add(1));
    CiContext {
        ci_type: "buildkite".to_string(),
        endpoint: build_url.as_deref().and_then(origin),
        job_url: build_url
            .as_deref()
            .and_then(|u| u.trim_end_matches('/').split_once("/builds/"))
            .map(|(p, _)| p.to_string()),
        job_run_url: build_url,
        job_run_uid: var(env, "BUILDKITE_BUILD_ID"),
        job_run_name: format!("#{number}"),
        branch: env.var("BUILDKITE_BRANCH"),
        attempt,
        // A retried job gets a new job id.
        execution: env.var("BUILDKITE_JOB_ID"),
        default_launch_name: name_with_run(&job_name, &number),
        job_uid,
        job_name,
    }
}

/// TeamCity, predefined build parameters exported to the environment
/// (<https://www.jetbrains.com/help/teamcity/predefined-build-parameters.html>):
/// `TEAMCITY_VERSION`, `TEAMCITY_PROJECT_NAME`, `TEAMCITY_BUILDCONF_NAME`,
/// `BUILD_NUMBER`. The build id, server URL and branch are configuration
/// parameters, not variables: pass them with `--job-run-url`/`--job-run-branch`
/// (e.g. `%teamcity.serverUrl%/viewLog.html?buildId=%teamcity.build.id%`).
fn teamcity(env: &dyn Env) -> CiContext {
    let project = var(env, "TEAMCITY_PROJECT_NAME");
    let conf = var(env, "TEAMCITY_BUILDCONF_NAME");
    let number = var(env, "BUILD_NUMBER");
    let job_name = format!("{project} / {conf}");
    CiContext {
        ci_type: "teamcity".to_string(),
        endpoint: None,
        job_uid: format!("{project}/{conf}"),
        job_url: None,
        job_run_uid: number.clone(),
        job_run_name: format!("#{number}"),
        job_run_url: None,
        branch: None,
        attempt: None,
        execution: (!number.is_empty()).then(|| number.clone()),
        default_launch_name: name_with_run(&job_name, &number),
        job_name,
    }
}

/// Bamboo, build-specific variables, exported as `bamboo_<name>` with dots
/// as underscores (<https://confluence.atlassian.com/bamboo/bamboo-variables-289277087.html>):
/// `bamboo_buildKey` (`PROJ-PLAN-JOB1`), `bamboo_planKey`, `bamboo_planName`,
/// `bamboo_buildNumber`, `bamboo_buildResultKey`, `bamboo_resultsUrl`,
/// `bamboo_planRepository_branchName`. The job run is the plan result
/// (`<plan key>-<build number>`), which every job of the plan shares.
fn bamboo(env: &dyn Env) -> CiContext {
    let plan = var(env, "bamboo_planKey");
    let number = var(env, "bamboo_buildNumber");
    let results = env.var("bamboo_resultsUrl");
    let server = results.as_deref().and_then(|u| {
        u.split_once("/browse/")
            .map(|(base, _)| base.trim_end_matches('/').to_string())
    });
    let run = format!("{plan}-{number}");
    let job_name = env.var("bamboo_planName").unwrap_or_else(|| plan.clone());
    CiContext {
        ci_type: "bamboo".to_string(),
        endpoint: results.as_deref().and_then(origin),
        job_url: server.as_ref().map(|s| format!("{s}/browse/{plan}")),
        job_run_url: server.as_ref().map(|s| format!("{s}/browse/{run}")),
        job_run_uid: run,
        job_run_name: format!("#{number}"),
        branch: env.var("bamboo_planRepository_branchName"),
        attempt: None,
        execution: env.var("bamboo_buildResultKey"),
        default_launch_name: name_with_run(&job_name, &number),
        job_uid: plan,
        job_name,
    }
}

/// Tekton sets no environment variables: a Task maps its documented context
/// variables (<https://tekton.dev/docs/pipelines/variables/>) into these:
/// `TEKTON_PIPELINE_RUN` ← `$(context.pipelineRun.name)`,
/// `TEKTON_PIPELINE_RUN_UID` ← `$(context.pipelineRun.uid)`,
/// `TEKTON_PIPELINE` ← `$(context.pipeline.name)`,
/// `TEKTON_NAMESPACE` ← `$(context.pipelineRun.namespace)`,
/// `TEKTON_TASK_RUN` ← `$(context.taskRun.name)`,
/// `TEKTON_RETRY_COUNT` ← `$(context.task.retry-count)`; optionally
/// `TEKTON_DASHBOARD_URL` for links.
fn tekton(env: &dyn Env) -> CiContext {
    let run_name = var(env, "TEKTON_PIPELINE_RUN");
    let namespace = var(env, "TEKTON_NAMESPACE");
    let pipeline = var(env, "TEKTON_PIPELINE");
    let dashboard = env
        .var("TEKTON_DASHBOARD_URL")
        .map(|u| u.trim_end_matches('/').to_string());
    let job_uid = if namespace.is_empty() {
        pipeline.clone()
    } else {
        format!("{namespace}/{pipeline}")
    };
    let attempt = env
        .var("TEKTON_RETRY_COUNT")
        .and_then(|r| r.trim().parse::<u32>().ok())
        .map(|r| r.saturating_add(1));
    CiContext {
        ci_type: "tekton".to_string(),
        endpoint: dashboard.as_deref().and_then(origin),
        job_url: dashboard
            .as_ref()
            .map(|d| format!("{d}/#/namespaces/{namespace}/pipelines/{pipeline}")),
        job_run_url: dashboard
            .as_ref()
            .map(|d| format!("{d}/#/namespaces/{namespace}/pipelineruns/{run_name}")),
        job_run_uid: env
            .var("TEKTON_PIPELINE_RUN_UID")
            .unwrap_or_else(|| run_name.clone()),
        execution: env
            .var("TEKTON_TASK_RUN")
            .map(|t| format!("{t}#{}", attempt.unwrap_or(1))),
        attempt,
        branch: None,
        default_launch_name: name_with_run(&pipeline, &run_name),
        job_run_name: run_name,
        job_name: pipeline,
        job_uid,
    }
}
