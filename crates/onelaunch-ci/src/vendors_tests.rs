//! Detection of each CI from the variables its vendor documents (the
//! examples use the values and shapes of those docs; links in `vendors.rs`).

use std::collections::HashMap;

use crate::{detect, resolve, CiOverrides};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Azure Pipelines: a pull-request build, second attempt of the job.
const AZURE: &[(&str, &str)] = &[
    ("TF_BUILD", "True"),
    ("AGENT_NAME", "Hosted Agent"),
    (
        "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
        "https://dev.azure.com/fabrikam/",
    ),
    ("SYSTEM_TEAMPROJECT", "Fabrikam Fiber"),
    (
        "SYSTEM_TEAMPROJECTID",
        "9d3d9ba8-0c5c-4b2f-9f5c-1d2e3f4a5b6c",
    ),
    ("SYSTEM_DEFINITIONID", "12"),
    ("BUILD_DEFINITIONNAME", "shop-ci"),
    ("BUILD_BUILDID", "4711"),
    ("BUILD_BUILDNUMBER", "20240501.3"),
    ("BUILD_SOURCEBRANCH", "refs/pull/7/merge"),
    ("SYSTEM_PULLREQUEST_SOURCEBRANCH", "refs/heads/feature/pay"),
    ("SYSTEM_JOBID", "0d0a1cbb-1f8e-5a2b-9b0e-3c4d5e6f7a8b"),
    ("SYSTEM_JOBATTEMPT", "2"),
];

#[test]
fn azure_pipelines() {
    let c = detect(&env(AZURE)).expect("azure");
    assert_eq!(c.ci_type, "azure");
    assert_eq!(c.endpoint.as_deref(), Some("https://dev.azure.com"));
    assert_eq!(c.job_uid, "9d3d9ba8-0c5c-4b2f-9f5c-1d2e3f4a5b6c_12");
    assert_eq!(c.job_name, "shop-ci");
    assert_eq!(
        c.job_url.as_deref(),
        Some("https://dev.azure.com/fabrikam/Fabrikam%20Fiber/_build?definitionId=12")
    );
    assert_eq!(c.job_run_uid, "4711");
    assert_eq!(c.job_run_name, "20240501.3");
    assert_eq!(
        c.job_run_url.as_deref(),
        Some("https://dev.azure.com/fabrikam/Fabrikam%20Fiber/_build/results?buildId=4711")
    );
    assert_eq!(c.branch.as_deref(), Some("feature/pay"));
    assert_eq!(c.attempt, Some(2));
    assert_eq!(
        c.execution.as_deref(),
        Some("0d0a1cbb-1f8e-5a2b-9b0e-3c4d5e6f7a8b#2")
    );
    assert_eq!(c.default_launch_name, "shop-ci #20240501.3");
    // A branch build: the branch from BUILD_SOURCEBRANCH.
    let mut push = env(AZURE);
    push.remove("SYSTEM_PULLREQUEST_SOURCEBRANCH");
    push.insert("BUILD_SOURCEBRANCH".into(), "refs/heads/main".into());
    assert_eq!(detect(&push).unwrap().branch.as_deref(), Some("main"));
}

/// CircleCI: job `test` of a workflow, parallel node 1.
const CIRCLE: &[(&str, &str)] = &[
    ("CI", "true"),
    ("CIRCLECI", "true"),
    ("CIRCLE_PROJECT_USERNAME", "acme"),
    ("CIRCLE_PROJECT_REPONAME", "shop"),
    ("CIRCLE_BRANCH", "main"),
    ("CIRCLE_BUILD_NUM", "314"),
    ("CIRCLE_BUILD_URL", "https://circleci.com/gh/acme/shop/314"),
    ("CIRCLE_JOB", "test"),
    ("CIRCLE_NODE_INDEX", "1"),
    ("CIRCLE_NODE_TOTAL", "4"),
    ("CIRCLE_WORKFLOW_ID", "6d5a3b1c-2e4f-4a6b-8c9d-0e1f2a3b4c5d"),
    ("CIRCLE_SHA1", "3f786850e387550fdab836ed7e6dc881de23001b"),
];

#[test]
fn circleci() {
    let c = detect(&env(CIRCLE)).expect("circleci");
    assert_eq!(c.ci_type, "circleci");
    assert_eq!(c.endpoint.as_deref(), Some("https://circleci.com"));
    assert_eq!(c.job_uid, "acme/shop");
    assert_eq!(
        c.job_url.as_deref(),
        Some("https://circleci.com/gh/acme/shop")
    );
    assert_eq!(c.job_run_uid, "6d5a3b1c-2e4f-4a6b-8c9d-0e1f2a3b4c5d");
    assert_eq!(c.job_run_name, "test #314");
    assert_eq!(
        c.job_run_url.as_deref(),
        Some("https://app.circleci.com/pipelines/workflows/6d5a3b1c-2e4f-4a6b-8c9d-0e1f2a3b4c5d")
    );
    assert_eq!(c.branch.as_deref(), Some("main"));
    assert_eq!(c.attempt, None);
    assert_eq!(c.execution.as_deref(), Some("314/1"));
}

