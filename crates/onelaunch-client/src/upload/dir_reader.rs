//! Reading the many files of one results directory without walking the
//! directory's path for each of them.
//!
//! [`read_inside`] looks a file up by its full path twice (`lstat`, then
//! `open`): every component of the directory's path each time, about a fifth
//! of the client's CPU for an upload of small result files. A [`ResultsDir`]
//! opens the directory once and looks each plain file name up relative to it
//! (`fstatat`, `openat`), keeping the same rules: only a regular file named
//! by one plain component is read this way, opened without following a
//! symbolic link and checked to be the very file looked at; anything else (a
//! link, a name with directories, an error) goes to [`read_inside`], which
//! resolves and judges it.

use std::path::Path;

use super::{read_inside, ReadError};

/// What a directory's listing said of a name: a regular file, with this
/// inode (on the directory's device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listed(pub(crate) u64);

impl Listed {
    /// The listing's word on `entry`: `Some` for a regular file (not a
    /// link) where the platform gives the inode.
    pub(crate) fn of(entry: &std::fs::DirEntry) -> Option<Listed> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirEntryExt;
            let file = entry.file_type().ok()?.is_file();
            file.then(|| Listed(entry.ino()))
        }
        #[cfg(not(unix))]
        {
            let _ = entry;
            None
        }
    }
}

/// A results directory held open for reading files named inside it.
pub(crate) struct ResultsDir<'a> {
    path: &'a Path,
    #[cfg(unix)]
    fd: Option<(rustix::fd::OwnedFd, rustix::fs::Stat)>,
}

impl<'a> ResultsDir<'a> {
    /// Opens the canonical results directory `path` (when it cannot be
    /// opened, every read resolves the path instead).
    pub(crate) fn open(path: &'a Path) -> Self {
        #[cfg(unix)]
        {
            use rustix::fs::{Mode, OFlags};
            let fd = rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()
            .and_then(|fd| Some((rustix::fs::fstat(&fd).ok()?, fd)))
            .map(|(stat, fd)| (fd, stat));
            ResultsDir { path, fd }
        }
        #[cfg(not(unix))]
        ResultsDir { path }
    }

    /// [`read_inside`] of this directory: the same bytes and the same refusals.
    pub(crate) fn read(&self, name: &str, max: u64) -> Result<Vec<u8>, ReadError> {
        let mut bytes = Vec::new();
        self.read_into(name, None, max, &mut bytes)?;
        Ok(bytes)
    }

    /// [`ResultsDir::read`] into `buf` (cleared first), so that a reader of
    /// many files reuses one buffer: a new one for each file of a kilobyte
    /// or more made glibc's `malloc` merge every small block freed since the
    /// last file (`malloc_consolidate`), about 5% of the client's CPU.
    ///
    /// `listed` is the inode the directory's listing gave for `name` when it
    /// listed a regular file ([`Listed`]); the file is then not looked at
    /// before it is opened (see [`ResultsDir::read_plain_file`]).
    pub(crate) fn read_into(
        &self,
        name: &str,
        listed: Option<Listed>,
        max: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        #[cfg(unix)]
        if let Some(read) = self.read_plain_file(name, listed, max, buf) {
            return read;
        }
        *buf = read_inside(self.path, name, max)?;
        Ok(())
    }

