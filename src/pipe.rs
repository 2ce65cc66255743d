//! Standard output and error that treat a closed pipe as the end of the
//! command: the reader has what it wanted, so the process exits 0 at once
//! (what `head`, `grep -q` and friends expect), instead of panicking (101).
//! Every `print!`/`println!`/`eprint!`/`eprintln!` of the crate goes here
//! (see the macros in `main.rs`).

use std::fmt::Arguments;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static SILENT: AtomicBool = AtomicBool::new(false);

/// `--silent`: from now on stderr carries only lines that start with
/// `error` (progress, links, warnings and notices are left out).
pub(crate) fn set_silent(silent: bool) {
    SILENT.store(silent, Ordering::Relaxed);
}

/// Writes to stdout; on a closed pipe, ends the process with exit code 0.
/// Another failure (a full disk behind a redirect) ends it with exit code 1:
/// the output the command exists for is lost.
pub(crate) fn out(args: Arguments<'_>, newline: bool) {
    let mut stdout = io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| {
        if newline {
            stdout.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(_) => std::process::exit(i32::from(crate::exit::ERROR)),
    }
}

/// Writes to stderr; on a closed pipe, ends the process with exit code 0.
/// Another failure is ignored: diagnostics are not the command's output.
pub(crate) fn err(args: Arguments<'_>, newline: bool) {
    let text = args.to_string();
    if SILENT.load(Ordering::Relaxed) && !text.starts_with("error") {
        return;
    }
    // `error:`/`warning:` painted only when colours are on (`term.rs`).
    let text = crate::term::stderr_line(text);
    let mut stderr = io::stderr().lock();
    let written = stderr.write_all(text.as_bytes()).and_then(|()| {
        if newline {
            stderr.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if matches!(&written, Err(e) if e.kind() == io::ErrorKind::BrokenPipe) {
        std::process::exit(0);
    }
}