/// Bitbucket Pipelines: one step of pipeline #27.
const BITBUCKET: &[(&str, &str)] = &[
    ("CI", "true"),
    ("BITBUCKET_BUILD_NUMBER", "27"),
    ("BITBUCKET_REPO_FULL_NAME", "acme/shop"),
    ("BITBUCKET_WORKSPACE", "acme"),
    ("BITBUCKET_REPO_SLUG", "shop"),
    ("BITBUCKET_BRANCH", "feature/cart"),
    (
        "BITBUCKET_COMMIT",
        "9fceb02d0ae598e95dc970b74767f19372d61af8",
    ),
    (
        "BITBUCKET_GIT_HTTP_ORIGIN",
        "http://bitbucket.org/acme/shop",
    ),
    (
        "BITBUCKET_PIPELINE_UUID",
        "{a1b2c3d4-0000-1111-2222-333344445555}",
    ),
    (
        "BITBUCKET_STEP_UUID",
        "{f0e1d2c3-aaaa-bbbb-cccc-ddddeeeeffff}",
    ),
];

#[test]
fn bitbucket_pipelines() {
    let c = detect(&env(BITBUCKET)).expect("bitbucket");
    assert_eq!(c.ci_type, "bitbucket");
    assert_eq!(c.job_uid, "acme/shop");
    assert_eq!(
        c.job_url.as_deref(),
        Some("https://bitbucket.org/acme/shop/pipelines")
    );
    assert_eq!(c.job_run_uid, "27");
    assert_eq!(c.job_run_name, "#27");
    assert_eq!(
        c.job_run_url.as_deref(),
        Some("https://bitbucket.org/acme/shop/pipelines/results/27")
    );
    assert_eq!(c.branch.as_deref(), Some("feature/cart"));
    assert_eq!(
        c.execution.as_deref(),
        Some("{f0e1d2c3-aaaa-bbbb-cccc-ddddeeeeffff}")
    );
    assert_eq!(c.default_launch_name, "acme/shop #27");
}

/// Buildkite: a job retried once.
const BUILDKITE: &[(&str, &str)] = &[
    ("CI", "true"),
    ("BUILDKITE", "true"),
    ("BUILDKITE_ORGANIZATION_SLUG", "acme"),
    ("BUILDKITE_PIPELINE_SLUG", "shop"),
    ("BUILDKITE_PIPELINE_NAME", "Shop"),
    ("BUILDKITE_BUILD_ID", "f62a1b4d-10f9-4790-bc1c-e2c3a0c80983"),
    ("BUILDKITE_BUILD_NUMBER", "1514"),
    (
        "BUILDKITE_BUILD_URL",
        "https://buildkite.com/acme/shop/builds/1514",
    ),
    ("BUILDKITE_BRANCH", "main"),
    ("BUILDKITE_JOB_ID", "e44f9784-e20e-4b93-a21d-f41fd5869db9"),
    ("BUILDKITE_RETRY_COUNT", "1"),
    ("BUILDKITE_LABEL", ":pytest: tests"),
];

#[test]
fn buildkite() {
    let c = detect(&env(BUILDKITE)).expect("buildkite");
    assert_eq!(c.ci_type, "buildkite");
    assert_eq!(c.endpoint.as_deref(), Some("https://buildkite.com"));
    assert_eq!(c.job_uid, "acme/shop");
    assert_eq!(c.job_name, "Shop");
    assert_eq!(
        c.job_url.as_deref(),
        Some("https://buildkite.com/acme/shop")
    );
    assert_eq!(c.job_run_uid, "f62a1b4d-10f9-4790-bc1c-e2c3a0c80983");
    assert_eq!(c.job_run_name, "#1514");
    assert_eq!(
        c.job_run_url.as_deref(),
        Some("https://buildkite.com/acme/shop/builds/1514")
    );
    assert_eq!(c.branch.as_deref(), Some("main"));
    assert_eq!(c.attempt, Some(2));
    assert_eq!(
        c.execution.as_deref(),
        Some("e44f9784-e20e-4b93-a21d-f41fd5869db9")
    );
    assert_eq!(c.default_launch_name, "Shop #1514");
}

/// TeamCity: the run URL and branch come from overrides (configuration
/// parameters are not exported as variables).
const TEAMCITY: &[(&str, &str)] = &[
    ("TEAMCITY_VERSION", "2024.03.1 (build 156670)"),
    ("TEAMCITY_PROJECT_NAME", "Shop"),
    ("TEAMCITY_BUILDCONF_NAME", "API tests"),
    ("BUILD_NUMBER", "88"),
    (
        "BUILD_VCS_NUMBER",
        "9fceb02d0ae598e95dc970b74767f19372d61af8",
    ),
];

