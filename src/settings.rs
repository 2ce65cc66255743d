//! Clap structs resolved into the values commands act on, once per command:
//! the launch to use or create, this CI job's identity, the upload settings,
//! and the test case filter and launch form of server-led runs. Code past this
//! point (`target.rs`, the uploader) never sees a clap type.

use std::path::PathBuf;

use anyhow::Result;
use onelaunch_api as api;
use onelaunch_ci::{CiContext, CiOverrides, ProcessEnv};

use crate::cli::{CiArgs, FilterArgs, LaunchArgs, LaunchFormArgs, UploadOpts};
use crate::exit::{self, Exit};

/// Which launch to join or create (`--launch-id`, `--launch-name`,
/// `--launch-tags`, `--reopen-closed-launch` and their `ALLURE_*` variables).
#[derive(Clone, Debug, Default)]
pub(crate) struct LaunchChoice {
    /// Join this launch instead of creating one.
    pub(crate) id: Option<i64>,
    /// Name of the launch to create; `None` when not given or blank.
    pub(crate) name: Option<String>,
    /// Tags of the launch to create.
    pub(crate) tags: Vec<String>,
    /// Reopen the launch if it is closed instead of failing.
    pub(crate) reopen_closed_launch: bool,
}

impl LaunchChoice {
    /// From the flags as given: a blank name counts as none, tags are
    /// comma-separated.
    pub(crate) fn new(
        id: Option<i64>,
        name: Option<String>,
        tags: Option<&str>,
        reopen_closed_launch: bool,
    ) -> Self {
        LaunchChoice {
            id,
            name: name.filter(|n| !n.trim().is_empty()),
            tags: split_tags(tags),
            reopen_closed_launch,
        }
    }

    pub(crate) fn of(a: &LaunchArgs) -> Self {
        Self::new(
            a.launch_id,
            a.launch_name.clone(),
            a.launch_tags.as_deref(),
            a.reopen_closed_launch,
        )
    }
}

/// Comma-separated tags, trimmed, empty ones dropped.
pub(crate) fn split_tags(tags: Option<&str>) -> Vec<String> {
    tags.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// This CI job's identity: the `--ci-*`/`--job-*` flags over what is detected
/// from the CI's variables; `None` outside CI.
pub(crate) fn ci_context(ci: &CiArgs) -> Option<CiContext> {
    let overrides = CiOverrides {
        ci_type: ci.ci_type.clone(),
        ci_endpoint: ci.ci_endpoint.clone(),
        job_uid: ci.job_uid.clone(),
        job_name: ci.job_name.clone(),
        job_url: ci.job_url.clone(),
        job_run_uid: ci.job_run_uid.clone(),
        job_run_name: ci.job_run_name.clone(),
        job_run_url: ci.job_run_url.clone(),
        branch: ci.job_run_branch.clone(),
        execution: ci.ci_execution.clone(),
    };
    onelaunch_ci::resolve(&overrides, &ProcessEnv)
}

/// The options of `upload` and `watch`, resolved.
#[derive(Clone, Debug)]
pub(crate) struct UploadSettings {
    /// Upload into this job run (`--job-run-id`, `ALLURE_JOB_RUN_ID`).
    pub(crate) job_run_id: Option<i64>,
    pub(crate) launch: LaunchChoice,
    pub(crate) ci: Option<CiContext>,
    /// Requests in flight at once, at least 1.
    pub(crate) concurrency: usize,
    /// Results per request, 1 to 1000.
    pub(crate) batch_size: usize,
    /// `--spool DIR`, when given.
    pub(crate) spool: Option<PathBuf>,
    /// `--allow-empty`: no results is not an error.
    pub(crate) allow_empty: bool,
}

impl UploadSettings {
    pub(crate) fn of(opts: &UploadOpts) -> Self {
        UploadSettings {
            job_run_id: opts.job_run_id,
            launch: LaunchChoice::of(&opts.launch),
            ci: ci_context(&opts.ci),
            concurrency: opts.concurrency.max(1),
            batch_size: opts.size.clamp(1, 1000),
            spool: opts.spool.clone(),
            allow_empty: opts.allow_empty,
        }
    }
}

/// Splits `NAME=VALUE`; `what` names the flag in the error.
pub(crate) fn pair(s: &str, what: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(Exit::new(exit::USAGE, format!("{what} {s:?}: expected NAME=VALUE")).into()),
    }
}

