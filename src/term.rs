//! The terminal: colours (`--color auto|always|never`, `NO_COLOR`,
//! `CLICOLOR_FORCE`) and the progress display of an upload.
//!
//! Colour is decided once per stream at start: `always` paints, `never`
//! paints nothing; `auto` paints a stream that is a terminal (not
//! `TERM=dumb`), unless `NO_COLOR` is set to anything non-empty;
//! `CLICOLOR_FORCE` (non-empty, not `0`) paints under `auto` even into a pipe.
//! Without colour the CLI writes no escape sequence at all: the progress line
//! is redrawn with a carriage return only.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use onelaunch_client::upload::{ProgressCounts, UploadProgress};

use crate::cli::{ColorChoice, Global, Output};

static STDOUT_COLOR: AtomicBool = AtomicBool::new(false);
static STDERR_COLOR: AtomicBool = AtomicBool::new(false);

fn env_on(key: &str) -> bool {
    std::env::var_os(key).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Decides, once, whether stdout and stderr get colours.
pub(crate) fn init(choice: ColorChoice) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let force = env_on("CLICOLOR_FORCE");
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    let decide = |tty: bool| match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && (force || (tty && !dumb)),
    };
    STDOUT_COLOR.store(decide(std::io::stdout().is_terminal()), Ordering::Relaxed);
    STDERR_COLOR.store(decide(std::io::stderr().is_terminal()), Ordering::Relaxed);
}

fn paint(on: bool, sgr: &str, text: &str) -> String {
    if on {
        format!("\x1b[{sgr}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A test status for stdout, coloured by its meaning when colours are on.
pub(crate) fn status(name: &str) -> String {
    let sgr = match name {
        "passed" => "32",
        "failed" => "31",
        "broken" => "33",
        "skipped" | "unknown" => "90",
        _ => return name.to_string(),
    };
    paint(STDOUT_COLOR.load(Ordering::Relaxed), sgr, name)
}

/// A stderr line with its `error:`/`warning:` prefix painted when colours are on.
pub(crate) fn stderr_line(line: String) -> String {
    if !STDERR_COLOR.load(Ordering::Relaxed) {
        return line;
    }
    for (prefix, sgr) in [("error:", "1;31"), ("warning:", "1;33")] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return format!("{}{rest}", paint(true, sgr, prefix));
        }
    }
    line
}

/// How an upload shows its progress on stderr.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// One line redrawn in place (stderr is a terminal).
    Live,
    /// A plain line every [`LOG_EVERY`] (stderr is a file or a pipe): short
    /// uploads print only their summary, long ones show they are alive.
    Log,
}

const LIVE_EVERY: Duration = Duration::from_millis(100);
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The progress display of a running upload; [`Progress::finish`] ends it.
pub(crate) struct Progress {
    task: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    mode: Option<Mode>,
    counts: Arc<UploadProgress>,
    started: Instant,
}

impl Progress {
    /// Starts showing `counts` on stderr: nothing with `-o json` or `--silent`.
    pub(crate) fn start(g: &Global, counts: Arc<UploadProgress>) -> Progress {
        let mode = if g.output == Output::Json || g.silent {
            None
        } else if std::io::stderr().is_terminal() {
            Some(Mode::Live)
        } else {
            Some(Mode::Log)
        };
        let started = Instant::now();
        let task = mode.map(|mode| {
            let (stop, mut stopped) = tokio::sync::oneshot::channel();
            let c = counts.clone();
            let handle = tokio::spawn(async move {
                let every = if mode == Mode::Live {
                    LIVE_EVERY
                } else {
                    LOG_EVERY
                };
                let mut width = 0;
                if mode == Mode::Live {
                    width = draw_live(&line("Uploading", c.counts(), started), width);
                }
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        () = tokio::time::sleep(every) => {}
                    }
                    let text = line("Uploading", c.counts(), started);
                    match mode {
                        Mode::Live => width = draw_live(&text, width),
                        Mode::Log => eprintln!("{text}"),
                    }
                }
            });
            (stop, handle)
        });
        Progress {
            task,
            mode,
            counts,
            started,
        }
    }

    /// Stops the display; in a terminal its last frame stays, with the totals.
    pub(crate) async fn finish(mut self) {
        if let Some((stop, handle)) = self.task.take() {
            let _ = stop.send(());
            let _ = handle.await;
        }
        if self.mode == Some(Mode::Live) {
            let text = line("Uploaded", self.counts.counts(), self.started);
            // Four spaces cover a frame a few characters longer than this one.
            draw_live(&text, text.chars().count() + 4);
            eprintln!();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some((_, handle)) = self.task.take() {
            handle.abort();
            if self.mode == Some(Mode::Live) {
                eprintln!();
            }
        }
    }
}

/// Redraws the live line with a carriage return (no escape sequence), padding
/// over a longer previous frame; returns the width drawn.
fn draw_live(text: &str, previous: usize) -> usize {
    let width = text.chars().count();
    let pad = previous.saturating_sub(width);
    eprint!("\r{text}{}", " ".repeat(pad));
    width
}

fn line(verb: &str, c: ProgressCounts, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 {
        c.results as f64 / secs
    } else {
        0.0
    };
    format!(
        "{verb}: {} files read, {} results sent, {} attachments, {rate:.0} results/s, {secs:.1}s",
        c.files_read, c.results, c.attachments
    )
}