#[test]
fn teamcity() {
    let c = detect(&env(TEAMCITY)).expect("teamcity");
    assert_eq!(c.ci_type, "teamcity");
    assert_eq!(c.job_uid, "Shop/API tests");
    assert_eq!(c.job_name, "Shop / API tests");
    assert_eq!(c.job_run_uid, "88");
    assert_eq!(c.job_run_name, "#88");
    assert_eq!(c.execution.as_deref(), Some("88"));
    assert_eq!(c.job_run_url, None);
    let over = CiOverrides {
        job_run_url: Some("https://tc.example.com/viewLog.html?buildId=1234".into()),
        branch: Some("main".into()),
        ..Default::default()
    };
    let c = resolve(&over, &env(TEAMCITY)).unwrap();
    assert_eq!(
        c.job_run_url.as_deref(),
        Some("https://tc.example.com/viewLog.html?buildId=1234")
    );
    assert_eq!(c.branch.as_deref(), Some("main"));
}

/// Bamboo: job JOB1 of plan PROJ-PLAN, build 15.
const BAMBOO: &[(&str, &str)] = &[
    ("bamboo_buildKey", "PROJ-PLAN-JOB1"),
    ("bamboo_planKey", "PROJ-PLAN"),
    ("bamboo_planName", "Project - Plan"),
    ("bamboo_shortJobName", "Default Job"),
    ("bamboo_buildNumber", "15"),
    ("bamboo_buildResultKey", "PROJ-PLAN-JOB1-15"),
    (
        "bamboo_resultsUrl",
        "https://bamboo.example.com/browse/PROJ-PLAN-JOB1-15",
    ),
    ("bamboo_planRepository_branchName", "develop"),
];

#[test]
fn bamboo() {
    let c = detect(&env(BAMBOO)).expect("bamboo");
    assert_eq!(c.ci_type, "bamboo");
    assert_eq!(c.endpoint.as_deref(), Some("https://bamboo.example.com"));
    assert_eq!(c.job_uid, "PROJ-PLAN");
    assert_eq!(c.job_name, "Project - Plan");
    assert_eq!(
        c.job_url.as_deref(),
        Some("https://bamboo.example.com/browse/PROJ-PLAN")
    );
    assert_eq!(c.job_run_uid, "PROJ-PLAN-15");
    assert_eq!(c.job_run_name, "#15");
    assert_eq!(
        c.job_run_url.as_deref(),
        Some("https://bamboo.example.com/browse/PROJ-PLAN-15")
    );
    assert_eq!(c.branch.as_deref(), Some("develop"));
    assert_eq!(c.execution.as_deref(), Some("PROJ-PLAN-JOB1-15"));
}

/// Tekton: the Task maps its context variables into the environment.
const TEKTON: &[(&str, &str)] = &[
    ("TEKTON_PIPELINE_RUN", "shop-ci-run-x7k2p"),
    (
        "TEKTON_PIPELINE_RUN_UID",
        "3b9c2d1e-4f5a-6b7c-8d9e-0f1a2b3c4d5e",
    ),
    ("TEKTON_PIPELINE", "shop-ci"),
    ("TEKTON_NAMESPACE", "ci"),
    ("TEKTON_TASK_RUN", "shop-ci-run-x7k2p-tests"),
    ("TEKTON_RETRY_COUNT", "0"),
    ("TEKTON_DASHBOARD_URL", "https://tekton.example.com/"),
];

#[test]
fn tekton() {
    let c = detect(&env(TEKTON)).expect("tekton");
    assert_eq!(c.ci_type, "tekton");
    assert_eq!(c.endpoint.as_deref(), Some("https://tekton.example.com"));
    assert_eq!(c.job_uid, "ci/shop-ci");
    assert_eq!(c.job_name, "shop-ci");
    assert_eq!(c.job_run_uid, "3b9c2d1e-4f5a-6b7c-8d9e-0f1a2b3c4d5e");
    assert_eq!(c.job_run_name, "shop-ci-run-x7k2p");
    assert_eq!(
        c.job_run_url.as_deref(),
        Some("https://tekton.example.com/#/namespaces/ci/pipelineruns/shop-ci-run-x7k2p")
    );
    assert_eq!(c.attempt, Some(1));
    assert_eq!(c.execution.as_deref(), Some("shop-ci-run-x7k2p-tests#1"));
}

#[test]
fn the_first_three_keep_priority_and_empty_markers_do_not_detect() {
    let mut both = env(CIRCLE);
    both.insert("GITHUB_ACTIONS".into(), "true".into());
    assert_eq!(detect(&both).unwrap().ci_type, "github");
    // Jenkins also sets BUILD_NUMBER; TeamCity is only TEAMCITY_VERSION.
    assert!(detect(&env(&[("BUILD_NUMBER", "5")])).is_none());
    for marker in [
        "TF_BUILD",
        "CIRCLECI",
        "BITBUCKET_BUILD_NUMBER",
        "BUILDKITE",
        "TEAMCITY_VERSION",
        "bamboo_buildKey",
        "TEKTON_PIPELINE_RUN",
    ] {
        assert!(detect(&env(&[(marker, "")])).is_none(), "{marker}");
    }
}