    /// The fast path: `Some` with the file's bytes in `buf` (or its size
    /// refusal) when `name` is a regular file named by one plain component,
    /// `None` for anything [`read_inside`] must judge.
    ///
    /// The file opened must be a regular file and the very one looked at
    /// (device and inode). It is looked at with `fstatat` before the open, so
    /// that nothing but a regular file is opened, unless the listing already
    /// said it is one: then the listing's inode is the one it must be. That
    /// look was the client's most expensive system call (a lookup in a
    /// directory of many thousands of names); without it a file replaced
    /// since the listing (by a link, a pipe, another file) is opened and
    /// found not to match, as one replaced between the look and the open
    /// always was, and judged the slow way.
    #[cfg(unix)]
    fn read_plain_file(
        &self,
        name: &str,
        listed: Option<Listed>,
        max: u64,
        buf: &mut Vec<u8>,
    ) -> Option<Result<(), ReadError>> {
        use rustix::fs::{AtFlags, FileType, OFlags};
        let (fd, dir) = self.fd.as_ref()?;
        if !super::one_component(name) || name.chars().any(char::is_control) {
            return None;
        }
        let (dev, ino) = match listed {
            Some(Listed(ino)) => (dir.st_dev, ino),
            None => {
                let seen = rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
                if FileType::from_raw_mode(seen.st_mode) != FileType::RegularFile {
                    return None;
                }
                (seen.st_dev, seen.st_ino)
            }
        };
        // Non-blocking: a named pipe put in its place since the look would
        // otherwise block the open (reads of a regular file ignore the flag).
        let opened = open_to_read(
            fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        )
        .ok()?;
        let now = rustix::fs::fstat(&opened).ok()?;
        if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile
            || now.st_dev != dev
            || now.st_ino != ino
        {
            // Swapped since it was looked at: judged the slow way.
            return None;
        }
        let len = u64::try_from(now.st_size).unwrap_or(u64::MAX);
        Some(super::read_limited_into(
            std::fs::File::from(opened),
            len,
            max,
            buf,
        ))
    }
}

/// Set once the system refused to open a file without updating its access
/// time (`EPERM`: the files belong to another user and this one may not);
/// files are then opened the ordinary way.
#[cfg(any(target_os = "linux", target_os = "android"))]
static NOATIME_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Opens `name` inside `dir` with `flags`, and on Linux without updating its
/// access time (`O_NOATIME`, as backup tools read): a results directory is
/// read once, just after the tests wrote it, and a first read of a file
/// newer than its access time updates that time (`relatime`, the default),
/// which dirtied each file's inode, a sixteenth of the client's CPU for an
/// upload of small result files and a write of every inode to the disk later
/// (docs/ingest-profile.md, "The end of an upload").
#[cfg(unix)]
fn open_to_read(
    dir: &rustix::fd::OwnedFd,
    name: &str,
    flags: rustix::fs::OFlags,
) -> rustix::io::Result<rustix::fd::OwnedFd> {
    use rustix::fs::Mode;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::sync::atomic::Ordering;
        if !NOATIME_REFUSED.load(Ordering::Relaxed) {
            match rustix::fs::openat(
                dir,
                name,
                flags | rustix::fs::OFlags::NOATIME,
                Mode::empty(),
            ) {
                Err(rustix::io::Errno::PERM) => NOATIME_REFUSED.store(true, Ordering::Relaxed),
                opened => return opened,
            }
        }
    }
    rustix::fs::openat(dir, name, flags, Mode::empty())
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// A file whose access time is an hour older than its content, as
    /// `relatime` updates it on the next read.
    fn written_after_last_read(dir: &Path, name: &str) -> (std::path::PathBuf, SystemTime) {
        let path = dir.join(name);
        std::fs::write(&path, br#"{"uuid":"u"}"#).unwrap();
        let modified = SystemTime::now();
        let accessed = modified - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_times(
                std::fs::FileTimes::new()
                    .set_accessed(accessed)
                    .set_modified(modified),
            )
            .unwrap();
        (path, accessed)
    }

    fn accessed(path: &Path) -> SystemTime {
        std::fs::metadata(path).unwrap().accessed().unwrap()
    }

    #[test]
    fn reading_a_results_file_leaves_its_access_time_alone() {
        let dir = tempfile::tempdir().unwrap();
        // What an ordinary read does here: the file system records access
        // times (`relatime`), else this test could not tell anything.
        let (plain, before) = written_after_last_read(dir.path(), "plain-result.json");
        std::fs::read(&plain).unwrap();
        assert_ne!(
            accessed(&plain),
            before,
            "the test directory's file system must record access times"
        );

        let (file, before) = written_after_last_read(dir.path(), "a-result.json");
        let held = ResultsDir::open(dir.path());
        let read = held.read("a-result.json", 1 << 20).ok();
        assert_eq!(read.as_deref(), Some(&br#"{"uuid":"u"}"#[..]));
        assert_eq!(accessed(&file), before);
    }
}
