//! The results uploader: sends an Allure results directory (and JUnit XML
//! reports) into one test session of a launch or job run.
//!
//! The flow follows the Allure 3 TestOps plugin: environment first, one session,
//! results in batches (`POST /api/upload/test-result`), then the attachments
//! of the acknowledged results, several results per request
//! ([`attachments`]), and each result's fixtures.
//!
//! Input files are never trusted: a file that does not parse is reported as a
//! [`FileProblem`] and the others are still sent; nothing is read outside the
//! results directory (unsafe attachment names, symlinks pointing outside, and
//! special files are refused); every file is size-checked before it is read.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use futures::stream::{self, StreamExt};
use onelaunch_api::{
    is_secret_name, Id, KeyValue, SessionCreate, UploadAttachment, UploadFixture, UploadFixtures,
    UploadResultsResponse, UploadStep,
};
use onelaunch_model::{allure, FileKind};

use crate::api::{ApiClient, ClientError};

mod attachments;
mod dir_reader;
mod encode;
mod globals;
use crate::spool::{self, AckLog, Spool, SpoolError, SpoolManifest};

/// Session environment key holding the CI attempt.
pub const CI_ATTEMPT_KEY: &str = "CI_ATTEMPT";
/// Session environment key recording [`UploadOptions::execution`].
pub const CI_EXECUTION_KEY: &str = "CI_EXECUTION";

/// Where the results go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTarget {
    /// The launch (reopened from here when it is closed and reopening is allowed).
    pub launch_id: Id,
    /// When set, the session is created in this job run; otherwise a manual
    /// session is created in the launch.
    pub job_run_id: Option<Id>,
}

