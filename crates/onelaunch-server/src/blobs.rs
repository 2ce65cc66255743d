//! Content-addressed attachment storage: bytes live once under their SHA-256,
//! rows in the database point at the digest. A directory on disk; every
//! replica pointing at the same directory serves every attachment.
//!
//! * **Small bodies get no file.** A body of at most [`INLINE_MAX`] bytes is
//!   hashed in memory and handed back in its [`Stored`] ([`Stored::inline`]);
//!   the caller keeps the bytes in the database in the transaction of the row
//!   that references them (`db::small_blobs`, through `content`). A file
//!   costs an inode, a directory entry and an `fsync` (100–550 µs of CPU on
//!   ext4, docs/ingest-profile.md), ten times what the row costs. At most
//!   [`INLINE_BUDGET`] bytes of such bodies wait in memory at once; past it a
//!   small body is written to a file as a larger one is.
//! * **Writes stream.** [`BlobStore::receive`] writes what arrives to a
//!   temporary file in the store while hashing it, then renames it to
//!   `<root>/<aa>/<sha256>`: memory does not grow with the size of a body. The
//!   fresh copy always replaces what is there (an atomic rename), so storing the
//!   same bytes again repairs a damaged copy. A temporary file is removed on
//!   every error and when the request is dropped ([`TmpFile`]); stale ones
//!   (older than [`STALE_TMP`], left by a crash) are removed at start.
//! * **Reads are verified.** [`BlobStore::open_file`] hashes the file before anything
//!   is sent and refuses a copy whose bytes do not match their name
//!   (`content_damaged`, 409); the body then streams and is hashed again while
//!   it is sent, and a copy that changes underneath ends the response with an
//!   error instead of completing it.
//! * **Bodies in flight are bounded.** At most [`MAX_STREAMS`] bodies stream to
//!   disk at once and at most [`MAX_BUFFERED`] bytes of result files are held in
//!   memory; a request that cannot get its share within [`INTAKE_WAIT`] is
//!   answered 503 `busy` with `Retry-After`. One project's requests hold at
//!   most half of each of these two budgets, so a project token that sends
//!   slowly cannot starve the other projects ([`intake`]).
//! * **A full disk is 503 `storage_full`.** A write that fails for lack of
//!   space (`ENOSPC`, `EDQUOT`), or a body that arrives while the file system
//!   has less than the reserve ([`BlobStore::min_free`], `--min-free-space`)
//!   left, is answered 503 `storage_full` with `Retry-After`: the temporary
//!   file goes, the rest of the body is read and discarded (so the client
//!   gets the answer, not a reset connection), nothing is recorded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ServerError, ServerResult};

mod intake;
pub(crate) use intake::{Budget, Sender, Share};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Most request bodies streaming into the store at once.
pub(crate) const MAX_STREAMS: usize = 32;
/// Most bytes of raw result files held in memory at once (all requests).
pub(crate) const MAX_BUFFERED: usize = 512 * 1024 * 1024;
/// How long a request waits for its share before it is answered 503.
pub(crate) const INTAKE_WAIT: Duration = Duration::from_secs(30);
/// Temporary files older than this are left-overs of a crash.
pub(crate) const STALE_TMP: Duration = Duration::from_secs(3600);
/// Write buffer of one stream, and read chunk of a download.
const IO_CHUNK: usize = 256 * 1024;
/// Largest body kept in the database instead of a file ([`Stored::inline`]).
/// SQLite reads and writes blobs of this size faster in its file than as
/// files of their own; most attachments (logs, small screenshots, text) are
/// under it.
pub(crate) const INLINE_MAX: usize = 64 * 1024;
/// Most bytes of small bodies held in memory between their arrival and their
/// commit, all requests together.
pub(crate) const INLINE_BUDGET: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct BlobStore {
    root: PathBuf,
    streams: Budget,
    /// Bytes of result files in memory, in KiB.
    buffered: Budget,
    /// Bytes of small bodies in memory ([`INLINE_BUDGET`]), in KiB.
    inline_budget: Arc<Semaphore>,
    /// [`INLINE_MAX`]; 0 in tests of the files.
    pub(crate) inline_max: usize,
    /// [`INTAKE_WAIT`]; shorter in tests.
    wait: Duration,
    /// Bytes that must stay free on the store's file system for a body to be
    /// taken (room for the database's journal; 0: no reserve).
    pub(crate) min_free: u64,
}

