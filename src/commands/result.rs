//! `result manual|summary`: manual results of a launch, and its automated and
//! manual results apart.

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
        } => {
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
                        }],
                    },
                )
                .await?;
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
