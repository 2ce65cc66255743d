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

/// A results directory held open for reading files named inside it.
pub(crate) struct ResultsDir<'a> {
    path: &'a Path,
    #[cfg(unix)]
    fd: Option<rustix::fd::OwnedFd>,
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
            .ok();
            ResultsDir { path, fd }
        }
        #[cfg(not(unix))]
        ResultsDir { path }
    }

    /// [`read_inside`] of this directory: the same bytes and the same refusals.
    pub(crate) fn read(&self, name: &str, max: u64) -> Result<Vec<u8>, ReadError> {
        #[cfg(unix)]
        if let Some(read) = self.read_plain_file(name, max) {
            return read;
        }
        read_inside(self.path, name, max)
    }

    /// The fast path: `Some` with the file's bytes (or its size refusal) when
    /// `name` is a regular file named by one plain component, `None` for
    /// anything [`read_inside`] must judge.
    #[cfg(unix)]
    fn read_plain_file(&self, name: &str, max: u64) -> Option<Result<Vec<u8>, ReadError>> {
        use rustix::fs::{AtFlags, FileType, Mode, OFlags};
        let fd = self.fd.as_ref()?;
        if !super::one_component(name) || name.chars().any(char::is_control) {
            return None;
        }
        let seen = rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if FileType::from_raw_mode(seen.st_mode) != FileType::RegularFile {
            return None;
        }
        // Non-blocking: a named pipe put in its place since the look would
        // otherwise block the open (reads of a regular file ignore the flag).
        let opened = rustix::fs::openat(
            fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let now = rustix::fs::fstat(&opened).ok()?;
        if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile
            || now.st_dev != seen.st_dev
            || now.st_ino != seen.st_ino
        {
            // Swapped since it was looked at: judged the slow way.
            return None;
        }
        let len = u64::try_from(now.st_size).unwrap_or(u64::MAX);
        Some(super::read_limited(std::fs::File::from(opened), len, max))
    }
}