/// The test cases `--label`, `--name-pattern` and `--status` select.
pub(crate) fn filter_of(f: &FilterArgs) -> Result<api::TestCaseFilter> {
    let mut labels = Vec::new();
    for l in &f.labels {
        let (name, value) = pair(l, "--label")?;
        labels.push(api::LabelDto {
            name: name.into(),
            value: value.into(),
        });
    }
    Ok(api::TestCaseFilter {
        labels,
        name_pattern: f.name_pattern.clone().filter(|p| !p.trim().is_empty()),
        status: f.status.clone(),
    })
}

/// The launch form of a server-led run.
pub(crate) fn launch_form(a: &LaunchFormArgs) -> Result<api::LaunchForm> {
    let mut environment = Vec::new();
    for e in &a.env {
        let (key, value) = pair(e, "--env")?;
        environment.push(api::KeyValue { key, value });
    }
    Ok(api::LaunchForm {
        launch_name: a.launch_name.clone(),
        tags: a.tags.clone(),
        issues: a.issues.clone(),
        environment,
        request_id: None,
        manual_assignees: manual_assignees(&a.assignees, "--assignee")?,
        launch_id: a.launch_id,
    })
}

/// `CASE_ID=NAME` pairs into manual assignments.
pub(crate) fn manual_assignees(list: &[String], what: &str) -> Result<Vec<api::ManualAssignment>> {
    let mut out = Vec::new();
    for a in list {
        let (case, name) = a.split_once('=').ok_or_else(|| {
            Exit::new(exit::USAGE, format!("{what} {a:?}: expected CASE_ID=NAME"))
        })?;
        let test_case_id = case.trim().parse().map_err(|_| {
            Exit::new(
                exit::USAGE,
                format!("{what} {a:?}: {case:?} is not a test case id"),
            )
        })?;
        out.push(api::ManualAssignment {
            test_case_id,
            assignee: name.trim().to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_choice_drops_blank_names_and_empty_tags() {
        let c = LaunchChoice::new(Some(3), Some("  ".into()), Some(" smoke, ,nightly "), true);
        assert_eq!(c.id, Some(3));
        assert_eq!(c.name, None);
        assert_eq!(c.tags, ["smoke", "nightly"]);
        assert!(c.reopen_closed_launch);
        let c = LaunchChoice::new(None, Some("Nightly".into()), None, false);
        assert_eq!(c.name.as_deref(), Some("Nightly"));
        assert!(c.tags.is_empty());
    }

    /// Every argument of every subcommand, with the variable it reads.
    fn env_args(cmd: &clap::Command, out: &mut Vec<(String, String, String)>) {
        for a in cmd.get_arguments() {
            if let Some(env) = a.get_env() {
                out.push((
                    cmd.get_name().to_string(),
                    a.get_id().to_string(),
                    env.to_string_lossy().into_owned(),
                ));
            }
        }
        for sub in cmd.get_subcommands() {
            env_args(sub, out);
        }
    }

    #[test]
    fn shared_launch_variables_are_never_read_as_this_pipelines_identity() {
        use clap::CommandFactory;
        let identity = [
            "ci_type",
            "ci_endpoint",
            "job_uid",
            "job_name",
            "job_url",
            "job_run_uid",
            "job_run_name",
            "job_run_url",
            "job_run_branch",
            "ci_execution",
        ];
        let mut args = Vec::new();
        env_args(&crate::cli::Cli::command(), &mut args);
        assert!(args.iter().any(|(_, id, _)| id == "job_run_url"));
        for (cmd, id, env) in &args {
            let shared = onelaunch_ci::SHARED_LAUNCH_VARS.contains(&env.as_str());
            assert!(
                !(shared && identity.contains(&id.as_str())),
                "`{cmd} --{id}` reads {env}, which describes the shared launch"
            );
            // The links of the shared launch and job run are read by nothing.
            assert!(
                env != "ALLURE_JOB_RUN_URL" && env != "ALLURE_LAUNCH_URL",
                "`{cmd} --{id}` reads {env}"
            );
        }
    }

    #[test]
    fn pairs_need_a_name() {
        assert_eq!(
            pair(" os = linux=x", "--env").unwrap(),
            ("os".to_string(), " linux=x".to_string())
        );
        for bad in ["novalue", "=value", " =v"] {
            let e = pair(bad, "--label").unwrap_err();
            assert_eq!(crate::exit::code_of(&e), exit::USAGE, "{bad}");
        }
    }
}
