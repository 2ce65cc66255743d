//! The durable spool: what an upload could not deliver because the server stayed
//! unreachable, kept on disk until `onelaunch upload --resume` sends it.
//!
//! A spool is a directory:
//!
//! ```text
//! <spool>/onelaunch-spool.json   the manifest: where the results go (endpoint,
//!                                project, launch, job run, session; never the
//!                                token) and how to upload them
//! <spool>/journal.jsonl          append-only journal of what the server
//!                                acknowledged: results, attachments, fixtures
//! <spool>/files/<n>/             the input files that were not fully delivered
//!                                (hard links when possible, else copies), one
//!                                directory per results directory
//! ```
//!
//! Crash safety: a new spool is built in a temporary sibling directory (files,
//! journal, then the manifest, each synced) and renamed into place, so a spool
//! either exists completely or not at all. While a spool is resumed, every
//! acknowledgement is appended to the journal before it counts; a torn last line
//! (a crash in the middle of an append) is ignored, so that item is sent again,
//! never lost. New input groups are added as `files/<n>` first and listed in the
//! manifest after (manifest writes are write-then-rename). Removing a spool
//! deletes the manifest first, so a half-removed spool is no spool.
//!
//! A directory holding a manifest (and everything below it) is never read as
//! results.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use foldhash::{HashMap, HashSet, HashSetExt};
use onelaunch_api::Id;
use onelaunch_model::FileKind;
use serde::{Deserialize, Serialize};

use crate::upload::{read_inside, resolve_inputs, FileProblem, Group, SessionTarget, UploadError};

/// Name of the manifest file; a directory holding it is a spool.
pub const MANIFEST_FILE: &str = "onelaunch-spool.json";
/// Name of the journal of acknowledged items.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// Subdirectory holding the spooled input files.
pub const FILES_DIR: &str = "files";
/// Name of the default spool directory inside a results directory.
pub const DEFAULT_SPOOL_NAME: &str = ".onelaunch-spool";
/// Format version written into manifests.
pub const SPOOL_VERSION: u32 = 1;

