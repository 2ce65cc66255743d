//! `testcase list|run`: test cases learned from uploads; running a selection
//! creates a server-led launch.

use anyhow::Result;
use onelaunch_api as api;

use crate::cli::{Global, Output, TestcaseCmd};
use crate::config::connect;
use crate::exit;
use crate::output::{case_line, print_json, print_run, CASE_HEADER};
use crate::settings::{filter_of, launch_form};

pub(crate) async fn run(g: &Global, cmd: TestcaseCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        TestcaseCmd::List {
            filter,
            size,
            page,
            no_header,
        } => {
            let f = filter_of(&filter)?;
            let p = conn
                .client
                .list_test_cases(conn.project_id, &f, page, size.clamp(1, 1000))
                .await?;
            if g.output == Output::Json {
                print_json(&p.content)?;
            } else {
                if !no_header {
                    println!("{CASE_HEADER}");
                }
                for c in &p.content {
                    println!("{}", case_line(c));
                }
                if p.total_elements > p.content.len() as i64 {
                    eprintln!(
                        "{} of {} test cases shown (--page, --size)",
                        p.content.len(),
                        p.total_elements
                    );
                }
            }
        }
        TestcaseCmd::Run { cases, launch } => {
            let run = conn
                .client
                .run_test_cases(&api::TestCaseRun {
                    project_id: conn.project_id,
                    test_case_ids: cases,
                    launch: launch_form(&launch)?,
                })
                .await?;
            print_run(g, &run, launch.launch_id.is_some())?;
        }
    }
    Ok(exit::OK)
}
