//! `launch rerun`: runs selected tests of a launch again into the same
//! launch, one new job run per job that produced them.

use anyhow::Result;
use onelaunch_api as api;

use crate::cli::{Global, Output, RerunArgs};
use crate::config::connect;
use crate::exit;
use crate::output::print_json;
use crate::settings::pair;

pub(crate) async fn run(g: &Global, a: RerunArgs) -> Result<u8> {
    let mut labels = Vec::new();
    for l in &a.labels {
        let (name, value) = pair(l, "--label")?;
        labels.push(api::LabelDto {
            name: name.into(),
            value: value.into(),
        });
    }
    let mut environment = Vec::new();
    for e in &a.env {
        let (key, value) = pair(e, "--env")?;
        environment.push(api::KeyValue { key, value });
    }
    let selection = api::RerunSelection {
        failed: a.failed,
        status: a.status.clone(),
        test_case_ids: a.cases.clone(),
        test_result_ids: Vec::new(),
        labels,
        job_ids: a.jobs.clone(),
    };
    if selection.is_empty() {
        return Err(exit::Exit::new(
            exit::USAGE,
            "choose the tests to rerun: --failed, --status, --case, --label or --job",
        )
        .into());
    }
    let conn = connect(g)?;
    let dto = conn
        .client
        .rerun_launch(
            a.id,
            &api::RerunRequest {
                selection,
                environment,
                request_id: None,
            },
        )
        .await?;
    if g.output == Output::Json {
        print_json(&dto)?;
    } else {
        print!("{}", text(&dto));
    }
    if dto.job_runs.is_empty() {
        eprintln!(
            "onelaunch: nothing was rerun: no job can run the selected tests of launch [{}]",
            dto.launch_id
        );
        return Ok(exit::ERROR);
    }
    Ok(exit::OK)
}

fn text(dto: &api::RerunDto) -> String {
    let mut out = String::new();
    let tests: usize = dto.job_runs.iter().map(|r| r.test_case_ids.len()).sum();
    out.push_str(&format!(
        "Launch [{}]: {tests} tests rerun in {} job runs{}\n",
        dto.launch_id,
        dto.job_runs.len(),
        if dto.reopened {
            " (launch reopened)"
        } else {
            ""
        }
    ));
    for p in &dto.job_runs {
        let r = &p.job_run;
        let error = r
            .error_message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  Job run [{}] of job [{}] {}: {} test cases, {}{error}\n",
            r.id,
            r.job.id,
            r.job.name,
            p.test_case_ids.len(),
            r.stage
        ));
    }
    if !dto.not_rerunnable.is_empty() {
        out.push_str(&format!(
            "Not rerunnable: {} tests\n",
            dto.not_rerunnable.len()
        ));
        for n in &dto.not_rerunnable {
            out.push_str(&format!(
                "  {} (result {}): {}\n",
                n.name, n.test_result_id, n.reason
            ));
        }
    }
    out
}