/// Why a spool could not be written or read.
#[derive(thiserror::Error, Debug)]
pub enum SpoolError {
    /// A file system operation failed.
    #[error("spool {}: {message}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done.
        message: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The spool exists but cannot be used.
    #[error("spool {}: {message}", path.display())]
    Invalid {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The inputs could not be listed.
    #[error(transparent)]
    Input(#[from] UploadError),
}

fn io_err(path: &Path, message: &str) -> impl FnOnce(std::io::Error) -> SpoolError {
    let path = path.to_path_buf();
    let message = message.to_string();
    move |source| SpoolError::Io {
        path,
        message,
        source,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------- manifest

/// One spooled results directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoolGroup {
    /// The directory inside the spool, relative to it (`files/0`).
    pub dir: String,
    /// The results directory the files came from (for people reading the manifest).
    pub source: PathBuf,
}

/// What a spool is for: where its results go and how to upload them. Never
/// holds the API token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoolManifest {
    /// Format version ([`SPOOL_VERSION`]).
    pub version: u32,
    /// Base URL of the server the upload was going to.
    pub endpoint: String,
    /// Project of the upload.
    pub project_id: Id,
    /// The launch, once known.
    #[serde(default)]
    pub launch_id: Option<Id>,
    /// The job run, when the results go into one.
    #[serde(default)]
    pub job_run_id: Option<Id>,
    /// The test session already created, reused on resume.
    #[serde(default)]
    pub session_id: Option<Id>,
    /// Finish the job run once everything is delivered.
    #[serde(default)]
    pub finish_job_run: bool,
    /// Reopen the launch when it is closed.
    #[serde(default)]
    pub reopen_closed_launch: bool,
    /// CI attempt of the upload (see [`crate::UploadOptions::attempt`]).
    #[serde(default)]
    pub attempt: Option<u32>,
    /// CI execution of the upload (see [`crate::UploadOptions::execution`]).
    #[serde(default)]
    pub execution: Option<String>,
    /// Requests in flight at once.
    #[serde(default)]
    pub concurrency: usize,
    /// Results per request.
    #[serde(default)]
    pub batch_size: usize,
    /// How the command meant to create or join its launch and job run, kept by
    /// the caller (used when the target was not resolved before the server
    /// became unreachable, and to recognise the same upload again).
    #[serde(default)]
    pub request: serde_json::Value,
    /// The spooled results directories, in upload order.
    #[serde(default)]
    pub groups: Vec<SpoolGroup>,
    /// When the spool was created (epoch ms).
    #[serde(default)]
    pub created_ms: u64,
    /// When the manifest was last written (epoch ms).
    #[serde(default)]
    pub updated_ms: u64,
}

impl SpoolManifest {
    /// Where the results go, once the launch is known.
    pub fn target(&self) -> Option<SessionTarget> {
        self.launch_id.map(|launch_id| SessionTarget {
            launch_id,
            job_run_id: self.job_run_id,
        })
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SpoolError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("spool-file");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err(&tmp, "cannot create"))?;
        f.write_all(bytes).map_err(io_err(&tmp, "cannot write"))?;
        f.sync_all().map_err(io_err(&tmp, "cannot sync"))?;
        std::fs::rename(&tmp, path).map_err(io_err(path, "cannot rename into place"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) {
    // Makes renames durable; not every platform can open a directory, which is fine.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

// ---------------------------------------------------------------- journal

/// One journal line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// Acknowledged result uuid (with `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    /// Server id of the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Id>,
    /// Result id of an acknowledged attachment (with `s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<Id>,
    /// Attachment source file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    /// Result uuid of acknowledged fixtures (with `k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<String>,
    /// Fixture key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
}

fn line(entry: &Entry, out: &mut Vec<u8>) {
    if serde_json::to_writer(&mut *out, entry).is_ok() {
        out.push(b'\n');
    }
}

/// Everything the server acknowledged.
#[derive(Debug, Default, Clone)]
pub(crate) struct AckState {
    /// Result uuid → server id.
    pub(crate) results: HashMap<String, Id>,
    /// (result id, attachment source).
    pub(crate) attachments: HashSet<(Id, String)>,
    /// (result uuid, fixture key).
    pub(crate) fixtures: HashSet<(String, String)>,
}

impl AckState {
    fn apply(&mut self, e: Entry) {
        match e {
            Entry {
                r: Some(uuid),
                id: Some(id),
                ..
            } => {
                self.results.insert(uuid, id);
            }
            Entry {
                a: Some(id),
                s: Some(source),
                ..
            } => {
                self.attachments.insert((id, source));
            }
            Entry {
                f: Some(uuid),
                k: Some(key),
                ..
            } => {
                self.fixtures.insert((uuid, key));
            }
            _ => {}
        }
    }

    fn journal_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (uuid, id) in &self.results {
            line(
                &Entry {
                    r: Some(uuid.clone()),
                    id: Some(*id),
                    ..Entry::default()
                },
                &mut out,
            );
        }
        for (id, source) in &self.attachments {
            line(
                &Entry {
                    a: Some(*id),
                    s: Some(source.clone()),
                    ..Entry::default()
                },
                &mut out,
            );
        }
        for (uuid, key) in &self.fixtures {
            line(
                &Entry {
                    f: Some(uuid.clone()),
                    k: Some(key.clone()),
                    ..Entry::default()
                },
                &mut out,
            );
        }
        out
    }
}

/// Reads a journal; lines that do not parse (a torn last line) are ignored.
/// Returns the state and whether the file ends without a newline.
fn read_journal(path: &Path) -> Result<(AckState, bool), SpoolError> {
    let mut state = AckState::default();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((state, false)),
        Err(e) => return Err(io_err(path, "cannot open")(e)),
    };
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut torn = false;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(io_err(path, "cannot read"))?;
        if n == 0 {
            break;
        }
        torn = buf.last() != Some(&b'\n');
        match serde_json::from_slice::<Entry>(&buf) {
            Ok(e) => state.apply(e),
            Err(_) => tracing::debug!("{}: ignoring an unreadable journal line", path.display()),
        }
    }
    Ok((state, torn))
}

/// The acknowledgements of an upload, in memory, and appended to the journal of
/// the spool being resumed.
#[derive(Debug, Default)]
pub(crate) struct AckLog {
    inner: Mutex<AckInner>,
}

#[derive(Debug, Default)]
struct AckInner {
    state: AckState,
    journal: Option<(PathBuf, File)>,
}

impl AckLog {
    fn append(inner: &mut AckInner, bytes: &[u8]) {
        if let Some((path, file)) = &mut inner.journal {
            if let Err(e) = file.write_all(bytes) {
                // The acknowledgement still counts in memory; at worst the item
                // is sent again on a later resume (the server ignores repeats).
                tracing::warn!("{}: cannot append to the journal: {e}", path.display());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AckInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn results(&self, acked: &[(String, Id)]) {
        if acked.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let mut bytes = Vec::new();
        for (uuid, id) in acked {
            inner.state.results.insert(uuid.clone(), *id);
            line(
                &Entry {
                    r: Some(uuid.clone()),
                    id: Some(*id),
                    ..Entry::default()
                },
                &mut bytes,
            );
        }
        Self::append(&mut inner, &bytes);
    }

    pub(crate) fn attachments(&self, result_id: Id, sources: &[String]) {
        if sources.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let mut bytes = Vec::new();
        for s in sources {
            inner.state.attachments.insert((result_id, s.clone()));
            line(
                &Entry {
                    a: Some(result_id),
                    s: Some(s.clone()),
                    ..Entry::default()
                },
                &mut bytes,
            );
        }
        Self::append(&mut inner, &bytes);
    }

    pub(crate) fn fixtures(&self, uuid: &str, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let mut bytes = Vec::new();
        for k in keys {
            inner.state.fixtures.insert((uuid.to_string(), k.clone()));
            line(
                &Entry {
                    f: Some(uuid.to_string()),
                    k: Some(k.clone()),
                    ..Entry::default()
                },
                &mut bytes,
            );
        }
        Self::append(&mut inner, &bytes);
    }

    /// Drops what is known of `results` (uuid, id) from memory, once their files
    /// are fully handled: they are never spooled, so a spool needs no journal
    /// entry for them (a journal on disk keeps its lines).
    pub(crate) fn forget(&self, results: &[(String, Id)]) {
        if results.is_empty() {
            return;
        }
        let uuids: HashSet<&str> = results.iter().map(|(u, _)| u.as_str()).collect();
        let ids: HashSet<Id> = results.iter().map(|(_, id)| *id).collect();
        let mut inner = self.lock();
        let state = &mut inner.state;
        for (uuid, _) in results {
            state.results.remove(uuid);
        }
        state.attachments.retain(|(id, _)| !ids.contains(id));
        state
            .fixtures
            .retain(|(uuid, _)| !uuids.contains(uuid.as_str()));
    }

    pub(crate) fn attachment_acked(&self, result_id: Id, source: &str) -> bool {
        self.lock()
            .state
            .attachments
            .contains(&(result_id, source.to_string()))
    }

    pub(crate) fn snapshot(&self) -> AckState {
        self.lock().state.clone()
    }

    /// Loads a spool's journal and keeps appending to it.
    pub(crate) fn resume(dir: &Path) -> Result<(AckLog, AckState), SpoolError> {
        let path = dir.join(JOURNAL_FILE);
        let (state, torn) = read_journal(&path)?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path, "cannot open for appending"))?;
        if torn {
            // Start a fresh line so the next entry is not glued to the torn one.
            file.write_all(b"\n")
                .map_err(io_err(&path, "cannot append"))?;
        }
        let log = AckLog {
            inner: Mutex::new(AckInner {
                state: state.clone(),
                journal: Some((path, file)),
            }),
        };
        Ok((log, state))
    }
}

// ---------------------------------------------------------------- spools

/// An existing spool.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    manifest: SpoolManifest,
}

/// True when `dir` is a spool (it holds a manifest).
pub fn is_spool(dir: &Path) -> bool {
    dir.join(MANIFEST_FILE).is_file()
}

/// True when `dir` or one of its parents is a spool: such directories are never
/// read as results.
pub fn inside_spool(dir: &Path) -> bool {
    dir.ancestors().any(is_spool)
}

/// The default spool of a results directory: `<results>/.onelaunch-spool`.
pub fn default_spool_dir(results_dir: &Path) -> PathBuf {
    results_dir.join(DEFAULT_SPOOL_NAME)
}

impl Spool {
    /// Opens the spool in `dir`; `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Spool>, SpoolError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, "cannot read")(e)),
        };
        let manifest: SpoolManifest =
            serde_json::from_slice(&bytes).map_err(|e| SpoolError::Invalid {
                path: path.clone(),
                message: format!("not a spool manifest: {e}"),
            })?;
        if manifest.version != SPOOL_VERSION {
            return Err(SpoolError::Invalid {
                path,
                message: format!(
                    "spool format {} is not supported (expected {SPOOL_VERSION})",
                    manifest.version
                ),
            });
        }
        Ok(Some(Spool {
            dir: dir.to_path_buf(),
            manifest,
        }))
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &SpoolManifest {
        &self.manifest
    }

