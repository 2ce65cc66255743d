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

/// Whether stderr gets colours (the server's text log too).
pub(crate) fn stderr_color() -> bool {
    STDERR_COLOR.load(Ordering::Relaxed)
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

// ---------------------------------------------------------------- watch

/// How `watch` shows what it sends while the test command runs.
///
/// The command's stdout and stderr pass through onelaunch, byte for byte:
/// like cargo's progress bar (and nextest's, Bazel's), the status sits below
/// the command's output, and onelaunch writes only *between* the command's
/// lines. On a terminal the status line is erased (carriage return, spaces,
/// carriage return: no escape sequence) before each chunk of the command's
/// output and redrawn only once that output ends a line, so a line the
/// command is still writing (a row of dots) is never broken. Through a pipe
/// or into a file a plain summary line is written at most every
/// [`LOG_EVERY`], also only at a line boundary. Plain periodic lines on a
/// terminal were the alternative; they would cut into the command's lines,
/// which is exactly what the display must not do.
///
/// When onelaunch's stdout and stderr are the same file (a terminal, or
/// `>log 2>&1`), the command gets one pipe for both, so the order of its
/// stdout and stderr writes is kept exactly; otherwise it gets one pipe each,
/// copied to onelaunch's stdout and stderr. The command therefore sees a pipe,
/// not a terminal: a command that colours only on a terminal has its own
/// switch (`--color=always`, `FORCE_COLOR`). With `--silent` or `-o json`
/// there is no display and the command inherits onelaunch's stdout and
/// stderr unchanged.
pub(crate) struct WatchDisplay {
    mode: Mode,
    shared: Arc<WatchShared>,
    started: Instant,
    ticker: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    /// Closed when every copying thread has reached the end of its pipe.
    copied: Option<tokio::sync::mpsc::UnboundedReceiver<()>>,
}

#[cfg_attr(not(unix), allow(dead_code))]
struct WatchShared {
    screen: std::sync::Mutex<Screen>,
    counts: Arc<UploadProgress>,
    session_open: AtomicBool,
}

/// What is on the status stream (onelaunch's stderr) now.
struct Screen {
    /// Width of the status line drawn after the command's output (0: none).
    drawn: usize,
    /// The command's output on the status stream ends a line (or is empty).
    at_line_start: bool,
    /// Lines of onelaunch's own, waiting for the command to end its line.
    pending: Vec<String>,
    /// The command's output copied to a stdout of its own ends a line.
    stdout_at_line_start: bool,
    /// The status line drawn last.
    shown: String,
}

/// Where a copied stream of the command goes.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg(unix)]
enum Dest {
    Stdout,
    Stderr,
}

/// The live status line is at most this wide, so that it never wraps (a
/// wrapped line could not be erased with a carriage return).
#[cfg(unix)]
const WATCH_LIVE_WIDTH: usize = 79;

impl WatchDisplay {
    /// The display of a `watch` uploading with `counts`: `None` with
    /// `-o json` or `--silent` (then the command's output is not touched).
    pub(crate) fn new(g: &Global, counts: Arc<UploadProgress>) -> Option<WatchDisplay> {
        if g.output == Output::Json || g.silent {
            return None;
        }
        let mode = if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Log
        };
        Some(WatchDisplay {
            mode,
            shared: Arc::new(WatchShared {
                screen: std::sync::Mutex::new(Screen {
                    drawn: 0,
                    at_line_start: true,
                    pending: Vec::new(),
                    stdout_at_line_start: true,
                    shown: String::new(),
                }),
                counts,
                session_open: AtomicBool::new(false),
            }),
            started: Instant::now(),
            ticker: None,
            copied: None,
        })
    }

    /// Gives `command` pipes for its stdout and stderr and starts copying
    /// them. Drop `command` once it is spawned (it holds the pipes' write
    /// ends), so that the copying ends with the command's output.
    #[cfg(unix)]
    pub(crate) fn connect(&mut self, command: &mut tokio::process::Command) -> std::io::Result<()> {
        let (done, copied) = tokio::sync::mpsc::unbounded_channel();
        if same_file(&std::io::stdout(), &std::io::stderr()) {
            let (reader, writer) = pipe()?;
            command.stdout(writer.try_clone()?).stderr(writer);
            self.copy(reader, Dest::Stdout, true, done)?;
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            command.stdout(out_w).stderr(err_w);
            self.copy(out_r, Dest::Stdout, false, done.clone())?;
            self.copy(err_r, Dest::Stderr, true, done)?;
        }
        self.copied = Some(copied);
        if self.mode == Mode::Live {
            // The first frame, before the command writes anything.
            let mut screen = self.shared.screen.lock().unwrap_or_else(|p| p.into_inner());
            redraw(
                &self.shared,
                &mut screen,
                self.shared.counts.counts(),
                self.started,
            );
        }
        self.start_ticker();
        Ok(())
    }

    /// Elsewhere the command keeps onelaunch's console; only the final
    /// summary line is shown.
    #[cfg(not(unix))]
    pub(crate) fn connect(&mut self, _: &mut tokio::process::Command) -> std::io::Result<()> {
        Ok(())
    }

    #[cfg(unix)]
    fn copy(
        &self,
        mut reader: std::fs::File,
        dest: Dest,
        status_stream: bool,
        done: tokio::sync::mpsc::UnboundedSender<()>,
    ) -> std::io::Result<()> {
        use std::io::{Read, Write};
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name("watch-output".into())
            .spawn(move || {
                let _done = done;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let chunk = &buf[..n];
                    let mut screen = shared.screen.lock().unwrap_or_else(|p| p.into_inner());
                    if status_stream {
                        erase(&mut screen);
                    }
                    // A closed or full destination: the rest is read and
                    // dropped, so the command never blocks on its output.
                    let _ = match dest {
                        Dest::Stdout => {
                            let mut out = std::io::stdout().lock();
                            out.write_all(chunk).and_then(|()| out.flush())
                        }
                        Dest::Stderr => {
                            let mut err = std::io::stderr().lock();
                            err.write_all(chunk).and_then(|()| err.flush())
                        }
                    };
                    if status_stream {
                        screen.at_line_start = chunk.ends_with(b"\n");
                        flush_pending(&mut screen);
                    } else {
                        screen.stdout_at_line_start = chunk.ends_with(b"\n");
                    }
                }
            })?;
        Ok(())
    }

    #[cfg(unix)]
    fn start_ticker(&mut self) {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let shared = self.shared.clone();
        let (mode, started) = (self.mode, self.started);
        let handle = tokio::spawn(async move {
            let mut logged = (Instant::now(), ProgressCounts::default());
            let every = match mode {
                Mode::Live => LIVE_EVERY,
                Mode::Log => Duration::from_secs(1),
            };
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(every) => {}
                }
                let counts = shared.counts.counts();
                // Busy copying the command's output (or its destination is
                // slow to read): this tick is skipped rather than waited for.
                let mut screen = match shared.screen.try_lock() {
                    Ok(screen) => screen,
                    Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => continue,
                };
                match mode {
                    Mode::Live => redraw(&shared, &mut screen, counts, started),
                    Mode::Log => {
                        if logged.0.elapsed() >= LOG_EVERY && counts != logged.1 {
                            screen.pending.push(watch_summary(counts, started));
                            logged = (Instant::now(), counts);
                        }
                        flush_pending(&mut screen);
                    }
                }
            }
        });
        self.ticker = Some((stop, handle));
    }

    /// Whether the upload session is open (shown on the live line).
    pub(crate) fn session_open(&self, open: bool) {
        self.shared.session_open.store(open, Ordering::Relaxed);
    }

    /// A line of onelaunch's own (a warning) while the command runs: written
    /// when the command's output ends a line.
    pub(crate) fn note(&self, line: String) {
        let mut screen = self.shared.screen.lock().unwrap_or_else(|p| p.into_inner());
        screen.pending.push(line);
        if screen.at_line_start {
            flush_pending(&mut screen);
        }
    }

    /// Ends the display once the last results are sent: waits (up to
    /// `grace`) for the command's output to be copied to its end — a process
    /// the command left running may hold it open — then writes the final
    /// summary line.
    pub(crate) async fn finish(mut self, grace: Duration) {
        if let Some((stop, handle)) = self.ticker.take() {
            let _ = stop.send(());
            let _ = handle.await;
        }
        if let Some(mut copied) = self.copied.take() {
            let _ =
                tokio::time::timeout(grace, async { while copied.recv().await.is_some() {} }).await;
        }
        let mut screen = self.shared.screen.lock().unwrap_or_else(|p| p.into_inner());
        erase(&mut screen);
        if !screen.stdout_at_line_start {
            // The same for a stdout of its own, before the report.
            println!();
            screen.stdout_at_line_start = true;
        }
        if !screen.at_line_start {
            // The command's output ended without a newline: the summary
            // starts a line of its own.
            eprintln!();
            screen.at_line_start = true;
        }
        let summary = watch_summary(self.shared.counts.counts(), self.started);
        screen.pending.push(summary);
        flush_pending(&mut screen);
    }
}

