//! `plan create|list|show|executors|run|assign|gate`: test plans, which job runs which of
//! their cases, and server-led runs of a plan (one launch, one job run per
//! executor job, jobs triggered by the server).

use anyhow::{bail, Result};
use onelaunch_api as api;

use crate::cli::{Global, Output, PlanCmd};
use crate::config::connect;
use crate::exit::{self, Exit};
use crate::output::{case_line, print_json, print_run, CASE_HEADER};
use crate::settings::{filter_of, launch_form};

fn describe_filter(f: &api::TestCaseFilter) -> String {
    let mut parts = Vec::new();
    for l in &f.labels {
        parts.push(format!("label {}={}", l.name, l.value));
    }
    if let Some(p) = &f.name_pattern {
        parts.push(format!("name ~ {p:?}"));
    }
    if !f.status.is_empty() {
        parts.push(format!("last status {}", f.status.join("|")));
    }
    parts.join(", ")
}

fn print_plan(p: &api::TestPlanDto) {
    println!("Test plan [{}] {}", p.id, p.name);
    if !p.test_case_ids.is_empty() {
        let ids: Vec<String> = p.test_case_ids.iter().map(|i| i.to_string()).collect();
        println!("Test cases chosen: {}", ids.join(", "));
    }
    if let Some(f) = p.filter.as_ref().filter(|f| !f.is_empty()) {
        println!("Filter: {}", describe_filter(f));
    }
    println!("Selects {} test cases:", p.test_cases.len());
    println!("  {CASE_HEADER}");
    for c in &p.test_cases {
        println!("  {}", case_line(c));
    }
}

fn executor_line(c: &api::ExecutorCase) -> String {
    format!(
        "    [{}] {}  {}{}",
        c.id,
        c.allure_id.as_deref().unwrap_or("-"),
        c.full_name.as_deref().unwrap_or(&c.name),
        if c.source == "override" {
            "  (override)"
        } else {
            ""
        }
    )
}

fn print_executors(e: &api::ExecutorsDto) {
    println!("Executors of test plan [{}]", e.plan_id);
    for group in &e.jobs {
        println!(
            "  Job [{}] {} ({}): {} test cases",
            group.job.id,
            group.job.name,
            group.job.kind.as_deref().unwrap_or("unknown CI"),
            group.test_cases.len()
        );
        for c in &group.test_cases {
            println!("{}", executor_line(c));
        }
    }
    println!("  Manual: {} test cases", e.manual.len());
    for c in &e.manual {
        println!("{}", executor_line(c));
    }
}

pub(crate) async fn run(g: &Global, cmd: PlanCmd) -> Result<u8> {
    if let PlanCmd::Gate { id, rules, clear } = &cmd {
        let owner = onelaunch_client::GateOwner::Plan(*id);
        return super::gate::owner(g, owner, rules, *clear).await;
    }
    let conn = connect(g)?;
    match cmd {
        PlanCmd::Create {
            name,
            cases,
            filter,
        } => {
            let f = filter_of(&filter)?;
            let p = conn
                .client
                .create_test_plan(&api::TestPlanCreate {
                    project_id: conn.project_id,
                    name,
                    test_case_ids: cases,
                    filter: (!f.is_empty()).then_some(f),
                })
                .await?;
            if g.output == Output::Json {
                print_json(&p)?;
            } else {
                print_plan(&p);
            }
        }
        PlanCmd::List => {
            let plans = conn.client.list_test_plans(conn.project_id).await?;
            if g.output == Output::Json {
                print_json(&plans)?;
            } else {
                for p in &plans {
                    println!("{}\t{}", p.id, p.name);
                }
            }
        }
        PlanCmd::Gate { .. } => unreachable!("handled above"),
        PlanCmd::Assign { id, assignments } => {
            let a = if assignments.is_empty() {
                conn.client.plan_assignees(id).await?
            } else {
                let req = api::ManualAssignments {
                    assignments: crate::settings::manual_assignees(&assignments, "CASE=NAME")?,
                };
                conn.client.set_plan_assignees(id, &req).await?
            };
            if g.output == Output::Json {
                print_json(&a)?;
            } else if a.assignments.is_empty() {
                println!("No manual case of plan [{id}] is assigned");
            } else {
                println!("CASE\tASSIGNEE");
                for x in &a.assignments {
                    println!("{}\t{}", x.test_case_id, x.assignee);
                }
            }
        }
        PlanCmd::Show { id } => {
            let p = conn.client.get_test_plan(id).await?;
            if g.output == Output::Json {
                print_json(&p)?;
            } else {
                print_plan(&p);
            }
        }
        PlanCmd::Executors {
            id,
            cases,
            filter,
            job,
            manual,
            default,
        } => {
            let f = filter_of(&filter)?;
            let change = job.is_some() || manual || default;
            if !change && (!cases.is_empty() || !f.is_empty()) {
                bail!(Exit::new(
                    exit::USAGE,
                    "--case/--label/--name-pattern/--status choose cases to change: add --job ID, --manual or --default"
                ));
            }
            let e = if change {
                conn.client
                    .override_executors(
                        id,
                        &api::ExecutorOverride {
                            test_case_ids: cases,
                            filter: (!f.is_empty()).then_some(f),
                            job_id: job,
                            manual,
                            reset: default,
                        },
                    )
                    .await?
            } else {
                conn.client.plan_executors(id).await?
            };
            if g.output == Output::Json {
                print_json(&e)?;
            } else {
                print_executors(&e);
            }
        }
        PlanCmd::Run { id, launch } => {
            let run = conn
                .client
                .run_test_plan(id, &launch_form(&launch)?)
                .await?;
            print_run(g, &run, launch.launch_id.is_some())?;
        }
    }
    Ok(exit::OK)
}