    /// Changes the manifest and writes it (write-then-rename).
    pub fn update(&mut self, change: impl FnOnce(&mut SpoolManifest)) -> Result<(), SpoolError> {
        let mut m = self.manifest.clone();
        change(&mut m);
        m.updated_ms = now_ms();
        write_manifest(&self.dir, &m)?;
        self.manifest = m;
        Ok(())
    }

    /// The spooled results directories, in upload order.
    pub fn group_dirs(&self) -> Vec<PathBuf> {
        self.manifest
            .groups
            .iter()
            .map(|g| self.dir.join(&g.dir))
            .collect()
    }

    /// Result files (`*-result.json` and JUnit XML) still in the spool.
    pub fn result_files(&self) -> usize {
        self.group_dirs()
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| {
                matches!(
                    onelaunch_model::classify(&e.file_name().to_string_lossy()),
                    FileKind::Result | FileKind::JUnit
                )
            })
            .count()
    }

    /// Results the journal says were acknowledged.
    pub fn acknowledged_results(&self) -> Result<usize, SpoolError> {
        Ok(read_journal(&self.dir.join(JOURNAL_FILE))?.0.results.len())
    }

    /// Deletes the spool: the manifest first (from then on it is no spool),
    /// then the journal and the files. The directory itself goes when empty.
    pub fn remove(self) -> Result<(), SpoolError> {
        let manifest = self.dir.join(MANIFEST_FILE);
        std::fs::remove_file(&manifest).map_err(io_err(&manifest, "cannot remove"))?;
        sync_dir(&self.dir);
        let journal = self.dir.join(JOURNAL_FILE);
        match std::fs::remove_file(&journal) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&journal, "cannot remove")(e)),
        }
        let files = self.dir.join(FILES_DIR);
        match std::fs::remove_dir_all(&files) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&files, "cannot remove")(e)),
        }
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }
}