impl Drop for WatchDisplay {
    fn drop(&mut self) {
        if let Some((_, handle)) = self.ticker.take() {
            handle.abort();
            let mut screen = self.shared.screen.lock().unwrap_or_else(|p| p.into_inner());
            erase(&mut screen);
            flush_pending(&mut screen);
        }
    }
}

/// Draws the live status line in place, when the command's output is at the
/// start of a line.
#[cfg(unix)]
fn redraw(shared: &WatchShared, screen: &mut Screen, counts: ProgressCounts, started: Instant) {
    if screen.at_line_start {
        flush_pending(screen);
        let open = shared.session_open.load(Ordering::Relaxed);
        let text = watch_live_line(counts, open, started);
        if screen.drawn == 0 || text != screen.shown {
            screen.drawn = draw_live(&text, screen.drawn).max(1);
            screen.shown = text;
        }
    }
}

/// Erases the live status line, if one is drawn.
fn erase(screen: &mut Screen) {
    if screen.drawn > 0 {
        eprint!("\r{}\r", " ".repeat(screen.drawn));
        screen.drawn = 0;
    }
}

/// Writes the waiting lines of onelaunch's own, at a line boundary only.
fn flush_pending(screen: &mut Screen) {
    if !screen.at_line_start || screen.pending.is_empty() {
        return;
    }
    erase(screen);
    for line in screen.pending.drain(..) {
        eprintln!("{line}");
    }
}

