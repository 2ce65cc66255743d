//! `result manual|assign|list|summary`: manual results of a launch (with
//! comment, duration, attachments and who recorded them), who does which
//! manual case, progress per assignee, and automated and manual results apart.

use anyhow::Result;
use onelaunch_api::{self as api, Id};

use crate::cli::{Global, Output, ResultCmd};
use crate::config::connect;
use crate::exit;
use crate::output::{format_stats, print_json};

pub(crate) async fn run(g: &Global, cmd: ResultCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        ResultCmd::Manual {
            launch_id,
            case,
            name,
            status,
            message,
            assignee,
            duration_ms,
            attach,
        } => {
            let mut parts = Vec::new();
            for f in &attach {
                let bytes = std::fs::read(f)
                    .map_err(|e| anyhow::anyhow!("--attach {}: {e}", f.display()))?;
                let file_name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "attachment".into());
                let content_type =
                    onelaunch_client::upload::guess_content_type(&file_name).to_string();
                parts.push(onelaunch_client::AttachmentPart {
                    file_name,
                    content_type,
                    bytes,
                });
            }
            let recorded = conn
                .client
                .record_manual_results(
                    launch_id,
                    &api::ManualResults {
                        results: vec![api::ManualResult {
                            test_case_id: case,
                            name,
                            status,
                            message,
                            assignee,
                            duration_ms,
                        }],
                    },
                )
                .await?;
            if !parts.is_empty() {
                if let Some(r) = recorded.first() {
                    conn.client.upload_attachments(r.id, parts).await?;
                }
            }
            if g.output == Output::Json {
                print_json(&recorded)?;
            } else {
                for r in &recorded {
                    println!(
                        "Manual result [{}] of test case [{}] {}: {} (launch [{launch_id}])",
                        r.id, r.test_case_id, r.name, r.status
                    );
                }
            }
        }
        ResultCmd::Assign {
            launch_id,
            assignments,
        } => {
            let req = api::ManualAssignments {
                assignments: crate::settings::manual_assignees(&assignments, "assignment")?,
            };
            let view = conn.client.assign_manual(launch_id, &req).await?;
            if g.output == Output::Json {
                print_json(&view)?;
            } else {
                for a in &req.assignments {
                    match a.assignee.trim() {
                        "" => println!("Test case [{}] unassigned", a.test_case_id),
                        who => println!("Test case [{}] assigned to {who}", a.test_case_id),
                    }
                }
            }
        }
        ResultCmd::List {
            launch_id,
            assignee,
            left,
            done,
        } => {
            let state = if left {
                Some("left")
            } else if done {
                Some("done")
            } else {
                None
            };
            let view = conn
                .client
                .launch_manual_where(launch_id, assignee.as_deref(), state)
                .await?;
            if g.output == Output::Json {
                print_json(&view)?;
            } else {
                println!("Launch [{launch_id}] manual cases");
                for p in &view.progress {
                    println!(
                        "  {}: {} of {} done",
                        p.assignee.as_deref().unwrap_or("(unassigned)"),
                        p.done,
                        p.total
                    );
                }
                for c in &view.cases {
                    println!(
                        "  [{}] {} - {} - {}",
                        c.test_case_id,
                        c.name,
                        c.assignee.as_deref().unwrap_or("(unassigned)"),
                        c.status.as_deref().unwrap_or("left")
                    );
                }
            }
        }
        ResultCmd::Summary { launch_id } => {
            let automated = conn.client.launch_statistic_of(launch_id, false).await?;
            let manual = conn.client.launch_manual(launch_id).await?;
            if g.output == Output::Json {
                print_json(&serde_json::json!({
                    "launchId": launch_id,
                    "automated": automated,
                    "manual": manual,
                }))?;
            } else {
                println!("Launch [{launch_id}]");
                println!("Automated: {}", format_stats(&automated));
                println!("Manual: {}", format_stats(&manual.statistic));
                for r in &manual.results {
                    println!(
                        "  [{}] case [{}] {}: {}",
                        r.id, r.test_case_id, r.name, r.status
                    );
                }
                let recorded: std::collections::BTreeSet<Id> =
                    manual.results.iter().map(|r| r.test_case_id).collect();
                let todo: Vec<&api::TestCaseDto> = manual
                    .planned
                    .iter()
                    .filter(|c| !recorded.contains(&c.id))
                    .collect();
                if !todo.is_empty() {
                    println!("Manual cases without a result yet:");
                    for c in todo {
                        println!("  [{}] {}", c.id, c.full_name.as_deref().unwrap_or(&c.name));
                    }
                }
            }
        }
    }
    Ok(exit::OK)
}
