//! CI detection and CI output sinks.
//!
//! This crate answers two questions for the `onelaunch` binary:
//!
//! 1. **Where are we running?** [`detect`] reads the environment of GitHub
//!    Actions, GitLab CI, Jenkins, Azure Pipelines, CircleCI, Bitbucket
//!    Pipelines, Buildkite, TeamCity, Bamboo or Tekton and returns a [`CiContext`]: the external
//!    job (a workflow, a project, a Jenkins job) and the job run (a workflow
//!    run, a pipeline, a build) that a TestOps launch is attached to. The ids
//!    follow the detection table of Allure 3 (`@allurereport/ci`) and
//!    allurectl, so a launch created by `onelaunch` lands on the same TestOps
//!    job as one created by those tools. [`resolve`] layers explicit overrides
//!    (`--ci-type`, `--job-uid`, `ALLURE_JOB_RUN_UID`, ...) on top of the
//!    detected values; detection is always the lowest-priority default.
//!
//! 2. **How do we hand values to the next step?** The [`sink`] module renders
//!    `KEY=value` pairs (launch id, launch URL, ...) in the formats CI systems
//!    consume: word-split-safe `export $(...)` lines, `eval`-able shell,
//!    GitLab `artifacts:reports:dotenv` files (with a validator for GitLab's
//!    strict rules), JSON, and GitHub `$GITHUB_OUTPUT` / `$GITHUB_ENV` heredoc
//!    blocks.
//!
//! Everything here is pure: the environment is read through the [`Env`] trait,
//! so tests pass a `HashMap` or a closure instead of touching the process
//! environment, and nothing performs I/O.
//!
//! ```
//! use std::collections::HashMap;
//! use onelaunch_ci::{detect, sink};
//!
//! let env: HashMap<String, String> = [
//!     ("JENKINS_URL", "https://ci.example.com/"),
//!     ("JOB_NAME", "shop/main"),
//!     ("JOB_BASE_NAME", "main"),
//!     ("BUILD_NUMBER", "42"),
//! ]
//! .into_iter()
//! .map(|(k, v)| (k.to_string(), v.to_string()))
//! .collect();
//!
//! let ctx = detect(&env).expect("jenkins is detected");
//! assert_eq!(ctx.ci_type, "jenkins");
//! assert_eq!(ctx.job_run_uid, "42");
//! assert_eq!(ctx.default_launch_name, "shop/main #42");
//!
//! let lines = sink::export_safe(&[("ALLURE_LAUNCH_ID", "7".to_string())]);
//! assert_eq!(lines, "ALLURE_LAUNCH_ID=7\n");
//! ```

mod context;
mod env;
pub mod sink;
mod vendors;
#[cfg(test)]
mod vendors_tests;

pub use context::{detect, resolve, CiContext, CiOverrides, GENERIC_CI_TYPE, SHARED_LAUNCH_VARS};
pub use env::{Env, FnEnv, ProcessEnv};
pub use sink::SinkError;