/// Requests in flight at once unless told otherwise.
///
/// Eight: the server commits what arrives while it writes in one
/// transaction (on SQLite up to 4,000 results, so eight batches of 500
/// commit together), and each commit writes every index page its results
/// touched to the WAL.
/// Results with keys in no order (uuid4s, MD5 history ids: what real
/// frameworks write) touch most pages of the launch's indexes in every
/// commit, so the results in flight set how much a commit carries. With
/// four, a 100,000-result pytest-shaped upload took 11.6 and 14.6 s in the
/// benchmark; with eight 10.3 and 12.7 s, for 30–70 MB more client memory
/// (docs/ingest-profile.md, "Results shaped like a real suite's").
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Tuning of an [`Uploader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOptions {
    /// Requests in flight at once ([`DEFAULT_CONCURRENCY`]).
    pub concurrency: usize,
    /// Results per `test-result` request (default 500: the server writes a
    /// request's results in one transaction, shared on SQLite with the
    /// requests that arrive while it writes, and rewrites the launch's index
    /// pages once per transaction, so larger batches cost it less per result).
    pub batch_size: usize,
    /// Reopen the launch when the server says it is closed, then retry (default off).
    pub reopen_closed_launch: bool,
    /// Larger result and attachment files are refused (default 64 MiB).
    pub max_file_bytes: u64,
    /// The CI attempt that produced the results (`GITHUB_RUN_ATTEMPT`), when
    /// known; recorded in the session environment as `CI_ATTEMPT`.
    pub attempt: Option<u32>,
    /// The CI execution that produced the results (a matrix leg, a retried
    /// GitLab job, a restarted Jenkins build; see `onelaunch_ci::CiContext`),
    /// recorded in the session environment as `CI_EXECUTION`. JUnit results get
    /// uuids of their own per execution (their origin becomes
    /// `<execution>/<file>`), so a re-run adds retries of the same tests and a
    /// parallel leg adds its own results instead of colliding with another
    /// execution's, while sending the same execution's report again stays
    /// idempotent.
    pub execution: Option<String>,
    /// The CI pipeline that uploads (its own type, run name and link), kept
    /// with the session; differs from the job run's when a pipeline of
    /// another CI uploads into a shared job run.
    pub ci: Option<onelaunch_api::SessionCi>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            concurrency: DEFAULT_CONCURRENCY,
            batch_size: 500,
            reopen_closed_launch: false,
            max_file_bytes: 64 * 1024 * 1024,
            attempt: None,
            execution: None,
            ci: None,
        }
    }
}

/// A file that could not be used; the upload went on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// The file concerned (for attachments: the result or container file referring to it).
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display().to_string();
        if path.chars().any(char::is_control) {
            // A file name may hold a newline: keep the problem on one line.
            write!(f, "{path:?}: {}", self.message)
        } else {
            write!(f, "{path}: {}", self.message)
        }
    }
}

/// What an [`Uploader`] did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Distinct files found in the inputs.
    pub files_seen: usize,
    /// Results acknowledged by the server: new ones and [`Self::already_present`].
    pub results: usize,
    /// Acknowledged results that the launch already held (the same uuid sent
    /// before, by this or another upload): nothing was added for them.
    pub already_present: usize,
    /// Results of a resumed spool that the server had acknowledged before; they
    /// were not sent again.
    pub previously_acknowledged: usize,
    /// Acknowledged results by normalised status (`passed`, `failed`, ...).
    pub by_status: BTreeMap<String, usize>,
    /// Attachment files accepted by the server.
    pub attachments: usize,
    /// Fixtures accepted by the server.
    pub fixtures: usize,
    /// Errors outside any test (Allure 3 `*-globals.json`, e.g. a failing
    /// hook) delivered; each is a problem of the launch.
    pub global_errors: usize,
    /// Attachments outside any test delivered.
    pub global_attachments: usize,
    /// Files that were skipped, and why.
    pub problems: Vec<FileProblem>,
    /// The test session, once created.
    pub session_id: Option<Id>,
}

/// Live counters of an [`Uploader`], shared with a progress display
/// ([`Uploader::progress`]): read them from another task while the upload runs.
#[derive(Debug, Default)]
pub struct UploadProgress {
    files_read: AtomicUsize,
    results: AtomicUsize,
    attachments: AtomicUsize,
}

/// A snapshot of [`UploadProgress`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressCounts {
    /// Input files fully handled (sent, or reported as a problem).
    pub files_read: usize,
    /// Results acknowledged by the server.
    pub results: usize,
    /// Attachment files accepted by the server.
    pub attachments: usize,
}

impl UploadProgress {
    /// The counters now.
    pub fn counts(&self) -> ProgressCounts {
        ProgressCounts {
            files_read: self.files_read.load(Ordering::Relaxed),
            results: self.results.load(Ordering::Relaxed),
            attachments: self.attachments.load(Ordering::Relaxed),
        }
    }
}

/// Why an upload stopped.
#[derive(thiserror::Error, Debug)]
pub enum UploadError {
    /// The server could not be reached or refused the upload.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The input cannot be used at all (e.g. the results path does not exist).
    #[error("{}: {message}", path.display())]
    Input {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

// ---------------------------------------------------------------- inputs

/// One input file of a results directory.
#[derive(Debug, Clone)]
pub(crate) struct InputFile {
    /// Directory as given by the user (shared by the files of a group, so
    /// memory per file stays small for large results directories).
    shown_dir: Arc<PathBuf>,
    /// Canonical directory (shared likewise).
    key_dir: Arc<PathBuf>,
    pub(crate) name: String,
    pub(crate) kind: FileKind,
    /// A regular file by the directory's listing, and its inode.
    listed: Option<dir_reader::Listed>,
}

impl InputFile {
    /// Path as shown to users (input directory joined with the name).
    pub(crate) fn shown(&self) -> PathBuf {
        self.shown_dir.join(&self.name)
    }

    /// Canonical directory joined with the name; the identity of the file.
    pub(crate) fn key(&self) -> PathBuf {
        self.key_dir.join(&self.name)
    }

    /// A 64-bit fingerprint of [`InputFile::key`], without building the path
    /// (a name is one path component, and a path holds no NUL byte).
    fn fingerprint(&self) -> u64 {
        use std::hash::Hasher;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        h.write(self.key_dir.as_os_str().as_encoded_bytes());
        h.write_u8(0);
        h.write(self.name.as_bytes());
        h.finish()
    }
}

/// Files of one results directory.
#[derive(Debug)]
pub(crate) struct Group {
    /// Canonical results directory: nothing outside it is read.
    pub(crate) dir: Arc<PathBuf>,
    pub(crate) files: Vec<InputFile>,
}

fn input_error(path: &Path, message: impl Into<String>) -> UploadError {
    UploadError::Input {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn canonical_dir(dir: &Path) -> Result<PathBuf, UploadError> {
    std::fs::canonicalize(dir).map_err(|e| input_error(dir, format!("cannot resolve: {e}")))
}

/// Lists a results directory (not recursively). Subdirectories are skipped;
/// symlinks and special files are listed and judged when read.
fn list_dir(dir: &Path) -> Result<Group, UploadError> {
    let canon = canonical_dir(dir)?;
    let entries =
        std::fs::read_dir(dir).map_err(|e| input_error(dir, format!("cannot list: {e}")))?;
    let mut files = Vec::new();
    let shown_dir = Arc::new(dir.to_path_buf());
    let key_dir = Arc::new(canon.clone());
    for entry in entries {
        let entry = entry.map_err(|e| input_error(dir, format!("cannot list: {e}")))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            continue;
        }
        let listed = dir_reader::Listed::of(&entry);
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        files.push(InputFile {
            shown_dir: shown_dir.clone(),
            key_dir: key_dir.clone(),
            kind: onelaunch_model::classify(&name),
            name,
            listed,
        });
    }
    // Names in one directory are distinct: an unstable sort gives the same order.
    files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(Group {
        dir: Arc::new(canon),
        files,
    })
}

fn single_file(path: &Path) -> Result<Group, UploadError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| input_error(path, "not a file name"))?
        .to_string();
    let given_parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let parent = if given_parent.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        given_parent.clone()
    };
    let canon = canonical_dir(&parent)?;
    Ok(Group {
        files: vec![InputFile {
            shown_dir: Arc::new(given_parent),
            key_dir: Arc::new(canon.clone()),
            kind: onelaunch_model::classify(&name),
            name,
            listed: None,
        }],
        dir: Arc::new(canon),
    })
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn spool_refused(path: &Path) -> UploadError {
    input_error(
        path,
        format!(
            "this is an onelaunch spool, not results: send it with `onelaunch upload --resume --spool {}`",
            path.display()
        ),
    )
}

const NO_MATCH: &str = "no file matches this pattern";

/// What the inputs of an upload hold, looked at before anything is sent (so
/// that nothing is created on the server for an upload of nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputScan {
    /// Whether any result file was found: Allure `*-result.json`, JUnit
    /// `*.xml`, or Allure 3 `*-globals.json` (problems outside tests, e.g. of
    /// a suite whose `before` hook failed so that no test ran).
    pub any_results: bool,
    /// Files of any kind found, counted in full only when `any_results` is
    /// false (a directory's listing stops at its first result file).
    pub files: usize,
    /// The inputs that exist (directories, files, patterns that matched).
    pub found: Vec<PathBuf>,
    /// Glob patterns that matched no file.
    pub unmatched: Vec<PathBuf>,
}

fn is_result_kind(kind: FileKind) -> bool {
    matches!(kind, FileKind::Result | FileKind::JUnit | FileKind::Globals)
}

/// Looks at the inputs the way [`Uploader::upload_paths`] will: directories
/// (not recursively), files and glob patterns. A pattern that matches nothing
/// is listed in [`InputScan::unmatched`]; a missing path or an unreadable
/// directory is an error. A directory is read only up to its first result
/// file: the upload lists it in full, and a results directory of 100,000
/// files took tens of milliseconds to list and sort, before anything was sent.
pub fn scan_inputs(paths: &[PathBuf]) -> Result<InputScan, UploadError> {
    let mut scan = InputScan::default();
    for path in paths {
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            if std::fs::canonicalize(path).is_ok_and(|c| crate::spool::inside_spool(&c)) {
                return Err(spool_refused(path));
            }
            let entries = std::fs::read_dir(path)
                .map_err(|e| input_error(path, format!("cannot list: {e}")))?;
            for entry in entries {
                let entry = entry.map_err(|e| input_error(path, format!("cannot list: {e}")))?;
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                scan.files += 1;
                if is_result_kind(onelaunch_model::classify(&name)) {
                    scan.any_results = true;
                    break;
                }
            }
            scan.found.push(path.clone());
            continue;
        }
        match resolve_inputs(std::slice::from_ref(path), false) {
            Ok(groups) => {
                for f in groups.iter().flat_map(|g| &g.files) {
                    scan.files += 1;
                    scan.any_results |= is_result_kind(f.kind);
                }
                scan.found.push(path.clone());
            }
            Err(UploadError::Input { message, .. }) if message == NO_MATCH => {
                scan.unmatched.push(path.clone());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(scan)
}

/// Resolves directories, files and glob patterns into groups by directory.
/// Spools (and anything inside them) are never read as results, unless
/// `allow_spool` (when a spool is being resumed).
pub(crate) fn resolve_inputs(
    paths: &[PathBuf],
    allow_spool: bool,
) -> Result<Vec<Group>, UploadError> {
    let mut checked: HashMap<PathBuf, bool> = HashMap::new();
    let mut in_spool = |p: &Path| -> bool {
        if allow_spool {
            return false;
        }
        *checked.entry(p.to_path_buf()).or_insert_with(|| {
            std::fs::canonicalize(p).is_ok_and(|c| crate::spool::inside_spool(&c))
        })
    };
    let mut groups: Vec<Group> = Vec::new();
    // The names in each group (same index), made when a second input adds
    // to the group: a file given again, by a glob or with its directory, is
    // then found by one lookup. (Files of one group share its canonical
    // directory, so the name is the file's identity there; a directory
    // lists each name once.)
    let mut names: Vec<Option<HashSet<String>>> = Vec::new();
    let mut add = |g: Group| match groups.iter().position(|e| e.dir == g.dir) {
        Some(i) => {
            let known = names[i]
                .get_or_insert_with(|| groups[i].files.iter().map(|f| f.name.clone()).collect());
            for f in g.files {
                if known.insert(f.name.clone()) {
                    groups[i].files.push(f);
                }
            }
        }
        None => {
            names.push(None);
            groups.push(g);
        }
    };
    for path in paths {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                if in_spool(path) {
                    return Err(spool_refused(path));
                }
                add(list_dir(path)?)
            }
            Ok(_) => {
                if path.parent().is_some_and(|p| {
                    in_spool(if p.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        p
                    })
                }) {
                    return Err(spool_refused(path));
                }
                add(single_file(path)?)
            }
            Err(_) => {
                let pattern = path.to_string_lossy();
                if !is_glob(&pattern) {
                    return Err(input_error(path, "no such file or directory"));
                }
                let matches = glob::glob(&pattern)
                    .map_err(|e| input_error(path, format!("invalid pattern: {e}")))?;
                let mut any = false;
                for m in matches {
                    let m = m.map_err(|e| input_error(path, e.to_string()))?;
                    any = true;
                    let dir_of_match = if m.is_dir() {
                        m.clone()
                    } else {
                        m.parent().map(Path::to_path_buf).unwrap_or_default()
                    };
                    if in_spool(&dir_of_match) {
                        tracing::debug!("{}: skipped, it is inside a spool", m.display());
                        continue;
                    }
                    if m.is_dir() {
                        add(list_dir(&m)?);
                    } else {
                        add(single_file(&m)?);
                    }
                }
                if !any {
                    return Err(input_error(path, NO_MATCH));
                }
            }
        }
    }
    Ok(groups)
}

// ---------------------------------------------------------------- safe reading

pub(crate) enum ReadError {
    Missing,
    Refused(String),
}

impl ReadError {
    fn message(&self) -> String {
        match self {
            ReadError::Missing => "file not found".to_string(),
            ReadError::Refused(m) => m.clone(),
        }
    }
}

/// Reads `name` from the canonical results directory `dir`: refuses symlinks
/// resolving outside it, anything but regular files, and files above `max` bytes.
pub(crate) fn read_inside(dir: &Path, name: &str, max: u64) -> Result<Vec<u8>, ReadError> {
    if name.chars().any(char::is_control) {
        return Err(ReadError::Refused(
            "refused: the file name contains a control character (newline, tab, ...)".to_string(),
        ));
    }
    let path = dir.join(name);
    let seen = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Refused(format!("cannot read: {e}"))),
    };
    // A regular file named by one plain path component is inside `dir` as it
    // stands: no need to resolve the path component by component (a `readlink`
    // each). The file opened is checked to be the very one looked at, not one
    // swapped for a symbolic link since; if it is not, it is judged below.
    if seen.is_file() && one_component(name) {
        let file = std::fs::File::open(&path)
            .map_err(|e| ReadError::Refused(format!("cannot open: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| ReadError::Refused(format!("cannot read: {e}")))?;
        if same_file(&seen, &meta) && meta.is_file() {
            return read_limited(file, meta.len(), max);
        }
    }
    let canon = match std::fs::canonicalize(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReadError::Refused(
                "symbolic link to a file that does not exist".to_string(),
            ))
        }
        Err(e) => return Err(ReadError::Refused(format!("cannot resolve: {e}"))),
    };
    if !canon.starts_with(dir) || canon == dir {
        return Err(ReadError::Refused(
            "refused: resolves to a location outside the results directory".to_string(),
        ));
    }
    let meta =
        std::fs::metadata(&canon).map_err(|e| ReadError::Refused(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(ReadError::Refused(
            "refused: not a regular file".to_string(),
        ));
    }
    let file =
        std::fs::File::open(&canon).map_err(|e| ReadError::Refused(format!("cannot open: {e}")))?;
    read_limited(file, meta.len(), max)
}

fn too_large(size: u64, max: u64) -> ReadError {
    ReadError::Refused(format!(
        "refused: {size} bytes is larger than the limit of {max} bytes"
    ))
}

/// The bytes of an open regular file of `len` bytes, refused above `max`
/// (also when it grew past `max` since its size was read).
fn read_limited(file: std::fs::File, len: u64, max: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    read_limited_into(file, len, max, &mut bytes)?;
    Ok(bytes)
}

/// [`read_limited`] into `buf`, cleared first.
fn read_limited_into(
    file: std::fs::File,
    len: u64,
    max: u64,
    buf: &mut Vec<u8>,
) -> Result<(), ReadError> {
    buf.clear();
    if len > max {
        return Err(too_large(len, max));
    }
    let cannot = |e: std::io::Error| ReadError::Refused(format!("cannot read: {e}"));
    let mut file = file.take(max.saturating_add(1));
    // One read of the size the file has and a byte more: when it gives
    // exactly that size, the file ends there, without a second read to
    // see its end (one system call of five per result file). A file that
    // grew or shrank since its size was read, or a short read, is read on
    // to its end.
    buf.resize(usize::try_from(len).unwrap_or(0).saturating_add(1), 0);
    let first = loop {
        match file.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    let n = first.map_err(cannot)?;
    buf.truncate(n);
    if n as u64 != len {
        file.read_to_end(buf).map_err(cannot)?;
    }
    if buf.len() as u64 > max {
        return Err(too_large(buf.len() as u64, max));
    }
    Ok(())
}

/// True when `name` is one plain path component (no separator, `.` or `..`).
fn one_component(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    )
}

/// True when two metadata describe the same file (device and inode).
#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Elsewhere the path is always resolved.
#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

async fn read_inside_async(
    dir: Arc<PathBuf>,
    name: String,
    max: u64,
) -> Result<Vec<u8>, ReadError> {
    tokio::task::spawn_blocking(move || read_inside(&dir, &name, max))
        .await
        .unwrap_or_else(|e| Err(ReadError::Refused(format!("reading failed: {e}"))))
}

/// Size and modification time, to tell when a file stopped changing.
type Stamp = (u64, Option<SystemTime>);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()))
}

/// Guesses a content type from the file extension.
pub fn guess_content_type(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "text" => "text/plain",
        "json" => "application/json",
        "xml" => "application/xml",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "css" => "text/css",
        "js" => "text/javascript",
        "yaml" | "yml" => "application/yaml",
        "uri" => "text/uri-list",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "har" => "application/json",
        _ => "application/octet-stream",
    }
}

// ---------------------------------------------------------------- reopening closed launches

/// Retries an operation once after reopening the launch when the server says
/// the launch is closed. Concurrent failures reopen it only once.
#[derive(Clone)]
struct Reopener {
    client: ApiClient,
    launch_id: Id,
    enabled: bool,
    generation: Arc<tokio::sync::Mutex<u64>>,
}

impl Reopener {
    async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let seen = *self.generation.lock().await;
        match op().await {
            Err(ClientError::LaunchClosed(message)) if self.enabled => {
                {
                    let mut generation = self.generation.lock().await;
                    if *generation == seen {
                        tracing::info!(
                            "launch {} is closed ({message}); reopening it",
                            self.launch_id
                        );
                        self.client.reopen_launch(self.launch_id).await?;
                        *generation += 1;
                    }
                }
                op().await
            }
            other => other,
        }
    }
}

// ---------------------------------------------------------------- work items

/// An attachment to send for a result.
#[derive(Debug, Clone)]
struct AttachmentRef {
    /// The file name inside `dir`.
    source: String,
    content_type: Option<String>,
    dir: Arc<PathBuf>,
    /// The result or container file that refers to it.
    origin: PathBuf,
    /// The content, when it is no file of `dir` but was made from the result
    /// file (the captured output of a JUnit report).
    inline: Option<Arc<Vec<u8>>>,
}

/// A parsed result file: its results, their requests written
/// ([`encode::Encoded`]).
type ParsedFile = Vec<encode::Encoded>;

/// The most parts a chunk is read in at once ([`Uploader::start_load`]).
const LOAD_PARTS: usize = 4;

/// Files below which a part is not worth a thread of its own.
const MIN_LOAD_PART: usize = 64;

/// Chunks whose attachments and fixtures may still be on their way while
/// the next chunk is prepared ([`Uploader::land`]).
const TAILS: usize = 2;

/// How many parts `count` files are read in: one per core (at least two: a
/// part waiting on the disk leaves the core to the other), up to
/// [`LOAD_PARTS`], each of at least [`MIN_LOAD_PART`] files.
fn load_parts(count: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.clamp(2, LOAD_PARTS).min(count / MIN_LOAD_PART).max(1)
}

/// A reused read buffer larger than this is given back after its file: one
/// large file does not hold its size for the rest of the chunk.
const KEEP_BUFFER: usize = 1 << 20;

/// Reads and parses one input file of a chunk (its name and what the
/// listing said of it), reading into `buf`, and writes its results'
/// requests into `out` (the part's buffer, see [`encode`]).
#[allow(clippy::too_many_arguments)]
fn load_one(
    results_dir: &dir_reader::ResultsDir,
    file: (&str, Option<dir_reader::Listed>),
    kind: FileKind,
    max: u64,
    execution: &Option<String>,
    mode: Mode,
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Loaded<ParsedFile> {
    let (name, listed) = file;
    let loaded = match results_dir.read_into(name, listed, max, buf) {
        Ok(()) => parse_one(&buf[..], name, kind, execution, mode, out),
        Err(e) => Loaded::Problem(e.message()),
    };
    if buf.capacity() > KEEP_BUFFER {
        *buf = Vec::new();
    }
    loaded
}

/// Parses the bytes of the input file `name` and writes its results'
/// requests into `out`.
fn parse_one(
    bytes: &[u8],
    name: &str,
    kind: FileKind,
    execution: &Option<String>,
    mode: Mode,
    out: &mut Vec<u8>,
) -> Loaded<ParsedFile> {
    let parsed = if kind == FileKind::JUnit {
        // Each CI execution's report gets uuids of its own (see UploadOptions::execution).
        let origin = match execution {
            Some(e) => format!("{e}/{name}"),
            None => name.to_string(),
        };
        onelaunch_model::parse_junit_report(bytes, &origin).map(|report| {
            let generated = report
                .generated
                .into_iter()
                .map(|g| (g.source, Arc::new(g.content.into_bytes())))
                .collect();
            (report.results, generated)
        })
    } else {
        onelaunch_model::parse_result(bytes).map(|r| (vec![r], encode::Generated::default()))
    };
    match parsed {
        Ok((results, generated)) => {
            let start = out.len();
            let encoded: Result<Vec<_>, String> = results
                .into_iter()
                .map(|r| encode::encode(r, &generated, out))
                .collect();
            match encoded {
                Ok(encoded) => Loaded::Ok(encoded),
                Err(e) => {
                    out.truncate(start);
                    Loaded::Problem(e)
                }
            }
        }
        Err(_) if mode == Mode::Ready => Loaded::NotYet,
        Err(e) => Loaded::Problem(e.to_string()),
    }
}

/// What the uploader keeps of a result while its batch is in flight.
fn result_meta(
    dir: &Arc<PathBuf>,
    f: &InputFile,
    status: &'static str,
    attachments: Vec<encode::Attached>,
) -> ResultMeta {
    ResultMeta {
        file: f.shown(),
        status,
        dir: dir.clone(),
        attachments: attachments
            .into_iter()
            .map(|a| AttachmentRef {
                source: a.source,
                content_type: a.content_type,
                inline: a.inline,
                dir: dir.clone(),
                origin: f.shown(),
            })
            .collect(),
    }
}

/// Most bytes of results' JSON in one `test-result` request, beside the
/// `--size` count. The server refuses a JSON body over 64 MiB: a batch of
/// large results (long traces, big JUnit outputs) is sent in more requests
/// instead of being refused and re-sent one result at a time, and a quarter
/// of that limit keeps such requests far from it.
const BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Attachments and fixtures of one acknowledged result.
struct ResultJob {
    result_id: Id,
    uuid: String,
    /// The file named in problems about the fixtures.
    origin: PathBuf,
    attachments: Vec<AttachmentRef>,
    fixtures: Vec<UploadFixture>,
}

#[derive(Default)]
struct JobOutcome {
    fixtures: usize,
    problems: Vec<FileProblem>,
}

/// Metadata kept for a result while its batch is in flight.
struct ResultMeta {
    file: PathBuf,
    status: &'static str,
    dir: Arc<PathBuf>,
    attachments: Vec<AttachmentRef>,
}

#[derive(Default)]
struct BatchOutcome {
    acknowledged: Vec<(String, Id)>,
    rejected: Vec<(String, String)>,
    /// Acknowledged results the server already had (it said how many of the
    /// batch it stored; a server that does not say counts as storing all).
    already_present: usize,
}

/// Fixtures of the containers of one results directory.
#[derive(Default)]
struct DirFixtures {
    containers: Vec<allure::Container>,
    /// Result uuid → its fixtures, recomputed when containers are added.
    by_result: std::collections::HashMap<String, Vec<UploadFixture>>,
    /// Attachment source → the container file that refers to it.
    attachment_origin: HashMap<String, PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Everything, reporting files that do not parse.
    All,
    /// Only files that stopped changing and parse; the others wait.
    Ready,
}

/// Outcome of reading and parsing one input file.
enum Loaded<T> {
    Ok(T),
    /// The file cannot be used; report it.
    Problem(String),
    /// Not parseable yet (watch mode); try again later.
    NotYet,
}

fn fixture_key(f: &UploadFixture) -> String {
    format!(
        "{}|{}|{}|{:?}|{:?}",
        f.kind, f.uuid, f.name, f.start, f.stop
    )
}

fn collect_upload_types(
    atts: &[UploadAttachment],
    steps: &[UploadStep],
    out: &mut HashMap<String, String>,
) {
    for a in atts {
        if let Some(t) = a.content_type.as_deref().filter(|t| !t.trim().is_empty()) {
            out.entry(a.original_file_name.clone())
                .or_insert_with(|| t.to_string());
        }
    }
    for s in steps {
        if let Some(a) = &s.attachment {
            collect_upload_types(std::slice::from_ref(a), &[], out);
        }
        collect_upload_types(&[], &s.steps, out);
    }
}

fn collect_step_sources(steps: &[allure::StepResult], out: &mut Vec<String>) {
    for s in steps {
        out.extend(s.attachments.iter().map(|a| a.source.clone()));
        collect_step_sources(&s.steps, out);
    }
}

// ---------------------------------------------------------------- the uploader

/// A set of input files kept as 64-bit fingerprints of their paths, so the
/// uploader's memory per file stays a few bytes however long the paths are.
#[derive(Debug, Default)]
pub(crate) struct PathSet(HashSet<u64>);

impl PathSet {
    /// Adds a file; true when it was not there yet.
    pub(crate) fn insert(&mut self, f: &InputFile) -> bool {
        self.0.insert(f.fingerprint())
    }

    pub(crate) fn contains(&self, f: &InputFile) -> bool {
        self.0.contains(&f.fingerprint())
    }
}

/// Uploads Allure results into one test session. See the module documentation.
pub struct Uploader {
    client: ApiClient,
    target: SessionTarget,
    opts: UploadOptions,
    report: UploadReport,
    progress: Arc<UploadProgress>,
    reopener: Reopener,
    /// Every input file seen (for `files_seen`).
    seen: PathSet,
    /// Files fully handled (sent, or reported as a problem).
    done: PathSet,
    /// Watch mode: last stamp of files not done yet, and whether they failed to parse at it.
    stamps: HashMap<PathBuf, (Stamp, bool)>,
    /// Acknowledged result uuid → server id, per results directory.
    result_ids: HashMap<String, (Id, Arc<PathBuf>)>,
    fixtures: HashMap<Arc<PathBuf>, DirFixtures>,
    /// (result uuid, fixture key) already sent.
    sent_fixtures: HashSet<(String, String)>,
    environment: Vec<KeyValue>,
    /// What the server acknowledged (and, when resuming, the spool's journal).
    acks: Arc<AckLog>,
    /// Results a resumed spool's journal lists as acknowledged.
    resumed: HashMap<String, Id>,
    /// The paths given so far, for spooling what was not delivered.
    inputs: Vec<PathBuf>,
    /// The session of the resumed spool's earlier try: closed with this
    /// uploader's own ([`Uploader::close_session`]).
    earlier_session: Option<Id>,
    /// The spool being resumed: its groups may be read, and it is extended
    /// rather than created when the upload stops again.
    spool: Option<Spool>,
    /// Keep what is known of every delivered result (watch mode: containers
    /// that arrive later need their results' ids; a resumed spool: its copies
    /// and the original files may both be read). Otherwise it is dropped once
    /// a chunk of files is fully handled, so memory does not grow with the
    /// number of results.
    remember: bool,
    /// One permit per request in flight (`concurrency` in all), shared by
    /// result batches and by the attachments and fixtures that go alongside.
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for Uploader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uploader")
            .field("target", &self.target)
            .field("opts", &self.opts)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Uploader {
    /// An uploader into `target`; nothing is sent until results are found.
    pub fn new(client: ApiClient, target: SessionTarget, opts: UploadOptions) -> Self {
        let opts = UploadOptions {
            concurrency: opts.concurrency.max(1),
            batch_size: opts.batch_size.max(1),
            ..opts
        };
        let concurrency = opts.concurrency;
        let mut environment = Vec::new();
        if let Some(attempt) = opts.attempt {
            environment.push(KeyValue {
                key: CI_ATTEMPT_KEY.to_string(),
                value: attempt.to_string(),
            });
        }
        if let Some(execution) = &opts.execution {
            environment.push(KeyValue {
                key: CI_EXECUTION_KEY.to_string(),
                value: execution.clone(),
            });
        }
        Uploader {
            reopener: Reopener {
                client: client.clone(),
                launch_id: target.launch_id,
                enabled: opts.reopen_closed_launch,
                generation: Arc::new(tokio::sync::Mutex::new(0)),
            },
            client,
            target,
            opts,
            report: UploadReport::default(),
            progress: Arc::default(),
            seen: PathSet::default(),
            done: PathSet::default(),
            stamps: HashMap::new(),
            result_ids: HashMap::new(),
            fixtures: HashMap::new(),
            sent_fixtures: HashSet::new(),
            environment,
            acks: Arc::new(AckLog::default()),
            resumed: HashMap::new(),
            inputs: Vec::new(),
            earlier_session: None,
            spool: None,
            remember: false,
            in_flight: Arc::new(tokio::sync::Semaphore::new(concurrency)),
        }
    }

    /// Continues the upload kept in `spool`: what its journal lists as
    /// acknowledged is not sent again, and every new acknowledgement is
    /// appended to the journal. The upload gets a session of its own (an
    /// upload in flight until [`Uploader::close_session`], which also closes
    /// the earlier try's session). Send the spool's files with
    /// [`Uploader::upload_paths`]`(&spool.group_dirs())` (other paths may be
    /// added), then remove the spool with [`Spool::remove`].
    pub fn resume(&mut self, spool: &Spool) -> Result<(), SpoolError> {
        let (log, state) = AckLog::resume(spool.dir())?;
        self.sent_fixtures.extend(state.fixtures);
        self.resumed = state.results;
        self.acks = Arc::new(log);
        self.earlier_session = spool.manifest().session_id;
        self.spool = Some(spool.clone());
        // The spool's copies and the original files may both be given: a result
        // delivered from one must be known when the other is read.
        self.remember = true;
        Ok(())
    }

    /// Keeps what was not delivered in a spool, after the upload stopped (the
    /// server stayed unreachable): the input files not fully acknowledged, the
    /// attachments they need, containers and environment files, and the journal
    /// of what was acknowledged. `manifest` says where the results go; the
    /// session id is filled in. When this uploader resumed a spool, that spool is
    /// extended (only inputs that are not its own are added); otherwise a new
    /// spool is created in `dir` (or `dir-N` when `dir` holds another spool).
    ///
    /// Blocking file-system work; returns the spool and the files that could not
    /// be kept (they would have been refused anyway).
    pub fn save_spool(
        &self,
        dir: &Path,
        mut manifest: SpoolManifest,
    ) -> Result<(Spool, Vec<FileProblem>), SpoolError> {
        manifest.session_id = self.report.session_id.or(manifest.session_id);
        manifest.attempt = self.opts.attempt;
        manifest.execution = self.opts.execution.clone();
        manifest.reopen_closed_launch = self.opts.reopen_closed_launch;
        manifest.concurrency = self.opts.concurrency;
        manifest.batch_size = self.opts.batch_size;
        let delivered = spool::Delivered {
            done: &self.done,
            acks: self.acks.snapshot(),
            max_file_bytes: self.opts.max_file_bytes,
        };
        match &self.spool {
            Some(existing) => {
                let own: HashSet<PathBuf> = existing
                    .group_dirs()
                    .iter()
                    .filter_map(|d| std::fs::canonicalize(d).ok())
                    .collect();
                let groups: Vec<Group> = spool::input_groups(&self.inputs, true)?
                    .into_iter()
                    .filter(|g| !own.contains(g.dir.as_ref()))
                    .collect();
                let mut spool = existing.clone();
                let problems = spool::extend(&mut spool, groups, &delivered, |m| {
                    let groups = std::mem::take(&mut m.groups);
                    *m = SpoolManifest {
                        groups,
                        created_ms: m.created_ms,
                        ..manifest
                    };
                })?;
                Ok((spool, problems))
            }
            None => {
                let groups = spool::input_groups(&self.inputs, false)?;
                spool::create(dir, manifest, groups, &delivered)
            }
        }
    }

    fn remember_inputs(&mut self, paths: &[PathBuf]) {
        // A set, not a scan of the list per path: a shell glob can name
        // tens of thousands of files.
        let mut known: HashSet<PathBuf> = self.inputs.iter().cloned().collect();
        for p in paths {
            if known.insert(p.clone()) {
                self.inputs.push(p.clone());
            }
        }
    }

    /// Opens the test session now (it is otherwise opened with the first
    /// results): `watch` does, so the launch knows an upload is in flight
    /// before the tests write anything. Environment files found later are not
    /// added to it.
    pub async fn open_session(&mut self) -> Result<Id, ClientError> {
        self.ensure_session().await
    }

    /// Ends this upload's session (and a resumed spool's earlier one): the
    /// launch no longer counts it as in flight. Idempotent on the server;
    /// call it when the upload ends, also after a failure.
    pub async fn close_session(&mut self) -> Result<(), ClientError> {
        let mut first = None;
        for id in [self.earlier_session.take(), self.report.session_id]
            .into_iter()
            .flatten()
        {
            if let Err(e) = self.client.close_session(id).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// What was done so far.
    pub fn report(&self) -> &UploadReport {
        &self.report
    }

    /// Live counters for a progress display, updated as the upload goes.
    pub fn progress(&self) -> Arc<UploadProgress> {
        self.progress.clone()
    }

    /// One-shot: everything under the given paths (directories, files, or glob
    /// patterns). Directories are read non-recursively (results dirs are flat).
    /// A path that does not exist (or a pattern matching nothing) is an error
    /// before anything is sent.
    pub async fn upload_paths(&mut self, paths: &[PathBuf]) -> Result<(), UploadError> {
        let groups = resolve_inputs(paths, self.spool.is_some())?;
        self.remember_inputs(paths);
        self.process(groups, Mode::All).await
    }

    /// For `watch`: uploads the result files of `dir` that are complete (they
    /// parse, and their size and modification time did not change since the
    /// previous call) and not yet sent, the attachments they reference, and the
    /// fixtures of the containers seen so far. Files that do not parse yet are
    /// tried again on the next call, not reported. A missing `dir` is not an error.
    pub async fn upload_ready(&mut self, dir: &Path) -> Result<(), UploadError> {
        if !dir.is_dir() {
            return Ok(());
        }
        let group = list_dir(dir)?;
        self.remember_inputs(&[dir.to_path_buf()]);
        self.remember = true;
        self.process(vec![group], Mode::Ready).await
    }

    /// Final pass for `watch`: like [`Uploader::upload_paths`] for `dir`,
    /// sending only what has not been sent; files that still do not parse are
    /// reported as problems.
    pub async fn finish(&mut self, dir: &Path) -> Result<(), UploadError> {
        if !dir.is_dir() {
            return Err(input_error(dir, "results directory does not exist"));
        }
        let group = list_dir(dir)?;
        self.remember_inputs(&[dir.to_path_buf()]);
        let result = self.process(vec![group], Mode::All).await;
        self.stamps.clear();
        result
    }

    fn problem(&mut self, path: PathBuf, message: impl Into<String>) {
        let problem = FileProblem {
            path,
            message: message.into(),
        };
        tracing::warn!("{problem}");
        self.report.problems.push(problem);
    }

    async fn process(&mut self, groups: Vec<Group>, mode: Mode) -> Result<(), UploadError> {
        for g in &groups {
            for f in &g.files {
                if self.seen.insert(f) {
                    self.report.files_seen += 1;
                }
            }
        }
        // Only files not handled yet, and in watch mode only those that stopped changing.
        let mut pending: Vec<(Arc<PathBuf>, Vec<InputFile>)> = Vec::new();
        for g in groups {
            let files: Vec<InputFile> = g
                .files
                .into_iter()
                .filter(|f| {
                    matches!(
                        f.kind,
                        FileKind::Result
                            | FileKind::JUnit
                            | FileKind::Container
                            | FileKind::Environment
                            | FileKind::EnvironmentXml
                            | FileKind::Executor
                            | FileKind::Globals
                    ) && !self.done.contains(f)
                })
                .collect();
            let files = if mode == Mode::Ready {
                self.stable_files(files).await
            } else {
                files
            };
            pending.push((g.dir, files));
        }

        // 1. Environment, executor.
        for (dir, files) in &pending {
            for f in files.iter().filter(|f| {
                matches!(
                    f.kind,
                    FileKind::Environment | FileKind::EnvironmentXml | FileKind::Executor
                )
            }) {
                match self.load_environment(dir, f, mode).await {
                    Loaded::Ok(entries) => {
                        self.add_environment(entries);
                        self.mark_done(f);
                    }
                    Loaded::Problem(m) => {
                        self.problem(f.shown(), m);
                        self.mark_done(f);
                    }
                    Loaded::NotYet => self.mark_unparsed(f),
                }
            }
        }

        // 2. Containers (fixtures), per directory.
        let mut changed_dirs = Vec::new();
        for (dir, files) in &pending {
            let mut added = false;
            for f in files.iter().filter(|f| f.kind == FileKind::Container) {
                match self.load_container(dir, f, mode).await {
                    Loaded::Ok(container) => {
                        let entry = self.fixtures.entry(dir.clone()).or_default();
                        let mut sources = Vec::new();
                        collect_step_sources(&container.befores, &mut sources);
                        collect_step_sources(&container.afters, &mut sources);
                        for s in sources {
                            entry
                                .attachment_origin
                                .entry(s)
                                .or_insert_with(|| f.shown());
                        }
                        entry.containers.push(container);
                        added = true;
                        self.mark_done(f);
                    }
                    Loaded::Problem(m) => {
                        self.problem(f.shown(), m);
                        self.mark_done(f);
                    }
                    Loaded::NotYet => self.mark_unparsed(f),
                }
            }
            if added {
                if let Some(entry) = self.fixtures.get_mut(dir) {
                    entry.by_result = onelaunch_model::fixtures_by_result(&entry.containers);
                }
                changed_dirs.push(dir.clone());
            }
        }

        // 2b. Errors and attachments outside tests (Allure 3 globals).
        for (dir, files) in &pending {
            self.upload_globals(dir, files, mode).await?;
        }

        // 3. Results, a bounded chunk at a time.
        let chunk_len = self.opts.batch_size.saturating_mul(self.opts.concurrency);
        for (dir, files) in &pending {
            let results: Vec<&InputFile> = files
                .iter()
                .filter(|f| matches!(f.kind, FileKind::Result | FileKind::JUnit))
                .collect();
            let chunks: Vec<&[&InputFile]> = results.chunks(chunk_len.max(1)).collect();
            let mut next = chunks.first().map(|c| self.start_load(dir, c, mode));
            // Chunks in step: one is read and parsed while the results of
            // the one before are on their way (the server storing them) and
            // the attachments and fixtures of up to [`TAILS`] before that go.
            // Memory stays bounded.
            let mut flying: Option<Flying<'_>> = None;
            let mut tails: VecDeque<Tail<'_>> = VecDeque::new();
            for (i, chunk) in chunks.iter().enumerate() {
                let Some(loading) = next.take() else { break };
                let loaded = loading.await;
                next = chunks.get(i + 1).map(|c| self.start_load(dir, c, mode));
                if flying.as_ref().is_some_and(|f| f.repeated_in(&loaded)) {
                    if let Some(f) = flying.take() {
                        self.land(f, &mut tails).await?;
                    }
                }
                let prepared = self.prepare_chunk(dir, chunk, loaded);
                let sent = self.send_chunk(prepared).await;
                if let Some(f) = flying.take() {
                    if let Err(e) = self.land(f, &mut tails).await {
                        if let Ok(newer) = sent {
                            // What the server acknowledged of the chunk sent
                            // since is still counted; the first failure ends
                            // the upload.
                            let _ = self.settle_chunk(newer).await;
                        }
                        return Err(e);
                    }
                }
                flying = Some(sent?);
            }
            if let Some(f) = flying.take() {
                self.land(f, &mut tails).await?;
            }
            self.finish_tails(&mut tails, 0).await?;
        }

        // 4. Fixtures of containers that arrived after their results.
        for dir in changed_dirs {
            let jobs = self.late_fixture_jobs(&dir);
            self.run_jobs(jobs).await?;
        }
        Ok(())
    }

    fn mark_done(&mut self, f: &InputFile) {
        // Stamps are kept in watch mode only.
        if !self.stamps.is_empty() {
            self.stamps.remove(&f.key());
        }
        if self.done.insert(f) {
            self.progress.files_read.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn mark_unparsed(&mut self, f: &InputFile) {
        if self.stamps.is_empty() {
            return;
        }
        if let Some((_, failed)) = self.stamps.get_mut(&f.key()) {
            *failed = true;
        }
    }

    /// Watch mode: keeps the files whose stamp did not change since the last call
    /// (and that did not already fail to parse at this very stamp).
    async fn stable_files(&mut self, files: Vec<InputFile>) -> Vec<InputFile> {
        let keys: Vec<PathBuf> = files.iter().map(|f| f.key()).collect();
        let stamps =
            tokio::task::spawn_blocking(move || keys.iter().map(|k| stamp(k)).collect::<Vec<_>>())
                .await
                .unwrap_or_default();
        let mut ready = Vec::new();
        for (f, now) in files.into_iter().zip(stamps) {
            let Some(now) = now else {
                // Vanished, or a dangling symlink: wait; the final pass reports it.
                continue;
            };
            match self.stamps.get(&f.key()) {
                Some((before, failed)) if *before == now => {
                    if !failed {
                        ready.push(f);
                    }
                }
                _ => {
                    self.stamps.insert(f.key(), (now, false));
                }
            }
        }
        ready
    }

    async fn read_input(&self, dir: &Arc<PathBuf>, f: &InputFile) -> Result<Vec<u8>, String> {
        read_inside_async(dir.clone(), f.name.clone(), self.opts.max_file_bytes)
            .await
            .map_err(|e| e.message())
    }

    async fn load_environment(
        &self,
        dir: &Arc<PathBuf>,
        f: &InputFile,
        mode: Mode,
    ) -> Loaded<Vec<(String, String)>> {
        let bytes = match self.read_input(dir, f).await {
            Ok(b) => b,
            Err(m) => return Loaded::Problem(m),
        };
        let parsed = match f.kind {
            FileKind::Environment => Ok(onelaunch_model::parse_environment_properties(&bytes)),
            FileKind::EnvironmentXml => {
                onelaunch_model::parse_environment_xml(&bytes).map_err(|e| e.to_string())
            }
            _ => onelaunch_model::parse_executor(&bytes)
                .map(|e| executor_entries(&e))
                .map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(entries) => Loaded::Ok(entries),
            Err(_) if mode == Mode::Ready => Loaded::NotYet,
            Err(m) => Loaded::Problem(m),
        }
    }

    fn add_environment(&mut self, entries: Vec<(String, String)>) {
        for (key, value) in entries {
            let key = key.trim().to_string();
            if key.is_empty() || is_secret_name(&key) {
                continue;
            }
            if self.environment.iter().any(|kv| kv.key == key) {
                continue;
            }
            self.environment.push(KeyValue { key, value });
        }
    }

    async fn load_container(
        &self,
        dir: &Arc<PathBuf>,
        f: &InputFile,
        mode: Mode,
    ) -> Loaded<allure::Container> {
        let bytes = match self.read_input(dir, f).await {
            Ok(b) => b,
            Err(m) => return Loaded::Problem(m),
        };
        match onelaunch_model::parse_container(&bytes) {
            Ok(c) => Loaded::Ok(c),
            Err(_) if mode == Mode::Ready => Loaded::NotYet,
            Err(e) => Loaded::Problem(e.to_string()),
        }
    }

    /// Reads and parses a chunk of result files (Allure JSON or JUnit XML,
    /// with each file's size in bytes) on blocking threads, started now and
    /// awaited later: the upload reads the next chunk while the current one
    /// is being sent, so the client's parsing overlaps the server's writing
    /// instead of alternating with it. The chunk is read in parts at once
    /// ([`load_parts`]): on one thread, reading was the slowest step of an
    /// upload. The outcomes come back in the files' order.
    fn start_load(
        &self,
        dir: &Arc<PathBuf>,
        files: &[&InputFile],
        mode: Mode,
    ) -> impl std::future::Future<Output = Vec<Loaded<ParsedFile>>> {
        let work: Vec<(String, FileKind, Option<dir_reader::Listed>)> = files
            .iter()
            .map(|f| (f.name.clone(), f.kind, f.listed))
            .collect();
        let count = work.len();
        let parts = load_parts(count);
        let per_part = count.div_ceil(parts).max(1);
        let mut tasks = Vec::with_capacity(parts);
        let mut work = work.into_iter();
        loop {
            let part: Vec<_> = work.by_ref().take(per_part).collect();
            if part.is_empty() {
                break;
            }
            let dir = dir.clone();
            let max = self.opts.max_file_bytes;
            let execution = self.opts.execution.clone();
            let len = part.len();
            let task = tokio::task::spawn_blocking(move || {
                let results_dir = dir_reader::ResultsDir::open(&dir);
                // One buffer for the part's files (see `ResultsDir::read_into`).
                let mut buf = Vec::new();
                // One buffer for the requests of the part's results.
                let mut out = Vec::new();
                let mut loaded = part
                    .into_iter()
                    .map(|(name, kind, listed)| {
                        let file = (name.as_str(), listed);
                        let (read, write) = (&mut buf, &mut out);
                        load_one(&results_dir, file, kind, max, &execution, mode, read, write)
                    })
                    .collect::<Vec<_>>();
                let results = loaded.iter_mut().flat_map(|l| match l {
                    Loaded::Ok(results) => results.as_mut_slice(),
                    _ => &mut [],
                });
                encode::share(out, results);
                loaded
            });
            tasks.push((task, len));
        }
        async move {
            let mut out = Vec::with_capacity(count);
            for (task, len) in tasks {
                match task.await {
                    Ok(loaded) => out.extend(loaded),
                    Err(e) => out
                        .extend((0..len).map(|_| Loaded::Problem(format!("reading failed: {e}")))),
                }
            }
            out
        }
    }

    async fn ensure_session(&mut self) -> Result<Id, ClientError> {
        if let Some(id) = self.report.session_id {
            return Ok(id);
        }
        let request = SessionCreate {
            job_run_id: self.target.job_run_id,
            launch_id: if self.target.job_run_id.is_some() {
                None
            } else {
                Some(self.target.launch_id)
            },
            environment: self.environment.clone(),
            ci: self.opts.ci.clone(),
            track: true,
        };
        let client = self.client.clone();
        let session = self
            .reopener
            .run(|| client.create_session(&request))
            .await?;
        tracing::info!(
            "session {} started in launch {}",
            session.id,
            session.launch_id
        );
        self.report.session_id = Some(session.id);
        Ok(session.id)
    }

    /// Turns a chunk's parsed files into the results to send (skipping those
    /// already sent or acknowledged) and the jobs of results a resumed spool
    /// had delivered; reports the files that cannot be used.
    fn prepare_chunk<'f>(
        &mut self,
        dir: &Arc<PathBuf>,
        files: &[&'f InputFile],
        loaded: Vec<Loaded<ParsedFile>>,
    ) -> Prepared<'f> {
        let mut uploads: Vec<encode::Sendable> = Vec::new();
        let mut metas: HashMap<String, ResultMeta> = HashMap::new();
        let mut chunk_files: Vec<&'f InputFile> = Vec::new();
        // Results a resumed spool had delivered: only their missing attachments and fixtures.
        let mut jobs = Vec::new();
        for (f, outcome) in files.iter().zip(loaded) {
            match outcome {
                Loaded::NotYet => {
                    self.mark_unparsed(f);
                    continue;
                }
                Loaded::Problem(m) => {
                    self.problem(f.shown(), m);
                    self.mark_done(f);
                    continue;
                }
                Loaded::Ok(results) => {
                    chunk_files.push(f);
                    for result in results {
                        if self.result_ids.contains_key(&result.uuid)
                            || metas.contains_key(&result.uuid)
                        {
                            tracing::debug!(
                                "{}: result {} already sent",
                                f.shown().display(),
                                result.uuid
                            );
                            continue;
                        }
                        let encode::Encoded {
                            uuid,
                            history_id,
                            json,
                            status,
                            attachments,
                            ..
                        } = result;
                        let meta = result_meta(dir, f, status, attachments);
                        if let Some(id) = self.resumed.get(&uuid).copied() {
                            self.report.previously_acknowledged += 1;
                            self.result_ids.insert(uuid.clone(), (id, meta.dir.clone()));
                            jobs.push(self.result_job(uuid, id, meta));
                            continue;
                        }
                        metas.insert(uuid.clone(), meta);
                        uploads.push(encode::Sendable {
                            uuid,
                            history_id,
                            json,
                        });
                    }
                }
            }
        }
        Prepared {
            uploads,
            metas,
            jobs,
            files: chunk_files,
        }
    }

    /// Starts sending a prepared chunk's results (in a task of their own, so
    /// the next chunk is read and sent while the server stores this one);
    /// [`Uploader::settle_chunk`] takes the answers.
    async fn send_chunk<'f>(&mut self, prepared: Prepared<'f>) -> Result<Flying<'f>, UploadError> {
        let Prepared {
            uploads,
            metas,
            jobs,
            files,
        } = prepared;
        let sending = if uploads.is_empty() {
            None
        } else {
            let session_id = self.ensure_session().await?;
            let batches = split_batches(uploads, self.opts.batch_size, BATCH_BYTES);
            let client = self.client.clone();
            let reopener = self.reopener.clone();
            let acks = self.acks.clone();
            let in_flight = self.in_flight.clone();
            let concurrency = self.opts.concurrency;
            // Every batch of the chunk runs to its end, so each acknowledgement
            // is recorded even when another batch fails.
            Some(tokio::spawn(async move {
                stream::iter(batches)
                    .map(|batch| {
                        permitted(
                            in_flight.clone(),
                            send_batch(
                                client.clone(),
                                reopener.clone(),
                                acks.clone(),
                                session_id,
                                batch,
                            ),
                        )
                    })
                    .buffer_unordered(concurrency)
                    .collect::<Vec<_>>()
                    .await
            }))
        };
        Ok(Flying {
            sending,
            metas,
            jobs,
            files,
        })
    }

    /// Takes the server's answers to a chunk sent by [`Uploader::send_chunk`];
    /// answers what completes its results (attachments, fixtures), for
    /// [`Uploader::start_tail`].
    async fn settle_chunk<'f>(&mut self, flying: Flying<'f>) -> Result<SentChunk<'f>, UploadError> {
        let Flying {
            sending,
            mut metas,
            mut jobs,
            files,
        } = flying;
        if let Some(sending) = sending {
            // The task is never cancelled; a panic in it is passed on.
            let outcomes = match sending.await {
                Ok(outcomes) => outcomes,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            let mut failure = None;
            for outcome in outcomes {
                let outcome = match outcome {
                    Ok(o) => o,
                    Err(e) => {
                        failure.get_or_insert(e);
                        continue;
                    }
                };
                self.report.already_present += outcome.already_present;
                for (uuid, message) in outcome.rejected {
                    if let Some(meta) = metas.remove(&uuid) {
                        self.problem(
                            meta.file,
                            format!("the server refused result {uuid}: {message}"),
                        );
                    }
                }
                for (uuid, id) in outcome.acknowledged {
                    let Some(meta) = metas.remove(&uuid) else {
                        continue;
                    };
                    self.report.results += 1;
                    self.progress.results.fetch_add(1, Ordering::Relaxed);
                    *self
                        .report
                        .by_status
                        .entry(meta.status.to_string())
                        .or_default() += 1;
                    self.result_ids.insert(uuid.clone(), (id, meta.dir.clone()));
                    jobs.push(self.result_job(uuid, id, meta));
                }
            }
            if let Some(e) = failure {
                if matches!(e, ClientError::LaunchClosed(_)) {
                    // The launch was closed while this upload was in flight:
                    // what completes the results it accepted is still taken
                    // (best effort; what is not stays in the spool).
                    if let Err(e) = self.run_jobs(jobs).await {
                        tracing::warn!("after the launch closed: {e}");
                    }
                }
                return Err(e.into());
            }
            for (uuid, meta) in metas {
                self.problem(
                    meta.file,
                    format!("the server did not acknowledge result {uuid}"),
                );
            }
        }
        let handled: Vec<(String, Id)> =
            jobs.iter().map(|j| (j.uuid.clone(), j.result_id)).collect();
        if !self.remember {
            // A later file repeating one of these uuids is sent again; the
            // server answers with the stored result (it keeps one per uuid).
            for (uuid, _) in &handled {
                self.result_ids.remove(uuid);
            }
            let uuids: HashSet<&str> = handled.iter().map(|(u, _)| u.as_str()).collect();
            self.sent_fixtures
                .retain(|(uuid, _)| !uuids.contains(uuid.as_str()));
        }
        Ok(Chunk {
            jobs,
            files,
            handled,
        })
    }

    /// Takes the answers to a chunk in flight and starts sending what
    /// completes its results; waits for the oldest tails while more than
    /// [`TAILS`] are unfinished. Tails are waited for even when the chunk
    /// failed, and the chunk's failure wins.
    async fn land<'f>(
        &mut self,
        flying: Flying<'f>,
        tails: &mut VecDeque<Tail<'f>>,
    ) -> Result<(), UploadError> {
        match self.settle_chunk(flying).await {
            Ok(sent) => {
                tails.push_back(self.start_tail(sent));
                self.finish_tails(tails, TAILS).await
            }
            Err(e) => {
                let _ = self.finish_tails(tails, 0).await;
                Err(e)
            }
        }
    }

    /// Waits for the oldest tails until at most `keep` are unfinished. After
    /// a failure every tail is still waited for (so what the server
    /// acknowledged is recorded), and the first failure is answered.
    async fn finish_tails<'f>(
        &mut self,
        tails: &mut VecDeque<Tail<'f>>,
        keep: usize,
    ) -> Result<(), UploadError> {
        while tails.len() > keep {
            let Some(t) = tails.pop_front() else { break };
            if let Err(e) = self.finish_tail(t).await {
                while let Some(t) = tails.pop_front() {
                    let _ = self.finish_tail(t).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Starts sending what completes a chunk's results.
    fn start_tail<'f>(&self, sent: SentChunk<'f>) -> Tail<'f> {
        Chunk {
            jobs: self.start_jobs(sent.jobs),
            files: sent.files,
            handled: sent.handled,
        }
    }

    /// Waits for what completes a chunk's results, then marks its files done
    /// (their results, attachments and fixtures acknowledged).
    async fn finish_tail(&mut self, tail: Tail<'_>) -> Result<(), UploadError> {
        // On failure the files stay undone and their acknowledgements stay
        // known: a spool written now keeps both, and its resume sends only
        // what is missing.
        self.finish_jobs(tail.jobs).await?;
        for f in tail.files {
            self.mark_done(f);
        }
        if !self.remember {
            self.acks.forget(&tail.handled);
        }
        Ok(())
    }

    /// Unsent fixtures of a result (marking them as sent) and their attachments.
    fn take_fixtures(
        &mut self,
        dir: &Arc<PathBuf>,
        uuid: &str,
    ) -> (Vec<UploadFixture>, Vec<AttachmentRef>) {
        let Some(entry) = self.fixtures.get(dir) else {
            return (Vec::new(), Vec::new());
        };
        let Some(all) = entry.by_result.get(uuid) else {
            return (Vec::new(), Vec::new());
        };
        let mut fixtures = Vec::new();
        let mut attachments = Vec::new();
        for fixture in all {
            let key = (uuid.to_string(), fixture_key(fixture));
            if self.sent_fixtures.contains(&key) {
                continue;
            }
            self.sent_fixtures.insert(key);
            let mut types = HashMap::new();
            collect_upload_types(&fixture.attachments, &fixture.steps, &mut types);
            for source in onelaunch_model::fixture_attachment_sources(fixture) {
                let origin = entry
                    .attachment_origin
                    .get(&source)
                    .cloned()
                    .unwrap_or_else(|| dir.as_ref().clone());
                attachments.push(AttachmentRef {
                    content_type: types.get(&source).cloned(),
                    source,
                    dir: dir.clone(),
                    origin,
                    inline: None,
                });
            }
            fixtures.push(fixture.clone());
        }
        (fixtures, attachments)
    }

    fn result_job(&mut self, uuid: String, id: Id, meta: ResultMeta) -> ResultJob {
        let (fixtures, fixture_attachments) = self.take_fixtures(&meta.dir, &uuid);
        let mut attachments = meta.attachments;
        for a in fixture_attachments {
            if !attachments.iter().any(|x| x.source == a.source) {
                attachments.push(a);
            }
        }
        attachments.retain(|a| !self.acks.attachment_acked(id, &a.source));
        ResultJob {
            result_id: id,
            uuid,
            origin: meta.file,
            attachments,
            fixtures,
        }
    }

    fn late_fixture_jobs(&mut self, dir: &Arc<PathBuf>) -> Vec<ResultJob> {
        let uuids: Vec<String> = match self.fixtures.get(dir) {
            Some(entry) => entry
                .by_result
                .keys()
                .filter(|u| match self.result_ids.get(*u) {
                    Some((_, d)) => d.as_ref() == dir.as_ref(),
                    // Delivered before the spool; its result file is not in it.
                    None => self.resumed.contains_key(*u),
                })
                .cloned()
                .collect(),
            None => return Vec::new(),
        };
        let mut jobs = Vec::new();
        for uuid in uuids {
            let Some(id) = self
                .result_ids
                .get(&uuid)
                .map(|(id, _)| *id)
                .or_else(|| self.resumed.get(&uuid).copied())
            else {
                continue;
            };
            let (fixtures, mut attachments) = self.take_fixtures(dir, &uuid);
            attachments.retain(|a| !self.acks.attachment_acked(id, &a.source));
            if fixtures.is_empty() {
                continue;
            }
            jobs.push(ResultJob {
                result_id: id,
                uuid,
                origin: dir.as_ref().clone(),
                attachments,
                fixtures,
            });
        }
        jobs
    }

    async fn run_jobs(&mut self, jobs: Vec<ResultJob>) -> Result<(), UploadError> {
        let started = self.start_jobs(jobs);
        self.finish_jobs(started).await
    }

    /// Starts sending the attachments, then the fixtures, of acknowledged
    /// results, in a task of its own.
    fn start_jobs(&self, mut jobs: Vec<ResultJob>) -> tokio::task::JoinHandle<JobsOutcome> {
        let mut items = Vec::new();
        for j in &mut jobs {
            for a in std::mem::take(&mut j.attachments) {
                items.push((j.result_id, a));
            }
        }
        let sender = attachments::Sender {
            client: self.client.clone(),
            reopener: self.reopener.clone(),
            acks: self.acks.clone(),
            max_file_bytes: self.opts.max_file_bytes,
            concurrency: self.opts.concurrency,
            in_flight: self.in_flight.clone(),
        };
        let concurrency = self.opts.concurrency;
        tokio::spawn(async move {
            let (sent, failure) = sender.send(items).await;
            let fixtures: Vec<Result<JobOutcome, ClientError>> = stream::iter(jobs)
                .filter(|job| futures::future::ready(!job.fixtures.is_empty()))
                .map(|job| {
                    permitted(
                        sender.in_flight.clone(),
                        send_fixtures(
                            sender.client.clone(),
                            sender.reopener.clone(),
                            sender.acks.clone(),
                            job,
                        ),
                    )
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
            JobsOutcome {
                sent,
                failure,
                fixtures,
            }
        })
    }

    /// Waits for [`Uploader::start_jobs`] and counts what it did.
    async fn finish_jobs(
        &mut self,
        started: tokio::task::JoinHandle<JobsOutcome>,
    ) -> Result<(), UploadError> {
        let JobsOutcome {
            sent,
            mut failure,
            fixtures,
        } = started.await.unwrap_or_else(|e| JobsOutcome {
            failure: Some(ClientError::Config(format!(
                "sending attachments and fixtures stopped: {e}"
            ))),
            ..Default::default()
        });
        self.report.attachments += sent.attachments;
        self.progress
            .attachments
            .fetch_add(sent.attachments, Ordering::Relaxed);
        for p in sent.problems {
            tracing::warn!("{p}");
            self.report.problems.push(p);
        }
        for o in fixtures {
            let o = match o {
                Ok(o) => o,
                Err(e) => {
                    failure.get_or_insert(e);
                    continue;
                }
            };
            self.report.fixtures += o.fixtures;
            for p in o.problems {
                tracing::warn!("{p}");
                self.report.problems.push(p);
            }
        }
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// What [`Uploader::start_jobs`] did.
#[derive(Default)]
struct JobsOutcome {
    sent: attachments::Sent,
    failure: Option<ClientError>,
    fixtures: Vec<Result<JobOutcome, ClientError>>,
}

/// A chunk whose results were sent, with what completes them: the jobs to
/// send ([`SentChunk`]), then the task sending them ([`Tail`]).
struct Chunk<'f, J> {
    jobs: J,
    files: Vec<&'f InputFile>,
    handled: Vec<(String, Id)>,
}

type SentChunk<'f> = Chunk<'f, Vec<ResultJob>>;

/// A chunk's results ready to send ([`Uploader::prepare_chunk`]).
struct Prepared<'f> {
    uploads: Vec<encode::Sendable>,
    metas: HashMap<String, ResultMeta>,
    jobs: Vec<ResultJob>,
    files: Vec<&'f InputFile>,
}

/// A chunk whose results are on their way ([`Uploader::send_chunk`]).
struct Flying<'f> {
    sending: Option<tokio::task::JoinHandle<Vec<Result<BatchOutcome, ClientError>>>>,
    /// The results sent, by uuid.
    metas: HashMap<String, ResultMeta>,
    jobs: Vec<ResultJob>,
    files: Vec<&'f InputFile>,
}

impl Flying<'_> {
    /// Whether `loaded` holds a result of this chunk (the same uuid in
    /// another file): such a chunk waits for this one's answers, so the
    /// first file's result is the one stored and the second is known as sent.
    fn repeated_in(&self, loaded: &[Loaded<ParsedFile>]) -> bool {
        loaded.iter().any(|l| match l {
            Loaded::Ok(results) => results.iter().any(|r| self.metas.contains_key(&r.uuid)),
            _ => false,
        })
    }
}
type Tail<'f> = Chunk<'f, tokio::task::JoinHandle<JobsOutcome>>;

/// Runs `request` once one of the uploader's request permits
/// ([`Uploader::in_flight`]) is free, holding it to the end.
async fn permitted<F: std::future::Future>(
    in_flight: Arc<tokio::sync::Semaphore>,
    request: F,
) -> F::Output {
    let _permit = in_flight.acquire_owned().await;
    request.await
}

fn executor_entries(e: &allure::Executor) -> Vec<(String, String)> {
    let fields = [
        ("executor.name", e.name.clone()),
        ("executor.type", e.r#type.clone()),
        ("executor.url", e.url.clone()),
        ("executor.buildOrder", e.build_order.map(|n| n.to_string())),
        ("executor.buildName", e.build_name.clone()),
        ("executor.buildUrl", e.build_url.clone()),
        ("executor.reportName", e.report_name.clone()),
        ("executor.reportUrl", e.report_url.clone()),
    ];
    fields
        .into_iter()
        .filter_map(|(k, v)| {
            v.filter(|v| !v.trim().is_empty())
                .map(|v| (k.to_string(), v))
        })
        .collect()
}

/// Splits results into batches of at most `size` results and `max_bytes` (the
/// sum of their weights, the bytes of file each came from; a single larger
/// result is a batch of its own), except that consecutive results of one
/// test (attempts of a JUnit report, same history id) stay in one batch: the server
/// orders the attempts of one request by uuid, which for JUnit attempts is their
/// order in the report (see [`onelaunch_model::parse_junit_report`]).
fn split_batches(
    items: Vec<encode::Sendable>,
    size: usize,
    max_bytes: usize,
) -> Vec<Vec<encode::Sendable>> {
    let size = size.max(1);
    let mut batches: Vec<Vec<encode::Sendable>> = Vec::new();
    let mut batch: Vec<encode::Sendable> = Vec::new();
    let mut bytes = 0usize;
    for item in items {
        let weight = item.json.len();
        let same_test = |last: &encode::Sendable| {
            last.history_id.is_some() && last.history_id == item.history_id
        };
        let full = batch.len() >= size || bytes.saturating_add(weight) > max_bytes;
        if full && !batch.is_empty() && !batch.last().is_some_and(same_test) {
            batches.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes = bytes.saturating_add(weight);
        batch.push(item);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// Matches the server's answer to the batch: by uuid, or by position when the
/// server only returned `resultIds`.
/// Also says how many of them the server already had.
fn acknowledged_counted(
    sent: &[encode::Sendable],
    resp: UploadResultsResponse,
) -> (Vec<(String, Id)>, usize) {
    let new = resp.new_results;
    let acked = acknowledged_refs(sent, resp);
    let present = new.map_or(0, |n| acked.len().saturating_sub(n));
    (acked, present)
}

fn acknowledged_refs(sent: &[encode::Sendable], resp: UploadResultsResponse) -> Vec<(String, Id)> {
    if resp.results.is_empty() && resp.result_ids.len() == sent.len() {
        return sent
            .iter()
            .map(|r| r.uuid.clone())
            .zip(resp.result_ids)
            .collect();
    }
    resp.results.into_iter().map(|r| (r.uuid, r.id)).collect()
}

/// Sends one batch; when the server refuses it as a whole (4xx), sends its
/// results one by one so one bad result does not take the others down.
async fn send_batch(
    client: ApiClient,
    reopener: Reopener,
    acks: Arc<AckLog>,
    session_id: Id,
    results: Vec<encode::Sendable>,
) -> Result<BatchOutcome, ClientError> {
    let body = encode::batch_body(session_id, &results);
    match reopener.run(|| client.upload_results(body.clone())).await {
        Ok(resp) => {
            let (acknowledged, already_present) = acknowledged_counted(&results, resp);
            acks.results(&acknowledged);
            Ok(BatchOutcome {
                acknowledged,
                rejected: Vec::new(),
                already_present,
            })
        }
        Err(ClientError::BadRequest { .. }) if results.len() > 1 => {
            drop(body);
            let mut outcome = BatchOutcome::default();
            for result in results {
                let uuid = result.uuid.clone();
                let single = [result];
                let body = encode::batch_body(session_id, &single);
                match reopener.run(|| client.upload_results(body.clone())).await {
                    Ok(resp) => {
                        let (acked, present) = acknowledged_counted(&single, resp);
                        acks.results(&acked);
                        outcome.acknowledged.extend(acked);
                        outcome.already_present += present;
                    }
                    Err(ClientError::BadRequest { message, .. }) => {
                        outcome.rejected.push((uuid, message))
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(outcome)
        }
        Err(ClientError::BadRequest { message, .. }) => Ok(BatchOutcome {
            acknowledged: Vec::new(),
            already_present: 0,
            rejected: results
                .into_iter()
                .map(|r| (r.uuid, message.clone()))
                .collect(),
        }),
        Err(e) => Err(e),
    }
}

/// Sends the attachments (in requests of at most 100 parts and about 32 MiB)
/// and then the fixtures of one result. Unreadable attachments and refused
/// (4xx) uploads become problems; other errors stop the upload.
/// Sends the fixtures of one result.
async fn send_fixtures(
    client: ApiClient,
    reopener: Reopener,
    acks: Arc<AckLog>,
    job: ResultJob,
) -> Result<JobOutcome, ClientError> {
    let mut outcome = JobOutcome::default();
    if !job.fixtures.is_empty() {
        let count = job.fixtures.len();
        let keys: Vec<String> = job.fixtures.iter().map(fixture_key).collect();
        let body = UploadFixtures {
            fixtures: job.fixtures,
        };
        match reopener
            .run(|| client.upload_fixtures(job.result_id, &body))
            .await
        {
            Ok(()) => {
                acks.fixtures(&job.uuid, &keys);
                outcome.fixtures += count
            }
            Err(ClientError::BadRequest { message, .. } | ClientError::NotFound(message)) => {
                outcome.problems.push(FileProblem {
                    path: job.origin.clone(),
                    message: format!(
                        "the server refused the fixtures of result {}: {message}",
                        job.uuid
                    ),
                })
            }
            Err(e) => return Err(e),
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files named by one component are read without resolving the path;
    /// everything else (a link, a name with directories) is still resolved
    /// and judged: a link inside the directory is read, one outside refused,
    /// the size limit holds either way. Reading by path and reading through
    /// the directory held open (`dir_reader`) give the same answers, and
    /// neither opens a named pipe (which would block).
    #[test]
    fn files_are_read_inside_the_directory_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("results");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        std::fs::write(dir.join("a.json"), b"{}").unwrap();
        std::fs::write(dir.join("sub/b.txt"), b"bee").unwrap();
        std::fs::write(root.path().join("secret"), b"nope").unwrap();
        std::os::unix::fs::symlink(dir.join("sub/b.txt"), dir.join("in-link")).unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), dir.join("out-link")).unwrap();
        make_fifo(&dir.join("pipe"));
        let held = dir_reader::ResultsDir::open(&dir);
        let listing = list_dir(&dir).unwrap().files;
        for by in ["path", "held", "listed"] {
            let read = |name: &str, max| {
                let read = match by {
                    "path" => read_inside(&dir, name, max),
                    "held" => held.read(name, max),
                    _ => {
                        let listed = listing.iter().find(|f| f.name == name);
                        let mut buf = b"left over from an earlier file".to_vec();
                        held.read_into(name, listed.and_then(|f| f.listed), max, &mut buf)
                            .map(|()| buf)
                    }
                };
                read.map_err(|e| e.message())
            };
            files_are_judged(read);
        }
        let listed = |name: &str| listing.iter().find(|f| f.name == name).unwrap().listed;
        assert!(listed("a.json").is_some());
        for name in ["in-link", "out-link", "pipe"] {
            assert_eq!(listed(name), None, "{name} is no regular file");
        }
        assert!(one_component("a-result.json"));
        assert!(!one_component("sub/b.txt"));
        assert!(!one_component("./a.json"));
        assert!(!one_component(".."));
    }

    /// A named pipe at `path`.
    fn make_fifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
    }

    /// A file the listing saw as a regular file is opened without being
    /// looked at first; one replaced since (by a link leading out, a pipe,
    /// another file) is still judged as it is now, and a pipe never blocks.
    #[test]
    fn files_replaced_since_the_listing_are_judged_as_they_are_now() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("results");
        std::fs::create_dir_all(&dir).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        std::fs::write(root.path().join("secret"), b"nope").unwrap();
        for name in ["link.json", "pipe.json", "other.json", "same.json"] {
            std::fs::write(dir.join(name), b"{\"uuid\":\"listed\"}").unwrap();
        }
        let listing = list_dir(&dir).unwrap().files;
        assert!(listing.iter().all(|f| f.listed.is_some()));

        std::fs::remove_file(dir.join("link.json")).unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), dir.join("link.json")).unwrap();
        std::fs::remove_file(dir.join("pipe.json")).unwrap();
        make_fifo(&dir.join("pipe.json"));
        std::fs::write(dir.join("new"), b"{}").unwrap();
        std::fs::rename(dir.join("new"), dir.join("other.json")).unwrap();

        let held = dir_reader::ResultsDir::open(&dir);
        let mut buf = Vec::new();
        let mut read = |name: &str| {
            let listed = listing.iter().find(|f| f.name == name).unwrap().listed;
            held.read_into(name, listed, 100, &mut buf)
                .map(|()| String::from_utf8(buf.clone()).unwrap())
                .map_err(|e| e.message())
        };
        assert!(read("link.json")
            .unwrap_err()
            .contains("outside the results directory"));
        assert!(read("pipe.json")
            .unwrap_err()
            .contains("not a regular file"));
        assert_eq!(read("other.json"), Ok("{}".to_string()));
        assert_eq!(read("same.json"), Ok("{\"uuid\":\"listed\"}".to_string()));
    }

    /// A file is read in one call when it has the size it had when looked
    /// at, and read on to its end when it grew or shrank since; the limit
    /// holds either way.
    #[test]
    fn a_file_is_read_whole_whatever_its_size_did_since_it_was_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, b"12345").unwrap();
        let read = |len: u64, max: u64| {
            let mut buf = b"earlier bytes".to_vec();
            read_limited_into(std::fs::File::open(&path).unwrap(), len, max, &mut buf)
                .map(|()| buf)
                .map_err(|e| e.message())
        };
        assert_eq!(read(5, 10), Ok(b"12345".to_vec()), "as looked at");
        assert_eq!(read(2, 10), Ok(b"12345".to_vec()), "grew since");
        assert_eq!(read(4, 10), Ok(b"12345".to_vec()), "one byte more");
        assert_eq!(read(9, 10), Ok(b"12345".to_vec()), "shrank since");
        assert!(read(2, 3)
            .unwrap_err()
            .contains("larger than the limit of 3 bytes"));
        std::fs::write(&path, b"").unwrap();
        assert_eq!(read(0, 10), Ok(Vec::new()), "empty");
    }

    /// What `scan_inputs` tells before an upload: whether anything is a
    /// result (a directory, a file, a pattern), how many other files there
    /// are when nothing is, which patterns matched nothing; a spool is refused
    /// and a missing path is an error, as the upload itself would.
    #[test]
    fn the_scan_tells_results_from_other_files() {
        let root = tempfile::tempdir().unwrap();
        let results = root.path().join("results");
        std::fs::create_dir_all(results.join("sub")).unwrap();
        for i in 0..50 {
            std::fs::write(results.join(format!("{i}-attachment.txt")), b"x").unwrap();
        }
        std::fs::write(results.join("u-result.json"), b"{}").unwrap();
        let other = root.path().join("other");
        std::fs::create_dir_all(other.join("nested")).unwrap();
        std::fs::write(other.join("notes.txt"), b"x").unwrap();
        std::fs::write(other.join("nested/deep-result.json"), b"{}").unwrap();
        std::fs::write(other.join("report.html"), b"x").unwrap();

        let scan = scan_inputs(std::slice::from_ref(&results)).unwrap();
        assert!(scan.any_results, "{scan:?}");
        assert_eq!(scan.found, vec![results.clone()]);

        // Subdirectories are not looked into, as the upload does not.
        let scan = scan_inputs(std::slice::from_ref(&other)).unwrap();
        assert!(!scan.any_results, "{scan:?}");
        assert_eq!(scan.files, 2, "{scan:?}");

        let junit = other.join("TEST-a.xml");
        std::fs::write(&junit, b"<testsuite/>").unwrap();
        let scan = scan_inputs(&[other.join("notes.txt"), junit]).unwrap();
        assert!(scan.any_results, "{scan:?}");

        let none = other.join("*-result.json");
        let scan = scan_inputs(&[none.clone(), results.join("*-result.json")]).unwrap();
        assert!(scan.any_results, "{scan:?}");
        assert_eq!(scan.unmatched, vec![none]);

        let spool = results.join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        std::fs::write(spool.join(crate::spool::MANIFEST_FILE), b"{}").unwrap();
        let refused = scan_inputs(&[spool]).unwrap_err().to_string();
        assert!(refused.contains("spool"), "{refused}");
        assert!(scan_inputs(&[root.path().join("missing")]).is_err());
    }

    fn files_are_judged(read: impl Fn(&str, u64) -> Result<Vec<u8>, String>) {
        assert_eq!(read("a.json", 10), Ok(b"{}".to_vec()));
        assert_eq!(read("sub/b.txt", 10), Ok(b"bee".to_vec()));
        assert_eq!(read("in-link", 10), Ok(b"bee".to_vec()));
        assert!(read("out-link", 10)
            .unwrap_err()
            .contains("outside the results directory"));
        assert!(read("../secret", 10)
            .unwrap_err()
            .contains("outside the results directory"));
        assert!(read("a.json", 1)
            .unwrap_err()
            .contains("larger than the limit of 1 bytes"));
        assert!(read("sub", 10).unwrap_err().contains("not a regular file"));
        assert!(read("pipe", 10).unwrap_err().contains("not a regular file"));
        assert_eq!(read("missing.json", 10), Err("file not found".to_string()));
    }

    /// A result whose request JSON is `bytes` long.
    fn result(uuid: &str, history: Option<&str>, bytes: usize) -> encode::Sendable {
        encode::Sendable {
            uuid: uuid.to_string(),
            history_id: history.map(str::to_string),
            json: bytes::Bytes::from(vec![b' '; bytes]),
        }
    }

    #[test]
    fn batches_keep_the_attempts_of_one_test_together() {
        let items = vec![
            result("a", Some("x"), 10),
            result("b", Some("y"), 10),
            result("c", Some("y"), 10),
            result("d", Some("y"), 10),
            result("e", None, 10),
            result("f", None, 10),
            result("g", Some("z"), 10),
        ];
        let uuids: Vec<Vec<String>> = split_batches(items, 2, usize::MAX)
            .into_iter()
            .map(|b| b.into_iter().map(|r| r.uuid).collect())
            .collect();
        assert_eq!(
            uuids,
            vec![vec!["a", "b", "c", "d"], vec!["e", "f"], vec!["g"],]
        );
        assert!(split_batches(Vec::new(), 2, usize::MAX).is_empty());
    }

    #[test]
    fn batches_end_before_their_bytes_pass_the_bound() {
        let sized = result;
        let items = vec![
            sized("a", None, 40),
            sized("b", None, 40),
            sized("c", None, 40),
            // Larger than the bound: a batch of its own.
            sized("d", None, 250),
            sized("e", Some("x"), 60),
            // The same test stays with its first attempt, past the bound.
            sized("f", Some("x"), 60),
            sized("g", None, 10),
        ];
        let uuids: Vec<Vec<String>> = split_batches(items, 500, 100)
            .into_iter()
            .map(|b| b.into_iter().map(|r| r.uuid).collect())
            .collect();
        assert_eq!(
            uuids,
            vec![
                vec!["a", "b"],
                vec!["c"],
                vec!["d"],
                vec!["e", "f"],
                vec!["g"],
            ]
        );
    }
}
