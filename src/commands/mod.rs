//! One module per command; [`run`] dispatches the parsed command line to it.

mod close_wait;
mod compare;
mod compat;
mod delivery;
mod gate;
mod job;
mod job_run;
mod launch;
mod plan;
mod project;
mod rerun;
mod result;
mod server;
mod testcase;
mod token;
mod upload;
mod watch;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub(crate) async fn run(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Server(args) => server::run(g, args).await,
        Command::Launch(cmd) => launch::run(g, cmd).await,
        Command::JobRun(cmd) => job_run::run(g, cmd).await,
        Command::Upload(args) => upload::run(g, args).await,
        Command::Watch(args) => watch::run(g, args).await,
        Command::Project(cmd) => project::run(g, cmd).await,
        Command::Token(cmd) => token::run(g, cmd).await,
        Command::Testcase(cmd) => testcase::run(g, cmd).await,
        Command::Job(cmd) => job::run(g, cmd).await,
        Command::Plan(cmd) => plan::run(g, cmd).await,
        Command::Result(cmd) => result::run(g, cmd).await,
        Command::Ci(cmd) => compat::ci(g, cmd).await,
        Command::Auth(cmd) => compat::auth(g, cmd).await,
    }
}