/// Default of `--min-free-space`: 64 MiB.
pub const DEFAULT_MIN_FREE: u64 = 64 * 1024 * 1024;

/// Bytes stored by [`BlobStore::receive`]: either a file, or a small body
/// still in memory ([`Stored::inline`]) that the caller keeps in the
/// database. While it lives it holds a second name of the stored file
/// ([`Hold`]): a blob removed by a launch deletion or `server gc` between the
/// write and the row that references it comes back when the `Stored` is
/// dropped (after that row is committed).
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) sha256: String,
    pub(crate) len: u64,
    inline: Option<Arc<Inline>>,
    _hold: Option<Arc<Hold>>,
}

impl Stored {
    /// The bytes of a small body, which no file holds: they must be kept in
    /// the database with the row that references them.
    pub(crate) fn inline(&self) -> Option<&[u8]> {
        self.inline.as_ref().map(|i| i.bytes.as_slice())
    }
}

/// A small body in memory, holding its share of [`INLINE_BUDGET`].
struct Inline {
    bytes: Vec<u8>,
    _share: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inline")
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        self.sha256 == other.sha256 && self.len == other.len
    }
}
impl Eq for Stored {}

/// A part read into memory (a result file), holding its share of
/// [`MAX_BUFFERED`] until dropped.
#[derive(Debug)]
pub(crate) struct Buffered {
    pub(crate) bytes: Vec<u8>,
    _share: Option<Share>,
}

/// A blob whose bytes matched their digest when opened; `body` streams them
/// and fails (ending the response early) if they change while being sent.
pub(crate) struct Verified {
    pub(crate) len: u64,
    pub(crate) body: std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified").field("len", &self.len).finish()
    }
}

impl Verified {
    /// Bytes kept elsewhere (the database) that match `sha`: `content_damaged`
    /// when they do not.
    pub(crate) fn from_bytes(sha: &str, bytes: Vec<u8>) -> ServerResult<Verified> {
        let bytes = verify(sha, bytes)?;
        let len = bytes.len() as u64;
        let body = futures::stream::iter([Ok(Bytes::from(bytes))]);
        Ok(Verified {
            len,
            body: Box::pin(body),
        })
    }
}

/// `content_damaged` unless `bytes` (kept elsewhere: the database) match `sha`.
pub(crate) fn verify(sha: &str, bytes: Vec<u8>) -> ServerResult<Vec<u8>> {
    if hex::encode(Sha256::digest(&bytes)) != sha {
        return Err(damaged(sha));
    }
    Ok(bytes)
}

