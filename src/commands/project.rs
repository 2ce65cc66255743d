//! `project create|token|gate` (admin token; a project token may read its
//! project's gate).

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
        ProjectCmd::Gate { .. } => unreachable!("handled above"),
    }
    Ok(exit::OK)
}
