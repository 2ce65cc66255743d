//! The `onelaunch` binary: the CLI and the server in one executable.

// Printing: `print!`, `println!` and `eprintln!` shadow the standard macros in the whole crate so that a
// reader that stops early (`onelaunch launch show 7 | head -1`) ends the
// command normally (exit 0) instead of panicking on the closed pipe.
macro_rules! print {
    ($($arg:tt)*) => { $crate::pipe::out(::std::format_args!($($arg)*), false) };
}
macro_rules! println {
    () => { $crate::pipe::out(::std::format_args!(""), true) };
    ($($arg:tt)*) => { $crate::pipe::out(::std::format_args!($($arg)*), true) };
}
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::pipe::err(::std::format_args!($($arg)*), false) };
}
macro_rules! eprintln {
    () => { $crate::pipe::err(::std::format_args!(""), true) };
    ($($arg:tt)*) => { $crate::pipe::err(::std::format_args!($($arg)*), true) };
}

mod cli;
mod commands;
mod config;
mod duration;
mod exit;
mod output;
mod pipe;
mod settings;
mod target;
mod term;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // An empty `ALLURE_*`/`ONELAUNCH_*` variable means "not set" (CI systems
    // often define unused variables as empty strings).
    for (key, value) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if value.is_empty() && (k.starts_with("ALLURE_") || k.starts_with("ONELAUNCH_")) {
            std::env::remove_var(&key);
        }
    }
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    pipe::set_silent(cli.global.silent);
    term::init(cli.global.color);
    init_tracing(match &cli.command {
        cli::Command::Server(a) => Some(a.log_format),
        _ => None,
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::code_of(&err))
        }
    }
}

/// The log on stderr: for the server (`Some(format)`) `info` and its request
/// lines, as text or JSON (`--log-format`); for the CLI warnings only.
/// `ONELAUNCH_LOG` overrides the filter. Text has colours only when stderr
/// gets them (`term`: a terminal, no `NO_COLOR`, or `--color always`); JSON
/// never has. Nothing logged carries a header or a token (the request line:
/// `onelaunch_server::observe::requests`).
fn init_tracing(server: Option<cli::LogFormat>) {
    use tracing_subscriber::EnvFilter;
    let default = if server.is_some() {
        "info,sqlx=warn"
    } else {
        "warn"
    };
    let filter =
        EnvFilter::try_from_env("ONELAUNCH_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match server {
        Some(cli::LogFormat::Json) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        _ => builder.with_ansi(term::stderr_color()).try_init(),
    };
}