/// A temporary file that is removed when dropped, unless it was renamed into
/// place: no error path (full disk, a dropped request) leaves it behind.
struct TmpFile {
    path: PathBuf,
    kept: bool,
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn damaged(sha: &str) -> ServerError {
    tracing::warn!(sha256 = sha, "stored blob does not match its digest");
    ServerError::ContentDamaged(
        "the stored content is damaged (its bytes no longer match their SHA-256); \
         upload the same file again to repair it"
            .into(),
    )
}

fn valid_sha(sha: &str) -> bool {
    sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

impl BlobStore {
    /// Opens (creates) the store and removes temporary files a crash left.
    pub(crate) fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        let removed = remove_stale_tmp(&root, STALE_TMP);
        if removed > 0 {
            tracing::info!(removed, "removed stale temporary blob files");
        }
        Ok(BlobStore {
            root,
            streams: Budget::new(MAX_STREAMS),
            buffered: Budget::new(MAX_BUFFERED / 1024),
            inline_budget: Arc::new(Semaphore::new(INLINE_BUDGET / 1024)),
            inline_max: INLINE_MAX,
            wait: INTAKE_WAIT,
            min_free: DEFAULT_MIN_FREE,
        })
    }

    /// Bytes available to this process on the store's file system.
    fn free_space(&self) -> Option<u64> {
        #[cfg(unix)]
        {
            let st = rustix::fs::statvfs(&self.root).ok()?;
            Some(st.f_bavail.saturating_mul(st.f_frsize))
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// `storage_full` when less than the reserve is free.
    fn check_reserve(&self) -> ServerResult<()> {
        match self.free_space() {
            Some(free) if free < self.min_free => Err(ServerError::StorageFull(format!(
                "attachment store {}: {free} bytes free, below the reserve of {} bytes (--min-free-space)",
                self.root.display(),
                self.min_free
            ))),
            _ => Ok(()),
        }
    }

    fn path_of(&self, sha: &str) -> PathBuf {
        let (a, _) = sha.split_at(2.min(sha.len()));
        self.root.join(a).join(sha)
    }

    /// Streams a body into the store while hashing it; never holds more than
    /// one write buffer of it in memory.
    pub(crate) async fn receive<S, B, E>(
        &self,
        sender: Sender,
        mut chunks: S,
    ) -> ServerResult<Stored>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        ServerError: From<E>,
    {
        let _permit = self.streams.share(sender, 1, self.wait).await?;
        let written = match self.check_reserve() {
            Ok(()) => self.write_tmp(&mut chunks).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(stored) => Ok(stored),
            Err(e @ ServerError::StorageFull(_)) => {
                // Read what is left of the body so the client gets the answer.
                while let Some(Ok(_)) = chunks.next().await {}
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// [`BlobStore::receive`] without its intake permit: the write itself.
    ///
    /// A body that fits in one write buffer ([`IO_CHUNK`], nearly every
    /// attachment) is hashed before any file is made, so all of its file work
    /// happens in its own fan-out directory, in one blocking task: a copy
    /// with the same bytes already there is kept (a hard link holds it until
    /// the row is committed); otherwise a temporary file beside it is written,
    /// `fsync`ed and renamed over it. Directory changes lock the directory
    /// they change: with every temporary file in the store's root, concurrent
    /// uploads spun on that one lock (a fifth of the server's CPU in the
    /// ingest profile, docs/ingest-profile.md). A larger body streams to a
    /// temporary file in a fan-out directory picked in turn, then is renamed
    /// into place.
    async fn write_tmp<S, B, E>(&self, chunks: &mut S) -> ServerResult<Stored>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        ServerError: From<E>,
    {
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        // The body while it fits in one buffer; then the file it streams to.
        let mut head: Vec<u8> = Vec::new();
        let mut spill: Option<(TmpFile, tokio::io::BufWriter<tokio::fs::File>)> = None;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            let chunk = chunk.as_ref();
            hasher.update(chunk);
            len += chunk.len() as u64;
            match &mut spill {
                Some((_, out)) => out.write_all(chunk).await?,
                None if head.len() + chunk.len() <= IO_CHUNK => head.extend_from_slice(chunk),
                None => {
                    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                    let dir = self.root.join(format!("{:02x}", n % 256));
                    let (tmp, file) = tokio::task::spawn_blocking(move || {
                        ensure_dir(&dir)?;
                        create_tmp(&dir, n)
                    })
                    .await
                    .map_err(std::io::Error::other)??;
                    let mut out = tokio::io::BufWriter::with_capacity(
                        IO_CHUNK,
                        tokio::fs::File::from_std(file),
                    );
                    out.write_all(&head).await?;
                    out.write_all(chunk).await?;
                    head = Vec::new();
                    spill = Some((tmp, out));
                }
            }
        }
        let sha = hex::encode(hasher.finalize());
        if spill.is_none() && head.len() <= self.inline_max {
            let kib = u32::try_from(head.len().div_ceil(1024)).unwrap_or(u32::MAX);
            if let Ok(share) = self.inline_budget.clone().try_acquire_many_owned(kib) {
                return Ok(Stored {
                    sha256: sha,
                    len,
                    inline: Some(Arc::new(Inline {
                        bytes: head,
                        _share: share,
                    })),
                    _hold: None,
                });
            }
        }
        let path = self.path_of(&sha);
        let hold = match spill {
            None => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || place_small(&path, &head))
                    .await
                    .map_err(std::io::Error::other)??
            }
            Some((tmp, mut out)) => {
                out.flush().await?;
                let file = out.into_inner();
                file.sync_all().await?;
                drop(file);
                let (path, sha) = (path.clone(), sha.clone());
                tokio::task::spawn_blocking(move || {
                    ensure_dir(path.parent().unwrap_or(Path::new(".")))?;
                    put_in_place(tmp, &path, || file_is(&path, len, &sha))
                })
                .await
                .map_err(std::io::Error::other)??
            }
        };
        Ok(Stored {
            sha256: sha,
            len,
            inline: None,
            _hold: hold.map(Arc::new),
        })
    }

    /// Stores bytes already in memory (tests, small bodies).
    #[cfg(test)]
    pub(crate) async fn put(&self, bytes: &[u8]) -> ServerResult<String> {
        let one = futures::stream::iter([Ok::<_, ServerError>(bytes)]);
        Ok(self.receive(Sender::admin(), one).await?.sha256)
    }

    /// Opens a blob for sending: `None` when it is not stored,
    /// `content_damaged` when its bytes do not match their digest. The check
    /// reads the whole file before anything is sent.
    pub(crate) async fn open_file(&self, sha: &str) -> ServerResult<Option<Verified>> {
        if !valid_sha(sha) {
            return Ok(None);
        }
        let mut file = match tokio::fs::File::open(self.path_of(sha)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata().await?.len();
        if hash_file(&mut file).await? != sha {
            return Err(damaged(sha));
        }
        use tokio::io::AsyncSeekExt;
        file.seek(std::io::SeekFrom::Start(0)).await?;
        let expected = sha.to_string();
        let state = Some((file, Sha256::new(), 0u64));
        let body = futures::stream::unfold(state, move |state| {
            let expected = expected.clone();
            async move {
                let (mut file, mut hasher, mut sent) = state?;
                let mut buf = vec![0u8; IO_CHUNK];
                match file.read(&mut buf).await {
                    Err(e) => Some((Err(e), None)),
                    Ok(0) => {
                        if sent == len && hex::encode(hasher.finalize()) == expected {
                            None
                        } else {
                            let _ = damaged(&expected);
                            Some((Err(std::io::Error::other("blob changed while sent")), None))
                        }
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        hasher.update(&buf);
                        sent += n as u64;
                        Some((Ok(Bytes::from(buf)), Some((file, hasher, sent))))
                    }
                }
            }
        });
        Ok(Some(Verified {
            len,
            body: Box::pin(body),
        }))
    }

    /// A blob's bytes in memory (small blobs: containers, inline text),
    /// verified like [`BlobStore::open_file`].
    pub(crate) async fn get_file(&self, sha: &str) -> ServerResult<Option<Vec<u8>>> {
        if !valid_sha(sha) {
            return Ok(None);
        }
        match tokio::fs::read(self.path_of(sha)).await {
            Ok(b) if hex::encode(Sha256::digest(&b)) == sha => Ok(Some(b)),
            Ok(_) => Err(damaged(sha)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A second name (hard link) of a freshly stored blob, kept until the row
/// that references the blob is committed. On drop, if the blob's file has been
/// removed in the meantime (a deletion or `server gc` saw no reference yet), it
/// is linked back from this name; then the name is removed. Where hard links
/// are not supported there is no hold and that race is left to `server gc`'s
/// grace period (files younger than [`GC_GRACE`] are never collected).
#[derive(Debug)]
struct Hold {
    hold: PathBuf,
    target: PathBuf,
}

impl Hold {
    fn new(tmp: &Path, target: &Path) -> Option<Hold> {
        let hold = tmp.with_extension("hold.tmp");
        std::fs::hard_link(tmp, &hold).ok()?;
        Some(Hold {
            hold,
            target: target.to_path_buf(),
        })
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.target.exists() {
            if let Some(dir) = self.target.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            // AlreadyExists: another write or a restore put it back first.
            let _ = std::fs::hard_link(&self.hold, &self.target);
        }
        let _ = std::fs::remove_file(&self.hold);
    }
}

/// Creates a directory of the store unless it exists (looked up first:
/// creating an existing directory still locks its parent).
fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
}

/// A new temporary file in `dir`, removed when dropped unless kept.
fn create_tmp(dir: &Path, n: u64) -> std::io::Result<(TmpFile, std::fs::File)> {
    let tmp = TmpFile {
        path: dir.join(format!(".incoming.{}.{n}.tmp", std::process::id())),
        kept: false,
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp.path)?;
    Ok((tmp, file))
}

/// Stores a small body whose digest names `path`, all in `path`'s directory:
/// a copy holding exactly these bytes is kept as it is (held by a hard link,
/// see [`Hold`]); anything else there (nothing, a damaged copy) is replaced
/// by a fresh copy, written to a temporary file, `fsync`ed and renamed over
/// it. Runs on a blocking thread.
fn place_small(path: &Path, bytes: &[u8]) -> std::io::Result<Option<Hold>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    if std::fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64)
        && std::fs::read(path).is_ok_and(|b| b == bytes)
    {
        // Held from here, the copy survives a deletion that races with this
        // upload; if it went between the read and the link, write it again.
        let hold = dir.join(format!(".incoming.{}.{n}.hold.tmp", std::process::id()));
        if std::fs::hard_link(path, &hold).is_ok() {
            return Ok(Some(Hold {
                hold,
                target: path.to_path_buf(),
            }));
        }
    }
    use std::io::Write;
    let (tmp, mut file) = create_tmp(dir, n)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    put_in_place(tmp, path, || std::fs::read(path).is_ok_and(|b| b == bytes))
}

/// Renames a written and `fsync`ed temporary file over `path`, held by a hard
/// link until the row is committed ([`Hold`]). The fresh copy replaces
/// whatever is there, so a damaged copy heals; where a file in use cannot be
/// replaced, the existing copy is kept if `existing_is_sound` says it holds
/// the same bytes. Runs on a blocking thread.
fn put_in_place(
    mut tmp: TmpFile,
    path: &Path,
    existing_is_sound: impl FnOnce() -> bool,
) -> std::io::Result<Option<Hold>> {
    let hold = Hold::new(&tmp.path, path);
    match std::fs::rename(&tmp.path, path) {
        Ok(()) => tmp.kept = true,
        Err(e) => {
            if !existing_is_sound() {
                return Err(e);
            }
        }
    }
    Ok(hold)
}

/// True when the file at `path` has this length and SHA-256 (read in chunks).
fn file_is(path: &Path, len: u64, sha: &str) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    if !f.metadata().is_ok_and(|m| m.len() == len) {
        return false;
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; IO_CHUNK];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return hex::encode(hasher.finalize()) == sha,
            Ok(n) => hasher.update(&buf[..n]),
            Err(_) => return false,
        }
    }
}

/// Blob files younger than this are never collected by `server gc` (their
/// rows may still be on their way where hard links are unsupported).
pub(crate) const GC_GRACE: Duration = Duration::from_secs(600);

/// A blob file in the store.
#[derive(Debug, Clone)]
pub(crate) struct BlobFile {
    pub(crate) sha256: String,
    pub(crate) len: u64,
    pub(crate) age: Duration,
}

/// A temporary file in the store (an upload in flight, or a crash's leftover).
#[derive(Debug, Clone)]
pub(crate) struct TmpEntry {
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
    pub(crate) age: Duration,
}

impl BlobStore {
    /// Opens an existing store without touching it (no clean-up of stale
    /// temporary files): `server gc`, whose dry run removes nothing.
    pub(crate) fn existing(root: impl Into<PathBuf>) -> Self {
        BlobStore {
            root: root.into(),
            streams: Budget::new(MAX_STREAMS),
            buffered: Budget::new(MAX_BUFFERED / 1024),
            inline_budget: Arc::new(Semaphore::new(INLINE_BUDGET / 1024)),
            inline_max: INLINE_MAX,
            wait: INTAKE_WAIT,
            min_free: DEFAULT_MIN_FREE,
        }
    }

    /// Removes a blob that no row references any more; answers the bytes
    /// freed (`None`: absent, or referenced again).
    ///
    /// The race with an upload of the same bytes: the file is first renamed
    /// to a tombstone, then `referenced` asks the database again. A row
    /// committed before that question keeps the blob (the tombstone is
    /// renamed back); a row committed after it belongs to an upload whose
    /// [`Stored`] is still alive and links the file back when dropped. Either
    /// way no committed row is left pointing at a missing file.
    pub(crate) async fn remove_unreferenced<F, Fut>(
        &self,
        sha: &str,
        referenced: F,
    ) -> ServerResult<Option<u64>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ServerResult<bool>>,
    {
        if !valid_sha(sha) {
            return Ok(None);
        }
        let path = self.path_of(sha);
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        // Beside the blob: a rename within one directory locks only it.
        let tomb = path.with_file_name(format!(".{sha}.{}.{n}.deleting.tmp", std::process::id()));
        match tokio::fs::rename(&path, &tomb).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let still = referenced().await;
        if !matches!(still, Ok(false)) {
            // Referenced again (or unknown): put it back unless a fresh copy
            // is already there.
            if tokio::fs::metadata(&path).await.is_err() {
                tokio::fs::rename(&tomb, &path).await?;
            } else {
                let _ = tokio::fs::remove_file(&tomb).await;
            }
            return still.map(|_| None);
        }
        let len = tokio::fs::metadata(&tomb)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        tokio::fs::remove_file(&tomb).await?;
        // The fan-out directory stays (at most 256 of them): removing it could
        // race with a write that just created it.
        Ok(Some(len))
    }

    /// Every blob file and every temporary file in the store.
    pub(crate) fn inventory(&self) -> (Vec<BlobFile>, Vec<TmpEntry>) {
        let (mut blobs, mut tmps) = (Vec::new(), Vec::new());
        let age = |m: &std::fs::Metadata| {
            m.modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default()
        };
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(m) = e.metadata() else { continue };
                let name = e.file_name().to_string_lossy().into_owned();
                if m.is_dir() {
                    if dir == self.root {
                        dirs.push(e.path());
                    }
                } else if name.ends_with(".tmp") {
                    tmps.push(TmpEntry {
                        path: e.path(),
                        len: m.len(),
                        age: age(&m),
                    });
                } else if valid_sha(&name) && dir != self.root {
                    blobs.push(BlobFile {
                        sha256: name,
                        len: m.len(),
                        age: age(&m),
                    });
                }
            }
        }
        blobs.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        (blobs, tmps)
    }
}

async fn hash_file(f: &mut tokio::fs::File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; IO_CHUNK];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// Removes `*.tmp` files older than `age` in the store and its fan-out
/// directories; answers how many went.
fn remove_stale_tmp(root: &Path, age: Duration) -> usize {
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let stale = e.file_name().to_string_lossy().ends_with(".tmp")
                && e.metadata().is_ok_and(|m| {
                    m.is_file()
                        && m.modified()
                            .ok()
                            .and_then(|t| t.elapsed().ok())
                            .is_some_and(|el| el > age)
                });
            if stale && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests;
