//! `project create|token` (admin token).

use anyhow::Result;

use crate::cli::{Global, Output, ProjectCmd};
use crate::config::connect;
use crate::exit;
use crate::output::print_json;

pub(crate) async fn run(g: &Global, cmd: ProjectCmd) -> Result<u8> {
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
    }
    Ok(exit::OK)
}