/// A pipe with blocking ends: read by a copying thread, written by the
/// command.
#[cfg(unix)]
fn pipe() -> std::io::Result<(std::fs::File, std::os::fd::OwnedFd)> {
    let (writer, reader) = tokio::net::unix::pipe::pipe()?;
    Ok((
        std::fs::File::from(reader.into_blocking_fd()?),
        writer.into_blocking_fd()?,
    ))
}

/// True when both streams are the same open file (device and inode).
#[cfg(unix)]
fn same_file(a: &impl std::os::fd::AsFd, b: &impl std::os::fd::AsFd) -> bool {
    use std::os::unix::fs::MetadataExt;
    let meta = |s: &dyn std::os::fd::AsFd| {
        s.as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino()))
    };
    match (meta(a), meta(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn results_per_second(results: usize, started: Instant) -> f64 {
    let secs = started.elapsed().as_secs_f64();
    if secs > 0.0 {
        results as f64 / secs
    } else {
        0.0
    }
}

/// The live line: results, attachments, files, rate, session.
#[cfg(unix)]
fn watch_live_line(c: ProgressCounts, session_open: bool, started: Instant) -> String {
    let session = if session_open {
        "session open"
    } else {
        "no session yet"
    };
    let text = format!(
        "watch: {} results, {} attachments sent, {} files read, {:.0}/s, {session}",
        c.results,
        c.attachments,
        c.files_read,
        results_per_second(c.results, started)
    );
    text.chars().take(WATCH_LIVE_WIDTH).collect()
}

/// The plain summary line (periodic through a pipe, and the final one).
fn watch_summary(c: ProgressCounts, started: Instant) -> String {
    format!(
        "onelaunch: watch: {} results, {} attachments sent ({:.0}/s)",
        c.results,
        c.attachments,
        results_per_second(c.results, started)
    )
}