fn write_manifest(dir: &Path, m: &SpoolManifest) -> Result<(), SpoolError> {
    let bytes = serde_json::to_vec_pretty(m).map_err(|e| SpoolError::Invalid {
        path: dir.join(MANIFEST_FILE),
        message: format!("cannot encode the manifest: {e}"),
    })?;
    write_atomically(&dir.join(MANIFEST_FILE), &bytes)?;
    sync_dir(dir);
    Ok(())
}

/// What to leave out of a new spool.
pub(crate) struct Delivered<'a> {
    /// Input files fully handled (keys: canonical directory joined with the name).
    pub(crate) done: &'a crate::upload::PathSet,
    /// Acknowledgements so far.
    pub(crate) acks: AckState,
    /// Largest file read to find the attachments a result refers to.
    pub(crate) max_file_bytes: u64,
}

/// Creates a spool in `dir` (or `dir-2`, `dir-3`, … when `dir` already holds
/// another spool) for `paths`, leaving out what was delivered.
pub(crate) fn create(
    dir: &Path,
    mut manifest: SpoolManifest,
    groups: Vec<Group>,
    delivered: &Delivered<'_>,
) -> Result<(Spool, Vec<FileProblem>), SpoolError> {
    let dir = free_spool_dir(dir)?;
    let parent = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(io_err(&parent, "cannot create"))?;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("spool")
        .to_string();
    let tmp = parent.join(format!(".{name}.tmp-{}-{}", std::process::id(), now_ms()));
    let built = (|| {
        std::fs::create_dir(&tmp).map_err(io_err(&tmp, "cannot create"))?;
        let mut problems = Vec::new();
        manifest.groups.clear();
        for (i, g) in groups.iter().enumerate() {
            let rel = format!("{FILES_DIR}/{i}");
            copy_group(g, &tmp.join(&rel), delivered, &mut problems)?;
            manifest.groups.push(SpoolGroup {
                dir: rel,
                source: g.dir.as_ref().clone(),
            });
        }
        write_atomically(&tmp.join(JOURNAL_FILE), &delivered.acks.journal_bytes())?;
        manifest.version = SPOOL_VERSION;
        manifest.created_ms = now_ms();
        manifest.updated_ms = manifest.created_ms;
        write_manifest(&tmp, &manifest)?;
        // `dir` is missing or an empty directory (see free_spool_dir), which the
        // rename replaces atomically where the platform allows it.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir(&dir);
            std::fs::rename(&tmp, &dir)
                .map_err(io_err(&dir, "cannot move the spool into place"))?;
        }
        sync_dir(&parent);
        Ok(problems)
    })();
    match built {
        Ok(problems) => Ok((Spool { dir, manifest }, problems)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Adds the undelivered files of `groups` to an existing spool as new groups
/// (each copied completely before the manifest lists it).
pub(crate) fn extend(
    spool: &mut Spool,
    groups: Vec<Group>,
    delivered: &Delivered<'_>,
    change: impl FnOnce(&mut SpoolManifest),
) -> Result<Vec<FileProblem>, SpoolError> {
    let mut problems = Vec::new();
    let mut added = Vec::new();
    let mut next = spool.manifest.groups.len();
    for g in &groups {
        let (rel, target) = loop {
            let rel = format!("{FILES_DIR}/{next}");
            let target = spool.dir.join(&rel);
            next += 1;
            if !target.exists() {
                break (rel, target);
            }
        };
        let tmp =
            spool
                .dir
                .join(FILES_DIR)
                .join(format!(".{}.tmp-{}", next - 1, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        copy_group(g, &tmp, delivered, &mut problems)?;
        std::fs::rename(&tmp, &target).map_err(io_err(&target, "cannot move into place"))?;
        added.push(SpoolGroup {
            dir: rel,
            source: g.dir.as_ref().clone(),
        });
    }
    spool.update(|m| {
        m.groups.extend(added);
        change(m);
    })?;
    Ok(problems)
}

/// `dir` when it is free (missing or an empty directory), else the first free
/// `dir-N`. A non-empty directory that is not a spool is refused.
fn free_spool_dir(dir: &Path) -> Result<PathBuf, SpoolError> {
    let is_free = |d: &Path| -> Result<bool, SpoolError> {
        match std::fs::read_dir(d) {
            Ok(mut entries) => Ok(entries.next().is_none()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(io_err(d, "cannot inspect")(e)),
        }
    };
    if is_free(dir)? {
        return Ok(dir.to_path_buf());
    }
    if !is_spool(dir) {
        return Err(SpoolError::Invalid {
            path: dir.to_path_buf(),
            message: "exists and is not a spool; choose another --spool directory".into(),
        });
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "spool".into());
    for n in 2..1000 {
        let candidate = dir.with_file_name(format!("{name}-{n}"));
        if is_free(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(SpoolError::Invalid {
        path: dir.to_path_buf(),
        message: "too many spools next to it; resume them first".into(),
    })
}

/// Copies into `dest` the files of `g` a later upload needs: result files not
/// fully delivered, the attachments they (and containers) refer to, containers
/// and environment files.
fn copy_group(
    g: &Group,
    dest: &Path,
    delivered: &Delivered<'_>,
    problems: &mut Vec<FileProblem>,
) -> Result<(), SpoolError> {
    std::fs::create_dir_all(dest).map_err(io_err(dest, "cannot create"))?;
    let mut sources: HashSet<String> = HashSet::new();
    let mut attachments = Vec::new();
    for f in &g.files {
        match f.kind {
            FileKind::Result | FileKind::JUnit => {
                if delivered.done.contains(f) {
                    continue;
                }
                if f.kind == FileKind::Result {
                    if let Ok(bytes) = read_inside(&g.dir, &f.name, delivered.max_file_bytes) {
                        if let Ok(r) = onelaunch_model::parse_result(&bytes) {
                            sources.extend(onelaunch_model::attachment_sources(&r));
                        }
                    }
                }
            }
            FileKind::Container => {
                if let Ok(bytes) = read_inside(&g.dir, &f.name, delivered.max_file_bytes) {
                    if let Ok(c) = onelaunch_model::parse_container(&bytes) {
                        collect_sources(&c.befores, &mut sources);
                        collect_sources(&c.afters, &mut sources);
                    }
                }
            }
            FileKind::Globals => {
                if delivered.done.contains(f) {
                    continue;
                }
                if let Ok(bytes) = read_inside(&g.dir, &f.name, delivered.max_file_bytes) {
                    if let Ok(globals) = onelaunch_model::parse_globals(&bytes) {
                        sources.extend(globals.attachments.into_iter().map(|a| a.source));
                    }
                }
            }
            FileKind::Environment
            | FileKind::EnvironmentXml
            | FileKind::Executor
            | FileKind::Categories => {}
            FileKind::Other => {
                attachments.push(f);
                continue;
            }
        }
        if let Err(p) = link_or_copy(g, &f.name, &f.shown(), dest) {
            problems.push(p);
        }
    }
    for f in attachments {
        if sources.contains(&f.name) {
            if let Err(p) = link_or_copy(g, &f.name, &f.shown(), dest) {
                problems.push(p);
            }
        }
    }
    sync_dir(dest);
    Ok(())
}

fn collect_sources(steps: &[onelaunch_model::allure::StepResult], out: &mut HashSet<String>) {
    for s in steps {
        out.extend(s.attachments.iter().map(|a| a.source.clone()));
        collect_sources(&s.steps, out);
    }
}

/// Hard-links (or copies) one file of a results directory into the spool,
/// refusing what resolves outside the results directory or is not a regular file.
fn link_or_copy(g: &Group, name: &str, shown: &Path, dest: &Path) -> Result<(), FileProblem> {
    let problem = |message: String| FileProblem {
        path: shown.to_path_buf(),
        message,
    };
    let canon = std::fs::canonicalize(g.dir.join(name))
        .map_err(|e| problem(format!("cannot keep it in the spool: {e}")))?;
    if !canon.starts_with(g.dir.as_ref()) || canon == *g.dir.as_ref() {
        return Err(problem(
            "refused: resolves to a location outside the results directory".into(),
        ));
    }
    if !std::fs::metadata(&canon).is_ok_and(|m| m.is_file()) {
        return Err(problem("refused: not a regular file".into()));
    }
    let target = dest.join(name);
    if std::fs::hard_link(&canon, &target).is_ok() {
        return Ok(());
    }
    std::fs::copy(&canon, &target)
        .map(|_| ())
        .map_err(|e| problem(format!("cannot keep it in the spool: {e}")))
}

/// Lists `paths` as the uploader would (spools excluded).
pub(crate) fn input_groups(paths: &[PathBuf], allow_spool: bool) -> Result<Vec<Group>, SpoolError> {
    Ok(resolve_inputs(paths, allow_spool)?)
}

/// Creates a spool for results none of which were delivered (the server could
/// not be reached before the upload started). See [`Spool`] for the layout.
pub fn spool_paths(
    dir: &Path,
    manifest: SpoolManifest,
    paths: &[PathBuf],
) -> Result<(Spool, Vec<FileProblem>), SpoolError> {
    let groups = input_groups(paths, false)?;
    let done = crate::upload::PathSet::default();
    create(
        dir,
        manifest,
        groups,
        &Delivered {
            done: &done,
            acks: AckState::default(),
            max_file_bytes: crate::UploadOptions::default().max_file_bytes,
        },
    )
}
