//! `project create|token|gate|retention` (admin token; a project token may
//! read its project's gate).

use anyhow::Result;
use onelaunch_client::GateOwner;

use crate::cli::{Global, Output, ProjectCmd};
use crate::config::connect;
use crate::exit;
use crate::output::print_json;

pub(crate) async fn run(g: &Global, cmd: ProjectCmd) -> Result<u8> {
    if let ProjectCmd::Gate { id, rules, clear } = &cmd {
        let id = match id.or(g.project_id) {
            Some(id) => id,
            None => connect(g)?.project_id,
        };
        return super::gate::owner(g, GateOwner::Project(id), rules, *clear).await;
    }
    if let ProjectCmd::Retention {
        id,
        days,
        launches,
        off,
    } = &cmd
    {
        return retention(g, *id, *days, *launches, *off).await;
    }
    let conn = connect(g)?;
    match cmd {
        ProjectCmd::Create { name } => {
            let p = conn.client.create_project(&name).await?;
            if g.output == Output::Json {
                print_json(&p)?;
            } else {
                println!("Project [{}] {}", p.id, p.name);
            }
        }
        ProjectCmd::Token { id } => {
            let t = conn.client.create_project_token(id).await?;
            // The one place a token is printed, on purpose: it is shown once.
            println!("{}", t.token);
        }
        ProjectCmd::Gate { .. } | ProjectCmd::Retention { .. } => {
            unreachable!("handled above")
        }
    }
    Ok(exit::OK)
}

/// `project retention [ID] [--days N] [--launches N] [--off]`: shows the
/// retention; a bound not given keeps its current value.
async fn retention(
    g: &Global,
    id: Option<i64>,
    days: Option<i64>,
    launches: Option<i64>,
    off: bool,
) -> Result<u8> {
    let conn = connect(g)?;
    let id = id.or(g.project_id).unwrap_or(conn.project_id);
    let current = conn.client.get_retention(id).await?;
    let r = if off {
        conn.client.set_retention(id, None, None).await?
    } else if days.is_some() || launches.is_some() {
        let keep = |k: &str| current[k].as_i64();
        conn.client
            .set_retention(
                id,
                days.or_else(|| keep("days")),
                launches.or_else(|| keep("launches")),
            )
            .await?
    } else {
        current
    };
    if g.output == Output::Json {
        print_json(&r)?;
    } else {
        let days = r["days"].as_i64();
        let launches = r["launches"].as_i64();
        match (days, launches) {
            (None, None) => println!("Project [{id}] retention: off (every launch is kept)"),
            _ => println!(
                "Project [{id}] retention: closed launches older than {} or beyond the newest {} are deleted",
                days.map_or("(no bound)".to_string(), |d| format!("{d} day(s)")),
                launches.map_or("(no bound)".to_string(), |n| n.to_string())
            ),
        }
    }
    Ok(exit::OK)
}
